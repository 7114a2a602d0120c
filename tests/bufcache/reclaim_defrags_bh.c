/*
 * reclaim_defrags_bh: allocation-path reclaim shrinks the buffer_head slabs —
 * when evicting pages leaves most buffer_head slab memory as fragmentation,
 * the reclaim that a full cache runs inside bh_read also defragments the
 * buffer_head cache (no bcache_shrink, no background defragmenter).
 *
 * A 6 MiB bcache reads a 4 MiB image with 1 KiB blocks (rings of 4 buffer heads
 * per page), then reads an 8 MiB image with 4 KiB blocks (one buffer head per
 * page) in chunks of 64 blocks, reading every eighth page of the first image
 * again after each chunk: CLOCK spares those and evicts the rest, so the
 * buffer head count falls well below half the slabs' capacity while every
 * slab keeps some objects and none empties by itself.  Checks: the
 * buffer_head cache ran defrag passes and freed slabs during the reads; at the
 * end its slabs hold at least a third of their capacity; all data reads back
 * right and the caches validate.  bcache_shrink_split then reports page bytes
 * equal to the fall of memory_used and slab bytes equal to the fall of the
 * buffer_head cache's bytes_mapped.
 */
#include "bctest.h"

#define SEED_A 0xa11ull
#define SEED_B 0xb22ull

static struct slab_cache_stats sstats(struct slab_cache *s)
{
    struct slab_cache_stats st;
    CHECK(slab_cache_get_stats(s, &st) == 0, "slab stats");
    return st;
}

int main(void)
{
    char a_path[256], b_path[256];
    image_create(a_path, 4u << 20, SEED_A);
    image_create(b_path, 8u << 20, SEED_B);
    struct bcache *bc = xbcache(6u << 20, 60000, 50);
    struct bdev *a = xopen(bc, a_path, 1024, O_RDONLY);
    struct bdev *b = xopen(bc, b_path, 4096, O_RDONLY);
    struct slab_cache *s = slab_cache_find("buffer_head");
    CHECK(s, "no buffer_head cache");

    verify_block_range(a, 1024, SEED_A, 0, 4096, 1);
    struct slab_cache_stats before = sstats(s);
    for (uint64_t chunk = 0; chunk < 2048; chunk += 64) {
        verify_block_range(b, 4096, SEED_B, chunk, chunk + 64, 1);
        verify_block_range(a, 1024, SEED_A, 0, 4096, 32); /* every eighth page of A: a hit */
    }
    CHECK(slab_cache_defrag(s, 0) >= 0, "defrag(0)"); /* this thread's slabs back: exact stats */
    struct slab_cache_stats after = sstats(s);
    printf("buffer_head: passes +%llu, slabs freed +%llu, %llu -> %llu slabs, %llu/%llu objects\n",
           (unsigned long long)(after.defrag_passes - before.defrag_passes - 1),
           (unsigned long long)(after.defrag_slabs_freed - before.defrag_slabs_freed),
           (unsigned long long)before.slabs, (unsigned long long)after.slabs,
           (unsigned long long)after.objects_active, (unsigned long long)after.objects_total);
    CHECK(stats(bc).evictions > 0, "the cache never had to evict");
    CHECK(after.defrag_passes > before.defrag_passes + 1,
          "allocation-path reclaim never defragmented buffer_head");
    CHECK(after.defrag_slabs_freed > before.defrag_slabs_freed,
          "allocation-path reclaim freed no buffer_head slab");
    CHECK(after.objects_active * 3 >= after.objects_total,
          "buffer_head slabs left sparse: %llu of %llu objects", 
          (unsigned long long)after.objects_active, (unsigned long long)after.objects_total);
    verify_block_range(a, 1024, SEED_A, 0, 4096, 3);
    verify_block_range(b, 4096, SEED_B, 0, 2048, 5);
    CHECK(slab_cache_validate(s) == 0 && bcache_validate(bc) == 0, "inconsistent");

    /* bcache_shrink_split: page bytes and slab bytes, apart. */
    int64_t used0 = (int64_t)stats(bc).memory_used;
    CHECK(slab_cache_defrag(s, 0) >= 0, "defrag(0)");
    uint64_t mapped0 = sstats(s).bytes_mapped;
    struct bcache_shrink_result res;
    long rc = bcache_shrink_split(bc, SIZE_MAX, &res);
    int64_t used1 = (int64_t)stats(bc).memory_used;
    uint64_t mapped1 = sstats(s).bytes_mapped;
    printf("bcache_shrink_split: page bytes %llu (memory_used %lld -> %lld), slab bytes %llu "
           "(bytes_mapped %llu -> %llu)\n", (unsigned long long)res.page_bytes,
           (long long)used0, (long long)used1, (unsigned long long)res.slab_bytes,
           (unsigned long long)mapped0, (unsigned long long)mapped1);
    CHECK(rc == (long)res.page_bytes, "returned %ld, page bytes %llu", rc,
          (unsigned long long)res.page_bytes);
    CHECK(res.page_bytes == (uint64_t)(used0 - used1), "page bytes %llu, memory_used fell %lld",
          (unsigned long long)res.page_bytes, (long long)(used0 - used1));
    CHECK(res.slab_bytes == mapped0 - mapped1 && res.slab_bytes > 0,
          "slab bytes %llu, buffer_head bytes_mapped fell %llu",
          (unsigned long long)res.slab_bytes, (unsigned long long)(mapped0 - mapped1));
    CHECK(bcache_shrink_split(NULL, 0, &res) == -EINVAL && errno == EINVAL, "NULL cache");
    CHECK(bcache_shrink_split(bc, 0, NULL) == -EINVAL && errno == EINVAL, "NULL result");
    CHECK(bcache_destroy(bc) == 0, "destroy");
    image_remove(a_path);
    image_remove(b_path);
    return 0;
}
