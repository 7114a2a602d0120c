/*
 * tools/demo.h — what the parts of `slabdefrag demo` share.
 *
 * The driver (demo.c) owns the options, the RSS-over-time samples and the
 * per-cache fill histograms; each part (demo_objects.c: a movable-object cache,
 * demo_bufcache.c: the buffer cache's buffer heads) fills its cache, fragments
 * it, defragments it, verifies every byte and records what it saw here; the
 * plotter (demo_plot.c) draws the records with gnuplot.
 *
 * Samples are taken by the main thread at phase boundaries and by worker 0
 * during long steps (demo_progress); a mutex serialises them.
 */
#ifndef SLABDEFRAG_TOOLS_DEMO_H
#define SLABDEFRAG_TOOLS_DEMO_H

#include <stddef.h>
#include <stdint.h>

#include <slabdefrag/slab.h>

#define DEMO_BUCKETS 10     /* fill histogram: deciles */
#define DEMO_MAX_SAMPLES 4096
#define DEMO_MAX_PHASES 32
#define DEMO_CORRUPT_OBJECTS 1
#define DEMO_CORRUPT_BLOCKS 2

struct demo_opts {
    size_t mib;       /* --size: MiB of objects, and of the image file */
    unsigned threads; /* --threads: workers for fill and verify */
    int quiet;        /* --quiet: no progress bars, no slabinfo tables */
    const char *plot; /* --plot FILE.png, or NULL */
    int corrupt;      /* --corrupt objects|blocks (tests): damage data behind the
                         demo's back after defrag, so its verification must fail */
};

/* One cache's story in numbers. */
struct demo_record {
    char cache[32];
    char after_label[40];          /* what "after" means for this cache */
    uint64_t before[DEMO_BUCKETS]; /* slabs per fill decile, fragmented */
    uint64_t after[DEMO_BUCKETS];  /* ... after defragmentation */
    long released;                 /* bytes slab_cache_defrag handed back */
    double seconds;                /* its wall time */
    int ok;                        /* every verification passed */
};

struct demo_sample {
    double t;          /* seconds since the demo started */
    size_t rss;        /* bytes */
};

struct demo_phase {
    double t;
    char label[40];
};

/* demo.c */
void demo_sample(void);                          /* record RSS now */
void demo_phase(const char *label);              /* record RSS now and name the moment */
void demo_progress(const char *what, size_t done, size_t total, int quiet); /* bar + sample */
size_t demo_samples(const struct demo_sample **out);
size_t demo_phases(const struct demo_phase **out);
/* Print a fill histogram (slabs per decile) and the cache's summary line. */
void demo_show_hist(const char *label, const uint64_t *counts);
void demo_show_cache(const char *title, struct slab_cache *c, int quiet);
uint64_t demo_mix(uint64_t x);                   /* a 64-bit finaliser: deterministic "random" */

/* demo_objects.c / demo_bufcache.c: 0 when everything verified, 1 otherwise;
 * demo_bufcache_run returns -1 (skipped) when built without the buffer cache. */
int demo_objects_run(const struct demo_opts *o, struct demo_record *rec);
int demo_bufcache_run(const struct demo_opts *o, struct demo_record *rec);

/* demo_malloc.c (act 3): the malloc'd table under each allocator; 0 verified,
 * 1 failed, -1 skipped (the malloc front end is not built). */
int demo_malloc_run(const struct demo_opts *o);

/* demo_plot.c: 0, or 1 with a message (gnuplot missing or failed). */
int demo_plot_available(void);
int demo_plot(const char *png, const struct demo_record *recs, int nrecs);

#endif
