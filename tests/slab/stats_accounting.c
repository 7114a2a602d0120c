/*
 * stats_accounting: slab_cache_get_stats() counts exactly what happened whenever
 * no thread holds an active slab of the cache.
 *
 * 1. A new cache reports its geometry and zero counters.
 * 2. One thread allocates K objects then calls slab_cache_shrink() (which gives
 *    its active slab back): allocs == K, frees == 0, objects_active == K, the
 *    slab count is the minimum needed, objects_total == slabs * objects_per_slab,
 *    bytes_mapped == slabs * slab_size.
 * 3. Objects allocated by a thread that has exited are freed from the main
 *    thread (which holds no active slab, so every snapshot is exact): whole slabs
 *    freed become empty; at most 2 empty slabs are kept (the reserve) and the
 *    others are handed back at once (bytes_mapped falls with each); half-freed
 *    slabs are partial.  Shrink releases the reserve too.
 * 4. Same with SLAB_NO_RESERVE: no empty slab is ever kept.
 * 5. Freeing everything and shrinking leaves slabs == 0, bytes_mapped == 0, and
 *    allocs == frees == the number of operations performed.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "slabtest.h"


static void expect(struct slab_cache *s, const char *when, uint64_t allocs, uint64_t frees)
{
    struct slab_cache_stats st = cache_stats(s);
    if (st.allocs != allocs || st.frees != frees)
        print_stats(when, &st);
    CHECK(st.allocs == allocs, "%s: allocs %llu, want %llu", when,
          (unsigned long long)st.allocs, (unsigned long long)allocs);
    CHECK(st.frees == frees, "%s: frees %llu, want %llu", when, (unsigned long long)st.frees,
          (unsigned long long)frees);
    check_stats_consistent(&st);
}

/* Phase 3/4: whole slabs and half slabs freed by a thread that holds no active slab. */
static void free_pattern(unsigned flags)
{
    const char *name = flags & SLAB_NO_RESERVE ? "stats-noreserve" : "stats-reserve";
    unsigned reserve = flags & SLAB_NO_RESERVE ? 0 : 2;
    struct slab_cache *s = slab_cache_create(name, 200, 0, flags, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    struct slab_cache_stats st = cache_stats(s);
    size_t per = st.objects_per_slab, slab_size = st.slab_size;
    const size_t nslabs = 10;
    size_t n = nslabs * per;
    void **objs = calloc(n, sizeof *objs);
    CHECK(objs != NULL, "calloc");
    slab_in_thread(s, objs, n, true);
    expect(s, "after the allocating thread exited", n, 0);
    st = cache_stats(s);
    CHECK(st.slabs == nslabs, "%zu objects fill %zu slabs, but the cache has %llu", n, nslabs,
          (unsigned long long)st.slabs);
    CHECK(st.objects_active == n && st.slabs_partial == 0 && st.slabs_empty == 0,
          "all slabs should be full");

    /* Group the objects by slab. */
    qsort(objs, n, sizeof *objs, slabtest_cmp_uptr);
    for (size_t k = 0; k < nslabs; k++)
        for (size_t i = 0; i < per; i++)
            CHECK(slab_base(objs[k * per + i], slab_size) == slab_base(objs[k * per], slab_size),
                  "slab %zu does not hold objects_per_slab (%zu) objects", k, per);

    uint64_t frees = 0;
    /* Empty slabs 0..4 one by one. */
    for (size_t k = 0; k < 5; k++) {
        for (size_t i = 0; i < per; i++) {
            slab_free(s, objs[k * per + i]);
            objs[k * per + i] = NULL;
            frees++;
        }
        char when[64];
        snprintf(when, sizeof when, "%s: after emptying slab %zu", name, k);
        expect(s, when, n, frees);
        st = cache_stats(s);
        uint64_t want_empty = k + 1 < reserve ? k + 1 : reserve;
        if (st.slabs_empty != want_empty || st.slabs != nslabs - (k + 1) + want_empty)
            print_stats(when, &st);
        CHECK(st.slabs_empty == want_empty, "%s: %llu empty slabs kept, want %llu", when,
              (unsigned long long)st.slabs_empty, (unsigned long long)want_empty);
        CHECK(st.slabs == nslabs - (k + 1) + want_empty,
              "%s: %llu slabs, want %llu (empty slabs beyond the reserve go back at once)",
              when, (unsigned long long)st.slabs,
              (unsigned long long)(nslabs - (k + 1) + want_empty));
        CHECK(st.bytes_mapped == st.slabs * slab_size, "%s: bytes_mapped %llu", when,
              (unsigned long long)st.bytes_mapped);
    }
    /* Free half of the objects of slabs 5..9: they become partial. */
    for (size_t k = 5; k < nslabs; k++)
        for (size_t i = 0; i < per; i += 2) {
            slab_free(s, objs[k * per + i]);
            objs[k * per + i] = NULL;
            frees++;
        }
    expect(s, "after half-freeing 5 slabs", n, frees);
    st = cache_stats(s);
    CHECK(st.slabs_partial == 5, "%llu partial slabs, want 5",
          (unsigned long long)st.slabs_partial);
    CHECK(st.slabs_empty == reserve, "%llu empty slabs, want %u",
          (unsigned long long)st.slabs_empty, reserve);
    CHECK(st.objects_active == n - frees, "objects_active %llu, want %llu",
          (unsigned long long)st.objects_active, (unsigned long long)(n - frees));
    CHECK(slab_cache_validate(s) == 0, "validate failed");

    /* Shrink from the main thread: releases the reserve; partial slabs stay. */
    long released = slab_cache_shrink(s);
    CHECK(released >= 0, "shrink returned %ld", released);
    CHECK((size_t)released == reserve * slab_size,
          "shrink released %ld bytes, want the %u reserve slabs (%zu bytes)", released, reserve,
          reserve * slab_size);
    expect(s, "after shrink", n, frees);
    st = cache_stats(s);
    CHECK(st.slabs == 5 && st.slabs_partial == 5 && st.slabs_empty == 0,
          "after shrink: slabs %llu partial %llu empty %llu, want 5 5 0",
          (unsigned long long)st.slabs, (unsigned long long)st.slabs_partial,
          (unsigned long long)st.slabs_empty);

    for (size_t i = 0; i < n; i++)
        if (objs[i]) {
            slab_free(s, objs[i]);
            frees++;
        }
    CHECK(frees == n, "bookkeeping");
    expect(s, "after freeing all", n, n);
    st = cache_stats(s);
    CHECK(st.objects_active == 0, "objects_active %llu", (unsigned long long)st.objects_active);
    CHECK(st.slabs == reserve && st.slabs_empty == reserve,
          "after freeing all: %llu slabs (%llu empty), want the %u reserve slabs",
          (unsigned long long)st.slabs, (unsigned long long)st.slabs_empty, reserve);
    slab_cache_shrink(s);
    st = cache_stats(s);
    CHECK(st.slabs == 0 && st.bytes_mapped == 0 && st.objects_total == 0,
          "after freeing all and shrink: slabs %llu bytes_mapped %llu",
          (unsigned long long)st.slabs, (unsigned long long)st.bytes_mapped);
    CHECK(slab_cache_validate(s) == 0, "validate failed");
    slab_cache_destroy(s);
    free(objs);
}

int main(void)
{
    /* This test checks the reserve rule of immediate return: decay off. */
    slab_set_purge_delay(0);
    /* 1: a new cache. */
    struct slab_cache *s = slab_cache_create("stats-basic", 100, 0, 0, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    struct slab_cache_stats st = cache_stats(s);
    CHECK(st.name && strcmp(st.name, "stats-basic") == 0, "name '%s'",
          st.name ? st.name : "(null)");
    CHECK(st.object_size == 100, "object_size %zu", st.object_size);
    CHECK(st.slab_size >= 4096 && (st.slab_size & (st.slab_size - 1)) == 0,
          "slab_size %zu is not a power of two >= 4 KiB", st.slab_size);
    CHECK(st.objects_per_slab >= 8 && st.objects_per_slab * 100u <= st.slab_size,
          "objects_per_slab %u for slab_size %zu", st.objects_per_slab, st.slab_size);
    CHECK(st.objects_active == 0 && st.objects_total == 0 && st.slabs == 0 &&
              st.slabs_partial == 0 && st.slabs_empty == 0 && st.bytes_mapped == 0 &&
              st.allocs == 0 && st.frees == 0,
          "a new cache has non-zero counters");
    CHECK(slab_cache_get_stats(NULL, &st) == -EINVAL, "get_stats(NULL, ...) != -EINVAL");
    CHECK(slab_cache_get_stats(s, NULL) == -EINVAL, "get_stats(s, NULL) != -EINVAL");

    /* 2: one thread, then shrink makes the counters exact. */
    size_t per = st.objects_per_slab;
    size_t k = 3 * per + 5;
    void **objs = calloc(k, sizeof *objs);
    CHECK(objs != NULL, "calloc");
    for (size_t i = 0; i < k; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "slab_alloc: %s", strerror(errno));
    }
    CHECK(slab_cache_shrink(s) >= 0, "shrink failed");
    expect(s, "after K allocations and shrink", k, 0);
    st = cache_stats(s);
    CHECK(st.objects_active == k, "objects_active %llu, want %zu",
          (unsigned long long)st.objects_active, k);
    CHECK(st.slabs == (k + per - 1) / per, "%llu slabs for %zu objects (%zu per slab)",
          (unsigned long long)st.slabs, k, per);
    CHECK(st.slabs_partial == 1 && st.slabs_empty == 0, "partial %llu empty %llu, want 1 0",
          (unsigned long long)st.slabs_partial, (unsigned long long)st.slabs_empty);

    /* Free 7, allocate 3, shrink: still exact. */
    for (size_t i = 0; i < 7; i++)
        slab_free(s, objs[i]);
    for (size_t i = 0; i < 3; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "slab_alloc: %s", strerror(errno));
    }
    for (size_t i = 3; i < 7; i++)
        objs[i] = NULL;
    slab_cache_shrink(s);
    expect(s, "after 7 frees, 3 allocs and shrink", k + 3, 7);
    for (size_t i = 0; i < k; i++)
        slab_free(s, objs[i]);
    slab_cache_shrink(s);
    expect(s, "after freeing everything and shrink", k + 3, k + 3);
    st = cache_stats(s);
    CHECK(st.slabs == 0 && st.bytes_mapped == 0, "freed-everything cache keeps %llu slabs",
          (unsigned long long)st.slabs);
    CHECK(slab_cache_validate(s) == 0, "validate failed");
    slab_cache_destroy(s);
    free(objs);

    /* 3, 4: frees from a thread with no active slab; the empty-slab reserve. */
    free_pattern(0);
    free_pattern(SLAB_NO_RESERVE);
    printf("stats_accounting: ok\n");
    return 0;
}
