/* testutil: shared helpers for the test programs; see testutil.h. */
#define _GNU_SOURCE
#include "testutil.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int expect_death(void (*fn)(void *), void *arg, const char *needle)
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
        fprintf(stderr, "expect_death: child was not killed by a signal (status %d); stderr:\n%s\n",
                status, buf);
        return -1;
    }
    if (needle && !strstr(buf, needle)) {
        fprintf(stderr, "expect_death: child died (signal %d) but stderr lacks \"%s\":\n%s\n",
                WTERMSIG(status), needle, buf);
        return -1;
    }
    return 0;
}

size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (size_t)sysconf(_SC_PAGESIZE);
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
