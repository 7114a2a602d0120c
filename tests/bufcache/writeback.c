/*
 * bufcache/writeback: the background flusher and writer throttling.
 *
 * Flusher: with dirty_expire_ms = 30, blocks written and never synced reach the
 * file and dirty_pages returns to 0 on their own (waited for, up to 20 s).
 * Throttling: with a 1 MiB limit, dirty_limit_percent = 10 and a 60 s expiry (so
 * the flusher stays out of it), writing 200 distinct pages without syncing
 * keeps dirty pages near 10% of the limit (at most 2x that; above the limit only
 * if writers were throttled: stats.throttled > 0), and every write still reaches the file at bdev_sync.
 */
#include "bctest.h"

#define BS 4096u

static void dirty_blocks(struct bdev *dev, uint64_t first, uint64_t n, uint64_t version,
                         struct bcache *bc, uint64_t *max_dirty)
{
    for (uint64_t b = first; b < first + n; b++) {
        stamp_write(dev, b, version, false);
        if (max_dirty) {
            uint64_t d = stats(bc).dirty_pages;
            if (d > *max_dirty)
                *max_dirty = d;
        }
    }
}

static int file_has(const char *path, uint64_t b, uint64_t version)
{
    static unsigned char buf[BS];
    image_read(path, b * BS, buf, BS);
    uint64_t v = 0;
    return block_stamp_ok(buf, BS, b, &v) && v == version;
}

int main(void)
{
    char path[256];
    image_create(path, 2u << 20, 0);

    struct bcache *bc = xbcache(0, 30, 50);
    struct bdev *dev = xopen(bc, path, BS, O_RDWR);
    dirty_blocks(dev, 0, 10, 1, bc, NULL);
    double end = now_seconds() + 20;
    while (stats(bc).dirty_pages && now_seconds() < end)
        usleep(5000);
    CHECK(stats(bc).dirty_pages == 0, "the flusher left dirty pages");
    for (uint64_t b = 0; b < 10; b++)
        CHECK(file_has(path, b, 1), "block %llu not written by the flusher",
              (unsigned long long)b);
    CHECK(stats(bc).writes >= 10, "writes not counted");
    CHECK(bdev_close(dev) == 0 && bcache_destroy(bc) == 0, "close/destroy");

    bc = xbcache(1u << 20, 60000, 10);
    dev = xopen(bc, path, BS, O_RDWR);
    uint64_t max_dirty = 0;
    dirty_blocks(dev, 100, 200, 2, bc, &max_dirty);
    struct bcache_stats st = stats(bc);
    uint64_t limit_pages = (1u << 20) / 4096 / 10;
    /* The flusher also writes above a background threshold, and may keep up on its
     * own (it does under TSan, where writers are slow): then no writer needed
     * throttling, and dirty pages never passed the limit. */
    CHECK(st.throttled > 0 || max_dirty <= limit_pages, "dirty pages reached %llu over the "
          "limit of %llu without throttling", (unsigned long long)max_dirty,
          (unsigned long long)limit_pages);
    CHECK(max_dirty <= 2 * limit_pages + 1, "dirty pages reached %llu (limit about %llu)",
          (unsigned long long)max_dirty, (unsigned long long)limit_pages);
    CHECK(bdev_sync(dev) == 0, "bdev_sync");
    for (uint64_t b = 100; b < 300; b++)
        CHECK(file_has(path, b, 2), "block %llu lost", (unsigned long long)b);
    CHECK(bdev_close(dev) == 0 && bcache_destroy(bc) == 0, "close/destroy");
    image_remove(path);
    printf("writeback: ok (max %llu dirty pages, throttled %llu times)\n",
           (unsigned long long)max_dirty, (unsigned long long)st.throttled);
    return 0;
}
