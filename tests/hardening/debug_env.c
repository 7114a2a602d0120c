/*
 * debug_env: SLABDEFRAG_DEBUG=<letters>[,cache...] turns debug flags on for
 * caches created while it is set (slub_debug's letters: F consistency, Z red
 * zone, P poison, U call sites; no letters means all four; no list means every
 * cache).  Each form is set with setenv() before slab_cache_create():
 *  1. "FZPU" (all caches): the cache has all four flags, and a delayed double
 *     free and an overflow by one byte are caught (forked children) with the
 *     call-site line;
 *  2. "ZU,env-a,env-b": env-a and env-b get Z|U (an overflow by 1 is caught),
 *     env-c is NOT in debug mode: no flags, the same layout (objects_per_slab)
 *     as with the variable unset, and the same overflow goes unreported;
 *  3. ",env-d": all four letters for env-d only;
 *  4. "fp" (lowercase) for all caches: exactly F|P;
 *  5. list entries match whole names: "Z,env" does not cover "env-e";
 *  6. flags given to slab_cache_create are kept (ORed with the variable's);
 *  7. unset (or empty): no debug flags.
 * White-box: the effective flags are read from struct slab_cache (internal.h).
 */
#include "hardtest.h"
#include "slab/internal.h"

#define ALL_DEBUG (SLAB_CONSISTENCY | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER)

static struct slab_cache *create_with(const char *env, const char *name, size_t size,
                                      unsigned flags)
{
    if (env)
        CHECK(setenv("SLABDEFRAG_DEBUG", env, 1) == 0, "setenv");
    else
        unsetenv("SLABDEFRAG_DEBUG");
    struct slab_cache *s = slab_cache_create(name, size, 0, flags, NULL);
    CHECK(s != NULL, "slab_cache_create(%s) with SLABDEFRAG_DEBUG=%s: %s", name,
          env ? env : "(unset)", strerror(errno));
    unsetenv("SLABDEFRAG_DEBUG");
    return s;
}

static unsigned debug_flags(struct slab_cache *s)
{
    return s->flags & ALL_DEBUG;
}

static unsigned per_slab(struct slab_cache *s)
{
    struct slab_cache_stats st;
    CHECK(slab_cache_get_stats(s, &st) == 0, "stats");
    return st.objects_per_slab;
}

struct misuse {
    struct slab_cache *s;
    int kind; /* 0: overflow by one byte; 1: delayed double free */
};

static void do_misuse(void *arg)
{
    struct misuse *m = arg;
    unsigned char *a = slab_alloc(m->s), *b = slab_alloc(m->s);
    CHECK(a && b, "slab_alloc");
    if (m->kind == 0) {
        a[slab_cache_object_size(m->s)] = 0x99; /* 60-byte objects: in the slot's padding */
        slab_free(m->s, a);
        slab_free(m->s, b);
        return;
    }
    slab_free(m->s, a);
    slab_free(m->s, b);
    slab_free(m->s, a);
}

static void expect_caught(const char *label, struct slab_cache *s, int kind)
{
    struct misuse m = {s, kind};
    char prefix[96];
    snprintf(prefix, sizeof prefix, "slabdefrag: cache '%s': slab_free(", slab_cache_name(s));
    const char *needles[] = {prefix,
                             kind ? "double free (object already free)" : "red zone overwritten",
                             "last allocated at", "last freed at", NULL};
    CHECK(expect_die(label, do_misuse, &m, needles) == 0, "%s: not caught", label);
}

int main(void)
{
    struct slab_cache *base = create_with(NULL, "env-base", 60, 0);
    CHECK(debug_flags(base) == 0, "no variable: flags %#x", debug_flags(base));
    unsigned base_per_slab = per_slab(base);

    /* 1 */
    struct slab_cache *all = create_with("FZPU", "env-all", 60, 0);
    CHECK(debug_flags(all) == ALL_DEBUG, "FZPU: flags %#x", debug_flags(all));
    CHECK(per_slab(all) < base_per_slab, "a debug slot should be larger");
    expect_caught("1: FZPU overflow", all, 0);
    expect_caught("1: FZPU delayed double free", all, 1);

    /* 2 */
    struct slab_cache *a = create_with("ZU,env-a,env-b", "env-a", 60, 0);
    struct slab_cache *b = create_with("ZU,env-a,env-b", "env-b", 60, 0);
    struct slab_cache *c = create_with("ZU,env-a,env-b", "env-c", 60, 0);
    CHECK(debug_flags(a) == (SLAB_RED_ZONE | SLAB_STORE_USER), "env-a: flags %#x", debug_flags(a));
    CHECK(debug_flags(b) == (SLAB_RED_ZONE | SLAB_STORE_USER), "env-b: flags %#x", debug_flags(b));
    CHECK(debug_flags(c) == 0, "env-c is not listed but has flags %#x", debug_flags(c));
    CHECK(per_slab(c) == base_per_slab, "env-c: layout differs from a non-debug cache");
    expect_caught("2: listed env-a", a, 0);
    expect_caught("2: listed env-b", b, 0);
    struct misuse mc = {c, 0};
    CHECK(expect_survive("2: unlisted env-c", do_misuse, &mc) == 0,
          "env-c should not be in debug mode");

    /* 3 */
    struct slab_cache *d = create_with(",env-d", "env-d", 60, 0);
    struct slab_cache *d2 = create_with(",env-d", "env-d2", 60, 0);
    CHECK(debug_flags(d) == ALL_DEBUG, "',env-d': flags %#x", debug_flags(d));
    CHECK(debug_flags(d2) == 0, "',env-d' covers env-d2: flags %#x", debug_flags(d2));
    expect_caught("3: ',env-d' delayed double free", d, 1);

    /* 4 */
    struct slab_cache *lc = create_with("fp", "env-lower", 60, 0);
    CHECK(debug_flags(lc) == (SLAB_CONSISTENCY | SLAB_POISON), "'fp': flags %#x", debug_flags(lc));

    /* 5 */
    struct slab_cache *e = create_with("Z,env", "env-e", 60, 0);
    CHECK(debug_flags(e) == 0, "'Z,env' covers env-e: flags %#x", debug_flags(e));

    /* 6 */
    struct slab_cache *k = create_with("P", "env-keep", 60, SLAB_HWCACHE_ALIGN | SLAB_STORE_USER);
    CHECK(debug_flags(k) == (SLAB_POISON | SLAB_STORE_USER), "'P' + U: flags %#x", debug_flags(k));
    CHECK(k->flags & SLAB_HWCACHE_ALIGN, "SLAB_HWCACHE_ALIGN lost");

    /* 7 */
    struct slab_cache *empty = create_with("", "env-empty", 60, 0);
    CHECK(debug_flags(empty) == 0, "empty variable: flags %#x", debug_flags(empty));

    struct slab_cache *v[] = {base, all, a, b, c, d, d2, lc, e, k, empty};
    for (unsigned i = 0; i < sizeof v / sizeof v[0]; i++) {
        CHECK(slab_cache_validate(v[i]) == 0, "validate %s", slab_cache_name(v[i]));
        slab_cache_destroy(v[i]);
    }
    printf("debug_env: ok\n");
    return 0;
}
