/*
 * move_later: LATER frees the new object and is retried at most 3 times, then
 * treated as NO.
 *
 * 400 slabs of 15 objects of 256 B, every 8th kept (live L = 750).
 * Part 1, a callback that answers LATER forever: across 10 rounds of
 * slab_cache_defrag(30), slab_cache_defrag(100) and slab_reclaim(SIZE_MAX),
 *   - every trigger returns, the total number of callbacks is at most 3 x L and
 *     no object is asked about more than 3 times;
 *   - the last rounds ask nothing (the slabs are marked unmovable);
 *   - objects_active == L throughout (each new was freed), results accounted;
 *   - the answer switched to YES, a plain defrag still asks nothing; shrink
 *     clears the marks and moves everything.
 * Part 2, a callback that answers LATER once per object and YES afterwards:
 *   a few defrag passes (and at most one shrink) move every object out of the
 *   sparse slabs: a transient LATER is retried, not given up at once.
 */
#include "defragtest.h"

#define PER_SLAB 15
#define NSLABS 400
#define NOBJ (PER_SLAB * NSLABS)
#define KEEP_EVERY 8

static enum slab_move_result later_once(struct owner *o, size_t slot, void *old_obj)
{
    return atomic_load(&o->calls_per_slot[slot]) <= 1 ? SLAB_MOVE_LATER : SLAB_MOVE_YES;
}

static void later_forever(void)
{
    struct owner o;
    size_t live = owner_init_sparse(&o, "move-later", 256, NOBJ, KEEP_EVERY);
    owner_set_answer(&o, SLAB_MOVE_LATER);
    uint64_t per_round[10];
    for (int round = 0; round < 10; round++) {
        per_round[round] = owner_trigger_round(&o);
        CHECK(cache_stats(o.s).objects_active == live, "round %d: objects_active %llu, owner %zu",
              round, (unsigned long long)cache_stats(o.s).objects_active, live);
    }
    CHECK(owner_calls(&o) > 0, "never asked");
    CHECK(owner_calls(&o) <= 3 * live, "%llu callbacks for %zu objects answering LATER (bound 3x)",
          (unsigned long long)owner_calls(&o), live);
    for (size_t i = 0; i < NOBJ; i++)
        CHECK(atomic_load(&o.calls_per_slot[i]) <= 3, "slot %zu asked %llu times", i,
              (unsigned long long)atomic_load(&o.calls_per_slot[i]));
    CHECK(per_round[9] == per_round[7], "still asking after 8 rounds: %llu -> %llu callbacks",
          (unsigned long long)per_round[7], (unsigned long long)per_round[9]);
    owner_check_results(&o, "LATER forever");
    CHECK(owner_result(&o, SLAB_MOVE_LATER) == owner_calls(&o), "answers other than LATER");
    CHECK(owner_verify(&o, "LATER forever") == live, "live changed");

    owner_set_answer(&o, SLAB_MOVE_YES);
    uint64_t marked = owner_calls(&o);
    slab_cache_defrag(o.s, 30);
    CHECK(owner_calls(&o) == marked, "defrag asked slabs marked after 3 LATERs");
    struct slab_cache_stats pre = cache_stats(o.s);
    long rel = slab_cache_shrink(o.s);
    struct slab_cache_stats st = cache_stats(o.s);
    CHECK(rel > 0 && st.bytes_mapped < pre.bytes_mapped, "shrink: %ld, mapped %llu -> %llu", rel,
          (unsigned long long)pre.bytes_mapped, (unsigned long long)st.bytes_mapped);
    CHECK(owner_verify(&o, "after shrink") == live && st.objects_active == live,
          "objects after shrink");
    owner_check_results(&o, "after shrink");
    owner_destroy(&o);
    printf("move_later: LATER forever: %llu callbacks for %zu objects\n",
           (unsigned long long)marked, live);
}

static void later_once_then_yes(void)
{
    struct owner o;
    size_t live = owner_init_sparse(&o, "move-later-once", 256, NOBJ, KEEP_EVERY);
    struct slab_cache_stats before = cache_stats(o.s);
    pthread_mutex_lock(&o.lock);
    o.decide = later_once;
    pthread_mutex_unlock(&o.lock);
    for (int i = 0; i < 4; i++)
        CHECK(slab_cache_defrag(o.s, 30) >= 0, "defrag");
    if (owner_result(&o, SLAB_MOVE_YES) < live)
        slab_cache_shrink(o.s);
    struct slab_cache_stats st = cache_stats(o.s);
    CHECK(owner_result(&o, SLAB_MOVE_LATER) > 0, "never answered LATER");
    CHECK(owner_result(&o, SLAB_MOVE_YES) > 0, "a transient LATER was never retried");
    uint64_t needed = (live + PER_SLAB - 1) / PER_SLAB;
    if (st.slabs > needed + 2)
        print_stats("LATER once", &st);
    CHECK(st.slabs <= needed + 2, "%llu slabs (from %llu) for %zu objects",
          (unsigned long long)st.slabs, (unsigned long long)before.slabs, live);
    CHECK(owner_verify(&o, "LATER once") == live && st.objects_active == live, "objects");
    owner_check_results(&o, "LATER once");
    owner_destroy(&o);
    printf("move_later: LATER once then YES: slabs %llu -> %llu\n",
           (unsigned long long)before.slabs, (unsigned long long)st.slabs);
}

int main(void)
{
    dt_watchdog(60);
    later_forever();
    later_once_then_yes();
    return 0;
}
