/*
 * bufcache/errseq_once: a writeback error reaches every handle once (Linux errseq).
 *
 * Two handles A and B on one image.  A write fails (injected EIO):
 *   - bdev_sync(A) returns -EIO and the block stays dirty (never marked clean);
 *   - bdev_sync(B) also returns -EIO: each handle sees each error once;
 *   - the next bdev_sync of each returns 0, and the retried write is in the file.
 * bh_sync: its failure is returned to that bh_sync, the next bh_sync succeeds,
 * and the handles still see it once each.  An error of the background flusher
 * (ENOSPC) is not lost when a later retry succeeds: the next bdev_sync of each
 * handle reports it once.  A handle opened after an error does not see it; one
 * opened before sees it in bdev_close.
 */
#include "bctest.h"

#include <slabdefrag/buffer_fault.h>

#define BS 1024u

static int file_has(const char *path, uint64_t b, uint64_t version)
{
    unsigned char buf[BS];
    image_read(path, b * BS, buf, BS);
    uint64_t v = 0;
    return block_stamp_ok(buf, BS, b, &v) && v == version;
}

static void sync_paths(const char *path)
{
    struct bcache *bc = xbcache(0, 60000, 50);
    struct bdev *a = xopen(bc, path, BS, O_RDWR);
    struct bdev *b = xopen(bc, path, BS, O_RDWR);

    stamp_write(a, 3, 1, true);
    CHECK(bdev_fault_inject(a, BDEV_IO_WRITE, 1, EIO, 0) == 0, "inject");
    CHECK(bdev_sync(a) == -EIO && errno == EIO, "A does not see the failed write");
    CHECK(!file_has(path, 3, 1), "the failed write reached the file");
    CHECK(stats(bc).dirty_pages == 1, "the failed block was marked clean");
    CHECK(stats(bc).writeback_errors >= 1, "writeback_errors not counted");
    CHECK(bdev_sync(b) == -EIO, "B does not see the error");
    CHECK(bdev_sync(a) == 0, "A sees the error twice");
    CHECK(file_has(path, 3, 1), "the retried write is not in the file");
    CHECK(bdev_sync(b) == 0, "B sees the error twice");

    /* bh_sync */
    struct buffer_head *bh = bh_read(b, 7);
    CHECK(bh, "bh_read");
    bh_lock(bh);
    block_fill(bh->b_data, BS, 7, 2);
    bh_mark_dirty(bh);
    bh_unlock(bh);
    CHECK(bdev_fault_inject(a, BDEV_IO_WRITE, 1, EIO, 0) == 0, "inject");
    CHECK(bh_sync(bh) == -EIO, "bh_sync hides its failure");
    CHECK(!file_has(path, 7, 2), "failed bh_sync wrote");
    CHECK(bh_sync(bh) == 0, "the second bh_sync: %s", strerror(errno));
    CHECK(file_has(path, 7, 2), "bh_sync retry not in the file");
    bh_put(bh);
    /* a failed flush is reported too */
    stamp_write(a, 9, 3, true);
    CHECK(bdev_fault_inject(b, BDEV_IO_FLUSH, 1, EIO, 0) == 0, "inject flush");
    CHECK(bdev_sync(b) == -EIO, "B misses the failed flush");
    struct bdev *late = xopen(bc, path, BS, O_RDWR);
    CHECK(bdev_sync(late) == 0, "a handle opened after the error sees it");
    CHECK(bdev_sync(a) == -EIO, "A misses the bh_sync/flush errors");
    CHECK(bdev_sync(a) == 0 && bdev_sync(b) == 0, "errors reported twice");

    /* bdev_close reports an error not yet seen */
    stamp_write(a, 11, 4, true);
    CHECK(bdev_fault_inject(a, BDEV_IO_WRITE, 1, ENOSPC, 0) == 0, "inject");
    CHECK(bdev_sync(a) == -ENOSPC, "A: ENOSPC");
    CHECK(bdev_close(late) == -ENOSPC && errno == ENOSPC, "close hides the error");
    CHECK(bdev_close(b) == -ENOSPC, "close B hides the error");
    CHECK(file_has(path, 11, 4), "the retry in close did not write");
    CHECK(bdev_close(a) == 0, "close A");
    CHECK(bcache_destroy(bc) == 0, "destroy");
}

static void flusher_error(const char *path)
{
    struct bcache *bc = xbcache(0, 20, 50);
    struct bdev *a = xopen(bc, path, BS, O_RDWR);
    struct bdev *b = xopen(bc, path, BS, O_RDWR);
    CHECK(bdev_fault_inject(a, BDEV_IO_WRITE, 1, ENOSPC, 0) == 0, "inject");
    stamp_write(a, 20, 5, true);
    double end = now_seconds() + 20;
    while (!file_has(path, 20, 5) && now_seconds() < end)
        usleep(5000);
    CHECK(file_has(path, 20, 5), "the flusher never retried the failed write");
    CHECK(stats(bc).writeback_errors >= 1, "the flusher's failure was not counted");
    CHECK(bdev_sync(a) == -ENOSPC, "A: the flusher's error was lost");
    CHECK(bdev_sync(b) == -ENOSPC, "B: the flusher's error was lost");
    CHECK(bdev_sync(a) == 0 && bdev_sync(b) == 0, "reported twice");
    CHECK(bdev_close(a) == 0 && bdev_close(b) == 0, "close");
    CHECK(bcache_destroy(bc) == 0, "destroy");
}

int main(void)
{
    char path[256];
    image_create(path, 64u << 10, 0xe55e);
    sync_paths(path);
    flusher_error(path);
    image_remove(path);
    printf("errseq_once: ok\n");
    return 0;
}
