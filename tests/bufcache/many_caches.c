/*
 * bufcache/many_caches: several bcaches in one process share the buffer_head cache.
 *
 * Six caches, each over its own image with its own block size and memory limit,
 * are used in random interleaved order (reads, writes, shrinks, syncs) and
 * destroyed in a scattered order.  Checks: one slab cache named "buffer_head"
 * serves them all; after slab_cache_shrink() its objects_active equals the sum
 * of the caches' buffer_heads_live (every buffer head is accounted to exactly one
 * cache and freed back to the slab cache, not leaked or double-freed); each
 * image holds its cache's writes after destroy; and the buffer_head cache is gone
 * (or empty) once the last bcache is destroyed.
 */
#include "bctest.h"

#include <slabdefrag/slab.h>

#define NCACHES 6
#define IMAGE   (256u << 10)

struct one {
    struct bcache *bc;
    struct bdev *dev;
    unsigned bs;
    char path[256];
    unsigned char shadow[IMAGE];
};

static struct one caches[NCACHES];

static uint64_t bh_active(void)
{
    struct slab_cache *s = slab_cache_find("buffer_head");
    CHECK(s, "no slab cache named buffer_head while bcaches live");
    slab_cache_shrink(s);
    struct slab_cache_stats st;
    CHECK(slab_cache_get_stats(s, &st) == 0, "slab stats");
    return st.objects_active;
}

static void check_accounting(void)
{
    /* bh_active() shrinks the buffer_head cache first: with buffer-head defrag
     * that may drop clean rings, so count the bcaches' live buffer heads after. */
    uint64_t active = bh_active();
    uint64_t live = 0;
    for (int i = 0; i < NCACHES; i++)
        if (caches[i].bc)
            live += stats(caches[i].bc).buffer_heads_live;
    CHECK(active == live, "buffer_head objects_active %llu != sum of buffer_heads_live %llu",
          (unsigned long long)active, (unsigned long long)live);
}

int main(void)
{
    static const unsigned sizes[] = {512, 1024, 2048, 4096};
    uint64_t rng = 0x3a11;
    for (int i = 0; i < NCACHES; i++) {
        struct one *c = &caches[i];
        c->bs = sizes[i % 4];
        image_create(c->path, IMAGE, (uint64_t)i + 1);
        image_read(c->path, 0, c->shadow, IMAGE);
        c->bc = xbcache(i % 2 ? 96u << 10 : 0, 50, 30);
        c->dev = xopen(c->bc, c->path, c->bs, O_RDWR);
    }
    for (int step = 0; step < 20000; step++) {
        struct one *c = &caches[xorshift64(&rng) % NCACHES];
        uint64_t b = xorshift64(&rng) % (IMAGE / c->bs);
        unsigned r = (unsigned)(xorshift64(&rng) % 100);
        if (r < 90) {
            struct buffer_head *bh = bh_read(c->dev, b);
            CHECK(bh, "bh_read: %s", strerror(errno));
            CHECK(memcmp(bh->b_data, c->shadow + b * c->bs, c->bs) == 0, "stale block");
            if (r < 40) {
                bh_lock(bh);
                unsigned char x = (unsigned char)xorshift64(&rng);
                memset(bh->b_data, x, 32);
                memset(c->shadow + b * c->bs, x, 32);
                bh_mark_dirty(bh);
                bh_unlock(bh);
            }
            bh_put(bh);
        } else if (r < 97) {
            CHECK(bcache_shrink(c->bc, (size_t)(xorshift64(&rng) % (128u << 10))) >= 0, "shrink");
        } else {
            CHECK(bdev_sync(c->dev) == 0, "bdev_sync");
        }
        if (step % 2500 == 0)
            check_accounting();
    }
    check_accounting();
    static const int order[NCACHES] = {3, 0, 5, 1, 4, 2};
    for (int k = 0; k < NCACHES; k++) {
        struct one *c = &caches[order[k]];
        CHECK(bcache_destroy(c->bc) == 0, "destroy");
        c->bc = NULL;
        static unsigned char file[IMAGE];
        image_read(c->path, 0, file, IMAGE);
        CHECK(memcmp(file, c->shadow, IMAGE) == 0, "cache %d: image differs after destroy",
              order[k]);
        image_remove(c->path);
        if (k < NCACHES - 1)
            check_accounting();
    }
    struct slab_cache *s = slab_cache_find("buffer_head");
    if (s) {
        slab_cache_shrink(s);
        struct slab_cache_stats st;
        slab_cache_get_stats(s, &st);
        CHECK(st.objects_active == 0, "%llu buffer heads outlive every bcache",
              (unsigned long long)st.objects_active);
    }
    printf("many_caches: ok\n");
    return 0;
}
