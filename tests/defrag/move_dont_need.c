/*
 * move_dont_need: DONT_NEED frees both objects: the owner drops its reference
 * and the allocator frees old and new, so the sparse slabs empty without any
 * copy and objects_active falls by the number of DONT_NEED answers.
 *
 * 400 slabs of 15 objects of 256 B, every 8th kept; the callback answers
 * DONT_NEED for odd slots and YES for even ones (so both kinds of answer meet in
 * one slab).  After one slab_cache_defrag(30): objects_active == owner's live
 * count == live before - DONT_NEED answers; the slabs needed for the survivors
 * remain; move_results[] match the callback's accounting.
 */
#include "defragtest.h"

#define PER_SLAB 15
#define NOBJ (PER_SLAB * 400)
#define KEEP_EVERY 8

static enum slab_move_result drop_odd(struct owner *o, size_t slot, void *old_obj)
{
    return (slot / KEEP_EVERY) % 2 ? SLAB_MOVE_DONT_NEED : SLAB_MOVE_YES;
}

int main(void)
{
    dt_watchdog(60);
    struct owner o;
    size_t live = owner_init_sparse(&o, "move-dont-need", 256, NOBJ, KEEP_EVERY);
    o.decide = drop_odd;

    struct slab_cache_stats before = cache_stats(o.s);
    long rel = slab_cache_defrag(o.s, 30);
    struct slab_cache_stats st = cache_stats(o.s);
    uint64_t dropped = owner_result(&o, SLAB_MOVE_DONT_NEED);
    CHECK(dropped > 0 && owner_result(&o, SLAB_MOVE_YES) > 0, "DONT_NEED %llu YES %llu",
          (unsigned long long)dropped, (unsigned long long)owner_result(&o, SLAB_MOVE_YES));
    size_t live_after = owner_verify(&o, "after");
    CHECK(live_after == live - dropped, "owner holds %zu, expected %zu - %llu", live_after, live,
          (unsigned long long)dropped);
    if (st.objects_active != live_after)
        print_stats("after", &st);
    CHECK(st.objects_active == live_after,
          "objects_active %llu, owner holds %zu: DONT_NEED did not free both objects",
          (unsigned long long)st.objects_active, live_after);
    owner_check_results(&o, "after");
    CHECK(rel > 0 && st.bytes_mapped < before.bytes_mapped, "released %ld", rel);
    CHECK(st.slabs <= (live_after + PER_SLAB - 1) / PER_SLAB + 2, "%llu slabs for %zu objects",
          (unsigned long long)st.slabs, live_after);
    CHECK(slab_cache_validate(o.s) == 0, "validate");
    owner_destroy(&o);
    printf("move_dont_need: %llu dropped, %zu kept\n", (unsigned long long)dropped, live_after);
    return 0;
}
