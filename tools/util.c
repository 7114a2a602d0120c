/* tools/util.c — small helpers shared by the subcommands: clocks, progress,
 * the physical limit of a defrag pass (the RSS is proc_rss.h's). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A one-line progress bar on stderr when it is a terminal (and not quiet). */
void cli_progress(const char *what, size_t done, size_t total, int quiet)
{
    if (quiet || !isatty(2) || total == 0)
        return;
    if (done != total && done % (total / 50 + 1) != 0)
        return;
    int width = 40, fill = (int)(width * done / total);
    fprintf(stderr, "\r  %-28s [%.*s%*s] %3zu%%", what, fill, "########################################",
            width - fill, "", 100 * done / total);
    if (done == total)
        fputc('\n', stderr);
}

/*
 * The physical limit of a defrag pass that moved `moved` bytes and handed
 * `released` bytes back: a memcpy of the moved bytes between two resident
 * buffers plus one MADV_DONTNEED of as many resident bytes as were released,
 * best of 3.  0 when the buffers cannot be mapped.
 */
double cli_defrag_limit_seconds(size_t moved, size_t released)
{
    size_t len = 2 * moved + released + 1;
    char *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        return 0;
    char *src = buf, *dst = buf + moved, *rel = buf + 2 * moved;
    memset(buf, 1, 2 * moved);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        memset(rel, 2, released);
        double t0 = cli_now();
        memcpy(dst, src, moved);
        __asm__ volatile("" ::"r"(dst) : "memory");
        madvise(rel, released, MADV_DONTNEED);
        double t = cli_now() - t0;
        best = rep == 0 || t < best ? t : best;
    }
    munmap(buf, len);
    return best;
}
