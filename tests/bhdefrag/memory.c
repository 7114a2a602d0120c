/*
 * memory: what defragmenting the buffer_head cache buys after scattered
 * eviction, and that it loses nothing.
 *
 * How: a bcache with 1 KiB blocks reads every block of an image (N MiB, default
 * 16; argv[1] or $BHD_MIB for more), so every page has a ring of 4 buffer
 * heads; then, in the older half of the pages, 3 pages out of 4 are evicted in
 * a seeded random order (frame and ring freed), which leaves those buffer_head
 * slabs ~25% full while the newer half's slabs stay full.  The
 * cache's fill (objects_active / objects_total) and bytes_mapped are printed
 * before and after slab_cache_defrag(buffer_head, 50), with slabs freed, bytes
 * returned and the pass's time per MiB of cached data; it asserts that fill
 * rises and bytes_mapped falls.  Then every block (kept and evicted pages)
 * reads back equal to the image pattern, and re-reading the kept pages needs
 * no device read (their rings are rebuilt from the saved uptodate state).
 * Second phase: reclaim uses defrag — after another scattered eviction,
 * bcache_shrink(bc, 0) runs a pass on the buffer_head cache by itself (its
 * defrag pass counter moves and bytes_mapped falls).
 * Timing is printed, never asserted.
 */
#include "../bufcache/bctest.h"

#include "bufcache/internal.h"

#define BS 1024u
#define SEED 0xb4dull

static void evict_index(struct bcache *bc, struct bdev *d, uint64_t index)
{
    struct bc_page *p = page_lookup(bc, d->map, index);
    if (!p)
        return;
    page_put(p); /* single-threaded: back to the index reference only */
    page_lock(p);
    CHECK(page_freeze(p, 0), "page %llu pinned", (unsigned long long)index);
    CHECK(page_ring_releasable(p, NULL), "page %llu busy", (unsigned long long)index);
    page_evict_frozen(bc, p);
}

static struct slab_cache_stats sstats(struct slab_cache *s)
{
    struct slab_cache_stats st;
    CHECK(slab_cache_get_stats(s, &st) == 0, "slab stats");
    return st;
}

static double fill(const struct slab_cache_stats *st)
{
    return st->objects_total ? 100.0 * (double)st->objects_active / (double)st->objects_total : 0;
}

static void verify_blocks(struct bdev *d, uint64_t from, uint64_t to, uint64_t step)
{
    verify_block_range(d, BS, SEED, from, to, step);
}

int main(int argc, char **argv)
{
    unsigned mib = 16;
    const char *env = getenv("BHD_MIB");
    if (argc > 1)
        mib = (unsigned)atoi(argv[1]);
    else if (env)
        mib = (unsigned)atoi(env);
    if (under_sanitizer() && mib > 8)
        mib = 8;
    CHECK(mib >= 1, "bad size");
    uint64_t nblocks = (uint64_t)mib << 10, npages = nblocks / 4;
    char path[256];
    image_create(path, (size_t)nblocks * BS, SEED);
    struct bcache *bc = xbcache(((size_t)mib << 20) + ((size_t)mib << 20) / 2 + (8u << 20),
                                60000, 50);
    struct bdev *d = xopen(bc, path, BS, O_RDWR);
    struct slab_cache *s = slab_cache_find("buffer_head");
    CHECK(s, "no buffer_head cache");

    verify_blocks(d, 0, nblocks, 1);
    CHECK(stats(bc).cached_pages == npages, "not everything is cached (%llu of %llu pages)",
          (unsigned long long)stats(bc).cached_pages, (unsigned long long)npages);

    /* The older half of the pages loses 3 pages in 4, evicted in a seeded
     * random order; the newer half (the working set) stays.  keep[] marks the
     * pages that stay. */
    uint64_t half = npages / 2;
    uint64_t *perm = malloc(half * sizeof *perm);
    unsigned char *keep = calloc(npages, 1);
    CHECK(perm && keep, "oom");
    for (uint64_t i = 0; i < half; i++)
        perm[i] = i;
    uint64_t rs = SEED;
    for (uint64_t i = half - 1; i > 0; i--) {
        uint64_t j = xorshift64(&rs) % (i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (uint64_t i = half; i < npages; i++)
        keep[i] = 1;
    for (uint64_t i = 0; i < half / 4; i++)
        keep[perm[i]] = 1;
    for (uint64_t i = half / 4; i < half; i++)
        evict_index(bc, d, perm[i]);
    /* A pass below 0% fill has no candidates: it only gives this thread's slabs
     * back and releases empty ones, so "before" is exact and excludes them. */
    CHECK(slab_cache_defrag(s, 0) >= 0, "defrag(0)");
    struct slab_cache_stats a = sstats(s);
    struct bcache_stats ba = stats(bc);
    double t0 = now_seconds();
    long rel = slab_cache_defrag(s, 50); /* the sparse slabs (~25%) */
    double dt = now_seconds() - t0;
    struct slab_cache_stats b = sstats(s);
    struct bcache_stats bb = stats(bc);
    CHECK(rel >= 0, "slab_cache_defrag: %ld", rel);
    printf("cached %u MiB of 1 KiB blocks (%llu pages), evicted 3/4 of the older half at random\n",
           mib, (unsigned long long)npages);
    printf("buffer_head before: fill %.1f%% (%llu/%llu objects), %llu slabs, bytes_mapped %llu\n",
           fill(&a), (unsigned long long)a.objects_active, (unsigned long long)a.objects_total,
           (unsigned long long)a.slabs, (unsigned long long)a.bytes_mapped);
    printf("buffer_head after:  fill %.1f%% (%llu/%llu objects), %llu slabs, bytes_mapped %llu\n",
           fill(&b), (unsigned long long)b.objects_active, (unsigned long long)b.objects_total,
           (unsigned long long)b.slabs, (unsigned long long)b.bytes_mapped);
    printf("defrag: slabs scanned %llu, freed %llu, objects kicked %llu, bytes returned %ld "
           "(counter %llu); rings dropped %llu\n",
           (unsigned long long)(b.defrag_slabs_scanned - a.defrag_slabs_scanned),
           (unsigned long long)(b.defrag_slabs_freed - a.defrag_slabs_freed),
           (unsigned long long)(b.defrag_objects_kicked - a.defrag_objects_kicked), rel,
           (unsigned long long)(b.defrag_bytes_released - a.defrag_bytes_released),
           (unsigned long long)(bb.rings_dropped - ba.rings_dropped));
    printf("time: %.3f ms, %.3f ms per MiB of cached blocks, %.3f ms per MiB of buffer_head "
           "slabs%s\n", dt * 1e3, dt * 1e3 / mib,
           a.bytes_mapped ? dt * 1e3 / ((double)a.bytes_mapped / (1 << 20)) : 0.0,
           under_sanitizer() ? " (sanitizer build: not representative)" : "");
    CHECK(fill(&b) > fill(&a), "fill did not rise (%.1f%% -> %.1f%%)", fill(&a), fill(&b));
    CHECK(b.bytes_mapped < a.bytes_mapped, "bytes_mapped did not fall (%llu -> %llu)",
          (unsigned long long)a.bytes_mapped, (unsigned long long)b.bytes_mapped);
    CHECK(b.defrag_slabs_freed > a.defrag_slabs_freed, "no slab freed");
    CHECK(slab_cache_validate(s) == 0 && bcache_validate(bc) == 0, "inconsistent");

    /* Kept pages: rebuilt rings, no I/O. */
    uint64_t reads0 = stats(bc).reads;
    for (uint64_t i = 0; i < npages; i++)
        if (keep[i])
            verify_blocks(d, i * 4, i * 4 + 4, 1);
    uint64_t reads1 = stats(bc).reads;
    CHECK(reads1 == reads0, "re-reading kept pages did %llu device reads",
          (unsigned long long)(reads1 - reads0));
    printf("kept pages re-read with no device I/O; rings rebuilt %llu\n",
           (unsigned long long)(stats(bc).rings_rebuilt - bb.rings_rebuilt));

    /* Phase 2: reclaim defragments on its own.  Cache everything again, evict
     * 3/4 at random, and let bcache_shrink(bc, 0) do the rest. */
    verify_blocks(d, 0, nblocks, 1);
    for (uint64_t i = 0; i < npages; i++)
        if (xorshift64(&rs) % 4)
            evict_index(bc, d, i);
    CHECK(slab_cache_defrag(s, 0) >= 0, "defrag(0)");
    a = sstats(s);
    long shr = bcache_shrink(bc, 0);
    b = sstats(s);
    printf("bcache_shrink(0): returned %ld; buffer_head passes +%llu, slabs freed +%llu, "
           "fill %.1f%% -> %.1f%%, bytes_mapped %llu -> %llu\n", shr,
           (unsigned long long)(b.defrag_passes - a.defrag_passes),
           (unsigned long long)(b.defrag_slabs_freed - a.defrag_slabs_freed), fill(&a), fill(&b),
           (unsigned long long)a.bytes_mapped, (unsigned long long)b.bytes_mapped);
    CHECK(b.defrag_passes > a.defrag_passes, "bcache_shrink did not defragment buffer_head");
    CHECK(b.bytes_mapped < a.bytes_mapped, "bcache_shrink returned no buffer_head memory");

    /* Everything still reads back right, and the image is unchanged. */
    verify_blocks(d, 0, nblocks, 1);
    CHECK(bdev_sync(d) == 0, "sync");
    static unsigned char got[BS];
    for (uint64_t blk = 0; blk < nblocks; blk += 97) {
        image_read(path, blk * BS, got, BS);
        for (unsigned i = 0; i < BS; i++)
            CHECK(got[i] == pattern_byte(SEED, blk * BS + i), "image block %llu changed",
                  (unsigned long long)blk);
    }
    printf("data verified: all %llu blocks read back equal to the image pattern\n",
           (unsigned long long)nblocks);
    free(perm);
    free(keep);
    CHECK(bcache_destroy(bc) == 0, "destroy");
    image_remove(path);
    return 0;
}
