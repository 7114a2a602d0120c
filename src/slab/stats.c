/*
 * slab/stats.c — statistics, the slabinfo-style report, and the validator.
 *
 * Sources of each number (all read under cache->lock):
 *   allocs, frees      sum of every live heap's counters (relaxed loads of values
 *                      their threads store) plus the retired counters of heaps
 *                      whose threads exited; objects_active = allocs - frees.
 *   slabs, bytes_mapped  nr_slabs (every slab from slab_new to slab_release).
 *   slabs_partial      the cache's partial bins (LISTED) plus the partial slabs
 *                      each live heap publishes (pub_partial); a thread's active
 *                      slab and its full slabs count as neither partial nor empty
 *                      until they are given back.  slabs_empty: the empty list.
 *   defrag_*           defrag.c's atomic counters.
 * The validator walks the cache lists and checks the invariants of internal.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

int slab_cache_get_stats(struct slab_cache *s, struct slab_cache_stats *out)
{
    if (!s || !out) {
        errno = EINVAL;
        return -EINVAL;
    }
    memset(out, 0, sizeof *out);
    out->name = s->name;
    out->object_size = s->size;
    out->slab_size = slab_bytes(s);
    out->objects_per_slab = s->objects;
    pthread_mutex_lock(&s->lock);
    heap_stats(s, &out->allocs, &out->frees);
    out->slabs = atomic_load_explicit(&s->nr_slabs, relaxed);
    out->slabs_partial = s->nr_partial + heap_partial_slabs(s);
    out->slabs_empty = s->empty.nr;
    pthread_mutex_unlock(&s->lock);
    out->objects_active = out->allocs >= out->frees ? out->allocs - out->frees : 0;
    out->objects_total = out->slabs * s->objects;
    out->bytes_mapped = out->slabs * slab_bytes(s);
    out->defrag_passes = atomic_load(&s->dstat.passes);
    out->defrag_slabs_scanned = atomic_load(&s->dstat.scanned);
    out->defrag_slabs_freed = atomic_load(&s->dstat.freed);
    out->defrag_objects_kicked = atomic_load(&s->dstat.kicked);
    out->defrag_objects_moved = atomic_load(&s->dstat.moved);
    out->defrag_objects_refused = atomic_load(&s->dstat.refused);
    out->defrag_bytes_released = atomic_load(&s->dstat.bytes);
    for (int i = 0; i < SLAB_MOVE_NR_RESULTS; i++)
        out->move_results[i] = atomic_load(&s->dstat.move_results[i]);
    return 0;
}

_Static_assert(SLAB_MOVE_NR_RESULTS == 5, "the JSON and table writers print five move results");

static void write_json_cache(FILE *out, const struct slab_cache_stats *st, int first)
{
    fprintf(out, "%s\n  {\"name\": \"", first ? "" : ",");
    for (const char *p = st->name; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        if ((unsigned char)*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fprintf(out,
            "\", \"object_size\": %zu, \"slab_size\": %zu, \"objects_per_slab\": %u,"
            " \"objects_active\": %" PRIu64 ", \"objects_total\": %" PRIu64 ","
            " \"slabs\": %" PRIu64 ", \"slabs_partial\": %" PRIu64 ", \"slabs_empty\": %" PRIu64 ","
            " \"bytes_mapped\": %" PRIu64 ", \"allocs\": %" PRIu64 ", \"frees\": %" PRIu64 ","
            " \"defrag_passes\": %" PRIu64 ", \"defrag_slabs_scanned\": %" PRIu64 ","
            " \"defrag_slabs_freed\": %" PRIu64 ", \"defrag_objects_kicked\": %" PRIu64 ","
            " \"defrag_objects_moved\": %" PRIu64 ", \"defrag_objects_refused\": %" PRIu64 ","
            " \"defrag_bytes_released\": %" PRIu64 ", \"move_results\": [%" PRIu64 ", %" PRIu64
            ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 "]}",
            st->object_size, st->slab_size, st->objects_per_slab, st->objects_active,
            st->objects_total, st->slabs, st->slabs_partial, st->slabs_empty, st->bytes_mapped,
            st->allocs, st->frees, st->defrag_passes, st->defrag_slabs_scanned,
            st->defrag_slabs_freed, st->defrag_objects_kicked, st->defrag_objects_moved,
            st->defrag_objects_refused, st->defrag_bytes_released, st->move_results[0],
            st->move_results[1], st->move_results[2], st->move_results[3], st->move_results[4]);
}

static void write_table_row(FILE *out, const struct slab_cache_stats *st)
{
    unsigned fill = st->objects_total ? (unsigned)(100 * st->objects_active / st->objects_total) : 0;
    fprintf(out,
            "%-20s %7zu %7zu %5u %10" PRIu64 " %10" PRIu64 " %7" PRIu64 " %7" PRIu64 " %5" PRIu64
            " %10" PRIu64 " %4u%% %6" PRIu64 " %7" PRIu64 " %9" PRIu64 " %9" PRIu64 "\n",
            st->name, st->object_size, st->slab_size, st->objects_per_slab, st->objects_active,
            st->objects_total, st->slabs, st->slabs_partial, st->slabs_empty,
            st->bytes_mapped / 1024, fill, st->defrag_passes, st->defrag_slabs_freed,
            st->defrag_objects_kicked, st->defrag_objects_moved);
}

struct info_ctx {
    FILE *out;
    int json;
    int first;
};

static void info_one(struct slab_cache *s, void *arg)
{
    struct info_ctx *c = arg;
    struct slab_cache_stats st;
    slab_cache_get_stats(s, &st);
    if (c->json)
        write_json_cache(c->out, &st, c->first);
    else
        write_table_row(c->out, &st);
    c->first = 0;
}

void slab_info_write(FILE *out, int json)
{
    struct info_ctx c = { out, json, 1 };
    if (json)
        fputs("{\"caches\": [", out);
    else
        fprintf(out, "%-20s %7s %7s %5s %10s %10s %7s %7s %5s %10s %5s %6s %7s %9s %9s\n", "# name",
                "objsize", "slabsz", "o/s", "active", "total", "slabs", "partial", "empty",
                "mappedKiB", "fill", "passes", "s_freed", "kicked", "moved");
    slab_cache_foreach(info_one, &c);
    if (json)
        fputs("\n]}\n", out);
    fflush(out);
}

static int fail(const struct slab_cache *s, const struct slab *sl, const char *what)
{
    fprintf(stderr, "slabdefrag: cache '%s': validate: slab %p: %s\n", s->name, (const void *)sl, what);
    errno = EUCLEAN;
    return -EUCLEAN;
}

static unsigned freelist_length(const struct slab_cache *s, const struct slab *sl, int *bad)
{
    unsigned n = 0;
    for (void *p = sl->freelist; p; p = fp_get(s, p)) {
        uintptr_t off = (uintptr_t)p - (uintptr_t)sl - s->first_offset;
        if (off >= (uintptr_t)s->objects * s->stride || off % s->stride || ++n > s->objects) {
            *bad = 1;
            break;
        }
    }
    return n;
}

static int validate_list(struct slab_cache *s, const struct slab_list *l, enum slab_list_id id)
{
    unsigned n = 0;
    for (struct slab *sl = l->head; sl; sl = sl->next, n++) {
        int bad = 0;
        if (!slab_is_live_of(sl, s))
            return fail(s, sl, "bad header");
        if (sl->list != id || xf_state(atomic_load(&sl->xfree)) != SS_LISTED)
            return fail(s, sl, "wrong list or state");
        unsigned len = freelist_length(s, sl, &bad);
        if (bad || len + slab_inuse(sl) != s->objects)
            return fail(s, sl, "freelist length + inuse != objects");
        if (xf_count(atomic_load(&sl->xfree)) > slab_inuse(sl))
            return fail(s, sl, "more remote frees than objects in use");
        if (id == LIST_EMPTY && slab_inuse(sl) != 0)
            return fail(s, sl, "non-empty slab on the empty list");
    }
    if (n != l->nr)
        return fail(s, NULL, "list count mismatch");
    return 0;
}

int slab_cache_validate(struct slab_cache *s)
{
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    unsigned nr_partial = 0;
    for (unsigned b = 0; b < PARTIAL_BINS && rc == 0; b++) {
        rc = validate_list(s, &s->partial[b], LIST_PARTIAL);
        nr_partial += s->partial[b].nr;
    }
    if (rc == 0 && nr_partial != s->nr_partial)
        rc = fail(s, NULL, "nr_partial != sum of the partial bins");
    if (rc == 0)
        rc = validate_list(s, &s->empty, LIST_EMPTY);
    uint64_t n = 0;
    for (struct slab *sl = s->all_slabs; sl && rc == 0; sl = sl->all_next, n++)
        if (!slab_is_live_of(sl, s))
            rc = fail(s, sl, "bad header on the all-slabs list");
    if (rc == 0 && n != atomic_load(&s->nr_slabs))
        rc = fail(s, NULL, "nr_slabs != number of slabs");
    uint64_t allocs, frees;
    heap_stats(s, &allocs, &frees);
    if (rc == 0 && frees > allocs)
        rc = fail(s, NULL, "more frees than allocations");
    pthread_mutex_unlock(&s->lock);
    return rc;
}

long slab_cache_fill_histogram(struct slab_cache *s, uint64_t *counts, unsigned nbuckets)
{
    if (!s || !counts || nbuckets == 0) {
        errno = EINVAL;
        return -EINVAL;
    }
    for (unsigned i = 0; i < nbuckets; i++)
        counts[i] = 0;
    long n = 0;
    pthread_mutex_lock(&s->lock);
    for (struct slab *sl = s->all_slabs; sl; sl = sl->all_next, n++) {
        uint64_t x = atomic_load(&sl->xfree);
        unsigned inuse = xf_state(x) == SS_FULL ? s->objects : slab_inuse(sl);
        unsigned live = inuse > xf_count(x) ? inuse - xf_count(x) : 0;
        unsigned b = (unsigned)((uint64_t)live * nbuckets / s->objects);
        counts[b < nbuckets ? b : nbuckets - 1]++;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}
