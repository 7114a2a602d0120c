/*
 * odirect: devices opened with O_DIRECT.  For every block size the cache reads
 * the image (whole pages and single blocks), writes blocks back with bh_sync and
 * bdev_sync, and the file holds the data afterwards (read without O_DIRECT, so
 * the data went to the device).  Also opened read-only with O_DIRECT.
 * Exits 77 (skip) only if the filesystem holding $TMPDIR (or /tmp) refuses
 * O_DIRECT altogether (e.g. an old tmpfs), which is a platform property.
 */
#include "bctest.h"

static bool direct_supported(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECT);
    if (fd >= 0)
        close(fd);
    return fd >= 0 || errno != EINVAL;
}

static void run(unsigned bs)
{
    char path[256];
    const uint64_t nblocks = 24 * (4096 / bs);
    img_create(path, nblocks, bs);
    if (!direct_supported(path)) {
        img_remove(path);
        fprintf(stderr, "odirect: O_DIRECT not supported here; skipping\n");
        exit(77);
    }
    struct bcache *bc = xbcache(64 << 10, 3600 * 1000, 50);
    struct bdev *dev = bdev_open(bc, path, bs, O_RDWR | O_DIRECT);
    CHECK(dev, "bdev_open O_DIRECT bs %u: %s", bs, strerror(errno));
    for (uint64_t b = 0; b < nblocks; b += 3) {
        struct buffer_head *bh = bh_read(dev, b);
        CHECK(bh && check_block(bh->b_data, bs, b) == 0, "O_DIRECT read block %llu",
              (unsigned long long)b);
        bh_put(bh);
    }
    for (uint64_t b = 1; b < nblocks; b += 5)
        cache_write_block(dev, b, 3);
    struct buffer_head *bh = bh_get(dev, 2);
    bh_lock(bh);
    fill_block(bh->b_data, bs, 2, 4);
    bh_mark_dirty(bh);
    CHECK(bh_sync(bh) == 0, "bh_sync under the caller's lock: %s", strerror(errno));
    bh_unlock(bh);
    bh_put(bh);
    CHECK(bdev_sync(dev) == 0, "bdev_sync: %s", strerror(errno));
    unsigned char buf[4096];
    for (uint64_t b = 0; b < nblocks; b++) {
        img_read_block(path, b, bs, buf);
        int64_t want = b == 2 ? 4 : (b % 5 == 1 ? 3 : 0);
        CHECK(check_block(buf, bs, b) == want, "block %llu version %lld, want %lld",
              (unsigned long long)b, (long long)check_block(buf, bs, b), (long long)want);
    }
    CHECK(bdev_close(dev) == 0, "close");
    dev = bdev_open(bc, path, bs, O_RDONLY | O_DIRECT);
    CHECK(dev, "bdev_open O_RDONLY|O_DIRECT: %s", strerror(errno));
    bh = bh_read(dev, 2);
    CHECK(bh && check_block(bh->b_data, bs, 2) == 4, "read-only O_DIRECT read");
    bh_put(bh);
    CHECK(bdev_close(dev) == 0, "close");
    CHECK(bcache_destroy(bc) == 0, "destroy");
    img_remove(path);
}

int main(void)
{
    const unsigned sizes[] = {512, 1024, 2048, 4096};
    for (unsigned i = 0; i < 4; i++)
        run(sizes[i]);
    return 0;
}
