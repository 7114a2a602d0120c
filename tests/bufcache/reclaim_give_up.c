/*
 * reclaim_give_up: an allocation for the cache fails with ENOMEM only when
 * everything is pinned by users — not because of where other threads happen to
 * be.  Two interleavings that used to fail, forced deterministically (one
 * thread, internal calls and a reclaim hook), plus the case that must fail:
 *
 * 1. Warm frames.  Eviction leaves a page's frame warm (charged, for the next
 *    miss).  A ring rebuilt for a cached page needs buffer-head memory, not a
 *    frame: with the headroom gone and every other page pinned, the rebuild
 *    used to evict (nothing evictable) and fail, while warm frames sat there.
 *    Now they are handed back first: bh_read succeeds.
 * 2. A transient pin.  A page referenced by a thread that holds none of its
 *    buffer heads (between its lookup and bh, as in bh_read) counted as a
 *    user's pin, so reclaim gave up at once: whether bh_read failed depended on
 *    when the sweep ran (make stress: bufcache/threads, bh_read ENOMEM).  Now
 *    the sweep retries; the hook drops the pin after the fourth fruitless sweep
 *    (the old code gave up after three), and the next sweep evicts the page.
 * 3. Every page held through a buffer head by the caller: ENOMEM, at once.
 * TEST_LIBRARY: slabdefrag_testing (the reclaim hook).
 */
#include "bctest.h"

#include "bufcache/internal.h"

#define BS 1024u
#define PAGES 64u

static char img[256];
static struct bcache *bc;
static struct bdev *dev;
static struct buffer_head *held[PAGES];
static size_t eaten;

static void setup(void)
{
    bc = xbcache(128 << 10, 3000, 50);
    dev = xopen(bc, img, BS, O_RDWR);
    for (uint64_t pg = 0; pg < PAGES; pg++) { /* fill; evictions make warm frames */
        struct buffer_head *bh = bh_read(dev, pg * 4);
        CHECK(bh != NULL, "fill bh_read: %s", strerror(errno));
        bh_put(bh);
    }
    CHECK(stats(bc).evictions > 0, "the cache never filled");
}

/* Pin every cached page through a buffer head, except page `skip`. */
static unsigned pin_all_but(uint64_t skip)
{
    unsigned n = 0;
    for (uint64_t pg = 0; pg < PAGES; pg++) {
        struct bc_page *p = page_lookup(bc, dev->map, pg);
        if (!p)
            continue;
        if (pg != skip) {
            CHECK((held[pg] = bh_read(dev, pg * 4)) != NULL, "pin bh_read");
            n++;
        }
        page_put(p);
    }
    return n;
}

/* Charge what is left under the limit, so that the next charge fails. */
static void eat_headroom(void)
{
    int64_t left = (int64_t)bc->memory_limit - atomic_load(&bc->mem_used);
    if (left > 0) {
        CHECK(mem_try_charge(bc, (size_t)left), "eat headroom");
        eaten += (size_t)left;
    }
}

static void teardown(void)
{
    mem_uncharge(bc, eaten);
    eaten = 0;
    for (unsigned i = 0; i < PAGES; i++) {
        bh_put(held[i]);
        held[i] = NULL;
    }
    CHECK(bcache_validate(bc) == 0, "validate");
    CHECK(bdev_close(dev) == 0, "close");
    CHECK(bcache_destroy(bc) == 0, "destroy");
}

static uint32_t warm_frames(void)
{
    pthread_mutex_lock(&bc->free_lock);
    uint32_t n = bc->nr_free_warm;
    pthread_mutex_unlock(&bc->free_lock);
    return n;
}

static void case_warm_frames(void)
{
    setup();
    CHECK(reclaim_some(bc) > 0, "nothing to evict");
    CHECK(warm_frames() > 0, "no warm frame");
    uint64_t x = PAGES;
    for (uint64_t pg = 0; pg < PAGES && x == PAGES; pg++) {
        struct bc_page *p = page_lookup(bc, dev->map, pg);
        if (!p)
            continue;
        page_lock(p);
        if (page_release_buffers(p, 1) > 0)
            x = pg; /* cached, without its ring */
        page_unlock(p);
        page_put(p);
    }
    CHECK(x < PAGES, "no page whose ring could be dropped");
    pin_all_but(x);
    eat_headroom();
    struct buffer_head *bh = bh_read(dev, x * 4 + 1);
    CHECK(bh != NULL, "case 1: ring rebuild failed with warm frames left: %s", strerror(errno));
    bh_put(bh);
    teardown();
}

/* A page of the image that is not cached (PAGES if all are). */
static uint64_t uncached_page(void)
{
    for (uint64_t pg = 0; pg < PAGES; pg++) {
        struct bc_page *p = page_lookup(bc, dev->map, pg);
        if (!p)
            return pg;
        page_put(p);
    }
    return PAGES;
}

static struct bc_page *transient;
static int hook_calls;

static void drop_transient(struct bcache *c, unsigned attempt, void *arg)
{
    (void)c, (void)attempt, (void)arg;
    /* Held over 4 sweeps: longer than the three back-to-back sweeps the
     * allocation used to make, as a thread preempted inside bh_read would. */
    if (++hook_calls == 4 && transient) {
        page_put(transient); /* the other thread moves on */
        transient = NULL;
    }
}

static void case_transient_pin(void)
{
    setup();
    page_release_free_frames(bc, SIZE_MAX);
    uint64_t y = PAGES;
    for (uint64_t pg = 0; pg < PAGES && y == PAGES; pg++)
        if ((transient = page_lookup(bc, dev->map, pg)))
            y = pg; /* referenced, no buffer head held: as inside bh_read */
    CHECK(y < PAGES, "nothing cached");
    unsigned pinned = pin_all_but(y);
    uint64_t miss = uncached_page();
    CHECK(miss < PAGES, "every page cached (%u pinned)", pinned);
    eat_headroom();
    static const struct reclaim_test_hooks hooks = { drop_transient, NULL };
    reclaim_set_test_hooks(&hooks);
    struct buffer_head *bh = bh_read(dev, miss * 4);
    reclaim_set_test_hooks(NULL);
    CHECK(bh != NULL, "case 2: bh_read gave up on a transient pin: %s", strerror(errno));
    CHECK(hook_calls >= 4 && !transient, "the transient pin was never waited for");
    bh_put(bh);

    /* 3. Now every cached page is pinned through a buffer head: ENOMEM. */
    for (uint64_t pg = 0; pg < PAGES; pg++) {
        struct bc_page *p = page_lookup(bc, dev->map, pg);
        if (!p)
            continue;
        if (!held[pg])
            CHECK((held[pg] = bh_read(dev, pg * 4)) != NULL, "pin");
        page_put(p);
    }
    miss = uncached_page();
    page_release_free_frames(bc, SIZE_MAX);
    eat_headroom();
    errno = 0;
    bh = bh_read(dev, miss * 4);
    CHECK(!bh && errno == ENOMEM, "case 3: all pinned, bh_read %p errno %d", (void *)bh, errno);
    teardown();
}

int main(void)
{
    image_create(img, PAGES * 4096, 5);
    case_warm_frames();
    case_transient_pin();
    image_remove(img);
    return 0;
}
