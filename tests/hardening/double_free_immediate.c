/*
 * double_free_immediate: free(a); free(a) right away is caught in every build,
 * without debug mode, by SLUB's cheap checks (the object is already the head of
 * the freelist it would join, or the top of its slab's remote-free stack): the
 * child dies with "slabdefrag: cache '<name>': slab_free(<ptr>): double free".
 *
 * Cases (forked children):
 *  1. plain cache, object of the thread's active slab;
 *  2. ctor cache (its free pointer lives outside the object);
 *  3. SLAB_RANDOM_ORDER cache;
 *  4. the first free from another thread (remote-free stack), the second here;
 *  5. both frees from another thread;
 *  6. debug cache (F): "double free (object already free)", and with U the
 *     report names where the object was allocated and freed.
 * tests/slab/double_free.c covers more slab states (full, listed, empty slabs).
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "hardtest.h"

struct df {
    struct slab_cache *s;
    void *obj;
    int first_remote, second_remote;
};

static void *free_thread(void *arg)
{
    struct df *d = arg;
    slab_free(d->s, d->obj);
    return NULL;
}

static void free_maybe_remote(struct df *d, int remote)
{
    if (!remote) {
        slab_free(d->s, d->obj);
        return;
    }
    pthread_t t;
    CHECK(pthread_create(&t, NULL, free_thread, d) == 0, "pthread_create");
    pthread_join(t, NULL);
}

static void do_double(void *arg)
{
    struct df *d = arg;
    free_maybe_remote(d, d->first_remote);
    free_maybe_remote(d, d->second_remote);
}

static void expect_double(const char *label, struct slab_cache *s, int r1, int r2,
                          const char *what, int sites)
{
    void *obj = slab_alloc(s);
    CHECK(obj != NULL, "%s: slab_alloc: %s", label, strerror(errno));
    struct df d = {s, obj, r1, r2};
    const char *needles[] = {ptr_prefix(slab_cache_name(s), "slab_free", obj), what,
                             sites ? "last allocated at" : NULL, "last freed at", NULL};
    CHECK(expect_die(label, do_double, &d, needles) == 0, "%s: double free not caught", label);
    slab_free(s, obj);
}

static void ctor(void *p)
{
    memset(p, 1, 40);
}

int main(void)
{
    struct slab_cache *plain = slab_cache_create("dfi-plain", 48, 0, 0, NULL);
    struct slab_cache *ct = slab_cache_create("dfi-ctor", 40, 0, 0, ctor);
    struct slab_cache *rnd = slab_cache_create("dfi-random", 96, 0, SLAB_RANDOM_ORDER, NULL);
    struct slab_cache *dbg = slab_cache_create("dfi-debug", 48, 0,
                                               SLAB_CONSISTENCY | SLAB_STORE_USER, NULL);
    CHECK(plain && ct && rnd && dbg, "slab_cache_create: %s", strerror(errno));

    expect_double("1: plain", plain, 0, 0, "double free", 0);
    expect_double("2: ctor", ct, 0, 0, "double free", 0);
    expect_double("3: random order", rnd, 0, 0, "double free", 0);
    expect_double("4: remote then local", plain, 1, 0, "double free", 0);
    expect_double("5: remote twice", plain, 1, 1, "double free", 0);
    expect_double("6: debug", dbg, 0, 0, "double free (object already free)", 1);
    expect_double("6b: debug, remote then local", dbg, 1, 0, "double free (object already free)",
                  1);

    struct slab_cache *all[] = {plain, ct, rnd, dbg};
    for (int i = 0; i < 4; i++) {
        CHECK(slab_cache_validate(all[i]) == 0, "validate %s", slab_cache_name(all[i]));
        struct slab_cache_stats st;
        CHECK(slab_cache_get_stats(all[i], &st) == 0 && st.allocs == st.frees,
              "%s: allocs %llu frees %llu", slab_cache_name(all[i]),
              (unsigned long long)st.allocs, (unsigned long long)st.frees);
        slab_cache_destroy(all[i]);
    }
    printf("double_free_immediate: ok\n");
    return 0;
}
