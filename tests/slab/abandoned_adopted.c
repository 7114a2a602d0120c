/*
 * abandoned_adopted: the partial slabs of a thread that exited are adopted by
 * whoever allocates next: no new slab is created while they have room, and
 * every object handed out lies in one of them.
 *
 * Thread T1 allocates 8 slabs' worth of 128 B objects, frees half of them at
 * random (seeded: argv[1] or $SLABDEFRAG_SEED; printed on failure) and exits.
 * Thread T2 then allocates exactly as many objects as T1 freed: the cache's
 * slab count must stay 8 and each object must lie in one of T1's slabs.  One
 * more allocation after that needs a new slab (the abandoned ones are full
 * again).  The main thread never allocates from the cache.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "slabtest.h"

#define OBJ_SIZE 128
#define SLABS 8

static struct slab_cache *cache;
static uint64_t seed;
static size_t per, n, nfreed;
static void **objs; /* T1's objects; the freed ones set to NULL */
static struct slab_set abandoned;

static void *t1(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        objs[i] = slab_alloc(cache);
        FAIL_IF(objs[i] == NULL, "slab_alloc: %s", strerror(errno));
        memset(objs[i], 0x3c, OBJ_SIZE);
    }
    slab_set_build(&abandoned, objs, n, cache_stats(cache).slab_size);
    FAIL_IF(abandoned.n != SLABS, "T1's objects lie in %zu slabs, want %d", abandoned.n, SLABS);
    /* Free a random half (partial Fisher-Yates over the indices). */
    size_t *idx = malloc(n * sizeof *idx);
    FAIL_IF(idx == NULL, "malloc");
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    uint64_t rng = seed;
    nfreed = n / 2;
    for (size_t i = 0; i < nfreed; i++) {
        size_t j = i + (size_t)(xorshift64(&rng) % (n - i));
        size_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        slab_free(cache, objs[idx[i]]);
        objs[idx[i]] = NULL;
    }
    free(idx);
    return NULL; /* exit: its heap is flushed, the slabs abandoned */
}

static void *t2(void *arg)
{
    (void)arg;
    void **got = malloc((nfreed + 1) * sizeof *got);
    FAIL_IF(got == NULL, "malloc");
    for (size_t i = 0; i < nfreed; i++) {
        got[i] = slab_alloc(cache);
        FAIL_IF(got[i] == NULL, "slab_alloc: %s", strerror(errno));
        FAIL_IF(!slab_set_contains(&abandoned, got[i]),
                "allocation %zu of %zu returned %p, outside the %d abandoned slabs", i, nfreed,
                got[i], SLABS);
        struct slab_cache_stats st = cache_stats(cache);
        FAIL_IF(st.slabs != SLABS, "allocation %zu of %zu: %llu slabs, want %d (no new slab "
                "while the abandoned ones have room)", i, nfreed, (unsigned long long)st.slabs,
                SLABS);
    }
    got[nfreed] = slab_alloc(cache);
    FAIL_IF(got[nfreed] == NULL, "slab_alloc: %s", strerror(errno));
    FAIL_IF(slab_set_contains(&abandoned, got[nfreed]),
            "%p: the abandoned slabs had more room than T1 freed", got[nfreed]);
    for (size_t i = 0; i <= nfreed; i++)
        slab_free(cache, got[i]);
    free(got);
    return NULL;
}

int main(int argc, char **argv)
{
    seed = test_seed(argc, argv, 1, 0xadab7edull);
    snprintf(fail_context, sizeof fail_context, "abandoned_adopted (seed %#llx)",
             (unsigned long long)seed);
    cache = slab_cache_create("abandoned", OBJ_SIZE, 0, 0, NULL);
    CHECK(cache != NULL, "create: %s", strerror(errno));
    per = cache_stats(cache).objects_per_slab;
    n = SLABS * per;
    objs = calloc(n, sizeof *objs);
    CHECK(objs != NULL, "calloc");

    pthread_t th;
    CHECK(pthread_create(&th, NULL, t1, NULL) == 0, "pthread_create");
    CHECK(pthread_join(th, NULL) == 0, "pthread_join");
    CHECK(pthread_create(&th, NULL, t2, NULL) == 0, "pthread_create");
    CHECK(pthread_join(th, NULL) == 0, "pthread_join");

    for (size_t i = 0; i < n; i++)
        slab_free(cache, objs[i]); /* NULL for the freed ones */
    struct slab_cache_stats st = cache_stats(cache);
    FAIL_IF(st.objects_active != 0, "%llu objects still active",
            (unsigned long long)st.objects_active);
    FAIL_IF(slab_cache_validate(cache) != 0, "validate");
    slab_set_free(&abandoned);
    slab_cache_destroy(cache);
    free(objs);
    printf("abandoned_adopted: ok (seed %#llx, %zu objects per slab, %zu reused)\n",
           (unsigned long long)seed, per, nfreed);
    return 0;
}
