/*
 * testutil: the few helpers every test program shares.
 *
 * CHECK(cond, fmt, ...) fails the test (exit 1) with file:line and a message.
 * run_child()          fork, run fn(arg) with stderr to a pipe; returns the wait
 *                      status, and child_stderr holds what the child wrote.
 * expect_die()         run_child() + check: killed by a signal, stderr holds every
 *                      needle of a NULL-terminated list.  Prints why on failure.
 * expect_abort()       expect_die() labelled "expect_abort".
 * expect_death()       the same with one needle (or none).
 * expect_survive()     run_child() + check: the child exited with status 0.
 * wait_child_for()     waitpid with a deadline: a hung child is killed, -1.
 * fork_many()          fork children one by one, each with that deadline.
 * stderr_capture_*()   redirect fd 2 to a temporary file and read it back.
 * cache_stats()        slab_cache_get_stats() that fails the test on error;
 *                      print_stats() prints a snapshot to stderr.
 * slab_base()          the slab that holds an object (slabs are aligned blocks
 *                      of slab_size bytes).
 * resident_bytes()     how much of [addr, addr+len) is resident, from mincore();
 *                      unmapped pages count as not resident.  Unlike the process
 *                      RSS this is meaningful under ASan and TSan too.
 * proc_rss_bytes()     the process RSS from /proc/self/statm (tools/proc_rss.h).
 * xorshift64 is the seeded generator used by randomised tests; a test that
 * takes a seed prints it on failure so a run can be replayed.
 */
#ifndef SLABDEFRAG_TESTUTIL_H
#define SLABDEFRAG_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include <slabdefrag/slab.h>

#include "../../tools/proc_rss.h"

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

/* What the last run_child() child wrote to stderr (NUL-terminated, truncated). */
extern char child_stderr[16384];

/* Fork; run fn(arg) in the child with stderr going to a pipe (SIGABRT at its
 * default).  Returns the child's wait status; fails the test if fork fails. */
int run_child(void (*fn)(void *), void *arg);

/* Returns 0 when the child was killed by a signal and its stderr contains every
 * string of the NULL-terminated list `needles` (NULL: any text); otherwise
 * prints why, prefixed by `label`, and returns -1. */
int expect_die(const char *label, void (*fn)(void *), void *arg, const char *const *needles);
int expect_abort(void (*fn)(void *), void *arg, const char *const *needles);
int expect_death(void (*fn)(void *), void *arg, const char *needle);

/* Returns 0 when the child exited normally with status 0 (nothing was reported). */
int expect_survive(const char *label, void (*fn)(void *), void *arg);

/* Redirect stderr to a temporary file until stderr_capture_end(), which returns
 * what was written (malloc'ed, NUL-terminated) and restores stderr. */
struct stderr_capture {
    int saved_fd;
    FILE *tmp;
};
void stderr_capture_begin(struct stderr_capture *c);
char *stderr_capture_end(struct stderr_capture *c);

struct slab_cache_stats cache_stats(struct slab_cache *s);
void print_stats(const char *what, const struct slab_cache_stats *st);

static inline uintptr_t slab_base(const void *obj, size_t slab_size)
{
    return (uintptr_t)obj & ~(uintptr_t)(slab_size - 1);
}

size_t resident_bytes(const void *addr, size_t len);

/* Wait at most secs for child pid: its exit status (128 + signal if killed),
 * or -1 if it was still running (it is then killed and reaped). */
int wait_child_for(pid_t pid, double secs);

/* Fork `forks` children one after another, each running child_main (which
 * exits; returning is exit 0); 0 when all exited 0, else -1 after printing
 * which fork's child failed or hung (waited for at most max_secs each). */
int fork_many(int forks, void (*child_main)(void), double max_secs);

/* Seconds since an arbitrary start (CLOCK_MONOTONIC). */
double now_seconds(void);

/* The directory of this test's executable (static buffer; aborts the test if
 * /proc/self/exe cannot be read): build artefacts are found relative to it. */
const char *test_binary_dir(void);

static inline uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* Seed from argv[i] if present, else from $SLABDEFRAG_SEED, else `fallback`. */
uint64_t test_seed(int argc, char **argv, int i, uint64_t fallback);

/* Long runs: $SLABDEFRAG_STRESS_SECONDS if set (make stress), else `dflt`. */
double stress_seconds(double dflt);

/* 1 when built with a sanitizer (RSS and timing are not meaningful there). */
int under_sanitizer(void);

#endif
