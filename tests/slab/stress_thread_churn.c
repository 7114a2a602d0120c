/*
 * stress_thread_churn: threads that come and go while their objects outlive
 * them.  Exiting threads give their slabs back to the cache while other threads
 * are freeing objects of those very slabs, and new threads pick the slabs up.
 * No object may be handed out twice or changed while live, and at the end the
 * counters must balance exactly.
 *
 * Usage: test_slab_stress_thread_churn [seed [threads [seconds]]]
 * (defaults: fixed seed or $SLABDEFRAG_SEED, 4 concurrent threads,
 * $SLABDEFRAG_STRESS_SECONDS or 2 s, 1 s under a sanitizer).
 *
 * Waves of short-lived threads share a mutex-protected pool of live objects.
 * Each thread allocates a few hundred objects from 3 caches (one with a ctor),
 * stamps every word with a tag, puts most of them into the pool, frees pool
 * objects left by earlier (often exited) threads after checking their tags,
 * and exits.  The pool also records every live address, so an address handed
 * out while still in the pool is caught.  At the end the pool is drained, and per
 * cache allocs == frees == the operations counted, objects_active == 0,
 * validate passes and shrink leaves no slab.
 *
 * TEST_LABELS: stress
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>

#include "slabtest.h"

static uint64_t g_seed;

#define NC 3
static const size_t sizes[NC] = {48, 256, 96};
static struct slab_cache *caches[NC];
static _Atomic uint64_t allocs[NC], frees[NC];
#define MAGIC 0x0b7ec7c0ffee0000ull

static void ctor(void *p)
{
    uint64_t *w = p;
    w[0] = MAGIC ^ (uint64_t)(uintptr_t)p;
}

struct item {
    uint64_t *obj;
    uint64_t tag;
    int c;
};

#define POOL_CAP 65536
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct item pool[POOL_CAP];
static size_t pool_n;
static _Atomic uint64_t tag_seq;

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static size_t first_word(int c)
{
    return c == 2 ? 1 : 0; /* cache 2 has a ctor: word 0 is its magic */
}

static void stamp(struct item *it)
{
    size_t nw = sizes[it->c] / 8;
    if (it->c == 2)
        FAIL_IF(it->obj[0] != (MAGIC ^ (uint64_t)(uintptr_t)it->obj),
                "ctor cache object %p handed out without its constructed state", (void *)it->obj);
    for (size_t i = first_word(it->c); i < nw; i++)
        it->obj[i] = mix64(it->tag + i);
}

static void verify_and_free(const struct item *it)
{
    size_t nw = sizes[it->c] / 8;
    for (size_t i = first_word(it->c); i < nw; i++)
        FAIL_IF(it->obj[i] != mix64(it->tag + i),
                "cache %d object %p word %zu changed while live (tag %#llx): handed out twice "
                "or overwritten",
                it->c, (void *)it->obj, i, (unsigned long long)it->tag);
    if (it->c == 2)
        FAIL_IF(it->obj[0] != (MAGIC ^ (uint64_t)(uintptr_t)it->obj),
                "ctor magic of %p overwritten while live", (void *)it->obj);
    slab_free(caches[it->c], it->obj);
    atomic_fetch_add(&frees[it->c], 1);
}

struct job {
    uint64_t rng;
};

static void *churn_thread(void *arg)
{
    struct job *j = arg;
    uint64_t rng = j->rng;
    enum { MAXN = 400 };
    struct item mine[MAXN];
    unsigned n = 50 + (unsigned)(xorshift64(&rng) % (MAXN - 50));
    for (unsigned i = 0; i < n; i++) {
        int c = (int)(xorshift64(&rng) % NC);
        uint64_t *p = slab_alloc(caches[c]);
        FAIL_IF(p == NULL, "slab_alloc: %s", strerror(errno));
        atomic_fetch_add(&allocs[c], 1);
        mine[i] = (struct item){p, atomic_fetch_add(&tag_seq, 1) * 0x100000001ull + 1, c};
        stamp(&mine[i]);
    }
    /* Free a quarter of our own right away (local frees into our active slabs). */
    unsigned keep = 0;
    for (unsigned i = 0; i < n; i++) {
        if (xorshift64(&rng) % 4 == 0)
            verify_and_free(&mine[i]);
        else
            mine[keep++] = mine[i];
    }
    /* Swap: take up to `keep` old objects out of the pool, put ours in. */
    struct item taken[MAXN];
    unsigned ntaken = 0;
    pthread_mutex_lock(&pool_mu);
    while (ntaken < keep && pool_n > 0) {
        size_t k = (size_t)(xorshift64(&rng) % pool_n);
        taken[ntaken++] = pool[k];
        pool[k] = pool[--pool_n];
    }
    for (unsigned i = 0; i < keep; i++) {
        FAIL_IF(pool_n >= POOL_CAP, "pool full");
        /* Duplicate check against the live pool (and what we just took). */
        for (size_t k = 0; k < pool_n; k++)
            FAIL_IF(pool[k].obj == mine[i].obj, "object %p handed out while still live",
                    (void *)mine[i].obj);
        pool[pool_n++] = mine[i];
    }
    pthread_mutex_unlock(&pool_mu);
    for (unsigned i = 0; i < ntaken; i++)
        verify_and_free(&taken[i]); /* objects of other, mostly exited, threads */
    return NULL;
}

int main(int argc, char **argv)
{
    g_seed = test_seed(argc, argv, 1, 0xc4a7c4a7ull);
    snprintf(fail_context, sizeof fail_context, "stress_thread_churn (seed %#llx)",
             (unsigned long long)g_seed);
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    double seconds = argc > 3 ? atof(argv[3]) : stress_seconds(under_sanitizer() ? 1.0 : 2.0);
    printf("stress_thread_churn: seed %#llx, %d threads at a time, %.1f s\n",
           (unsigned long long)g_seed, threads, seconds);
    fflush(stdout);
    for (int c = 0; c < NC; c++) {
        char name[32];
        snprintf(name, sizeof name, "churn-%zu%s", sizes[c], c == 2 ? "-ctor" : "");
        caches[c] = slab_cache_create(name, sizes[c], 0, 0, c == 2 ? ctor : NULL);
        FAIL_IF(caches[c] == NULL, "create: %s", strerror(errno));
    }
    uint64_t rng = mix64(g_seed) | 1;
    double end = now_seconds() + seconds;
    unsigned waves = 0, spawned = 0;
    pthread_t th[64];
    struct job jobs[64];
    while (now_seconds() < end) {
        for (int t = 0; t < threads; t++) {
            jobs[t].rng = mix64(xorshift64(&rng)) | 1;
            FAIL_IF(pthread_create(&th[t], NULL, churn_thread, &jobs[t]) != 0,
                    "pthread_create");
        }
        for (int t = 0; t < threads; t++)
            FAIL_IF(pthread_join(th[t], NULL) != 0, "pthread_join");
        spawned += (unsigned)threads;
        waves++;
        if (waves % 16 == 0)
            for (int c = 0; c < NC; c++)
                FAIL_IF(slab_cache_validate(caches[c]) != 0, "validate failed mid-run");
    }
    /* Drain the pool from the main thread. */
    for (size_t k = 0; k < pool_n; k++)
        verify_and_free(&pool[k]);
    pool_n = 0;
    for (int c = 0; c < NC; c++) {
        slab_cache_shrink(caches[c]);
        struct slab_cache_stats st = cache_stats(caches[c]);
        uint64_t a = atomic_load(&allocs[c]), f = atomic_load(&frees[c]);
        FAIL_IF(a != f, "test bookkeeping");
        if (st.allocs != a || st.frees != f || st.objects_active != 0 || st.slabs != 0)
            print_stats("stress_thread_churn: at the end", &st);
        FAIL_IF(st.allocs != a || st.frees != f,
                "cache %s: allocs %llu frees %llu, the threads did %llu and %llu", st.name,
                (unsigned long long)st.allocs, (unsigned long long)st.frees,
                (unsigned long long)a, (unsigned long long)f);
        FAIL_IF(st.objects_active != 0, "cache %s: objects_active %llu", st.name,
                (unsigned long long)st.objects_active);
        FAIL_IF(slab_cache_validate(caches[c]) != 0, "cache %s: validate", st.name);
        FAIL_IF(st.slabs != 0 || st.bytes_mapped != 0,
                "cache %s: %llu slabs (%llu bytes) left after freeing all, joining every thread "
                "and shrinking",
                st.name, (unsigned long long)st.slabs, (unsigned long long)st.bytes_mapped);
        slab_cache_destroy(caches[c]);
    }
    printf("stress_thread_churn: ok: %u threads in %u waves, %llu allocations\n", spawned, waves,
           (unsigned long long)(atomic_load(&allocs[0]) + atomic_load(&allocs[1]) +
                                atomic_load(&allocs[2])));
    return 0;
}
