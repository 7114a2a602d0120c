/*
 * tools/bench.c — `slabdefrag bench`: run the benchmark scripts of the source
 * tree (the comparison tables of `make bench`) against a build directory.
 *
 * The benchmarks are separate executables (bench/CMakeLists.txt: one per
 * allocator, each in a fresh process), driven by bench/run.sh (allocator
 * comparison, then the other benchmarks) or bench/defrag_run.sh (the
 * defragmentation benchmark).  This command only finds them and execs the
 * script:
 *   the build directory  --build DIR, else the one this executable lives in
 *                        (BUILD/tools/slabdefrag -> BUILD);
 *   the script           BUILD/../bench/<script> (a build dir inside the source
 *                        tree), else SLABDEFRAG_SOURCE_DIR/bench/<script>, the
 *                        source tree this executable was configured from.
 * When the benchmark executables are not built (SLABDEFRAG_BENCH=OFF, or an
 * installed copy), it says how to get them and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef SLABDEFRAG_SOURCE_DIR
#define SLABDEFRAG_SOURCE_DIR "."
#endif

static int bench_usage(FILE *out)
{
    fprintf(out,
            "usage: slabdefrag bench [--quick] [--defrag] [--build DIR]\n"
            "  (default)      bench/run.sh: slabdefrag vs glibc, jemalloc, mimalloc, tcmalloc\n"
            "                 (churn, batch, xthread, retention), then bench_bufcache\n"
            "  --defrag       bench/defrag_run.sh: defragmentation across allocators\n"
            "  --quick        BENCH_QUICK=1: small counts, one repetition (about a minute)\n"
            "  --build DIR    the build directory (default: the one holding this program)\n"
            "The scripts read more settings from the environment: see bench/README.md.\n");
    return out == stderr ? 2 : 0;
}

/* dirname(dirname(/proc/self/exe)), or "" */
static void own_build_dir(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    out[0] = 0;
    if (n <= 0)
        return;
    exe[n] = 0;
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash)
            return;
        *slash = 0;
    }
    snprintf(out, size, "%s", exe[0] ? exe : "/");
}

static int find_script(const char *build, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/../bench/%s", build, name);
    if (access(out, X_OK) == 0)
        return 0;
    snprintf(out, size, "%s/bench/%s", SLABDEFRAG_SOURCE_DIR, name);
    return access(out, X_OK) == 0 ? 0 : -1;
}

int cmd_bench(int argc, char **argv)
{
    int quick = 0, defrag = 0;
    char build[PATH_MAX] = "";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--defrag") == 0)
            defrag = 1;
        else if (strcmp(argv[i], "--build") == 0 && i + 1 < argc)
            snprintf(build, sizeof build, "%s", argv[++i]);
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return bench_usage(stdout);
        else {
            fprintf(stderr, "slabdefrag bench: unknown option '%s'\n", argv[i]);
            return bench_usage(stderr);
        }
    }
    if (!build[0])
        own_build_dir(build, sizeof build);
    const char *name = defrag ? "defrag_run.sh" : "run.sh";
    const char *probe = defrag ? "bench_defrag" : "bench_alloc_slabdefrag";
    char exe[PATH_MAX + 64], script[PATH_MAX + 64];
    snprintf(exe, sizeof exe, "%s/bench/%s", build, probe);
    if (access(exe, X_OK) != 0) {
        fprintf(stderr,
                "slabdefrag bench: no benchmark executables in %s/bench (%s: %s).\n"
                "  Build them: `make bench` in the source tree (%s), or configure with\n"
                "  -DSLABDEFRAG_BENCH=ON and pass that build directory with --build DIR.\n",
                build, probe, strerror(errno), SLABDEFRAG_SOURCE_DIR);
        return 1;
    }
    if (find_script(build, name, script, sizeof script) != 0) {
        fprintf(stderr, "slabdefrag bench: bench/%s not found next to %s nor in %s\n", name,
                build, SLABDEFRAG_SOURCE_DIR);
        return 1;
    }
    if (quick)
        setenv("BENCH_QUICK", "1", 1);
    printf("slabdefrag bench: %s %s\n", script, build);
    fflush(stdout);
    char *args[] = { script, build, NULL };
    execv(script, args);
    fprintf(stderr, "slabdefrag bench: cannot run %s: %s\n", script, strerror(errno));
    return 1;
}
