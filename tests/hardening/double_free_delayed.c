/*
 * double_free_delayed: free(a); free(b); free(a) — a delayed double free — is
 * always caught in a debug cache (any debug flag gives each object a state word):
 * "slabdefrag: cache '<name>': slab_free(<ptr>): double free (object already
 * free)", and with SLAB_STORE_USER "last allocated at <site>, last freed at
 * <site>" naming the first free.  Without debug mode the cheap checks may miss
 * it (a is no longer the freelist head), so this is a debug-mode test; the same
 * cache through SLABDEFRAG_DEBUG is in debug_env.c.
 *
 * Cases (forked children):
 *  1. F|U: free a, free b, free a; the sites are the calls in alloc_one() and
 *     free_one() (hardtest.h);
 *  2. F only: the same is caught (no site line needed);
 *  3. long delay: hundreds of objects allocated (a's slab is no longer the
 *     active one), a freed, they are freed, b freed, then a again;
 *  4. a freed by another thread, b freed here, then a again here;
 *  5. Z, P or U alone also catch it (each adds the state word).
 */
#include "hardtest.h"

struct df {
    struct slab_cache *s;
    void *a, *b;
    int churn;      /* objects allocated before, freed between the frees */
    int a_remote;   /* first free of a from another thread */
};

static void do_delayed(void *arg)
{
    struct df *d = arg;
    /* Long delay: fill further slabs first, so that a's slab is no longer the
     * active one; nothing is allocated after a is freed, so a is never reused. */
    void **v = calloc((size_t)d->churn + 1, sizeof *v);
    CHECK(v != NULL, "calloc");
    for (int i = 0; i < d->churn; i++)
        CHECK((v[i] = slab_alloc(d->s)) != NULL, "slab_alloc");
    if (d->a_remote)
        free_on_thread(d->s, d->a);
    else
        free_one(d->s, d->a);
    for (int i = 0; i < d->churn; i++)
        slab_free(d->s, v[i]);
    free_one(d->s, d->b);
    free(v);
    free_one(d->s, d->a);
}

static void expect_delayed(const char *label, struct slab_cache *s, int churn, int a_remote,
                           int sites)
{
    /* keep stays allocated: a's slab never empties, so it is never handed back
     * to the OS (a double free into a released slab is reported as "not a slab
     * object", which is still an abort but not this test's message). */
    void *keep = slab_alloc(s);
    void *a = alloc_one(s), *b = alloc_one(s);
    CHECK(keep && a && b, "%s: slab_alloc: %s", label, strerror(errno));
    struct df d = {s, a, b, churn, a_remote};
    const char *needles[] = {ptr_prefix(slab_cache_name(s), "slab_free", a),
                             "double free (object already free)",
                             sites ? "last allocated at" : NULL, "last freed at", NULL};
    CHECK(expect_die(label, do_delayed, &d, needles) == 0, "%s: delayed double free not caught",
          label);
    if (sites) {
        uintptr_t as = report_site(child_stderr, 0), fs = report_site(child_stderr, 1);
        CHECK(site_in(as, (void (*)(void))alloc_one), "%s: alloc site %#lx not in alloc_one",
              label, (unsigned long)as);
        CHECK(site_in(fs, (void (*)(void))free_one), "%s: free site %#lx not in free_one",
              label, (unsigned long)fs);
    }
    slab_free(s, a);
    slab_free(s, b);
    slab_free(s, keep);
    CHECK(slab_cache_validate(s) == 0, "%s: validate", label);
}

int main(void)
{
    struct slab_cache *fu = slab_cache_create("dfd-FU", 64, 0, SLAB_CONSISTENCY | SLAB_STORE_USER,
                                              NULL);
    struct slab_cache *f = slab_cache_create("dfd-F", 64, 0, SLAB_CONSISTENCY, NULL);
    struct slab_cache *z = slab_cache_create("dfd-Z", 24, 0, SLAB_RED_ZONE, NULL);
    struct slab_cache *p = slab_cache_create("dfd-P", 24, 0, SLAB_POISON, NULL);
    struct slab_cache *u = slab_cache_create("dfd-U", 24, 0, SLAB_STORE_USER, NULL);
    CHECK(fu && f && z && p && u, "slab_cache_create: %s", strerror(errno));

    expect_delayed("1: F|U", fu, 0, 0, 1);
    expect_delayed("2: F", f, 0, 0, 0);
    expect_delayed("3: F|U, long delay", fu, 500, 0, 1);
    expect_delayed("4: F|U, first free remote", fu, 0, 1, 1);
    expect_delayed("5: Z", z, 0, 0, 0);
    expect_delayed("5: P", p, 0, 0, 0);
    expect_delayed("5: U", u, 0, 0, 1);
    expect_delayed("5: U, long delay", u, 300, 0, 1);

    slab_cache_destroy(fu);
    slab_cache_destroy(f);
    slab_cache_destroy(z);
    slab_cache_destroy(p);
    slab_cache_destroy(u);
    printf("double_free_delayed: ok\n");
    return 0;
}
