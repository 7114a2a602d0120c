/*
 * race.h: the frame shared by the deterministic race tests of the buffer_head
 * defrag (race_reuse.c, race_other_dev.c, race_evict.c).  Header only, so the
 * per-directory glob does not make it a program.
 *
 * How a scenario is forced.  A bcache with 1 KiB blocks caches NP pages of an
 * image (one ring of 4 buffer heads each), then the rings of 3 pages out of 4
 * are released so every slab of the "buffer_head" cache is about 25% full.  The
 * test thread then runs slab_cache_defrag(buffer_head, 100).  The engine freezes
 * a sparse slab and calls get on this thread; get's after_read_page hook fires
 * for the first buffer head whose b_page it read, *before* get pins the page,
 * and the scenario's mutate() changes the world right there (frees the buffer
 * head and reuses its page, gives the page another device's buffers, drops the
 * ring ...).  The hook runs with the slab frozen and no allocator lock held,
 * so calling the buffer cache from it is allowed.
 *
 * What is checked.  The after_read_page hook records every buffer head get
 * looks at (all of them live in frozen slabs, which get no allocations during
 * the pass, so a recorded buffer head can never be attached to a page again).
 * The kick_page hook runs before kick acts on a page: the page is "right" iff
 * one of the recorded buffer heads still has b_page == that page, i.e. the page
 * still owns a buffer head of a frozen slab — which is what get must guarantee
 * by pinning and re-checking (nobody can detach a ring while we hold a pin,
 * and this test has no other threads).  Every other kick is a wrong-page access
 * and is counted.  Then all data is read back and compared with what was
 * written, and after bdev_sync the image files are compared too.
 *
 * run_race() runs the scenario twice in fresh caches: with the real get/kick
 * (must be clean; their hooks exist only in the testing build of the library,
 * so every race test links slabdefrag_testing) and with the naive get/kick of
 * the original patch (naive.h) swapped in, where the checks must catch a
 * wrong-page kick.  It exits 0 only if both hold.
 */
#ifndef SLABDEFRAG_TESTS_BHDEFRAG_RACE_H
#define SLABDEFRAG_TESTS_BHDEFRAG_RACE_H

#include "../bufcache/bctest.h"

#include "bufcache/bh_defrag.h"
#include "bufcache/internal.h"
#include "naive.h"

#define RBS 1024u             /* block size: 4 buffer heads per page */
#define RNP 64u               /* pages cached before fragmenting */
#define RIMG (4u << 20)       /* image size: 1024 pages */
#define RSEED1 0x5eed1ull
#define RSEED2 0x5eed2ull
#define RMAXREC 8192

struct race {
    const char *name;
    int naive;
    struct bcache *bc;
    struct bdev *dev, *dev2;
    char path[256], path2[256];
    /* hook state */
    int fired;
    struct bc_page *victim;      /* the page of the first buffer head get read */
    uint64_t victim_index;
    struct bh_impl *rec[RMAXREC];/* buffer heads get looked at (frozen slabs) */
    int nrec;
    int kicks, wrong;            /* kick_page calls; of those, on a wrong page */
    /* expected contents: blocks the scenario overwrote (dev2 or dev) */
    uint64_t stamped_block;      /* UINT64_MAX: none */
    struct bdev *stamped_dev;
    void (*mutate)(struct race *r, struct bc_page *p);
};

/* ---- small internal helpers ------------------------------------------------ */

static inline struct bdev_map *rmap(struct bdev *d)
{
    return d->map;
}

/* Release the ring of cached page `index` (the page stays cached). */
static inline int race_drop_ring(struct bcache *bc, struct bdev *d, uint64_t index)
{
    struct bc_page *p = page_lookup(bc, rmap(d), index);
    CHECK(p, "page %llu is not cached", (unsigned long long)index);
    page_lock(p);
    int n = page_release_buffers(p, 1);
    page_unlock(p);
    page_put(p);
    return n;
}

/* Evict page p (clean, unreferenced): its ring is detached and freed and the
 * descriptor goes to the head of the warm free list. */
static inline void race_evict(struct bcache *bc, struct bc_page *p)
{
    page_lock(p);
    CHECK(page_freeze(p, 0), "victim page is pinned (refcount %u)",
          (unsigned)atomic_load(&p->refcount));
    CHECK(page_ring_releasable(p, NULL), "victim page is busy");
    page_evict_frozen(bc, p); /* unlocks */
}

/* Read block b of d and drop the reference; returns the block's page. */
static inline struct bc_page *race_touch(struct bdev *d, uint64_t b)
{
    struct buffer_head *bh = bh_read(d, b);
    CHECK(bh, "bh_read(%llu): %s", (unsigned long long)b, strerror(errno));
    struct bc_page *p = bh_page(bh_impl(bh));
    bh_put(bh);
    return p;
}

/* Overwrite block b of d with a stamp and mark it dirty; returns its page. */
static inline struct bc_page *race_stamp(struct race *r, struct bdev *d, uint64_t b)
{
    struct buffer_head *bh = bh_get(d, b);
    CHECK(bh, "bh_get(%llu): %s", (unsigned long long)b, strerror(errno));
    bh_lock(bh);
    block_fill(bh->b_data, RBS, b, 7);
    bh_mark_dirty(bh);
    bh_unlock(bh);
    struct bc_page *p = bh_page(bh_impl(bh));
    bh_put(bh);
    r->stamped_block = b;
    r->stamped_dev = d;
    return p;
}

/* ---- hooks -------------------------------------------------------------------- */

static void race_after_read(struct bh_impl *bh, struct bc_page *page, void *arg)
{
    struct race *r = arg;
    if (r->nrec < RMAXREC)
        r->rec[r->nrec++] = bh;
    if (r->fired || !page)
        return;
    r->fired = 1;
    r->victim = page;
    r->victim_index = atomic_load(&page->index);
    r->mutate(r, page);
}

static void race_kick(struct bc_page *page, void *arg)
{
    struct race *r = arg;
    r->kicks++;
    for (int i = 0; i < r->nrec; i++)
        if (atomic_load_explicit(&r->rec[i]->b_page, memory_order_acquire) == page)
            return;
    r->wrong++;
    struct bdev_map *m = page_map(page);
    fprintf(stderr, "  [%s%s] kick on page %u (dev %s, index %llu, flags %#x) that owns no "
            "buffer head of the frozen slab%s\n", r->name, r->naive ? ", naive" : "",
            page_id(r->bc, page), !m ? "none" : m == rmap(r->dev) ? "1" : "2",
            (unsigned long long)atomic_load(&page->index), page_flags(page),
            page == r->victim ? " (the victim page, reused)" : "");
}

/* ---- verification --------------------------------------------------------------- */

static void race_expect(struct race *r, struct bdev *d, uint64_t seed, uint64_t b, void *out)
{
    if (r->stamped_dev == d && r->stamped_block == b) {
        block_fill(out, RBS, b, 7);
        return;
    }
    unsigned char *o = out;
    for (unsigned i = 0; i < RBS; i++)
        o[i] = pattern_byte(seed, b * RBS + i);
}

/* Every block of the first `pages` pages of d reads back right, through the
 * cache and (after bdev_sync) from the image file. */
static void race_verify(struct race *r, struct bdev *d, const char *path, uint64_t seed,
                        uint64_t pages)
{
    static unsigned char want[RBS], got[RBS];
    for (uint64_t b = 0; b < pages * 4; b++) {
        struct buffer_head *bh = bh_read(d, b);
        CHECK(bh, "[%s] bh_read(%llu): %s", r->name, (unsigned long long)b, strerror(errno));
        race_expect(r, d, seed, b, want);
        CHECK(memcmp(bh->b_data, want, RBS) == 0, "[%s%s] block %llu reads back wrong",
              r->name, r->naive ? ", naive" : "", (unsigned long long)b);
        bh_put(bh);
    }
    CHECK(bdev_sync(d) == 0, "[%s] bdev_sync failed", r->name);
    for (uint64_t b = 0; b < pages * 4; b++) {
        image_read(path, b * RBS, got, RBS);
        race_expect(r, d, seed, b, want);
        CHECK(memcmp(got, want, RBS) == 0, "[%s%s] image block %llu is wrong", r->name,
              r->naive ? ", naive" : "", (unsigned long long)b);
    }
}

/* ---- one run ------------------------------------------------------------------------ */

/* Returns the number of wrong-page kicks; data is checked (CHECK) in both modes. */
static int race_run_once(struct race *r, int naive, int two_devices)
{
    r->naive = naive;
    r->fired = 0;
    r->nrec = r->kicks = r->wrong = 0;
    r->victim = NULL;
    r->stamped_block = UINT64_MAX;
    r->stamped_dev = NULL;
    image_create(r->path, RIMG, RSEED1);
    r->bc = xbcache(16u << 20, 60000, 50);
    r->dev = xopen(r->bc, r->path, RBS, O_RDWR);
    r->dev2 = NULL;
    if (two_devices) {
        image_create(r->path2, RIMG, RSEED2);
        r->dev2 = xopen(r->bc, r->path2, RBS, O_RDWR);
    }
    for (uint64_t i = 0; i < RNP; i++)
        race_touch(r->dev, i * 4 + (i & 3));
    for (uint64_t i = 0; i < RNP; i++)
        if (i % 4 != 0)
            CHECK(race_drop_ring(r->bc, r->dev, i) == 4, "could not drop ring %llu",
                  (unsigned long long)i);
    struct slab_cache *s = slab_cache_find("buffer_head");
    CHECK(s, "no buffer_head cache");
    struct slab_cache_stats st0, st1;
    slab_cache_get_stats(s, &st0);
    struct bh_defrag_counters c0, c1;
    bh_defrag_get_counters(&c0);

    struct bh_defrag_test_hooks hk = {
        .after_read_page = race_after_read, .kick_page = race_kick, .arg = r};
    if (naive)
        CHECK(naive_defrag_install(s, &hk) == 0, "could not install the naive get/kick");
    else
        bh_defrag_set_test_hooks(&hk);
    long rel = slab_cache_defrag(s, 100);
    if (naive)
        CHECK(bh_defrag_register(s) == 0, "could not restore the real get/kick");
    else
        bh_defrag_set_test_hooks(NULL);

    slab_cache_get_stats(s, &st1);
    bh_defrag_get_counters(&c1);
    printf("[%s%s] defrag returned %ld; slabs scanned %llu, freed %llu; get looked at %d bhs; "
           "kicks %d, wrong-page kicks %d; stale skips %llu, released rings %llu\n",
           r->name, naive ? ", naive" : "", rel,
           (unsigned long long)(st1.defrag_slabs_scanned - st0.defrag_slabs_scanned),
           (unsigned long long)(st1.defrag_slabs_freed - st0.defrag_slabs_freed), r->nrec,
           r->kicks, r->wrong,
           (unsigned long long)(c1.pages_skipped_stale - c0.pages_skipped_stale),
           (unsigned long long)(c1.pages_released - c0.pages_released));
    CHECK(r->fired, "[%s] the race hook never fired: no sparse slab was defragmented", r->name);
    CHECK(slab_cache_validate(s) == 0, "[%s] buffer_head cache inconsistent", r->name);
    CHECK(bcache_validate(r->bc) == 0, "[%s] bcache inconsistent", r->name);
    if (!naive) {
        CHECK(c1.pages_skipped_stale > c0.pages_skipped_stale || c1.bh_skipped_freed >
              c0.bh_skipped_freed, "[%s] get did not notice the stale buffer head", r->name);
        CHECK(c1.pages_released > c0.pages_released, "[%s] the pass released no ring", r->name);
    }

    race_verify(r, r->dev, r->path, RSEED1, RNP + 16);
    if (r->dev2)
        race_verify(r, r->dev2, r->path2, RSEED2, 16);
    CHECK(bcache_destroy(r->bc) == 0, "bcache_destroy failed");
    image_remove(r->path);
    if (two_devices)
        image_remove(r->path2);
    return r->wrong;
}

static int run_race(struct race *r, int two_devices)
{
    int real = race_run_once(r, 0, two_devices);
    CHECK(real == 0, "[%s] the real get/kick acted on %d wrong page(s)", r->name, real);
    int naive = race_run_once(r, 1, two_devices);
    CHECK(naive > 0, "[%s] the naive logic was NOT caught: the test cannot see the race",
          r->name);
    printf("[%s] real: no wrong-page access; naive: %d wrong-page kick(s) caught\n", r->name,
           naive);
    return 0;
}

#endif
