/*
 * fuzz/bufcache_ops.c — libFuzzer target: the buffer cache (<slabdefrag/buffer.h>)
 * driven by random reads, writes, syncs, shrinks and injected device faults
 * (<slabdefrag/buffer_fault.h>), checked against a shadow image.
 *
 * Model.  The shadow holds a version per block; a block's content is a pattern
 * of (block, version) (version 0: zeros, the fresh image).  Every write bumps the
 * version.  Invariants checked:
 *  - bh_read always returns the shadow's content (failed writebacks keep their
 *    data dirty in the cache; nothing is lost or stale);
 *  - bdev_sync() == 0 means every block written since the last check is on
 *    the image file (read through a shared read-only mapping of the file);
 *  - without armed faults nothing fails; with them, only the injected errnos
 *    (and ENOMEM for a read that cannot make room) appear, and a sync may report
 *    an earlier injected error once;
 *  - at the end, with faults cleared, a sync succeeds (after at most one stale
 *    error), the whole image equals the shadow, every block read through the
 *    cache does too, close and destroy return 0;
 *  - bcache_validate() passes whenever asked.
 * Single-threaded (the flusher's expire time is set far beyond a run).
 *
 * Input format: 2 config bytes, then operations (missing bytes read as 0):
 *   cfg0: block size 512 << (cfg0 & 3); device pages 4 + (cfg0 >> 2) % 61
 *   cfg1: memory limit (1 + cfg1 % 4) * 64 KiB; dirty limit 10 + (cfg1 >> 2) % 91 %
 *   op byte % 9, then for `b` two bytes (block number, little-endian, mod blocks):
 *   0 READ b          1 WRITE b (read, modify all, dirty)
 *   2 GETWRITE b      (bh_get, overwrite all, dirty)
 *   3 BHSYNC b        4 SYNC (bdev_sync)
 *   5 SHRINK n        bcache_shrink(n ? n * 4 KiB : SIZE_MAX)
 *   6 FAULT k, n, e   fail the (1 + n % 8)-th next op of kind k % 3 (read, write,
 *                     flush) with e & 1 ? ENOSPC : EIO; e & 2 sticky, e & 4 short
 *   7 CLEAR           turn all faults off
 *   8 VALIDATE
 * The image lives in $TMPDIR (or /tmp), one per process, truncated for each
 * input; it is unlinked as soon as it is created and opened by the cache as
 * /proc/self/fd/N, so that no run, not even one that aborts on a finding,
 * leaves it behind.  The bcache is kept across inputs with the same
 * memory and dirty limits (the device is closed after each input, which drops
 * its pages; destroy is checked when the configuration changes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <slabdefrag/buffer.h>
#include <slabdefrag/buffer_fault.h>

#define FZ_TARGET "bufcache_ops"
#include "fuzz_common.h"

#define MAX_BLOCKS (64u * 8u)

struct run {
    struct bcache *bc;
    struct bdev *dev;
    unsigned bs;
    uint64_t nblk;
    uint32_t ver[MAX_BLOCKS];
    uint64_t changed[MAX_BLOCKS / 64]; /* written since the image was last checked */
    uint32_t next_ver;
    int armed;       /* faults injected since the last CLEAR */
    int ever;        /* faults injected in this run: a sync may report one */
};

#define MAX_IMAGE (64u * 4096u)

static char image[64]; /* /proc/self/fd/N of the unlinked image file */
static int image_fd = -1;
/* The image file mapped read-only and shared (the page cache itself: no copy
 * per check), the shadow (every block's expected content, so that checks
 * compare memory instead of regenerating patterns), and a buffer for reading
 * the whole image (a read of a hole through the mapping would allocate it). */
static const unsigned char *disk;
static unsigned char shadow[MAX_IMAGE], disk_buf[MAX_IMAGE];

/* Block b's content at version ver: word i is a hash of (b, ver, i), each
 * word independent of the others so that the loops below vectorise; version 0
 * is all zeros (the fresh image). */
FZ_BULK static inline uint64_t block_word(uint64_t b, uint32_t ver, unsigned i)
{
    if (ver == 0)
        return 0;
    uint64_t x = ((b + 1) * 0x9e3779b97f4a7c15ull ^ ver * 0xc2b2ae3d27d4eb4full) + i;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 31);
}

FZ_BULK static void expected(unsigned bs, uint64_t b, uint32_t ver, unsigned char *out)
{
    for (unsigned i = 0; i < bs / 8; i++) {
        uint64_t w = block_word(b, ver, i);
        memcpy(out + 8 * i, &w, 8);
    }
}

/* Word by word, not memcmp: the sanitizers' memcmp interceptor (a shadow
 * check of both buffers) cost more than the comparison.  len: a multiple of 8. */
FZ_BULK static int same(const unsigned char *a, const unsigned char *b, size_t len)
{
    uint64_t diff = 0;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        diff |= x ^ y;
    }
    return diff == 0;
}

static void check_data(struct run *r, uint64_t b, const void *data, const char *what)
{
    FZ_CHECK(same(data, shadow + b * r->bs, r->bs), "%s: block %llu does not hold version %u",
             what, (unsigned long long)b, r->ver[b]);
}

/* The whole image, read with one pread (a pread per block cost most of an
 * input), equals the shadow. */
static void check_image(struct run *r, const char *what)
{
    size_t len = (size_t)(r->nblk * r->bs), got = 0;
    while (got < len) {
        ssize_t n = pread(image_fd, disk_buf + got, len - got, (off_t)got);
        FZ_CHECK(n > 0, "pread image: %s", n < 0 ? strerror(errno) : "short file");
        got += (size_t)n;
    }
    if (!same(disk_buf, shadow, len))
        for (uint64_t b = 0; b < r->nblk; b++) /* name the first bad block */
            check_data(r, b, disk_buf + b * r->bs, what);
    memset(r->changed, 0, sizeof r->changed);
}

/* After a successful bdev_sync: every block written since the last check is
 * on the image (read through the mapping).  The blocks not written since were
 * checked then; a stray write into one of them is caught by the whole-image
 * check at the end of the input (comparing the whole image at every sync took
 * about a fifth of the target's time). */
static void check_changed(struct run *r)
{
    for (unsigned w = 0; w < MAX_BLOCKS / 64; w++)
        for (uint64_t bits = r->changed[w]; bits; bits &= bits - 1) {
            uint64_t b = w * 64u + (unsigned)__builtin_ctzll(bits);
            check_data(r, b, disk + b * r->bs, "image after a successful sync");
        }
    memset(r->changed, 0, sizeof r->changed);
}

static int injected(int err) { return err == EIO || err == ENOSPC; }

static void read_failed(struct run *r, uint64_t b, int err)
{
    FZ_CHECK(r->armed && (injected(err) || err == ENOMEM),
             "bh_read/bh_get(%llu) failed with %s (faults armed: %d)", (unsigned long long)b,
             strerror(err), r->armed);
}

static void sync_result(struct run *r, int rc, const char *what, int whole_device)
{
    FZ_CHECK(rc == 0 || (r->ever && injected(-rc)), "%s: %d (%s), faults injected: %d", what, rc,
             strerror(-rc), r->ever);
    if (rc == 0 && whole_device)
        check_changed(r);
}

static void write_block(struct run *r, uint64_t b, int use_get)
{
    struct buffer_head *bh = use_get ? bh_get(r->dev, b) : bh_read(r->dev, b);
    if (!bh) {
        read_failed(r, b, errno);
        return;
    }
    FZ_CHECK(bh->b_blocknr == b && bh->b_size == r->bs, "wrong buffer head");
    bh_lock(bh);
    if (!use_get)
        check_data(r, b, bh->b_data, "bh_read before a write");
    r->ver[b] = ++r->next_ver;
    r->changed[b / 64] |= UINT64_C(1) << (b % 64);
    expected(r->bs, b, r->ver[b], shadow + b * r->bs);
    memcpy(bh->b_data, shadow + b * r->bs, r->bs);
    bh_mark_dirty(bh);
    bh_unlock(bh);
    bh_put(bh);
}

static void run_op(struct run *r, struct input *in)
{
    unsigned op = byte(in) % 9;
    uint64_t b = 0;
    if (op <= 3) {
        unsigned lo = byte(in), hi = byte(in);
        b = (hi << 8 | lo) % r->nblk;
    }
    switch (op) {
    case 0: {
        struct buffer_head *bh = bh_read(r->dev, b);
        if (!bh) {
            read_failed(r, b, errno);
            break;
        }
        check_data(r, b, bh->b_data, "bh_read");
        bh_put(bh);
        break;
    }
    case 1:
    case 2:
        write_block(r, b, op == 2);
        break;
    case 3: {
        struct buffer_head *bh = bh_read(r->dev, b);
        if (!bh) {
            read_failed(r, b, errno);
            break;
        }
        sync_result(r, bh_sync(bh), "bh_sync", 0);
        check_data(r, b, bh->b_data, "bh_read after bh_sync");
        bh_put(bh);
        break;
    }
    case 4:
        sync_result(r, bdev_sync(r->dev), "bdev_sync", 1);
        break;
    case 5: {
        unsigned n = byte(in);
        long got = bcache_shrink(r->bc, n ? (size_t)n * 4096 : SIZE_MAX);
        FZ_CHECK(got >= 0 || (r->armed && injected((int)-got)), "bcache_shrink: %ld", got);
        break;
    }
    case 6: {
        unsigned k = byte(in) % 3, n = 1 + byte(in) % 8u, e = byte(in);
        unsigned flags = ((e & 2) ? BDEV_FAULT_STICKY : 0) | ((e & 4) ? BDEV_FAULT_SHORT : 0);
        if (k == BDEV_IO_FLUSH)
            flags &= ~BDEV_FAULT_SHORT; /* a flush has no bytes to shorten */
        int rc = bdev_fault_inject(r->dev, (enum bdev_io_op)k, n, (e & 1) ? ENOSPC : EIO, flags);
        FZ_CHECK(rc == 0, "bdev_fault_inject: %d", rc);
        r->armed = r->ever = 1;
        break;
    }
    case 7:
        bdev_fault_clear(r->dev);
        r->armed = 0;
        break;
    case 8:
        FZ_CHECK(bcache_validate(r->bc) == 0, "bcache_validate");
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run r;
    struct input in = {data, size};
    if (!image[0]) {
        const char *dir = getenv("TMPDIR");
        char name[256];
        snprintf(name, sizeof name, "%s/slabdefrag-fuzz-XXXXXX", dir && *dir ? dir : "/tmp");
        image_fd = mkstemp(name);
        FZ_CHECK(image_fd >= 0, "mkstemp %s: %s", name, strerror(errno));
        FZ_CHECK(unlink(name) == 0, "unlink %s: %s", name, strerror(errno));
        snprintf(image, sizeof image, "/proc/self/fd/%d", image_fd);
        /* The largest image: checks read only within the current size (a
         * read past the end of the file would be a SIGBUS). */
        disk = mmap(NULL, MAX_IMAGE, PROT_READ, MAP_SHARED, image_fd, 0);
        FZ_CHECK(disk != MAP_FAILED, "mmap image: %s", strerror(errno));
    }
    unsigned c0 = byte(&in), c1 = byte(&in);
    memset(&r, 0, sizeof r);
    r.bs = 512u << (c0 & 3);
    r.nblk = (uint64_t)(4 + (c0 >> 2) % 61) * (4096 / r.bs);
    FZ_CHECK(ftruncate(image_fd, 0) == 0 && ftruncate(image_fd, (off_t)(r.nblk * r.bs)) == 0,
             "truncate: %s", strerror(errno));
    memset(shadow, 0, (size_t)(r.nblk * r.bs)); /* the fresh image: zeros */
    struct bcache_config cfg = {
        .memory_limit = (1 + c1 % 4) * (size_t)BCACHE_MIN_MEMORY_LIMIT,
        .dirty_expire_ms = 3600 * 1000,
        .dirty_limit_percent = 10 + (c1 >> 2) % 91,
    };
    /* The cache is kept across inputs with the same configuration: its
     * device is closed at the end of each input (which drops every page),
     * and no descriptor array is mapped nor flusher thread started anew. */
    static struct bcache *kept;
    static struct bcache_config kept_cfg;
    if (kept && (kept_cfg.memory_limit != cfg.memory_limit ||
                 kept_cfg.dirty_limit_percent != cfg.dirty_limit_percent)) {
        int drc = bcache_destroy(kept);
        FZ_CHECK(drc == 0, "bcache_destroy: %d", drc);
        kept = NULL;
    }
    if (!kept) {
        kept = bcache_create(&cfg);
        FZ_CHECK(kept != NULL, "bcache_create: %s", strerror(errno));
        kept_cfg = cfg;
    }
    r.bc = kept;
    r.dev = bdev_open(r.bc, image, r.bs, O_RDWR);
    FZ_CHECK(r.dev != NULL, "bdev_open: %s", strerror(errno));

    unsigned ops = 0;
    while (in.n && ops++ < 512)
        run_op(&r, &in);

    bdev_fault_clear(r.dev);
    r.armed = 0;
    int rc = bdev_sync(r.dev);
    if (rc != 0) {
        sync_result(&r, rc, "final bdev_sync (a stale error)", 0);
        rc = bdev_sync(r.dev);
        FZ_CHECK(rc == 0, "second final bdev_sync: %d", rc);
    }
    check_image(&r, "image after the final sync");
    for (uint64_t b = 0; b < r.nblk; b++) {
        struct buffer_head *bh = bh_read(r.dev, b);
        FZ_CHECK(bh != NULL, "final bh_read(%llu): %s", (unsigned long long)b, strerror(errno));
        check_data(&r, b, bh->b_data, "final bh_read");
        bh_put(bh);
    }
    FZ_CHECK(bcache_validate(r.bc) == 0, "final bcache_validate");
    rc = bdev_close(r.dev);
    FZ_CHECK(rc == 0, "bdev_close: %d", rc);
    struct bcache_stats st;
    FZ_CHECK(bcache_get_stats(r.bc, &st) == 0 && st.dirty_pages == 0 &&
                 st.cached_pages == 0 && st.buffer_heads_live == 0,
             "after the last close: %llu cached, %llu dirty pages, %llu buffer heads",
             (unsigned long long)st.cached_pages, (unsigned long long)st.dirty_pages,
             (unsigned long long)st.buffer_heads_live);
    FZ_CHECK(bcache_validate(r.bc) == 0, "bcache_validate after close");
    return 0;
}
