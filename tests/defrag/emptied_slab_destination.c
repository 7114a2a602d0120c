/*
 * emptied_slab_destination: a slab that an earlier step of a pass emptied
 * receives moves in the same pass, and a slab still being vacated never does.
 *
 * 300 slabs of 15 objects of 256 B, one object kept per slab: every partial
 * slab holds one object, so no partial slab is fuller than the slab being
 * vacated and, once the first destination is full, the pass must refill the
 * slabs it has emptied.  One slab_cache_defrag(s, 100), then:
 *   - some `new` objects lie in slabs the same pass had vacated before (their
 *     last `old` came from an earlier move call), and no `new` lies in a slab a
 *     later call still took an `old` from;
 *   - the pass created at most one slab: slabs fall to the 20 the 300 objects
 *     need (+1), every object intact, objects_active == the owner's count.
 */
#include "defragtest.h"

#define PER_SLAB 15
#define NSLABS 300
#define NOBJ (PER_SLAB * NSLABS)

int main(void)
{
    dt_watchdog(60);
    struct owner o;
    owner_init(&o, "emptied-dest", 256, NOBJ, 0);
    owner_fill(&o, NOBJ);
    CHECK(cache_stats(o.s).objects_per_slab == PER_SLAB, "objects_per_slab %u",
          cache_stats(o.s).objects_per_slab);
    owner_sparsen(&o, PER_SLAB);
    size_t live = owner_verify(&o, "before");
    CHECK(live == NSLABS, "live %zu", live);
    owner_pass_begin(&o);
    long rel = slab_cache_defrag(o.s, 100);
    CHECK(rel > 0, "slab_cache_defrag returned %ld", rel);
    size_t reused = owner_pass_check(&o, "defrag(100)");
    CHECK(reused > 0, "no emptied slab received a move in the pass that emptied it");
    struct slab_cache_stats st = cache_stats(o.s);
    uint64_t needed = (live + PER_SLAB - 1) / PER_SLAB;
    CHECK(st.slabs <= needed + 1, "%llu slabs for %zu objects (%llu needed)",
          (unsigned long long)st.slabs, live, (unsigned long long)needed);
    CHECK(owner_verify(&o, "after") == live, "live objects changed");
    CHECK(st.objects_active == live, "objects_active %llu, owner %zu",
          (unsigned long long)st.objects_active, live);
    CHECK(slab_cache_validate(o.s) == 0, "validate");
    printf("emptied_slab_destination: %zu of %llu moves went to slabs the pass had emptied\n",
           reused, (unsigned long long)owner_result(&o, SLAB_MOVE_YES));
    owner_destroy(&o);
    return 0;
}
