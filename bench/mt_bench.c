/*
 * mt_bench.c: how an allocator scales with threads — one source, one
 * executable per allocator (bench_mt_<name>, the same seam as the allocator
 * benchmark: alloc_backend.h), one test and one thread count per process.
 *
 *   churn  every thread keeps its own `live` (10k) objects and, for `pairs`
 *          steps, frees a random one of them and allocates (and touches) a
 *          replacement: thread-local work only.  An allocator with no shared
 *          state on its fast paths keeps the same ns per pair per thread from
 *          1 to N threads (while there are cores for them).
 *          Reported: ns per free+alloc pair per thread (mean over threads of
 *          each thread's own wall time / its pairs).
 *   ring   threads 0..N-1 in a ring: each allocates (and touches) batches of
 *          256 objects and hands every batch to the next thread through a
 *          single-producer single-consumer queue; the next thread frees them.
 *          So every free is a remote free.  Reported: total objects allocated
 *          and freed per second over all threads (M objects/s), from the wall
 *          time between the start barrier and the last thread's finish.
 *          Needs 2 threads at least.
 *
 * Output, parsed by bench/run.sh and bench/mt_table.py:
 *   RESULT alloc=<name> test=mt_churn threads=<n> size=<bytes> ns_per_op=<ns>
 *   RESULT alloc=<name> test=mt_ring threads=<n> size=<bytes> mops=<M/s> ns_per_op=<1000/mops>
 * Harness memory (pointer arrays, queues) comes from mmap (bench_util.h), so
 * it never runs through the allocator under test; threads start together at
 * a barrier after an untimed warm-up; the RNG is seeded per thread, the same
 * for every allocator.
 *
 * Usage: bench_mt_<name> --test churn|ring --threads N [--size B] [--quick]
 *        bench_mt_<name> --identify
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

#define BATCH 256
#define QUEUE_BATCHES 16 /* per ring link */

struct mt_opts {
    const char *test;
    unsigned threads;
    size_t size, live, pairs, ring_objects;
};

static struct mt_opts opt = { .test = "churn", .threads = 1, .size = 64 };
static pthread_barrier_t start_barrier;

static void die(const char *what)
{
    fprintf(stderr, "bench_mt_%s: %s: %s\n", BENCH_ALLOC_NAME, what, strerror(errno));
    exit(1);
}

static void *alloc_touched(unsigned char v)
{
    void *p = obj_alloc(opt.size);
    if (!p)
        die("allocation failed");
    touch_object(p, opt.size, v);
    return p;
}

/* ---- churn ----------------------------------------------------------------- */
struct churn_thread {
    pthread_t th;
    unsigned id;
    double ns_per_pair;
};

static void *churn_main(void *arg)
{
    struct churn_thread *t = arg;
    struct bench_rng rng = { 0x9e3779b97f4a7c15ull * (t->id + 1) };
    void **live = bench_ptr_array(opt.live);
    bench_prefault(live, opt.live);
    for (size_t i = 0; i < opt.live; i++)
        live[i] = alloc_touched(1);
    for (size_t i = 0; i < opt.live; i++) { /* warm-up: reach the steady state */
        uint32_t k = bench_rng_below(&rng, (uint32_t)opt.live);
        obj_free(live[k], opt.size);
        live[k] = alloc_touched(2);
    }
    pthread_barrier_wait(&start_barrier);
    double t0 = bench_now();
    for (size_t i = 0; i < opt.pairs; i++) {
        uint32_t k = bench_rng_below(&rng, (uint32_t)opt.live);
        obj_free(live[k], opt.size);
        live[k] = alloc_touched(3);
    }
    t->ns_per_pair = (bench_now() - t0) * 1e9 / (double)opt.pairs;
    for (size_t i = 0; i < opt.live; i++)
        obj_free(live[i], opt.size);
    bench_ptr_array_free(live, opt.live);
    return NULL;
}

static void run_churn(void)
{
    struct churn_thread *t = calloc(opt.threads, sizeof *t);
    if (!t)
        die("calloc");
    for (unsigned i = 0; i < opt.threads; i++) {
        t[i].id = i;
        if (pthread_create(&t[i].th, NULL, churn_main, &t[i]) != 0)
            die("pthread_create");
    }
    double sum = 0;
    for (unsigned i = 0; i < opt.threads; i++) {
        pthread_join(t[i].th, NULL);
        sum += t[i].ns_per_pair;
    }
    printf("RESULT alloc=%s test=mt_churn threads=%u size=%zu ns_per_op=%.2f\n", BENCH_ALLOC_NAME,
           opt.threads, opt.size, sum / opt.threads);
    free(t);
}

/* ---- ring ------------------------------------------------------------------ */
/* The link from thread i to thread i+1: a bounded SPSC queue of batches. */
struct link {
    _Alignas(64) _Atomic size_t head; /* batches published by the producer */
    _Alignas(64) _Atomic size_t tail; /* batches consumed */
    _Alignas(64) void *slots[QUEUE_BATCHES][BATCH];
};

struct ring_thread {
    pthread_t th;
    unsigned id;
    struct link *out, *in;
};

static size_t ring_batches; /* per thread */

static void *ring_main(void *arg)
{
    struct ring_thread *t = arg;
    size_t made = 0, freed = 0;
    unsigned spins = 0;
    pthread_barrier_wait(&start_barrier);
    while (made < ring_batches || freed < ring_batches) {
        int worked = 0;
        size_t tail = atomic_load_explicit(&t->in->tail, memory_order_relaxed);
        if (freed < ring_batches && atomic_load_explicit(&t->in->head, memory_order_acquire) != tail) {
            void **b = t->in->slots[tail % QUEUE_BATCHES];
            for (unsigned i = 0; i < BATCH; i++)
                obj_free(b[i], opt.size);
            atomic_store_explicit(&t->in->tail, tail + 1, memory_order_release);
            freed++;
            worked = 1;
        }
        size_t head = atomic_load_explicit(&t->out->head, memory_order_relaxed);
        if (made < ring_batches &&
            head - atomic_load_explicit(&t->out->tail, memory_order_acquire) < QUEUE_BATCHES) {
            void **b = t->out->slots[head % QUEUE_BATCHES];
            for (unsigned i = 0; i < BATCH; i++)
                b[i] = alloc_touched(4);
            atomic_store_explicit(&t->out->head, head + 1, memory_order_release);
            made++;
            worked = 1;
        }
        if (worked)
            spins = 0;
        else
            bench_spin(&spins);
    }
    return NULL;
}

static void run_ring(void)
{
    if (opt.threads < 2) {
        fprintf(stderr, "bench_mt_%s: ring needs 2 threads at least\n", BENCH_ALLOC_NAME);
        exit(2);
    }
    ring_batches = opt.ring_objects / BATCH ? opt.ring_objects / BATCH : 1;
    size_t bytes = sizeof(struct link) * opt.threads;
    struct link *links = (struct link *)bench_ptr_array(bytes / sizeof(void *) + 1);
    struct ring_thread *t = calloc(opt.threads, sizeof *t);
    if (!t)
        die("calloc");
    for (unsigned i = 0; i < opt.threads; i++) {
        t[i].id = i;
        t[i].out = &links[i];
        t[i].in = &links[(i + opt.threads - 1) % opt.threads];
    }
    for (unsigned i = 0; i < opt.threads; i++)
        if (pthread_create(&t[i].th, NULL, ring_main, &t[i]) != 0)
            die("pthread_create");
    pthread_barrier_wait(&start_barrier);
    double t0 = bench_now();
    for (unsigned i = 0; i < opt.threads; i++)
        pthread_join(t[i].th, NULL);
    double secs = bench_now() - t0;
    double mops = (double)ring_batches * BATCH * opt.threads / secs / 1e6;
    printf("RESULT alloc=%s test=mt_ring threads=%u size=%zu mops=%.2f ns_per_op=%.2f\n",
           BENCH_ALLOC_NAME, opt.threads, opt.size, mops, 1000.0 / mops);
    free(t);
    bench_ptr_array_free((void **)links, bytes / sizeof(void *) + 1);
}

/* ---- main -------------------------------------------------------------------- */
static void usage(int rc)
{
    fprintf(rc ? stderr : stdout,
            "usage: bench_mt_%s --test churn|ring --threads N [--size B] [--quick]\n"
            "       bench_mt_%s --identify\n",
            BENCH_ALLOC_NAME, BENCH_ALLOC_NAME);
    exit(rc);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"test", required_argument, NULL, 't'}, {"threads", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'}, {"quick", no_argument, NULL, 'q'},
        {"identify", no_argument, NULL, 'i'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *q = getenv("BENCH_QUICK");
    int quick = q && *q && *q != '0', identify = 0, c;
    while ((c = getopt_long(argc, argv, "t:n:s:qih", longopts, NULL)) != -1) {
        switch (c) {
        case 't': opt.test = optarg; break;
        case 'n': opt.threads = (unsigned)strtoul(optarg, NULL, 10); break;
        case 's': opt.size = strtoul(optarg, NULL, 10); break;
        case 'q': quick = 1; break;
        case 'i': identify = 1; break;
        case 'h': usage(0); break;
        default: usage(1);
        }
    }
    if (!backend_identify(stdout)) {
        fprintf(stderr, "bench_mt_%s: the allocator could not be verified\n", BENCH_ALLOC_NAME);
        return 2;
    }
    if (identify)
        return 0;
    if (opt.threads < 1 || opt.threads > 1024 || opt.size < 8 || opt.size > 32768)
        usage(1);
    opt.live = 10000;
    opt.pairs = quick ? 100000 : 2000000;
    opt.ring_objects = quick ? 100000 : 2000000;
    if (backend_setup(opt.size) != 0)
        die("backend_setup");
    if (pthread_barrier_init(&start_barrier, NULL,
                             opt.threads + (strcmp(opt.test, "ring") == 0)) != 0)
        die("pthread_barrier_init");
    if (strcmp(opt.test, "churn") == 0)
        run_churn();
    else if (strcmp(opt.test, "ring") == 0)
        run_ring();
    else
        usage(1);
    fflush(stdout);
    pthread_barrier_destroy(&start_barrier);
    backend_teardown();
    return 0;
}
