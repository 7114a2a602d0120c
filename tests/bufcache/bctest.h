/*
 * bctest.h: helpers shared by the buffer-cache tests in tests/bufcache/ (header
 * only, so the per-directory glob of *.c files does not make it a program).
 *
 * image_create()   a temporary image file of `size` bytes under $TMPDIR or /tmp
 *                  (mkstemp), filled with a seeded pattern; the caller removes it
 *                  with image_remove().  The pattern of byte i is pattern_byte().
 * image_read()     pread() of the image file behind the cache's back.
 * block_fill()     fill a block with a self-describing stamp (block number,
 *                  version, a per-byte mix) that block_stamp_ok() can verify, so
 *                  a torn or misplaced block is detected.
 * image_create_stamped()  an image whose every block holds its version-0 stamp.
 * stamp_locked()   stamp version v of a block through the cache and dirty it,
 *                  keeping it locked and referenced; stamp_write() also
 *                  unlocks and puts it.
 * xbcache()/xopen()  create / open that fail the test on error.
 * stats()          bcache_get_stats() that fails the test on error.
 *
 * Versioned blocks (block-granular images, a version per block):
 * img_create()     an image of nblocks blocks under $TMPDIR or /tmp, every
 *                  block at version 0; img_remove() deletes it, and an atexit
 *                  hook removes registered images when a CHECK fails.
 * img_read_block() / img_slurp()  read the image behind the cache's back.
 * fill_block()     a pattern derived from (block, version, size) that
 *                  check_block() recognises, returning the version (or -1),
 *                  so any block can be checked without a shadow copy.
 * cache_write_block()  version v of block b through the cache.
 *
 * Shadow models (a byte-exact copy of the device in memory):
 * shadow_write()   random bytes into a locked block and the same into its
 *                  shadow: the whole block, or one random byte range of it.
 */
#ifndef SLABDEFRAG_TESTS_BCTEST_H
#define SLABDEFRAG_TESTS_BCTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slabdefrag/buffer.h>

#include "testutil.h"

static inline unsigned char pattern_byte(uint64_t seed, uint64_t i)
{
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return (unsigned char)x;
}

/* Read blocks from..to (step apart) of a device of bs-byte blocks whose image
 * was made with `seed`, and check every byte against the image pattern. */
static inline void verify_block_range(struct bdev *d, unsigned bs, uint64_t seed, uint64_t from,
                                      uint64_t to, uint64_t step)
{
    for (uint64_t b = from; b < to; b += step) {
        struct buffer_head *bh = bh_read(d, b);
        CHECK(bh, "bh_read(%llu): %s", (unsigned long long)b, strerror(errno));
        const unsigned char *got = bh->b_data;
        for (unsigned i = 0; i < bs; i++)
            CHECK(got[i] == pattern_byte(seed, b * bs + i), "block %llu byte %u reads back wrong",
                  (unsigned long long)b, i);
        bh_put(bh);
    }
}

/* Create a temporary image; its path is written to `path` (at least 256 bytes). */
static inline void image_create(char *path, size_t size, uint64_t seed)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, 256, "%s/bctest-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp(%s): %s", path, strerror(errno));
    static unsigned char buf[65536];
    for (size_t off = 0; off < size; off += sizeof buf) {
        size_t n = size - off < sizeof buf ? size - off : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = seed ? pattern_byte(seed, off + i) : 0;
        CHECK(pwrite(fd, buf, n, (off_t)off) == (ssize_t)n, "pwrite image: %s", strerror(errno));
    }
    CHECK(ftruncate(fd, (off_t)size) == 0, "ftruncate: %s", strerror(errno));
    close(fd);
}

static inline void image_remove(const char *path)
{
    unlink(path);
}

static inline void image_read(const char *path, uint64_t off, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    CHECK(pread(fd, buf, len, (off_t)off) == (ssize_t)len, "pread image: %s", strerror(errno));
    close(fd);
}

/* A block stamp: words 0/1 hold blocknr and version, the rest a mix of both. */
static inline void block_fill(void *data, uint32_t size, uint64_t blocknr, uint64_t version)
{
    uint64_t *w = data;
    w[0] = blocknr;
    w[1] = version;
    for (uint32_t i = 2; i < size / 8; i++)
        w[i] = (blocknr * 0x100000001b3ull) ^ (version * 0x9e3779b97f4a7c15ull) ^ i;
}

/* 1 if data holds a whole stamp of blocknr (any version); *version gets it. */
static inline int block_stamp_ok(const void *data, uint32_t size, uint64_t blocknr,
                                 uint64_t *version)
{
    const uint64_t *w = data;
    if (w[0] != blocknr)
        return 0;
    for (uint32_t i = 2; i < size / 8; i++)
        if (w[i] != ((blocknr * 0x100000001b3ull) ^ (w[1] * 0x9e3779b97f4a7c15ull) ^ i))
            return 0;
    if (version)
        *version = w[1];
    return 1;
}

/* image_create() of nblocks blocks of bs bytes, block b holding
 * block_fill(b, version 0). */
static inline void image_create_stamped(char *path, uint64_t nblocks, uint32_t bs)
{
    image_create(path, (size_t)nblocks * bs, 0);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    unsigned char *blk = malloc(bs);
    CHECK(blk, "malloc");
    for (uint64_t b = 0; b < nblocks; b++) {
        block_fill(blk, bs, b, 0);
        CHECK(pwrite(fd, blk, bs, (off_t)(b * bs)) == (ssize_t)bs, "init image: %s",
              strerror(errno));
    }
    free(blk);
    close(fd);
}

/* Stamp version v of block b through the cache: bh_get (getblk, nothing read:
 * the whole block is overwritten) or, when `read`, bh_read; then lock,
 * block_fill, mark dirty.  Returns the block still locked and referenced. */
static inline struct buffer_head *stamp_locked(struct bdev *dev, uint64_t b, uint64_t v,
                                               bool read)
{
    struct buffer_head *bh = read ? bh_read(dev, b) : bh_get(dev, b);
    CHECK(bh, "%s(%llu): %s", read ? "bh_read" : "bh_get", (unsigned long long)b,
          strerror(errno));
    bh_lock(bh);
    block_fill(bh->b_data, bh->b_size, b, v);
    bh_mark_dirty(bh);
    return bh;
}

/* stamp_locked(), then unlock and put. */
static inline void stamp_write(struct bdev *dev, uint64_t b, uint64_t v, bool read)
{
    struct buffer_head *bh = stamp_locked(dev, b, v, read);
    bh_unlock(bh);
    bh_put(bh);
}

static inline struct bcache *xbcache(size_t limit, unsigned expire_ms, unsigned dirty_pct)
{
    struct bcache_config cfg = {
        .memory_limit = limit, .dirty_expire_ms = expire_ms, .dirty_limit_percent = dirty_pct};
    struct bcache *bc = bcache_create(&cfg);
    CHECK(bc, "bcache_create(limit %zu): %s", limit, strerror(errno));
    return bc;
}

static inline struct bdev *xopen(struct bcache *bc, const char *path, unsigned bs, int flags)
{
    struct bdev *dev = bdev_open(bc, path, bs, flags);
    CHECK(dev, "bdev_open(%s, %u): %s", path, bs, strerror(errno));
    return dev;
}

static inline struct bcache_stats stats(struct bcache *bc)
{
    struct bcache_stats st;
    CHECK(bcache_get_stats(bc, &st) == 0, "bcache_get_stats failed");
    return st;
}

#define BCU_MAX_IMAGES 8
static char bcu_images[BCU_MAX_IMAGES][256];

static void bcu_cleanup(void)
{
    for (int i = 0; i < BCU_MAX_IMAGES; i++)
        if (bcu_images[i][0]) {
            unlink(bcu_images[i]);
            bcu_images[i][0] = 0;
        }
}

/* Deterministic content of (block, version): 8-byte words mixing both. */
static inline void fill_block(void *buf, size_t size, uint64_t block, uint64_t version)
{
    uint64_t *w = buf;
    uint64_t x = (block + 1) * 0x9e3779b97f4a7c15ull ^ (version + 7) * 0xc2b2ae3d27d4eb4full;
    w[0] = block;
    w[1] = version;
    for (size_t i = 2; i < size / 8; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w[i] = x;
    }
}

/* The version stored in a block, or -1 if its content is not a valid pattern
 * for this block number. */
static inline int64_t check_block(const void *buf, size_t size, uint64_t block)
{
    const uint64_t *w = buf;
    if (w[0] != block)
        return -1;
    static _Thread_local uint64_t tmp[4096 / 8];
    fill_block(tmp, size, block, w[1]);
    return memcmp(tmp, buf, size) == 0 ? (int64_t)w[1] : -1;
}

/* Create an image of nblocks blocks of block_size, every block at version 0.
 * Writes the path into path (>= 256 bytes). */
static inline void img_create(char *path, uint64_t nblocks, unsigned block_size)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, 256, "%s/bcache-test-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp(%s): %s", path, strerror(errno));
    for (int i = 0; i < BCU_MAX_IMAGES; i++)
        if (!bcu_images[i][0]) {
            strcpy(bcu_images[i], path);
            break;
        }
    static int registered;
    if (!registered++)
        atexit(bcu_cleanup);
    char buf[4096];
    for (uint64_t b = 0; b < nblocks; b++) {
        fill_block(buf, block_size, b, 0);
        CHECK(pwrite(fd, buf, block_size, (off_t)(b * block_size)) == (ssize_t)block_size,
              "pwrite image: %s", strerror(errno));
    }
    close(fd);
}

static inline void img_remove(const char *path)
{
    unlink(path);
    for (int i = 0; i < BCU_MAX_IMAGES; i++)
        if (!strcmp(bcu_images[i], path))
            bcu_images[i][0] = 0;
}

/* Read block b of the image file directly (bypassing the cache). */
static inline void img_read_block(const char *path, uint64_t b, unsigned block_size, void *buf)
{
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    CHECK(pread(fd, buf, block_size, (off_t)(b * block_size)) == (ssize_t)block_size,
          "pread image block %llu", (unsigned long long)b);
    close(fd);
}

/* Whole image file into a malloc'd buffer of *len bytes. */
static inline unsigned char *img_slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    struct stat st;
    CHECK(fstat(fd, &st) == 0, "fstat");
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    CHECK(buf, "malloc");
    CHECK(pread(fd, buf, (size_t)st.st_size, 0) == st.st_size, "pread whole image");
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

/* Write version v of block b through the cache (getblk, lock, fill, dirty). */
static inline void cache_write_block(struct bdev *dev, uint64_t b, uint64_t v)
{
    struct buffer_head *bh = bh_get(dev, b);
    CHECK(bh, "bh_get(%llu): %s", (unsigned long long)b, strerror(errno));
    bh_lock(bh);
    fill_block(bh->b_data, bh->b_size, b, v);
    bh_mark_dirty(bh);
    bh_unlock(bh);
    bh_put(bh);
}


/* Write random bytes (from *rng) into the bs-byte block data (locked by the
 * caller) and the same bytes into shadow, its model copy: all of it when whole,
 * else one random range [off, off + len). */
static inline void shadow_write(void *data, unsigned char *shadow, unsigned bs, bool whole,
                                uint64_t *rng)
{
    unsigned off = 0, len = bs;
    if (!whole) {
        off = (unsigned)(xorshift64(rng) % bs);
        len = 1 + (unsigned)(xorshift64(rng) % (bs - off));
    }
    for (unsigned i = off; i < off + len; i++)
        shadow[i] = (unsigned char)xorshift64(rng);
    memcpy((char *)data + off, shadow + off, len);
}

#endif
