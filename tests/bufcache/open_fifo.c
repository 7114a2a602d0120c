/*
 * open_fifo: bdev_open of something that is neither a regular file nor a block
 * device fails at once with EINVAL: a FIFO (O_RDONLY used to block in open(2)
 * forever, holding the cache lock), a character device, a directory.  And a
 * FIFO open never holds up the cache: another thread opens, reads and closes
 * a regular file on the same cache while this one opens FIFOs in a loop.  A
 * watchdog (alarm) turns a hang into a failure.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "bctest.h"

static struct bcache *bc;
static char fifo[256];
static _Atomic int fifo_done;

static void expect_einval(const char *path, int flags)
{
    errno = 0;
    struct bdev *d = bdev_open(bc, path, 4096, flags);
    CHECK(!d && errno == EINVAL, "bdev_open(%s, %#x): %p errno %d", path, flags, (void *)d, errno);
}

static void *fifo_opener(void *unused)
{
    for (int i = 0; i < 200; i++)
        expect_einval(fifo, i % 2 ? O_RDWR : O_RDONLY);
    atomic_store(&fifo_done, 1);
    return unused;
}

int main(void)
{
    alarm(60); /* SIGALRM: a blocked open fails the test */
    bc = bcache_create(NULL);
    CHECK(bc != NULL, "bcache_create");
    char dir[] = "/tmp/bcfifo-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo: %s", strerror(errno));

    expect_einval(fifo, O_RDONLY);
    expect_einval(fifo, O_RDWR);
    expect_einval("/dev/null", O_RDONLY);
    expect_einval(dir, O_RDONLY);

    char img[256];
    image_create(img, 1 << 20, 7);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fifo_opener, NULL) == 0, "pthread_create");
    int opens = 0;
    do {
        struct bdev *d = bdev_open(bc, img, 4096, O_RDONLY);
        CHECK(d != NULL, "bdev_open(image): %s", strerror(errno));
        struct buffer_head *bh = bh_read(d, (uint64_t)(opens % 256));
        CHECK(bh != NULL, "bh_read: %s", strerror(errno));
        CHECK(((unsigned char *)bh->b_data)[0] == pattern_byte(7, (uint64_t)(opens % 256) * 4096),
              "data");
        bh_put(bh);
        CHECK(bdev_close(d) == 0, "bdev_close");
        opens++;
    } while (!atomic_load(&fifo_done) || opens < 10);
    pthread_join(t, NULL);

    /* Regular files still open with other sizes and modes. */
    struct bdev *d = bdev_open(bc, img, 1024, O_RDWR);
    CHECK(d != NULL, "bdev_open rw");
    CHECK(bdev_close(d) == 0, "close rw");
    CHECK(bcache_destroy(bc) == 0, "bcache_destroy");
    image_remove(img);
    unlink(fifo);
    rmdir(dir);
    return 0;
}
