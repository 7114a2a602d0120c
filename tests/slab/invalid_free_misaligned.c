/*
 * invalid_free_misaligned: slab_free() of a pointer inside a slab object but not
 * at its start aborts with "slabdefrag: cache '<name>': slab_free(<ptr>): ...
 * misaligned" on stderr.
 *
 * For caches of several sizes/alignments (with and without ctor), forked
 * children free obj+1, obj+8, the middle and the last byte of a live object, and
 * the last byte of the slab (inside the last object or in the slab's unused
 * tail: only the prefix naming cache and pointer is required there), and the
 * slab's base address (its header): "misaligned".  One cache has every debug
 * flag (validation comes before the debug checks).  Each child must die with
 * the message; the parent's objects and cache stay intact, alloc == free.
 */
#define _GNU_SOURCE
#include "slabtest.h"

static struct slab_cache *cache;

static void do_free(void *p)
{
    slab_free(cache, p);
}

static void expect_bad(void *p, const char *what)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix, "slabdefrag: cache '%s': slab_free(%p): ",
             slab_cache_name(cache), p);
    const char *needles[] = {prefix, what, NULL};
    CHECK(expect_abort(do_free, p, needles) == 0, "cache '%s': bad free of %p not diagnosed",
          slab_cache_name(cache), p);
}

static void ctor(void *p)
{
    *(uint64_t *)p = 0xc0ffee;
}

static void run(size_t size, size_t align, unsigned flags, slab_ctor_fn fn)
{
    char name[32];
    snprintf(name, sizeof name, "misaligned-%zu-%zu%s", size, align, fn ? "-ctor" : "");
    cache = slab_cache_create(name, size, align, flags, fn);
    CHECK(cache != NULL, "create: %s", strerror(errno));
    enum { N = 30 };
    unsigned char *objs[N];
    for (int i = 0; i < N; i++) {
        objs[i] = slab_alloc(cache);
        CHECK(objs[i] != NULL, "slab_alloc: %s", strerror(errno));
        memset(objs[i], i + 1, size);
    }
    struct slab_cache_stats st = cache_stats(cache);
    for (int i = 0; i < N; i += 7) {
        unsigned char *o = objs[i];
        expect_bad(o + 1, "misaligned");
        if (size > 8)
            expect_bad(o + 8, "misaligned");
        if (size / 2 != 0 && size / 2 != 1 && size / 2 != 8)
            expect_bad(o + size / 2, "misaligned");
        if (size - 1 > 8)
            expect_bad(o + size - 1, "misaligned");
    }
    unsigned char *end = (unsigned char *)slab_base(objs[0], st.slab_size) + st.slab_size - 1;
    expect_bad(end, "");
    expect_bad((void *)slab_base(objs[0], st.slab_size), "misaligned"); /* the slab header */
    for (int i = 0; i < N; i++) {
        for (size_t k = 0; k < size; k++)
            CHECK(objs[i][k] == (unsigned char)(i + 1), "object %d changed", i);
        slab_free(cache, objs[i]);
    }
    CHECK(slab_cache_validate(cache) == 0, "validate failed");
    st = cache_stats(cache);
    CHECK(st.allocs == st.frees, "%s: allocs %llu frees %llu", name, (unsigned long long)st.allocs,
          (unsigned long long)st.frees);
    slab_cache_destroy(cache);
}

int main(void)
{
    run(100, 0, 0, NULL);
    run(64, 64, 0, NULL);
    run(24, 0, SLAB_HWCACHE_ALIGN, NULL);
    run(200, 0, 0, ctor);
    run(16, 0, 0, ctor);
    run(3000, 0, 0, NULL);
    run(32768, 0, 0, NULL);
    run(40, 0, SLAB_CONSISTENCY | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER, NULL);
    printf("invalid_free_misaligned: ok\n");
    return 0;
}
