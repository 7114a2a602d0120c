/*
 * memory_returned_idle_owner: a slab emptied by frees from other threads is
 * handed back to the OS at once even when the thread that last took it over
 * (by freeing one of its objects) is still alive and idle.
 *
 * The main thread fills 12 slabs of 1 KiB objects.  Thread A frees one object
 * of each of the first 8 slabs (taking them over, as a consumer thread does)
 * and then waits without touching the cache again.  Thread B frees every other
 * object of those 8 slabs and exits.  The 8 slabs are now empty: beyond the
 * reserve of 2 they must be gone while A still lives — bytes_mapped covers only
 * the 4 slabs that still hold objects and the reserve (no thread has an active
 * slab: main gave its own back with slab_cache_shrink()), and mincore() finds at most 2 of the 8 slabs resident.  (A thread's
 * active slab is the only memory the contract lets a thread keep.)  Then A
 * exits and everything is checked again.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "slabtest.h"

#define SLABS 12
#define EMPTIED 8

static struct slab_cache *cache;
static void **objs;
static size_t per;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stage;

static void set_stage(int v)
{
    pthread_mutex_lock(&mu);
    stage = v;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void wait_stage(int v)
{
    pthread_mutex_lock(&mu);
    while (stage < v)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void *thread_a(void *arg)
{
    (void)arg;
    for (size_t k = 0; k < EMPTIED; k++)
        slab_free(cache, objs[k * per]);
    set_stage(1);
    wait_stage(2); /* idle until main has looked */
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

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    cache = slab_cache_create("idle-owner", 1024, 0, 0, NULL);
    CHECK(cache != NULL, "create: %s", strerror(errno));
    struct slab_cache_stats st = stats(cache);
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
    qsort(objs, n, sizeof *objs, cmp_ptr);
    for (size_t k = 0; k < SLABS; k++)
        CHECK(slab_base(objs[k * per], S) == slab_base(objs[k * per + per - 1], S),
              "objects not grouped by slab");

    pthread_t a, b;
    CHECK(pthread_create(&a, NULL, thread_a, NULL) == 0, "pthread_create");
    wait_stage(1);
    CHECK(pthread_create(&b, NULL, thread_b, NULL) == 0, "pthread_create");
    CHECK(pthread_join(b, NULL) == 0, "pthread_join");

    /* A is alive and idle; the 8 emptied slabs are no thread's active slab. */
    st = stats(cache);
    size_t resident = 0;
    for (size_t k = 0; k < EMPTIED; k++)
        resident += resident_bytes((void *)slab_base(objs[k * per], S), S);
    uint64_t allowed = (uint64_t)(SLABS - EMPTIED + 2) * S;
    if (st.bytes_mapped > allowed || resident > 2 * S)
        print_stats("while the taking-over thread is idle", &st);
    CHECK(resident <= 2 * S,
          "%zu bytes of the %d emptied slabs still resident while the thread that took "
          "them over idles (allowed: the reserve, %zu)",
          resident, EMPTIED, 2 * S);
    CHECK(st.bytes_mapped <= allowed,
          "bytes_mapped %llu, allowed %llu (the 4 slabs in use + the reserve of 2)",
          (unsigned long long)st.bytes_mapped, (unsigned long long)allowed);

    set_stage(2);
    CHECK(pthread_join(a, NULL) == 0, "pthread_join");
    for (size_t i = EMPTIED * per; i < n; i++)
        slab_free(cache, objs[i]);
    slab_cache_shrink(cache);
    st = stats(cache);
    CHECK(st.objects_active == 0 && st.slabs == 0 && st.bytes_mapped == 0,
          "at the end: active %llu slabs %llu", (unsigned long long)st.objects_active,
          (unsigned long long)st.slabs);
    CHECK(slab_cache_validate(cache) == 0, "validate");
    slab_cache_destroy(cache);
    free(objs);
    printf("memory_returned_idle_owner: ok\n");
    return 0;
}
