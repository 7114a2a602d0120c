/*
 * memory_returned_idle_owner: slabs emptied by frees from other threads go back
 * to the OS although the live thread that owns them never calls the allocator
 * again: the purge thread finds its heap idle, flushes it to the cache, and
 * hands back the empty slabs (decay, default delay).
 *
 * The main thread fills 16 slabs of 1 KiB objects.  Thread A frees one object
 * of each of the first 12 slabs, taking them over as a consumer thread does,
 * then waits without touching the cache.  Thread B frees every other object of
 * those 12 slabs and exits.  While A idles, the 12 emptied slabs must stop being
 * resident (mincore) and bytes_mapped must fall to the 4 slabs that still hold
 * objects.  (The wait is bounded by a generous deadline only so that a broken
 * purge fails instead of hanging.)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>

#include "slabtest.h"

#define SLABS 16
#define EMPTIED 12
#define DEADLINE_S 30

static struct slab_cache *cache;
static void **objs;
static size_t per;
static void *thread_a(void *arg)
{
    (void)arg;
    for (size_t k = 0; k < EMPTIED; k++)
        slab_free(cache, objs[k * per]);
    stage_set(1);
    stage_wait(2); /* idle until main has looked */
    return NULL;
}

static void *thread_b(void *arg)
{
    (void)arg;
    for (size_t k = 0; k < EMPTIED; k++)
        for (size_t i = 1; i < per; i++)
            slab_free(cache, objs[k * per + i]);
    return NULL;
}

static size_t emptied_resident(size_t S)
{
    size_t r = 0;
    for (size_t k = 0; k < EMPTIED; k++)
        r += resident_bytes((void *)slab_base(objs[k * per], S), S);
    return r;
}

int main(void)
{
    cache = slab_cache_create("idle-owner", 1024, 0, 0, NULL);
    CHECK(cache != NULL, "create: %s", strerror(errno));
    struct slab_cache_stats st = cache_stats(cache);
    per = st.objects_per_slab;
    size_t S = st.slab_size, n = SLABS * per;
    objs = calloc(n, sizeof *objs);
    CHECK(objs != NULL, "calloc");
    for (size_t i = 0; i < n; i++) {
        objs[i] = slab_alloc(cache);
        CHECK(objs[i] != NULL, "slab_alloc: %s", strerror(errno));
        memset(objs[i], 0x33, 1024);
    }
    slab_cache_shrink(cache); /* main gives its (full) active slab back: it holds none */
    qsort(objs, n, sizeof *objs, slabtest_cmp_uptr);
    for (size_t k = 0; k < SLABS; k++)
        CHECK(slab_base(objs[k * per], S) == slab_base(objs[k * per + per - 1], S),
              "objects not grouped by slab");

    pthread_t a, b;
    CHECK(pthread_create(&a, NULL, thread_a, NULL) == 0, "pthread_create");
    stage_wait(1);
    CHECK(pthread_create(&b, NULL, thread_b, NULL) == 0, "pthread_create");
    CHECK(pthread_join(b, NULL) == 0, "pthread_join");

    /* A is alive and idle: its emptied slabs must go back without its help. */
    size_t resident = emptied_resident(S);
    for (int i = 0; i < DEADLINE_S * 10; i++) {
        st = cache_stats(cache);
        resident = emptied_resident(S);
        if (resident == 0 && st.bytes_mapped <= (uint64_t)(SLABS - EMPTIED) * S)
            break;
        usleep(100 * 1000);
    }
    if (resident || st.bytes_mapped > (uint64_t)(SLABS - EMPTIED) * S)
        print_stats("while the taking-over thread is idle", &st);
    CHECK(resident == 0, "%zu bytes of the %d emptied slabs still resident %d s after the "
          "thread that took them over went idle", resident, EMPTIED, DEADLINE_S);
    CHECK(st.bytes_mapped <= (uint64_t)(SLABS - EMPTIED) * S,
          "bytes_mapped %llu, expected at most the %d slabs still in use",
          (unsigned long long)st.bytes_mapped, SLABS - EMPTIED);
    stage_set(2);
    CHECK(pthread_join(a, NULL) == 0, "pthread_join");
    for (size_t i = EMPTIED * per; i < n; i++)
        slab_free(cache, objs[i]);
    slab_cache_shrink(cache);
    st = cache_stats(cache);
    CHECK(st.objects_active == 0 && st.slabs == 0 && st.bytes_mapped == 0,
          "at the end: active %llu slabs %llu", (unsigned long long)st.objects_active,
          (unsigned long long)st.slabs);
    CHECK(slab_cache_validate(cache) == 0, "validate");
    slab_cache_destroy(cache);
    free(objs);
    printf("memory_returned_idle_owner: ok\n");
    return 0;
}
