/*
 * tools/demo.c — `slabdefrag demo`: the story of slab fragmentation, told with
 * numbers, in three acts on one embedded default (no arguments, no input files).
 *
 * Act 1 (demo_objects.c), a movable-object cache: threads fill --size MiB of
 *   256-byte entries, a random 90% are freed, nearly every slab keeps a few
 *   survivors; slab_cache_defrag() moves them into the fullest slabs through
 *   the cache's move callback and the emptied slabs go back to the OS.
 * Act 2 (demo_bufcache.c), the buffer cache: a temporary --size MiB image file
 *   is written through the cache in 1 KiB blocks (4 buffer heads per 4 KiB
 *   page), the cache is shrunk while a scattered 1/8 of its pages are in use,
 *   so the "buffer_head" slab cache keeps a few buffer heads in almost every
 *   slab; slab_cache_defrag() runs the get/kick callbacks, which drop the clean,
 *   unreferenced buffer rings (they are rebuilt on the next access, no I/O).
 * Act 3 (demo_malloc.c), malloc'd memory: a key-value table built with plain
 *   malloc, 90% deleted at random, swept once with the malloc front end's defrag
 *   hint, run under libslabdefrag-malloc.so and, for comparison, glibc,
 *   jemalloc, mimalloc and tcmalloc (each in a child process).
 * Each act prints slabinfo and the per-slab fill histogram before and after,
 * the bytes returned and the time, and verifies every byte of its data: any
 * failed verification makes the exit status 1.
 *
 * The driver keeps the RSS over time (demo_sample at phase boundaries, and from
 * demo_progress during long steps) for --plot (demo_plot.c), and prints a
 * summary table at the end.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "demo.h"

/* ---- RSS over time ------------------------------------------------------------ */

static pthread_mutex_t sample_lock = PTHREAD_MUTEX_INITIALIZER;
static struct demo_sample samples[DEMO_MAX_SAMPLES];
static struct demo_phase phases[DEMO_MAX_PHASES];
static size_t nsamples, nphases;
static double t_start, t_last;

static void sample_locked(double now)
{
    if (nsamples < DEMO_MAX_SAMPLES)
        samples[nsamples++] = (struct demo_sample){ now - t_start, proc_rss_bytes() };
    t_last = now;
}

void demo_sample(void)
{
    pthread_mutex_lock(&sample_lock);
    sample_locked(cli_now());
    pthread_mutex_unlock(&sample_lock);
}

void demo_phase(const char *label)
{
    pthread_mutex_lock(&sample_lock);
    double now = cli_now();
    sample_locked(now);
    if (nphases < DEMO_MAX_PHASES) {
        phases[nphases].t = now - t_start;
        snprintf(phases[nphases].label, sizeof phases[nphases].label, "%s", label);
        nphases++;
    }
    pthread_mutex_unlock(&sample_lock);
}

/* The progress bar, plus an RSS sample at most every 20 ms. */
void demo_progress(const char *what, size_t done, size_t total, int quiet)
{
    cli_progress(what, done, total, quiet);
    if ((done & 255) != 0 && done != total)
        return;
    pthread_mutex_lock(&sample_lock);
    double now = cli_now();
    if (now - t_last >= 0.02)
        sample_locked(now);
    pthread_mutex_unlock(&sample_lock);
}

size_t demo_samples(const struct demo_sample **out)
{
    *out = samples;
    return nsamples;
}

size_t demo_phases(const struct demo_phase **out)
{
    *out = phases;
    return nphases;
}

/* ---- shared printing ------------------------------------------------------------ */

uint64_t demo_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

void demo_show_hist(const char *label, const uint64_t *counts)
{
    printf("  %-22s", label);
    for (int i = 0; i < DEMO_BUCKETS; i++)
        printf(" %7llu", (unsigned long long)counts[i]);
    printf("\n");
}

void demo_show_cache(const char *title, struct slab_cache *c, int quiet)
{
    struct slab_cache_stats st;
    slab_cache_get_stats(c, &st);
    printf("\n== %s ==\n", title);
    if (!quiet)
        slab_info_write(stdout, 0);
    double live = (double)st.objects_active * st.object_size;
    printf("RSS %.1f MiB; cache '%s': %llu slabs map %.1f MiB for %.1f MiB of live objects "
           "(fill %.0f%%, %.2fx)\n",
           proc_rss_bytes() / 1048576.0, st.name, (unsigned long long)st.slabs,
           st.bytes_mapped / 1048576.0, live / 1048576.0,
           st.objects_total ? 100.0 * st.objects_active / st.objects_total : 0.0,
           live > 0 ? st.bytes_mapped / live : 0.0);
}

/* ---- the driver ---------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct demo_opts *o)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            o->mib = strtoul(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            o->threads = (unsigned)strtoul(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "--plot") == 0 && i + 1 < argc)
            o->plot = argv[++i];
        else if (strcmp(argv[i], "--quiet") == 0)
            o->quiet = 1;
        else if (strcmp(argv[i], "--corrupt") == 0 && i + 1 < argc) {
            i++;
            o->corrupt = strcmp(argv[i], "objects") == 0  ? DEMO_CORRUPT_OBJECTS
                         : strcmp(argv[i], "blocks") == 0 ? DEMO_CORRUPT_BLOCKS
                                                          : -1;
            if (o->corrupt < 0) {
                fprintf(stderr, "slabdefrag demo: --corrupt takes objects or blocks\n");
                return -1;
            }
        }
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: slabdefrag demo [--size MiB] [--threads N] [--plot FILE.png] [--quiet]\n"
                   "  --size MiB     objects of act 1, image file of act 2 (default 128),\n"
                   "                 and 16384 table entries per MiB in act 3\n"
                   "  --threads N    fill and verify threads, 1..64 (default 2)\n"
                   "  --plot FILE    draw fill histograms and RSS over time (gnuplot)\n"
                   "  --quiet        no progress bars and no slabinfo tables\n"
                   "  --corrupt objects|blocks   (for tests) damage one entry or one block\n"
                   "                 after defrag: the verification must then fail\n");
            return 1;
        } else {
            fprintf(stderr, "slabdefrag demo: unknown option '%s'\n", argv[i]);
            return -1;
        }
    }
    if (o->mib == 0 || o->mib > (1u << 20) || o->threads == 0 || o->threads > 64) {
        fprintf(stderr, "slabdefrag demo: --size must be 1..1048576 and --threads 1..64\n");
        return -1;
    }
    return 0;
}

static void summary_row(const struct demo_record *r)
{
    uint64_t nb = 0, na = 0, sb = 0, sa = 0; /* slabs, and slabs under half full */
    for (int i = 0; i < DEMO_BUCKETS; i++) {
        nb += r->before[i];
        na += r->after[i];
        if (i < DEMO_BUCKETS / 2) {
            sb += r->before[i];
            sa += r->after[i];
        }
    }
    printf("  %-12s %8llu -> %-6llu %8llu -> %-6llu %9.1f %9.1f  %s\n", r->cache,
           (unsigned long long)nb, (unsigned long long)na, (unsigned long long)sb,
           (unsigned long long)sa, r->released / 1048576.0, r->seconds * 1e3,
           r->ok ? "yes" : "FAILED");
}

int cmd_demo(int argc, char **argv)
{
    struct demo_opts o = { .mib = 128, .threads = 2 };
    int pr = parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    if (o.plot && !demo_plot_available()) {
        fprintf(stderr, "slabdefrag demo: --plot needs gnuplot, which is not installed "
                        "(scripts/install-deps.sh installs gnuplot-nox)\n");
        return 1;
    }
    t_start = t_last = cli_now();
    printf("slabdefrag %s demo: --size %zu MiB, --threads %u\n", slabdefrag_version(), o.mib,
           o.threads);
    demo_phase("start");

    struct demo_record recs[2];
    memset(recs, 0, sizeof recs);
    int rc = demo_objects_run(&o, &recs[0]);
    int nrecs = 1;
    int brc = demo_bufcache_run(&o, &recs[1]);
    if (brc >= 0)
        nrecs = 2;
    rc |= brc > 0;
    demo_sample();
    rc |= demo_malloc_run(&o) > 0;

    printf("\n== summary ==\n"
           "  %-12s %18s %18s %9s %9s  %s\n", "cache", "slabs", "slabs <50% full",
           "MiB back", "ms", "verified");
    for (int i = 0; i < nrecs; i++)
        summary_row(&recs[i]);
    printf("  total time %.2f s, RSS now %.1f MiB\n", cli_now() - t_start,
           proc_rss_bytes() / 1048576.0);

    if (o.plot) {
        if (demo_plot(o.plot, recs, nrecs) != 0)
            rc = 1;
        else
            printf("plot: %s\n", o.plot);
    }
    if (rc)
        printf("demo: FAILED (see above)\n");
    return rc ? 1 : 0;
}
