/*
 * ring_reconstruct: buffer heads are reconstructible.  The release routine
 * (page_release_buffers, what bh_defrag.c's kick calls) drops the ring of a
 * cached page only when every buffer is unreferenced, clean and unlocked and the
 * page is not dirty; the next access rebuilds the ring with no device I/O and
 * the same state: data, and which blocks are uptodate (a block that was never
 * read is read on its next bh_read, one that was filled with bh_get +
 * bh_mark_uptodate is not).  Checked for 1 KiB blocks (4 buffer heads per page)
 * and 4 KiB blocks.
 */
#include "bctest.h"

#include "bufcache/internal.h"

static struct bc_page *page_of(struct buffer_head *bh)
{
    return bh_page(bh_impl(bh));
}

/* The release routine as kick will call it: pinned and locked by the caller. */
static int release(struct bc_page *p)
{
    CHECK(page_get_unless_zero(p), "pin a cached page");
    page_lock(p);
    int r = page_release_buffers(p, 1);
    page_unlock(p);
    page_put(p);
    return r;
}

static void run(unsigned bs)
{
    char path[256];
    const unsigned bpp = 4096 / bs;
    const uint64_t nblocks = 16ull * bpp;
    img_create(path, nblocks, bs);
    struct bcache *bc = xbcache(1 << 20, 3600 * 1000, 50);
    struct bdev *dev = bdev_open(bc, path, bs, O_RDWR);
    CHECK(dev, "bdev_open: %s", strerror(errno));

    /* A read page: referenced -> refused; unreferenced -> released. */
    uint64_t b = 3 * bpp + (bpp - 1);
    struct buffer_head *bh = bh_read(dev, b);
    CHECK(bh, "bh_read: %s", strerror(errno));
    struct bc_page *p = page_of(bh);
    CHECK(release(p) == -EBUSY, "released a ring with a referenced buffer");
    bh_put(bh);
    struct bcache_stats before = stats(bc);
    CHECK(release(p) == (int)bpp, "release of a clean, unreferenced ring");
    struct bcache_stats after = stats(bc);
    CHECK(after.buffer_heads_live == before.buffer_heads_live - bpp, "buffer heads freed");
    CHECK(after.rings_dropped == before.rings_dropped + 1, "rings_dropped counted");
    CHECK(after.memory_used == before.memory_used - bpp * (before.buffer_head_bytes /
                                                           before.buffer_heads_live),
          "buffer-head memory uncharged");
    CHECK(!(page_flags(p) & PG_HAS_BUFFERS), "PG_HAS_BUFFERS cleared");
    CHECK(release(p) == -EBUSY, "nothing left to release");
    CHECK(bcache_validate(bc) == 0, "validate after release");

    /* Rebuilt on the next access, with no I/O, same data. */
    for (unsigned k = 0; k < bpp; k++) {
        bh = bh_read(dev, 3 * bpp + k);
        CHECK(bh && check_block(bh->b_data, bs, 3 * bpp + k) == 0, "rebuilt block data");
        bh_put(bh);
    }
    struct bcache_stats rebuilt = stats(bc);
    CHECK(rebuilt.reads == after.reads, "rebuilding the ring did I/O");
    CHECK(rebuilt.rings_rebuilt == after.rings_rebuilt + 1, "one ring rebuilt");
    CHECK(rebuilt.hits == after.hits + bpp, "rebuilt blocks are hits");

    /* Dirty: refused until written back. */
    cache_write_block(dev, 5 * bpp, 1);
    p = page_of(bh = bh_get(dev, 5 * bpp));
    bh_put(bh);
    CHECK(release(p) == -EBUSY, "released a dirty ring");
    CHECK(bdev_sync(dev) == 0, "sync");
    CHECK(release(p) == (int)bpp, "release after writeback");
    bh = bh_read(dev, 5 * bpp);
    CHECK(bh && check_block(bh->b_data, bs, 5 * bpp) == 1, "written data survives release");
    bh_put(bh);

    /* Locked (and referenced, as a lock holder must be): refused. */
    bh = bh_read(dev, 6 * bpp);
    bh_lock(bh);
    CHECK(release(page_of(bh)) == -EBUSY, "released a locked buffer");
    bh_unlock(bh);
    bh_put(bh);

    /* Partly uptodate page: the uptodate state survives the release. */
    if (bpp > 1) {
        uint64_t first = 9 * bpp;
        bh = bh_get(dev, first);
        bh_lock(bh);
        fill_block(bh->b_data, bs, first, 7); /* not written: cache-only content */
        bh_mark_uptodate(bh);
        bh_unlock(bh);
        p = page_of(bh);
        bh_put(bh);
        CHECK(release(p) == (int)bpp, "release of a partly uptodate page");
        struct bcache_stats s0 = stats(bc);
        bh = bh_read(dev, first);
        CHECK(bh && check_block(bh->b_data, bs, first) == 7, "filled block kept");
        bh_put(bh);
        CHECK(stats(bc).reads == s0.reads, "an uptodate block was re-read");
        bh = bh_read(dev, first + 1);
        CHECK(bh && check_block(bh->b_data, bs, first + 1) == 0, "unread block read from disk");
        bh_put(bh);
        CHECK(stats(bc).reads > s0.reads, "a never-read block was not read");
        bh = bh_read(dev, first);
        CHECK(bh && check_block(bh->b_data, bs, first) == 7,
              "reading the rest of the page clobbered an uptodate block");
        bh_put(bh);
    }
    CHECK(bcache_validate(bc) == 0, "validate");
    CHECK(bdev_close(dev) == 0, "close");
    CHECK(bcache_destroy(bc) == 0, "destroy");
    img_remove(path);
}

int main(void)
{
    run(1024);
    run(4096);
    return 0;
}
