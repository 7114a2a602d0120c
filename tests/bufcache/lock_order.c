/*
 * bufcache/lock_order: no deadlock between a caller's buffer lock and writeback.
 *
 * A watchdog (alarm, 30 s) fails the test if any scenario hangs.
 * 1. Thread A holds the lock of dirty block X (1 KiB blocks: X and Y share a
 *    page, Y not yet read).  Thread B calls bdev_sync, which must wait for X.
 *    Meanwhile A reads Y (I/O on the page B is writing back), finishes X and
 *    unlocks.  Both complete, and the file holds A's final X.
 * 2. A holds X's lock and calls bh_sync(X) (allowed by the contract).
 * 3. B holds the lock of dirty block Z and waits for X's lock, which A holds.
 *    A dirties pages past the dirty limit, so its bh_mark_dirty(X) throttles:
 *    the throttled writer must not wait for Z's lock (B waits for A: that
 *    would be a deadlock).  Then A unlocks X and B proceeds.
 */
#include "bctest.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#define BS 1024u

static struct bcache *bc;
static struct bdev *dev;
static const char *img;
static atomic_int stage;

static void wait_stage(int s)
{
    while (atomic_load(&stage) < s)
        usleep(1000);
}

static void *syncer(void *arg)
{
    (void)arg;
    atomic_store(&stage, 2); /* about to sync: it will wait for X's lock */
    int rc = bdev_sync(dev);
    CHECK(rc == 0, "bdev_sync: %d", rc);
    return NULL;
}

static void scenario_sync_waits(void)
{
    struct buffer_head *x = stamp_locked(dev, 0, 1, true);
    atomic_store(&stage, 1);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, syncer, NULL) == 0, "pthread_create");
    wait_stage(2);
    usleep(50000); /* let the syncer reach X */
    struct buffer_head *y = bh_read(dev, 1);
    CHECK(y, "bh_read(Y) while the page is being written back: %s", strerror(errno));
    bh_put(y);
    block_fill(x->b_data, BS, 0, 2);
    bh_mark_dirty(x);
    bh_unlock(x);
    pthread_join(t, NULL);
    bh_put(x);
    /* the syncer wrote X after A unlocked it: the final version */
    unsigned char buf[BS];
    image_read(img, 0, buf, BS);
    uint64_t v = 0;
    CHECK(block_stamp_ok(buf, BS, 0, &v) && v == 2, "file holds X version %llu, not 2",
          (unsigned long long)v);
}

static void scenario_bh_sync_locked(void)
{
    struct buffer_head *x = stamp_locked(dev, 8, 3, true);
    CHECK(bh_sync(x) == 0, "bh_sync with the lock held: %s", strerror(errno));
    bh_unlock(x);
    bh_put(x);
    unsigned char buf[BS];
    image_read(img, 8 * BS, buf, BS);
    CHECK(block_stamp_ok(buf, BS, 8, NULL), "bh_sync did not write");
}

static struct buffer_head *x3;

static void *holder(void *arg)
{
    (void)arg;
    struct buffer_head *z = stamp_locked(dev, 100, 4, true);
    atomic_store(&stage, 4); /* holds Z, now waits for X */
    bh_lock(x3);
    bh_unlock(x3);
    bh_unlock(z);
    bh_put(z);
    return NULL;
}

static void scenario_throttle(void)
{
    x3 = bh_read(dev, 200);
    CHECK(x3, "bh_read(X)");
    bh_lock(x3);
    atomic_store(&stage, 3);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, holder, NULL) == 0, "pthread_create");
    wait_stage(4);
    usleep(20000);
    uint64_t before = stats(bc).throttled;
    for (uint64_t b = 300; b < 300 + 200 * 4; b += 4) /* 200 pages: past the limit */
        stamp_write(dev, b, 5, false);
    block_fill(x3->b_data, BS, 200, 5);
    bh_mark_dirty(x3);
    CHECK(stats(bc).throttled > before || stats(bc).dirty_pages <= 30,
          "never throttled with %llu dirty pages", (unsigned long long)stats(bc).dirty_pages);
    bh_unlock(x3);
    pthread_join(t, NULL);
    bh_put(x3);
    CHECK(bdev_sync(dev) == 0, "bdev_sync");
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "lock_order: DEADLOCK (watchdog fired)\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(30);
    char path[256];
    image_create(path, 2u << 20, 0);
    img = path;
    /* 1 MiB limit, 10% dirty (about 25 pages), flusher out of the way */
    bc = xbcache(1u << 20, 60000, 10);
    dev = xopen(bc, path, BS, O_RDWR);
    scenario_sync_waits();
    scenario_bh_sync_locked();
    scenario_throttle();
    CHECK(bdev_close(dev) == 0 && bcache_destroy(bc) == 0, "close/destroy");
    image_remove(path);
    alarm(0);
    printf("lock_order: ok\n");
    return 0;
}
