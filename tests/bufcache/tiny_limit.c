/*
 * bufcache/tiny_limit: the smallest memory limit forces constant eviction.
 *
 * memory_limit = BCACHE_MIN_MEMORY_LIMIT over a 1 MiB image with 512-byte blocks
 * (eight buffer heads per page: the most metadata per byte).  Random reads and
 * writes against a shadow copy; after every operation memory_used (frames +
 * descriptors + buffer heads + index) must be within the limit.  Two buffer
 * heads stay referenced through the whole churn: their pages are never evicted
 * (same b_data, same contents, no re-read).  Then references are taken on
 * distinct pages until bh_read fails: it must fail with ENOMEM (not crash, not
 * exceed the limit), and work again once they are dropped.  The file must equal
 * the shadow after bcache_destroy.
 */
#include "bctest.h"

#define BS      512u
#define NBLOCKS 2048u /* 1 MiB */

static unsigned char shadow[NBLOCKS * BS];
static unsigned char filebuf[NBLOCKS * BS];

static void check_limit(struct bcache *bc, long op)
{
    struct bcache_stats st = stats(bc);
    CHECK(st.memory_used <= st.memory_limit, "op %ld: memory_used %llu > limit %llu", op,
          (unsigned long long)st.memory_used, (unsigned long long)st.memory_limit);
}

int main(int argc, char **argv)
{
    uint64_t rng = test_seed(argc, argv, 1, 0x7171);
    long ops = under_sanitizer() ? 5000 : 40000;
    char path[256];
    image_create(path, sizeof shadow, 0x7171);
    image_read(path, 0, shadow, sizeof shadow);
    struct bcache *bc = xbcache(BCACHE_MIN_MEMORY_LIMIT, 50, 50);
    struct bdev *dev = xopen(bc, path, BS, O_RDWR);

    /* two long-lived references */
    struct buffer_head *pinned[2] = {bh_read(dev, 100), bh_read(dev, 1500)};
    CHECK(pinned[0] && pinned[1], "bh_read: %s", strerror(errno));
    void *pinned_data[2] = {pinned[0]->b_data, pinned[1]->b_data};

    for (long i = 0; i < ops; i++) {
        uint64_t b = xorshift64(&rng) % NBLOCKS;
        struct buffer_head *bh = bh_read(dev, b);
        CHECK(bh, "op %ld: bh_read(%llu): %s", i, (unsigned long long)b, strerror(errno));
        CHECK(memcmp(bh->b_data, shadow + b * BS, BS) == 0, "op %ld: block %llu stale", i,
              (unsigned long long)b);
        if (xorshift64(&rng) % 3 == 0) {
            bh_lock(bh);
            unsigned char x = (unsigned char)xorshift64(&rng);
            memset(bh->b_data, x, 64);
            memset(shadow + b * BS, x, 64);
            bh_mark_dirty(bh);
            bh_unlock(bh);
        }
        bh_put(bh);
        check_limit(bc, i);
    }
    for (int k = 0; k < 2; k++) {
        CHECK(pinned[k]->b_data == pinned_data[k], "a referenced buffer moved");
        CHECK(memcmp(pinned[k]->b_data, shadow + pinned[k]->b_blocknr * BS, BS) == 0,
              "a referenced buffer's data changed");
    }
    struct bcache_stats st = stats(bc);
    CHECK(st.evictions > 1000, "only %llu evictions", (unsigned long long)st.evictions);

    /* exhaust the limit with references on distinct pages */
    static struct buffer_head *held[NBLOCKS];
    unsigned nheld = 0;
    uint64_t b;
    for (b = 0; b < NBLOCKS; b += 4096 / BS) {
        struct buffer_head *bh = bh_read(dev, b);
        if (!bh)
            break;
        held[nheld++] = bh;
        check_limit(bc, -1);
    }
    CHECK(b < NBLOCKS && errno == ENOMEM, "referenced pages never exhausted the limit "
          "(%u held, errno %d)", nheld, errno);
    CHECK(nheld >= 4, "only %u pages fit in the minimum limit", nheld);
    for (unsigned k = 0; k < nheld; k++)
        CHECK(memcmp(held[k]->b_data, shadow + held[k]->b_blocknr * BS, BS) == 0,
              "held block changed");
    while (nheld)
        bh_put(held[--nheld]);
    struct buffer_head *bh = bh_read(dev, b);
    CHECK(bh, "bh_read after releasing: %s", strerror(errno));
    bh_put(bh);
    bh_put(pinned[0]);
    bh_put(pinned[1]);

    CHECK(bcache_destroy(bc) == 0, "destroy");
    image_read(path, 0, filebuf, sizeof filebuf);
    CHECK(memcmp(filebuf, shadow, sizeof shadow) == 0, "file differs from shadow");
    image_remove(path);
    printf("tiny_limit: ok, %llu evictions, %llu writes\n", (unsigned long long)st.evictions,
           (unsigned long long)st.writes);
    return 0;
}
