/*
 * alloc_bench.c: slabdefrag against glibc, jemalloc, mimalloc and tcmalloc on
 * fixed-size objects — one source, one executable per allocator.
 *
 * What it measures and why (issue 2):
 *   churn      a steady state: `live` (100k) objects stay allocated; each step
 *              frees a random one, allocates a replacement and touches it.
 *              This is the fragmenting, cache-unfriendly pattern a long-lived
 *              object cache sees.  Reported: ns per free+alloc pair.
 *   batch      allocate N (1M) objects (touching each), then free them all in
 *              allocation order; "batch" is the first, cold round (memory comes
 *              from the OS), "batch_warm" the mean of later rounds in the same
 *              process (an allocator that kept its memory avoids the faults,
 *              one that returned it pays them again).  ns per alloc+free pair.
 *   xthread    remote frees: the main thread allocates and touches objects and
 *              passes them through a bounded single-producer single-consumer
 *              ring to a second thread that frees them.  ns per object, wall.
 *   retention  allocate as many 120 B objects as fit in BENCH_RETENTION_MB
 *              (6 GiB), free them all in allocation order, and report RSS
 *              before, at the peak, after the frees, and after the allocator's
 *              documented purge.  "After free, before purge" is what a program
 *              that never calls the purge gets, so that is the target number.
 *              Objects are chained through their first 8 bytes, so the harness
 *              needs no pointer array that would blur the RSS baseline.
 *
 * Output: one machine-readable line per result, parsed by run.sh:
 *   RESULT alloc=<name> test=<test> size=<bytes> ns_per_op=<ns> [key=value...]
 * plus ALLOCATOR (what serves malloc, verified) and MEASURED (how many
 * operations ran inside the callgrind-instrumented region, for Ir per op).
 *
 * Fairness rules (see also bench_util.h): every allocator runs in a fresh
 * process, one test and one size per process; the harness never allocates
 * through the allocator under test; the RNG sequence (fixed seed) and the
 * touch are identical for all; lazy allocator start-up happens before any
 * timed region (backend_setup); each timed region is preceded by an untimed
 * warm-up where the test has a steady state.
 *
 * Profiling (repeatable instruction counts instead of noisy wall time):
 *   bench/run.sh callgrind build churn 64 slabdefrag jemalloc
 * or by hand:
 *   valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=cg.out \
 *       build/bench/bench_alloc_slabdefrag --test churn --size 64 --quick
 *   callgrind_annotate cg.out | head -40
 * Only the timed region is instrumented (CALLGRIND_START_INSTRUMENTATION).
 */
#define _GNU_SOURCE
#include "alloc_backend.h"
#include "bench_util.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct bench_opts {
    const char *test;
    size_t size;          /* object size in bytes */
    size_t live;          /* churn: objects kept allocated */
    size_t pairs;         /* churn: timed free+alloc pairs */
    size_t objects;       /* batch, xthread: objects per round / in total */
    unsigned rounds;      /* batch: rounds, the first one cold */
    size_t retention_mb;  /* retention: payload to allocate, MiB */
    uint64_t seed;
};

static void die_oom(const char *test, size_t done)
{
    fprintf(stderr, "bench_alloc_%s: %s: allocation failed after %zu objects: %s\n",
            BENCH_ALLOC_NAME, test, done, strerror(errno));
    exit(1);
}

static void print_result(const char *test, size_t size, double ns_per_op, const char *extra)
{
    printf("RESULT alloc=%s test=%s size=%zu ns_per_op=%.2f%s%s\n", BENCH_ALLOC_NAME, test,
           size, ns_per_op, extra[0] ? " " : "", extra);
    fflush(stdout);
}

static void print_measured(const char *test, size_t ops)
{
    printf("MEASURED alloc=%s test=%s ops=%zu\n", BENCH_ALLOC_NAME, test, ops);
}

/* ---------------------------------------------------------------- churn */

/* Free a random live object, allocate its replacement, touch it; n times. */
static void churn_steps(void **slots, size_t live, size_t size, size_t n, struct bench_rng *rng)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t victim = bench_rng_below(rng, (uint32_t)live);
        obj_free(slots[victim], size);
        void *p = obj_alloc(size);
        if (p == NULL)
            die_oom("churn", i);
        touch_object(p, size, (unsigned char)i);
        slots[victim] = p;
    }
}

static void run_churn(const struct bench_opts *o)
{
    struct bench_rng rng = {o->seed};
    void **slots = bench_ptr_array(o->live);
    char extra[128];

    bench_prefault(slots, o->live);
    for (size_t i = 0; i < o->live; i++) {
        slots[i] = obj_alloc(o->size);
        if (slots[i] == NULL)
            die_oom("churn", i);
        touch_object(slots[i], o->size, (unsigned char)i);
    }
    /* Warm-up: one full turnover reaches the steady-state free-list shape. */
    churn_steps(slots, o->live, o->size, o->live, &rng);

    BENCH_MEASURE_BEGIN();
    double t0 = bench_now();
    churn_steps(slots, o->live, o->size, o->pairs, &rng);
    double t1 = bench_now();
    BENCH_MEASURE_END();

    for (size_t i = 0; i < o->live; i++)
        obj_free(slots[i], o->size);
    bench_ptr_array_free(slots, o->live);

    snprintf(extra, sizeof(extra), "ops=%zu live=%zu", o->pairs, o->live);
    print_result("churn", o->size, (t1 - t0) * 1e9 / (double)o->pairs, extra);
    print_measured("churn", o->pairs);
}

/* ---------------------------------------------------------------- batch */

struct batch_round {
    double alloc_s, free_s;
};

static struct batch_round batch_round(void **slots, size_t n, size_t size)
{
    struct batch_round r;
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++) {
        void *p = obj_alloc(size);
        if (p == NULL)
            die_oom("batch", i);
        touch_object(p, size, (unsigned char)i);
        slots[i] = p;
    }
    double t1 = bench_now();
    for (size_t i = 0; i < n; i++)
        obj_free(slots[i], size);
    double t2 = bench_now();
    r.alloc_s = t1 - t0;
    r.free_s = t2 - t1;
    return r;
}

static void report_batch(const char *test, size_t size, size_t n, double alloc_s,
                         double free_s, unsigned rounds)
{
    char extra[160];
    double per = 1e9 / ((double)n * rounds);

    snprintf(extra, sizeof(extra), "ops=%zu rounds=%u alloc_ns=%.2f free_ns=%.2f", n, rounds,
             alloc_s * per, free_s * per);
    print_result(test, size, (alloc_s + free_s) * per, extra);
}

static void run_batch(const struct bench_opts *o)
{
    void **slots = bench_ptr_array(o->objects);
    double warm_alloc = 0, warm_free = 0;

    bench_prefault(slots, o->objects);
    BENCH_MEASURE_BEGIN();
    struct batch_round cold = batch_round(slots, o->objects, o->size);
    for (unsigned r = 1; r < o->rounds; r++) {
        struct batch_round w = batch_round(slots, o->objects, o->size);
        warm_alloc += w.alloc_s;
        warm_free += w.free_s;
    }
    BENCH_MEASURE_END();
    bench_ptr_array_free(slots, o->objects);

    report_batch("batch", o->size, o->objects, cold.alloc_s, cold.free_s, 1);
    if (o->rounds > 1)
        report_batch("batch_warm", o->size, o->objects, warm_alloc, warm_free, o->rounds - 1);
    print_measured("batch", o->objects * o->rounds);
}

/* -------------------------------------------------------------- xthread */

/* A bounded single-producer single-consumer ring.  head is written only by
 * the producer, tail only by the consumer.  Each side works on a private
 * index, publishes it every RING_PUBLISH slots (so the shared cache lines
 * move once per batch, not once per object: the ring's own cost stays small
 * next to the allocator's) and re-reads the other's only when the ring looks
 * full/empty.  A side that has to wait first publishes what it has, so the
 * two can never wait on each other's unpublished work.  Release on publish,
 * acquire on read: a slot's pointer is visible before the index covering it. */
#define RING_SLOTS 1024u
#define RING_PUBLISH 16u
struct spsc_ring {
    _Alignas(64) atomic_size_t head;
    _Alignas(64) atomic_size_t tail;
    _Alignas(64) atomic_int consumer_ready;
    _Alignas(64) void *slot[RING_SLOTS];
    size_t size;
};

struct ring_side {
    size_t mine;       /* producer: next slot to fill; consumer: next to empty */
    size_t other_seen; /* the other side's index, as last read */
};

static void ring_push(struct spsc_ring *ring, struct ring_side *me, void *p)
{
    unsigned spins = 0;
    while (me->mine - me->other_seen == RING_SLOTS) {
        atomic_store_explicit(&ring->head, me->mine, memory_order_release);
        me->other_seen = atomic_load_explicit(&ring->tail, memory_order_acquire);
        if (me->mine - me->other_seen == RING_SLOTS)
            bench_spin(&spins);
    }
    ring->slot[me->mine % RING_SLOTS] = p;
    if (++me->mine % RING_PUBLISH == 0 || p == NULL)
        atomic_store_explicit(&ring->head, me->mine, memory_order_release);
}

static void *ring_pop(struct spsc_ring *ring, struct ring_side *me)
{
    unsigned spins = 0;
    while (me->mine == me->other_seen) {
        atomic_store_explicit(&ring->tail, me->mine, memory_order_release);
        me->other_seen = atomic_load_explicit(&ring->head, memory_order_acquire);
        if (me->mine == me->other_seen)
            bench_spin(&spins);
    }
    void *p = ring->slot[me->mine % RING_SLOTS];
    if (++me->mine % RING_PUBLISH == 0)
        atomic_store_explicit(&ring->tail, me->mine, memory_order_release);
    return p;
}

/* Consumer: free everything that arrives until the NULL end marker. */
static void *xthread_consumer(void *arg)
{
    struct spsc_ring *ring = arg;
    struct ring_side me = {0, 0};

    atomic_store_explicit(&ring->consumer_ready, 1, memory_order_release);
    for (;;) {
        void *p = ring_pop(ring, &me);
        if (p == NULL)
            return NULL;
        obj_free(p, ring->size);
    }
}

static void run_xthread(const struct bench_opts *o)
{
    static struct spsc_ring ring;
    struct ring_side me = {0, 0};
    pthread_t consumer;
    unsigned spins = 0;
    char extra[64];

    ring.size = o->size;
    if (pthread_create(&consumer, NULL, xthread_consumer, &ring) != 0) {
        perror("bench: pthread_create");
        exit(1);
    }
    while (!atomic_load_explicit(&ring.consumer_ready, memory_order_acquire))
        bench_spin(&spins);

    BENCH_MEASURE_BEGIN();
    double t0 = bench_now();
    for (size_t i = 0; i < o->objects; i++) {
        void *p = obj_alloc(o->size);
        if (p == NULL)
            die_oom("xthread", i);
        touch_object(p, o->size, (unsigned char)i);
        ring_push(&ring, &me, p);
    }
    ring_push(&ring, &me, NULL);
    pthread_join(consumer, NULL);
    double t1 = bench_now();
    BENCH_MEASURE_END();

    snprintf(extra, sizeof(extra), "ops=%zu ring=%u publish=%u", o->objects, RING_SLOTS,
             RING_PUBLISH);
    print_result("xthread", o->size, (t1 - t0) * 1e9 / (double)o->objects, extra);
    print_measured("xthread", o->objects);
}

/* ------------------------------------------------------------ retention */

/* Allocate n objects chained through their first word, in allocation order. */
static void *retention_fill(size_t n, size_t size)
{
    void *head = NULL, **tail_link = &head;

    for (size_t i = 0; i < n; i++) {
        void **p = obj_alloc(size);
        if (p == NULL)
            die_oom("retention", i);
        touch_object(p, size, (unsigned char)i);
        *p = NULL;
        *tail_link = p;
        tail_link = p;
    }
    return head;
}

static void retention_free_all(void *head, size_t size)
{
    while (head != NULL) {
        void *next = *(void **)head;
        obj_free(head, size);
        head = next;
    }
}

static void run_retention(const struct bench_opts *o)
{
    size_t n = o->retention_mb * 1024 * 1024 / o->size;
    char extra[320];

    if (o->size < sizeof(void *)) {
        fprintf(stderr, "bench: retention needs objects of at least %zu bytes\n",
                sizeof(void *));
        exit(1);
    }
    size_t rss_before = proc_rss_bytes();

    BENCH_MEASURE_BEGIN();
    double t0 = bench_now();
    void *head = retention_fill(n, o->size);
    double t1 = bench_now();
    size_t rss_full = proc_rss_bytes();
    retention_free_all(head, o->size);
    double t2 = bench_now();
    BENCH_MEASURE_END();

    size_t rss_after_free = proc_rss_bytes();
    const char *purge = backend_purge();
    size_t rss_after_purge = proc_rss_bytes();
    size_t rss_peak = bench_peak_rss_bytes();
    if (rss_full > rss_peak)
        rss_peak = rss_full;

    snprintf(extra, sizeof(extra),
             "ops=%zu alloc_ns=%.2f free_ns=%.2f rss_before_mib=%.1f rss_peak_mib=%.1f "
             "rss_after_free_mib=%.1f rss_after_purge_mib=%.1f retained_mib=%.1f purge=%s",
             n, (t1 - t0) * 1e9 / (double)n, (t2 - t1) * 1e9 / (double)n, bench_mib(rss_before),
             bench_mib(rss_peak), bench_mib(rss_after_free), bench_mib(rss_after_purge),
             bench_mib(rss_after_free) - bench_mib(rss_before), purge);
    print_result("retention", o->size, (t2 - t0) * 1e9 / (double)n, extra);
    print_measured("retention", n);
}

/* ---------------------------------------------------------------- main */

static size_t env_size(const char *name, size_t dflt)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? strtoull(v, NULL, 0) : dflt;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_alloc_%s --test churn|batch|xthread|retention [options]\n"
            "  --size N          object size in bytes (default 64; retention 120)\n"
            "  --quick           small counts for a smoke run (also BENCH_QUICK=1)\n"
            "  --live N          churn: live objects (100000)\n"
            "  --pairs N         churn: timed free+alloc pairs (4000000)\n"
            "  --objects N       batch: objects per round (1000000); xthread: total (2000000)\n"
            "  --rounds N        batch: rounds, the first cold (3)\n"
            "  --retention-mb N  retention: MiB of objects (BENCH_RETENTION_MB, 6144)\n"
            "  --seed N          RNG seed (0x5eed)\n"
            "  --identify        only print which allocator serves this process\n",
            BENCH_ALLOC_NAME);
}

enum { OPT_SIZE = 256, OPT_LIVE, OPT_PAIRS, OPT_OBJECTS, OPT_ROUNDS, OPT_RETENTION, OPT_SEED };

static void defaults(struct bench_opts *o, int quick, int objects_given)
{
    if (strcmp(o->test, "xthread") == 0 && !objects_given)
        o->objects = quick ? 200000 : 2000000;
    if (quick) {
        o->pairs = o->pairs ? o->pairs : 500000;
        o->objects = o->objects ? o->objects : 200000;
        o->rounds = o->rounds ? o->rounds : 2;
        o->retention_mb = o->retention_mb ? o->retention_mb : env_size("BENCH_RETENTION_MB", 256);
    }
    o->live = o->live ? o->live : 100000;
    o->pairs = o->pairs ? o->pairs : 4000000;
    o->objects = o->objects ? o->objects : 1000000;
    o->rounds = o->rounds ? o->rounds : 3;
    o->retention_mb = o->retention_mb ? o->retention_mb : env_size("BENCH_RETENTION_MB", 6144);
    if (o->size == 0)
        o->size = strcmp(o->test, "retention") == 0 ? 120 : 64;
}

/* Parse argv into *o; returns 1 for --identify, 0 otherwise; exits on error. */
static int parse_args(int argc, char **argv, struct bench_opts *o)
{
    static const struct option longopts[] = {
        {"test", required_argument, NULL, 't'},   {"size", required_argument, NULL, OPT_SIZE},
        {"quick", no_argument, NULL, 'q'},        {"live", required_argument, NULL, OPT_LIVE},
        {"pairs", required_argument, NULL, OPT_PAIRS},
        {"objects", required_argument, NULL, OPT_OBJECTS},
        {"rounds", required_argument, NULL, OPT_ROUNDS},
        {"retention-mb", required_argument, NULL, OPT_RETENTION},
        {"seed", required_argument, NULL, OPT_SEED},
        {"identify", no_argument, NULL, 'i'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int quick = env_size("BENCH_QUICK", 0) != 0, identify = 0, objects_given = 0, c;

    memset(o, 0, sizeof(*o));
    o->seed = 0x5eed;
    while ((c = getopt_long(argc, argv, "t:qih", longopts, NULL)) != -1) {
        switch (c) {
        case 't': o->test = optarg; break;
        case 'q': quick = 1; break;
        case 'i': identify = 1; break;
        case 'h': usage(stdout); exit(0);
        case OPT_SIZE: o->size = strtoull(optarg, NULL, 0); break;
        case OPT_LIVE: o->live = strtoull(optarg, NULL, 0); break;
        case OPT_PAIRS: o->pairs = strtoull(optarg, NULL, 0); break;
        case OPT_OBJECTS: o->objects = strtoull(optarg, NULL, 0); objects_given = 1; break;
        case OPT_ROUNDS: o->rounds = (unsigned)strtoul(optarg, NULL, 0); break;
        case OPT_RETENTION: o->retention_mb = strtoull(optarg, NULL, 0); break;
        case OPT_SEED: o->seed = strtoull(optarg, NULL, 0) | 1; break;
        default: usage(stderr); exit(1);
        }
    }
    if (identify)
        return 1;
    if (o->test == NULL) {
        usage(stderr);
        exit(1);
    }
    defaults(o, quick, objects_given);
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    int identify_only = parse_args(argc, argv, &o);

    if (!backend_identify(stdout)) {
        fprintf(stderr, "bench_alloc_%s: the allocator in use is not %s; refusing to measure\n",
                BENCH_ALLOC_NAME, BENCH_ALLOC_NAME);
        return 2;
    }
    if (identify_only)
        return 0;
    if (backend_setup(o.size) != 0) {
        fprintf(stderr, "bench_alloc_%s: set-up for size %zu failed: %s\n", BENCH_ALLOC_NAME,
                o.size, strerror(errno));
        return 1;
    }
    if (strcmp(o.test, "churn") == 0)
        run_churn(&o);
    else if (strcmp(o.test, "batch") == 0)
        run_batch(&o);
    else if (strcmp(o.test, "xthread") == 0)
        run_xthread(&o);
    else if (strcmp(o.test, "retention") == 0)
        run_retention(&o);
    else {
        fprintf(stderr, "bench: unknown test '%s'\n", o.test);
        return 1;
    }
    backend_teardown();
    return 0;
}
