/*
 * sync_while_locked: a thread that holds a block lock may call bdev_sync while
 * another thread's bdev_sync is waiting for that very block.
 *
 * Thread A locks dirty block X; thread B calls bdev_sync, which must wait for X
 * (it was dirtied before the sync).  A then calls bdev_sync itself: it writes X
 * as it stands (A's own lock) and returns; A unlocks X; B's sync completes.
 * With a writeback design in which B waited for X while holding the page's
 * writeback bit, A would wait for that bit forever.  A watchdog (alarm) turns a
 * hang into a failure.  Repeated for X and the waiting sync on one page (1 KiB
 * blocks) and on one block (4 KiB).
 */
#include "bctest.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#ifndef ALARM_S
#define ALARM_S 60
#endif

static struct bdev *dev;
static _Atomic int b_started, b_done;

static void *syncer(void *arg)
{
    atomic_store(&b_started, 1);
    CHECK(bdev_sync(dev) == 0, "B: bdev_sync: %s", strerror(errno));
    atomic_store(&b_done, 1);
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "sync_while_locked: deadlock (watchdog fired)\n";
    if (write(2, msg, sizeof msg - 1) < 0)
        _exit(2);
    _exit(1);
}

static void run(unsigned bs)
{
    char path[256];
    const unsigned bpp = 4096 / bs;
    img_create(path, 8ull * bpp, bs);
    struct bcache *bc = xbcache(1 << 20, 3600 * 1000, 80);
    dev = bdev_open(bc, path, bs, O_RDWR);
    CHECK(dev, "bdev_open: %s", strerror(errno));
    atomic_store(&b_started, 0);
    atomic_store(&b_done, 0);
    uint64_t x = 0, w = bpp - 1; /* same page when bpp > 1 */
    cache_write_block(dev, w, 1);
    struct buffer_head *bh = bh_read(dev, x);
    CHECK(bh, "bh_read: %s", strerror(errno));
    bh_lock(bh);
    fill_block(bh->b_data, bs, x, 1);
    bh_mark_dirty(bh);
    pthread_t t;
    pthread_create(&t, NULL, syncer, NULL);
    while (!atomic_load(&b_started))
        usleep(100);
    usleep(50 * 1000); /* let B reach the wait for X */
    CHECK(!atomic_load(&b_done), "B's sync finished while X was locked and dirty");
    fill_block(bh->b_data, bs, x, 2);
    bh_mark_dirty(bh);
    CHECK(bdev_sync(dev) == 0, "A: bdev_sync holding X: %s", strerror(errno));
    bh_unlock(bh);
    bh_put(bh);
    pthread_join(t, NULL);
    unsigned char buf[4096];
    img_read_block(path, x, bs, buf);
    CHECK(check_block(buf, bs, x) == 2, "X on disk: version %lld", (long long)check_block(buf, bs, x));
    img_read_block(path, w, bs, buf);
    CHECK(check_block(buf, bs, w) == (w == x ? 2 : 1), "W on disk");
    CHECK(bcache_validate(bc) == 0, "validate");
    CHECK(bdev_close(dev) == 0 && bcache_destroy(bc) == 0, "close/destroy");
    img_remove(path);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(ALARM_S);
    run(1024);
    run(4096);
    return 0;
}
