/*
 * slab_size: each cache's slab size follows the rule "the smallest power of two
 * from 4 KiB to 256 KiB that holds at least 8 objects with at most 1/8 of the
 * slab wasted (slab header + padding + tail); 256 KiB when none does", and the
 * geometry reported by slab_cache_get_stats() is the real one.
 *
 * For many sizes, alignments and with/without ctor, fill two slabs and measure
 * from the object addresses: the slab is aligned to slab_size and holds exactly
 * objects_per_slab objects at a constant stride, all inside the slab; the stride
 * is no larger than the object rounded up to its alignment (plus one pointer
 * for a ctor cache, whose free-list link lives outside the object); the header
 * before the first object is small.  With the measured header and stride, the
 * rule above must give exactly the reported slab_size and objects_per_slab.
 */
#define _GNU_SOURCE
#include "slabtest.h"

static size_t round_up(size_t x, size_t a)
{
    return (x + a - 1) / a * a;
}

static int cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static void ctor(void *p)
{
    (void)p;
}

static void check(size_t size, size_t align, unsigned flags, int with_ctor)
{
    char name[32];
    snprintf(name, sizeof name, "ss-%zu-%zu-%x%s", size, align, flags, with_ctor ? "-c" : "");
    struct slab_cache *s = slab_cache_create(name, size, align, flags, with_ctor ? ctor : NULL);
    CHECK(s != NULL, "create %s: %s", name, strerror(errno));
    struct slab_cache_stats st = cache_stats(s);
    size_t S = st.slab_size, per = st.objects_per_slab;
    CHECK(S >= 4096 && S <= 256 * 1024 && (S & (S - 1)) == 0,
          "%s: slab_size %zu is not a power of two in 4 KiB .. 256 KiB", name, S);
    CHECK(per >= 1 && per * size <= S, "%s: %zu objects of %zu B in a %zu B slab", name, per,
          size, S);

    size_t n = 2 * per;
    uintptr_t *objs = malloc(n * sizeof *objs);
    CHECK(objs != NULL, "malloc");
    for (size_t i = 0; i < n; i++) {
        void *p = slab_alloc(s);
        CHECK(p != NULL, "slab_alloc: %s", strerror(errno));
        objs[i] = (uintptr_t)p;
    }
    qsort(objs, n, sizeof *objs, cmp_uptr);
    size_t eff_align = align ? align : sizeof(void *);
    if ((flags & SLAB_HWCACHE_ALIGN) && eff_align < 64)
        eff_align = 64;
    size_t max_stride = with_ctor ? round_up(round_up(size, sizeof(void *)) + sizeof(void *),
                                             eff_align)
                                  : round_up(size < sizeof(void *) ? sizeof(void *) : size,
                                             eff_align);
    size_t full_slabs = 0, first = 0, stride = 0;
    for (size_t i = 0; i < n;) {
        uintptr_t base = slab_base((void *)objs[i], S);
        size_t j = i;
        while (j < n && slab_base((void *)objs[j], S) == base)
            j++;
        size_t cnt = j - i;
        CHECK(cnt <= per, "%s: %zu objects in one %zu B slab, objects_per_slab is %zu", name,
              cnt, S, per);
        CHECK(objs[j - 1] - base + size <= S, "%s: object at offset %lu overruns the slab",
              name, (unsigned long)(objs[j - 1] - base));
        if (cnt == per) {
            size_t f = objs[i] - base;
            size_t d = per > 1 ? objs[i + 1] - objs[i] : max_stride;
            for (size_t k = i + 1; k < j; k++)
                CHECK(objs[k] - objs[k - 1] == d, "%s: uneven stride in a slab", name);
            if (full_slabs++) {
                CHECK(f == first && d == stride, "%s: slabs laid out differently", name);
            }
            first = f;
            stride = d;
        }
        i = j;
    }
    CHECK(full_slabs >= 1, "%s: allocating 2 * objects_per_slab filled no slab completely",
          name);
    CHECK(stride >= size, "%s: stride %zu < size %zu", name, stride, size);
    CHECK(stride <= max_stride, "%s: stride %zu, more than the %zu needed", name, stride,
          max_stride);
    size_t max_header = eff_align > 256 ? eff_align : 256;
    CHECK(first <= max_header, "%s: %zu bytes before the first object", name, first);

    /* The rule, with the measured header and stride. */
    size_t want_S = 0, want_per = 0;
    for (size_t T = 4096; T <= 256 * 1024; T *= 2) {
        if (T <= first)
            continue;
        size_t k = (T - first) / stride;
        if (k >= 8 && (T - k * stride) * 8 <= T) {
            want_S = T;
            want_per = k;
            break;
        }
    }
    if (!want_S) {
        want_S = 256 * 1024;
        want_per = (want_S - first) / stride;
    }
    CHECK(S == want_S && per == want_per,
          "%s: slab_size %zu with %zu objects; the rule gives %zu with %zu (header %zu, stride "
          "%zu)",
          name, S, per, want_S, want_per, first, stride);
    for (size_t i = 0; i < n; i++)
        slab_free(s, (void *)objs[i]);
    slab_cache_destroy(s);
    free(objs);
}

int main(void)
{
    static const size_t sizes[] = {1,    8,    16,   24,   40,   64,    100,   128,   200,
                                   256,  500,  512,  1000, 1024, 2000,  2048,  3000,  4096,
                                   5000, 8192, 9000, 16384, 20000, 30000, 32768};
    static const size_t aligns[] = {0, 16, 64, 512, 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (size_t j = 0; j < sizeof aligns / sizeof aligns[0]; j++) {
            check(sizes[i], aligns[j], 0, 0);
            check(sizes[i], aligns[j], 0, 1);
        }
        check(sizes[i], 0, SLAB_HWCACHE_ALIGN, 0);
    }
    printf("slab_size: ok\n");
    return 0;
}
