/*
 * released_equals_emptied: the memory a pass hands back is exactly the slabs
 * it emptied — accounted (bytes_mapped, the trigger's return value, the
 * defrag byte counter) and really gone (mincore) — and nothing else.
 *
 * A SLAB_NO_RESERVE cache of 256 B movable objects, 400 slabs filled, then a
 * seeded random 70% freed.  Two triggers: slab_cache_defrag(s, 60), then
 * slab_cache_shrink(s).  After each:
 *   - the fall of bytes_mapped == the trigger's return value == the growth of
 *     defrag_bytes_released;
 *   - bytes_mapped == slab size x the slabs that hold live objects plus the
 *     partial slabs left (after shrink: exactly the slabs holding objects);
 *   - every page of every slab the cache held before and holds no live object
 *     now is not resident (mincore), and every slab holding objects is;
 *   - objects intact, objects_active == the owner's count.
 */
#include "defragtest.h"

#include <stdbool.h>

#define NSLABS 400
#define PER_SLAB 15

static int cmp_u(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorted distinct slab bases of the live objects; returns their number. */
static size_t live_slabs(struct owner *o, uintptr_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < o->nslots; i++)
        if (o->slots[i])
            out[n++] = slab_base(o->slots[i], o->slab_size);
    qsort(out, n, sizeof *out, cmp_u);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || out[k - 1] != out[i])
            out[k++] = out[i];
    return k;
}

static void check_trigger(struct owner *o, const uintptr_t *all, size_t n_all, bool shrink)
{
    const char *what = shrink ? "shrink" : "defrag(60)";
    struct slab_cache_stats before = cache_stats(o->s);
    long rel = shrink ? slab_cache_shrink(o->s) : slab_cache_defrag(o->s, 60);
    struct slab_cache_stats after = cache_stats(o->s);
    CHECK(rel > 0, "%s returned %ld", what, rel);
    CHECK(before.bytes_mapped - after.bytes_mapped == (uint64_t)rel,
          "%s: bytes_mapped fell by %llu, the trigger returned %ld", what,
          (unsigned long long)(before.bytes_mapped - after.bytes_mapped), rel);
    CHECK(after.defrag_bytes_released - before.defrag_bytes_released == (uint64_t)rel,
          "%s: defrag_bytes_released grew by %llu, the trigger returned %ld", what,
          (unsigned long long)(after.defrag_bytes_released - before.defrag_bytes_released), rel);
    uintptr_t *held = dt_calloc(o->nslots, sizeof *held);
    size_t n_held = live_slabs(o, held);
    if (shrink)
        CHECK(after.bytes_mapped == n_held * o->slab_size,
              "%s: bytes_mapped %llu for %zu slabs holding objects", what,
              (unsigned long long)after.bytes_mapped, n_held);
    else
        CHECK(after.bytes_mapped >= n_held * o->slab_size, "%s: bytes_mapped %llu < %zu slabs",
              what, (unsigned long long)after.bytes_mapped, n_held);
    size_t pages = o->slab_size / 4096;
    unsigned char *vec = dt_calloc(pages, 1);
    size_t gone = 0;
    for (size_t i = 0; i < n_all; i++) {
        bool holds = bsearch(&all[i], held, n_held, sizeof *held, cmp_u) != NULL;
        CHECK(mincore((void *)all[i], o->slab_size, vec) == 0, "mincore: %s", strerror(errno));
        if (holds) {
            CHECK(vec[0] & 1, "%s: slab %#lx holds objects but is not resident", what,
                  (unsigned long)all[i]);
            continue;
        }
        if (!shrink && !(vec[0] & 1))
            gone++;
        for (size_t k = 0; shrink && k < pages; k++)
            CHECK(!(vec[k] & 1), "%s: slab %#lx holds no object but page %zu is resident", what,
                  (unsigned long)all[i], k);
        gone += shrink;
    }
    CHECK(gone * o->slab_size >= (size_t)rel, "%s: %zu slabs not resident, %ld bytes released",
          what, gone, rel);
    size_t live = owner_verify(o, what);
    CHECK(after.objects_active == live, "%s: objects_active %llu, owner %zu", what,
          (unsigned long long)after.objects_active, live);
    free(vec);
    free(held);
}

int main(int argc, char **argv)
{
    dt_watchdog(60);
    dt_no_decay_release();
    uint64_t seed = test_seed(argc, argv, 1, 0x7e1ea5e);
    struct owner o;
    owner_init(&o, "released-emptied", 256, PER_SLAB * NSLABS, SLAB_NO_RESERVE);
    CHECK(cache_stats(o.s).objects_per_slab == PER_SLAB, "objects_per_slab %u",
          cache_stats(o.s).objects_per_slab);
    owner_fill(&o, o.nslots);
    uintptr_t *all = dt_calloc(o.nslots, sizeof *all);
    size_t n_all = live_slabs(&o, all);
    CHECK(n_all == NSLABS, "%zu slabs for %zu objects", n_all, o.nslots);
    uint64_t rng = seed;
    for (size_t i = 0; i < o.nslots; i++)
        if (xorshift64(&rng) % 10 < 7)
            owner_free_slot(&o, i);
    check_trigger(&o, all, n_all, false);
    check_trigger(&o, all, n_all, true);
    free(all);
    owner_destroy(&o);
    return 0;
}
