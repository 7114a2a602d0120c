/*
 * invalid_free: slab_free() of a pointer that is not an object of the cache
 * aborts with "slabdefrag: cache '<name>': slab_free(<ptr>): <what>":
 *  1. a malloc'ed pointer, a stack address, a static variable, a small integer
 *     cast to a pointer: "not a slab object";
 *  2. inside an object (obj + 1, obj + 8, the middle): "misaligned";
 *  3. the slab header (the slab's base address) and the tail past the last
 *     object: "misaligned" or "not a slab object";
 *  4. the same in a debug cache (validation comes before the debug checks).
 * Each case runs in a forked child that must die with the message.  The parent's
 * caches must be intact afterwards (validate, alloc == free counts).
 */
#include "hardtest.h"

struct bad {
    struct slab_cache *s;
    void *p;
};

static void do_free(void *arg)
{
    struct bad *b = arg;
    slab_free(b->s, b->p);
}

static int static_var;

static void expect_bad(const char *label, struct slab_cache *s, void *p, const char *what)
{
    struct bad b = {s, p};
    const char *needles[] = {ptr_prefix(slab_cache_name(s), "slab_free", p), what, NULL};
    CHECK(expect_die(label, do_free, &b, needles) == 0, "%s: invalid free of %p not caught",
          label, p);
}

static void run(struct slab_cache *s)
{
    const char *name = slab_cache_name(s);
    char label[96];
    void *m = malloc(64);
    int on_stack = 0;
    CHECK(m != NULL, "malloc");
    snprintf(label, sizeof label, "%s: malloc", name);
    expect_bad(label, s, m, "not a slab object");
    snprintf(label, sizeof label, "%s: stack", name);
    expect_bad(label, s, &on_stack, "not a slab object");
    snprintf(label, sizeof label, "%s: static", name);
    expect_bad(label, s, &static_var, "not a slab object");
    snprintf(label, sizeof label, "%s: integer", name);
    expect_bad(label, s, (void *)(uintptr_t)0x1000, "not a slab object");
    free(m);

    unsigned char *obj = slab_alloc(s);
    CHECK(obj != NULL, "slab_alloc: %s", strerror(errno));
    size_t size = slab_cache_object_size(s);
    size_t offs[] = {1, 8, size / 2, size - 1};
    for (unsigned i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        snprintf(label, sizeof label, "%s: obj + %zu", name, offs[i]);
        expect_bad(label, s, obj + offs[i], "misaligned");
    }

    struct slab_cache_stats st;
    CHECK(slab_cache_get_stats(s, &st) == 0, "stats");
    uintptr_t base = (uintptr_t)obj & ~(uintptr_t)(st.slab_size - 1);
    snprintf(label, sizeof label, "%s: slab header", name);
    expect_bad(label, s, (void *)base, "misaligned");
    snprintf(label, sizeof label, "%s: last byte of the slab", name);
    expect_bad(label, s, (void *)(base + st.slab_size - 1), "misaligned");

    slab_free(s, obj);
    CHECK(slab_cache_validate(s) == 0, "%s: validate", name);
    CHECK(slab_cache_get_stats(s, &st) == 0 && st.allocs == st.frees, "%s: counts", name);
}

int main(void)
{
    struct slab_cache *plain = slab_cache_create("inv-plain", 40, 0, 0, NULL);
    struct slab_cache *big = slab_cache_create("inv-big", 3000, 0, 0, NULL);
    struct slab_cache *dbg = slab_cache_create("inv-debug", 40, 0,
                                               SLAB_CONSISTENCY | SLAB_RED_ZONE | SLAB_POISON |
                                                   SLAB_STORE_USER,
                                               NULL);
    CHECK(plain && big && dbg, "slab_cache_create: %s", strerror(errno));
    run(plain);
    run(big);
    run(dbg);
    slab_cache_destroy(plain);
    slab_cache_destroy(big);
    slab_cache_destroy(dbg);
    printf("invalid_free: ok\n");
    return 0;
}
