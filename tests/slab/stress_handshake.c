/*
 * stress_handshake: owner threads that allocate and free without pause while
 * another thread keeps taking their heaps away (slab_cache_defrag,
 * slab_cache_shrink and slab_reclaim flush every heap that is not inside an
 * allocator call; with a purge delay of 1 ms the purge thread does the same to
 * every heap it finds idle) never get an object that another thread holds, and
 * never find a live object overwritten.  This is the owner/thief handshake on
 * a heap (in_op / stolen, membarrier) under as much contention as we can make.
 *
 * Usage: test_slab_stress_handshake [seed [threads [seconds]]]
 *   (defaults: $SLABDEFRAG_SEED or a fixed seed, 4 threads,
 *   $SLABDEFRAG_STRESS_SECONDS or 2 s).  The seed is printed on failure.
 *
 * Each object carries its holder's tag (thread id and sequence number) in its
 * first word, a checksum of tag and address in the second, and a pattern from
 * the tag in the rest.  A thread writes them right after slab_alloc and checks
 * them before every free and, every 256 operations, for every object it holds:
 * an object handed out twice, or a free pointer written into a live object,
 * changes a tag or breaks a checksum while the holder still has it.  Objects
 * also go to the next thread's inbox (a mutex-protected ring), which checks
 * and frees them: remote frees into slabs owned, full, or just flushed.
 * Workers sleep now and then for a few microseconds, so thieves also find
 * them idle between calls, and now and then run a short-lived helper thread
 * that allocates for them and exits (its slabs are abandoned under the
 * thief's nose and freed into later).  At the end (all threads joined, everything
 * freed): per cache allocs == frees == what the workers did, no object
 * active, validate passes, and a shrink leaves no slab mapped.
 *
 * TEST_LABELS: stress
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "slabtest.h"

static uint64_t g_seed;
static int g_threads;

static const size_t sizes[] = { 48, 256, 2048 }; /* lfree-cached, and not */
#define NCACHES (sizeof sizes / sizeof sizes[0])
static struct slab_cache *caches[NCACHES];

#define LOCAL_MAX 512
#define INBOX_CAP 1024

struct item {
    uint64_t *obj;
    uint64_t tag;
    unsigned cache;
};

struct worker {
    int id;
    pthread_t th;
    uint64_t rng, seq;
    pthread_mutex_t mu; /* inbox */
    unsigned head, count;
    struct item inbox[INBOX_CAP];
    struct item local[LOCAL_MAX];
    unsigned nlocal;
    uint64_t allocs[NCACHES], frees[NCACHES];
};

static struct worker *workers;
static atomic_int stop, done_sending;
static _Atomic unsigned long helpers;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static void obj_write(const struct item *it)
{
    size_t nw = sizes[it->cache] / 8;
    it->obj[0] = it->tag;
    it->obj[1] = mix(it->tag ^ (uint64_t)(uintptr_t)it->obj);
    for (size_t i = 2; i < nw; i++)
        it->obj[i] = mix(it->tag + i);
}

static void obj_check(const struct item *it, int me, const char *when)
{
    size_t nw = sizes[it->cache] / 8;
    uint64_t *w = it->obj;
    FAIL_IF(w[0] != it->tag,
            "thread %d %s: object %p (cache %zu B) has tag %#llx (thread %llu), we hold it with "
            "tag %#llx: handed out twice or overwritten",
            me, when, (void *)w, sizes[it->cache], (unsigned long long)w[0],
            (unsigned long long)(w[0] >> 48), (unsigned long long)it->tag);
    FAIL_IF(w[1] != mix(it->tag ^ (uint64_t)(uintptr_t)w),
            "thread %d %s: object %p checksum broken (%#llx)", me, when, (void *)w,
            (unsigned long long)w[1]);
    for (size_t i = 2; i < nw; i++)
        FAIL_IF(w[i] != mix(it->tag + i), "thread %d %s: object %p word %zu overwritten", me,
                when, (void *)w, i);
}

static void do_alloc(struct worker *w, unsigned cache)
{
    struct item *it = &w->local[w->nlocal++];
    it->obj = slab_alloc(caches[cache]);
    FAIL_IF(it->obj == NULL, "slab_alloc: %s", strerror(errno));
    it->cache = cache;
    it->tag = ((uint64_t)(w->id + 1) << 48) | (++w->seq & 0xffffffffffffull);
    obj_write(it);
    w->allocs[cache]++;
}

static void do_free(struct worker *w, const struct item *it, const char *when)
{
    obj_check(it, w->id, when);
    it->obj[0] = 0; /* a later holder's tag is then never ours by accident */
    slab_free(caches[it->cache], it->obj);
    w->frees[it->cache]++;
}

static void free_local(struct worker *w, unsigned i)
{
    struct item it = w->local[i];
    w->local[i] = w->local[--w->nlocal];
    do_free(w, &it, "freeing its own object");
}

static int send_to(struct worker *to, const struct item *it)
{
    int ok = 0;
    pthread_mutex_lock(&to->mu);
    if (to->count < INBOX_CAP) {
        to->inbox[(to->head + to->count++) % INBOX_CAP] = *it;
        ok = 1;
    }
    pthread_mutex_unlock(&to->mu);
    return ok;
}

static void drain(struct worker *w)
{
    struct item batch[64];
    unsigned n;
    do {
        pthread_mutex_lock(&w->mu);
        n = w->count < 64 ? w->count : 64;
        for (unsigned i = 0; i < n; i++)
            batch[i] = w->inbox[(w->head + i) % INBOX_CAP];
        w->head = (w->head + n) % INBOX_CAP;
        w->count -= n;
        pthread_mutex_unlock(&w->mu);
        for (unsigned i = 0; i < n; i++)
            do_free(w, &batch[i], "freeing an object another thread sent");
    } while (n == 64);
}

/* A short-lived thread allocates for w (w waits in pthread_join, so the
 * helper may use w's lists and counters), frees every other object, and exits:
 * its heap is flushed at exit while the thief works, and w later frees the
 * rest into the abandoned slabs. */
#define HELPER_OBJS 64
struct helper_job {
    struct worker *w;
    unsigned cache;
};

static void *helper_main(void *arg)
{
    struct helper_job *j = arg;
    struct worker *w = j->w;
    unsigned first = w->nlocal;
    for (unsigned i = 0; i < HELPER_OBJS; i++)
        do_alloc(w, j->cache);
    for (unsigned i = first + HELPER_OBJS; i-- > first;)
        if (i % 2)
            free_local(w, i);
    return NULL;
}

static void run_helper(struct worker *w, unsigned cache)
{
    struct helper_job j = { w, cache };
    pthread_t th;
    FAIL_IF(pthread_create(&th, NULL, helper_main, &j) != 0, "pthread_create (helper)");
    FAIL_IF(pthread_join(th, NULL) != 0, "pthread_join (helper)");
    atomic_fetch_add_explicit(&helpers, 1, memory_order_relaxed);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct worker *next = &workers[(w->id + 1) % g_threads];
    for (uint64_t ops = 0; !atomic_load_explicit(&stop, memory_order_relaxed); ops++) {
        uint64_t r = xorshift64(&w->rng);
        unsigned op = (unsigned)(r % 1000), cache = (unsigned)((r >> 10) % NCACHES);
        if (op < 450) {
            if (w->nlocal < LOCAL_MAX)
                do_alloc(w, cache);
            else
                free_local(w, (unsigned)((r >> 20) % w->nlocal));
        } else if (op < 750) {
            if (w->nlocal)
                free_local(w, (unsigned)((r >> 20) % w->nlocal));
        } else if (op < 900) {
            if (w->nlocal) {
                unsigned i = (unsigned)((r >> 20) % w->nlocal);
                if (send_to(next, &w->local[i]))
                    w->local[i] = w->local[--w->nlocal];
            }
        } else if (op < 980) {
            drain(w);
        } else if (op < 985) {
            while (w->nlocal)
                free_local(w, w->nlocal - 1);
        } else if (op < 990) {
            usleep((useconds_t)((r >> 20) % 200)); /* idle: a thief may take the heap */
        } else if (op == 990 && (r >> 40) % 8 == 0 && w->nlocal + HELPER_OBJS <= LOCAL_MAX) {
            run_helper(w, cache);
        }
        if ((ops & 255) == 0)
            for (unsigned i = 0; i < w->nlocal; i++)
                obj_check(&w->local[i], w->id, "checking the objects it holds");
    }
    while (w->nlocal)
        free_local(w, w->nlocal - 1);
    atomic_fetch_add(&done_sending, 1);
    while (atomic_load(&done_sending) < g_threads) {
        drain(w);
        sched_yield();
    }
    drain(w);
    return NULL;
}

/* The thief: flush every heap not inside a call, over and over. */
static void *thief_main(void *arg)
{
    uint64_t rng = *(uint64_t *)arg;
    unsigned long calls = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint64_t r = xorshift64(&rng);
        struct slab_cache *s = caches[r % NCACHES];
        long rc;
        switch ((r >> 8) % 4) {
        case 0:
            rc = slab_cache_shrink(s);
            break;
        case 1:
        case 2:
            rc = slab_cache_defrag(s, (unsigned)((r >> 16) % 101));
            break;
        default:
            rc = slab_reclaim((size_t)((r >> 16) % (1u << 20)));
            break;
        }
        FAIL_IF(rc < 0, "thief: trigger returned %ld", rc);
        calls++;
        if ((calls & 15) == 0)
            sched_yield();
    }
    *(uint64_t *)arg = calls;
    return NULL;
}

int main(int argc, char **argv)
{
    g_seed = test_seed(argc, argv, 1, 0x4a4d5eedull);
    g_threads = argc > 2 ? atoi(argv[2]) : 4;
    g_threads = g_threads < 2 ? 2 : g_threads > 64 ? 64 : g_threads;
    snprintf(fail_context, sizeof fail_context, "stress_handshake (seed %#llx, %d threads)",
             (unsigned long long)g_seed, g_threads);
    double seconds = argc > 3 ? atof(argv[3]) : stress_seconds(2.0);
    printf("stress_handshake: seed %#llx, %d threads, %.1f s\n", (unsigned long long)g_seed,
           g_threads, seconds);
    fflush(stdout);
    FAIL_IF(slab_set_purge_delay(1) != 0, "slab_set_purge_delay");
    for (unsigned c = 0; c < NCACHES; c++) {
        char name[32];
        snprintf(name, sizeof name, "handshake-%zu", sizes[c]);
        caches[c] = slab_cache_create(name, sizes[c], 0, 0, NULL);
        FAIL_IF(caches[c] == NULL, "create %s: %s", name, strerror(errno));
    }
    workers = calloc((size_t)g_threads, sizeof *workers);
    FAIL_IF(workers == NULL, "calloc");
    for (int t = 0; t < g_threads; t++) {
        workers[t].id = t;
        workers[t].rng = mix(g_seed + 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1)) | 1;
        pthread_mutex_init(&workers[t].mu, NULL);
    }
    for (int t = 0; t < g_threads; t++)
        FAIL_IF(pthread_create(&workers[t].th, NULL, worker_main, &workers[t]) != 0,
                "pthread_create");
    pthread_t thief;
    uint64_t thief_arg = mix(g_seed ^ 0x7417ull) | 1;
    FAIL_IF(pthread_create(&thief, NULL, thief_main, &thief_arg) != 0, "pthread_create");

    double end = now_seconds() + seconds;
    while (now_seconds() < end)
        usleep(20000);
    atomic_store(&stop, 1);
    for (int t = 0; t < g_threads; t++)
        FAIL_IF(pthread_join(workers[t].th, NULL) != 0, "pthread_join");
    FAIL_IF(pthread_join(thief, NULL) != 0, "pthread_join");

    uint64_t total = 0;
    for (unsigned c = 0; c < NCACHES; c++) {
        uint64_t allocs = 0, frees = 0;
        for (int t = 0; t < g_threads; t++) {
            allocs += workers[t].allocs[c];
            frees += workers[t].frees[c];
        }
        total += allocs;
        FAIL_IF(allocs != frees, "cache %zu B: test bookkeeping: %llu allocs, %llu frees",
                sizes[c], (unsigned long long)allocs, (unsigned long long)frees);
        struct slab_cache_stats st = cache_stats(caches[c]);
        if (st.allocs != allocs || st.frees != frees || st.objects_active)
            print_stats("stress_handshake: at the end", &st);
        FAIL_IF(st.allocs != allocs || st.frees != frees,
                "cache %zu B: stats say %llu allocs / %llu frees, the threads did %llu / %llu",
                sizes[c], (unsigned long long)st.allocs, (unsigned long long)st.frees,
                (unsigned long long)allocs, (unsigned long long)frees);
        FAIL_IF(st.objects_active != 0, "cache %zu B: %llu objects active after freeing all",
                sizes[c], (unsigned long long)st.objects_active);
        FAIL_IF(slab_cache_validate(caches[c]) != 0, "cache %zu B: validate failed", sizes[c]);
        FAIL_IF(slab_cache_shrink(caches[c]) < 0, "shrink");
        st = cache_stats(caches[c]);
        FAIL_IF(st.slabs != 0 || st.bytes_mapped != 0,
                "cache %zu B: after shrink %llu slabs, %llu bytes mapped", sizes[c],
                (unsigned long long)st.slabs, (unsigned long long)st.bytes_mapped);
        slab_cache_destroy(caches[c]);
    }
    FAIL_IF(total == 0 || thief_arg == 0, "nothing happened: %llu allocations, %llu thefts",
            (unsigned long long)total, (unsigned long long)thief_arg);
    printf("stress_handshake: ok: %llu allocations, %llu trigger calls, %lu helper threads\n",
           (unsigned long long)total, (unsigned long long)thief_arg, atomic_load(&helpers));
    for (int t = 0; t < g_threads; t++)
        pthread_mutex_destroy(&workers[t].mu);
    free(workers);
    return 0;
}
