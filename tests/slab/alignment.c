/*
 * alignment: every object starts on the alignment its cache promises, and the
 * objects of a cache never overlap.
 *
 * For many sizes (1 B .. 32 KiB) crossed with every legal alignment (0 = pointer
 * alignment, 1 .. 4096) and with SLAB_HWCACHE_ALIGN, allocate objects spanning
 * several slabs, check each address against the required alignment, fill every
 * object completely with a byte pattern of its own and verify all patterns
 * afterwards (an overlap between two objects would corrupt one of them), and
 * check the sorted addresses are at least `size` apart.
 */
#define _GNU_SOURCE
#include "slabtest.h"

static void one_cache(size_t size, size_t align, unsigned flags)
{
    char name[32];
    snprintf(name, sizeof name, "al-%zu-%zu-%x", size, align, flags);
    struct slab_cache *s = slab_cache_create(name, size, align, flags, NULL);
    CHECK(s != NULL, "create(size %zu, align %zu, flags %#x): %s", size, align, flags,
          strerror(errno));
    CHECK(slab_cache_object_size(s) == size, "object size %zu, want %zu",
          slab_cache_object_size(s), size);
    CHECK(strcmp(slab_cache_name(s), name) == 0, "name '%s', want '%s'", slab_cache_name(s),
          name);

    size_t want = align ? align : sizeof(void *);
    if ((flags & SLAB_HWCACHE_ALIGN) && want < 64)
        want = 64;

    struct slab_cache_stats st = cache_stats(s);
    CHECK(st.objects_per_slab > 0 || st.slab_size == 0, "bogus stats");
    /* Enough objects for a bit more than two slabs, bounded for the tiny sizes. */
    size_t n = 2 * (st.objects_per_slab ? st.objects_per_slab : 8) + 3;
    if (n > 1500)
        n = 1500;
    if (n < 20)
        n = 20;
    uintptr_t *objs = malloc(n * sizeof *objs);
    CHECK(objs != NULL, "malloc");
    for (size_t i = 0; i < n; i++) {
        void *p = slab_alloc(s);
        CHECK(p != NULL, "%s: slab_alloc #%zu: %s", name, i, strerror(errno));
        CHECK(((uintptr_t)p & (want - 1)) == 0,
              "%s: object %p is not %zu-byte aligned (size %zu align %zu flags %#x)", name, p,
              want, size, align, flags);
        memset(p, (int)(i * 7 + 1) & 0xff, size);
        objs[i] = (uintptr_t)p;
    }
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)objs[i];
        unsigned char b = (unsigned char)((i * 7 + 1) & 0xff);
        for (size_t k = 0; k < size; k++)
            CHECK(p[k] == b, "%s: object %zu (%p) byte %zu is %#x, want %#x: objects overlap",
                  name, i, (void *)p, k, p[k], b);
    }
    uintptr_t *sorted = malloc(n * sizeof *sorted);
    CHECK(sorted != NULL, "malloc");
    memcpy(sorted, objs, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, slabtest_cmp_uptr);
    for (size_t i = 1; i < n; i++)
        CHECK(sorted[i] - sorted[i - 1] >= size,
              "%s: objects %#lx and %#lx are %lu bytes apart, object size %zu", name,
              (unsigned long)sorted[i - 1], (unsigned long)sorted[i],
              (unsigned long)(sorted[i] - sorted[i - 1]), size);
    for (size_t i = 0; i < n; i++)
        slab_free(s, (void *)objs[i]);
    CHECK(slab_cache_validate(s) == 0, "%s: validate failed", name);
    slab_cache_destroy(s);
    free(sorted);
    free(objs);
}

int main(void)
{
    static const size_t sizes[] = {1,   2,   3,    7,    8,    9,    15,   16,   17,    24,   31,
                                   33,  48,  63,   64,   65,   96,   100,  127,  128,   129,  200,
                                   255, 256, 257,  511,  512,  1000, 1024, 1025, 2048,  3000, 4095,
                                   4096, 4097, 5000, 8192, 10000, 16384, 20000, 32767, 32768};
    static const size_t aligns[] = {0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (size_t j = 0; j < sizeof aligns / sizeof aligns[0]; j++) {
            /* The big sizes with every alignment would take long; sample them. */
            if (sizes[i] > 4096 && aligns[j] != 0 && aligns[j] != 8 && aligns[j] != 64 &&
                aligns[j] != 4096)
                continue;
            one_cache(sizes[i], aligns[j], 0);
            if (aligns[j] <= 128)
                one_cache(sizes[i], aligns[j], SLAB_HWCACHE_ALIGN);
        }
    }
    printf("alignment: ok\n");
    return 0;
}
