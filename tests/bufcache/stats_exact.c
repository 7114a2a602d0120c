/*
 * bufcache/stats_exact: the statistics count exactly, and memory is accounted
 * honestly (frames + descriptors + buffer heads + index).
 *
 * Single-threaded, flusher out of the way (60 s expiry), 1 KiB blocks (a ring
 * of four buffer heads per page):
 *   first bh_read of a page: 1 miss, 1 read, 1 page, 4 live buffer heads;
 *   another block of the same page: a miss and a read, or a hit if the first
 *   read brought the whole page in; no new page;
 *   bh_read of an uptodate block: a hit, no read;
 *   write + bdev_sync: 1 write, >= 1 flush, 1 page written, 0 dirty pages after;
 *   a failed write (injected, <slabdefrag/buffer_fault.h>): 1 writeback error, the page stays dirty;
 *   bcache_shrink(SIZE_MAX): every page evicted, 0 live buffer heads.
 * Memory: memory_used >= cached_pages * 4096 + descriptor_bytes +
 * buffer_head_bytes + index_bytes at every step, and equal to that plus the
 * empty cache's own small fixed size (< 64 KiB) once shrink has handed the
 * free frames back; buffer_head_bytes >= 56 bytes per live buffer head (a
 * buffer head is not free); descriptor_bytes > 0 while pages are cached.
 */
#include "bctest.h"

#include <slabdefrag/buffer_fault.h>

#define BS 1024u

static struct bcache *bc;
static uint64_t fixed; /* memory_used of an empty cache beyond its index: the bcache itself */

static void check_memory(const char *when, int exact)
{
    struct bcache_stats s = stats(bc);
    uint64_t parts = s.cached_pages * 4096 + s.descriptor_bytes + s.buffer_head_bytes +
                     s.index_bytes;
    CHECK(s.memory_used >= parts, "%s: memory_used %llu < parts %llu", when,
          (unsigned long long)s.memory_used, (unsigned long long)parts);
    if (exact)
        CHECK(s.memory_used == parts + fixed, "%s: memory_used %llu != parts %llu + the "
              "empty cache's %llu", when, (unsigned long long)s.memory_used,
              (unsigned long long)parts, (unsigned long long)fixed);
    CHECK(s.buffer_head_bytes >= s.buffer_heads_live * 56, "%s: %llu bytes for %llu buffer heads",
          when, (unsigned long long)s.buffer_head_bytes, (unsigned long long)s.buffer_heads_live);
    CHECK(s.index_bytes > 0, "%s: the index costs nothing?", when);
    if (s.cached_pages)
        CHECK(s.descriptor_bytes >= s.cached_pages * 32, "%s: descriptors %llu bytes for %llu pages",
              when, (unsigned long long)s.descriptor_bytes, (unsigned long long)s.cached_pages);
    CHECK(s.memory_used <= s.memory_limit, "%s: over the limit", when);
}

static struct buffer_head *xread(struct bdev *dev, uint64_t b)
{
    struct buffer_head *bh = bh_read(dev, b);
    CHECK(bh, "bh_read(%llu): %s", (unsigned long long)b, strerror(errno));
    return bh;
}

static void dirty(struct buffer_head *bh, int byte)
{
    bh_lock(bh);
    memset(bh->b_data, byte, BS);
    bh_mark_dirty(bh);
    bh_unlock(bh);
}

int main(void)
{
    char path[256];
    image_create(path, 256u << 10, 0x57a7);
    bc = xbcache(4u << 20, 60000, 50);
    struct bdev *dev = xopen(bc, path, BS, O_RDWR);
    struct bcache_stats s0 = stats(bc), s;
    CHECK(s0.cached_pages == 0 && s0.buffer_heads_live == 0 && s0.hits == 0 && s0.misses == 0,
          "a new cache is not empty");
    fixed = s0.memory_used - s0.index_bytes - s0.descriptor_bytes;
    CHECK(fixed < (64u << 10), "an empty cache uses %llu bytes besides its index",
          (unsigned long long)fixed);
    check_memory("empty", 1);

    bh_put(xread(dev, 0));
    s = stats(bc);
    CHECK(s.misses == 1 && s.hits == 0 && s.reads == 1, "first read: %llu misses %llu hits "
          "%llu reads", (unsigned long long)s.misses, (unsigned long long)s.hits,
          (unsigned long long)s.reads);
    CHECK(s.cached_pages == 1 && s.buffer_heads_live == 4, "first read: %llu pages, %llu bhs",
          (unsigned long long)s.cached_pages, (unsigned long long)s.buffer_heads_live);
    check_memory("one page", 0);

    /* The second block of the page: either read now (a miss and a read), or
     * already read with the first one (a page-sized read: a hit, no read). */
    bh_put(xread(dev, 1));
    s = stats(bc);
    int page_reads = s.reads == 1;
    uint64_t m = page_reads ? 1 : 2, h = page_reads ? 1 : 0;
    CHECK(s.misses == m && s.hits == h && s.cached_pages == 1 && s.buffer_heads_live == 4,
          "second block of the page: %llu misses, %llu hits, %llu reads, %llu pages, %llu bhs",
          (unsigned long long)s.misses, (unsigned long long)s.hits, (unsigned long long)s.reads,
          (unsigned long long)s.cached_pages, (unsigned long long)s.buffer_heads_live);

    bh_put(xread(dev, 0));
    bh_put(xread(dev, 1));
    s = stats(bc);
    CHECK(s.hits == h + 2 && s.misses == m && s.reads == m, "hits: %llu hits %llu misses "
          "%llu reads", (unsigned long long)s.hits, (unsigned long long)s.misses,
          (unsigned long long)s.reads);

    struct buffer_head *bh = xread(dev, 0);
    dirty(bh, 1);
    bh_put(bh);
    CHECK(stats(bc).dirty_pages == 1, "dirty_pages after one write");
    CHECK(bdev_sync(dev) == 0, "bdev_sync");
    s = stats(bc);
    CHECK(s.writes == 1 && s.flushes >= 1 && s.pages_written == 1 && s.dirty_pages == 0,
          "sync: %llu writes %llu flushes %llu pages written %llu dirty",
          (unsigned long long)s.writes, (unsigned long long)s.flushes,
          (unsigned long long)s.pages_written, (unsigned long long)s.dirty_pages);
    CHECK(s.writeback_errors == 0, "writeback errors without a failure");

    bh = xread(dev, 9);
    dirty(bh, 2);
    bh_put(bh);
    CHECK(bdev_fault_inject(dev, BDEV_IO_WRITE, 1, EIO, 0) == 0, "inject");
    CHECK(bdev_sync(dev) == -EIO, "failed sync");
    s = stats(bc);
    CHECK(s.writeback_errors == 1 && s.dirty_pages == 1, "failed write: %llu errors, %llu dirty",
          (unsigned long long)s.writeback_errors, (unsigned long long)s.dirty_pages);
    CHECK(bdev_sync(dev) == 0 && stats(bc).dirty_pages == 0, "retry");

    for (uint64_t b = 0; b < 256; b += 3)
        bh_put(xread(dev, b));
    check_memory("many pages", 0);
    uint64_t pages = stats(bc).cached_pages, ev0 = stats(bc).evictions;
    CHECK(pages == 64, "%llu pages cached of 64", (unsigned long long)pages);
    CHECK(bcache_shrink(bc, SIZE_MAX) > 0, "shrink freed nothing");
    s = stats(bc);
    CHECK(s.cached_pages == 0 && s.buffer_heads_live == 0, "after shrink: %llu pages %llu bhs",
          (unsigned long long)s.cached_pages, (unsigned long long)s.buffer_heads_live);
    CHECK(s.evictions - ev0 == pages, "evictions %llu for %llu pages",
          (unsigned long long)(s.evictions - ev0), (unsigned long long)pages);
    check_memory("after a full shrink", 1);

    CHECK(bdev_close(dev) == 0 && bcache_destroy(bc) == 0, "close/destroy");
    image_remove(path);
    printf("stats_exact: ok\n");
    return 0;
}
