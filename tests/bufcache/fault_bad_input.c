/*
 * bufcache/fault_bad_input: the public fault-injection API
 * (<slabdefrag/buffer_fault.h>) refuses bad input with EINVAL and changes
 * nothing, and bdev_fault_clear really disarms.  Public headers only.
 *
 * - bdev_fault_inject: NULL handle, op BDEV_IO_NR (and beyond), nth 0, error 0
 *   or negative without BDEV_FAULT_SHORT -> -EINVAL + errno EINVAL;
 * - bdev_fault_clear(NULL) -> -EINVAL + EINVAL;
 * - bdev_io_count: NULL handle or an unknown op -> 0 + EINVAL;
 * - after all of those, reads and a sync of the device succeed (no fault was
 *   armed by a refused call), and the read count went up by one per page read;
 * - a fault armed on the next read and then cleared never fires.
 */
#include "bctest.h"

#include <slabdefrag/buffer_fault.h>

#define BS 4096u /* one block per page: one read per cold bh_read */

static void expect_einval(int rc, const char *what)
{
    CHECK(rc == -EINVAL && errno == EINVAL, "%s: rc %d, errno %d (want -EINVAL, EINVAL)", what,
          rc, errno);
}

static void read_ok(struct bdev *dev, uint64_t b)
{
    struct buffer_head *bh = bh_read(dev, b);
    CHECK(bh, "bh_read(%llu): %s", (unsigned long long)b, strerror(errno));
    bh_put(bh);
}

int main(void)
{
    char path[256];
    image_create(path, 16 * BS, 1);
    struct bcache *bc = xbcache(0, 60000, 50);
    struct bdev *dev = xopen(bc, path, BS, O_RDWR);

    errno = 0;
    expect_einval(bdev_fault_inject(NULL, BDEV_IO_READ, 1, EIO, 0), "NULL handle");
    errno = 0;
    expect_einval(bdev_fault_inject(dev, BDEV_IO_NR, 1, EIO, 0), "op BDEV_IO_NR");
    errno = 0;
    expect_einval(bdev_fault_inject(dev, (enum bdev_io_op)1000, 1, EIO, 0), "op 1000");
    errno = 0;
    expect_einval(bdev_fault_inject(dev, BDEV_IO_READ, 0, EIO, 0), "nth 0");
    errno = 0;
    expect_einval(bdev_fault_inject(dev, BDEV_IO_READ, 1, 0, 0), "error 0");
    errno = 0;
    expect_einval(bdev_fault_inject(dev, BDEV_IO_WRITE, 1, -EIO, BDEV_FAULT_STICKY),
                  "negative error");
    errno = 0;
    expect_einval(bdev_fault_clear(NULL), "bdev_fault_clear(NULL)");
    errno = 0;
    CHECK(bdev_io_count(NULL, BDEV_IO_READ) == 0 && errno == EINVAL,
          "bdev_io_count(NULL): errno %d", errno);
    errno = 0;
    CHECK(bdev_io_count(dev, BDEV_IO_NR) == 0 && errno == EINVAL,
          "bdev_io_count(op BDEV_IO_NR): errno %d", errno);

    /* Nothing was armed: reads and a write + sync go through. */
    uint64_t reads0 = bdev_io_count(dev, BDEV_IO_READ);
    for (uint64_t b = 0; b < 4; b++)
        read_ok(dev, b);
    CHECK(bdev_io_count(dev, BDEV_IO_READ) == reads0 + 4, "4 cold reads counted %llu",
          (unsigned long long)(bdev_io_count(dev, BDEV_IO_READ) - reads0));
    cache_write_block(dev, 0, 1);
    CHECK(bdev_sync(dev) == 0, "sync after refused injections: %s", strerror(errno));

    /* Armed, then cleared: the next read succeeds. */
    CHECK(bdev_fault_inject(dev, BDEV_IO_READ, 1, EIO, BDEV_FAULT_STICKY) == 0, "inject");
    CHECK(bdev_fault_clear(dev) == 0, "bdev_fault_clear");
    read_ok(dev, 8);
    read_ok(dev, 9);

    CHECK(bdev_close(dev) == 0 && bcache_destroy(bc) == 0, "close/destroy");
    image_remove(path);
    return 0;
}
