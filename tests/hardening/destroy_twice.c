/*
 * destroy_twice: slab_cache_destroy on a cache that was already destroyed is
 * caught before anything of the freed cache is read: the child aborts with
 * "slabdefrag: cache '<name>': slab_cache_destroy(<ptr>): cache already
 * destroyed".  A pointer that never was a cache aborts with "not a live cache".
 * Destroying other caches in between does not lose the name (the caches'
 * memory may be reused, so they are made before, at other addresses); a live
 * cache next to the dead one keeps working.
 */
#include "hardtest.h"

static void destroy_twice(void *arg)
{
    struct slab_cache *other[5] = { NULL };
    for (int i = 0; arg && i < 5; i++) /* made before s: other addresses */
        CHECK((other[i] = slab_cache_create("in-between", 32, 0, 0, NULL)) != NULL, "create");
    struct slab_cache *s = slab_cache_create("twice-destroyed", 64, 0, 0, NULL);
    CHECK(s != NULL, "create");
    void *p = slab_alloc(s);
    slab_free(s, p);
    slab_cache_destroy(s);
    for (int i = 0; arg && i < 5; i++) /* other caches go in between */
        slab_cache_destroy(other[i]);
    slab_cache_destroy(s);
}

static void destroy_bogus(void *arg)
{
    static char not_a_cache[512];
    (void)arg;
    slab_cache_destroy((struct slab_cache *)not_a_cache);
}

int main(void)
{
    const char *twice[] = { "slabdefrag: cache 'twice-destroyed': slab_cache_destroy(",
                            "cache already destroyed", NULL };
    CHECK(expect_abort(destroy_twice, NULL, twice) == 0, "second destroy not caught");
    CHECK(expect_abort(destroy_twice, (void *)1, twice) == 0,
          "second destroy not caught after other destroys");
    const char *bogus[] = { "slab_cache_destroy(", "not a live cache", NULL };
    CHECK(expect_abort(destroy_bogus, NULL, bogus) == 0, "bogus destroy not caught");

    /* The registry does not disturb normal use. */
    struct slab_cache *a = slab_cache_create("live-a", 48, 0, 0, NULL);
    struct slab_cache *b = slab_cache_create("live-b", 48, 0, 0, NULL);
    CHECK(a && b, "create");
    slab_cache_destroy(a);
    void *p = slab_alloc(b);
    CHECK(p != NULL, "alloc from the surviving cache");
    slab_free(b, p);
    CHECK(slab_cache_find("live-a") == NULL && slab_cache_find("live-b") == b, "find");
    slab_cache_destroy(b);
    return 0;
}
