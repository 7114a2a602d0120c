/*
 * bufcache/blockdev: bdev_open on a real block device (a loop device).
 *
 * Attaches a patterned 1 MiB image to a free loop device (LOOP_CTL_GET_FREE,
 * LOOP_SET_FD, autoclear), then for 1024 and 4096-byte blocks, buffered and
 * O_DIRECT: the size comes from the device (BLKGETSIZE64: 1 MiB / block size
 * blocks, the next one EINVAL), reads return the device's bytes, writes +
 * bdev_sync reach the device.  Exit 77 (skip) when loop devices cannot be set up here (no
 * /dev/loop-control or no privilege): the only platform feature this needs.
 */
#include "bctest.h"

#include <linux/loop.h>
#include <sys/ioctl.h>

#define SIZE (1u << 20)

static int attach_loop(const char *image, char *dev_path)
{
    int ctl = open("/dev/loop-control", O_RDWR);
    if (ctl < 0)
        return -1;
    int img = open(image, O_RDWR);
    CHECK(img >= 0, "open image");
    int loop = -1;
    for (int attempt = 0; attempt < 20 && loop < 0; attempt++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0)
            break;
        snprintf(dev_path, 64, "/dev/loop%d", n);
        int fd = open(dev_path, O_RDWR);
        if (fd < 0)
            continue;
        if (ioctl(fd, LOOP_SET_FD, img) == 0) {
            struct loop_info64 info = {.lo_flags = LO_FLAGS_AUTOCLEAR};
            ioctl(fd, LOOP_SET_STATUS64, &info);
            loop = fd; /* keeps the device attached until closed */
        } else {
            close(fd); /* raced with another user of that device: try again */
        }
    }
    close(img);
    close(ctl);
    return loop;
}

static void run(const char *dev_path, const char *image, unsigned bs, int flags, uint64_t version)
{
    static unsigned char expect[SIZE];
    int rfd = open(dev_path, O_RDONLY);
    CHECK(rfd >= 0 && pread(rfd, expect, SIZE, 0) == SIZE, "read %s", dev_path);
    close(rfd);
    if (version == 1)
        for (uint64_t k = 0; k < SIZE; k++)
            CHECK(expect[k] == pattern_byte(0xb10c, k), "the loop device does not show the image");
    struct bcache *bc = xbcache(0, 0, 0);
    struct bdev *dev = bdev_open(bc, dev_path, bs, O_RDWR | flags);
    if (!dev && flags && errno == EINVAL) { /* O_DIRECT refused by the device */
        bcache_destroy(bc);
        printf("blockdev: %s O_DIRECT bs %u refused (EINVAL)\n", dev_path, bs);
        return;
    }
    CHECK(dev, "bdev_open(%s, %u, %#x): %s", dev_path, bs, flags, strerror(errno));
    uint64_t n = SIZE / bs;
    errno = 0;
    CHECK(!bh_read(dev, n) && errno == EINVAL, "block %llu past the device end",
          (unsigned long long)n);
    for (uint64_t b = 0; b < n; b += 37) {
        struct buffer_head *bh = bh_read(dev, b);
        CHECK(bh, "bh_read(%llu): %s", (unsigned long long)b, strerror(errno));
        CHECK(memcmp(bh->b_data, expect + b * bs, bs) == 0,
              "block %llu differs from the device's bytes", (unsigned long long)b);
        bh_lock(bh);
        block_fill(bh->b_data, bs, b, version);
        bh_mark_dirty(bh);
        bh_unlock(bh);
        bh_put(bh);
    }
    CHECK(bdev_sync(dev) == 0, "bdev_sync: %s", strerror(errno));
    CHECK(bdev_close(dev) == 0 && bcache_destroy(bc) == 0, "close/destroy");
    /* the device is a view of the image: read the stamps back through the device */
    int fd = open(dev_path, O_RDONLY);
    CHECK(fd >= 0, "open %s", dev_path);
    static unsigned char buf[4096];
    for (uint64_t b = 0; b < n; b += 37) {
        CHECK(pread(fd, buf, bs, (off_t)(b * bs)) == (ssize_t)bs, "pread device");
        uint64_t v = 0;
        CHECK(block_stamp_ok(buf, bs, b, &v) && v == version, "block %llu not on the device",
              (unsigned long long)b);
    }
    close(fd);
    (void)image;
}

int main(void)
{
    char image[256], dev_path[64];
    image_create(image, SIZE, 0xb10c);
    int loop = attach_loop(image, dev_path);
    if (loop < 0) {
        printf("blockdev: cannot attach a loop device here (%s): skipped\n", strerror(errno));
        image_remove(image);
        return 77;
    }
    run(dev_path, image, 1024, 0, 1);
    run(dev_path, image, 4096, 0, 2);
    run(dev_path, image, 1024, O_DIRECT, 3);
    run(dev_path, image, 4096, O_DIRECT, 4);
    close(loop);
    image_remove(image);
    printf("blockdev: ok on %s\n", dev_path);
    return 0;
}
