/*
 * visits_in_address_order: a pass without deadline visits its candidate slabs
 * in address order (the survivors then gather at low addresses and the
 * released slabs form long runs), with few candidates (an insertion sort) and
 * with many (a radix sort).
 *
 * For 40 and for 300 slabs of 15 objects of 256 B, one object kept per slab:
 * one slab_cache_defrag(s, 100) moves the survivors, and the slabs the move
 * calls took their `old` objects from, in call order, never go down in
 * address; every object intact, and the slabs fall to what the objects need
 * (+1).
 */
#include "defragtest.h"

#define PER_SLAB 15

static void run(unsigned nslabs)
{
    struct owner o;
    char name[32];
    snprintf(name, sizeof name, "order-%u", nslabs);
    size_t live = owner_init_sparse(&o, name, 256, (size_t)PER_SLAB * nslabs, PER_SLAB);
    CHECK(cache_stats(o.s).objects_per_slab == PER_SLAB, "objects_per_slab %u",
          cache_stats(o.s).objects_per_slab);
    CHECK(live == nslabs, "live %zu", live);
    owner_pass_begin(&o);
    long rel = slab_cache_defrag(o.s, 100);
    CHECK(rel > 0, "%u slabs: slab_cache_defrag returned %ld", nslabs, rel);
    pthread_mutex_lock(&o.lock);
    CHECK(o.n_old + 2 >= nslabs, "%u slabs: only %zu move calls", nslabs, o.n_old);
    for (size_t i = 1; i < o.n_old; i++)
        CHECK(o.old_recs[i].base >= o.old_recs[i - 1].base,
              "%u slabs: move call %zu took from slab %#lx after call %zu took from %#lx",
              nslabs, i, (unsigned long)o.old_recs[i].base, i - 1,
              (unsigned long)o.old_recs[i - 1].base);
    pthread_mutex_unlock(&o.lock);
    owner_pass_check(&o, name);
    CHECK(owner_verify(&o, "after") == live, "%u slabs: objects changed", nslabs);
    struct slab_cache_stats st = cache_stats(o.s);
    uint64_t needed = (live + PER_SLAB - 1) / PER_SLAB;
    CHECK(st.slabs <= needed + 1, "%u slabs: %llu left for %zu objects", nslabs,
          (unsigned long long)st.slabs, live);
    owner_destroy(&o);
    printf("visits_in_address_order: %u slabs: %zu moves in address order\n", nslabs, o.n_old);
}

int main(void)
{
    dt_watchdog(60);
    run(40);  /* fewer candidates than the insertion sort's limit */
    run(300); /* the radix sort */
    return 0;
}
