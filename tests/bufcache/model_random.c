/*
 * model_random: random reads, writes (whole and partial blocks), bh_sync,
 * bdev_sync, shrinks and held references against an in-memory shadow copy of
 * the device.  Every read is compared with the shadow; after every bdev_sync the
 * image file must equal the shadow byte for byte.  Runs every block size with a
 * tiny memory limit (constant eviction) and a roomy one, with a 20 ms flusher.
 * Usage: model_random [seed] [ops per configuration]
 */
#include "bctest.h"

struct model {
    struct bcache *bc;
    struct bdev *dev;
    const char *path;
    unsigned bs;
    uint64_t nblocks;
    unsigned char *shadow;
    size_t limit;
    uint64_t rng;
    struct buffer_head *held[3];
};

static void compare_image(struct model *md, const char *when)
{
    size_t len;
    unsigned char *img = img_slurp(md->path, &len);
    CHECK(len == md->nblocks * md->bs, "image length %zu", len);
    for (uint64_t b = 0; b < md->nblocks; b++)
        CHECK(!memcmp(img + b * md->bs, md->shadow + b * md->bs, md->bs),
              "%s: image block %llu differs from the shadow (bs %u)", when,
              (unsigned long long)b, md->bs);
    free(img);
}

static void op_read(struct model *md, uint64_t b)
{
    struct buffer_head *bh = bh_read(md->dev, b);
    CHECK(bh, "bh_read(%llu): %s", (unsigned long long)b, strerror(errno));
    CHECK(bh->b_blocknr == b && bh->b_size == md->bs, "bh fields");
    bh_lock(bh);
    CHECK(!memcmp(bh->b_data, md->shadow + b * md->bs, md->bs),
          "block %llu read differs from the shadow (bs %u)", (unsigned long long)b, md->bs);
    bh_unlock(bh);
    bh_put(bh);
}

static void op_write(struct model *md, uint64_t b)
{
    bool whole = xorshift64(&md->rng) % 3 == 0;
    struct buffer_head *bh = whole ? bh_get(md->dev, b) : bh_read(md->dev, b);
    CHECK(bh, "bh_get/read(%llu): %s", (unsigned long long)b, strerror(errno));
    unsigned char *sh = md->shadow + b * md->bs;
    bh_lock(bh);
    shadow_write(bh->b_data, sh, md->bs, whole, &md->rng);
    bh_mark_dirty(bh);
    bh_unlock(bh);
    bh_put(bh);
}

static void op_fill_uptodate(struct model *md, uint64_t b)
{
    struct buffer_head *bh = bh_get(md->dev, b);
    CHECK(bh, "bh_get(%llu): %s", (unsigned long long)b, strerror(errno));
    bh_lock(bh);
    memcpy(bh->b_data, md->shadow + b * md->bs, md->bs); /* the caller knows the content */
    bh_mark_uptodate(bh);
    bh_unlock(bh);
    bh_put(bh);
}

static void op_hold(struct model *md, uint64_t b)
{
    unsigned slot = (unsigned)(xorshift64(&md->rng) % 3);
    if (md->held[slot]) {
        bh_put(md->held[slot]);
        md->held[slot] = NULL;
    } else {
        md->held[slot] = bh_read(md->dev, b);
        CHECK(md->held[slot], "hold bh_read: %s", strerror(errno));
    }
}

static void step(struct model *md)
{
    uint64_t b = xorshift64(&md->rng) % md->nblocks;
    unsigned r = (unsigned)(xorshift64(&md->rng) % 100);
    if (r < 35) {
        op_read(md, b);
    } else if (r < 65) {
        op_write(md, b);
    } else if (r < 71) {
        struct buffer_head *bh = bh_get(md->dev, b);
        CHECK(bh, "bh_get: %s", strerror(errno));
        CHECK(bh_sync(bh) == 0, "bh_sync: %s", strerror(errno));
        bh_put(bh);
        unsigned char buf[4096];
        img_read_block(md->path, b, md->bs, buf);
        CHECK(!memcmp(buf, md->shadow + b * md->bs, md->bs), "block %llu after bh_sync",
              (unsigned long long)b);
    } else if (r < 76) {
        CHECK(bdev_sync(md->dev) == 0, "bdev_sync: %s", strerror(errno));
        compare_image(md, "after bdev_sync");
    } else if (r < 82) {
        size_t target = (size_t)(xorshift64(&md->rng) % (md->limit / 2));
        CHECK(bcache_shrink(md->bc, target) >= 0, "bcache_shrink");
    } else if (r < 88) {
        op_hold(md, b);
    } else if (r < 94) {
        op_fill_uptodate(md, b);
    } else {
        CHECK(bcache_validate(md->bc) == 0, "bcache_validate");
    }
    struct bcache_stats st = stats(md->bc);
    CHECK(st.memory_used <= st.memory_limit, "memory %llu over limit %llu",
          (unsigned long long)st.memory_used, (unsigned long long)st.memory_limit);
}

static void run(unsigned bs, size_t limit, uint64_t seed, unsigned ops)
{
    char path[256];
    unsigned bpp = 4096 / bs;
    struct model md = {.bs = bs, .limit = limit, .rng = seed * 31 + bs + limit};
    md.nblocks = 40ull * bpp + (bpp > 1 ? bpp / 2 + 1 : 0); /* partial last page */
    img_create(path, md.nblocks, bs);
    md.path = path;
    md.shadow = malloc(md.nblocks * bs);
    for (uint64_t b = 0; b < md.nblocks; b++)
        fill_block(md.shadow + b * bs, bs, b, 0);
    md.bc = xbcache(limit, 20, 30);
    md.dev = bdev_open(md.bc, path, bs, O_RDWR);
    CHECK(md.dev, "bdev_open: %s", strerror(errno));
    for (unsigned i = 0; i < ops; i++)
        step(&md);
    for (int i = 0; i < 3; i++)
        bh_put(md.held[i]);
    CHECK(bdev_sync(md.dev) == 0, "final bdev_sync: %s", strerror(errno));
    compare_image(&md, "final sync");
    CHECK(bcache_validate(md.bc) == 0, "final validate");
    struct bcache_stats st = stats(md.bc);
    if (limit < 256 * 1024)
        CHECK(st.evictions > 0, "a tiny cache must evict (bs %u)", bs);
    CHECK(bdev_close(md.dev) == 0, "bdev_close");
    CHECK(bcache_destroy(md.bc) == 0, "bcache_destroy");
    compare_image(&md, "after close");
    free(md.shadow);
    img_remove(path);
}

int main(int argc, char **argv)
{
    uint64_t seed = test_seed(argc, argv, 1, 0x5eed1234);
    unsigned ops = argc > 2 ? (unsigned)atoi(argv[2]) : 1500;
    const unsigned sizes[] = {512, 1024, 2048, 4096};
    const size_t limits[] = {64 << 10, 1 << 20};
    for (unsigned s = 0; s < 4; s++)
        for (unsigned l = 0; l < 2; l++) {
            uint64_t rs = seed + s * 16 + l;
            fprintf(stderr, "model_random: bs %u limit %zu seed %llu\n", sizes[s], limits[l],
                    (unsigned long long)rs);
            run(sizes[s], limits[l], rs, ops);
        }
    return 0;
}
