/*
 * hardtest.h: helpers shared by the hardening tests (header only, so the
 * per-directory glob of *.c files does not turn it into a test program).
 *
 * Each test provokes one class of misuse in a forked child and checks that the
 * child dies by a signal (abort) with the expected message on stderr.  The
 * allocator's slab memory is mmap'ed by the library, not by malloc, so ASan does
 * not watch it: under the sanitizers it is our own checks that fire, exactly as
 * in the plain build (the tests pass in all three).
 *
 * run_child()     fork, run fn(arg) with stderr to a pipe, return the wait
 *                 status and what the child wrote (static buffer).
 * expect_die()    run_child() + check: killed by a signal, stderr holds every
 *                 needle of a NULL-terminated list.  Prints why on failure.
 * report_site()   from a "last allocated at X, last freed at Y" line, the
 *                 address of X (which = 0) or Y (which = 1), or 0.
 * ptr_prefix()    "slabdefrag: cache '<name>': <op>(<ptr>): ", the start of
 *                 every report about one object.
 * NOINLINE        for helper functions whose call sites a report must name.
 */
#ifndef SLABDEFRAG_TESTS_HARDTEST_H
#define SLABDEFRAG_TESTS_HARDTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabdefrag/slab.h>

#include "testutil.h"

#define NOINLINE __attribute__((noinline))

static char child_stderr[16384];

static inline int run_child(void (*fn)(void *), void *arg)
{
    int pipefd[2];
    CHECK(pipe(pipefd) == 0, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        signal(SIGABRT, SIG_DFL);
        fn(arg);
        _exit(0); /* survived: the parent reports the failure */
    }
    close(pipefd[1]);
    size_t len = 0;
    ssize_t n;
    while (len < sizeof child_stderr - 1 &&
           (n = read(pipefd[0], child_stderr + len, sizeof child_stderr - 1 - len)) > 0)
        len += (size_t)n;
    child_stderr[len] = 0;
    close(pipefd[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
    return status;
}

static inline int expect_die(const char *label, void (*fn)(void *), void *arg,
                             const char *const *needles)
{
    int status = run_child(fn, arg);
    if (!WIFSIGNALED(status)) {
        fprintf(stderr, "%s: child was not killed by a signal (status %#x); stderr:\n%s\n", label,
                status, child_stderr);
        return -1;
    }
    for (const char *const *nd = needles; *nd; nd++)
        if (!strstr(child_stderr, *nd)) {
            fprintf(stderr, "%s: child died (signal %d) but stderr lacks \"%s\":\n%s\n", label,
                    WTERMSIG(status), *nd, child_stderr);
            return -1;
        }
    return 0;
}

/* The child must exit normally (status 0): nothing was reported. */
static inline int expect_survive(const char *label, void (*fn)(void *), void *arg)
{
    int status = run_child(fn, arg);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: child should have survived (status %#x); stderr:\n%s\n", label,
                status, child_stderr);
        return -1;
    }
    return 0;
}

static inline const char *ptr_prefix(const char *cache, const char *op, const void *p)
{
    static char buf[4][160];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, sizeof buf[0], "slabdefrag: cache '%s': %s(%p): ", cache, op, p);
    return b;
}

/* A site is printed as "sym+0xoff (0xaddr)" or "0xaddr" or "(unknown)". */
static inline uintptr_t parse_site(const char *p, const char *end)
{
    const char *open = memchr(p, '(', (size_t)(end - p));
    if (open)
        p = open + 1;
    if (strncmp(p, "0x", 2) != 0)
        return 0;
    return (uintptr_t)strtoull(p, NULL, 16);
}

static inline uintptr_t report_site(const char *report, int which)
{
    const char *a = strstr(report, "last allocated at ");
    const char *f = a ? strstr(a, ", last freed at ") : NULL;
    if (!a || !f)
        return 0;
    if (which == 0)
        return parse_site(a + strlen("last allocated at "), f);
    const char *start = f + strlen(", last freed at ");
    const char *end = strchr(start, '\n');
    return parse_site(start, end ? end : start + strlen(start));
}

/* Is `site` (a return address) inside function fn?  Functions here are small:
 * the call site lies within a few hundred bytes after the entry. */
static inline int site_in(uintptr_t site, void (*fn)(void))
{
    uintptr_t f = (uintptr_t)fn;
    return site > f && site < f + 1024;
}

#endif
