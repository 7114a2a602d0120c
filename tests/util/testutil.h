/*
 * testutil: the few helpers every test program shares.
 *
 * CHECK(cond, fmt, ...) fails the test (exit 1) with file:line and a message.
 * expect_death() runs a function in a forked child and checks that the child
 * dies from a signal (abort) and that its stderr contains a given text.
 * rss_bytes() reads the process RSS from /proc/self/statm.
 * xorshift64 is the seeded generator used by randomised tests; a test that
 * takes a seed prints it on failure so a run can be replayed.
 */
#ifndef SLABDEFRAG_TESTUTIL_H
#define SLABDEFRAG_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

/* Fork; run fn(arg) in the child.  Returns 0 when the child was killed by a
 * signal and its stderr contains `needle`; otherwise prints why and returns -1. */
int expect_death(void (*fn)(void *), void *arg, const char *needle);

/* Resident set size of this process in bytes. */
size_t rss_bytes(void);

/* Seconds since an arbitrary start (CLOCK_MONOTONIC). */
double now_seconds(void);

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
