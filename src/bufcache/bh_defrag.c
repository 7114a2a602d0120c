/*
 * bufcache/bh_defrag.c — defragmentable buffer heads: get_buffers / kick_buffers
 * of the original buffer_head defrag patch (Linux, 2010), with its races fixed
 * (that naive version lives with the race tests, tests/bhdefrag/naive.h, which
 * show that they catch its races and that this version has none).
 *
 * The slab allocator freezes a sparse slab of the "buffer_head" cache and hands
 * us its allocated buffer heads.  A buffer head cannot be moved (pages point to
 * it, callers hold it), but it can be dropped and rebuilt: a clean, unreferenced
 * ring is released and rebuilt on the next access with no I/O (bh.c).  So:
 *
 *   get (no allocator lock held, slab frozen):
 *     for each bh: page = load_acquire(bh->b_page)
 *       NULL → the ring was detached: the bh is being freed; skip it;
 *       pin the page with get-unless-zero (0 = free or frozen: skip it);
 *       re-read b_page (acquire): if it is no longer `page`, the ring was
 *       detached meanwhile and the page may already be reused (another block,
 *       another device) — unpin and skip;
 *       if the page is already in the vector, skip it before pinning: each
 *       page once (the naive version's `continue` only continued its inner
 *       loop).
 *     The vector now holds distinct pinned pages (entries past them are NULL).
 *   kick (no allocator lock held):
 *     for each page: skip it under writeback; trylock it (skip if busy);
 *       dirty → start its writeback without waiting for anyone (PG_WRITEBACK is
 *       test-and-set, so a writer already at work makes us skip, never race);
 *       then, clean or not, ask the page's release routine, which decides
 *       whether the buffers may go (not if any is referenced, dirty, locked or
 *       failed, or the page is dirty/under writeback) — never "it has private
 *       data, so it has buffers" (the naive version's test);
 *       unlock; drop our pin.
 *     Pages whose buffers stayed (dirty with a failed write, referenced, locked)
 *     keep the slab alive; the engine counts that turn as futile and asks again
 *     in a later pass, by when their writeback has usually completed.
 *
 * Why the re-check suffices.  Buffer heads are freed only by ring detach, which
 * clears every b_page with release ordering before slab_free (bh.c).  A frozen
 * slab gets no allocations, so a freed buffer head of ours is never handed to
 * another page during the pass: if b_page still equals `page` after we pinned
 * it, the page has owned that buffer head continuously since our first read (a
 * detach would have cleared it, and nothing can set it again), so the pin is on
 * the right page.  Type-stable page descriptors (bcache's descriptor array) make
 * get-unless-zero on a stale page pointer safe.
 *
 * References: get takes one page pin per distinct page; kick drops exactly those
 * (the vector tells it which).  A pin never outlives the pass.
 *
 * Observability: bh_defrag_get_counters (relaxed counters since the process
 * started).  In the testing build, hooks fire after get read b_page and before
 * kick acts on a page (bh_defrag.h), so the race tests can change the world
 * exactly there; the shipped library has neither.
 */
#include "bh_defrag.h"

TEST_HOOKS_DEFINE(struct bh_defrag_test_hooks, bh_defrag_set_test_hooks)

static struct {
    _Atomic uint64_t pinned, stale, freed, dups, written, released, busy, writeback, bh_released;
} counters;

void bh_defrag_get_counters(struct bh_defrag_counters *out)
{
    out->pages_pinned = atomic_load(&counters.pinned);
    out->pages_skipped_stale = atomic_load(&counters.stale);
    out->bh_skipped_freed = atomic_load(&counters.freed);
    out->duplicates_skipped = atomic_load(&counters.dups);
    out->pages_written = atomic_load(&counters.written);
    out->pages_released = atomic_load(&counters.released);
    out->pages_busy = atomic_load(&counters.busy);
    out->pages_under_writeback = atomic_load(&counters.writeback);
    out->bh_released = atomic_load(&counters.bh_released);
}

static void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static bool already_pinned(void **v, int n, struct bc_page *page)
{
    for (int j = 0; j < n; j++)
        if (v[j] == page)
            return true;
    return false;
}

void *bh_defrag_get(struct slab_cache *s, int nr, void **v)
{
    int n = 0;
    for (int i = 0; i < nr; i++) {
        struct bh_impl *bh = v[i];
        v[i] = NULL;
        struct bc_page *page = atomic_load_explicit(&bh->b_page, memory_order_acquire);
        if (!page) {
            count(&counters.freed, 1);
            continue;
        }
        TEST_HOOK(after_read_page, bh, page);
        if (already_pinned(v, n, page)) {
            count(&counters.dups, 1);
            continue;
        }
        if (!page_get_unless_zero(page)) {
            count(&counters.stale, 1);
            continue;
        }
        if (atomic_load_explicit(&bh->b_page, memory_order_acquire) != page) {
            page_put(page);
            count(&counters.stale, 1);
            continue;
        }
        v[n++] = page;
        count(&counters.pinned, 1);
    }
    return NULL;
}

/* Write back and/or release one pinned, locked page's buffers. */
static void kick_locked_page(struct bc_page *p)
{
    if (page_flags(p) & PG_DIRTY) {
        if (page_start_writeback_nowait(p) == 0)
            count(&counters.written, 1);
    }
    int freed = page_release_buffers(p, 1);
    if (freed > 0) {
        count(&counters.released, 1);
        count(&counters.bh_released, (uint64_t)freed);
    } else {
        count(&counters.busy, 1);
    }
}

void bh_defrag_kick(struct slab_cache *s, int nr, void **v, void *private_data)
{
    for (int i = 0; i < nr; i++) {
        struct bc_page *p = v[i];
        if (!p)
            continue;
        TEST_HOOK(kick_page, p);
        if (page_flags(p) & PG_WRITEBACK) {
            count(&counters.writeback, 1);
        } else if (page_trylock(p)) {
            kick_locked_page(p);
            page_unlock(p);
        } else {
            count(&counters.busy, 1);
        }
        page_put(p);
    }
}

int bh_defrag_register(struct slab_cache *bh_cache)
{
    return slab_cache_setup_defrag(bh_cache, bh_defrag_get, bh_defrag_kick);
}
