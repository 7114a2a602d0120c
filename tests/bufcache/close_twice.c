/*
 * close_twice: bdev_close of a handle that is already closed is caught before
 * the freed handle is read: the child aborts with "bufcache: bdev_close(<ptr>):
 * handle already closed (device M:N inode I)".  Also for a handle that
 * bcache_destroy closed, and for a pointer that never was a handle ("not an
 * open handle").  A second handle of the same device stays usable after the
 * first is closed.
 */
#include "bctest.h"

static char img[256];

static void close_twice(void *arg)
{
    struct bcache *bc = bcache_create(NULL);
    CHECK(bc != NULL, "bcache_create");
    struct bdev *d = bdev_open(bc, img, 4096, O_RDONLY);
    CHECK(d != NULL, "bdev_open");
    if (arg) {
        bcache_destroy(bc); /* closes d */
    } else {
        CHECK(bdev_close(d) == 0, "first close");
    }
    bdev_close(d);
}

static void close_bogus(void *arg)
{
    static char not_a_handle[256];
    (void)arg;
    bdev_close((struct bdev *)not_a_handle);
}

int main(void)
{
    image_create(img, 1 << 20, 3);
    struct stat st;
    CHECK(stat(img, &st) == 0, "stat");
    char inode[64];
    snprintf(inode, sizeof inode, "inode %llu)", (unsigned long long)st.st_ino);
    const char *twice[] = { "bufcache: bdev_close(", "handle already closed", inode, NULL };
    CHECK(expect_abort(close_twice, NULL, twice) == 0, "second bdev_close not caught");
    CHECK(expect_abort(close_twice, (void *)1, twice) == 0,
          "bdev_close after bcache_destroy not caught");
    const char *bogus[] = { "bufcache: bdev_close(", "not an open handle", NULL };
    CHECK(expect_abort(close_bogus, NULL, bogus) == 0, "bogus bdev_close not caught");

    /* Two handles of one device: closing one leaves the other working. */
    struct bcache *bc = bcache_create(NULL);
    CHECK(bc != NULL, "bcache_create");
    struct bdev *a = bdev_open(bc, img, 4096, O_RDONLY), *b = bdev_open(bc, img, 4096, O_RDONLY);
    CHECK(a && b && a != b, "two handles");
    CHECK(bdev_close(a) == 0, "close a");
    struct buffer_head *bh = bh_read(b, 3);
    CHECK(bh && ((unsigned char *)bh->b_data)[0] == pattern_byte(3, 3 * 4096), "read via b");
    bh_put(bh);
    CHECK(bdev_close(b) == 0, "close b");
    CHECK(bcache_destroy(bc) == 0, "destroy");
    image_remove(img);
    return 0;
}
