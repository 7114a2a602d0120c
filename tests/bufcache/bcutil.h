/*
 * bcutil.h: helpers shared by the buffer-cache tests (header only; each test
 * program includes it).
 *
 * Image files: img_create() makes a temporary image under $TMPDIR (or /tmp)
 * with mkstemp and fills it with a pattern that depends on (block, version 0);
 * img_remove() deletes it.  Every test removes its images, also on the normal
 * failure path (CHECK exits; an atexit hook removes registered images).
 * Block contents: fill_block() writes a pattern derived from (block number,
 * version, block size) and check_block() recognises it, so any block can be
 * checked for "which version is this" without a shadow copy.
 */
#ifndef SLABDEFRAG_TESTS_BCUTIL_H
#define SLABDEFRAG_TESTS_BCUTIL_H

#define _GNU_SOURCE
#include <slabdefrag/buffer.h>

#include "testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static inline struct bcache *cache_new(size_t limit, unsigned expire_ms, unsigned dirty_pct)
{
    struct bcache_config cfg = {.memory_limit = limit, .dirty_expire_ms = expire_ms,
                                .dirty_limit_percent = dirty_pct};
    struct bcache *bc = bcache_create(&cfg);
    CHECK(bc, "bcache_create: %s", strerror(errno));
    return bc;
}

static inline struct bcache_stats stats_of(struct bcache *bc)
{
    struct bcache_stats st;
    CHECK(bcache_get_stats(bc, &st) == 0, "bcache_get_stats");
    return st;
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

#endif
