/*
 * bufcache/threads: several threads read, write and evict overlapping blocks.
 *
 * Every block of the image holds a stamp (block number, version, and a mix of
 * both over the whole block: see bctest.h).  Four threads pick blocks from one
 * small shared range (all threads collide) and from the whole image (misses and
 * eviction under a limit of an eighth of the image), with 1 KiB blocks so four
 * buffer heads share each page.  Under bh_lock a writer checks the stamp and
 * bumps its version; a reader checks it; each thread counts its bumps per block.
 * Other operations: bcache_shrink, bdev_sync, bh_sync.  The flusher runs with a
 * 10 ms expiry.  At the end each block's version must equal the sum of all
 * threads' bumps (a lost or torn update, a dirty page evicted unwritten or a
 * stale re-read all break that), in the cache and, after bdev_close, in the file.
 * Must be TSan clean.  Usage: test_bufcache_threads [seed [seconds]].
 * TEST_LABELS: stress
 */
#include "bctest.h"

#include <pthread.h>
#include <stdatomic.h>

#define BS         1024u
#define NBLOCKS    1024u /* 1 MiB image */
#define HOT        24u   /* blocks every thread hammers */
#define NTHREADS   4

static struct bdev *dev;
static struct bcache *bc;
static uint64_t g_seed;
static double deadline;
static uint32_t bumps[NTHREADS][NBLOCKS];
static atomic_int failed;

static void fail(const char *what, uint64_t b)
{
    fprintf(stderr, "threads: seed %llu: %s (block %llu, errno %d)\n",
            (unsigned long long)g_seed, what, (unsigned long long)b, errno);
    atomic_store(&failed, 1);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t rng = g_seed * (id + 1) | 1;
    long ops = 0;
    while (!atomic_load(&failed) && (ops & 63 || now_seconds() < deadline)) {
        ops++;
        unsigned r = (unsigned)(xorshift64(&rng) % 100);
        uint64_t b = xorshift64(&rng) % 2 ? xorshift64(&rng) % HOT : xorshift64(&rng) % NBLOCKS;
        if (r < 90) {
            struct buffer_head *bh = bh_read(dev, b);
            if (!bh) {
                fail("bh_read", b);
                break;
            }
            bh_lock(bh);
            uint64_t v = 0;
            if (!block_stamp_ok(bh->b_data, BS, b, &v))
                fail("torn or misplaced block", b);
            else if (r < 45) {
                block_fill(bh->b_data, BS, b, v + 1);
                bh_mark_dirty(bh);
                bumps[id][b]++;
            }
            bh_unlock(bh);
            if (r == 0 && bh_sync(bh) != 0)
                fail("bh_sync", b);
            bh_put(bh);
        } else if (r < 97) {
            if (bcache_shrink(bc, (size_t)(xorshift64(&rng) % (64u << 10))) < 0)
                fail("bcache_shrink", 0);
        } else if (bdev_sync(dev) != 0) {
            fail("bdev_sync", 0);
        }
    }
    return NULL;
}

static uint64_t expected(uint64_t b)
{
    uint64_t sum = 0;
    for (int t = 0; t < NTHREADS; t++)
        sum += bumps[t][b];
    return sum;
}

int main(int argc, char **argv)
{
    g_seed = test_seed(argc, argv, 1, 0x7e4d);
    double secs = argc > 2 ? atof(argv[2]) : stress_seconds(under_sanitizer() ? 4.0 : 3.0);
    char path[256];
    image_create_stamped(path, NBLOCKS, BS);
    bc = xbcache((size_t)NBLOCKS * BS / 8, 10, 40);
    dev = xopen(bc, path, BS, O_RDWR);

    deadline = now_seconds() + secs;
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) == 0, "pthread_create");
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    CHECK(!atomic_load(&failed), "a worker failed (seed %llu)", (unsigned long long)g_seed);

    uint64_t total = 0;
    for (uint64_t b = 0; b < NBLOCKS; b++) {
        struct buffer_head *bh = bh_read(dev, b);
        CHECK(bh, "final bh_read: %s", strerror(errno));
        uint64_t v = 0;
        CHECK(block_stamp_ok(bh->b_data, BS, b, &v), "final stamp of block %llu",
              (unsigned long long)b);
        CHECK(v == expected(b), "seed %llu: block %llu version %llu, expected %llu",
              (unsigned long long)g_seed, (unsigned long long)b, (unsigned long long)v,
              (unsigned long long)expected(b));
        total += v;
        bh_put(bh);
    }
    struct bcache_stats st = stats(bc);
    CHECK(st.memory_used <= st.memory_limit, "memory over the limit");
    CHECK(st.evictions > 0, "no evictions");
    CHECK(bcache_validate(bc) == 0, "validate");
    CHECK(bdev_close(dev) == 0, "bdev_close: %s", strerror(errno));

    static unsigned char blk[BS];
    for (uint64_t b = 0; b < NBLOCKS; b++) {
        image_read(path, b * BS, blk, BS);
        uint64_t v = 0;
        CHECK(block_stamp_ok(blk, BS, b, &v) && v == expected(b),
              "seed %llu: file block %llu wrong after close", (unsigned long long)g_seed,
              (unsigned long long)b);
    }
    CHECK(bcache_destroy(bc) == 0, "destroy");
    image_remove(path);
    printf("threads: seed %llu, %llu updates, %llu hits, %llu misses, %llu evictions\n",
           (unsigned long long)g_seed, (unsigned long long)total, (unsigned long long)st.hits,
           (unsigned long long)st.misses, (unsigned long long)st.evictions);
    return 0;
}
