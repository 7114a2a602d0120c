/*
 * double_free: freeing an object twice aborts with "slabdefrag: cache '<name>':
 * slab_free(<ptr>): ... double free" on stderr.
 *
 * Guaranteed cases, each in a forked child that must die with the message:
 *  1. free(a); free(a) by the same thread, a in the thread's active slab;
 *  2. the same in a ctor cache (the free-list link lives outside the object);
 *  3. a in a full slab that is not the thread's active slab;
 *  4. a freed by another thread (a remote free), then freed again;
 *  5. the slab's in-use count would go negative: a thread allocates a, b, c and
 *     exits; the main thread frees a, b, c (the slab is now empty and kept as
 *     reserve) and then a again;
 *  6. a whole slab freed, then its first object again (large objects);
 *  7. free(a); free(a) in a SLAB_RANDOM_ORDER cache;
 *  8. both frees from another thread (the remote-free stack's top);
 *  9. a debug cache (F+U), the first free here or from another thread: the
 *     report says "double free (object already free)" and names where the
 *     object was last allocated and freed.
 * Cases 1, 2, 4, 7 and 8 need no debug mode: SLUB's cheap checks (the object
 * is already the head of the freelist it would join, or the top of its
 * slab's remote-free stack).  The parent's caches validate afterwards.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "slabtest.h"

struct bad_free {
    struct slab_cache *s;
    void *obj;
    int twice;         /* free obj (then again) inside the child */
    int first_remote;  /* that first free from another thread */
    int second_remote; /* the second free from another thread */
};

static void free_maybe_remote(struct bad_free *b, int remote)
{
    if (remote)
        slab_in_thread(b->s, &b->obj, 1, false);
    else
        slab_free(b->s, b->obj);
}

static void do_free(void *arg)
{
    struct bad_free *b = arg;
    if (b->twice)
        free_maybe_remote(b, b->first_remote);
    free_maybe_remote(b, b->second_remote);
}

/* The child frees obj (twice, or once when the parent already did) and must
 * die naming the cache, the object and `what`, with the call sites if asked. */
static void expect_report(const char *label, struct bad_free b, const char *what, int sites)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix, "slabdefrag: cache '%s': slab_free(%p): ",
             slab_cache_name(b.s), b.obj);
    const char *needles[] = {prefix, what, sites ? "last allocated at" : NULL, "last freed at",
                             NULL};
    CHECK(expect_abort(do_free, &b, needles) == 0, "%s: double free of %p not diagnosed", label,
          b.obj);
}

static void expect_double(const char *label, struct slab_cache *s, void *obj, int twice)
{
    expect_report(label, (struct bad_free){ s, obj, twice, 0, 0 }, "double free", 0);
}

static void ctor(void *p)
{
    memset(p, 0x3c, 24);
}

int main(void)
{
    /* 1 */
    struct slab_cache *s = slab_cache_create("df-plain", 48, 0, 0, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    void *a = slab_alloc(s);
    CHECK(a != NULL, "slab_alloc");
    expect_double("1: same thread, active slab", s, a, 1);

    /* 2 */
    struct slab_cache *c = slab_cache_create("df-ctor", 24, 0, 0, ctor);
    CHECK(c != NULL, "create: %s", strerror(errno));
    void *ca = slab_alloc(c);
    CHECK(ca != NULL, "slab_alloc");
    expect_double("2: ctor cache", c, ca, 1);
    slab_free(c, ca);
    expect_double("2b: ctor cache, freed in the parent", c, ca, 0);

    /* 3: an object of a full slab that is not the active one. */
    struct slab_cache_stats st = cache_stats(s);
    size_t n = 3 * (size_t)st.objects_per_slab;
    void **objs = calloc(n, sizeof *objs);
    CHECK(objs != NULL, "calloc");
    for (size_t i = 0; i < n; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "slab_alloc");
    }
    expect_double("3: full slab", s, objs[1], 1);
    slab_free(s, objs[1]);
    expect_double("3b: full slab, freed in the parent", s, objs[1], 0);
    slab_free(s, a);
    expect_double("1b: active slab, freed in the parent", s, a, 0);

    /* 4: freed by another thread first. */
    void *r = objs[n - 1];
    slab_in_thread(s, &r, 1, false);
    expect_double("4: remote free, then again", s, r, 0);

    /* 5: the in-use count would go negative. */
    struct slab_cache *e = slab_cache_create("df-empty", 256, 0, 0, NULL);
    CHECK(e != NULL, "create: %s", strerror(errno));
    void *three[3];
    slab_in_thread(e, three, 3, true);
    for (int i = 0; i < 3; i++)
        slab_free(e, three[i]);
    st = cache_stats(e);
    CHECK(st.slabs == 1 && st.slabs_empty == 1, "the emptied slab should be kept as reserve");
    expect_double("5: in-use count would go negative", e, three[0], 0);
    expect_double("5b: in-use count would go negative", e, three[1], 0);

    /* 6: large objects, whole slab freed. */
    struct slab_cache *big = slab_cache_create("df-big", 16384, 0, 0, NULL);
    CHECK(big != NULL, "create: %s", strerror(errno));
    st = cache_stats(big);
    size_t nb = st.objects_per_slab;
    void **bobj = calloc(nb, sizeof *bobj);
    CHECK(bobj != NULL, "calloc");
    slab_in_thread(big, bobj, nb, true);
    for (size_t i = 0; i < nb; i++)
        slab_free(big, bobj[i]);
    expect_double("6: whole slab freed, then its first object", big, bobj[0], 0);

    /* 7-9 */
    struct slab_cache *rnd = slab_cache_create("df-random", 96, 0, SLAB_RANDOM_ORDER, NULL);
    struct slab_cache *dbg = slab_cache_create("df-debug", 48, 0,
                                               SLAB_CONSISTENCY | SLAB_STORE_USER, NULL);
    CHECK(rnd && dbg, "create: %s", strerror(errno));
    void *ra = slab_alloc(rnd), *pa = slab_alloc(s), *da = slab_alloc(dbg);
    CHECK(ra && pa && da, "slab_alloc");
    expect_double("7: random order", rnd, ra, 1);
    expect_report("8: remote twice", (struct bad_free){ s, pa, 1, 1, 1 }, "double free", 0);
    expect_report("9: debug", (struct bad_free){ dbg, da, 1, 0, 0 },
                  "double free (object already free)", 1);
    expect_report("9b: debug, remote then local", (struct bad_free){ dbg, da, 1, 1, 0 },
                  "double free (object already free)", 1);
    slab_free(rnd, ra);
    slab_free(s, pa);
    slab_free(dbg, da);
    CHECK(slab_cache_validate(rnd) == 0, "validate df-random");
    CHECK(slab_cache_validate(dbg) == 0, "validate df-debug");
    st = cache_stats(dbg);
    CHECK(st.allocs == st.frees, "df-debug: allocs %llu frees %llu", (unsigned long long)st.allocs,
          (unsigned long long)st.frees);
    slab_cache_destroy(rnd);
    slab_cache_destroy(dbg);

    CHECK(slab_cache_validate(s) == 0, "validate df-plain");
    CHECK(slab_cache_validate(c) == 0, "validate df-ctor");
    CHECK(slab_cache_validate(e) == 0, "validate df-empty");
    CHECK(slab_cache_validate(big) == 0, "validate df-big");
    for (size_t i = 0; i < n; i++)
        if (i != 1 && i != n - 1)
            slab_free(s, objs[i]);
    slab_cache_shrink(s);
    st = cache_stats(s);
    CHECK(st.objects_active == 0 && st.allocs == st.frees,
          "df-plain: active %llu allocs %llu frees %llu", (unsigned long long)st.objects_active,
          (unsigned long long)st.allocs, (unsigned long long)st.frees);
    slab_cache_destroy(s);
    slab_cache_destroy(c);
    slab_cache_destroy(e);
    slab_cache_destroy(big);
    free(objs);
    free(bobj);
    printf("double_free: ok\n");
    return 0;
}
