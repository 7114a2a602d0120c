/*
 * tools/main.c — `slabdefrag <command> [options]`: dispatches to the subcommands.
 *   demo       the main job: fragment caches, defragment them, show the memory come back
 *   info, top, shrink   a live process's caches, through its stats endpoint
 *   bench      the benchmark scripts of the source tree
 *   ext2-fill  the libext2fs workload (only when integrations/libext2fs is built:
 *              it defines SLABDEFRAG_HAVE_EXT2 and adds ext2_fill.c to this program)
 */
#include <stdio.h>
#include <string.h>

#include <slabdefrag/slab.h>

#include "cli.h"

static int usage(FILE *out)
{
    fprintf(out,
            "usage: slabdefrag <command> [options]\n"
            "  demo [--size MiB] [--threads N] [--plot FILE.png] [--quiet]\n"
            "                                              fragment, defragment, verify\n"
            "  info PID [--json]                           slabinfo of a live process\n"
            "  top PID [--sort FIELD] [--interval MS] [--iterations N]\n"
            "                                              live view of a process's caches\n"
            "  shrink PID [CACHE] [--fill PERCENT]         shrink a live process's caches\n"
            "  bench [--quick] [--defrag] [--build DIR]    run the benchmarks (bench/run.sh)\n");
#ifdef SLABDEFRAG_HAVE_EXT2
    fputs("  ext2-fill IMAGE [options]                   fill an ext2/ext4 image through\n"
          "                                              libext2fs on the buffer cache\n",
          out);
#endif
    fputs("  version                                     print the library version\n"
          "(info/top/shrink need the process to run with SLABDEFRAG_STATS=1)\n",
          out);
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
    if (strcmp(argv[1], "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
#ifdef SLABDEFRAG_HAVE_EXT2
    if (strcmp(argv[1], "ext2-fill") == 0)
        return cmd_ext2_fill(argc - 1, argv + 1);
#endif
    if (strcmp(argv[1], "version") == 0) {
        printf("slabdefrag %s\n", slabdefrag_version());
        return 0;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return usage(stdout);
    fprintf(stderr, "slabdefrag: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
