/*
 * move_dont_know: an object that the owner is freeing at the moment of the
 * callback (unlinked, slab_free not called yet) gets DONT_KNOW; the allocator
 * frees only the new object and leaves the old one alone (the owner's free
 * comes later and must find it still allocated and intact).
 *
 * 400 slabs of 15 objects of 256 B, every 8th kept; every third kept object is
 * "dying": unlinked from the owner's table but not yet freed.  One
 * slab_cache_defrag(30), then the owner finishes freeing the dying objects.
 * Checks: every callback on a dying object answered DONT_KNOW and the live ones
 * YES; objects_active == linked + dying right after the pass (old kept, new
 * freed), == linked after the owner's frees; each dying object is untouched
 * (its pattern intact: the allocator neither freed nor reused it); after a
 * second pass the cache needs only the slabs of the linked objects.
 */
#include "defragtest.h"

#define PER_SLAB 15
#define NOBJ (PER_SLAB * 400)
#define KEEP_EVERY 8

int main(void)
{
    dt_watchdog(60);
    struct owner o;
    owner_init_sparse(&o, "move-dont-know", 256, NOBJ, KEEP_EVERY);

    static void *dying[NOBJ];
    static size_t dying_slot[NOBJ];
    size_t ndying = 0;
    pthread_mutex_lock(&o.lock);
    for (size_t i = 0; i < NOBJ; i += KEEP_EVERY)
        if ((i / KEEP_EVERY) % 3 == 0) {
            dying_slot[ndying] = i;
            dying[ndying++] = o.slots[i];
            o.slots[i] = NULL; /* first half of the owner's free */
        }
    pthread_mutex_unlock(&o.lock);
    size_t linked = owner_verify(&o, "linked");

    long rel = slab_cache_defrag(o.s, 30);
    CHECK(rel >= 0, "defrag: %ld", rel);
    struct slab_cache_stats st = cache_stats(o.s);
    uint64_t dk = owner_result(&o, SLAB_MOVE_DONT_KNOW);
    CHECK(dk > 0, "no callback on a dying object");
    CHECK(dk == atomic_load(&o.dont_know), "DONT_KNOW accounting");
    CHECK(dk <= ndying, "%llu DONT_KNOW for %zu dying objects", (unsigned long long)dk, ndying);
    CHECK(owner_result(&o, SLAB_MOVE_YES) > 0, "no live object moved");
    owner_check_results(&o, "after the pass");
    if (st.objects_active != linked + ndying)
        print_stats("after", &st);
    CHECK(st.objects_active == linked + ndying,
          "objects_active %llu, expected %zu linked + %zu dying: DONT_KNOW freed old or kept new",
          (unsigned long long)st.objects_active, linked, ndying);
    CHECK(owner_verify(&o, "after") == linked, "linked objects changed");

    for (size_t k = 0; k < ndying; k++) {
        CHECK(dt_obj_intact(dying[k], o.size, dying_slot[k], o.gens[dying_slot[k]]),
              "dying object %p (slot %zu) was overwritten during the pass", dying[k],
              dying_slot[k]);
        slab_free(o.s, dying[k]); /* second half of the owner's free */
    }
    st = cache_stats(o.s);
    CHECK(st.objects_active == linked, "objects_active %llu, linked %zu",
          (unsigned long long)st.objects_active, linked);
    CHECK(slab_cache_defrag(o.s, 30) >= 0, "second defrag");
    st = cache_stats(o.s);
    CHECK(st.slabs <= (linked + PER_SLAB - 1) / PER_SLAB + 2, "%llu slabs for %zu objects",
          (unsigned long long)st.slabs, linked);
    CHECK(owner_verify(&o, "end") == linked, "linked objects changed");
    owner_check_results(&o, "end");
    CHECK(slab_cache_validate(o.s) == 0, "validate");
    owner_destroy(&o);
    printf("move_dont_know: %llu DONT_KNOW for %zu dying objects\n", (unsigned long long)dk,
           ndying);
    return 0;
}
