/*
 * decay_reuse_no_faults: memory freed and allocated again within the purge
 * delay is reused as it is, not handed back and faulted in again: the minor
 * page faults (getrusage ru_minflt) of a second allocation round are at most
 * 10% of the first round's.
 *
 * The delay is set to an hour so that the purge thread cannot hand anything back
 * between the rounds on a slow machine.  Round 1 allocates 64 MiB of 256 B
 * objects and writes each; all are freed; round 2 allocates and writes the same
 * number.  Fault counts are taken around the allocation loops only (the
 * pointer array is touched before).  Checked in every build: after the frees
 * the round-1 slabs are still mapped and (at least 90% of them) resident, and
 * every object of round 2 lies in one of them.  The fault bound is checked
 * without a sanitizer only: under TSan the runtime's own memory takes
 * thousands of faults in round 2 on a loaded machine (seen: 8k of 110k with
 * nothing released by the allocator), which says nothing about the allocator.
 */
#define _GNU_SOURCE
#include <sys/resource.h>

#include "slabtest.h"

#define OBJ_SIZE 256
#define TOTAL (64u << 20)
#define NOBJ (TOTAL / OBJ_SIZE)

static void *objs[NOBJ];

static long minflt(void)
{
    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru) == 0, "getrusage: %s", strerror(errno));
    return ru.ru_minflt;
}

static long alloc_round(struct slab_cache *s)
{
    long before = minflt();
    for (size_t i = 0; i < NOBJ; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "slab_alloc: %s", strerror(errno));
        memset(objs[i], 0x6b, OBJ_SIZE);
    }
    return minflt() - before;
}

int main(void)
{
    CHECK(slab_set_purge_delay(PURGE_DELAY_LONG_MS) == 0, "slab_set_purge_delay");
    struct slab_cache *s = slab_cache_create("decay-reuse", OBJ_SIZE, 0, 0, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    memset(objs, 0, sizeof objs);

    long first = alloc_round(s);
    struct slab_cache_stats st = cache_stats(s);
    uint64_t mapped1 = st.bytes_mapped;
    struct slab_set round1;
    slab_set_build(&round1, objs, NOBJ, st.slab_size);
    for (size_t i = 0; i < NOBJ; i++)
        slab_free(s, objs[i]);
    size_t resident = slab_set_resident(&round1), size1 = round1.n * st.slab_size;
    CHECK(cache_stats(s).bytes_mapped == mapped1 && resident >= size1 / 10 * 9,
          "after the frees: %llu bytes mapped (%llu before), %zu of %zu bytes of the slabs "
          "resident: freed memory was handed back within the delay",
          (unsigned long long)cache_stats(s).bytes_mapped, (unsigned long long)mapped1,
          resident, size1);
    long second = alloc_round(s);
    st = cache_stats(s);
    printf("decay_reuse_no_faults: minor faults: round 1 %ld, round 2 %ld; bytes_mapped %llu "
           "then %llu\n", first, second, (unsigned long long)mapped1,
           (unsigned long long)st.bytes_mapped);
    for (size_t i = 0; i < NOBJ; i++)
        CHECK(slab_set_contains(&round1, objs[i]), "round 2 object %p is not in a round-1 slab",
              objs[i]);
    CHECK(first >= (long)(TOTAL / 4096) / 2,
          "round 1 took only %ld faults for %u bytes: the measurement is not meaningful", first,
          TOTAL);
    if (!under_sanitizer())
        CHECK(second * 10 <= first,
              "round 2 took %ld minor faults, round 1 %ld: freed memory was not reused as it was",
              second, first);
    CHECK(st.bytes_mapped <= mapped1, "round 2 mapped more slabs (%llu bytes) than round 1 (%llu)",
          (unsigned long long)st.bytes_mapped, (unsigned long long)mapped1);
    for (size_t i = 0; i < NOBJ; i++)
        slab_free(s, objs[i]);
    CHECK(slab_cache_validate(s) == 0, "validate");
    slab_set_free(&round1);
    slab_cache_destroy(s);
    return 0;
}
