/*
 * shrink_returns_at_once: whatever the purge delay, slab_cache_shrink hands
 * every empty slab back at once (bytes_mapped 0, no slab page resident), and
 * slab_cache_defrag and slab_reclaim release empty slabs at once as well.
 *
 * The delay is an hour, so that nothing the test sees can be the purge thread's
 * doing.  Three rounds, one per trigger: allocate 16 MiB of 256 B objects
 * (touching them), free them all from the allocating thread, check that decay
 * holds the memory (so the trigger has something to return), call the trigger
 * once and check right after it returns:
 *   shrink      bytes_mapped == 0, slabs == 0, nothing resident;
 *   defrag 100  at most the cache's reserve of 2 empty slabs stays mapped and
 *               resident, and its return value counts what went back;
 *   reclaim     (SIZE_MAX) bytes_mapped == 0, nothing resident.
 */
#define _GNU_SOURCE
#include "slabtest.h"

#define OBJ_SIZE 256
#define TOTAL (16u << 20)
#define NOBJ (TOTAL / OBJ_SIZE)
#define RESERVE 2

static void *objs[NOBJ];

enum trigger { SHRINK, DEFRAG, RECLAIM };
static const char *const names[] = { "slab_cache_shrink", "slab_cache_defrag(100)",
                                     "slab_reclaim(SIZE_MAX)" };

static void round_trip(struct slab_cache *s, enum trigger t)
{
    for (size_t i = 0; i < NOBJ; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "slab_alloc: %s", strerror(errno));
        memset(objs[i], 0x11, OBJ_SIZE);
    }
    struct slab_cache_stats st = cache_stats(s);
    struct slab_set set;
    slab_set_build(&set, objs, NOBJ, st.slab_size);
    for (size_t i = 0; i < NOBJ; i++)
        slab_free(s, objs[i]);
    st = cache_stats(s);
    CHECK(st.bytes_mapped >= TOTAL / 2,
          "%s round: only %llu bytes mapped right after freeing %u: decay does not hold them",
          names[t], (unsigned long long)st.bytes_mapped, TOTAL);
    uint64_t before = st.bytes_mapped;

    long rc = t == SHRINK ? slab_cache_shrink(s) : t == DEFRAG ? slab_cache_defrag(s, 100)
                                                             : slab_reclaim(SIZE_MAX);
    st = cache_stats(s);
    size_t resident = slab_set_resident(&set);
    uint64_t allowed = t == DEFRAG ? RESERVE * st.slab_size : 0;
    if (st.bytes_mapped > allowed || resident > allowed)
        print_stats(names[t], &st);
    CHECK(rc >= 0, "%s returned %ld", names[t], rc);
    CHECK(st.bytes_mapped <= allowed, "%s: %llu bytes still mapped right after it (allowed %llu)",
          names[t], (unsigned long long)st.bytes_mapped, (unsigned long long)allowed);
    CHECK(resident <= allowed, "%s: %zu bytes of the slabs still resident right after it",
          names[t], resident);
    CHECK((uint64_t)rc + st.bytes_mapped >= before,
          "%s returned %ld, but bytes_mapped fell from %llu to %llu", names[t], rc,
          (unsigned long long)before, (unsigned long long)st.bytes_mapped);
    CHECK(st.objects_active == 0, "%s: %llu objects active", names[t],
          (unsigned long long)st.objects_active);
    if (t == SHRINK)
        CHECK(st.slabs == 0, "shrink: %llu slabs left", (unsigned long long)st.slabs);
    CHECK(slab_cache_validate(s) == 0, "validate after %s", names[t]);
    printf("shrink_returns_at_once: %s: %llu -> %llu bytes mapped, returned %ld\n", names[t],
           (unsigned long long)before, (unsigned long long)st.bytes_mapped, rc);
    slab_set_free(&set);
}

int main(void)
{
    CHECK(slab_set_purge_delay(PURGE_DELAY_LONG_MS) == 0, "slab_set_purge_delay");
    struct slab_cache *s = slab_cache_create("shrink-at-once", OBJ_SIZE, 0, 0, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    round_trip(s, SHRINK);
    round_trip(s, DEFRAG);
    round_trip(s, RECLAIM);
    slab_cache_destroy(s);
    return 0;
}
