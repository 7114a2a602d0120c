/*
 * thread_exit: when a thread exits, its active slabs go back to their caches, so
 * after pthread_join() of every user the counters are exact and
 * slab_cache_shrink() can release every empty slab.
 *
 * 1. A thread allocates 1000 objects, frees 400 of them and exits holding the
 *    rest; after the join allocs/frees/objects_active are exact without any
 *    shrink; the main thread frees the rest and a shrink leaves no slab.
 * 2. 100 short-lived threads, one after another, each allocate one object and
 *    free it: their active slabs must not pile up (at most the reserve of 2
 *    empty slabs remains, and shrink releases those).
 * 3. 8 concurrent threads use 3 caches with a seeded mix of allocs and frees,
 *    free everything and exit: each cache's counters equal the operations done,
 *    objects_active == 0, validate passes, shrink leaves slabs == 0 and
 *    bytes_mapped == 0.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "slabtest.h"

static uint64_t g_seed;

struct keep_job {
    struct slab_cache *s;
    void *kept[600];
};

static void *keep_worker(void *arg)
{
    struct keep_job *j = arg;
    void *objs[1000];
    for (int i = 0; i < 1000; i++) {
        objs[i] = slab_alloc(j->s);
        if (!objs[i])
            return (void *)1;
    }
    int k = 0;
    for (int i = 0; i < 1000; i++) {
        if (i % 5 < 2)
            slab_free(j->s, objs[i]); /* 400 */
        else
            j->kept[k++] = objs[i]; /* 600 */
    }
    return NULL;
}

static void *one_object(void *arg)
{
    struct slab_cache *s = arg;
    void *o = slab_alloc(s);
    if (!o)
        return (void *)1;
    memset(o, 1, 64);
    slab_free(s, o);
    return NULL;
}

#define NCACHE 3
#define NTHREAD 8
static struct slab_cache *caches[NCACHE];

struct mix_job {
    int id;
    uint64_t allocs[NCACHE];
};

static void *mix_worker(void *arg)
{
    struct mix_job *j = arg;
    uint64_t rng = g_seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(j->id + 1));
    enum { CAP = 512 };
    void *held[NCACHE][CAP];
    int nheld[NCACHE] = {0};
    for (int op = 0; op < 20000; op++) {
        uint64_t r = xorshift64(&rng);
        int c = (int)(r % NCACHE);
        if (nheld[c] < CAP && ((r >> 8) % 3 != 0 || nheld[c] == 0)) {
            void *o = slab_alloc(caches[c]);
            if (!o)
                return (void *)1;
            held[c][nheld[c]++] = o;
            j->allocs[c]++;
        } else {
            int i = (int)((r >> 16) % (uint64_t)nheld[c]);
            slab_free(caches[c], held[c][i]);
            held[c][i] = held[c][--nheld[c]];
        }
    }
    /* Leave with nothing allocated; an active slab per cache is still held. */
    for (int c = 0; c < NCACHE; c++)
        while (nheld[c] > 0)
            slab_free(caches[c], held[c][--nheld[c]]);
    return NULL;
}

int main(int argc, char **argv)
{
    /* This test checks the reserve rule of immediate return: decay off. */
    slab_set_purge_delay(0);
    g_seed = test_seed(argc, argv, 1, 0x7e57e417ull);

    /* 1 */
    struct slab_cache *s = slab_cache_create("texit-keep", 96, 0, 0, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    static struct keep_job kj;
    kj.s = s;
    pthread_t t;
    void *ret;
    CHECK(pthread_create(&t, NULL, keep_worker, &kj) == 0, "pthread_create");
    CHECK(pthread_join(t, &ret) == 0 && ret == NULL, "keep worker failed");
    struct slab_cache_stats st = cache_stats(s);
    if (st.allocs != 1000 || st.frees != 400 || st.objects_active != 600)
        print_stats("1: after the thread exited", &st);
    CHECK(st.allocs == 1000 && st.frees == 400 && st.objects_active == 600,
          "1: counters not exact after the only user exited");
    check_stats_consistent(&st);
    CHECK(slab_cache_validate(s) == 0, "1: validate");
    for (int i = 0; i < 600; i++)
        slab_free(s, kj.kept[i]);
    st = cache_stats(s);
    CHECK(st.frees == 1000 && st.objects_active == 0, "1: frees %llu active %llu",
          (unsigned long long)st.frees, (unsigned long long)st.objects_active);
    CHECK(st.slabs <= 2, "1: %llu slabs left after freeing all (reserve is 2)",
          (unsigned long long)st.slabs);
    slab_cache_shrink(s);
    st = cache_stats(s);
    CHECK(st.slabs == 0 && st.bytes_mapped == 0, "1: after shrink %llu slabs %llu bytes",
          (unsigned long long)st.slabs, (unsigned long long)st.bytes_mapped);
    slab_cache_destroy(s);

    /* 2 */
    s = slab_cache_create("texit-serial", 64, 0, 0, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    for (int i = 0; i < 100; i++) {
        CHECK(pthread_create(&t, NULL, one_object, s) == 0, "pthread_create");
        CHECK(pthread_join(t, &ret) == 0 && ret == NULL, "thread %d failed", i);
    }
    st = cache_stats(s);
    if (st.slabs > 2)
        print_stats("2", &st);
    CHECK(st.allocs == 100 && st.frees == 100 && st.objects_active == 0,
          "2: allocs %llu frees %llu", (unsigned long long)st.allocs,
          (unsigned long long)st.frees);
    CHECK(st.slabs <= 2 && st.slabs_empty == st.slabs,
          "2: %llu slabs after 100 threads each used and freed one object: exiting threads "
          "do not give their active slab back",
          (unsigned long long)st.slabs);
    slab_cache_shrink(s);
    st = cache_stats(s);
    CHECK(st.slabs == 0 && st.bytes_mapped == 0, "2: after shrink %llu slabs",
          (unsigned long long)st.slabs);
    slab_cache_destroy(s);

    /* 3 */
    static const size_t sizes[NCACHE] = {16, 256, 2048};
    for (int c = 0; c < NCACHE; c++) {
        char name[32];
        snprintf(name, sizeof name, "texit-mix-%zu", sizes[c]);
        caches[c] = slab_cache_create(name, sizes[c], 0, 0, NULL);
        CHECK(caches[c] != NULL, "create: %s", strerror(errno));
    }
    pthread_t th[NTHREAD];
    static struct mix_job mj[NTHREAD];
    for (int i = 0; i < NTHREAD; i++) {
        mj[i].id = i;
        CHECK(pthread_create(&th[i], NULL, mix_worker, &mj[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < NTHREAD; i++) {
        CHECK(pthread_join(th[i], &ret) == 0 && ret == NULL, "mix worker %d failed (seed %#llx)",
              i, (unsigned long long)g_seed);
    }
    for (int c = 0; c < NCACHE; c++) {
        uint64_t allocs = 0;
        for (int i = 0; i < NTHREAD; i++)
            allocs += mj[i].allocs[c];
        st = cache_stats(caches[c]);
        if (st.allocs != allocs || st.frees != allocs || st.objects_active != 0)
            print_stats("3", &st);
        CHECK(st.allocs == allocs && st.frees == allocs && st.objects_active == 0,
              "3: cache %s: allocs %llu frees %llu active %llu, want %llu %llu 0 (seed %#llx)",
              st.name, (unsigned long long)st.allocs, (unsigned long long)st.frees,
              (unsigned long long)st.objects_active, (unsigned long long)allocs,
              (unsigned long long)allocs, (unsigned long long)g_seed);
        check_stats_consistent(&st);
        CHECK(st.slabs == st.slabs_empty && st.slabs <= 2,
              "3: cache %s: %llu slabs (%llu empty) after every thread freed all and exited",
              st.name, (unsigned long long)st.slabs, (unsigned long long)st.slabs_empty);
        CHECK(slab_cache_validate(caches[c]) == 0, "3: validate %s", st.name);
        slab_cache_shrink(caches[c]);
        st = cache_stats(caches[c]);
        CHECK(st.slabs == 0 && st.bytes_mapped == 0, "3: %s after shrink: %llu slabs", st.name,
              (unsigned long long)st.slabs);
        slab_cache_destroy(caches[c]);
    }
    printf("thread_exit: ok\n");
    return 0;
}
