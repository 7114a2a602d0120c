/*
 * fault_sweep: fail the N-th device read, write or flush (EIO, ENOSPC), for
 * every N over a workload of reads, writes, bh_syncs and bdev_syncs under a
 * memory limit that forces eviction (so reclaim writes too); also short
 * transfers and "every operation from the N-th on" (sticky) failures.
 * Checks, for every run:
 *  - every injected failure surfaces: some bh_read/bh_sync/bdev_sync returns
 *    the injected errno (a background or reclaim write failure through the
 *    errseq of the next sync); a short transfer surfaces nothing;
 *  - nothing acknowledged by a successful sync is lost: each block on disk holds
 *    a version at least as new as the last one acknowledged, and no version that
 *    was never written;
 *  - failed data stays dirty: once faults stop, a sync succeeds and the image
 *    equals the shadow copy exactly.
 * Usage: fault_sweep [seed]
 */
#include "bctest.h"

#include <slabdefrag/buffer_fault.h>

#include "bufcache/internal.h" /* pass_lock: keeps the flusher out while counting */

#define BS     1024u
#define PAGES  48u
#define NBLK   (PAGES * (4096u / BS))
#define OPS    72u

struct run {
    struct bcache *bc;
    struct bdev *dev;
    char path[256];
    uint64_t ver[NBLK], acked[NBLK];
    unsigned errors, enomem, wrong_errno;
    int want_errno;
};

static void note_error(struct run *r, int err)
{
    r->errors++;
    if (err == ENOMEM)
        r->enomem++;
    else if (err != r->want_errno)
        r->wrong_errno++;
}

static void ack_all(struct run *r)
{
    memcpy(r->acked, r->ver, sizeof r->ver);
}

/* bh_read (read) or bh_get of block b; NULL once the error is noted. */
static struct buffer_head *grab(struct run *r, uint64_t b, bool read)
{
    struct buffer_head *bh = read ? bh_read(r->dev, b) : bh_get(r->dev, b);
    if (!bh)
        note_error(r, errno);
    return bh;
}

static void workload(struct run *r, uint64_t seed)
{
    uint64_t rng = seed;
    for (unsigned i = 0; i < OPS; i++) {
        uint64_t b = xorshift64(&rng) % NBLK;
        unsigned op = (unsigned)(xorshift64(&rng) % 16);
        if (op < 7) {
            struct buffer_head *bh = grab(r, b, true);
            if (!bh)
                continue;
            bh_lock(bh);
            CHECK(check_block(bh->b_data, BS, b) == (int64_t)r->ver[b], "read block %llu stale",
                  (unsigned long long)b);
            fill_block(bh->b_data, BS, b, ++r->ver[b]);
            bh_mark_dirty(bh);
            bh_unlock(bh);
            bh_put(bh);
        } else if (op < 13) {
            struct buffer_head *bh = grab(r, b, true);
            if (!bh)
                continue;
            CHECK(check_block(bh->b_data, BS, b) == (int64_t)r->ver[b], "block %llu stale",
                  (unsigned long long)b);
            bh_put(bh);
        } else if (op < 14) {
            struct buffer_head *bh = grab(r, b, false);
            if (!bh)
                continue;
            int err = bh_sync(bh);
            bh_put(bh);
            if (err)
                note_error(r, -err);
            else
                r->acked[b] = r->ver[b];
        } else {
            int err = bdev_sync(r->dev);
            if (err)
                note_error(r, -err);
            else
                ack_all(r);
        }
    }
}

/* Disk versions: never older than acknowledged, never a version not written. */
static void check_acknowledged(struct run *r)
{
    unsigned char buf[BS];
    for (uint64_t b = 0; b < NBLK; b++) {
        img_read_block(r->path, b, BS, buf);
        int64_t v = check_block(buf, BS, b);
        CHECK(v >= (int64_t)r->acked[b] && v <= (int64_t)r->ver[b],
              "block %llu on disk has version %lld; acknowledged %llu, latest %llu",
              (unsigned long long)b, (long long)v, (unsigned long long)r->acked[b],
              (unsigned long long)r->ver[b]);
    }
}

static void check_exact(struct run *r)
{
    unsigned char buf[BS];
    for (uint64_t b = 0; b < NBLK; b++) {
        img_read_block(r->path, b, BS, buf);
        CHECK(check_block(buf, BS, b) == (int64_t)r->ver[b],
              "after recovery block %llu has version %lld, want %llu", (unsigned long long)b,
              (long long)check_block(buf, BS, b), (unsigned long long)r->ver[b]);
    }
}

/* One run with a fault; returns the device's op count of kind op. */
static uint64_t one_run(enum bdev_io_op op, uint64_t nth, int err, unsigned flags,
                        uint64_t seed, const char *what)
{
    struct run *r = calloc(1, sizeof *r);
    img_create(r->path, NBLK, BS);
    r->bc = xbcache(96 << 10, 3600 * 1000, 60);
    r->dev = bdev_open(r->bc, r->path, BS, O_RDWR);
    CHECK(r->dev, "bdev_open: %s", strerror(errno));
    r->want_errno = err;
    if (nth)
        CHECK(bdev_fault_inject(r->dev, op, nth, err, flags) == 0, "inject");
    workload(r, seed);
    /* Keep the flusher (the only other thread doing I/O) out while counting,
     * clearing the fault and reading the file: a write it has in flight (a short
     * one is two system calls) would look torn. */
    pthread_mutex_lock(&r->bc->pass_lock);
    uint64_t count = bdev_io_count(r->dev, op);
    bool fired = nth && count >= nth;
    bool sticky = flags & BDEV_FAULT_STICKY, shortio = flags & BDEV_FAULT_SHORT;
    bdev_fault_clear(r->dev);
    check_acknowledged(r);
    pthread_mutex_unlock(&r->bc->pass_lock);
    int e1 = bdev_sync(r->dev); /* may report a not yet reported background failure */
    if (e1)
        note_error(r, -e1);
    CHECK(bdev_sync(r->dev) == 0, "%s N=%llu: sync after faults cleared: %s", what,
          (unsigned long long)nth, strerror(errno));
    check_exact(r);
    if (fired && !shortio)
        CHECK(r->errors > 0, "%s N=%llu: the failure never surfaced", what,
              (unsigned long long)nth);
    if (!fired || shortio)
        CHECK(r->errors == 0, "%s N=%llu: %u errors without a failure", what,
              (unsigned long long)nth, r->errors);
    CHECK(r->wrong_errno == 0, "%s N=%llu: an error other than %d surfaced", what,
          (unsigned long long)nth, err);
    CHECK(r->enomem == 0 || (sticky && op == BDEV_IO_WRITE),
          "%s N=%llu: ENOMEM without unwritable dirty data", what, (unsigned long long)nth);
    CHECK(bcache_validate(r->bc) == 0, "validate");
    CHECK(bdev_close(r->dev) == 0, "close");
    CHECK(bcache_destroy(r->bc) == 0, "destroy");
    img_remove(r->path);
    free(r);
    return count;
}

static void sweep(enum bdev_io_op op, int err, unsigned flags, uint64_t seed, uint64_t total,
                  unsigned stride, const char *what)
{
    for (uint64_t n = 1; n <= total + 1; n += stride)
        one_run(op, n, err, flags, seed, what);
    fprintf(stderr, "fault_sweep: %s: N = 1..%llu ok\n", what, (unsigned long long)total + 1);
}

int main(int argc, char **argv)
{
    uint64_t seed = test_seed(argc, argv, 1, 0xfa017);
    fprintf(stderr, "fault_sweep: seed %llu\n", (unsigned long long)seed);
    uint64_t reads = one_run(BDEV_IO_READ, 0, 0, 0, seed, "clean");
    uint64_t writes = one_run(BDEV_IO_WRITE, 0, 0, 0, seed, "clean");
    uint64_t flushes = one_run(BDEV_IO_FLUSH, 0, 0, 0, seed, "clean");
    fprintf(stderr, "fault_sweep: clean run: %llu reads, %llu writes, %llu flushes\n",
            (unsigned long long)reads, (unsigned long long)writes, (unsigned long long)flushes);
    CHECK(reads > 10 && writes > 10 && flushes > 2, "the workload must do I/O of every kind");
    sweep(BDEV_IO_READ, EIO, 0, seed, reads, 1, "read EIO");
    sweep(BDEV_IO_WRITE, EIO, 0, seed, writes, 1, "write EIO");
    sweep(BDEV_IO_WRITE, ENOSPC, 0, seed, writes, 3, "write ENOSPC");
    sweep(BDEV_IO_FLUSH, EIO, 0, seed, flushes, 1, "flush EIO");
    sweep(BDEV_IO_READ, 0, BDEV_FAULT_SHORT, seed, reads, 4, "short read");
    sweep(BDEV_IO_WRITE, 0, BDEV_FAULT_SHORT, seed, writes, 4, "short write");
    sweep(BDEV_IO_WRITE, EIO, BDEV_FAULT_STICKY, seed, writes, 8, "sticky write EIO");
    sweep(BDEV_IO_READ, EIO, BDEV_FAULT_STICKY, seed, reads, 8, "sticky read EIO");
    return 0;
}
