/*
 * stress_xthread: many threads allocating and freeing across several caches,
 * with objects passed between threads and freed there, never get the same
 * object twice, never find a live object overwritten, and leave exact, balanced
 * statistics behind.
 *
 * Usage: test_slab_stress_xthread [seed [threads [seconds]]]
 *   (defaults: $SLABDEFRAG_SEED or a fixed seed, 4 threads, $SLABDEFRAG_STRESS_SECONDS
 *   or 3 s, 1.5 s under a sanitizer).  The seed is printed on failure.
 *
 * Each worker runs a seeded mix of: allocate (from one of 10 caches: 8 .. 4096 B,
 * with and without ctor, cache-line aligned, no-reserve), free one of its
 * objects, send one to another thread's inbox (a mutex-protected ring) to be
 * freed or kept there, drain its inbox, burst-allocate and free a run of objects,
 * free everything it holds, or call slab_cache_shrink() (which gives its slabs
 * back to the cache while other threads free into them).  Proofs:
 *  - ownership: a global set of live addresses (striped, mutex-protected): an
 *    address is inserted after slab_alloc() and must not be present already
 *    (handed out twice), and removed just before slab_free();
 *  - for ctor caches also an owner word inside the object, CASed 0 -> tag on
 *    allocation (it must be 0: we zero it before every free, and the allocator
 *    never writes inside a ctor cache's object) and tag -> 0 before the free,
 *    plus the ctor's magic word, which must survive every free/alloc cycle;
 *  - integrity: every other word of the object holds a value derived from the
 *    tag (thread id + sequence number) and the word index; the freeing thread,
 *    possibly another one, checks every word before slab_free().
 * Meanwhile the main thread calls slab_cache_shrink(), slab_cache_get_stats(),
 * slab_cache_validate() and slab_info_write() on random caches concurrently.
 * At the end, after every thread freed everything and was joined: per cache
 * allocs == frees == the operations counted by the workers, objects_active == 0,
 * slab_cache_validate() == 0, and a shrink leaves slabs == 0 and bytes_mapped == 0.
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

/* ---- caches ---------------------------------------------------------------- */
#define CTOR_MAGIC 0xc7012a6e5ab1e000ull

struct cdesc {
    size_t size;
    int ctor;
    unsigned flags;
    struct slab_cache *s;
};

static void ctor(void *p)
{
    uint64_t *w = p;
    w[0] = CTOR_MAGIC ^ (uint64_t)(uintptr_t)p;
    atomic_store_explicit((_Atomic uint64_t *)&w[1], 0, memory_order_relaxed);
}

static struct cdesc caches[] = {
    {8, 0, 0, NULL},    {64, 0, 0, NULL},    {200, 0, 0, NULL},
    {1024, 0, 0, NULL}, {4096, 0, 0, NULL},  {24, 1, 0, NULL},
    {64, 1, 0, NULL},   {200, 1, 0, NULL},   {1000, 1, SLAB_HWCACHE_ALIGN, NULL},
    {16, 0, SLAB_NO_RESERVE, NULL},
};
#define NCACHES ((int)(sizeof caches / sizeof caches[0]))

/* ---- the live set ---------------------------------------------------------- */
#define STRIPES 1024
#define SLOTS 1024 /* per stripe, power of two */
struct stripe {
    pthread_mutex_t mu;
    unsigned count;
    uintptr_t keys[SLOTS];
};
static struct stripe live[STRIPES];

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void live_insert(uintptr_t k, int cache)
{
    uint64_t h = mix64(k);
    struct stripe *st = &live[h % STRIPES];
    size_t i = (size_t)(h / STRIPES) & (SLOTS - 1);
    pthread_mutex_lock(&st->mu);
    FAIL_IF(st->count >= SLOTS * 3 / 4, "live set stripe full");
    while (st->keys[i]) {
        FAIL_IF(st->keys[i] == k,
                "cache %d (%zu B): object %#lx handed out while it is still allocated", cache,
                caches[cache].size, (unsigned long)k);
        i = (i + 1) & (SLOTS - 1);
    }
    st->keys[i] = k;
    st->count++;
    pthread_mutex_unlock(&st->mu);
}

static void live_remove(uintptr_t k, int cache)
{
    uint64_t h = mix64(k);
    struct stripe *st = &live[h % STRIPES];
    size_t i = (size_t)(h / STRIPES) & (SLOTS - 1);
    pthread_mutex_lock(&st->mu);
    while (st->keys[i] != k) {
        FAIL_IF(st->keys[i] == 0, "cache %d: freeing %#lx which is not live", cache,
                (unsigned long)k);
        i = (i + 1) & (SLOTS - 1);
    }
    /* Backward-shift deletion keeps linear probing correct without tombstones. */
    size_t hole = i;
    for (size_t j = (hole + 1) & (SLOTS - 1); st->keys[j]; j = (j + 1) & (SLOTS - 1)) {
        size_t home = (size_t)(mix64(st->keys[j]) / STRIPES) & (SLOTS - 1);
        /* Move keys[j] into the hole if its home is not in (hole, j]. */
        int in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            st->keys[hole] = st->keys[j];
            hole = j;
        }
    }
    st->keys[hole] = 0;
    st->count--;
    pthread_mutex_unlock(&st->mu);
}

/* ---- objects ---------------------------------------------------------------- */
struct item {
    void *obj;
    uint64_t tag;
    int cache;
};

static uint64_t word_value(uint64_t tag, size_t i)
{
    return mix64(tag ^ (i * 0xd6e8feb86659fd93ull));
}

static _Atomic uint64_t *owner_word(void *obj)
{
    return (_Atomic uint64_t *)((uint64_t *)obj + 1);
}

/* Words that hold the tag pattern: all of them, except magic and owner in ctor caches. */
static size_t first_data_word(int cache)
{
    return caches[cache].ctor ? 2 : 0;
}

static void obj_init(struct item *it)
{
    struct cdesc *cd = &caches[it->cache];
    uint64_t *w = it->obj;
    size_t nw = cd->size / 8;
    if (cd->ctor) {
        FAIL_IF(w[0] != (CTOR_MAGIC ^ (uint64_t)(uintptr_t)w),
                "cache %d (%zu B, ctor): object %p handed out without its constructed state "
                "(magic %#llx)",
                it->cache, cd->size, (void *)w, (unsigned long long)w[0]);
        uint64_t zero = 0;
        int ok = atomic_compare_exchange_strong_explicit(owner_word(w), &zero, it->tag,
                                                         memory_order_acq_rel,
                                                         memory_order_acquire);
        FAIL_IF(!ok,
                "cache %d (%zu B, ctor): object %p handed out while owned by tag %#llx "
                "(thread %llu seq %llu), or its state was overwritten",
                it->cache, cd->size, (void *)w, (unsigned long long)zero,
                (unsigned long long)(zero >> 48) - 1,
                (unsigned long long)(zero & 0xffffffffffffull));
    }
    for (size_t i = first_data_word(it->cache); i < nw; i++)
        w[i] = word_value(it->tag, i);
}

static void obj_check_and_release(const struct item *it, int me)
{
    struct cdesc *cd = &caches[it->cache];
    uint64_t *w = it->obj;
    size_t nw = cd->size / 8;
    for (size_t i = first_data_word(it->cache); i < nw; i++)
        FAIL_IF(w[i] != word_value(it->tag, i),
                "thread %d freeing cache %d (%zu B) object %p (tag %#llx, allocated by thread "
                "%llu): word %zu is %#llx, want %#llx: the live object was overwritten",
                me, it->cache, cd->size, (void *)w, (unsigned long long)it->tag,
                (unsigned long long)(it->tag >> 48) - 1, i, (unsigned long long)w[i],
                (unsigned long long)word_value(it->tag, i));
    if (cd->ctor) {
        FAIL_IF(w[0] != (CTOR_MAGIC ^ (uint64_t)(uintptr_t)w),
                "cache %d: object %p lost its ctor magic while allocated", it->cache, (void *)w);
        uint64_t want = it->tag;
        int ok = atomic_compare_exchange_strong_explicit(owner_word(w), &want, 0,
                                                         memory_order_acq_rel,
                                                         memory_order_acquire);
        FAIL_IF(!ok, "cache %d: object %p owner word is %#llx, want our tag %#llx", it->cache,
                (void *)w, (unsigned long long)want, (unsigned long long)it->tag);
    }
}

/* ---- threads ----------------------------------------------------------------- */
#define LOCAL_MAX 1024
#define INBOX_CAP 2048

struct inbox {
    pthread_mutex_t mu;
    unsigned head, count;
    struct item ring[INBOX_CAP];
};

struct worker {
    int id;
    pthread_t th;
    uint64_t rng;
    uint64_t seq;
    struct inbox inbox;
    struct item local[LOCAL_MAX];
    unsigned nlocal;
    struct item batch[INBOX_CAP]; /* drain() copies the inbox here */
    uint64_t allocs[sizeof caches / sizeof caches[0]];
    uint64_t frees[sizeof caches / sizeof caches[0]];
    uint64_t sent, received;
};

static struct worker *workers;
static atomic_int stop;
static atomic_int done_sending;

static void do_alloc(struct worker *w, int cache, struct item *out)
{
    void *p = slab_alloc(caches[cache].s);
    FAIL_IF(p == NULL, "thread %d: slab_alloc(cache %d) failed: %s", w->id, cache,
            strerror(errno));
    uintptr_t align = caches[cache].flags & SLAB_HWCACHE_ALIGN ? 64 : sizeof(void *);
    FAIL_IF((uintptr_t)p & (align - 1), "cache %d: object %p misaligned", cache, p);
    live_insert((uintptr_t)p, cache);
    w->allocs[cache]++;
    out->obj = p;
    out->cache = cache;
    out->tag = ((uint64_t)(w->id + 1) << 48) | (++w->seq & 0xffffffffffffull);
    obj_init(out);
}

static void do_free(struct worker *w, const struct item *it)
{
    obj_check_and_release(it, w->id);
    live_remove((uintptr_t)it->obj, it->cache);
    slab_free(caches[it->cache].s, it->obj);
    w->frees[it->cache]++;
}

static void local_free_at(struct worker *w, unsigned i)
{
    struct item it = w->local[i];
    w->local[i] = w->local[--w->nlocal];
    do_free(w, &it);
}

static int send_to(struct worker *to, const struct item *it)
{
    int ok = 0;
    pthread_mutex_lock(&to->inbox.mu);
    if (to->inbox.count < INBOX_CAP) {
        to->inbox.ring[(to->inbox.head + to->inbox.count) % INBOX_CAP] = *it;
        to->inbox.count++;
        ok = 1;
    }
    pthread_mutex_unlock(&to->inbox.mu);
    return ok;
}

/* Take everything from the inbox; free most, keep some (adopt) when `adopt`. */
static unsigned drain(struct worker *w, int adopt)
{
    struct item *batch = w->batch;
    pthread_mutex_lock(&w->inbox.mu);
    unsigned n = w->inbox.count;
    for (unsigned i = 0; i < n; i++)
        batch[i] = w->inbox.ring[(w->inbox.head + i) % INBOX_CAP];
    w->inbox.head = (w->inbox.head + n) % INBOX_CAP;
    w->inbox.count = 0;
    pthread_mutex_unlock(&w->inbox.mu);
    for (unsigned i = 0; i < n; i++) {
        w->received++;
        if (adopt && w->nlocal < LOCAL_MAX && xorshift64(&w->rng) % 4 == 0)
            w->local[w->nlocal++] = batch[i]; /* freed (or forwarded) later */
        else
            do_free(w, &batch[i]);
    }
    return n;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint64_t r = xorshift64(&w->rng);
        unsigned op = (unsigned)(r % 1000);
        int cache = (int)((r >> 10) % (uint64_t)NCACHES);
        if (op < 430) {
            if (w->nlocal < LOCAL_MAX)
                do_alloc(w, cache, &w->local[w->nlocal++]);
            else
                local_free_at(w, (unsigned)((r >> 20) % w->nlocal));
        } else if (op < 640) {
            if (w->nlocal)
                local_free_at(w, (unsigned)((r >> 20) % w->nlocal));
        } else if (op < 900) {
            if (w->nlocal && g_threads > 1) {
                unsigned i = (unsigned)((r >> 20) % w->nlocal);
                int to = (int)((r >> 40) % (uint64_t)(g_threads - 1));
                if (to >= w->id)
                    to++;
                if (send_to(&workers[to], &w->local[i])) {
                    w->sent++;
                    w->local[i] = w->local[--w->nlocal];
                }
            }
        } else if (op < 985) {
            drain(w, 1);
        } else if (op < 990) {
            /* Burst: a run of objects of one cache, freed in random order. */
            struct item burst[300];
            unsigned n = 50 + (unsigned)((r >> 20) % 250);
            for (unsigned i = 0; i < n; i++)
                do_alloc(w, cache, &burst[i]);
            for (unsigned i = n; i > 0; i--) {
                unsigned k = (unsigned)(xorshift64(&w->rng) % i);
                do_free(w, &burst[k]);
                burst[k] = burst[i - 1];
            }
        } else if (op < 994) {
            /* Free everything held: slabs empty out and go back. */
            while (w->nlocal)
                local_free_at(w, w->nlocal - 1);
        } else {
            /* Give this thread's slabs of one cache back while others free into them. */
            long rel = slab_cache_shrink(caches[cache].s);
            FAIL_IF(rel < 0, "slab_cache_shrink from a worker returned %ld", rel);
        }
    }
    /* Shutdown: free what we hold, stop sending, then drain until all are done. */
    while (w->nlocal)
        local_free_at(w, w->nlocal - 1);
    atomic_fetch_add(&done_sending, 1);
    while (atomic_load(&done_sending) < g_threads) {
        drain(w, 0);
        sched_yield();
    }
    drain(w, 0);
    return NULL;
}

static void concurrent_pokes(uint64_t *rng, FILE *devnull)
{
    uint64_t r = xorshift64(rng);
    struct slab_cache *s = caches[r % NCACHES].s;
    switch ((r >> 8) % 4) {
    case 0: {
        long rel = slab_cache_shrink(s);
        FAIL_IF(rel < 0, "concurrent slab_cache_shrink returned %ld", rel);
        break;
    }
    case 1: {
        struct slab_cache_stats st;
        FAIL_IF(slab_cache_get_stats(s, &st) != 0, "concurrent get_stats failed");
        FAIL_IF(st.objects_per_slab == 0 || st.slab_size == 0, "concurrent stats: no geometry");
        break;
    }
    case 2:
        FAIL_IF(slab_cache_validate(s) != 0,
                "slab_cache_validate failed while other threads use the cache");
        break;
    default:
        slab_info_write(devnull, (int)((r >> 16) & 1));
        break;
    }
}

int main(int argc, char **argv)
{
    /* This test checks the reserve rule of immediate return: decay off. */
    slab_set_purge_delay(0);
    g_seed = test_seed(argc, argv, 1, 0x5eed5eed1234ull);
    g_threads = argc > 2 ? atoi(argv[2]) : 4;
    if (g_threads < 2)
        g_threads = 2;
    if (g_threads > 64)
        g_threads = 64;
    snprintf(fail_context, sizeof fail_context, "stress_xthread (seed %#llx, %d threads)",
             (unsigned long long)g_seed, g_threads);
    double seconds;
    if (argc > 3)
        seconds = atof(argv[3]);
    else
        seconds = stress_seconds(under_sanitizer() ? 1.5 : 3.0);
    printf("stress_xthread: seed %#llx, %d threads, %.1f s\n", (unsigned long long)g_seed,
           g_threads, seconds);
    fflush(stdout);

    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&live[i].mu, NULL);
    for (int c = 0; c < NCACHES; c++) {
        char name[32];
        snprintf(name, sizeof name, "stress-%zu%s%s%s", caches[c].size, caches[c].ctor ? "-ctor" : "",
                 caches[c].flags & SLAB_HWCACHE_ALIGN ? "-hw" : "",
                 caches[c].flags & SLAB_NO_RESERVE ? "-nr" : "");
        caches[c].s = slab_cache_create(name, caches[c].size, 0, caches[c].flags,
                                        caches[c].ctor ? ctor : NULL);
        FAIL_IF(caches[c].s == NULL, "create %s: %s", name, strerror(errno));
    }

    workers = calloc((size_t)g_threads, sizeof *workers);
    FAIL_IF(workers == NULL, "calloc");
    for (int t = 0; t < g_threads; t++) {
        workers[t].id = t;
        workers[t].rng = mix64(g_seed + 0x1000193ull * (uint64_t)(t + 1)) | 1;
        pthread_mutex_init(&workers[t].inbox.mu, NULL);
    }
    for (int t = 0; t < g_threads; t++)
        FAIL_IF(pthread_create(&workers[t].th, NULL, worker_main, &workers[t]) != 0,
                "pthread_create");

    FILE *devnull = fopen("/dev/null", "w");
    FAIL_IF(devnull == NULL, "open /dev/null");
    uint64_t rng = mix64(g_seed ^ 0xabcdefull) | 1;
    double end = now_seconds() + seconds;
    unsigned pokes = 0;
    while (now_seconds() < end) {
        usleep(20000);
        concurrent_pokes(&rng, devnull);
        pokes++;
    }
    atomic_store(&stop, 1);
    for (int t = 0; t < g_threads; t++)
        FAIL_IF(pthread_join(workers[t].th, NULL) != 0, "pthread_join");
    fclose(devnull);

    uint64_t total_allocs = 0, total_sent = 0, total_received = 0;
    for (int t = 0; t < g_threads; t++) {
        total_sent += workers[t].sent;
        total_received += workers[t].received;
        FAIL_IF(workers[t].inbox.count != 0, "thread %d inbox not drained", t);
    }
    FAIL_IF(total_sent != total_received, "sent %llu, received %llu",
            (unsigned long long)total_sent, (unsigned long long)total_received);
    for (int i = 0; i < STRIPES; i++)
        FAIL_IF(live[i].count != 0, "live set not empty at the end");

    for (int c = 0; c < NCACHES; c++) {
        uint64_t allocs = 0, frees = 0;
        for (int t = 0; t < g_threads; t++) {
            allocs += workers[t].allocs[c];
            frees += workers[t].frees[c];
        }
        FAIL_IF(allocs != frees, "cache %d: test bookkeeping: %llu allocs, %llu frees", c,
                (unsigned long long)allocs, (unsigned long long)frees);
        total_allocs += allocs;
        struct slab_cache_stats st = cache_stats(caches[c].s);
        if (st.allocs != allocs || st.frees != frees || st.objects_active != 0)
            print_stats("stress_xthread: at the end", &st);
        FAIL_IF(st.allocs != allocs, "cache %s: allocs %llu, the threads did %llu", st.name,
                (unsigned long long)st.allocs, (unsigned long long)allocs);
        FAIL_IF(st.frees != frees, "cache %s: frees %llu, the threads did %llu", st.name,
                (unsigned long long)st.frees, (unsigned long long)frees);
        FAIL_IF(st.objects_active != 0, "cache %s: objects_active %llu after freeing all",
                st.name, (unsigned long long)st.objects_active);
        FAIL_IF(st.objects_total != st.slabs * st.objects_per_slab,
                "cache %s: objects_total != slabs * objects_per_slab", st.name);
        FAIL_IF(st.bytes_mapped != st.slabs * st.slab_size,
                "cache %s: bytes_mapped %llu != slabs %llu * slab_size %zu", st.name,
                (unsigned long long)st.bytes_mapped, (unsigned long long)st.slabs,
                st.slab_size);
        FAIL_IF(st.slabs != st.slabs_empty, "cache %s: %llu slabs but only %llu empty", st.name,
                (unsigned long long)st.slabs, (unsigned long long)st.slabs_empty);
        FAIL_IF(st.slabs_empty > ((caches[c].flags & SLAB_NO_RESERVE) ? 0u : 2u),
                "cache %s: %llu empty slabs kept (reserve is %u)", st.name,
                (unsigned long long)st.slabs_empty,
                (caches[c].flags & SLAB_NO_RESERVE) ? 0u : 2u);
        FAIL_IF(slab_cache_validate(caches[c].s) != 0, "cache %s: validate failed", st.name);
        slab_cache_shrink(caches[c].s);
        st = cache_stats(caches[c].s);
        FAIL_IF(st.slabs != 0 || st.bytes_mapped != 0,
                "cache %s: after shrink %llu slabs, %llu bytes mapped", st.name,
                (unsigned long long)st.slabs, (unsigned long long)st.bytes_mapped);
        struct stderr_capture cap;
        stderr_capture_begin(&cap);
        slab_cache_destroy(caches[c].s);
        char *out = stderr_capture_end(&cap);
        FAIL_IF(strstr(out, "still allocated") != NULL, "destroy reported: %s", out);
        free(out);
    }
    FAIL_IF(total_sent == 0, "no cross-thread frees happened");
    printf("stress_xthread: ok: %llu allocations, %llu cross-thread hand-offs, %u concurrent "
           "calls\n",
           (unsigned long long)total_allocs, (unsigned long long)total_sent, pokes);
    free(workers);
    return 0;
}
