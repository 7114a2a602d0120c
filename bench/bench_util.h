/*
 * bench_util.h: the harness pieces the allocator benchmark shares — clock,
 * seeded RNG, RSS probes, allocator-independent arrays, the "touch" rule, and
 * the callgrind markers.
 *
 * Everything here must cost the same whatever allocator is under test:
 *   - arrays of object pointers come from mmap, not malloc, so the harness
 *     never runs through the allocator being measured (and the retention
 *     test's RSS baseline is not moved by harness allocations);
 *   - random choices use one fixed-seed xorshift64* generator with Lemire's
 *     multiply-shift reduction (no division), computed inline in the timed
 *     loop: a few cycles, identical for all allocators;
 *   - touch_object() writes the first and the last byte of a new object.
 *     That is what "touch it" means in every test: it faults in the object's
 *     page(s) and pulls its cache lines like a real initialisation would start
 *     to, without a full memset whose 1 KiB copy would dilute the allocator's
 *     share of the time (and so every ratio) for large objects.
 * Timing is wall-clock CLOCK_MONOTONIC; under valgrind use the instruction
 * counts instead (run.sh callgrind), which are repeatable on a busy machine.
 */
#ifndef SLABDEFRAG_BENCH_UTIL_H
#define SLABDEFRAG_BENCH_UTIL_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "../tools/proc_rss.h" /* proc_rss_bytes(): RSS in bytes */
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
/* Instrument only the timed region under `valgrind --instr-atstart=no`;
 * no-ops when the header is absent or the program runs natively. */
#ifdef CALLGRIND_START_INSTRUMENTATION
#define BENCH_MEASURE_BEGIN() CALLGRIND_START_INSTRUMENTATION
#define BENCH_MEASURE_END() CALLGRIND_STOP_INSTRUMENTATION
#else
#define BENCH_MEASURE_BEGIN() ((void)0)
#define BENCH_MEASURE_END() ((void)0)
#endif

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64* (Vigna): full period over non-zero states, good low bits. */
struct bench_rng {
    uint64_t state;
};

static inline uint64_t bench_rng_next(struct bench_rng *r)
{
    uint64_t x = r->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n) for n < 2^32, by multiply-shift (Lemire). */
static inline uint32_t bench_rng_below(struct bench_rng *r, uint32_t n)
{
    return (uint32_t)(((bench_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static inline void touch_object(void *p, size_t size, unsigned char value)
{
    unsigned char *c = p;
    c[0] = value;
    c[size - 1] = value;
}

/* Peak RSS of the process (VmHWM from /proc/self/status), in bytes. */
static inline size_t bench_peak_rss_bytes(void)
{
    char line[256];
    unsigned long kib = 0;
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmHWM: %lu kB", &kib) == 1)
            break;
    fclose(f);
    return (size_t)kib * 1024;
}

static inline double bench_mib(size_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

/* A zeroed array of n pointers that never comes from the allocator under test. */
static inline void **bench_ptr_array(size_t n)
{
    void *p = mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("bench: mmap");
        exit(1);
    }
    return p;
}

static inline void bench_ptr_array_free(void **a, size_t n)
{
    munmap(a, n * sizeof(void *));
}

/* Pre-fault an array so first-touch page faults of the harness are not timed. */
static inline void bench_prefault(void **a, size_t n)
{
    long page_ptrs = sysconf(_SC_PAGESIZE) / (long)sizeof(void *);
    for (size_t i = 0; i < n; i += (size_t)page_ptrs)
        ((volatile void **)a)[i] = NULL;
}

/* Spin politely, then yield: on a 2-core machine shared with other jobs the
 * peer thread may be descheduled, and burning its core helps nobody. */
static inline void bench_spin(unsigned *spins)
{
    if (++*spins < 2048) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        sched_yield();
    }
}

#endif /* SLABDEFRAG_BENCH_UTIL_H */
