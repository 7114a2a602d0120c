/*
 * write_after_free: a write into a freed object of a poisoned cache
 * (SLAB_POISON, slub_debug's P) is caught when the object is allocated again:
 * "slabdefrag: cache '<name>': slab_alloc(<ptr>): poison overwritten (write after
 * free)", and with SLAB_STORE_USER "last allocated at <site>, last freed at
 * <site>" naming the functions that allocated and freed it.
 *
 * The freed object heads the thread's freelist, so the next slab_alloc of the
 * same thread hands it out and checks its poison.  Cases (forked children):
 *  1. one byte written at offset 0 (where a non-debug cache keeps its link);
 *  2. one byte written at the last byte (poison's end marker);
 *  3. a word in the middle of a larger (200-byte) object;
 *  4. the object is not the freelist head any more (others freed after it):
 *     allocate until it comes back;
 *  5. the reported sites are the call sites in alloc_one() and free_one() (hardtest.h).
 * Controls: a read after free, or no access at all, is not reported; a ctor
 * cache with SLAB_POISON is never poisoned (objects keep their constructed
 * state across free/alloc).
 */
#include "hardtest.h"

struct waf {
    struct slab_cache *s;
    unsigned char *obj;
    size_t at, len;
    int others; /* free this many other objects after obj */
};

static void do_waf(void *arg)
{
    struct waf *w = arg;
    void *others[64];
    CHECK(w->others <= 64, "too many");
    for (int i = 0; i < w->others; i++)
        others[i] = slab_alloc(w->s);
    free_one(w->s, w->obj);
    for (int i = 0; i < w->others; i++)
        slab_free(w->s, others[i]);
    if (w->len)
        memset(w->obj + w->at, 0, w->len);
    else
        fprintf(stderr, "read after free: %d\n", w->obj[w->at]);
    /* Allocate until obj comes back (it always does within a slab's worth). */
    for (int i = 0; i < 1000; i++)
        if (slab_alloc(w->s) == w->obj)
            return;
    fprintf(stderr, "object %p never came back\n", (void *)w->obj);
}

static void expect_waf(const char *label, struct slab_cache *s, size_t at, size_t len, int others)
{
    unsigned char *obj = alloc_one(s);
    CHECK(obj != NULL, "%s: slab_alloc: %s", label, strerror(errno));
    struct waf w = {s, obj, at, len, others};
    const char *needles[] = {ptr_prefix(slab_cache_name(s), "slab_alloc", obj),
                             "poison overwritten (write after free)", "last allocated at",
                             "last freed at", NULL};
    CHECK(expect_die(label, do_waf, &w, needles) == 0, "%s: write after free not caught", label);
    uintptr_t a = report_site(child_stderr, 0), f = report_site(child_stderr, 1);
    CHECK(site_in(a, (void (*)(void))alloc_one), "%s: alloc site %#lx is not in alloc_one %p",
          label, (unsigned long)a, (void *)(uintptr_t)alloc_one);
    CHECK(site_in(f, (void (*)(void))free_one), "%s: free site %#lx is not in free_one %p", label,
          (unsigned long)f, (void *)(uintptr_t)free_one);

    struct waf ok = {s, obj, at, 0, others};
    CHECK(expect_survive(label, do_waf, &ok) == 0, "%s: read after free reported", label);
    slab_free(s, obj);
}

static void ctor(void *p)
{
    memset(p, 0x77, 32);
}

int main(void)
{
    const unsigned dbg = SLAB_POISON | SLAB_STORE_USER;
    struct slab_cache *s = slab_cache_create("waf-48", 48, 0, dbg, NULL);
    struct slab_cache *big = slab_cache_create("waf-200", 200, 0, dbg | SLAB_RED_ZONE, NULL);
    CHECK(s && big, "slab_cache_create: %s", strerror(errno));

    expect_waf("1: first byte", s, 0, 1, 0);
    expect_waf("2: last byte", s, 47, 1, 0);
    expect_waf("3: a word in the middle", big, 96, 8, 0);
    expect_waf("4: not the freelist head", s, 20, 4, 10);

    /* Control: a ctor cache is not poisoned; its constructed state survives. */
    struct slab_cache *c = slab_cache_create("waf-ctor", 32, 0, dbg, ctor);
    CHECK(c != NULL, "slab_cache_create: %s", strerror(errno));
    unsigned char *o = slab_alloc(c);
    CHECK(o != NULL, "slab_alloc");
    for (int i = 0; i < 32; i++)
        CHECK(o[i] == 0x77, "ctor cache: byte %d is %#x after alloc", i, o[i]);
    slab_free(c, o);
    unsigned char *o2 = slab_alloc(c);
    CHECK(o2 == o, "ctor cache: the freed object should come back first");
    for (int i = 0; i < 32; i++)
        CHECK(o2[i] == 0x77, "ctor cache: byte %d is %#x after free/alloc", i, o2[i]);
    slab_free(c, o2);

    CHECK(slab_cache_validate(s) == 0 && slab_cache_validate(big) == 0, "validate");
    slab_cache_destroy(s);
    slab_cache_destroy(big);
    slab_cache_destroy(c);
    printf("write_after_free: ok\n");
    return 0;
}
