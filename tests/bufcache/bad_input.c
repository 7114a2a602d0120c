/*
 * bufcache/bad_input: every misuse gets a clear error, never a crash or a change.
 *
 * - bcache_create: dirty_limit_percent > 100 or memory_limit below the minimum
 *   -> NULL + EINVAL.
 * - bdev_open: block sizes 0, 256, 1000, 3072, 8192 -> EINVAL; bad flags -> EINVAL;
 *   a missing file -> ENOENT; the same file with another block size -> EBUSY.
 * - bh_read / bh_get of the first block past the end (and UINT64_MAX) -> EINVAL.
 * - writing a read-only device: bh_mark_dirty sets EROFS, the next bh_sync /
 *   bdev_sync / bdev_close reports -EROFS, and the file is unchanged.
 * - bdev_close / bcache_destroy with a referenced buffer head -> -EBUSY, nothing
 *   closed; after bh_put they succeed.
 */
#include "bctest.h"

#define IMAGE_SIZE (64u << 10)

static void bad_configs(void)
{
    struct bcache_config cfg = {.dirty_limit_percent = 101};
    errno = 0;
    CHECK(!bcache_create(&cfg) && errno == EINVAL, "dirty_limit_percent 101 accepted");
    cfg = (struct bcache_config){.memory_limit = BCACHE_MIN_MEMORY_LIMIT - 1};
    errno = 0;
    CHECK(!bcache_create(&cfg) && errno == EINVAL, "tiny memory_limit accepted");
}

static void bad_opens(struct bcache *bc, const char *path)
{
    static const unsigned bad[] = {0, 256, 1000, 3072, 8192, 1u << 20};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        CHECK(!bdev_open(bc, path, bad[i], O_RDWR) && errno == EINVAL,
              "block size %u accepted (errno %d)", bad[i], errno);
    }
    errno = 0;
    CHECK(!bdev_open(bc, path, 1024, O_WRONLY) && errno == EINVAL, "O_WRONLY accepted");
    errno = 0;
    CHECK(!bdev_open(bc, path, 1024, O_RDWR | O_CREAT) && errno == EINVAL, "O_CREAT accepted");
    errno = 0;
    CHECK(!bdev_open(bc, "/nonexistent/bctest-image", 1024, O_RDONLY) && errno == ENOENT,
          "missing file: errno %d", errno);
    errno = 0;
    CHECK(!bdev_open(NULL, path, 1024, O_RDONLY) && errno == EINVAL, "NULL bcache accepted");

    struct bdev *a = xopen(bc, path, 1024, O_RDWR);
    errno = 0;
    CHECK(!bdev_open(bc, path, 2048, O_RDWR) && errno == EBUSY,
          "same file, other block size: errno %d", errno);
    CHECK(bdev_close(a) == 0, "close");
}

static void past_the_end(struct bcache *bc, const char *path)
{
    struct bdev *dev = xopen(bc, path, 2048, O_RDWR);
    uint64_t n = IMAGE_SIZE / 2048;
    struct buffer_head *bh = bh_read(dev, n - 1);
    CHECK(bh, "last block: %s", strerror(errno));
    bh_put(bh);
    uint64_t bad[] = {n, n + 1, UINT64_MAX, UINT64_MAX / 2048};
    for (unsigned i = 0; i < 4; i++) {
        errno = 0;
        CHECK(!bh_read(dev, bad[i]) && errno == EINVAL, "bh_read(%llu) errno %d",
              (unsigned long long)bad[i], errno);
        errno = 0;
        CHECK(!bh_get(dev, bad[i]) && errno == EINVAL, "bh_get(%llu) errno %d",
              (unsigned long long)bad[i], errno);
    }
    errno = 0;
    CHECK(!bh_read(NULL, 0) && errno == EINVAL, "bh_read(NULL)");
    bh_put(NULL); /* does nothing */
    CHECK(bdev_close(dev) == 0, "close");
}

static void read_only(struct bcache *bc, const char *path, uint64_t seed)
{
    struct bdev *dev = xopen(bc, path, 1024, O_RDONLY);
    struct buffer_head *bh = bh_read(dev, 5);
    CHECK(bh, "bh_read: %s", strerror(errno));
    bh_lock(bh);
    memset(bh->b_data, 0xAB, 1024);
    errno = 0;
    bh_mark_dirty(bh);
    CHECK(errno == EROFS, "bh_mark_dirty on a read-only device: errno %d", errno);
    bh_unlock(bh);
    int rc = bh_sync(bh);
    CHECK(rc == -EROFS, "bh_sync on read-only: %d", rc);
    bh_put(bh);
    rc = bdev_sync(dev);
    CHECK(rc == -EROFS, "bdev_sync after a refused write: %d", rc);
    CHECK(stats(bc).dirty_pages == 0, "a read-only device has dirty pages");

    /* the refused change is invalidated: a re-read sees the device again */
    bh = bh_read(dev, 5);
    CHECK(bh, "re-read: %s", strerror(errno));
    const unsigned char *d = bh->b_data;
    for (unsigned i = 0; i < 1024; i++)
        CHECK(d[i] == pattern_byte(seed, 5 * 1024 + i), "refused change still visible");
    bh_put(bh);
    CHECK(bdev_close(dev) == 0, "close after the error was reported");

    unsigned char buf[1024];
    image_read(path, 5 * 1024, buf, sizeof buf);
    for (unsigned i = 0; i < sizeof buf; i++)
        CHECK(buf[i] == pattern_byte(seed, 5 * 1024 + i), "read-only image changed");
}

static void busy(struct bcache *bc, const char *path)
{
    struct bdev *dev = xopen(bc, path, 4096, O_RDWR);
    struct buffer_head *bh = bh_read(dev, 2);
    CHECK(bh, "bh_read: %s", strerror(errno));
    errno = 0;
    CHECK(bdev_close(dev) == -EBUSY && errno == EBUSY, "close with a referenced bh");
    errno = 0;
    CHECK(bcache_destroy(bc) == -EBUSY && errno == EBUSY, "destroy with a referenced bh");
    /* still usable */
    struct buffer_head *again = bh_read(dev, 2);
    CHECK(again == bh, "the handle was damaged by a refused close");
    bh_put(again);
    bh_put(bh);
    CHECK(bdev_close(dev) == 0, "close after bh_put");
}

int main(void)
{
    char path[256];
    uint64_t seed = 0xbad1;
    image_create(path, IMAGE_SIZE, seed);
    bad_configs();
    struct bcache *bc = xbcache(0, 0, 0);
    bad_opens(bc, path);
    past_the_end(bc, path);
    read_only(bc, path, seed);
    busy(bc, path);
    CHECK(bcache_destroy(bc) == 0, "destroy");
    image_remove(path);
    printf("bad_input: ok\n");
    return 0;
}
