/*
 * naive.h: the naive get/kick of the original buffer_head defrag patch (Linux,
 * 2010, get_buffers/kick_buffers as posted), rebuilt on this buffer cache, so
 * that the race tests (race.h) can show they catch its three races.  Test
 * code only: the library ships the fixed version (src/bufcache/bh_defrag.c).
 * Header only, so the per-directory glob does not make it a program.
 *
 * What is naive, on purpose:
 *   - get reads bh->b_page and pins that page with get-unless-zero, and never
 *     re-reads b_page: if the buffer head was freed and its page reused (for
 *     another block, or another device) in between, the pin is on a page that
 *     owns none of the frozen slab's buffer heads;
 *   - its de-duplication is broken: the `continue` only continues the inner
 *     loop, so a page appears (and is pinned) once per buffer head;
 *   - kick takes "has private data" (PG_HAS_BUFFERS) for "has buffers we may
 *     drop" instead of asking the release routine whether they may go (the
 *     release routine still refuses busy buffers, so data stays safe; the race
 *     tests count the wrong-page kicks).
 *
 * The hooks (struct bh_defrag_test_hooks, the same as the real get/kick's in
 * the testing build) fire at the same points: after get read b_page (here also
 * when it is NULL), and before kick acts on a page.  naive_defrag_install
 * swaps these callbacks in on the "buffer_head" cache; bh_defrag_register puts
 * the real ones back.  get hands the hooks to kick as its private data, as the
 * patch's get_buffers returned its cookie.
 */
#ifndef SLABDEFRAG_TESTS_BHDEFRAG_NAIVE_H
#define SLABDEFRAG_TESTS_BHDEFRAG_NAIVE_H

#include "bufcache/bh_defrag.h"
#include "bufcache/internal.h"

static const struct bh_defrag_test_hooks *naive_hooks;

static void *naive_get(struct slab_cache *s, int nr, void **v)
{
    const struct bh_defrag_test_hooks *hk = naive_hooks;
    int n = 0;
    for (int i = 0; i < nr; i++) {
        struct bh_impl *bh = v[i];
        v[i] = NULL;
        struct bc_page *page = atomic_load_explicit(&bh->b_page, memory_order_relaxed);
        if (page && (page_flags(page) & PG_HAS_BUFFERS))
            for (int j = 0; j < n; j++)
                if (page == v[j])
                    continue; /* the patch's bug: continues the inner loop only */
        if (hk->after_read_page)
            hk->after_read_page(bh, page, hk->arg);
        if (page && page_get_unless_zero(page))
            v[n++] = page;
    }
    return (void *)hk;
}

static void naive_kick(struct slab_cache *s, int nr, void **v, void *private_data)
{
    const struct bh_defrag_test_hooks *hk = private_data;
    for (int i = 0; i < nr; i++) {
        struct bc_page *page = v[i];
        if (!page)
            continue;
        if (hk->kick_page)
            hk->kick_page(page, hk->arg);
        if (!(page_flags(page) & PG_WRITEBACK) && page_trylock(page)) {
            if (page_flags(page) & PG_DIRTY)
                page_start_writeback_nowait(page);
            if (page_flags(page) & PG_HAS_BUFFERS)
                page_release_buffers(page, 1);
            page_unlock(page);
        }
        page_put(page);
    }
}

/* Make the naive callbacks the buffer_head cache's (until bh_defrag_register). */
static inline int naive_defrag_install(struct slab_cache *s, const struct bh_defrag_test_hooks *hk)
{
    naive_hooks = hk;
    return slab_cache_setup_defrag(s, naive_get, naive_kick);
}

#endif
