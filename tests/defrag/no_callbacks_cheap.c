/*
 * no_callbacks_cheap: caches without callbacks cost almost nothing to skip.
 *
 * 200 fragmented caches without callbacks (every 10th object of 40 slabs kept,
 * plus empty slabs in their reserve) and one fragmented cache with a move
 * callback.  slab_reclaim(SIZE_MAX):
 *   - returns exactly what the caches' bytes_mapped fell by;
 *   - releases every empty slab of every cache (slabs_empty == 0 after);
 *   - does no defrag work on the callback-less caches: no slab frozen
 *     (defrag_slabs_scanned == 0), objects_active unchanged, their partial slabs
 *     all still there;
 *   - does defragment the cache with a callback.
 * A second slab_reclaim(SIZE_MAX) has nothing left to do: it returns 0 and
 * invokes no callback (the movable cache is already dense).
 * Work is asserted through counters, never through time.
 */
#include "defragtest.h"

#define NCACHES 200
#define OBJS 600 /* 64 B objects: about 10 slabs of 62 */

static struct slab_cache *caches[NCACHES];
static void *objs[NCACHES][OBJS];

static struct owner o;

/* Built by a thread that then exits, so its slabs are given back and the stats
 * are exact without a trigger (which would release the empty reserve). */
static void *setup_thread(void *arg)
{
    char name[32];
    for (int c = 0; c < NCACHES; c++) {
        snprintf(name, sizeof name, "plain-%d", c);
        caches[c] = slab_cache_create(name, 64, 0, 0, NULL);
        CHECK(caches[c] != NULL, "create %s", name);
        for (int i = 0; i < OBJS; i++)
            CHECK((objs[c][i] = slab_alloc(caches[c])) != NULL, "alloc");
        for (int i = 0; i < OBJS; i++)
            if (i % 10 != 0 || (i >= 62 && i < 186)) /* slabs 1-2 empty: the reserve */
                slab_free(caches[c], objs[c][i]);
    }
    owner_fill(&o, 6000);
    owner_sparsen(&o, 10);
    return NULL;
}

int main(void)
{
    dt_watchdog(60);
    /* An hour: the purge thread must not hand back empty slabs while we count
     * what slab_reclaim returned (a slow sanitizer run outlasts the default). */
    CHECK(slab_set_purge_delay(3600000) == 0, "slab_set_purge_delay");
    uint64_t mapped_before = 0;
    owner_init(&o, "movable", 256, 6000, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, setup_thread, NULL) == 0, "pthread_create");
    CHECK(pthread_join(t, NULL) == 0, "join");
    size_t live = owner_verify(&o, "before");

    struct slab_cache_stats before[NCACHES];
    for (int c = 0; c < NCACHES; c++) {
        before[c] = cache_stats(caches[c]);
        mapped_before += before[c].bytes_mapped;
    }
    struct slab_cache_stats mbefore = cache_stats(o.s);
    mapped_before += mbefore.bytes_mapped;

    long rel = slab_reclaim(SIZE_MAX);
    CHECK(rel > 0, "slab_reclaim: %ld", rel);
    uint64_t mapped_after = 0;
    for (int c = 0; c < NCACHES; c++) {
        struct slab_cache_stats st = cache_stats(caches[c]);
        mapped_after += st.bytes_mapped;
        CHECK(st.defrag_slabs_scanned == 0 && st.defrag_objects_moved == 0 &&
                  st.defrag_objects_kicked == 0,
              "%s: defrag work on a cache without callbacks (scanned %llu)", st.name,
              (unsigned long long)st.defrag_slabs_scanned);
        CHECK(st.slabs_empty == 0, "%s: %llu empty slabs left", st.name,
              (unsigned long long)st.slabs_empty);
        CHECK(st.objects_active == before[c].objects_active, "%s: objects changed", st.name);
        CHECK(st.slabs == before[c].slabs - before[c].slabs_empty,
              "%s: slabs %llu -> %llu with %llu empty", st.name,
              (unsigned long long)before[c].slabs, (unsigned long long)st.slabs,
              (unsigned long long)before[c].slabs_empty);
    }
    struct slab_cache_stats mafter = cache_stats(o.s);
    mapped_after += mafter.bytes_mapped;
    CHECK((uint64_t)rel == mapped_before - mapped_after,
          "slab_reclaim returned %ld, bytes_mapped fell by %llu", rel,
          (unsigned long long)(mapped_before - mapped_after));
    CHECK(owner_result(&o, SLAB_MOVE_YES) > 0 && mafter.slabs < mbefore.slabs,
          "the cache with a callback was not defragmented (slabs %llu -> %llu)",
          (unsigned long long)mbefore.slabs, (unsigned long long)mafter.slabs);
    CHECK(owner_verify(&o, "after") == live, "objects");

    uint64_t calls = atomic_load(&o.calls);
    long again = slab_reclaim(SIZE_MAX);
    CHECK(again == 0, "second slab_reclaim returned %ld, not 0", again);
    CHECK(atomic_load(&o.calls) == calls,
          "second slab_reclaim invoked %llu callbacks on a dense cache",
          (unsigned long long)(atomic_load(&o.calls) - calls));
    for (int c = 0; c < NCACHES; c++)
        CHECK(cache_stats(caches[c]).defrag_slabs_scanned == 0, "scanned");

    for (int c = 0; c < NCACHES; c++) {
        for (int i = 0; i < OBJS; i++)
            if (i % 10 == 0 && !(i >= 62 && i < 186))
                slab_free(caches[c], objs[c][i]);
        slab_cache_destroy(caches[c]);
    }
    owner_destroy(&o);
    printf("no_callbacks_cheap: reclaim released %ld bytes\n", rel);
    return 0;
}
