/*
 * fork_busy: fork() while threads read, dirty and write back blocks through a
 * buffer cache under memory pressure (the flusher and reclaim run), open and
 * close handles, and create and destroy caches.  Every child creates its own
 * cache, opens the image, reads and writes blocks, syncs, closes and destroys
 * (the buffer_head cache, the registries and the slab core must all be free
 * in the child), and exits 0.  The parent waits at most 60 s for each child,
 * then kills it and fails.  Forks: 100.  Not under the sanitizers: the child
 * starts a flusher thread, and their runtimes do not support new threads in
 * the child of a multithreaded process (ASan can hang in its allocator).
 * TEST_LABELS: stress nosan
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "bctest.h"

#define IMG_BLOCKS 512

static char img[256], img2[256];
static struct bcache *bc;
static struct bdev *dev;
static _Atomic bool stop;

static void *io_loop(void *arg)
{
    uint64_t rng = (uintptr_t)arg * 0x9e3779b97f4a7c15ull | 1;
    while (!atomic_load(&stop)) {
        uint64_t b = xorshift64(&rng) % IMG_BLOCKS;
        struct buffer_head *bh = bh_read(dev, b);
        CHECK(bh != NULL, "bh_read: %s", strerror(errno));
        if (xorshift64(&rng) % 4 == 0) {
            bh_lock(bh);
            ((unsigned char *)bh->b_data)[1] ^= 1;
            bh_mark_dirty(bh);
            bh_unlock(bh);
        }
        bh_put(bh);
    }
    return NULL;
}

static void *open_loop(void *unused)
{
    while (!atomic_load(&stop)) {
        struct bcache *c = xbcache(1 << 20, 0, 0);
        struct bdev *d = xopen(c, img2, 1024, O_RDONLY);
        struct buffer_head *bh = bh_read(d, 7);
        CHECK(bh != NULL, "bh_read: %s", strerror(errno));
        bh_put(bh);
        CHECK(bdev_close(d) == 0, "close");
        CHECK(bcache_destroy(c) == 0, "destroy");
    }
    return unused;
}

static void child_main(void)
{
    struct bcache *c = bcache_create(NULL);
    if (!c)
        _exit(3);
    struct bdev *d = bdev_open(c, img2, 4096, O_RDWR);
    if (!d)
        _exit(4);
    for (uint64_t b = 0; b < 16; b++) {
        struct buffer_head *bh = bh_read(d, b);
        if (!bh)
            _exit(5);
        bh_lock(bh);
        bh_mark_dirty(bh); /* same bytes: the image stays as it was */
        bh_unlock(bh);
        bh_put(bh);
    }
    if (bdev_sync(d) != 0 || bdev_close(d) != 0 || bcache_destroy(c) != 0)
        _exit(6);
    _exit(0);
}

int main(int argc, char **argv)
{
    int forks = argc > 1 ? atoi(argv[1]) : 100;
    image_create(img, IMG_BLOCKS * 4096, 11);
    image_create(img2, 64 * 4096, 12);
    bc = xbcache(256 << 10, 5, 10); /* an eighth of the image: reclaim runs */
    dev = xopen(bc, img, 4096, O_RDWR);
    pthread_t t[3];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, io_loop, (void *)(uintptr_t)(i + 1)) == 0, "thread");
    CHECK(pthread_create(&t[2], NULL, open_loop, NULL) == 0, "thread");
    int failed = fork_many(forks, child_main, 60) != 0;
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    CHECK(bdev_close(dev) == 0, "close");
    CHECK(bcache_destroy(bc) == 0, "destroy");
    image_remove(img);
    image_remove(img2);
    CHECK(!failed, "a child could not use the buffer cache after fork");
    fprintf(stderr, "%d forks, every child completed\n", forks);
    return 0;
}
