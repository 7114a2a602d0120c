/*
 * bh_size: a buffer head occupies at most 56 bytes of slab memory — the
 * allocator's free pointer lies inside the object (over b_blocknr), with no
 * cache-line padding — and a freed buffer head keeps the fields get/kick read
 * (b_page is NULL once its ring is freed).
 *
 * Checks: the "buffer_head" cache's object stride (slab internals) is <= 56
 * and its objects_per_slab is what 56-byte slots give; after a 1 KiB-block
 * device is read (rings of 4) and shrunk away, every slot of every buffer_head
 * slab that is free reads b_page == NULL, the caches validate, and the data
 * reads back right afterwards.
 */
#include "bctest.h"

#include "bufcache/internal.h"
#include "slab/internal.h"

#define BS 1024u
#define MIB 2u
#define SEED 0xb5153ull

int main(void)
{
    char path[256];
    image_create(path, (size_t)MIB << 20, SEED);
    struct bcache *bc = xbcache(16u << 20, 60000, 50);
    struct bdev *d = xopen(bc, path, BS, O_RDWR);
    struct slab_cache *s = slab_cache_find("buffer_head");
    CHECK(s, "no buffer_head cache");
    CHECK(s->stride <= 56, "a buffer head occupies %zu bytes (object %zu)", s->stride, s->size);
    struct slab_cache_stats st;
    CHECK(slab_cache_get_stats(s, &st) == 0, "stats");
    CHECK(st.objects_per_slab == (st.slab_size - s->first_offset) / 56,
          "%u buffer heads per %zu-byte slab: not 56-byte slots", st.objects_per_slab,
          st.slab_size);

    uint64_t nblocks = ((uint64_t)MIB << 20) / BS;
    for (uint64_t b = 0; b < nblocks; b++) {
        struct buffer_head *bh = bh_read(d, b);
        CHECK(bh, "bh_read(%llu): %s", (unsigned long long)b, strerror(errno));
        bh_put(bh);
    }
    CHECK(stats(bc).buffer_heads_live == nblocks, "%llu buffer heads for %llu blocks",
          (unsigned long long)stats(bc).buffer_heads_live, (unsigned long long)nblocks);
    /* Evict every other page: their buffer heads are freed into live slabs. */
    CHECK(bcache_shrink(bc, (size_t)(MIB << 20) / 2) >= 0, "shrink");
    /* A pass below 0% fill only gives this thread's slabs back (free lists
     * merged) so that their free objects can be inspected. */
    CHECK(slab_cache_defrag(s, 0) >= 0, "defrag(0)");
    size_t free_seen = 0;
    pthread_mutex_lock(&s->lock);
    for (struct slab *sl = s->all_slabs; sl; sl = sl->all_next)
        for (void *f = sl->freelist; f; f = fp_get(s, f)) {
            struct bh_impl *bh = f;
            CHECK(atomic_load(&bh->b_page) == NULL, "free buffer head %p has b_page %p", f,
                  (void *)atomic_load(&bh->b_page));
            free_seen++;
        }
    pthread_mutex_unlock(&s->lock);
    CHECK(free_seen > 0, "no free buffer head to inspect");
    printf("bh_size: stride %zu, %u per slab; %zu free buffer heads on slab free lists, all "
           "with b_page NULL\n", s->stride, st.objects_per_slab, free_seen);
    CHECK(slab_cache_validate(s) == 0 && bcache_validate(bc) == 0, "inconsistent");
    verify_block_range(d, BS, SEED, 0, nblocks, 7);
    CHECK(bcache_destroy(bc) == 0, "destroy");
    image_remove(path);
    return 0;
}
