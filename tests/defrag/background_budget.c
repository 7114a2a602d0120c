/*
 * background_budget: the background defragmenter (slab_defrag_start) returns
 * memory on its own, within its CPU budget and step bound, as its own
 * accounting reports them (no wall-clock assertions of the test's own).
 *
 * A movable cache of 256 B objects, 16 MiB allocated, every 10th object kept
 * (fill 10%: far over the thresholds).  The defragmenter runs with
 * interval 10 ms, budget 5%, max step 1000 us; the test waits (polling, up to
 * 30 s) until the cache is dense or the defragmenter has run 400 rounds.
 * Checks: status.running; rounds and steps > 0; bytes_released > 0 and the
 * cache's slabs fell to what its objects need (+2 + one heap's worth);
 * every object intact and objects_active == owner's count (the callbacks ran on
 * the defragmenter's thread under the owner's lock); then, outside sanitizers,
 * cpu_ns <= 5% of wall_ns + slack (two steps + 20 ms) and longest_step_ns <=
 * 5 x max_step.  Also: a second start gives -EALREADY, a bad policy -EINVAL,
 * and after stop the status says not running.
 */
#include "defragtest.h"

#define OBJ 256
#define NSLOTS ((16u << 20) / OBJ)

int main(void)
{
    dt_watchdog(90);
    struct owner o;
    size_t live = owner_init_sparse(&o, "bg-movable", OBJ, NSLOTS, 10);
    slab_cache_defrag(o.s, 0); /* give back this thread's slabs: no move at 0% */
    struct slab_cache_stats before = cache_stats(o.s);
    uint64_t needed = (live + before.objects_per_slab - 1) / before.objects_per_slab;

    struct slab_defrag_policy bad = {.cpu_budget_percent = 1000};
    CHECK(slab_defrag_start(&bad) == -EINVAL, "a 1000%% CPU budget was accepted");
    struct slab_defrag_policy pol = {.interval_ms = 10, .cpu_budget_percent = 5,
                                     .max_step_us = 1000};
    int rc = slab_defrag_start(&pol);
    CHECK(rc == 0, "slab_defrag_start: %d", rc);
    CHECK(slab_defrag_start(&pol) == -EALREADY, "second start not -EALREADY");

    struct slab_defrag_status ds = {0};
    struct slab_cache_stats st = before;
    for (int i = 0; i < 3000; i++) {
        usleep(10000);
        CHECK(slab_defrag_get_status(&ds) == 0, "get_status");
        st = cache_stats(o.s);
        if (st.slabs <= needed + 2 || ds.rounds >= 400)
            break;
    }
    CHECK(ds.running == 1, "status.running %d while started", ds.running);
    CHECK(ds.rounds > 0 && ds.steps > 0, "rounds %llu steps %llu", (unsigned long long)ds.rounds,
          (unsigned long long)ds.steps);
    CHECK(ds.bytes_released > 0, "the background defragmenter released nothing");
    slab_defrag_stop();
    struct slab_defrag_status end;
    CHECK(slab_defrag_get_status(&end) == 0 && end.running == 0, "running after stop");

    st = cache_stats(o.s);
    if (st.slabs > needed + 2)
        print_stats("after background", &st);
    CHECK(st.slabs <= needed + 2, "slabs %llu -> %llu, %llu needed",
          (unsigned long long)before.slabs, (unsigned long long)st.slabs,
          (unsigned long long)needed);
    CHECK(owner_verify(&o, "after") == live, "objects changed");
    CHECK(st.objects_active == live, "objects_active %llu, owner %zu",
          (unsigned long long)st.objects_active, live);
    owner_check_results(&o, "after");

    printf("background_budget: %llu rounds, %llu steps, cpu %.1f ms of %.1f ms wall (%.2f%%), "
           "longest step %.3f ms, %llu bytes released\n",
           (unsigned long long)ds.rounds, (unsigned long long)ds.steps, ds.cpu_ns / 1e6,
           ds.wall_ns / 1e6, ds.wall_ns ? 100.0 * (double)ds.cpu_ns / (double)ds.wall_ns : 0.0,
           ds.longest_step_ns / 1e6, (unsigned long long)ds.bytes_released);
    if (!under_sanitizer()) {
        uint64_t step_ns = (uint64_t)pol.max_step_us * 1000;
        uint64_t allowed = ds.wall_ns / 100 * pol.cpu_budget_percent + 2 * step_ns + 20000000;
        CHECK(ds.cpu_ns <= allowed, "cpu_ns %llu over the budget (%llu allowed for wall %llu)",
              (unsigned long long)ds.cpu_ns, (unsigned long long)allowed,
              (unsigned long long)ds.wall_ns);
        CHECK(ds.longest_step_ns <= 5 * step_ns, "longest step %llu ns, max_step %llu ns",
              (unsigned long long)ds.longest_step_ns, (unsigned long long)step_ns);
    }
    owner_destroy(&o);
    return 0;
}
