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
 * The checks of cases 1-4 are shared with overflow_by_8.c (ovf_* in hardtest.h).
 */
#include "hardtest.h"

int main(void)
{
    struct ovf_caches c;
    ovf_caches_create(&c, "ovf1");
    ovf_check_all(&c, 1);

    ovf_caches_destroy(&c);
    printf("overflow_by_1: ok\n");
    return 0;
}
