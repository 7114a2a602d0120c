/*
 * overflow_by_8: writing eight bytes past the end of an object of a red-zoned
 * cache (SLAB_RED_ZONE, slub_debug's Z) is caught: the child dies with
 * "slabdefrag: cache '<name>': slab_free(<ptr>): red zone overwritten (write past
 * the end of the object)", and with SLAB_STORE_USER the report says where the
 * object was last allocated and freed.
 *
 * Cases, each in a forked child that must die with the message:
 *  1. 13-byte objects (the red zone starts mid-word), write obj[13..20], free;
 *  2. 64-byte objects, write obj[64..71] (the whole red zone), free;
 *  3. a ctor cache (free pointer outside the object), write obj[24..31], free;
 *  4. a write past the end of a *free* object: caught by the next slab_alloc
 *     that hands the object out ("slab_alloc(<ptr>): red zone overwritten").
 *  5. a wild overflow over the red zone, the free pointer and the metadata
 *     word: "object metadata overwritten" (or the red zone) is reported.
 * Controls (must survive): writing every byte of the object, then freeing.
 * The checks of cases 1-4 are shared with overflow_by_1.c (ovf_* in hardtest.h).
 */
#include "hardtest.h"

int main(void)
{
    struct ovf_caches c;
    ovf_caches_create(&c, "ovf8");
    ovf_check_all(&c, 8);

    /* 5: 64-byte slot + 8 red zone + 8 free pointer + metadata: 48 bytes past the
     * end reach the state word; the report must say something was overwritten. */
    unsigned char *w = slab_alloc(c.even);
    CHECK(w != NULL, "slab_alloc");
    struct ovf wild = {c.even, w, 64, 48, 0};
    const char *wild_needles[] = {ptr_prefix("ovf8-64", "slab_free", w), "overwritten", NULL};
    CHECK(expect_die("5: wild overflow", ovf_write, &wild, wild_needles) == 0,
          "wild overflow not caught");
    slab_free(c.even, w);

    ovf_caches_destroy(&c);
    printf("overflow_by_8: ok\n");
    return 0;
}
