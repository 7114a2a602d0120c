/*
 * slabtest.h: small helpers shared by the tests in tests/slab/ (header only, so
 * the per-directory glob of *.c files does not turn it into a test program).
 *
 * stats()              slab_cache_get_stats() that fails the test on error.
 * slab_base()          the slab that holds an object (slabs are aligned blocks
 *                      of slab_size bytes).
 * resident_bytes()     how much of [addr, addr+len) is resident, from mincore();
 *                      unmapped pages count as not resident.  Unlike the process
 *                      RSS this is meaningful under ASan and TSan too.
 * stderr_capture_*()   redirect fd 2 to a temporary file and read it back.
 * expect_abort()       like expect_death(), but checks that the child's stderr
 *                      holds each of several texts (all must be present).
 */
#ifndef SLABDEFRAG_TESTS_SLABTEST_H
#define SLABDEFRAG_TESTS_SLABTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
/* Fork; run fn(arg) in the child with stderr going to a pipe.  Returns 0 when the
 * child was killed by a signal and its stderr contains every string of the
 * NULL-terminated list `needles`; otherwise prints why and returns -1. */
static inline int expect_abort(void (*fn)(void *), void *arg, const char *const *needles)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        signal(SIGABRT, SIG_DFL);
        fn(arg);
        _exit(0); /* survived: the parent reports the failure */
    }
    close(pipefd[1]);
    static char buf[16384];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(pipefd[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = 0;
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status)) {
        fprintf(stderr, "expect_abort: child was not killed by a signal (status %#x); stderr:\n%s\n",
                status, buf);
        return -1;
    }
    for (const char *const *nd = needles; *nd; nd++) {
        if (!strstr(buf, *nd)) {
            fprintf(stderr, "expect_abort: child died (signal %d) but stderr lacks \"%s\":\n%s\n",
                    WTERMSIG(status), *nd, buf);
            return -1;
        }
    }
    return 0;
}

#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabdefrag/slab.h>

#include "testutil.h"

static inline struct slab_cache_stats stats(struct slab_cache *s)
{
    struct slab_cache_stats st;
    memset(&st, 0, sizeof st);
    int rc = slab_cache_get_stats(s, &st);
    CHECK(rc == 0, "slab_cache_get_stats returned %d", rc);
    return st;
}

static inline void print_stats(const char *what, const struct slab_cache_stats *st)
{
    fprintf(stderr,
            "%s: cache '%s' object_size %zu slab_size %zu objects_per_slab %u "
            "objects_active %llu objects_total %llu slabs %llu partial %llu empty %llu "
            "bytes_mapped %llu allocs %llu frees %llu\n",
            what, st->name ? st->name : "(null)", st->object_size, st->slab_size,
            st->objects_per_slab, (unsigned long long)st->objects_active,
            (unsigned long long)st->objects_total, (unsigned long long)st->slabs,
            (unsigned long long)st->slabs_partial, (unsigned long long)st->slabs_empty,
            (unsigned long long)st->bytes_mapped, (unsigned long long)st->allocs,
            (unsigned long long)st->frees);
}

/* The invariants that hold in every exact snapshot (no thread holds an active slab). */
static inline void check_stats_consistent(const struct slab_cache_stats *st)
{
    if (!(st->objects_active == st->allocs - st->frees && st->allocs >= st->frees &&
          st->objects_total == st->slabs * st->objects_per_slab &&
          st->slabs_partial + st->slabs_empty <= st->slabs &&
          st->objects_active <= st->objects_total &&
          st->bytes_mapped == st->slabs * st->slab_size))
        print_stats("inconsistent stats", st);
    CHECK(st->allocs >= st->frees, "frees exceed allocs");
    CHECK(st->objects_active == st->allocs - st->frees, "objects_active != allocs - frees");
    CHECK(st->objects_total == st->slabs * st->objects_per_slab,
          "objects_total != slabs * objects_per_slab");
    CHECK(st->slabs_partial + st->slabs_empty <= st->slabs, "partial + empty > slabs");
    CHECK(st->objects_active <= st->objects_total, "more active objects than capacity");
    CHECK(st->bytes_mapped == st->slabs * st->slab_size,
          "bytes_mapped != slabs * slab_size");
}

static inline uintptr_t slab_base(const void *obj, size_t slab_size)
{
    return (uintptr_t)obj & ~(uintptr_t)(slab_size - 1);
}

static inline size_t resident_bytes(const void *addr, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)addr & ~(uintptr_t)(page - 1);
    uintptr_t end = ((uintptr_t)addr + len + page - 1) & ~(uintptr_t)(page - 1);
    size_t resident = 0;
    unsigned char vec[64];
    for (uintptr_t p = start; p < end; p += page * sizeof vec) {
        size_t n = (end - p) / page;
        if (n > sizeof vec)
            n = sizeof vec;
        if (mincore((void *)p, n * page, vec) != 0) {
            /* ENOMEM: part of the range is unmapped; look page by page. */
            for (size_t i = 0; i < n; i++) {
                unsigned char v;
                if (mincore((void *)(p + i * page), page, &v) == 0 && (v & 1))
                    resident += page;
            }
            continue;
        }
        for (size_t i = 0; i < n; i++)
            if (vec[i] & 1)
                resident += page;
    }
    return resident;
}

/* Redirect stderr to a temporary file until stderr_capture_end(), which returns
 * what was written (malloc'ed, NUL-terminated) and restores stderr. */
struct stderr_capture {
    int saved_fd;
    FILE *tmp;
};

static inline void stderr_capture_begin(struct stderr_capture *c)
{
    fflush(stderr);
    c->tmp = tmpfile();
    CHECK(c->tmp != NULL, "tmpfile: %s", strerror(errno));
    c->saved_fd = dup(2);
    CHECK(c->saved_fd >= 0, "dup: %s", strerror(errno));
    CHECK(dup2(fileno(c->tmp), 2) == 2, "dup2: %s", strerror(errno));
}

static inline char *stderr_capture_end(struct stderr_capture *c)
{
    fflush(stderr);
    CHECK(dup2(c->saved_fd, 2) == 2, "dup2: %s", strerror(errno));
    close(c->saved_fd);
    off_t len = lseek(fileno(c->tmp), 0, SEEK_END);
    if (len < 0)
        len = 0;
    char *buf = malloc((size_t)len + 1);
    CHECK(buf != NULL, "out of memory");
    size_t got = 0;
    if (len > 0) {
        lseek(fileno(c->tmp), 0, SEEK_SET);
        ssize_t n;
        while (got < (size_t)len && (n = read(fileno(c->tmp), buf + got, (size_t)len - got)) > 0)
            got += (size_t)n;
    }
    buf[got] = 0;
    fclose(c->tmp);
    return buf;
}

/* Fork; run fn(arg) in the child with stderr going to a pipe.  Returns 0 when the
 * child was killed by a signal and its stderr contains every string of the
 * NULL-terminated list `needles`; otherwise prints why and returns -1. */
static inline int expect_abort(void (*fn)(void *), void *arg, const char *const *needles)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        signal(SIGABRT, SIG_DFL);
        fn(arg);
        _exit(0); /* survived: the parent reports the failure */
    }
    close(pipefd[1]);
    static char buf[16384];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(pipefd[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = 0;
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status)) {
        fprintf(stderr, "expect_abort: child was not killed by a signal (status %#x); stderr:\n%s\n",
                status, buf);
        return -1;
    }
    for (const char *const *nd = needles; *nd; nd++) {
        if (!strstr(buf, *nd)) {
            fprintf(stderr, "expect_abort: child died (signal %d) but stderr lacks \"%s\":\n%s\n",
                    WTERMSIG(status), *nd, buf);
            return -1;
        }
    }
    return 0;
}

#endif
