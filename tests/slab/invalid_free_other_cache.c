/*
 * invalid_free_other_cache: freeing an object to a cache it does not belong to
 * aborts with "slabdefrag: cache '<given>': slab_free(<ptr>): ... belongs to
 * cache '<owner>'" on stderr.
 *
 * Caches of the same size (where the geometry cannot tell them apart), of a
 * different size (a different slab size), with and without a ctor, a debug
 * cache (consistency checks and call sites) in both directions, and an object
 * from a slab that is a thread's active slab as well as one from a full slab:
 * each wrong free of every ordered pair runs in a forked child that must die
 * with that message.  The right frees afterwards work, every cache validates
 * and its counters show exactly the right frees.
 */
#define _GNU_SOURCE
#include "slabtest.h"

struct bad_free {
    struct slab_cache *to;
    void *obj;
};

static void do_free(void *arg)
{
    struct bad_free *b = arg;
    slab_free(b->to, b->obj);
}

static void expect_wrong_cache(struct slab_cache *to, struct slab_cache *owner, void *obj)
{
    char prefix[160], what[80];
    snprintf(prefix, sizeof prefix, "slabdefrag: cache '%s': slab_free(%p): ",
             slab_cache_name(to), obj);
    snprintf(what, sizeof what, "belongs to cache '%s'", slab_cache_name(owner));
    const char *needles[] = {prefix, what, NULL};
    struct bad_free b = {to, obj};
    CHECK(expect_abort(do_free, &b, needles) == 0,
          "freeing %p of cache '%s' to cache '%s' was not diagnosed", obj,
          slab_cache_name(owner), slab_cache_name(to));
}

static void ctor(void *p)
{
    memset(p, 0x11, 32);
}

int main(void)
{
    struct slab_cache *a = slab_cache_create("cache-a", 128, 0, 0, NULL);
    struct slab_cache *b = slab_cache_create("cache-b", 128, 0, 0, NULL);
    struct slab_cache *c = slab_cache_create("cache-c-small", 32, 0, 0, ctor);
    struct slab_cache *d = slab_cache_create("cache-d-big", 8192, 0, SLAB_HWCACHE_ALIGN, NULL);
    struct slab_cache *e = slab_cache_create("cache-e-debug", 128, 0,
                                             SLAB_CONSISTENCY | SLAB_STORE_USER, NULL);
    CHECK(a && b && c && d && e, "create: %s", strerror(errno));
    struct slab_cache *all[] = {a, b, c, d, e};
    enum { N = 5, PER = 40 };
    void *objs[N][PER];
    for (int k = 0; k < N; k++)
        for (int i = 0; i < PER; i++) {
            objs[k][i] = slab_alloc(all[k]);
            CHECK(objs[k][i] != NULL, "slab_alloc: %s", strerror(errno));
        }
    for (int to = 0; to < N; to++)
        for (int owner = 0; owner < N; owner++) {
            if (to == owner)
                continue;
            /* The first object (an older, likely full slab) and the newest one
             * (this thread's active slab). */
            expect_wrong_cache(all[to], all[owner], objs[owner][0]);
            expect_wrong_cache(all[to], all[owner], objs[owner][PER - 1]);
        }
    for (int k = 0; k < N; k++) {
        for (int i = 0; i < PER; i++)
            slab_free(all[k], objs[k][i]);
        CHECK(slab_cache_validate(all[k]) == 0, "validate %s failed", slab_cache_name(all[k]));
        slab_cache_shrink(all[k]);
        struct slab_cache_stats st = cache_stats(all[k]);
        CHECK(st.allocs == PER && st.frees == PER && st.objects_active == 0,
              "%s: allocs %llu frees %llu active %llu", st.name, (unsigned long long)st.allocs,
              (unsigned long long)st.frees, (unsigned long long)st.objects_active);
        slab_cache_destroy(all[k]);
    }
    printf("invalid_free_other_cache: ok\n");
    return 0;
}
