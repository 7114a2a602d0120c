/*
 * random_order: SLAB_RANDOM_ORDER (as CONFIG_SLAB_FREELIST_RANDOM) makes a new
 * slab hand out its objects in a shuffled order.
 * Checks: the first objects_per_slab allocations of a fresh cache all come from
 * one slab, are distinct and cover every slot (a permutation); the order is
 * neither ascending nor descending; a second slab's order differs from the
 * first's; the cache is consistent and all objects free back.  Without the
 * flag the same cache gives slots in address order (the contrast).
 * False failure: two equal shuffles of >= 15 objects, a 1/15! event.
 */
#include "hardtest.h"

static void slab_order(struct slab_cache *s, unsigned n, size_t slab_size, unsigned *order,
                       void **objs)
{
    uintptr_t base = 0;
    size_t stride = 0;
    for (unsigned i = 0; i < n; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "slab_alloc: %s", strerror(errno));
        uintptr_t b = (uintptr_t)objs[i] & ~(uintptr_t)(slab_size - 1);
        if (i == 0)
            base = b;
        CHECK(b == base, "object %u is in another slab", i);
    }
    uintptr_t lo = (uintptr_t)objs[0];
    for (unsigned i = 1; i < n; i++)
        if ((uintptr_t)objs[i] < lo)
            lo = (uintptr_t)objs[i];
    stride = slab_cache_object_size(s);
    unsigned char seen[4096] = {0};
    for (unsigned i = 0; i < n; i++) {
        uintptr_t off = (uintptr_t)objs[i] - lo;
        CHECK(off % stride == 0, "object %u is not on a slot boundary", i);
        order[i] = (unsigned)(off / stride);
        CHECK(order[i] < n && !seen[order[i]], "slot %u out of range or handed out twice",
              order[i]);
        seen[order[i]] = 1;
    }
}

static int monotonic(const unsigned *o, unsigned n, int dir)
{
    for (unsigned i = 1; i < n; i++)
        if ((dir > 0) != (o[i] > o[i - 1]))
            return 0;
    return 1;
}

int main(void)
{
    struct slab_cache *r = slab_cache_create("rnd", 64, 0, SLAB_RANDOM_ORDER, NULL);
    struct slab_cache *p = slab_cache_create("rnd-plain", 64, 0, 0, NULL);
    CHECK(r && p, "slab_cache_create: %s", strerror(errno));
    struct slab_cache_stats st;
    CHECK(slab_cache_get_stats(r, &st) == 0, "stats");
    unsigned n = st.objects_per_slab;
    CHECK(n >= 15 && n <= 4096, "objects_per_slab %u", n);
    unsigned *o1 = calloc(n, sizeof *o1), *o2 = calloc(n, sizeof *o2), *op = calloc(n, sizeof *op);
    void **v1 = calloc(n, sizeof *v1), **v2 = calloc(n, sizeof *v2), **vp = calloc(n, sizeof *vp);
    CHECK(o1 && o2 && op && v1 && v2 && vp, "calloc");

    slab_order(r, n, st.slab_size, o1, v1);
    slab_order(r, n, st.slab_size, o2, v2);
    CHECK(!monotonic(o1, n, 1) && !monotonic(o1, n, -1), "first slab is not shuffled");
    CHECK(!monotonic(o2, n, 1) && !monotonic(o2, n, -1), "second slab is not shuffled");
    CHECK(memcmp(o1, o2, n * sizeof *o1) != 0, "two slabs were shuffled the same way");

    slab_order(p, n, st.slab_size, op, vp);
    CHECK(monotonic(op, n, 1) || monotonic(op, n, -1),
          "without SLAB_RANDOM_ORDER the slots should come in address order");

    for (unsigned i = 0; i < n; i++) {
        slab_free(r, v1[i]);
        slab_free(r, v2[i]);
        slab_free(p, vp[i]);
    }
    CHECK(slab_cache_validate(r) == 0 && slab_cache_validate(p) == 0, "validate");
    slab_cache_shrink(r);
    CHECK(slab_cache_get_stats(r, &st) == 0 && st.objects_active == 0 && st.allocs == st.frees,
          "counts after freeing everything");
    slab_cache_destroy(r);
    slab_cache_destroy(p);
    free(o1), free(o2), free(op), free(v1), free(v2), free(vp);
    printf("random_order: ok\n");
    return 0;
}
