/*
 * memory_returned_idle_owner: slabs emptied by frees from other threads are
 * handed back to the OS at once, except the few a live thread owns — the
 * contract (slab.h, "Triggers") lets a live thread keep its active slab and up
 * to HEAP_PARTIAL_MAX (8) partial slabs per cache; they go back when it next
 * needs a slab, calls slab_cache_shrink(), or exits.
 *
 * The main thread fills 16 slabs of 1 KiB objects.  Thread A frees one object
 * of each of the first 12 slabs, taking them over as a consumer thread does:
 * it may keep 8, the other 4 overflow to the cache.  A then waits without
 * touching the cache.  Thread B frees every other object of those 12 slabs and
 * exits.  While A idles, mincore() must find at most A's 8 plus the reserve of 2
 * of the 12 emptied slabs resident, and bytes_mapped must cover no more than the
 * 4 slabs that still hold objects + 8 + 2.  A then calls slab_cache_shrink()
 * (its own slabs go back) and everything but the reserve must be gone; then A
 * exits and the cache is emptied completely.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "slabtest.h"

#define SLABS 16
#define EMPTIED 12
#define OWNER_KEEPS 8 /* HEAP_PARTIAL_MAX */

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
    slab_cache_shrink(cache); /* gives its partial slabs back */
    set_stage(3);
    wait_stage(4);
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

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
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
    qsort(objs, n, sizeof *objs, cmp_ptr);
    for (size_t k = 0; k < SLABS; k++)
        CHECK(slab_base(objs[k * per], S) == slab_base(objs[k * per + per - 1], S),
              "objects not grouped by slab");

    pthread_t a, b;
    CHECK(pthread_create(&a, NULL, thread_a, NULL) == 0, "pthread_create");
    wait_stage(1);
    CHECK(pthread_create(&b, NULL, thread_b, NULL) == 0, "pthread_create");
    CHECK(pthread_join(b, NULL) == 0, "pthread_join");

    /* A is alive and idle: it may keep its 8 partial slabs, nothing more. */
    st = cache_stats(cache);
    size_t resident = emptied_resident(S);
    uint64_t allowed = (uint64_t)(SLABS - EMPTIED + OWNER_KEEPS + 2) * S;
    if (st.bytes_mapped > allowed || resident > (OWNER_KEEPS + 2) * S)
        print_stats("while the taking-over thread is idle", &st);
    CHECK(resident <= (OWNER_KEEPS + 2) * S,
          "%zu bytes of the %d emptied slabs still resident while the thread that took "
          "them over idles (allowed: its %d partial slabs + the reserve, %zu)",
          resident, EMPTIED, OWNER_KEEPS, (OWNER_KEEPS + 2) * S);
    CHECK(st.bytes_mapped <= allowed,
          "bytes_mapped %llu, allowed %llu (4 slabs in use + 8 owned by A + the reserve of 2)",
          (unsigned long long)st.bytes_mapped, (unsigned long long)allowed);

    /* A gives its slabs back (shrink from the owning thread): only the reserve
     * of the emptied slabs may stay. */
    set_stage(2);
    wait_stage(3);
    st = cache_stats(cache);
    resident = emptied_resident(S);
    CHECK(resident <= 2 * S, "%zu bytes of the emptied slabs resident after the owner's "
          "shrink (allowed: the reserve, %zu)", resident, 2 * S);
    CHECK(st.bytes_mapped <= (uint64_t)(SLABS - EMPTIED + 2) * S,
          "bytes_mapped %llu after the owner's shrink", (unsigned long long)st.bytes_mapped);
    set_stage(4);
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
