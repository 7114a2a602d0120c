/*
 * race_create_lost: two threads miss the same uncached block at once; the one
 * whose new page loses the race for the index throws its page away — but a
 * defrag get may have pinned that page through one of its ring's buffer heads
 * (they are live objects of the buffer_head cache from the moment the ring is
 * built).  The loser must wait for that pin, not erase it.
 * TEST_LIBRARY: slabdefrag_testing
 *
 * The interleaving, forced with the testing build's hooks:
 *   L  bh_get(block 5) misses, builds a page with its ring (refcount 2: the
 *      index's and its own) and is parked by bh.c's before_insert hook.
 *   M  bh_get(block 5) misses too (L's page is not in the index yet), inserts
 *      its own page: M wins.  M then runs the product's defrag get on a buffer
 *      head of L's ring, as a defrag pass would: it pins L's page (refcount 3).
 *      M lets L go; L's insert fails and it disposes of its page.  M waits
 *      until L is done with the refcount or blocked on it (at most 2 s: with
 *      the fix L waits for the pin), then runs kick, which drops the pin.
 * With the bug (the loser stored refcount 0 over the pin) kick's page_put
 * found refcount 0 and aborted ("the cache's own reference was dropped"); the
 * rare abort of that text in bufcache/concurrent_rw and bhdefrag/stress was
 * this.  After it: L's buffer head is M's page's, both read the block's
 * content, the cache validates, and nothing is left pinned.
 */
#include "../bufcache/bctest.h"

#include "bufcache/bh_defrag.h"
#include "bufcache/internal.h"

#include <pthread.h>
#include <sched.h>

#define BS 1024u
#define BLOCK 5u

static struct bdev *dev;
static struct bc_page *lost;
static atomic_int parked, go;
static struct buffer_head *l_bh;

static void before_insert(struct bc_page *p, void *arg)
{
    (void)arg;
    if (atomic_load(&parked))
        return; /* only the first page: L's */
    lost = p;
    atomic_store(&parked, 1);
    while (!atomic_load(&go))
        sched_yield();
}

static const struct bh_test_hooks hooks = { .before_insert = before_insert };

static void *loser(void *arg)
{
    (void)arg;
    l_bh = bh_read(dev, BLOCK);
    return NULL;
}

int main(void)
{
    char path[256];
    img_create(path, 64, BS);
    struct bcache *bc = xbcache(16u << 20, 0, 0);
    dev = xopen(bc, path, BS, 0);

    bh_set_test_hooks(&hooks);
    pthread_t l;
    CHECK(pthread_create(&l, NULL, loser, NULL) == 0, "thread");
    while (!atomic_load(&parked))
        sched_yield();
    bh_set_test_hooks(NULL);

    struct buffer_head *m_bh = bh_read(dev, BLOCK);
    CHECK(m_bh, "bh_read: %s", strerror(errno));
    struct bc_page *won = bh_page(bh_impl(m_bh));
    CHECK(won != lost, "M found L's page: L was not parked before its insert");

    /* The product's get on a buffer head of L's ring, as a pass would call it. */
    struct slab_cache *bh_cache = bc->bh_cache;
    void *v[1] = { page_buffers(bc, lost) };
    CHECK(v[0], "L's page has no ring");
    void *priv = bh_defrag_get(bh_cache, 1, v);
    CHECK(v[0] == lost, "get did not pin L's page");
    CHECK(atomic_load(&lost->refcount) == 3, "L's page refcount %u, expected 2 + the pin",
          atomic_load(&lost->refcount));

    atomic_store(&go, 1);
    double until = now_seconds() + 2.0; /* no assertion on time: a window */
    while (atomic_load(&lost->refcount) == 3 && now_seconds() < until)
        usleep(1000);
    bh_defrag_kick(bh_cache, 1, v, priv);
    CHECK(pthread_join(l, NULL) == 0, "join");

    CHECK(l_bh, "L's bh_read failed: %s", strerror(errno));
    CHECK(bh_page(bh_impl(l_bh)) == won, "L's buffer head is not on the winning page");
    CHECK(check_block(l_bh->b_data, BS, BLOCK) == 0 && check_block(m_bh->b_data, BS, BLOCK) == 0,
          "block content");
    bh_put(l_bh);
    bh_put(m_bh);
    CHECK(atomic_load(&won->refcount) == 1, "winning page refcount %u: a pin leaked",
          atomic_load(&won->refcount));
    CHECK(bcache_validate(bc) == 0, "bcache_validate");
    struct bcache_stats st = stats(bc);
    CHECK(st.cached_pages == 1, "%llu cached pages, expected 1",
          (unsigned long long)st.cached_pages);
    CHECK(bdev_close(dev) == 0, "close");
    bcache_destroy(bc);
    img_remove(path);
    printf("race_create_lost: ok (the losing page waited for get's pin)\n");
    return 0;
}
