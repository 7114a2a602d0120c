/*
 * integrations/libext2fs/bench_ext2.c: the fill.h workload through
 * unix_io_manager and through slabdefrag_io_manager, wall time and syscalls.
 *
 * 1. Objects.  One row per (filesystem, io manager, memory limit): the image is
 *    formatted (not timed), then fill_run is timed (open .. close, including the
 *    final flush).  Syscalls: /proc/self/io syscr/syscw around the run (read-
 *    and write-type calls of every thread of the process: pread/pwrite/read/
 *    write), and with --strace each row is re-run in a child under
 *    `strace -f -c` and the total and the pread64/pwrite64/fsync/fdatasync
 *    counts are reported.  Both managers get the same libext2fs; unix_io
 *    (Debian 1.47.0) has a fixed 8-block cache and no memory option, so the
 *    slabdefrag rows use 64 KiB (the cache's minimum, the closest to unix_io's
 *    8 blocks), 256 KiB, 16 MiB and 64 MiB.  Wall time is the best of --repeat
 *    runs (default 3), each on a freshly formatted image; syscr/syscw are of
 *    the last run; cpu_s is the best user+system time of the process (all
 *    threads, the cache's flusher included), less disturbed by other load.
 * 2. Locking: none.  3. Error policy: a failed run prints the error and exits 1.
 * 4. Numbers: the metadata-heavy default is 3000 dirs and 12000 files of at
 *    most 511 bytes (--mixed: the test suite's size mix).  Results are printed,
 *    never asserted (no timing assertions anywhere).
 *
 * Usage: bench_ext2 [--dirs N] [--files N] [--size MB] [--mixed] [--strace]
 *                   [--repeat N] [--dir TMPDIR]   (TMPDIR /dev/shm: no disk flush)
 */
#define _GNU_SOURCE
#include "fill.h"

#include <slabdefrag/ext2fs_io.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct row_cfg {
    const char *fstype;
    unsigned block_size;
    const char *io;          /* "unix" or "slabdefrag" */
    unsigned long long limit;
};

struct sysc {
    unsigned long long total, pread, pwrite, fsync;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void proc_io(unsigned long long *r, unsigned long long *w)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    *r = *w = 0;
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "syscr: %llu", r);
        sscanf(line, "syscw: %llu", w);
    }
    if (f)
        fclose(f);
}

static errcode_t run_one(struct fill_cfg *c, const struct row_cfg *r, char *opts, size_t len)
{
    struct fill_result res;
    c->manager = strcmp(r->io, "unix") ? slabdefrag_io_manager : unix_io_manager;
    opts[0] = 0;
    if (r->limit)
        snprintf(opts, len, "memory_limit=%llu", r->limit);
    c->io_options = opts[0] ? opts : NULL;
    errcode_t e = fill_run(c, &res);
    if (e)
        fprintf(stderr, "bench_ext2: %s: %s\n", res.what, error_message(e));
    return e;
}

/* Re-run this row in a child under strace -f -c; parse the summary. */
static int strace_row(const char *self, struct fill_cfg *c, const struct row_cfg *r,
                      struct sysc *s)
{
    char out[4200], dirs[16], files[16], lim[32], bs[16];
    snprintf(out, sizeof out, "%s.strace", c->image);
    snprintf(dirs, sizeof dirs, "%u", c->dirs);
    snprintf(files, sizeof files, "%u", c->files);
    snprintf(lim, sizeof lim, "%llu", r->limit);
    snprintf(bs, sizeof bs, "%u", r->block_size);
    char *argv[] = { "/usr/bin/strace", "-f", "-qq", "-c", "-o", out, (char *)self, "--child",
                     "--dirs", dirs, "--files", files, "--io", (char *)r->io, "--limit", lim,
                     "--type", (char *)r->fstype, "--bs", bs,
                     c->small_files ? "--small" : "--mixed", (char *)c->image, NULL };
    if (fill_mkfs(c) || fill_spawn(argv, 1) != 0)
        return -1;
    FILE *f = fopen(out, "r");
    char line[256];
    memset(s, 0, sizeof *s);
    while (f && fgets(line, sizeof line, f)) {
        char name[64];
        double pct, secs;
        unsigned long long usecs, calls, errs;
        int n = sscanf(line, "%lf %lf %llu %llu %llu %63s", &pct, &secs, &usecs, &calls, &errs,
                       name);
        if (n == 4) /* no errors column: the 5th token is the name */
            n = sscanf(line, "%lf %lf %llu %llu %63s", &pct, &secs, &usecs, &calls, name) + 1;
        if (n != 6)
            continue;
        if (!strcmp(name, "total"))
            s->total = calls;
        else if (!strcmp(name, "pread64"))
            s->pread = calls;
        else if (!strcmp(name, "pwrite64"))
            s->pwrite = calls;
        else if (!strcmp(name, "fsync") || !strcmp(name, "fdatasync"))
            s->fsync += calls;
    }
    if (f)
        fclose(f);
    unlink(out);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "dirs", 1, 0, 'd' },  { "files", 1, 0, 'f' }, { "size", 1, 0, 's' },
        { "mixed", 0, 0, 'm' }, { "small", 0, 0, 'M' }, { "strace", 0, 0, 'S' },
        { "dir", 1, 0, 'D' },   { "child", 0, 0, 'C' }, { "io", 1, 0, 'i' },
        { "limit", 1, 0, 'l' }, { "type", 1, 0, 't' },  { "bs", 1, 0, 'b' },
        { "repeat", 1, 0, 'r' },
        { 0, 0, 0, 0 },
    };
    struct fill_cfg c = { .fstype = "ext4", .block_size = 4096, .size_mb = 128, .dirs = 3000,
                          .files = 12000, .seed = 7, .small_files = 1 };
    struct row_cfg child = { "ext4", 4096, "slabdefrag", 0 };
    int use_strace = 0, is_child = 0, ch;
    unsigned repeat = 3;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'd': c.dirs = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'f': c.files = (unsigned)strtoul(optarg, NULL, 0); break;
        case 's': c.size_mb = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'm': c.small_files = 0; break;
        case 'M': c.small_files = 1; break;
        case 'S': use_strace = 1; break;
        case 'D': dir = optarg; break;
        case 'C': is_child = 1; break;
        case 'i': child.io = optarg; break;
        case 'l': child.limit = strtoull(optarg, NULL, 0); break;
        case 't': child.fstype = optarg; break;
        case 'b': child.block_size = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'r': repeat = (unsigned)strtoul(optarg, NULL, 0); break;
        default:
            fprintf(stderr, "usage: bench_ext2 [--dirs N] [--files N] [--size MB] [--mixed] "
                            "[--strace] [--repeat N] [--dir TMPDIR]\n");
            return 2;
        }
    }
    if (!repeat)
        repeat = 1;
    initialize_ext2_error_table();
    char opts[64];
    if (is_child) { /* under strace: the image is already formatted */
        if (optind != argc - 1)
            return 2;
        c.image = argv[optind];
        c.fstype = child.fstype;
        c.block_size = child.block_size;
        return run_one(&c, &child, opts, sizeof opts) ? 1 : 0;
    }
    char img[4096], self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0)
        return 1;
    self[sl] = 0;
    snprintf(img, sizeof img, "%s/bench_ext2.%d.img", dir, (int)getpid());
    c.image = img;
    static const struct row_cfg rows[] = {
        { "ext2", 1024, "unix", 0 },           { "ext2", 1024, "slabdefrag", 64 << 10 },
        { "ext2", 1024, "slabdefrag", 256 << 10 }, { "ext2", 1024, "slabdefrag", 16 << 20 },
        { "ext2", 1024, "slabdefrag", 64 << 20 },
        { "ext4", 4096, "unix", 0 },           { "ext4", 4096, "slabdefrag", 64 << 10 },
        { "ext4", 4096, "slabdefrag", 256 << 10 }, { "ext4", 4096, "slabdefrag", 16 << 20 },
        { "ext4", 4096, "slabdefrag", 64 << 20 },
    };
    printf("workload: %u dirs, %u files (%s), image %u MiB in %s\n", c.dirs, c.files,
           c.small_files ? "0..511 bytes: metadata-heavy" : "mixed sizes", c.size_mb, dir);
    printf("%-5s %-3s %-11s %-9s %8s %8s %8s %8s %8s %8s%s\n", "fs", "bs", "io", "cache",
           "wall_s", "speedup", "cpu_s", "speedup", "syscr", "syscw",
           use_strace ? "   strace:total  pread64 pwrite64 fsync" : "");
    double base = 0, cbase = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row_cfg *r = &rows[i];
        c.fstype = r->fstype;
        c.block_size = r->block_size;
        unsigned long long r0, w0, r1, w1;
        double t = 0, cpu = 0;
        for (unsigned k = 0; k < repeat; k++) { /* best of `repeat` fresh images */
            if (fill_mkfs(&c))
                return 1;
            proc_io(&r0, &w0);
            double t0 = now(), c0 = cpu_now();
            if (run_one(&c, r, opts, sizeof opts))
                return 1;
            double dt = now() - t0, dc = cpu_now() - c0;
            proc_io(&r1, &w1);
            if (k == 0 || dt < t)
                t = dt;
            if (k == 0 || dc < cpu)
                cpu = dc;
        }
        if (!strcmp(r->io, "unix")) {
            base = t;
            cbase = cpu;
        }
        char cache[32];
        if (r->limit)
            snprintf(cache, sizeof cache, "%lluK", r->limit >> 10);
        else
            snprintf(cache, sizeof cache, "8 blocks");
        printf("%-5s %-3u %-11s %-9s %8.3f %7.2fx %8.3f %7.2fx %8llu %8llu", r->fstype,
               r->block_size / 1024, r->io, cache, t, base > 0 ? base / t : 0.0, cpu,
               cbase > 0 && cpu > 0 ? cbase / cpu : 0.0, r1 - r0, w1 - w0);
        struct sysc s;
        if (use_strace && strace_row(self, &c, r, &s) == 0)
            printf("   %12llu %8llu %8llu %5llu", s.total, s.pread, s.pwrite, s.fsync);
        printf("\n");
        fflush(stdout);
    }
    unlink(img);
    return 0;
}
