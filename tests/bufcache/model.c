/*
 * bufcache/model: model-based random operations against an in-memory shadow.
 *
 * The shadow is what the image must contain once everything is synced.  Random
 * operations: bh_read (data must equal the shadow), partial and whole-block
 * writes (bh_read or bh_get, lock, change, bh_mark_dirty), holding references
 * across other operations, bh_sync (that block must then be in the file),
 * bdev_sync (the whole file must then equal the shadow, byte for byte),
 * bcache_shrink with random targets, and close/reopen with another block size
 * (close syncs; the cache forgets the device), a third of the opens with
 * O_DIRECT where the file system allows it.  The memory limit is a quarter of
 * the image, so eviction and the flusher (20 ms expiry) run all the time.
 * bcache_validate is called at every sync.
 *
 * Usage: test_bufcache_model [seed [ops]]; the seed is printed on failure.
 */
#include "bctest.h"

#define IMAGE_SIZE (1u << 20)
#define MAX_HELD   6

static uint64_t g_seed;
static unsigned char *shadow;
static unsigned char *filebuf;
static const char *img;

#define MCHECK(cond, ...)                                                              \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "model: seed %llu\n", (unsigned long long)g_seed);         \
            CHECK(cond, __VA_ARGS__);                                                  \
        }                                                                              \
    } while (0)

static void compare_file(const char *when)
{
    image_read(img, 0, filebuf, IMAGE_SIZE);
    for (size_t i = 0; i < IMAGE_SIZE; i++)
        MCHECK(filebuf[i] == shadow[i], "%s: file byte %zu is %02x, shadow %02x", when, i,
               filebuf[i], shadow[i]);
}

struct state {
    struct bcache *bc;
    struct bdev *dev;
    unsigned bs;
    uint64_t nblocks;
    struct buffer_head *held[MAX_HELD];
    unsigned nheld;
    uint64_t rng;
};

static void release_all(struct state *s)
{
    while (s->nheld)
        bh_put(s->held[--s->nheld]);
}

static void op_read(struct state *s, uint64_t b)
{
    struct buffer_head *bh = bh_read(s->dev, b);
    MCHECK(bh, "bh_read(%llu): %s", (unsigned long long)b, strerror(errno));
    MCHECK(memcmp(bh->b_data, shadow + b * s->bs, s->bs) == 0, "block %llu differs from shadow",
           (unsigned long long)b);
    if (s->nheld < MAX_HELD && xorshift64(&s->rng) % 4 == 0)
        s->held[s->nheld++] = bh;
    else
        bh_put(bh);
}

static void op_write(struct state *s, uint64_t b)
{
    int whole = xorshift64(&s->rng) % 3 == 0;
    struct buffer_head *bh = whole ? bh_get(s->dev, b) : bh_read(s->dev, b);
    MCHECK(bh, "get/read(%llu): %s", (unsigned long long)b, strerror(errno));
    unsigned char *mine = shadow + b * s->bs;
    bh_lock(bh);
    if (!whole)
        MCHECK(memcmp(bh->b_data, mine, s->bs) == 0, "block %llu differs before a write",
               (unsigned long long)b);
    shadow_write(bh->b_data, mine, s->bs, whole, &s->rng);
    bh_mark_dirty(bh);
    bh_unlock(bh);
    if (xorshift64(&s->rng) % 16 == 0) {
        MCHECK(bh_sync(bh) == 0, "bh_sync: %s", strerror(errno));
        unsigned char buf[4096];
        image_read(img, b * s->bs, buf, s->bs);
        MCHECK(memcmp(buf, mine, s->bs) == 0, "bh_sync(%llu) did not write it",
               (unsigned long long)b);
    }
    if (s->nheld < MAX_HELD && xorshift64(&s->rng) % 4 == 0)
        s->held[s->nheld++] = bh;
    else
        bh_put(bh);
}

/* O_DIRECT works on the image's file system (probed once): 1 or 0. */
static int direct_ok = -1;

static void open_dev(struct state *s)
{
    static const unsigned sizes[] = {512, 1024, 2048, 4096};
    s->bs = sizes[xorshift64(&s->rng) % 4];
    s->nblocks = IMAGE_SIZE / s->bs;
    int flags = O_RDWR;
    if (direct_ok && xorshift64(&s->rng) % 3 == 0) {
        s->dev = bdev_open(s->bc, img, s->bs, O_RDWR | O_DIRECT);
        if (s->dev)
            return;
        MCHECK(errno == EINVAL, "bdev_open O_DIRECT: %s", strerror(errno));
        direct_ok = 0; /* tmpfs, or a sector size above this block size */
    }
    s->dev = xopen(s->bc, img, s->bs, flags);
}

static void op_sync(struct state *s)
{
    MCHECK(bdev_sync(s->dev) == 0, "bdev_sync: %s", strerror(errno));
    compare_file("after bdev_sync");
    /* validate needs a quiet cache: the only other thread is the flusher, and
     * nothing is dirty now, so it has nothing to do */
    MCHECK(bcache_validate(s->bc) == 0, "bcache_validate");
    struct bcache_stats st = stats(s->bc);
    MCHECK(st.memory_used <= st.memory_limit, "memory %llu over limit %llu",
           (unsigned long long)st.memory_used, (unsigned long long)st.memory_limit);
}

static void step(struct state *s)
{
    unsigned r = (unsigned)(xorshift64(&s->rng) % 100);
    /* a hot region makes hits, the rest of the image makes misses */
    uint64_t span = xorshift64(&s->rng) % 2 ? s->nblocks / 16 : s->nblocks;
    uint64_t b = xorshift64(&s->rng) % span;
    if (r < 40)
        op_read(s, b);
    else if (r < 80)
        op_write(s, b);
    else if (r < 88)
        release_all(s);
    else if (r < 93)
        op_sync(s);
    else if (r < 98) {
        long freed = bcache_shrink(s->bc, (size_t)(xorshift64(&s->rng) % (256u << 10)));
        MCHECK(freed >= 0, "bcache_shrink: %ld", freed);
    } else {
        release_all(s);
        MCHECK(bdev_close(s->dev) == 0, "bdev_close: %s", strerror(errno));
        compare_file("after bdev_close");
        open_dev(s);
    }
}

int main(int argc, char **argv)
{
    g_seed = test_seed(argc, argv, 1, 0x5eed0001);
    long ops = argc > 2 ? atol(argv[2]) : under_sanitizer() ? 3000 : 12000;
    char path[256];
    image_create(path, IMAGE_SIZE, g_seed);
    img = path;
    shadow = malloc(IMAGE_SIZE);
    filebuf = malloc(IMAGE_SIZE);
    image_read(path, 0, shadow, IMAGE_SIZE);

    struct state s = {.rng = g_seed};
    s.bc = xbcache(IMAGE_SIZE / 4, 20, 30);
    open_dev(&s);
    for (long i = 0; i < ops; i++)
        step(&s);
    release_all(&s);
    struct bcache_stats st = stats(s.bc);
    MCHECK(st.evictions > 0, "no evictions under a quarter-image limit");
    MCHECK(st.hits > 0 && st.misses > 0, "hits %llu misses %llu", (unsigned long long)st.hits,
           (unsigned long long)st.misses);
    MCHECK(bcache_destroy(s.bc) == 0, "bcache_destroy (closes and syncs)");
    compare_file("after bcache_destroy");
    printf("model: seed %llu, %ld ops, %llu hits, %llu misses, %llu evictions, %llu writes\n",
           (unsigned long long)g_seed, ops, (unsigned long long)st.hits,
           (unsigned long long)st.misses, (unsigned long long)st.evictions,
           (unsigned long long)st.writes);
    image_remove(path);
    free(shadow);
    free(filebuf);
    return 0;
}
