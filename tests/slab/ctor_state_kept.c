/*
 * ctor_state_kept: objects of a cache with a constructor keep their state across
 * slab_free() and a later slab_alloc() while their slab lives (type-stable
 * memory): the allocator never writes inside such an object, not even its first
 * bytes (its free-list link lives outside the object), whether the object was
 * freed by the allocating thread or by another thread.
 *
 * For several object sizes (8 B is the interesting one: no room for a link),
 * allocate exactly four slabs' worth, keep one object per slab allocated so no slab can
 * become empty and be released, overwrite every byte of every other object with
 * a pattern derived from its address, free them (half here, half from a second
 * thread), allocate them all back and check every byte of every object still
 * holds its pattern.  With no never-used object left in those slabs, every
 * address handed back must be one we freed, and the ctor must not run again.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "slabtest.h"

static _Atomic unsigned long ctor_calls;

static void ctor(void *p)
{
    /* The ctor does not know the size; it only counts.  The state we check is
     * written by the test after allocation. */
    (void)p;
    ctor_calls++;
}

static unsigned char pattern(uintptr_t addr, size_t k)
{
    uint64_t x = (uint64_t)addr * 0x9e3779b97f4a7c15ull + k * 0x2545f4914f6cdd1dull;
    x ^= x >> 29;
    return (unsigned char)(x | 1); /* never 0: a zeroed byte is always caught */
}

static void run(size_t size)
{
    char name[32];
    snprintf(name, sizeof name, "ctor-state-%zu", size);
    ctor_calls = 0;
    struct slab_cache *s = slab_cache_create(name, size, 0, 0, ctor);
    CHECK(s != NULL, "create: %s", strerror(errno));
    struct slab_cache_stats st = cache_stats(s);
    size_t per = st.objects_per_slab;
    size_t n = 4 * per; /* whole slabs: no never-used object is left to hand out */
    void **objs = calloc(n, sizeof *objs);
    void **freed = calloc(n, sizeof *freed);
    CHECK(objs && freed, "calloc");
    for (size_t i = 0; i < n; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "slab_alloc: %s", strerror(errno));
    }
    CHECK(ctor_calls >= n, "%lu ctor calls for %zu objects", (unsigned long)ctor_calls, n);

    /* Keep the first object seen in each slab allocated (pins the slab). */
    uintptr_t *pinned_slabs = calloc(n, sizeof *pinned_slabs);
    size_t npinned = 0, nfreed = 0;
    CHECK(pinned_slabs != NULL, "calloc");
    for (size_t i = 0; i < n; i++) {
        uintptr_t b = slab_base(objs[i], st.slab_size);
        int seen = 0;
        for (size_t k = 0; k < npinned; k++)
            if (pinned_slabs[k] == b)
                seen = 1;
        if (!seen) {
            pinned_slabs[npinned++] = b;
            continue; /* objs[i] stays allocated */
        }
        unsigned char *p = objs[i];
        for (size_t k = 0; k < size; k++)
            p[k] = pattern((uintptr_t)p, k);
        freed[nfreed++] = objs[i];
        objs[i] = NULL;
    }
    CHECK(nfreed > n / 2, "only %zu of %zu objects to free: slabs not slab_size aligned?",
          nfreed, n);

    /* Free half locally, half from another thread. */
    size_t half = nfreed / 2;
    for (size_t i = 0; i < half; i++)
        slab_free(s, freed[i]);
    slab_in_thread(s, freed + half, nfreed - half, false);

    /* Allocate them back: each must be one of ours, pattern intact. */
    qsort(freed, nfreed, sizeof *freed, slabtest_cmp_uptr);
    unsigned long calls_before = ctor_calls;
    size_t reused = 0;
    void **again = calloc(nfreed, sizeof *again);
    CHECK(again != NULL, "calloc");
    for (size_t i = 0; i < nfreed; i++) {
        unsigned char *p = slab_alloc(s);
        CHECK(p != NULL, "slab_alloc: %s", strerror(errno));
        again[i] = p;
        if (!bsearch(&p, freed, nfreed, sizeof *freed, slabtest_cmp_uptr))
            continue; /* from a new slab: nothing to compare */
        reused++;
        for (size_t k = 0; k < size; k++)
            CHECK(p[k] == pattern((uintptr_t)p, k),
                  "size %zu: object %p byte %zu changed across free/alloc (%#x, want %#x): "
                  "a ctor cache's objects must keep their state",
                  size, (void *)p, k, p[k], pattern((uintptr_t)p, k));
    }
    CHECK(reused == nfreed,
          "size %zu: only %zu of %zu freed objects were handed out again while their slabs "
          "had free objects (%lu extra ctor calls)",
          size, reused, nfreed, (unsigned long)(ctor_calls - calls_before));
    CHECK(ctor_calls == calls_before, "size %zu: %lu ctor calls while reusing live slabs", size,
          (unsigned long)(ctor_calls - calls_before));

    for (size_t i = 0; i < nfreed; i++)
        slab_free(s, again[i]);
    for (size_t i = 0; i < n; i++)
        slab_free(s, objs[i]); /* the pinning objects (NULL for the rest: a no-op) */
    CHECK(slab_cache_validate(s) == 0, "validate failed");
    slab_cache_shrink(s);
    st = cache_stats(s);
    CHECK(st.objects_active == 0 && st.slabs == 0, "after freeing all: active %llu slabs %llu",
          (unsigned long long)st.objects_active, (unsigned long long)st.slabs);
    slab_cache_destroy(s);
    free(again);
    free(pinned_slabs);
    free(freed);
    free(objs);
}

int main(void)
{
    static const size_t sizes[] = {8, 16, 24, 64, 200, 1024, 4096, 32768};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        run(sizes[i]);
    printf("ctor_state_kept: ok\n");
    return 0;
}
