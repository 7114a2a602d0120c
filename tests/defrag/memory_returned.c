/*
 * memory_returned: defragmentation hands memory back to the OS: bytes_mapped
 * and the process RSS fall, as in Redis' active-defrag test.
 *
 * 64 MiB of 256 B movable objects (16 MiB under sanitizers), every byte
 * written; a random 90% freed (seeded), which leaves nearly every slab partial:
 * bytes_mapped stays near 64 MiB.  One slab_cache_defrag(s, 50), then:
 *   - bytes_mapped <= the slabs the live objects need (+2) and fell by at
 *     least 3/4 of its value;
 *   - the trigger returned at least the fall of bytes_mapped;
 *   - RSS fell by at least 3/4 of the fall of bytes_mapped (not under
 *     sanitizers, whose allocators move RSS on their own);
 *   - every live object is intact, objects_active == the owner's count.
 */
#include "defragtest.h"

#define OBJ 256

int main(int argc, char **argv)
{
    dt_watchdog(60);
    dt_no_decay_release();
    uint64_t seed = test_seed(argc, argv, 1, 0x3e3035);
    size_t total = under_sanitizer() ? (16u << 20) : (64u << 20);
    size_t nslots = total / OBJ;
    struct owner o;
    owner_init(&o, "mem-returned", OBJ, nslots, 0);
    owner_fill(&o, nslots);
    uint64_t rng = seed;
    for (size_t i = 0; i < nslots; i++)
        if (xorshift64(&rng) % 10 != 0)
            owner_free_slot(&o, i);
    size_t live = owner_verify(&o, "fragmented");
    slab_cache_defrag(o.s, 0); /* give back this thread's slabs; moves nothing */
    struct slab_cache_stats before = cache_stats(o.s);
    size_t rss_before = proc_rss_bytes();
    CHECK(before.bytes_mapped >= total * 3 / 4, "seed %#llx: only %llu bytes mapped after a "
          "random 90%% free: not fragmented?", (unsigned long long)seed,
          (unsigned long long)before.bytes_mapped);

    long rel = slab_cache_defrag(o.s, 50);
    struct slab_cache_stats after = cache_stats(o.s);
    size_t rss_after = proc_rss_bytes();
    uint64_t needed = (live + after.objects_per_slab - 1) / after.objects_per_slab;
    uint64_t fall = before.bytes_mapped - after.bytes_mapped;
    printf("memory_returned: %zu live objects; bytes_mapped %.1f -> %.1f MiB; RSS %.1f -> %.1f MiB;"
           " returned %.1f MiB\n",
           live, before.bytes_mapped / 1048576.0, after.bytes_mapped / 1048576.0,
           rss_before / 1048576.0, rss_after / 1048576.0, rel / 1048576.0);
    if (after.slabs > needed + 2)
        print_stats("after", &after);
    CHECK(after.slabs <= needed + 2, "seed %#llx: %llu slabs for %zu objects (%llu needed)",
          (unsigned long long)seed, (unsigned long long)after.slabs, live,
          (unsigned long long)needed);
    CHECK(after.bytes_mapped <= before.bytes_mapped / 4, "bytes_mapped fell by %llu only",
          (unsigned long long)fall);
    CHECK(rel >= 0 && (uint64_t)rel >= fall, "returned %ld, bytes_mapped fell by %llu", rel,
          (unsigned long long)fall);
    if (!under_sanitizer())
        CHECK(rss_before >= rss_after && rss_before - rss_after >= fall / 4 * 3,
              "RSS fell by %zd bytes, bytes_mapped by %llu: memory not handed back",
              (ssize_t)(rss_before - rss_after), (unsigned long long)fall);
    CHECK(owner_verify(&o, "after") == live, "objects changed");
    CHECK(after.objects_active == live, "objects_active %llu, owner %zu",
          (unsigned long long)after.objects_active, live);
    owner_check_results(&o, "after");
    owner_destroy(&o);
    return 0;
}
