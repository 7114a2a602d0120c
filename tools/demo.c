/*
 * tools/demo.c — `slabdefrag demo`: the story of slab fragmentation, told with
 * numbers.
 *
 * 1. Fill: --threads threads allocate --size MiB of 256-byte "entries" from a
 *    movable cache; every entry knows its slot in an owner table and carries a
 *    checksum of its contents.
 * 2. Fragment: free a random 90% of them.  Nearly every slab keeps a few live
 *    entries, so an ordinary allocator could hand almost nothing back.
 * 3. Defragment: slab_cache_defrag() moves the survivors into the fullest slabs
 *    through the cache's move callback (which re-points the owner table), and the
 *    emptied slabs go back to the OS.
 * 4. Verify: every surviving entry is where the table says and its checksum holds.
 * slabinfo and RSS are printed before and after, with the bytes returned and time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slabdefrag/slab.h>

#include "cli.h"

struct entry {
    uint64_t slot;
    uint64_t checksum;
    uint64_t payload[30];
};

struct demo {
    struct slab_cache *cache;
    struct entry **table;
    size_t n;
    unsigned threads;
    int quiet;
};

static uint64_t entry_sum(const struct entry *e)
{
    uint64_t h = e->slot * 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 30; i++)
        h = (h ^ e->payload[i]) * 0x100000001b3ull;
    return h;
}


static enum slab_move_result move_entry(void *old_obj, void *new_obj, size_t size, void *arg)
{
    struct demo *d = arg;
    struct entry *old = old_obj;
    if (old->slot >= d->n || d->table[old->slot] != old)
        return SLAB_MOVE_DONT_KNOW;
    memcpy(new_obj, old_obj, size);
    d->table[old->slot] = new_obj;
    return SLAB_MOVE_YES;
}

struct fill_job {
    struct demo *d;
    size_t begin, end;
    int ok;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    return x ^ (x >> 33);
}

static void *fill_range(void *arg)
{
    struct fill_job *j = arg;
    for (size_t i = j->begin; i < j->end; i++) {
        struct entry *e = slab_alloc(j->d->cache);
        if (!e)
            return NULL;
        e->slot = i;
        for (int k = 0; k < 30; k++)
            e->payload[k] = mix(i * 31 + (uint64_t)k);
        e->checksum = entry_sum(e);
        j->d->table[i] = e;
        if (j->begin == 0)
            cli_progress("filling", i + 1, j->end, j->d->quiet);
    }
    /* Free a random 90% (by a hash of the slot, so the survivors are known). */
    for (size_t i = j->begin; i < j->end; i++)
        if (mix(i ^ 0xdecafbad) % 10 != 0) {
            slab_free(j->d->cache, j->d->table[i]);
            j->d->table[i] = NULL;
        }
    j->ok = 1;
    return NULL;
}

static int fill_and_fragment(struct demo *d)
{
    pthread_t tid[64];
    struct fill_job jobs[64];
    size_t per = d->n / d->threads;
    for (unsigned t = 0; t < d->threads; t++) {
        jobs[t] = (struct fill_job){ d, t * per, t + 1 == d->threads ? d->n : (t + 1) * per, 0 };
        if (pthread_create(&tid[t], NULL, fill_range, &jobs[t]) != 0)
            return -1;
    }
    int ok = 1;
    for (unsigned t = 0; t < d->threads; t++) {
        pthread_join(tid[t], NULL);
        ok &= jobs[t].ok;
    }
    return ok ? 0 : -1;
}

static size_t verify(const struct demo *d)
{
    size_t live = 0;
    for (size_t i = 0; i < d->n; i++) {
        const struct entry *e = d->table[i];
        bool should_live = mix(i ^ 0xdecafbad) % 10 == 0;
        if (!should_live && e)
            return (size_t)-1;
        if (!should_live)
            continue;
        if (!e || e->slot != i || e->checksum != entry_sum(e))
            return (size_t)-1;
        live++;
    }
    return live;
}

static void show(const char *title, struct demo *d)
{
    struct slab_cache_stats st;
    slab_cache_get_stats(d->cache, &st);
    printf("\n== %s ==\n", title);
    slab_info_write(stdout, 0);
    printf("RSS %.1f MiB; cache '%s' maps %.1f MiB for %.1f MiB of live objects (%.2fx)\n",
           cli_rss_bytes() / 1048576.0, st.name, st.bytes_mapped / 1048576.0,
           st.objects_active * sizeof(struct entry) / 1048576.0,
           st.objects_active ? (double)st.bytes_mapped / (st.objects_active * sizeof(struct entry)) : 0);
}

static int parse_args(int argc, char **argv, size_t *mib, unsigned *threads, int *quiet)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            *mib = strtoul(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            *threads = (unsigned)strtoul(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "--quiet") == 0)
            *quiet = 1;
        else {
            fprintf(stderr, "slabdefrag demo: unknown option '%s'\n", argv[i]);
            return -1;
        }
    }
    if (*mib == 0 || *threads == 0 || *threads > 64) {
        fprintf(stderr, "slabdefrag demo: --size must be > 0 and --threads 1..64\n");
        return -1;
    }
    return 0;
}

int cmd_demo(int argc, char **argv)
{
    size_t mib = 256;
    unsigned threads = 2;
    int quiet = 0;
    if (parse_args(argc, argv, &mib, &threads, &quiet) != 0)
        return 2;
    struct demo d = { .threads = threads, .quiet = quiet };
    d.n = mib * 1048576 / sizeof(struct entry);
    d.table = calloc(d.n, sizeof *d.table);
    d.cache = slab_cache_create("demo_entry", sizeof(struct entry), 0, 0, NULL);
    if (!d.table || !d.cache || slab_cache_set_move(d.cache, move_entry, &d) != 0) {
        fprintf(stderr, "slabdefrag demo: setup failed: %s\n", strerror(errno));
        return 1;
    }
    printf("slabdefrag %s demo: %zu MiB of %zu-byte entries, %u threads; free a random 90%%\n",
           slabdefrag_version(), mib, sizeof(struct entry), threads);
    if (fill_and_fragment(&d) != 0) {
        fprintf(stderr, "slabdefrag demo: allocation failed\n");
        return 1;
    }
    show("after freeing 90% (fragmented)", &d);
    size_t rss_before = cli_rss_bytes();
    double t0 = cli_now();
    long released = slab_cache_defrag(d.cache, 100);
    double secs = cli_now() - t0;
    show("after slab_cache_defrag(cache, 100)", &d);
    size_t live = verify(&d);
    printf("\ndefrag: %.1f MiB handed back to the OS in %.1f ms (%.2f ms per MiB); RSS %.1f -> %.1f MiB\n",
           released / 1048576.0, secs * 1e3, released > 0 ? secs * 1e3 / (released / 1048576.0) : 0,
           rss_before / 1048576.0, cli_rss_bytes() / 1048576.0);
    if (live == (size_t)-1) {
        printf("verify: FAILED — an entry was lost, duplicated or corrupted\n");
        return 1;
    }
    printf("verify: all %zu surviving entries intact and reachable\n", live);
    for (size_t i = 0; i < d.n; i++)
        slab_free(d.cache, d.table[i]);
    slab_cache_shrink(d.cache);
    slab_cache_destroy(d.cache);
    free(d.table);
    return released > 0 ? 0 : 1;
}
