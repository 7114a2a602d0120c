/* tools/util.c — small helpers shared by the subcommands: clocks, RSS, progress. */
#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

size_t cli_rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (size_t)sysconf(_SC_PAGESIZE);
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
