/* testutil: shared helpers for the test programs; see testutil.h. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char child_stderr[16384];

int run_child(void (*fn)(void *), void *arg)
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

int expect_die(const char *label, void (*fn)(void *), void *arg, const char *const *needles)
{
    int status = run_child(fn, arg);
    if (!WIFSIGNALED(status)) {
        fprintf(stderr, "%s: child was not killed by a signal (status %#x); stderr:\n%s\n", label,
                status, child_stderr);
        return -1;
    }
    for (const char *const *nd = needles; nd && *nd; nd++)
        if (!strstr(child_stderr, *nd)) {
            fprintf(stderr, "%s: child died (signal %d) but stderr lacks \"%s\":\n%s\n", label,
                    WTERMSIG(status), *nd, child_stderr);
            return -1;
        }
    return 0;
}

int expect_abort(void (*fn)(void *), void *arg, const char *const *needles)
{
    return expect_die("expect_abort", fn, arg, needles);
}

int expect_death(void (*fn)(void *), void *arg, const char *needle)
{
    const char *const needles[] = {needle, NULL};
    return expect_die("expect_death", fn, arg, needles);
}

int expect_survive(const char *label, void (*fn)(void *), void *arg)
{
    int status = run_child(fn, arg);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: child should have survived (status %#x); stderr:\n%s\n", label,
                status, child_stderr);
        return -1;
    }
    return 0;
}

void stderr_capture_begin(struct stderr_capture *c)
{
    fflush(stderr);
    c->tmp = tmpfile();
    CHECK(c->tmp != NULL, "tmpfile: %s", strerror(errno));
    c->saved_fd = dup(2);
    CHECK(c->saved_fd >= 0, "dup: %s", strerror(errno));
    CHECK(dup2(fileno(c->tmp), 2) == 2, "dup2: %s", strerror(errno));
}

char *stderr_capture_end(struct stderr_capture *c)
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

struct slab_cache_stats cache_stats(struct slab_cache *s)
{
    struct slab_cache_stats st;
    memset(&st, 0, sizeof st);
    int rc = slab_cache_get_stats(s, &st);
    CHECK(rc == 0, "slab_cache_get_stats returned %d", rc);
    return st;
}

void print_stats(const char *what, const struct slab_cache_stats *st)
{
    fprintf(stderr,
            "%s: cache '%s' object_size %zu slab_size %zu objects_per_slab %u "
            "objects_active %llu objects_total %llu slabs %llu partial %llu empty %llu "
            "bytes_mapped %llu allocs %llu frees %llu defrag: passes %llu scanned %llu "
            "freed %llu kicked %llu moved %llu refused %llu released %llu "
            "results YES %llu NO %llu LATER %llu DONT_NEED %llu DONT_KNOW %llu\n",
            what, st->name ? st->name : "(null)", st->object_size, st->slab_size,
            st->objects_per_slab, (unsigned long long)st->objects_active,
            (unsigned long long)st->objects_total, (unsigned long long)st->slabs,
            (unsigned long long)st->slabs_partial, (unsigned long long)st->slabs_empty,
            (unsigned long long)st->bytes_mapped, (unsigned long long)st->allocs,
            (unsigned long long)st->frees, (unsigned long long)st->defrag_passes,
            (unsigned long long)st->defrag_slabs_scanned,
            (unsigned long long)st->defrag_slabs_freed,
            (unsigned long long)st->defrag_objects_kicked,
            (unsigned long long)st->defrag_objects_moved,
            (unsigned long long)st->defrag_objects_refused,
            (unsigned long long)st->defrag_bytes_released,
            (unsigned long long)st->move_results[0], (unsigned long long)st->move_results[1],
            (unsigned long long)st->move_results[2], (unsigned long long)st->move_results[3],
            (unsigned long long)st->move_results[4]);
}

size_t resident_bytes(const void *addr, size_t len)
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

int wait_child_for(pid_t pid, double secs)
{
    double end = now_seconds() + secs;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        CHECK(r >= 0, "waitpid: %s", strerror(errno));
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (now_seconds() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
}

int fork_many(int forks, void (*child_main)(void), double max_secs)
{
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
            child_main();
            _exit(0);
        }
        int rc = wait_child_for(pid, max_secs);
        if (rc != 0) {
            fprintf(stderr, "fork %d: child %s (status %d)\n", i, rc < 0 ? "hung" : "failed", rc);
            return -1;
        }
    }
    return 0;
}

const char *test_binary_dir(void)
{
    static char dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    CHECK(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    CHECK(slash, "no directory in %s", dir);
    *slash = '\0';
    return dir;
}

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t test_seed(int argc, char **argv, int i, uint64_t fallback)
{
    const char *s = i < argc ? argv[i] : getenv("SLABDEFRAG_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 0) : fallback;
    return seed ? seed : 0x9e3779b97f4a7c15ull;
}

double stress_seconds(double dflt)
{
    const char *s = getenv("SLABDEFRAG_STRESS_SECONDS");
    return s ? atof(s) : dflt;
}

int under_sanitizer(void)
{
#ifdef SLABDEFRAG_SANITIZER
    return 1;
#else
    return 0;
#endif
}
