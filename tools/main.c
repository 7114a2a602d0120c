/*
 * tools/main.c — `slabdefrag <command> [options]`: dispatches to the subcommands.
 *   demo    the main job: fragment caches, defragment them, show the memory come back
 * (info, top, shrink and bench arrive with the stats endpoint; see the issues.)
 */
#include <stdio.h>
#include <string.h>

#include <slabdefrag/slab.h>

#include "cli.h"

static int usage(FILE *out)
{
    fprintf(out,
            "usage: slabdefrag <command> [options]\n"
            "  demo [--size MiB] [--threads N] [--quiet]   fragment, defragment, verify\n"
            "  info PID [--json]                           slabinfo of a live process\n"
            "  top PID [--sort FIELD] [--interval MS] [--iterations N]\n"
            "                                              live view of a process's caches\n"
            "  shrink PID [CACHE] [--fill PERCENT]         shrink a live process's caches\n"
            "  version                                     print the library version\n"
            "(info/top/shrink need the process to run with SLABDEFRAG_STATS=1)\n");
    return out == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (strcmp(argv[1], "demo") == 0)
        return cmd_demo(argc - 1, argv + 1);
    if (strcmp(argv[1], "info") == 0)
        return cmd_info(argc - 1, argv + 1);
    if (strcmp(argv[1], "top") == 0)
        return cmd_top(argc - 1, argv + 1);
    if (strcmp(argv[1], "shrink") == 0)
        return cmd_shrink(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0) {
        printf("slabdefrag %s\n", slabdefrag_version());
        return 0;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return usage(stdout);
    fprintf(stderr, "slabdefrag: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
