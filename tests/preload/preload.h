/*
 * tests/preload/preload.h — helpers of the tests that run programs with
 * libslabdefrag-malloc.so preloaded.  Each test gets, from ctest:
 *   argv[1]  the path of libslabdefrag-malloc.so
 *   argv[2]  the path of slabdefrag-kvtable
 *   argv[3]  the path of the slabdefrag command
 * CHECK(cond, ...) (testutil.h) fails the test (exit 1) with a message.
 * preloaded()        1 when this process runs on the front end (dlsym finds it).
 * run_capture()      fork + exec argv with LD_PRELOAD (or none) and extra
 *                    NAME=VALUE settings; stdin from a string, stdout captured.
 * program_missing()  1 when a program is not found in PATH (tests skip, 77);
 *                    skip_unless_installed() exits 77 with a message then.
 */
#ifndef SLABDEFRAG_TESTS_PRELOAD_H
#define SLABDEFRAG_TESTS_PRELOAD_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h" /* CHECK (only the header: these programs link no slabdefrag code) */

static inline int preloaded(void)
{
    return dlsym(RTLD_DEFAULT, "slab_malloc_defrag_hint") != NULL &&
           dlsym(RTLD_DEFAULT, "slab_info_write") != NULL;
}

static inline int program_missing(const char *name)
{
    const char *path = getenv("PATH");
    char buf[4096];
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, name);
        if (access(buf, X_OK) == 0)
            return 0;
        p += n + (e ? 1 : 0);
    }
    return 1;
}

/* Exit 77 (the test is skipped), saying why, when program `name` is not in PATH. */
static inline void skip_unless_installed(const char *name)
{
    if (program_missing(name)) {
        fprintf(stderr, "%s not installed: skipped\n", name);
        exit(77);
    }
}

/* Run argv (PATH lookup) with LD_PRELOAD=preload (NULL: unset) and the settings
 * in env (NULL-terminated "NAME=VALUE" list, may be NULL); write `input` to its
 * stdin.  Returns the wait status; *out gets stdout (malloc'd, NUL-terminated). */
static inline int run_capture(char *const argv[], const char *preload, const char *const *env,
                              const char *input, char **out, size_t *outlen)
{
    int in[2], o[2];
    CHECK(pipe(in) == 0 && pipe(o) == 0, "pipe");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(o[1], 1);
        close(in[0]), close(in[1]), close(o[0]), close(o[1]);
        if (preload)
            setenv("LD_PRELOAD", preload, 1);
        else
            unsetenv("LD_PRELOAD");
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(o[1]);
    signal(SIGPIPE, SIG_IGN);
    size_t ilen = input ? strlen(input) : 0;
    for (size_t done = 0; done < ilen;) {
        ssize_t w = write(in[1], input + done, ilen - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    close(in[1]);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    CHECK(buf, "malloc");
    for (;;) {
        if (cap - len < 4096)
            CHECK((buf = realloc(buf, cap *= 2)) != NULL, "realloc");
        ssize_t r = read(o[0], buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(o[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    *out = buf;
    if (outlen)
        *outlen = len;
    return st;
}

/* Run the same command with glibc and preloaded; outputs must be identical. */
static inline int same_output(char *const argv[], const char *so, const char *const *env,
                              const char *input, size_t min_len)
{
    char *a, *b;
    size_t la, lb;
    int sa = run_capture(argv, NULL, env, input, &a, &la);
    int sb = run_capture(argv, so, env, input, &b, &lb);
    CHECK(WIFEXITED(sa) && WEXITSTATUS(sa) == 0, "%s with glibc failed (status %#x)", argv[0], sa);
    CHECK(WIFEXITED(sb) && WEXITSTATUS(sb) == 0, "%s preloaded failed (status %#x)", argv[0], sb);
    CHECK(la >= min_len, "%s printed only %zu bytes", argv[0], la);
    CHECK(la == lb && memcmp(a, b, la) == 0, "%s: output differs preloaded (%zu vs %zu bytes)",
          argv[0], la, lb);
    free(a);
    free(b);
    return 0;
}

#endif
