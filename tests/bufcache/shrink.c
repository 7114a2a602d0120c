/*
 * bufcache/shrink: bcache_shrink frees what is unreferenced and nothing else.
 *
 * 2 MiB of an image is cached (1 KiB blocks), a quarter of it dirtied, and
 * three buffer heads are held.  bcache_shrink(SIZE_MAX) must: return the bytes
 * it freed (> 0, and memory_used drops by at least that much minus what the
 * slab layer reports separately); write the dirty pages first (no dirty pages
 * left, the file holds every write; a dirty page is never dropped); keep exactly
 * the held pages (cached_pages == 3, their data intact); count evictions.  A
 * small target frees about that much, not everything.  Afterwards reads work and
 * return the file's data.
 */
#include "bctest.h"

#define BS      1024u
#define NBLOCKS 2048u

int main(void)
{
    char path[256];
    image_create(path, (size_t)NBLOCKS * BS, 0x5421);
    static unsigned char shadow[NBLOCKS * BS];
    image_read(path, 0, shadow, sizeof shadow);
    struct bcache *bc = xbcache(8u << 20, 60000, 90);
    struct bdev *dev = xopen(bc, path, BS, O_RDWR);

    for (uint64_t b = 0; b < NBLOCKS; b++) {
        struct buffer_head *bh = bh_read(dev, b);
        CHECK(bh, "bh_read: %s", strerror(errno));
        if (b % 4 == 0) {
            bh_lock(bh);
            memset(bh->b_data, (int)(b & 0xff), 100);
            memset(shadow + b * BS, (int)(b & 0xff), 100);
            bh_mark_dirty(bh);
            bh_unlock(bh);
        }
        bh_put(bh);
    }
    struct bcache_stats s0 = stats(bc);
    CHECK(s0.cached_pages == NBLOCKS * BS / 4096, "%llu pages cached",
          (unsigned long long)s0.cached_pages);
    CHECK(s0.dirty_pages > 0, "nothing dirty");

    /* a small target frees about that much */
    long small = bcache_shrink(bc, 64u << 10);
    struct bcache_stats s1 = stats(bc);
    CHECK(small >= 64 << 10, "shrink(64 KiB) freed %ld", small);
    CHECK(s1.cached_pages >= s0.cached_pages / 2, "shrink(64 KiB) dropped %llu of %llu pages",
          (unsigned long long)(s0.cached_pages - s1.cached_pages),
          (unsigned long long)s0.cached_pages);

    struct buffer_head *held[3] = {bh_read(dev, 1), bh_read(dev, 1000), bh_read(dev, 2044)};
    CHECK(held[0] && held[1] && held[2], "bh_read");
    long freed = bcache_shrink(bc, SIZE_MAX);
    struct bcache_stats s2 = stats(bc);
    CHECK(freed > 0, "bcache_shrink returned %ld", freed);
    CHECK(s2.memory_used < s1.memory_used, "memory_used did not drop");
    CHECK(s2.dirty_pages == 0, "%llu dirty pages survive a full shrink",
          (unsigned long long)s2.dirty_pages);
    CHECK(s2.cached_pages == 3, "%llu pages cached, expected the 3 referenced",
          (unsigned long long)s2.cached_pages);
    CHECK(s2.evictions >= s0.cached_pages - 3, "evictions %llu",
          (unsigned long long)s2.evictions);
    for (int k = 0; k < 3; k++)
        CHECK(memcmp(held[k]->b_data, shadow + held[k]->b_blocknr * BS, BS) == 0,
              "held block changed");
    static unsigned char file[NBLOCKS * BS];
    image_read(path, 0, file, sizeof file);
    CHECK(memcmp(file, shadow, sizeof file) == 0, "a dirty page was dropped, not written");
    for (int k = 0; k < 3; k++)
        bh_put(held[k]);

    for (uint64_t b = 0; b < NBLOCKS; b += 97) {
        struct buffer_head *bh = bh_read(dev, b);
        CHECK(bh && memcmp(bh->b_data, shadow + b * BS, BS) == 0, "re-read block %llu",
              (unsigned long long)b);
        bh_put(bh);
    }
    CHECK(bcache_validate(bc) == 0, "validate");
    CHECK(bcache_destroy(bc) == 0, "destroy");
    image_remove(path);
    printf("shrink: ok (freed %ld then %ld bytes)\n", small, freed);
    return 0;
}
