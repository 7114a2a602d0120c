/*
 * bufcache/bh_defrag.h — buffer-head defragmentation (get/kick), its counters,
 * and (testing build only) the hooks its race tests use.
 */
#ifndef SLABDEFRAG_BUFCACHE_BH_DEFRAG_H
#define SLABDEFRAG_BUFCACHE_BH_DEFRAG_H

#include "internal.h"

/* Register get/kick on the process-wide "buffer_head" cache (bh.c calls it once,
 * right after creating the cache).  0 or -errno. */
int bh_defrag_register(struct slab_cache *bh_cache);

/* The callbacks bh_defrag_register sets (slab.h's evict protocol): get turns a
 * vector of buffer heads into distinct pinned pages (get returns NULL: kick
 * needs no private data), kick writes back and releases them and drops the
 * pins.  Exposed so that a test can drive them on a vector it builds, without
 * the allocator (tests/bufcache/defrag_hooks), or restore them after swapping
 * in other callbacks (tests/bhdefrag/race.h). */
void *bh_defrag_get(struct slab_cache *s, int nr, void **v);
void bh_defrag_kick(struct slab_cache *s, int nr, void **v, void *private_data);

#ifdef SLABDEFRAG_TESTING
/*
 * Hooks at the points where the three races of a naive get happen (a: the page
 * is freed and reused for another block, b: for another device's block, c:
 * eviction drops the ring, between get reading b_page and pinning the page);
 * a test sets them to free a buffer head, evict or reuse its page, or attach
 * another device's buffers, exactly between two steps of get or kick.
 *   after_read_page: get has read bh->b_page == page (not NULL), and has not
 *                    yet pinned it.
 *   kick_page:       kick is about to act on page (write back or release).
 * (The naive get and kick themselves live with the race tests.)
 */
struct bh_defrag_test_hooks {
    void (*after_read_page)(struct bh_impl *bh, struct bc_page *page, void *arg);
    void (*kick_page)(struct bc_page *page, void *arg);
    void *arg;
};
void bh_defrag_set_test_hooks(const struct bh_defrag_test_hooks *hooks); /* NULL: none */
#endif

/* Counters since the process started (relaxed; for tests and the demo). */
struct bh_defrag_counters {
    uint64_t pages_pinned, pages_skipped_stale, bh_skipped_freed, duplicates_skipped;
    uint64_t pages_written, pages_released, pages_busy, pages_under_writeback, bh_released;
};
void bh_defrag_get_counters(struct bh_defrag_counters *out);

#endif
