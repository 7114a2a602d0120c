/*
 * thread_exit_after_destroy: a thread that used a cache, and still holds that
 * cache's active slab, may outlive the cache: destroying the cache from another
 * thread (once the user has stopped using it) and later ending the thread must
 * not touch the destroyed cache, and a new cache created in its place (perhaps
 * at the same address) must not be fed the old cache's slab.
 *
 * A worker allocates and frees objects of cache A, then waits.  Main destroys A
 * (silently: nothing is live), creates B with the same geometry, and lets the
 * worker allocate from B, tag the objects, and exit.  B must validate, its
 * objects must lie in B's slabs (freeing them to B works), counters must be
 * exact.  Run under ASan this also catches any use of A's freed memory.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "slabtest.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stage;
static struct slab_cache *cache_a, *cache_b;
static void *b_objs[50];

static void wait_stage(int want)
{
    pthread_mutex_lock(&mu);
    while (stage < want)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void set_stage(int v)
{
    pthread_mutex_lock(&mu);
    stage = v;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void *worker(void *arg)
{
    (void)arg;
    void *objs[100];
    for (int i = 0; i < 100; i++) {
        objs[i] = slab_alloc(cache_a);
        if (!objs[i])
            return (void *)1;
    }
    for (int i = 0; i < 100; i++)
        slab_free(cache_a, objs[i]);
    set_stage(1);
    wait_stage(2); /* A destroyed, B created */
    for (int i = 0; i < 50; i++) {
        b_objs[i] = slab_alloc(cache_b);
        if (!b_objs[i])
            return (void *)2;
        memset(b_objs[i], 0xb0 + (i & 7), 64);
    }
    return NULL;
}

int main(void)
{
    for (int round = 0; round < 5; round++) {
        stage = 0;
        cache_a = slab_cache_create("destroyed-a", 64, 0, 0, NULL);
        CHECK(cache_a != NULL, "create: %s", strerror(errno));
        pthread_t t;
        CHECK(pthread_create(&t, NULL, worker, NULL) == 0, "pthread_create");
        wait_stage(1);

        struct stderr_capture cap;
        stderr_capture_begin(&cap);
        slab_cache_destroy(cache_a);
        char *out = stderr_capture_end(&cap);
        CHECK(strstr(out, "still allocated") == NULL,
              "destroying a cache whose objects were all freed (one thread still holds its "
              "active slab) reported: %s",
              out);
        free(out);

        cache_b = slab_cache_create("after-b", 64, 0, 0, NULL);
        CHECK(cache_b != NULL, "create: %s", strerror(errno));
        set_stage(2);
        void *ret;
        CHECK(pthread_join(t, &ret) == 0, "pthread_join");
        CHECK(ret == NULL, "worker failed (%p)", ret);

        struct slab_cache_stats st = cache_stats(cache_b);
        CHECK(st.allocs == 50 && st.objects_active == 50 && st.frees == 0,
              "round %d: cache B allocs %llu active %llu frees %llu, want 50 50 0", round,
              (unsigned long long)st.allocs, (unsigned long long)st.objects_active,
              (unsigned long long)st.frees);
        CHECK(slab_cache_validate(cache_b) == 0, "round %d: validate B", round);
        for (int i = 0; i < 50; i++) {
            const unsigned char *p = b_objs[i];
            for (int k = 0; k < 64; k++)
                CHECK(p[k] == 0xb0 + (i & 7), "round %d: B object %d corrupted", round, i);
            slab_free(cache_b, b_objs[i]);
        }
        slab_cache_shrink(cache_b);
        st = cache_stats(cache_b);
        CHECK(st.slabs == 0 && st.objects_active == 0 && st.frees == 50,
              "round %d: B after freeing all: slabs %llu active %llu", round,
              (unsigned long long)st.slabs, (unsigned long long)st.objects_active);
        slab_cache_destroy(cache_b);
    }
    printf("thread_exit_after_destroy: ok\n");
    return 0;
}
