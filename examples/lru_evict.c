/*
 * lru_evict: the evict protocol on an LRU cache of recomputable items —
 * fragmentation, defragmentation by get/kick, memory returned, data verified.
 *
 * 1. What it builds.  200k items of 144 B (28 MiB of slabs); the user pins 1%
 *    of them (holds references, as a request in flight would); then a random
 *    90% of the rest is dropped (a working set that moved on), leaving nearly
 *    every slab partial.
 * 2. Defragmentation.  slab_cache_defrag(s, 30) while a second thread keeps
 *    looking items up (taking and dropping references, recomputing misses):
 *    get pins what is alive (get-unless-zero), kick drops the items nobody but
 *    the table references; pinned items stay.  See lru_cache.c for the locks
 *    and references that make this safe.
 * 3. What is checked.  Every pinned item is still cached with its value; every
 *    cached item's value is lru_compute(key) and the hash and the LRU list
 *    agree (lru_check); the cache's objects_active equals the items alive
 *    (cached + pinned-only); slabs and RSS fall; items kicked out are
 *    recomputed correctly on the next lru_get.  Exit 0 on success.
 */
#define _GNU_SOURCE
#include "lru_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXAMPLE_NAME "lru_evict"
#include "example_util.h"

#define NITEMS 200000
#define PIN_EVERY 100

static struct lru_cache lru;
static struct lru_item *pinned[NITEMS / PIN_EVERY + 1];
static _Atomic int stop;

static void check_value(const struct lru_item *it, uint64_t key)
{
    uint64_t v[LRU_VALUE_WORDS];
    lru_compute(key, v);
    if (it->key != key || memcmp(v, it->value, sizeof v) != 0)
        die("an item's value is wrong");
}

static void *user(void *arg)
{
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    while (!atomic_load(&stop)) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        uint64_t key = rng % NITEMS;
        struct lru_item *it = lru_get(&lru, key);
        if (!it)
            die("lru_get failed");
        check_value(it, key);
        lru_put(&lru, it);
        if ((rng >> 32) % 2)
            lru_drop(&lru, key); /* keep the cache sparse while defrag runs */
    }
    return NULL;
}

int main(void)
{
    if (lru_init(&lru, "lru_item", 2 * NITEMS) != 0)
        die("init");
    for (uint64_t k = 0; k < NITEMS; k++) {
        struct lru_item *it = lru_get(&lru, k);
        if (!it)
            die("lru_get");
        if (k % PIN_EVERY == 0)
            pinned[k / PIN_EVERY] = it; /* keep the reference */
        else
            lru_put(&lru, it);
    }
    uint64_t rng = 0x2545f4914f6cdd1dull;
    for (uint64_t k = 0; k < NITEMS; k++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        if (k % PIN_EVERY != 0 && rng % 10 != 0)
            lru_drop(&lru, k);
    }
    if (lru_check(&lru) < 0)
        die("inconsistent before defrag");
    slab_cache_defrag(lru.cache, 0); /* hand back this thread's slabs; kicks nothing */
    struct slab_cache_stats before = cache_stats(lru.cache);
    size_t rss_before = proc_rss_bytes();

    pthread_t t;
    if (pthread_create(&t, NULL, user, NULL) != 0)
        die("pthread_create");
    long released = slab_cache_defrag(lru.cache, 30);
    atomic_store(&stop, 1);
    pthread_join(t, NULL);

    long cached = lru_check(&lru);
    if (cached < 0)
        die("inconsistent after defrag");
    for (size_t i = 0; i < NITEMS / PIN_EVERY; i++) {
        check_value(pinned[i], i * PIN_EVERY);
        if (!pinned[i]->in_table)
            die("a referenced item was kicked out");
    }
    struct slab_cache_stats after = cache_stats(lru.cache);
    size_t rss_after = proc_rss_bytes();
    printf("lru_evict: %ld items cached (%d pinned); slabs %llu -> %llu, bytes_mapped %.1f -> "
           "%.1f MiB, RSS %.1f -> %.1f MiB; defrag returned %.1f MiB\n"
           "  kick dropped %llu, left %llu in use; get saw %llu being freed\n",
           cached, NITEMS / PIN_EVERY, (unsigned long long)before.slabs,
           (unsigned long long)after.slabs, before.bytes_mapped / 1048576.0,
           after.bytes_mapped / 1048576.0, rss_before / 1048576.0, rss_after / 1048576.0,
           released / 1048576.0, (unsigned long long)atomic_load(&lru.kicked),
           (unsigned long long)atomic_load(&lru.kick_busy),
           (unsigned long long)atomic_load(&lru.get_nulled));
    if (after.objects_active != (uint64_t)cached)
        die("objects_active differs from the items alive");
    if (atomic_load(&lru.kicked) == 0 || after.bytes_mapped * 2 > before.bytes_mapped)
        die("defragmentation returned less than half of the memory");
    for (uint64_t k = 1; k < NITEMS; k += 97) { /* kicked items come back, recomputed */
        struct lru_item *it = lru_get(&lru, k);
        check_value(it, k);
        lru_put(&lru, it);
    }
    for (size_t i = 0; i < NITEMS / PIN_EVERY; i++)
        lru_put(&lru, pinned[i]);
    lru_destroy(&lru);
    return 0;
}
