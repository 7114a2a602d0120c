/*
 * concurrent_rw: several threads read and write overlapping blocks while
 * another shrinks the cache, syncs and bh_syncs, under a memory limit smaller
 * than the working set (constant eviction) and a 5 ms flusher.  Each block holds
 * a self-describing (block, version) pattern; writers bump the version under the
 * block lock, readers check under the lock that they see exactly the latest
 * version, so a lost write, a stale re-read after eviction or a torn block fails.
 * At the end the image must hold every block's last version.  TSan clean.
 * Usage: concurrent_rw [seed]   (duration: $SLABDEFRAG_STRESS_SECONDS, default 2 s)
 */
#include "bctest.h"

#include <pthread.h>
#include <stdatomic.h>

#define WORKERS 3

struct shared {
    struct bcache *bc;
    struct bdev *dev;
    uint64_t nblocks;
    unsigned bs;
    _Atomic uint64_t *ver; /* last version written, changed under the block lock */
    _Atomic int stop;
    uint64_t seed;
    _Atomic uint64_t ops;
};

static void do_write(struct shared *s, uint64_t b, bool whole)
{
    struct buffer_head *bh = whole ? bh_get(s->dev, b) : bh_read(s->dev, b);
    CHECK(bh, "bh_get/read %llu: %s", (unsigned long long)b, strerror(errno));
    bh_lock(bh);
    if (!whole)
        CHECK(check_block(bh->b_data, s->bs, b) == (int64_t)atomic_load(&s->ver[b]),
              "block %llu before write: stale or torn", (unsigned long long)b);
    uint64_t v = atomic_load(&s->ver[b]) + 1;
    fill_block(bh->b_data, s->bs, b, v);
    atomic_store(&s->ver[b], v);
    bh_mark_dirty(bh);
    bh_unlock(bh);
    bh_put(bh);
}

static void do_read(struct shared *s, uint64_t b)
{
    struct buffer_head *bh = bh_read(s->dev, b);
    CHECK(bh, "bh_read %llu: %s", (unsigned long long)b, strerror(errno));
    bh_lock(bh);
    int64_t got = check_block(bh->b_data, s->bs, b);
    CHECK(got == (int64_t)atomic_load(&s->ver[b]), "block %llu: read version %lld, latest %llu",
          (unsigned long long)b, (long long)got, (unsigned long long)atomic_load(&s->ver[b]));
    bh_unlock(bh);
    bh_put(bh);
}

static void *worker(void *arg)
{
    struct shared *s = arg;
    static _Atomic unsigned ids;
    uint64_t rng = s->seed + 977 * (atomic_fetch_add(&ids, 1) + 1);
    while (!atomic_load(&s->stop)) {
        /* overlapping hot range: half the ops go to the first eighth */
        uint64_t r = xorshift64(&rng);
        uint64_t b = (r & 1) ? (r >> 8) % (s->nblocks / 8) : (r >> 8) % s->nblocks;
        unsigned op = (unsigned)((r >> 40) % 10);
        if (op < 5)
            do_read(s, b);
        else
            do_write(s, b, op == 9);
        atomic_fetch_add(&s->ops, 1);
    }
    return NULL;
}

static void *evictor(void *arg)
{
    struct shared *s = arg;
    uint64_t rng = s->seed ^ 0xabcdef;
    while (!atomic_load(&s->stop)) {
        unsigned op = (unsigned)(xorshift64(&rng) % 8);
        if (op < 5) {
            CHECK(bcache_shrink(s->bc, (size_t)(xorshift64(&rng) % (64 << 10))) >= 0, "shrink");
        } else if (op < 7) {
            CHECK(bdev_sync(s->dev) == 0, "bdev_sync: %s", strerror(errno));
        } else {
            struct buffer_head *bh = bh_get(s->dev, xorshift64(&rng) % s->nblocks);
            CHECK(bh, "bh_get");
            CHECK(bh_sync(bh) == 0, "bh_sync: %s", strerror(errno));
            bh_put(bh);
        }
        usleep(200);
    }
    return NULL;
}

static void run(unsigned bs, uint64_t seed, double seconds)
{
    char path[256];
    struct shared s = {.bs = bs, .seed = seed};
    s.nblocks = 64ull * (4096 / bs);
    img_create(path, s.nblocks, bs);
    s.ver = calloc(s.nblocks, sizeof *s.ver);
    s.bc = xbcache(160 << 10, 5, 25);
    s.dev = bdev_open(s.bc, path, bs, O_RDWR);
    CHECK(s.dev, "bdev_open: %s", strerror(errno));
    pthread_t t[WORKERS + 1];
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&t[i], NULL, worker, &s);
    pthread_create(&t[WORKERS], NULL, evictor, &s);
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&s.stop, 1);
    for (int i = 0; i <= WORKERS; i++)
        pthread_join(t[i], NULL);
    CHECK(bdev_sync(s.dev) == 0, "final sync");
    CHECK(bcache_validate(s.bc) == 0, "validate");
    struct bcache_stats st = stats(s.bc);
    fprintf(stderr, "concurrent_rw bs %u: %llu ops, %llu hits, %llu misses, %llu evictions, "
                    "%llu pages written, %llu throttled\n", bs,
            (unsigned long long)atomic_load(&s.ops), (unsigned long long)st.hits,
            (unsigned long long)st.misses, (unsigned long long)st.evictions,
            (unsigned long long)st.pages_written, (unsigned long long)st.throttled);
    CHECK(st.evictions > 0, "the working set exceeds the cache: evictions expected");
    CHECK(st.memory_used <= st.memory_limit, "memory over limit");
    unsigned char buf[4096];
    for (uint64_t b = 0; b < s.nblocks; b++) {
        img_read_block(path, b, bs, buf);
        CHECK(check_block(buf, bs, b) == (int64_t)atomic_load(&s.ver[b]),
              "image block %llu: version %lld, want %llu", (unsigned long long)b,
              (long long)check_block(buf, bs, b), (unsigned long long)atomic_load(&s.ver[b]));
    }
    CHECK(bdev_close(s.dev) == 0, "close");
    CHECK(bcache_destroy(s.bc) == 0, "destroy");
    free(s.ver);
    img_remove(path);
}

int main(int argc, char **argv)
{
    uint64_t seed = test_seed(argc, argv, 1, 0xc0ffee);
    double seconds = stress_seconds(2.0);
    fprintf(stderr, "concurrent_rw: seed %llu, %.1f s per block size\n",
            (unsigned long long)seed, seconds / 2);
    run(1024, seed, seconds / 2);
    run(4096, seed + 1, seconds / 2);
    return 0;
}
