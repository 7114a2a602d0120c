/*
 * tools/shrink.c — `slabdefrag shrink PID [CACHE] [--fill PERCENT]`: what writing
 * to /sys/kernel/slab/<cache>/shrink does for the kernel, for a live process.
 *
 * Through the process's stats endpoint: "shrink CACHE" runs slab_cache_shrink
 * (release empty slabs, defragment every partial slab), "shrink" with no cache
 * runs slab_reclaim(SIZE_MAX) over all caches, and --fill PERCENT instead runs
 * one slab_cache_defrag(CACHE, PERCENT) pass.  Prints the bytes the process
 * handed back to the OS.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slabdefrag/stats.h>

#include "cli.h"
#include "statsview.h"

static int shrink_usage(void)
{
    fprintf(stderr, "usage: slabdefrag shrink PID|SOCKET [CACHE] [--fill PERCENT]\n");
    return 2;
}

static bool valid_percent(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s >= '0' && *s <= '9' && !*end && v <= 100;
}

int cmd_shrink(int argc, char **argv)
{
    const char *target = NULL, *cache = NULL, *fill = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fill") == 0 && i + 1 < argc && valid_percent(argv[i + 1]))
            fill = argv[++i];
        else if (argv[i][0] == '-')
            return shrink_usage();
        else if (!target)
            target = argv[i];
        else if (!cache)
            cache = argv[i];
        else
            return shrink_usage();
    }
    if (!target || (fill && !cache))
        return shrink_usage();
    char request[SLAB_STATS_LINE_MAX], path[256], *reply;
    int n = fill ? snprintf(request, sizeof request, "defrag %s %s", cache, fill)
                 : snprintf(request, sizeof request, "shrink %s", cache ? cache : "");
    if (n < 0 || (size_t)n >= sizeof request || strchr(request, '\n'))
        return shrink_usage();
    if (sv_target(target, path, sizeof path) != 0 || sv_request(path, request, &reply) != 0)
        return 1;
    const char *b = strstr(reply, "\"bytes\": ");
    if (!b) {
        fprintf(stderr, "slabdefrag: malformed reply from %s\n", path);
        free(reply);
        return 1;
    }
    uint64_t bytes = strtoull(b + 9, NULL, 10);
    printf("%s: released %" PRIu64 " bytes (%" PRIu64 " KiB)%s%s%s\n", target, bytes,
           bytes / 1024, cache ? " from cache '" : " from all caches", cache ? cache : "",
           cache ? "'" : "");
    free(reply);
    return 0;
}
