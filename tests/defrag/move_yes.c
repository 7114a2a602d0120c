/*
 * move_yes: a move callback that answers YES relocates every object of the
 * sparse slabs, the allocator frees each old object, and the vacated slabs go
 * back to the OS.
 *
 * 6000 objects of 256 B (15 per 4 KiB slab, 400 slabs), keep every 8th (fill
 * ~13%), one slab_cache_defrag(s, 30).  Checks:
 *   - the callback's own accounting and the cache's agree: move_results[YES] ==
 *     defrag_objects_moved == YES answers; nothing refused;
 *   - objects_active == the owner's live count (each old was freed, each new
 *     kept), and every live object is intact and referenced once;
 *   - no object was asked about twice in the pass, no new object came from a
 *     slab the pass was still vacating;
 *   - slabs fall to what the live objects need (+2), bytes_mapped falls, and
 *     the trigger's return value covers the fall.
 */
#include "defragtest.h"

#define PER_SLAB 15
#define NOBJ (PER_SLAB * 400)
#define KEEP_EVERY 8

int main(void)
{
    dt_watchdog(60);
    dt_no_decay_release();
    struct owner o;
    size_t live = owner_init_sparse(&o, "move-yes", 256, NOBJ, KEEP_EVERY);
    CHECK(live == (NOBJ + KEEP_EVERY - 1) / KEEP_EVERY, "live %zu", live);

    struct slab_cache_stats before = cache_stats(o.s);
    CHECK(before.objects_per_slab == PER_SLAB, "objects_per_slab %u", before.objects_per_slab);
    owner_pass_begin(&o);
    long released = slab_cache_defrag(o.s, 30);
    struct slab_cache_stats after = cache_stats(o.s);
    if (released <= 0)
        print_stats("after", &after);
    CHECK(released > 0, "slab_cache_defrag returned %ld", released);
    owner_pass_check(&o, "defrag(30)");

    CHECK(owner_result(&o, SLAB_MOVE_YES) > 0, "the callback was never asked");
    CHECK(atomic_load(&o.calls) == owner_result(&o, SLAB_MOVE_YES),
          "calls %llu, YES %llu: a live object got another answer",
          (unsigned long long)atomic_load(&o.calls),
          (unsigned long long)owner_result(&o, SLAB_MOVE_YES));
    owner_check_results(&o, "after defrag");
    CHECK(after.defrag_objects_refused == 0, "refused %llu with a YES-only callback",
          (unsigned long long)after.defrag_objects_refused);
    for (size_t i = 0; i < NOBJ; i++)
        CHECK(atomic_load(&o.calls_per_slot[i]) <= 1, "slot %zu asked %llu times in one pass",
              i, (unsigned long long)atomic_load(&o.calls_per_slot[i]));

    size_t live_after = owner_verify(&o, "after defrag");
    CHECK(live_after == live, "live %zu -> %zu", live, live_after);
    CHECK(after.objects_active == live, "objects_active %llu, the owner holds %zu",
          (unsigned long long)after.objects_active, live);

    uint64_t needed = (live + PER_SLAB - 1) / PER_SLAB;
    if (after.slabs > needed + 2)
        print_stats("after", &after);
    CHECK(after.slabs <= needed + 2, "%llu slabs left for %zu objects (%llu needed)",
          (unsigned long long)after.slabs, live, (unsigned long long)needed);
    CHECK(after.bytes_mapped < before.bytes_mapped, "bytes_mapped %llu -> %llu",
          (unsigned long long)before.bytes_mapped, (unsigned long long)after.bytes_mapped);
    CHECK((uint64_t)released >= before.bytes_mapped - after.bytes_mapped,
          "returned %ld, bytes_mapped fell by %llu", released,
          (unsigned long long)(before.bytes_mapped - after.bytes_mapped));
    CHECK(after.defrag_slabs_freed > 0 && after.defrag_bytes_released > 0,
          "slabs_freed %llu bytes_released %llu", (unsigned long long)after.defrag_slabs_freed,
          (unsigned long long)after.defrag_bytes_released);
    CHECK(after.defrag_passes >= 1, "defrag_passes %llu", (unsigned long long)after.defrag_passes);
    CHECK(slab_cache_validate(o.s) == 0, "validate failed");

    owner_free_all(&o);
    slab_cache_shrink(o.s);
    after = cache_stats(o.s);
    CHECK(after.objects_active == 0, "objects_active %llu after freeing everything",
          (unsigned long long)after.objects_active);
    owner_destroy(&o);
    printf("move_yes: %zu live objects moved out of %llu slabs into %llu; %ld bytes returned\n",
           live, (unsigned long long)before.slabs, (unsigned long long)needed, released);
    return 0;
}
