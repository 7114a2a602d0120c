/*
 * defrag_bench.c: memory given back after fragmentation — slabdefrag's
 * defragmentation against the purge calls of glibc, jemalloc, mimalloc and
 * tcmalloc.  One source, one executable per allocator (bench_defrag for
 * slabdefrag, bench_defrag_<peer>), through the same seam as the allocator
 * benchmark (alloc_backend.h: obj_alloc/obj_free, backend_purge).
 *
 * Patterns (256 B objects, BENCH_DEFRAG_MB of them, default 1024 MiB):
 *   random  free a random 90% (seeded xorshift64*, same for everyone);
 *   sparse  keep one object per 4 KiB of allocation order (1 in 16);
 *   half    free every other object (fragmentation >= 1.4 before, as in
 *           Redis' defrag test).
 * Then "defrag": slabdefrag: slab_cache_shrink() (every partial slab, moves
 * through the owner's callback); peers: their documented purge
 * (malloc_trim(0), mallctl arena purge, mi_collect(true),
 * MallocExtension_ReleaseFreeMemory()).  --background (slabdefrag only):
 * slab_defrag_start() does the work instead; the run reports its longest step.
 *
 * The owner.  Objects live in an array of pointers (mmap'ed, not from the
 * allocator); each object stores its slot index in its first 8 bytes, and
 * slabdefrag's move callback copies the object and re-points the slot — the
 * minimal client that makes objects movable.  Every live object's contents are
 * verified after the defrag.
 *
 * Reported (one "DEFRAG ..." line): live MiB; RSS above the baseline (RSS
 * before the first object, harness array included) divided by live bytes,
 * before and after the defrag; defrag wall and CPU time; MiB returned and CPU
 * ms per MiB returned; the time to memcpy the live bytes once; for
 * --background, the longest step.
 *
 * The physical limit of the pass (limit_ms, and pass_over_limit = wall /
 * limit): what any defragmenter must at least do — copy the bytes that moved
 * (slabdefrag's moved-object count times the object size; 0 for the peers,
 * which move nothing) between two resident buffers, plus one MADV_DONTNEED of
 * the bytes handed back (slabdefrag: the drop of bytes_mapped; peers: the RSS
 * drop) over a resident buffer; best of 3, measured in this process right
 * after the pass.  limit_cpu_ms and cpu_over_limit_cpu are the same in CPU
 * time (pass CPU / limit CPU): the fair ratio when other processes compete for
 * the CPUs (wall times then include waiting for one).  --perf-ctl FIFO writes "enable"/"disable" around the pass
 * to a `perf record --control fifo:FIFO -D -1` control pipe, so a profile
 * shows the pass and nothing else.
 */
#define _GNU_SOURCE
#include "alloc_backend.h"
#include "bench_util.h"

#include <getopt.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define OBJ_SIZE 256

static void **slots;
static size_t nslots;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fill_object(void *p, size_t slot)
{
    memcpy(p, &slot, sizeof slot);
    memset((char *)p + sizeof slot, (int)(slot * 131 % 251), OBJ_SIZE - sizeof slot);
}

static int object_intact(const void *p, size_t slot)
{
    size_t stored;
    const unsigned char *c = p;
    memcpy(&stored, p, sizeof stored);
    if (stored != slot)
        return 0;
    unsigned char v = (unsigned char)(slot * 131 % 251);
    return c[sizeof slot] == v && c[OBJ_SIZE / 2] == v && c[OBJ_SIZE - 1] == v;
}

#if defined(BENCH_ALLOC_SLABDEFRAG)
/* The owner's move callback: copy, re-point the slot, done.  The benchmark's
 * main thread does not touch slots while a pass runs, so no lock is needed. */
static enum slab_move_result bench_move(void *old_obj, void *new_obj, size_t size, void *arg)
{
    size_t slot;
    memcpy(&slot, old_obj, sizeof slot);
    if (slot >= nslots || slots[slot] != old_obj)
        return SLAB_MOVE_DONT_KNOW;
    memcpy(new_obj, old_obj, size);
    slots[slot] = new_obj;
    return SLAB_MOVE_YES;
}
#endif

static int keep(const char *pattern, size_t i, struct bench_rng *rng)
{
    if (strcmp(pattern, "random") == 0)
        return bench_rng_below(rng, 10) == 0;
    if (strcmp(pattern, "sparse") == 0)
        return i % (4096 / OBJ_SIZE) == 0;
    return i % 2 == 0; /* half */
}

/* Time to copy `bytes` once, memory already faulted in (the target's unit). */
static double memcpy_seconds(size_t bytes)
{
    char *a = (char *)bench_ptr_array(bytes / sizeof(void *) + 1);
    char *b = (char *)bench_ptr_array(bytes / sizeof(void *) + 1);
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    double best = 1e9;
    for (int r = 0; r < 3; r++) {
        double t0 = bench_now();
        memcpy(b, a, bytes);
        __asm__ volatile("" ::"r"(b) : "memory");
        double t = bench_now() - t0;
        best = t < best ? t : best;
    }
    bench_ptr_array_free((void **)a, bytes / sizeof(void *) + 1);
    bench_ptr_array_free((void **)b, bytes / sizeof(void *) + 1);
    return best;
}

struct run {
    size_t live, rss_base, rss_before, rss_after;
    double wall, cpu, longest_step_us;
};

static void defrag_now(struct run *r, int background)
{
    double w0 = bench_now(), c0 = cpu_now();
    r->longest_step_us = 0;
#if defined(BENCH_ALLOC_SLABDEFRAG)
    if (background) {
        /* Every partial slab is a candidate (the half pattern leaves slabs at
         * 50%); 25% CPU is Redis' upper bound for active defrag. */
        struct slab_defrag_policy pol = {.interval_ms = 10, .cpu_budget_percent = 25,
                                         .max_step_us = 1000, .slab_fill_percent = 90};
        if (slab_defrag_start(&pol) != 0) {
            fprintf(stderr, "bench_defrag: slab_defrag_start failed\n");
            exit(1);
        }
        struct slab_cache_stats st;
        struct slab_defrag_status ds = {0};
        size_t needed = (r->live * OBJ_SIZE) * 21 / 20 + (1u << 20);
        uint64_t last_released = 0;
        double last_progress = bench_now();
        /* Until dense, or 3 s without progress (the policy's thresholds say stop). */
        while (bench_now() - last_progress < 3.0) {
            usleep(10000);
            slab_cache_get_stats(bench_slab_cache, &st);
            slab_defrag_get_status(&ds);
            if (st.bytes_mapped <= needed)
                break;
            if (ds.bytes_released != last_released) {
                last_released = ds.bytes_released;
                last_progress = bench_now();
            }
        }
        slab_defrag_get_status(&ds);
        slab_defrag_stop();
        r->longest_step_us = (double)ds.longest_step_ns / 1e3;
        r->cpu = (double)ds.cpu_ns * 1e-9; /* the defragmenter's own thread */
        r->wall = bench_now() - w0;
        return;
    }
#endif
    (void)background;
    backend_purge();
    r->wall = bench_now() - w0;
    r->cpu = cpu_now() - c0;
}

/* The physical limit: memcpy of `moved` bytes between resident buffers plus
 * one MADV_DONTNEED of `released` resident bytes; best of 3, wall time (the
 * return value) and CPU time (*cpu, comparable with the pass's CPU time when
 * other processes compete for the CPUs). */
static double limit_seconds(size_t moved, size_t released, double *cpu)
{
    size_t mw = moved / sizeof(void *) + 1, rw = released / sizeof(void *) + 1;
    char *a = (char *)bench_ptr_array(mw), *b = (char *)bench_ptr_array(mw);
    char *r = (char *)bench_ptr_array(rw);
    memset(a, 1, moved);
    memset(b, 2, moved);
    double best = 1e9;
    *cpu = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        memset(r, 3, released);
        double t0 = bench_now(), c0 = cpu_now();
        memcpy(b, a, moved);
        __asm__ volatile("" ::"r"(b) : "memory");
        if (released)
            madvise(r, released, MADV_DONTNEED);
        double t = bench_now() - t0, c = cpu_now() - c0;
        best = t < best ? t : best;
        *cpu = c < *cpu ? c : *cpu;
    }
    bench_ptr_array_free((void **)a, mw);
    bench_ptr_array_free((void **)b, mw);
    bench_ptr_array_free((void **)r, rw);
    return best;
}

static void perf_ctl(const char *fifo, const char *cmd)
{
    if (!fifo)
        return;
    FILE *f = fopen(fifo, "w");
    if (!f) {
        perror("bench_defrag: --perf-ctl");
        exit(2);
    }
    fprintf(f, "%s\n", cmd);
    fclose(f);
}

/* Objects moved and slab bytes held (slabdefrag); zeros for the peers. */
static void slab_counts(uint64_t *moved, uint64_t *mapped)
{
    *moved = *mapped = 0;
#if defined(BENCH_ALLOC_SLABDEFRAG)
    struct slab_cache_stats st;
    slab_cache_get_stats(bench_slab_cache, &st);
    *moved = st.defrag_objects_moved;
    *mapped = st.bytes_mapped;
#endif
}

static size_t verify_all(void)
{
    size_t live = 0;
    for (size_t i = 0; i < nslots; i++)
        if (slots[i]) {
            if (!object_intact(slots[i], i)) {
                fprintf(stderr, "bench_defrag: object %zu corrupted after defrag\n", i);
                exit(1);
            }
            live++;
        }
    return live;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_defrag[_<alloc>] [--pattern random|sparse|half] [--mb N] "
                    "[--quick] [--background] [--seed N] [--perf-ctl FIFO] | --identify\n"
                    "  env: BENCH_DEFRAG_MB (default 1024), BENCH_QUICK=1 (64 MiB)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *pattern = "random";
    size_t mb = getenv("BENCH_DEFRAG_MB") ? strtoul(getenv("BENCH_DEFRAG_MB"), NULL, 0) : 1024;
    int background = 0, identify = 0;
    const char *perf_fifo = NULL;
    uint64_t seed = 0x5eed;
    if (getenv("BENCH_QUICK") && atoi(getenv("BENCH_QUICK")) && !getenv("BENCH_DEFRAG_MB"))
        mb = 64;
    static const struct option opts[] = {
        {"pattern", 1, 0, 'p'}, {"mb", 1, 0, 'm'},         {"quick", 0, 0, 'q'},
        {"background", 0, 0, 'b'}, {"seed", 1, 0, 's'}, {"identify", 0, 0, 'i'},
        {"perf-ctl", 1, 0, 'P'}, {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'p': pattern = optarg; break;
        case 'm': mb = strtoul(optarg, NULL, 0); break;
        case 'q': mb = 64; break;
        case 'b': background = 1; break;
        case 's': seed = strtoull(optarg, NULL, 0); break;
        case 'i': identify = 1; break;
        case 'P': perf_fifo = optarg; break;
        default: usage();
        }
    }
    if (!backend_identify(stdout))
        return 2;
    if (identify)
        return 0;
    if (strcmp(pattern, "random") && strcmp(pattern, "sparse") && strcmp(pattern, "half"))
        usage();
#if !defined(BENCH_ALLOC_SLABDEFRAG)
    if (background) {
        fprintf(stderr, "--background is for slabdefrag only\n");
        return 2;
    }
#endif
    if (backend_setup(OBJ_SIZE) != 0)
        return 1;
#if defined(BENCH_ALLOC_SLABDEFRAG)
    /* Callbacks go on before the first allocation of a ctor-less cache. */
    if (slab_cache_set_move(bench_slab_cache, bench_move, NULL) != 0) {
        fprintf(stderr, "bench_defrag: slab_cache_set_move failed\n");
        return 1;
    }
#endif
    nslots = (mb << 20) / OBJ_SIZE;
    slots = bench_ptr_array(nslots);
    memset(slots, 0, nslots * sizeof *slots); /* fault the harness array in */
    struct run r = {0};
    double memcpy_s = 0;
    r.rss_base = proc_rss_bytes();

    for (size_t i = 0; i < nslots; i++) {
        if (!(slots[i] = obj_alloc(OBJ_SIZE))) {
            fprintf(stderr, "bench_defrag: allocation %zu failed\n", i);
            return 1;
        }
        fill_object(slots[i], i);
    }
    struct bench_rng rng = {seed};
    for (size_t i = 0; i < nslots; i++)
        if (!keep(pattern, i, &rng)) {
            obj_free(slots[i], OBJ_SIZE);
            slots[i] = NULL;
        }
    r.live = verify_all();
    r.rss_before = proc_rss_bytes();
    uint64_t moved0, mapped0, moved1, mapped1;
    slab_counts(&moved0, &mapped0);
    perf_ctl(perf_fifo, "enable");
    defrag_now(&r, background);
    perf_ctl(perf_fifo, "disable");
    r.rss_after = proc_rss_bytes();
    slab_counts(&moved1, &mapped1);
    if (verify_all() != r.live) {
        fprintf(stderr, "bench_defrag: live objects changed\n");
        return 1;
    }
    memcpy_s = memcpy_seconds(r.live * OBJ_SIZE);
    size_t moved_b = (size_t)(moved1 - moved0) * OBJ_SIZE;
    size_t released_b = mapped0 > mapped1 ? (size_t)(mapped0 - mapped1)
                        : r.rss_before > r.rss_after ? r.rss_before - r.rss_after : 0;
    released_b &= ~(size_t)4095;
    double limit_cpu_s;
    double limit_s = limit_seconds(moved_b, released_b, &limit_cpu_s);

    double live_b = (double)r.live * OBJ_SIZE;
    double before = (double)(r.rss_before - r.rss_base), after = (double)(r.rss_after - r.rss_base);
    double returned_mb = (before - after) / (1024.0 * 1024.0);
    printf("DEFRAG alloc=%s%s pattern=%s mb=%zu live_mb=%.1f ratio_before=%.2f ratio_after=%.2f "
           "rss_before_mb=%.1f rss_after_mb=%.1f wall_ms=%.2f cpu_ms=%.2f returned_mb=%.1f "
           "cpu_ms_per_mb=%.3f memcpy_ms=%.2f wall_over_memcpy=%.2f longest_step_us=%.1f moved_mb=%.1f released_mb=%.1f "
           "limit_ms=%.2f pass_over_limit=%.2f limit_cpu_ms=%.2f cpu_over_limit_cpu=%.2f\n",
           BENCH_ALLOC_NAME, background ? "-bg" : "", pattern, mb, live_b / 1048576.0,
           before / live_b, after / live_b, before / 1048576.0, after / 1048576.0, r.wall * 1e3,
           r.cpu * 1e3, returned_mb, returned_mb > 0.1 ? r.cpu * 1e3 / returned_mb : 0.0,
           memcpy_s * 1e3, memcpy_s > 0 ? r.wall / memcpy_s : 0.0, r.longest_step_us,
           moved_b / 1048576.0, released_b / 1048576.0, limit_s * 1e3,
           limit_s > 0 ? r.wall / limit_s : 0.0, limit_cpu_s * 1e3,
           limit_cpu_s > 0 ? r.cpu / limit_cpu_s : 0.0);
    for (size_t i = 0; i < nslots; i++)
        if (slots[i])
            obj_free(slots[i], OBJ_SIZE);
    bench_ptr_array_free(slots, nslots);
    backend_teardown();
    return 0;
}
