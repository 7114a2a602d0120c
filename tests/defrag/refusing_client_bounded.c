/*
 * refusing_client_bounded: a client that answers LATER or NO forever, or whose
 * kick never frees anything, does not make any trigger spin.
 *
 * Three sparse caches (every 8th object of 300 slabs kept): a mover answering
 * LATER forever, a mover answering NO forever, and an evict client whose get
 * pins everything and whose kick frees nothing.  Each trigger kind runs many
 * times (slab_cache_defrag at 30 and 100%, slab_reclaim(SIZE_MAX), and the
 * background defragmenter for a while).  Checks, on the clients' own counts:
 *   - every trigger returns (a watchdog fails the test otherwise);
 *   - LATER: callbacks <= 3 x objects; NO: callbacks <= slabs (each slab asked
 *     once); futile kick: get calls <= 3 x slabs and objects offered <= 3 x
 *     objects;
 *   - the last rounds (and the background defragmenter) ask nothing more;
 *   - nothing changes: objects_active, every object intact.
 * slab_cache_shrink clears the marks: one shrink may ask each again, within the
 * same bounds again.
 */
#include "defragtest.h"

#define NSLOTS (15 * 300)

static struct slab_cache *futile;
static void *futile_objs[NSLOTS];
static _Atomic uint64_t get_calls, get_objs, kick_calls;

static void *futile_get(struct slab_cache *s, int nr, void **objs)
{
    atomic_fetch_add(&get_calls, 1);
    atomic_fetch_add(&get_objs, (uint64_t)nr);
    return NULL;
}

static void futile_kick(struct slab_cache *s, int nr, void **objs, void *p)
{
    atomic_fetch_add(&kick_calls, 1); /* frees nothing: everything is busy */
}

struct counts {
    uint64_t later, no, get, offered;
};

static struct counts snapshot(struct owner *later, struct owner *no)
{
    return (struct counts){atomic_load(&later->calls), atomic_load(&no->calls),
                           atomic_load(&get_calls), atomic_load(&get_objs)};
}

static void check_bounds(struct counts c, size_t live_later, size_t live_no, size_t slabs_no,
                         size_t futile_live, size_t futile_slabs, int epochs, const char *when)
{
    CHECK(c.later <= 3 * live_later * (uint64_t)epochs, "%s: %llu LATER callbacks for %zu objects",
          when, (unsigned long long)c.later, live_later);
    CHECK(c.no <= slabs_no * (uint64_t)epochs, "%s: %llu NO callbacks for %zu slabs", when,
          (unsigned long long)c.no, slabs_no);
    CHECK(c.get <= 3 * futile_slabs * (uint64_t)epochs, "%s: %llu get calls for %zu slabs", when,
          (unsigned long long)c.get, futile_slabs);
    CHECK(c.offered <= 3 * futile_live * (uint64_t)epochs, "%s: %llu objects offered to get, %zu live",
          when, (unsigned long long)c.offered, futile_live);
}

static void trigger_everything(struct owner *later, struct owner *no)
{
    struct slab_cache *caches[] = {later->s, no->s, futile};
    for (int i = 0; i < 3; i++) {
        CHECK(slab_cache_defrag(caches[i], 30) >= 0, "defrag 30");
        CHECK(slab_cache_defrag(caches[i], 100) >= 0, "defrag 100");
    }
    CHECK(slab_reclaim(SIZE_MAX) >= 0, "reclaim");
}

int main(void)
{
    dt_watchdog(60);
    struct owner later, no;
    owner_init(&later, "refuse-later", 256, NSLOTS, 0);
    owner_init(&no, "refuse-no", 256, NSLOTS, 0);
    futile = slab_cache_create("refuse-kick", 256, 0, 0, NULL);
    CHECK(futile && slab_cache_setup_defrag(futile, futile_get, futile_kick) == 0, "setup");
    owner_fill(&later, NSLOTS);
    owner_fill(&no, NSLOTS);
    for (size_t i = 0; i < NSLOTS; i++)
        CHECK((futile_objs[i] = slab_alloc(futile)) != NULL, "alloc");
    owner_sparsen(&later, 8);
    owner_sparsen(&no, 8);
    size_t futile_live = 0;
    for (size_t i = 0; i < NSLOTS; i++)
        if (i % 8) {
            slab_free(futile, futile_objs[i]);
            futile_objs[i] = NULL;
        } else {
            futile_live++;
        }
    owner_set_answer(&later, SLAB_MOVE_LATER);
    owner_set_answer(&no, SLAB_MOVE_NO);
    size_t live_later = owner_verify(&later, "start"), live_no = owner_verify(&no, "start");
    size_t slabs_no = cache_stats(no.s).slabs + 2, futile_slabs = cache_stats(futile).slabs + 2;

    struct counts per_round[12];
    for (int r = 0; r < 12; r++) {
        trigger_everything(&later, &no);
        per_round[r] = snapshot(&later, &no);
    }
    struct counts c = per_round[11];
    check_bounds(c, live_later, live_no, slabs_no, futile_live, futile_slabs, 1, "12 rounds");
    CHECK(c.later > 0 && c.no > 0 && c.get > 0, "a client was never asked");
    CHECK(memcmp(&per_round[11], &per_round[8], sizeof c) == 0,
          "triggers still ask refusing clients after 9 rounds");

    /* The background defragmenter does not ask them either. */
    struct slab_defrag_policy pol = {.interval_ms = 5, .frag_percent = 1, .min_waste_bytes = 4096,
                                     .slab_fill_percent = 100, .cpu_budget_percent = 25};
    int rc = slab_defrag_start(&pol);
    CHECK(rc == 0, "slab_defrag_start: %d", rc);
    struct slab_defrag_status ds = {0};
    for (int i = 0; i < 200 && ds.rounds < 20; i++) {
        usleep(10000);
        CHECK(slab_defrag_get_status(&ds) == 0, "status");
    }
    slab_defrag_stop();
    CHECK(ds.rounds >= 1, "the background defragmenter never ran a round");
    struct counts bg = snapshot(&later, &no);
    CHECK(memcmp(&bg, &c, sizeof c) == 0,
          "the background defragmenter asked refusing clients again (LATER %llu->%llu NO "
          "%llu->%llu get %llu->%llu)",
          (unsigned long long)c.later, (unsigned long long)bg.later, (unsigned long long)c.no,
          (unsigned long long)bg.no, (unsigned long long)c.get, (unsigned long long)bg.get);

    /* shrink clears the marks: one more epoch of asking, same bounds. */
    slab_cache_shrink(later.s);
    slab_cache_shrink(no.s);
    slab_cache_shrink(futile);
    for (int r = 0; r < 4; r++)
        trigger_everything(&later, &no);
    check_bounds(snapshot(&later, &no), live_later, live_no, slabs_no, futile_live, futile_slabs,
                 2, "after shrink");

    CHECK(owner_verify(&later, "end") == live_later && owner_verify(&no, "end") == live_no,
          "objects changed");
    CHECK(cache_stats(later.s).objects_active == live_later, "LATER: objects_active");
    CHECK(cache_stats(no.s).objects_active == live_no, "NO: objects_active");
    CHECK(cache_stats(futile).objects_active == futile_live, "futile: objects_active");
    owner_check_results(&later, "LATER");
    owner_check_results(&no, "NO");
    printf("refusing_client_bounded: LATER %llu calls / %zu objects, NO %llu / %zu slabs, "
           "get %llu / %zu slabs\n",
           (unsigned long long)c.later, live_later, (unsigned long long)c.no, slabs_no,
           (unsigned long long)c.get, futile_slabs);
    for (size_t i = 0; i < NSLOTS; i++)
        slab_free(futile, futile_objs[i]);
    slab_cache_destroy(futile);
    owner_destroy(&later);
    owner_destroy(&no);
    return 0;
}
