/*
 * corrupted_freeptr: a free object's link overwritten (write after free, or an
 * overflow from the previous object) is caught when slab_alloc pops it:
 * "slabdefrag: cache '<name>': corrupted free pointer in free object <ptr>
 * (decodes to <ptr>, outside its slab): write after free or overflow".
 *
 * In a cache without ctor and debug flags the link lives at offset 0 of a free
 * object.  Recipe: allocate a and b (same slab), free b, free a (a heads the
 * freelist and links to b), overwrite a's first 8 bytes, allocate twice.
 * Cases (forked children):
 *  1. garbage (0x4141...);
 *  2. zeros (a memset after free): hardened build only (plain, 0 is NULL, a
 *     valid end of list);
 *  3. a plain pointer to a malloc'ed block (outside the slab);
 *  4. a plain pointer to another object of the same slab: only the hardened
 *     build catches this (the plain value decodes to garbage);
 *  5. an overflow from the object before a (one object's worth + 8 bytes).
 * And the obfuscation itself (hardened build): the stored link is not the plain
 * address of b, and two caches have different secrets.  Built with
 * -DSLABDEFRAG_NO_FREELIST_HARDENING the link is stored plainly and cases 2 and 4
 * are skipped.
 */
#include "hardtest.h"
#include "slab/internal.h" /* the per-cache secret */

struct corrupt {
    struct slab_cache *s;
    unsigned char *a, *b;
    uint64_t value;  /* written into a's first 8 bytes */
    int mode;        /* 1: overflow from the object before a instead;
                        2: write the plain address of the object before a */
};

static void do_corrupt(void *arg)
{
    struct corrupt *c = arg;
    slab_free(c->s, c->b);
    slab_free(c->s, c->a);
    size_t size = slab_cache_object_size(c->s);
    if (c->mode == 1) {
        memset(c->a - size, 0x42, size + 8); /* the previous object, then 8 bytes too far */
    } else if (c->mode == 2) {
        void *before = c->a - size; /* allocated, in the same slab */
        memcpy(c->a, &before, sizeof before);
    } else {
        memcpy(c->a, &c->value, sizeof c->value);
    }
    void *x = slab_alloc(c->s);
    void *y = slab_alloc(c->s);
    fprintf(stderr, "slab_alloc returned %p and %p without a report\n", x, y);
}

static void expect_corrupt(const char *label, struct slab_cache *s, uint64_t value, int mode)
{
    void *before = slab_alloc(s);
    unsigned char *a = slab_alloc(s), *b = slab_alloc(s);
    CHECK(before && a && b, "%s: slab_alloc: %s", label, strerror(errno));
    size_t size = slab_cache_object_size(s);
    CHECK((unsigned char *)before + size == a && a + size == b,
          "%s: expected consecutive objects %p %p %p", label, before, (void *)a, (void *)b);
    struct corrupt c = {s, a, b, value, mode};
    char head[200];
    snprintf(head, sizeof head, "slabdefrag: cache '%s': corrupted free pointer in free object %p",
             slab_cache_name(s), (void *)a);
    const char *needles[] = {head, "outside its slab): write after free or overflow", NULL};
    CHECK(expect_die(label, do_corrupt, &c, needles) == 0, "%s: corrupted link not caught", label);
    slab_free(s, b); /* reverse order: the next call gets the same three again */
    slab_free(s, a);
    slab_free(s, before);
}

/* The raw link a stores after free(b), free(a), in a fresh cache. */
static uint64_t raw_link(struct slab_cache *s, void **a_out, void **b_out)
{
    void *a = slab_alloc(s), *b = slab_alloc(s);
    CHECK(a && b, "slab_alloc");
    slab_free(s, b);
    slab_free(s, a);
    uint64_t v;
    memcpy(&v, a, sizeof v);
    *a_out = a;
    *b_out = b;
    CHECK(slab_alloc(s) == a && slab_alloc(s) == b, "LIFO reuse expected");
    slab_free(s, b);
    slab_free(s, a);
    return v;
}

int main(void)
{
    struct slab_cache *s = slab_cache_create("cfp", 64, 0, 0, NULL);
    CHECK(s != NULL, "slab_cache_create: %s", strerror(errno));
    void *heap_block = malloc(64);
    CHECK(heap_block != NULL, "malloc");

    expect_corrupt("1: garbage", s, 0x4141414141414141ull, 0);
#ifndef SLABDEFRAG_NO_FREELIST_HARDENING
    /* Unhardened, a zeroed link is a valid end of list (it only truncates it). */
    expect_corrupt("2: zeros", s, 0, 0);
#endif
    expect_corrupt("3: plain pointer outside the slab", s, (uint64_t)(uintptr_t)heap_block, 0);
    expect_corrupt("5: overflow from the previous object", s, 0, 1);

    void *a, *b;
    uint64_t link = raw_link(s, &a, &b);
    (void)a;
#ifndef SLABDEFRAG_NO_FREELIST_HARDENING
    expect_corrupt("4: plain pointer into the same slab", s, 0, 2);

    CHECK(link != (uint64_t)(uintptr_t)b, "link stored in plain: %#llx", (unsigned long long)link);
    /* Each cache has its own secret (a coincidence is a 2^-63 event). */
    struct slab_cache *t = slab_cache_create("cfp-2", 64, 0, 0, NULL);
    CHECK(t != NULL, "slab_cache_create");
    CHECK(s->secret != t->secret, "two caches share a free-pointer secret");
    slab_cache_destroy(t);
#else
    CHECK(link == (uint64_t)(uintptr_t)b, "unhardened build: link should be plain");
#endif

    CHECK(slab_cache_validate(s) == 0, "validate");
    slab_cache_destroy(s);
    free(heap_block);
    printf("corrupted_freeptr: ok\n");
    return 0;
}
