/*
 * wrong_cache: freeing an object of cache A to cache B aborts with
 * "slabdefrag: cache 'B': slab_free(<ptr>): belongs to cache 'A'".
 * Cases (forked children): same object size (same slab size), different sizes
 * (different slab sizes), a debug cache's object to a plain cache and the
 * reverse, a ctor cache's object to a plain cache.  Afterwards both caches are
 * intact and the object can still be freed to its own cache.
 */
#include "hardtest.h"

struct wrong {
    struct slab_cache *to;
    void *p;
};

static void do_free(void *arg)
{
    struct wrong *w = arg;
    slab_free(w->to, w->p);
}

static void expect_wrong(struct slab_cache *from, struct slab_cache *to)
{
    char label[96], what[64];
    snprintf(label, sizeof label, "%s -> %s", slab_cache_name(from), slab_cache_name(to));
    snprintf(what, sizeof what, "belongs to cache '%s'", slab_cache_name(from));
    void *p = slab_alloc(from);
    CHECK(p != NULL, "%s: slab_alloc: %s", label, strerror(errno));
    struct wrong w = {to, p};
    const char *needles[] = {ptr_prefix(slab_cache_name(to), "slab_free", p), what, NULL};
    CHECK(expect_die(label, do_free, &w, needles) == 0, "%s: free to the wrong cache not caught",
          label);
    slab_free(from, p);
}

static void ctor(void *p)
{
    memset(p, 0, 64);
}

int main(void)
{
    struct slab_cache *a = slab_cache_create("wc-a", 64, 0, 0, NULL);
    struct slab_cache *b = slab_cache_create("wc-b", 64, 0, 0, NULL);
    struct slab_cache *big = slab_cache_create("wc-big", 2048, 0, 0, NULL);
    struct slab_cache *dbg = slab_cache_create("wc-debug", 64, 0,
                                               SLAB_CONSISTENCY | SLAB_STORE_USER, NULL);
    struct slab_cache *ct = slab_cache_create("wc-ctor", 64, 0, 0, ctor);
    CHECK(a && b && big && dbg && ct, "slab_cache_create: %s", strerror(errno));

    expect_wrong(a, b);
    expect_wrong(b, a);
    expect_wrong(big, a);
    expect_wrong(a, big);
    expect_wrong(dbg, a);
    expect_wrong(a, dbg);
    expect_wrong(ct, b);

    struct slab_cache *all[] = {a, b, big, dbg, ct};
    for (int i = 0; i < 5; i++) {
        struct slab_cache_stats st;
        CHECK(slab_cache_validate(all[i]) == 0, "validate %s", slab_cache_name(all[i]));
        CHECK(slab_cache_get_stats(all[i], &st) == 0 && st.allocs == st.frees, "%s: counts",
              slab_cache_name(all[i]));
        slab_cache_destroy(all[i]);
    }
    printf("wrong_cache: ok\n");
    return 0;
}
