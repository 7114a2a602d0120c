/*
 * tools/demo_objects.c — act 1 of `slabdefrag demo`: a movable-object cache.
 *
 * 1. Fill: --threads threads allocate --size MiB of 256-byte "entries" from a
 *    cache with a move callback; every entry knows its slot in an owner table
 *    and carries a checksum of its contents.
 * 2. Fragment: each thread frees a random 90% of its entries (chosen by a hash
 *    of the slot, so the survivors are known).  Nearly every slab keeps a few
 *    live entries, so an ordinary allocator could hand almost nothing back.
 * 3. Defragment: slab_cache_defrag(cache, 100) freezes the sparse slabs and asks
 *    move_entry() to relocate each survivor into the fullest slabs; the callback
 *    copies it and re-points the owner table.  Emptied slabs go back to the OS.
 *    Next to the pass's time it prints the pass's physical limit (a memcpy of
 *    the bytes it moved plus one MADV_DONTNEED of the bytes it released,
 *    measured right after in this process) and the ratio of the two.
 * 4. Verify: every surviving entry is where the table says, holds its own slot
 *    number and its checksum holds; every freed slot is still empty.
 *
 * Locking: the table is written by the fill threads (disjoint ranges) before
 * the defrag pass and read by the move callback afterwards (pthread_join orders
 * them); the callback runs on the thread that calls slab_cache_defrag.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "demo.h"

struct entry {
    uint64_t slot;
    uint64_t checksum;
    uint64_t payload[30];
};

struct objects {
    struct slab_cache *cache;
    struct entry **table;
    size_t n;
    int quiet;
};

static uint64_t entry_sum(const struct entry *e)
{
    uint64_t h = e->slot * 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 30; i++)
        h = (h ^ e->payload[i]) * 0x100000001b3ull;
    return h;
}

static bool survives(size_t slot)
{
    return demo_mix(slot ^ 0xdecafbad) % 10 == 0;
}

static enum slab_move_result move_entry(void *old_obj, void *new_obj, size_t size, void *arg)
{
    struct objects *d = arg;
    struct entry *old = old_obj;
    if (old->slot >= d->n || d->table[old->slot] != old)
        return SLAB_MOVE_DONT_KNOW;
    memcpy(new_obj, old_obj, size);
    d->table[old->slot] = new_obj;
    return SLAB_MOVE_YES;
}

struct fill_job {
    struct objects *d;
    size_t begin, end;
    int ok;
};

static void *fill_range(void *arg)
{
    struct fill_job *j = arg;
    for (size_t i = j->begin; i < j->end; i++) {
        struct entry *e = slab_alloc(j->d->cache);
        if (!e)
            return NULL;
        e->slot = i;
        for (int k = 0; k < 30; k++)
            e->payload[k] = demo_mix(i * 31 + (uint64_t)k);
        e->checksum = entry_sum(e);
        j->d->table[i] = e;
        if (j->begin == 0)
            demo_progress("filling entries", i + 1, j->end, j->d->quiet);
    }
    for (size_t i = j->begin; i < j->end; i++)
        if (!survives(i)) {
            slab_free(j->d->cache, j->d->table[i]);
            j->d->table[i] = NULL;
        }
    j->ok = 1;
    return NULL;
}

static int fill_and_fragment(struct objects *d, unsigned threads)
{
    pthread_t tid[64];
    struct fill_job jobs[64];
    size_t per = d->n / threads;
    unsigned started = 0;
    for (unsigned t = 0; t < threads; t++) {
        jobs[t] = (struct fill_job){ d, t * per, t + 1 == threads ? d->n : (t + 1) * per, 0 };
        if (pthread_create(&tid[t], NULL, fill_range, &jobs[t]) != 0)
            break;
        started++;
    }
    int ok = started == threads;
    for (unsigned t = 0; t < started; t++) {
        pthread_join(tid[t], NULL);
        ok &= jobs[t].ok;
    }
    return ok ? 0 : -1;
}

/* The number of surviving entries, or (size_t)-1 if anything is wrong. */
static size_t verify(const struct objects *d)
{
    size_t live = 0;
    for (size_t i = 0; i < d->n; i++) {
        const struct entry *e = d->table[i];
        if (!survives(i)) {
            if (e)
                return (size_t)-1;
            continue;
        }
        if (!e || e->slot != i || e->checksum != entry_sum(e))
            return (size_t)-1;
        live++;
    }
    return live;
}

int demo_objects_run(const struct demo_opts *o, struct demo_record *rec)
{
    struct objects d = { .quiet = o->quiet };
    d.n = o->mib * 1048576 / sizeof(struct entry);
    snprintf(rec->cache, sizeof rec->cache, "demo_entry");
    snprintf(rec->after_label, sizeof rec->after_label, "defragmented");
    printf("\n#### act 1: a movable-object cache ####\n"
           "%zu MiB of %zu-byte entries from %u threads; then a random 90%% are freed\n",
           o->mib, sizeof(struct entry), o->threads);
    d.table = calloc(d.n, sizeof *d.table);
    d.cache = slab_cache_create("demo_entry", sizeof(struct entry), 0, 0, NULL);
    if (!d.table || !d.cache || slab_cache_set_move(d.cache, move_entry, &d) != 0) {
        fprintf(stderr, "slabdefrag demo: setup failed: %s\n", strerror(errno));
        if (d.cache)
            slab_cache_destroy(d.cache);
        free(d.table);
        return 1;
    }
    if (fill_and_fragment(&d, o->threads) != 0) {
        fprintf(stderr, "slabdefrag demo: allocation failed\n");
        return 1; /* the process exits: what was allocated goes with it */
    }
    demo_phase("objects: 90% freed");
    demo_show_cache("demo_entry after freeing 90% (fragmented)", d.cache, o->quiet);
    slab_cache_fill_histogram(d.cache, rec->before, DEMO_BUCKETS);

    size_t rss_before = proc_rss_bytes();
    struct slab_cache_stats st0, st1;
    slab_cache_get_stats(d.cache, &st0);
    double t0 = cli_now();
    rec->released = slab_cache_defrag(d.cache, 100);
    rec->seconds = cli_now() - t0;
    slab_cache_get_stats(d.cache, &st1);
    size_t moved = (size_t)(st1.defrag_objects_moved - st0.defrag_objects_moved) * sizeof(struct entry);
    double limit = cli_defrag_limit_seconds(moved, rec->released > 0 ? (size_t)rec->released : 0);
    demo_phase("objects: defragmented");
    demo_show_cache("demo_entry after slab_cache_defrag(cache, 100)", d.cache, o->quiet);
    slab_cache_fill_histogram(d.cache, rec->after, DEMO_BUCKETS);
    printf("\nslabs per fill decile     0-10%%  10-20%%  20-30%%  30-40%%  40-50%%  50-60%%  "
           "60-70%%  70-80%%  80-90%% 90-100%%\n");
    demo_show_hist("fragmented", rec->before);
    demo_show_hist("defragmented", rec->after);

    if (o->corrupt == DEMO_CORRUPT_OBJECTS)
        for (size_t i = 0; i < d.n; i++)
            if (d.table[i]) {
                d.table[i]->payload[7] ^= 1; /* one bit, behind the checksum's back */
                printf("(--corrupt: flipped one bit of entry %zu)\n", i);
                break;
            }
    size_t live = verify(&d);
    printf("defrag: %.1f MiB handed back to the OS in %.1f ms (limit %.1f ms: memcpy of the %.1f MiB "
           "moved + MADV_DONTNEED; %.1fx); RSS %.1f -> %.1f MiB\n",
           rec->released / 1048576.0, rec->seconds * 1e3, limit * 1e3, moved / 1048576.0,
           limit > 0 ? rec->seconds / limit : 0.0, rss_before / 1048576.0,
           proc_rss_bytes() / 1048576.0);
    rec->ok = live != (size_t)-1 && rec->released > 0;
    if (live == (size_t)-1)
        printf("verify: FAILED — an entry was lost, duplicated or corrupted\n");
    else
        printf("verify: all %zu surviving entries intact and reachable\n", live);
    if (rec->released <= 0)
        printf("defrag: FAILED — nothing was handed back (%ld)\n", rec->released);

    for (size_t i = 0; i < d.n; i++)
        slab_free(d.cache, d.table[i]);
    slab_cache_shrink(d.cache);
    slab_cache_destroy(d.cache);
    free(d.table);
    demo_phase("objects: freed");
    return rec->ok ? 0 : 1;
}
