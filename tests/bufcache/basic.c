/*
 * bufcache/basic: the core API on every block size.
 *
 * For 512, 1024, 2048 and 4096-byte blocks over a patterned 256 KiB image:
 * bh_read returns the image's bytes with the right b_blocknr/b_size; blocks of
 * one 4 KiB page share its frame (several buffer heads per page); a second read
 * is a hit and issues no device read; bh_get + fill + bh_mark_uptodate is read
 * back without I/O; bh_mark_dirty + bdev_sync and bh_sync reach the file; the
 * statistics count hits, misses, reads, writes and live buffer heads; after
 * bdev_close the buffer heads are gone; bcache_validate passes throughout.
 */
#include "bctest.h"

#define IMAGE_SIZE (256u << 10)

static void check_block_is_image(struct buffer_head *bh, uint64_t seed)
{
    const unsigned char *d = bh->b_data;
    uint64_t base = bh->b_blocknr * bh->b_size;
    for (uint32_t i = 0; i < bh->b_size; i++)
        CHECK(d[i] == pattern_byte(seed, base + i), "block %llu byte %u differs",
              (unsigned long long)bh->b_blocknr, i);
}

static void run(unsigned bs)
{
    char path[256];
    uint64_t seed = 0x1234 + bs;
    image_create(path, IMAGE_SIZE, seed);
    struct bcache *bc = xbcache(0, 0, 0);
    struct bdev *dev = xopen(bc, path, bs, O_RDWR);
    uint64_t nblocks = IMAGE_SIZE / bs;
    unsigned per_page = 4096 / bs;

    /* reads return the image, with the right geometry */
    for (uint64_t b = 0; b < nblocks; b += 7) {
        struct buffer_head *bh = bh_read(dev, b);
        CHECK(bh, "bh_read(%llu): %s", (unsigned long long)b, strerror(errno));
        CHECK(bh->b_blocknr == b && bh->b_size == bs, "geometry of block %llu",
              (unsigned long long)b);
        CHECK(((uintptr_t)bh->b_data & (bs - 1)) == 0, "b_data not block aligned");
        check_block_is_image(bh, seed);
        bh_put(bh);
    }

    /* blocks of one page share its frame */
    struct buffer_head *first = bh_read(dev, 8 * per_page);
    CHECK(first, "bh_read: %s", strerror(errno));
    for (unsigned k = 1; k < per_page; k++) {
        struct buffer_head *bh = bh_read(dev, 8 * per_page + k);
        CHECK(bh, "bh_read: %s", strerror(errno));
        CHECK((char *)bh->b_data == (char *)first->b_data + (size_t)k * bs,
              "block %u of a page is not at offset %u of its frame", k, k * bs);
        bh_put(bh);
    }
    bh_put(first);

    /* a hit issues no read */
    struct bcache_stats s0 = stats(bc);
    struct buffer_head *bh = bh_read(dev, 0);
    CHECK(bh, "bh_read: %s", strerror(errno));
    bh_put(bh);
    struct bcache_stats s1 = stats(bc);
    CHECK(s1.reads == s0.reads, "a cached block was read again");
    CHECK(s1.hits == s0.hits + 1, "hits %llu -> %llu", (unsigned long long)s0.hits,
          (unsigned long long)s1.hits);
    CHECK(s1.buffer_heads_live > 0 && s1.cached_pages > 0, "no live buffer heads/pages");
    CHECK(s1.memory_used <= s1.memory_limit, "memory_used over the limit");

    /* getblk: fill without reading, then read back without I/O */
    uint64_t gb = nblocks - 1;
    bh = bh_get(dev, gb);
    CHECK(bh, "bh_get: %s", strerror(errno));
    bh_lock(bh);
    block_fill(bh->b_data, bs, gb, 77);
    bh_mark_uptodate(bh);
    bh_unlock(bh);
    bh_put(bh);
    s0 = stats(bc);
    bh = bh_read(dev, gb);
    CHECK(bh && block_stamp_ok(bh->b_data, bs, gb, NULL), "bh_get data lost");
    bh_put(bh);
    CHECK(stats(bc).reads == s0.reads, "an uptodate block was read from the device");

    /* write + bdev_sync reaches the file; so does bh_sync */
    for (uint64_t b = 3; b < nblocks; b += 5)
        stamp_write(dev, b, 1, true);
    CHECK(stats(bc).dirty_pages > 0, "no dirty pages after writes");
    CHECK(bcache_validate(bc) == 0, "validate with dirty pages");
    CHECK(bdev_sync(dev) == 0, "bdev_sync: %s", strerror(errno));
    CHECK(stats(bc).dirty_pages == 0, "dirty pages after bdev_sync");
    unsigned char *buf = malloc(bs);
    for (uint64_t b = 3; b < nblocks; b += 5) {
        image_read(path, b * bs, buf, bs);
        uint64_t v = 0;
        CHECK(block_stamp_ok(buf, bs, b, &v) && v == 1, "block %llu not in the file",
              (unsigned long long)b);
    }
    bh = bh_read(dev, 1);
    bh_lock(bh);
    block_fill(bh->b_data, bs, 1, 9);
    bh_mark_dirty(bh);
    bh_unlock(bh);
    CHECK(bh_sync(bh) == 0, "bh_sync: %s", strerror(errno));
    bh_put(bh);
    image_read(path, bs, buf, bs);
    CHECK(block_stamp_ok(buf, bs, 1, NULL), "bh_sync did not write the block");
    /* a neighbour in the same page that was not dirtied is untouched */
    if (per_page > 1) {
        image_read(path, 2 * (uint64_t)bs, buf, bs);
        for (uint32_t i = 0; i < bs; i++)
            CHECK(buf[i] == pattern_byte(seed, 2 * (uint64_t)bs + i), "clean neighbour changed");
    }
    CHECK(stats(bc).writes > 0, "no writes counted");
    CHECK(bcache_validate(bc) == 0, "validate");

    CHECK(bdev_close(dev) == 0, "bdev_close: %s", strerror(errno));
    struct bcache_stats s2 = stats(bc);
    CHECK(s2.buffer_heads_live == 0 && s2.cached_pages == 0,
          "after close: %llu buffer heads, %llu pages", (unsigned long long)s2.buffer_heads_live,
          (unsigned long long)s2.cached_pages);
    CHECK(bcache_destroy(bc) == 0, "bcache_destroy");
    free(buf);
    image_remove(path);
}

int main(void)
{
    static const unsigned sizes[] = {512, 1024, 2048, 4096};
    for (unsigned i = 0; i < 4; i++)
        run(sizes[i]);
    printf("basic: ok\n");
    return 0;
}
