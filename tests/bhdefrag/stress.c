/*
 * stress: readers, writers, evictions and buffer_head defragmentation at once
 * on a 1 KiB-block device, for a bounded time; the image must equal the model
 * after the final sync.  TEST_LABELS: stress
 *
 * How: the image starts with a stamp (block number, version 0) in every block.
 * Writer w owns the blocks b with b % WRITERS == w and keeps the model: for
 * each block it writes a new stamp and marks it dirty under bh_lock, unlocks,
 * and then publishes the version (release store).  Readers read random blocks and,
 * under bh_lock, check the stamp is whole, of that block, and of the published
 * version or the one being published (v or v+1).  An evictor calls
 * bcache_shrink (which also shrinks = defragments the buffer_head cache); a
 * defragmenter calls slab_cache_defrag(buffer_head, 100 or 30) in a loop; the
 * background defragmenter runs with a short interval; the small memory limit
 * makes page allocation reclaim as well.  At the end: bdev_sync, every block of
 * the image file holds the writer's last version, both caches validate.
 * Default 3 s (1 s under sanitizers); longer via $SLABDEFRAG_STRESS_SECONDS.
 */
#include "../bufcache/bctest.h"

#include "bufcache/bh_defrag.h"
#include "bufcache/internal.h"

#include <pthread.h>

#define BS 1024u
#define NBLOCKS 4096u /* 4 MiB image, 1024 pages */
#define WRITERS 2
#define READERS 2

static struct bdev *dev;
static struct bcache *bc;
static _Atomic uint64_t published[NBLOCKS];
static _Atomic int stop;
static _Atomic uint64_t n_reads, n_writes, n_shrinks, n_defrags;
static uint64_t seed;

static void *writer(void *arg)
{
    unsigned w = (unsigned)(uintptr_t)arg;
    uint64_t rs = seed ^ (0x1000u + w), mine = NBLOCKS / WRITERS;
    while (!atomic_load(&stop)) {
        uint64_t b = (xorshift64(&rs) % mine) * WRITERS + w;
        uint64_t v = atomic_load_explicit(&published[b], memory_order_relaxed) + 1;
        struct buffer_head *bh = (xorshift64(&rs) & 1) ? bh_read(dev, b) : bh_get(dev, b);
        CHECK(bh, "writer: block %llu: %s", (unsigned long long)b, strerror(errno));
        bh_lock(bh);
        block_fill(bh->b_data, BS, b, v);
        bh_mark_dirty(bh); /* before unlocking: until it is uptodate, a reader's
                              read-ahead may lock the block and read the disk */
        bh_unlock(bh);
        atomic_store_explicit(&published[b], v, memory_order_release);
        bh_put(bh);
        atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
    }
    return NULL;
}

static void *reader(void *arg)
{
    uint64_t rs = seed ^ (0x2000u + (uintptr_t)arg);
    while (!atomic_load(&stop)) {
        uint64_t b = xorshift64(&rs) % NBLOCKS, got;
        struct buffer_head *bh = bh_read(dev, b);
        CHECK(bh, "reader: block %llu: %s", (unsigned long long)b, strerror(errno));
        bh_lock(bh);
        uint64_t p0 = atomic_load_explicit(&published[b], memory_order_acquire);
        int ok = block_stamp_ok(bh->b_data, BS, b, &got);
        uint64_t p1 = atomic_load_explicit(&published[b], memory_order_acquire);
        bh_unlock(bh);
        CHECK(ok, "seed %llu: block %llu holds a torn or foreign stamp", (unsigned long long)seed,
              (unsigned long long)b);
        CHECK(got >= p0 && got <= p1 + 1, "seed %llu: block %llu version %llu, published %llu..%llu",
              (unsigned long long)seed, (unsigned long long)b, (unsigned long long)got,
              (unsigned long long)p0, (unsigned long long)p1);
        bh_put(bh);
        atomic_fetch_add_explicit(&n_reads, 1, memory_order_relaxed);
    }
    return NULL;
}

static void *evictor(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        CHECK(bcache_shrink(bc, 256u << 10) >= 0, "bcache_shrink failed");
        atomic_fetch_add_explicit(&n_shrinks, 1, memory_order_relaxed);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *defragger(void *arg)
{
    (void)arg;
    struct slab_cache *s = slab_cache_find("buffer_head");
    CHECK(s, "no buffer_head cache");
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        long r = slab_cache_defrag(s, i & 1 ? 30 : 100);
        CHECK(r >= 0, "slab_cache_defrag: %ld", r);
        atomic_fetch_add_explicit(&n_defrags, 1, memory_order_relaxed);
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    seed = test_seed(argc, argv, 1, 0x5bd5);
    double secs = stress_seconds(under_sanitizer() ? 1.0 : 3.0);
    char path[256];
    image_create_stamped(path, NBLOCKS, BS);
    bc = xbcache(2u << 20, 50, 20); /* 2 MiB: half the image; reclaim is constant */
    dev = xopen(bc, path, BS, O_RDWR);
    struct slab_defrag_policy pol = {.interval_ms = 5, .frag_percent = 5,
                                     .min_waste_bytes = 4096, .slab_fill_percent = 50,
                                     .cpu_budget_percent = 20};
    int bg = slab_defrag_start(&pol);
    CHECK(bg == 0 || bg == -EALREADY, "slab_defrag_start: %d", bg);
    struct bh_defrag_counters c0, c1;
    bh_defrag_get_counters(&c0);

    pthread_t t[WRITERS + READERS + 2];
    int n = 0;
    for (uintptr_t i = 0; i < WRITERS; i++)
        CHECK(pthread_create(&t[n++], NULL, writer, (void *)i) == 0, "pthread_create");
    for (uintptr_t i = 0; i < READERS; i++)
        CHECK(pthread_create(&t[n++], NULL, reader, (void *)i) == 0, "pthread_create");
    CHECK(pthread_create(&t[n++], NULL, evictor, NULL) == 0, "pthread_create");
    CHECK(pthread_create(&t[n++], NULL, defragger, NULL) == 0, "pthread_create");
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    slab_defrag_stop();
    bh_defrag_get_counters(&c1);

    CHECK(bdev_sync(dev) == 0, "bdev_sync failed");
    CHECK(bcache_validate(bc) == 0, "bcache inconsistent");
    struct slab_cache *s = slab_cache_find("buffer_head");
    CHECK(slab_cache_validate(s) == 0, "buffer_head cache inconsistent");
    static unsigned char blk[BS];
    for (uint64_t b = 0; b < NBLOCKS; b++) {
        uint64_t v;
        image_read(path, b * BS, blk, BS);
        CHECK(block_stamp_ok(blk, BS, b, &v), "seed %llu: image block %llu is torn or foreign",
              (unsigned long long)seed, (unsigned long long)b);
        CHECK(v == atomic_load(&published[b]), "seed %llu: image block %llu: version %llu, model %llu",
              (unsigned long long)seed, (unsigned long long)b, (unsigned long long)v,
              (unsigned long long)atomic_load(&published[b]));
    }
    struct slab_cache_stats st;
    slab_cache_get_stats(s, &st);
    printf("%.1f s seed %llu: %llu reads, %llu writes, %llu shrinks, %llu defrag calls; "
           "buffer_head: passes %llu, slabs freed %llu; get pinned %llu, stale %llu, freed %llu, "
           "dups %llu; kick wrote %llu, released %llu, busy %llu, under writeback %llu\n",
           secs, (unsigned long long)seed, (unsigned long long)n_reads,
           (unsigned long long)n_writes, (unsigned long long)n_shrinks,
           (unsigned long long)n_defrags, (unsigned long long)st.defrag_passes,
           (unsigned long long)st.defrag_slabs_freed,
           (unsigned long long)(c1.pages_pinned - c0.pages_pinned),
           (unsigned long long)(c1.pages_skipped_stale - c0.pages_skipped_stale),
           (unsigned long long)(c1.bh_skipped_freed - c0.bh_skipped_freed),
           (unsigned long long)(c1.duplicates_skipped - c0.duplicates_skipped),
           (unsigned long long)(c1.pages_written - c0.pages_written),
           (unsigned long long)(c1.pages_released - c0.pages_released),
           (unsigned long long)(c1.pages_busy - c0.pages_busy),
           (unsigned long long)(c1.pages_under_writeback - c0.pages_under_writeback));
    CHECK(c1.pages_pinned > c0.pages_pinned, "defrag never pinned a page: the test did nothing");
    CHECK(bcache_destroy(bc) == 0, "bcache_destroy failed");
    image_remove(path);
    return 0;
}
