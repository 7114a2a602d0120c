/*
 * overflow_by_1: writing one byte past the end of an object of a red-zoned
 * cache (SLAB_RED_ZONE, slub_debug's Z) is caught: the child dies with
 * "slabdefrag: cache '<name>': slab_free(<ptr>): red zone overwritten (write past
 * the end of the object)", and with SLAB_STORE_USER the report says where the
 * object was last allocated and freed.
 *
 * Cases, each in a forked child that must die with the message:
 *  1. 13-byte objects (the red zone starts mid-word), write obj[13], free;
 *  2. 64-byte objects, write obj[64], free;
 *  3. a ctor cache (free pointer outside the object), write obj[24], free;
 *  4. a write past the end of a *free* object: caught by the next slab_alloc
 *     that hands the object out ("slab_alloc(<ptr>): red zone overwritten").
 * Controls (must survive): writing every byte of the object, then freeing.
 */
#include "hardtest.h"

struct ovf {
    struct slab_cache *s;
    unsigned char *obj;
    size_t at; /* offset of the first byte written */
    size_t len;
    int free_first; /* write after freeing, then allocate */
};

static void do_overflow(void *arg)
{
    struct ovf *o = arg;
    if (o->free_first)
        slab_free(o->s, o->obj);
    memset(o->obj + o->at, 0x5a, o->len);
    if (o->free_first) {
        void *again = slab_alloc(o->s);
        fprintf(stderr, "slab_alloc returned %p without a report\n", again);
        return;
    }
    slab_free(o->s, o->obj);
}

static void ctor(void *p)
{
    memset(p, 0x11, 24);
}

static void check_overflow(const char *label, struct slab_cache *s, size_t overflow_by)
{
    size_t size = slab_cache_object_size(s);
    unsigned char *obj = slab_alloc(s);
    CHECK(obj != NULL, "%s: slab_alloc: %s", label, strerror(errno));

    /* Control: the whole object is writable. */
    struct ovf ok = {s, obj, 0, size, 0};
    CHECK(expect_survive(label, do_overflow, &ok) == 0, "%s: in-bounds write reported", label);

    struct ovf bad = {s, obj, size, overflow_by, 0};
    const char *needles[] = {ptr_prefix(slab_cache_name(s), "slab_free", obj),
                             "red zone overwritten (write past the end of the object)",
                             "last allocated at", "last freed at", NULL};
    CHECK(expect_die(label, do_overflow, &bad, needles) == 0, "%s: overflow by %zu not caught",
          label, overflow_by);

    /* The same write into a free object is caught when it is handed out again
     * (it is the head of this thread's freelist right after the free). */
    struct ovf late = {s, obj, size, overflow_by, 1};
    const char *late_needles[] = {ptr_prefix(slab_cache_name(s), "slab_alloc", obj),
                                  "red zone overwritten", "last allocated at", NULL};
    CHECK(expect_die(label, do_overflow, &late, late_needles) == 0,
          "%s: overflow of a free object by %zu not caught by slab_alloc", label, overflow_by);

    slab_free(s, obj);
    CHECK(slab_cache_validate(s) == 0, "%s: validate", label);
}

int main(void)
{
    const unsigned dbg = SLAB_RED_ZONE | SLAB_STORE_USER;
    struct slab_cache *odd = slab_cache_create("ovf1-odd", 13, 0, dbg, NULL);
    struct slab_cache *even = slab_cache_create("ovf1-64", 64, 0, dbg, NULL);
    struct slab_cache *ct = slab_cache_create("ovf1-ctor", 24, 0, dbg, ctor);
    struct slab_cache *all = slab_cache_create("ovf1-all", 40, 0,
                                               dbg | SLAB_POISON | SLAB_CONSISTENCY, NULL);
    CHECK(odd && even && ct && all, "slab_cache_create: %s", strerror(errno));

    check_overflow("1: 13-byte objects", odd, 1);
    check_overflow("2: 64-byte objects", even, 1);
    check_overflow("3: ctor cache", ct, 1);
    check_overflow("4: all debug flags", all, 1);

    slab_cache_destroy(odd);
    slab_cache_destroy(even);
    slab_cache_destroy(ct);
    slab_cache_destroy(all);
    printf("overflow_by_1: ok\n");
    return 0;
}
