/*
 * tools/demo_bufcache.c — act 2 of `slabdefrag demo`: the buffer cache's
 * buffer heads, defragmented through the evict protocol (get/kick).
 *
 * 1. Objects.  A temporary image file of --size MiB in $TMPDIR (or /tmp),
 *    unlinked as soon as the cache has opened it, so it is gone however the
 *    process ends.  One bcache whose memory limit holds the whole image, one
 *    device of 1 KiB blocks: each cached 4 KiB page carries a ring of 4 buffer
 *    heads from the process-wide "buffer_head" slab cache (64 bytes each, about
 *    16 pages' rings per 4 KiB slab).
 * 2. The story.
 *    fill       --threads threads write every block through the cache (bh_get,
 *               bh_lock, deterministic contents, bh_mark_dirty, bh_unlock,
 *               bh_put), then bdev_sync: every page cached, every buffer-head
 *               slab full.
 *    fragment   a scattered 1/8 of the pages is "in use" (the application holds
 *               one buffer head of each, as a filesystem holds its metadata
 *               blocks) when memory pressure makes it call bcache_shrink: all
 *               other pages are evicted and their buffer heads freed, so nearly
 *               every buffer-head slab keeps a few live objects.  The
 *               application then lets go of its blocks.  The "buffer_head"
 *               cache must now be well under half full, or the act fails.
 *    defrag     slab_cache_defrag(buffer_head, 100): get pins the pages of a
 *               frozen slab's buffer heads, kick writes back dirty ones and
 *               drops the clean, unreferenced rings (src/bufcache/bh_defrag.c);
 *               emptied slabs go back to the OS.
 *    verify     the in-use blocks are read again: their rings are rebuilt, with
 *               no device I/O, into a few full slabs (that is the "after"
 *               histogram); then every block of the image is read by the
 *               threads and compared with what was written (evicted pages come
 *               from the file).  bcache_validate, bdev_close and bcache_destroy
 *               must succeed too.
 * 3. Locking.  Worker threads own disjoint page ranges; the main thread drives
 *    the phases in between.  The cache's flusher thread runs throughout.
 * 4. Numbers.  Memory limit = image + image/8 + 2 MiB (frames, descriptors,
 *    buffer heads, index).  One page in 8 stays in use.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "demo.h"

#ifndef SLABDEFRAG_HAVE_BUFCACHE
int demo_bufcache_run(const struct demo_opts *o, struct demo_record *rec)
{
    printf("\n#### act 2: skipped (built without the buffer cache, SLABDEFRAG_BUFCACHE=OFF) ####\n");
    return -1;
}
#else
#include <slabdefrag/buffer.h>

#define BLOCK 1024u
#define BLOCKS_PER_PAGE 4u
#define WORDS (BLOCK / sizeof(uint64_t))
#define HOT_ONE_IN 8u

struct bcdemo {
    struct bcache *bc;
    struct bdev *dev;
    uint64_t nblocks, npages;
    int quiet;
    int fd; /* our own descriptor of the image, for --corrupt blocks only; else -1 */
};

static void pattern(uint64_t blk, uint64_t *w)
{
    for (unsigned i = 0; i < WORDS; i++)
        w[i] = demo_mix(blk * WORDS + i + 0x5eed);
}

static int page_is_hot(uint64_t page)
{
    return demo_mix(page ^ 0xb10c) % HOT_ONE_IN == 0;
}

struct job {
    struct bcdemo *d;
    uint64_t begin, end; /* blocks */
    int write;
    uint64_t bad, errors;
};

static void *run_job(void *arg)
{
    struct job *j = arg;
    uint64_t w[WORDS];
    for (uint64_t b = j->begin; b < j->end; b++) {
        pattern(b, w);
        struct buffer_head *bh = j->write ? bh_get(j->d->dev, b) : bh_read(j->d->dev, b);
        if (!bh) {
            if (j->errors++ == 0)
                fprintf(stderr, "slabdefrag demo: block %llu: %s\n", (unsigned long long)b,
                        strerror(errno));
            continue;
        }
        if (j->write) {
            bh_lock(bh);
            memcpy(bh->b_data, w, BLOCK);
            bh_mark_dirty(bh);
            bh_unlock(bh);
        } else if (memcmp(bh->b_data, w, BLOCK) != 0) {
            if (j->bad++ == 0)
                fprintf(stderr, "slabdefrag demo: block %llu does not hold what was written\n",
                        (unsigned long long)b);
        }
        bh_put(bh);
        if (j->begin == 0)
            demo_progress(j->write ? "writing 1 KiB blocks" : "verifying every block",
                          b + 1, j->end, j->d->quiet);
    }
    return NULL;
}

/* Run the write or verify pass on `threads` threads; the number of failures. */
static uint64_t run_pass(struct bcdemo *d, unsigned threads, int write)
{
    pthread_t tid[64];
    struct job jobs[64];
    uint64_t per = d->npages / threads * BLOCKS_PER_PAGE, failures = 0;
    int started[64];
    for (unsigned t = 0; t < threads; t++) {
        jobs[t] = (struct job){ d, t * per, t + 1 == threads ? d->nblocks : (t + 1) * per, write,
                                0, 0 };
        started[t] = pthread_create(&tid[t], NULL, run_job, &jobs[t]) == 0;
        if (!started[t])
            run_job(&jobs[t]); /* do its share here */
    }
    for (unsigned t = 0; t < threads; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        failures += jobs[t].bad + jobs[t].errors;
    }
    return failures;
}

static double fill_percent(struct slab_cache *c)
{
    struct slab_cache_stats st;
    slab_cache_get_stats(c, &st);
    return st.objects_total ? 100.0 * st.objects_active / st.objects_total : 0.0;
}

static struct bcache_stats bstats(struct bcdemo *d)
{
    struct bcache_stats s;
    memset(&s, 0, sizeof s);
    bcache_get_stats(d->bc, &s);
    return s;
}

/* fragment: hold one buffer head of every hot page, shrink, let go.  The number
 * of hot pages, or -1. */
static long fragment(struct bcdemo *d)
{
    struct buffer_head **held = calloc(d->npages / HOT_ONE_IN * 2 + 16, sizeof *held);
    size_t n = 0, cap = d->npages / HOT_ONE_IN * 2 + 16;
    if (!held)
        return -1;
    long ret = 0;
    for (uint64_t p = 0; p < d->npages && n < cap; p++) {
        if (!page_is_hot(p))
            continue;
        held[n] = bh_read(d->dev, p * BLOCKS_PER_PAGE);
        if (!held[n]) {
            fprintf(stderr, "slabdefrag demo: bh_read: %s\n", strerror(errno));
            ret = -1;
            break;
        }
        n++;
    }
    long freed = bcache_shrink(d->bc, SIZE_MAX);
    printf("memory pressure: bcache_shrink(SIZE_MAX) with %zu of %llu pages in use "
           "freed %.1f MiB (pages evicted, their buffer heads freed)\n",
           n, (unsigned long long)d->npages, freed > 0 ? freed / 1048576.0 : 0.0);
    if (freed < 0)
        ret = -1;
    for (size_t i = 0; i < n; i++)
        bh_put(held[i]);
    free(held);
    return ret < 0 ? ret : (long)n;
}

/* Read every block of the hot pages again; the number of device reads it took,
 * or -1 if a block was wrong. */
static long reuse_hot(struct bcdemo *d)
{
    uint64_t w[WORDS];
    uint64_t reads0 = bstats(d).reads;
    for (uint64_t p = 0; p < d->npages; p++) {
        if (!page_is_hot(p))
            continue;
        for (uint64_t b = p * BLOCKS_PER_PAGE; b < (p + 1) * BLOCKS_PER_PAGE; b++) {
            struct buffer_head *bh = bh_read(d->dev, b);
            pattern(b, w);
            int ok = bh && memcmp(bh->b_data, w, BLOCK) == 0;
            bh_put(bh);
            if (!ok) {
                fprintf(stderr, "slabdefrag demo: in-use block %llu is wrong after defrag\n",
                        (unsigned long long)b);
                return -1;
            }
        }
    }
    return (long)(bstats(d).reads - reads0);
}

static int setup(struct bcdemo *d, const struct demo_opts *o)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/slabdefrag-demo-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "slabdefrag demo: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    off_t bytes = (off_t)o->mib << 20;
    int err = ftruncate(fd, bytes) != 0 ? errno : 0;
    if (o->corrupt == DEMO_CORRUPT_BLOCKS)
        d->fd = fd;
    else
        close(fd);
    struct bcache_config cfg = { .memory_limit = (size_t)bytes + (size_t)bytes / 8 + (2u << 20) };
    if (!err && !(d->bc = bcache_create(&cfg)))
        err = errno;
    if (!err && !(d->dev = bdev_open(d->bc, path, BLOCK, O_RDWR)))
        err = errno;
    unlink(path); /* the open device keeps it; it vanishes when the process ends */
    if (err) {
        fprintf(stderr, "slabdefrag demo: image %s: %s\n", path, strerror(err));
        if (d->bc)
            bcache_destroy(d->bc);
        return -1;
    }
    d->nblocks = (uint64_t)bytes / BLOCK;
    d->npages = d->nblocks / BLOCKS_PER_PAGE;
    printf("image: %zu MiB temporary file in %s (removed at exit), %llu blocks of 1 KiB; "
           "cache limit %.1f MiB\n", o->mib, dir && *dir ? dir : "/tmp",
           (unsigned long long)d->nblocks, cfg.memory_limit / 1048576.0);
    return 0;
}

static void show_hist_header(void)
{
    printf("\nslabs per fill decile     0-10%%  10-20%%  20-30%%  30-40%%  40-50%%  50-60%%  "
           "60-70%%  70-80%%  80-90%% 90-100%%\n");
}

int demo_bufcache_run(const struct demo_opts *o, struct demo_record *rec)
{
    struct bcdemo d = { .quiet = o->quiet, .fd = -1 };
    snprintf(rec->cache, sizeof rec->cache, "buffer_head");
    snprintf(rec->after_label, sizeof rec->after_label, "defragmented, in-use pages reused");
    printf("\n#### act 2: the buffer cache's buffer heads (get/kick) ####\n");
    if (setup(&d, o) != 0)
        return 1;
    struct slab_cache *bhc = slab_cache_find("buffer_head");
    int ok = bhc != NULL;
    uint64_t filled[DEMO_BUCKETS] = { 0 };

    /* fill */
    uint64_t failures = run_pass(&d, o->threads, 1);
    int serr = bdev_sync(d.dev);
    if (failures || serr) {
        printf("fill: FAILED — %llu blocks could not be written, bdev_sync %d\n",
               (unsigned long long)failures, serr);
        ok = 0;
    }
    demo_phase("bufcache: filled");
    if (bhc) {
        demo_show_cache("buffer_head after writing every block (4 per page)", bhc, 1);
        slab_cache_fill_histogram(bhc, filled, DEMO_BUCKETS);
    }

    /* fragment */
    long hot = ok ? fragment(&d) : -1;
    demo_phase("bufcache: shrunk");
    if (hot < 0)
        ok = 0;
    double frag = bhc ? fill_percent(bhc) : 100;
    if (bhc) {
        demo_show_cache("buffer_head after the shrink (fragmented)", bhc, o->quiet);
        slab_cache_fill_histogram(bhc, rec->before, DEMO_BUCKETS);
        if (frag >= 50) {
            printf("fragment: FAILED — buffer_head is %.0f%% full, expected well under 50%%\n",
                   frag);
            ok = 0;
        }
    }

    /* defrag */
    struct bcache_stats s0 = bstats(&d);
    size_t rss_before = proc_rss_bytes();
    double t0 = cli_now();
    rec->released = bhc ? slab_cache_defrag(bhc, 100) : -1;
    rec->seconds = cli_now() - t0;
    struct bcache_stats s1 = bstats(&d);
    demo_phase("bufcache: defragmented");
    if (bhc)
        demo_show_cache("buffer_head after slab_cache_defrag(buffer_head, 100)", bhc, o->quiet);
    printf("defrag: %.2f MiB handed back to the OS in %.1f ms; RSS %.1f -> %.1f MiB; "
           "%llu buffer rings dropped (clean, unreferenced: rebuilt on next use)\n",
           rec->released / 1048576.0, rec->seconds * 1e3, rss_before / 1048576.0,
           proc_rss_bytes() / 1048576.0,
           (unsigned long long)(s1.rings_dropped - s0.rings_dropped));
    if (rec->released <= 0) {
        printf("defrag: FAILED — nothing was handed back (%ld)\n", rec->released);
        ok = 0;
    }

    /* verify: the in-use blocks first (rings rebuilt densely), then everything */
    long reads = hot > 0 ? reuse_hot(&d) : 0;
    if (reads < 0)
        ok = 0;
    else if (hot > 0)
        printf("reuse: the %ld in-use pages read again, %ld device reads (rings rebuilt from "
               "the cached pages)\n", hot, reads);
    if (bhc) {
        demo_show_cache("buffer_head after the in-use blocks are used again", bhc, 1);
        slab_cache_fill_histogram(bhc, rec->after, DEMO_BUCKETS);
        show_hist_header();
        demo_show_hist("filled", filled);
        demo_show_hist("fragmented", rec->before);
        demo_show_hist("defragmented + reused", rec->after);
    }
    if (d.fd >= 0) { /* --corrupt blocks: one byte of the first evicted page, on disk */
        uint64_t p = 0;
        while (p + 1 < d.npages && page_is_hot(p))
            p++;
        char byte = 0x5a;
        if (pwrite(d.fd, &byte, 1, (off_t)(p * BLOCKS_PER_PAGE * BLOCK + 100)) == 1)
            printf("(--corrupt: overwrote a byte of block %llu in the file)\n",
                   (unsigned long long)(p * BLOCKS_PER_PAGE));
        close(d.fd);
    }
    failures = run_pass(&d, o->threads, 0);
    demo_phase("bufcache: verified");
    int verr = bcache_validate(d.bc);
    int cerr = bdev_close(d.dev);
    int derr = bcache_destroy(d.bc);
    if (failures || verr || cerr || derr) {
        printf("verify: FAILED — %llu blocks wrong or unreadable; validate %d, close %d, "
               "destroy %d\n", (unsigned long long)failures, verr, cerr, derr);
        ok = 0;
    } else {
        printf("verify: all %llu blocks hold what was written; cache structures valid\n",
               (unsigned long long)d.nblocks);
    }
    demo_phase("bufcache: closed");
    rec->ok = ok;
    return ok ? 0 : 1;
}
#endif
