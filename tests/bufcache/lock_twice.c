/*
 * bufcache/lock_twice: misusing a buffer lock is a clear error, not a hang.
 *
 * The contract (buffer.h): locking a block twice from one thread aborts with a
 * message.  A child process does bh_lock(bh); bh_lock(bh) and must die by a
 * signal with a message on stderr that mentions the lock (expect_death), rather
 * than deadlocking (a 20 s alarm in the child turns a hang into a failure whose
 * stderr lacks the message).  The parent, meanwhile, shows a normal
 * lock/unlock/relock sequence works and another thread can take the lock once
 * it is released.
 */
#include "bctest.h"

#include <pthread.h>
#include <signal.h>

static const char *img;

static void lock_twice(void *arg)
{
    (void)arg;
    alarm(20);
    struct bcache *bc = xbcache(0, 0, 0);
    struct bdev *dev = xopen(bc, img, 1024, O_RDWR);
    struct buffer_head *bh = bh_read(dev, 3);
    if (!bh)
        _exit(3);
    bh_lock(bh);
    bh_lock(bh); /* must abort */
    fprintf(stderr, "second bh_lock returned\n");
    _exit(0);
}

static void *other_locker(void *arg)
{
    struct buffer_head *bh = arg;
    bh_lock(bh);
    bh_unlock(bh);
    return NULL;
}

int main(void)
{
    char path[256];
    image_create(path, 64u << 10, 0x10c);
    img = path;
    CHECK(expect_death(lock_twice, NULL, "lock") == 0,
          "locking a block twice did not abort with a message");

    struct bcache *bc = xbcache(0, 0, 0);
    struct bdev *dev = xopen(bc, path, 1024, O_RDWR);
    struct buffer_head *bh = bh_read(dev, 3);
    CHECK(bh, "bh_read");
    for (int i = 0; i < 3; i++) {
        bh_lock(bh);
        bh_unlock(bh);
    }
    pthread_t t;
    CHECK(pthread_create(&t, NULL, other_locker, bh) == 0, "pthread_create");
    pthread_join(t, NULL);
    bh_lock(bh);
    bh_unlock(bh);
    bh_put(bh);
    CHECK(bdev_close(dev) == 0 && bcache_destroy(bc) == 0, "close/destroy");
    image_remove(path);
    printf("lock_twice: ok\n");
    return 0;
}
