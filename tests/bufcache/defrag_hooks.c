/*
 * defrag_hooks: the buffer_head defrag's get and kick (bh_defrag.c, the
 * callbacks the product registers) driven directly on vectors the test builds.
 *
 * Part 1 (one thread): get turns a vector of every live buffer head into
 * pinned, de-duplicated pages (one per page); kick skips pages under
 * writeback, trylocks, starts non-blocking writeback of dirty pages and asks
 * the release routine.  After two get/kick rounds every unreferenced page has
 * lost its ring, the referenced one kept its ring, dirty data reached the
 * disk, and re-reads need no I/O.  bh_defrag's counters agree (pages pinned
 * once each in the first round).
 * Part 2 (threads): a kicker pins the (type-stable) page descriptors one by one
 * and hands each to kick while workers read and write; nothing is lost and
 * the result is TSan clean.
 */
#include "bctest.h"

#include "bufcache/bh_defrag.h"

#include <pthread.h>

#define BS 1024u

/* kick on one pinned page (bh_defrag.c's kick_buffers); drops the pin. */
static void kick_page(struct bc_page *p)
{
    void *v[1] = { p };
    bh_defrag_kick(NULL, 1, v, NULL);
}

/* Like the allocator's vector: every buffer head allocated right now. */
static int live_buffer_heads(struct bcache *bc, void **vec)
{
    int n = 0;
    uint32_t nr = atomic_load(&bc->nr_inited);
    for (uint32_t i = 0; i < nr; i++) {
        struct bc_page *p = &bc->pages[i];
        if (!page_get_unless_zero(p))
            continue;
        struct bh_impl *ring = atomic_load_explicit(&p->buffers, memory_order_acquire);
        if (ring)
            n += (int)ring_vector(ring, (struct bh_impl **)vec + n);
        page_put(p);
    }
    return n;
}

static void part1(void)
{
    char path[256];
    const uint64_t pages = 32, nblocks = pages * (4096 / BS);
    img_create(path, nblocks, BS);
    struct bcache *bc = xbcache(1 << 20, 3600 * 1000, 80);
    struct bdev *dev = bdev_open(bc, path, BS, O_RDWR);
    CHECK(dev, "bdev_open: %s", strerror(errno));
    for (uint64_t b = 0; b < nblocks; b++) {
        struct buffer_head *bh = bh_read(dev, b);
        CHECK(bh, "bh_read: %s", strerror(errno));
        bh_put(bh);
    }
    for (uint64_t b = 0; b < nblocks; b += 8)
        cache_write_block(dev, b, 1); /* every other page dirty */
    struct buffer_head *held = bh_read(dev, 4 * (4096 / BS) + 1);
    void **v = malloc(nblocks * sizeof *v);
    for (int round = 0; round < 2; round++) {
        int nr = live_buffer_heads(bc, v);
        struct bh_defrag_counters c0, c1;
        bh_defrag_get_counters(&c0);
        CHECK(bh_defrag_get(NULL, nr, v) == NULL, "get returns NULL (kick needs no private data)");
        bh_defrag_get_counters(&c1);
        int pinned = 0;
        for (int i = 0; i < nr; i++)
            pinned += v[i] != NULL;
        if (round == 0)
            CHECK(nr == (int)nblocks && pinned == (int)pages,
                  "get pins each page once: %d of %llu", pinned, (unsigned long long)pages);
        if (round == 0)
            CHECK(c1.pages_pinned - c0.pages_pinned == pages &&
                      c1.duplicates_skipped - c0.duplicates_skipped == nblocks - pages,
                  "counters: %llu pinned, %llu duplicates",
                  (unsigned long long)(c1.pages_pinned - c0.pages_pinned),
                  (unsigned long long)(c1.duplicates_skipped - c0.duplicates_skipped));
        bh_defrag_kick(NULL, nr, v, NULL);
    }
    struct bcache_stats st = stats(bc);
    CHECK(st.buffer_heads_live == 4096 / BS, "only the referenced page keeps its ring (%llu)",
          (unsigned long long)st.buffer_heads_live);
    CHECK(st.dirty_pages == 0, "kick wrote the dirty pages");
    unsigned char buf[BS];
    for (uint64_t b = 0; b < nblocks; b += 8) {
        img_read_block(path, b, BS, buf);
        CHECK(check_block(buf, BS, b) == 1, "dirty block %llu reached the disk",
              (unsigned long long)b);
    }
    bh_put(held);
    uint64_t reads = st.reads;
    for (uint64_t b = 0; b < nblocks; b++) {
        struct buffer_head *bh = bh_read(dev, b);
        CHECK(bh && check_block(bh->b_data, BS, b) == (b % 8 == 0 ? 1 : 0), "data after kick");
        bh_put(bh);
    }
    CHECK(stats(bc).reads == reads, "rebuilt rings needed I/O");
    CHECK(bcache_validate(bc) == 0, "validate");
    free(v);
    CHECK(bdev_close(dev) == 0 && bcache_destroy(bc) == 0, "close/destroy");
    img_remove(path);
}

struct shared {
    struct bcache *bc;
    struct bdev *dev;
    uint64_t nblocks;
    _Atomic uint64_t *ver;
    _Atomic int stop;
    _Atomic uint64_t kicks;
};

static void *kicker(void *arg)
{
    struct shared *s = arg;
    while (!atomic_load(&s->stop)) {
        uint32_t n = atomic_load(&s->bc->nr_inited);
        for (uint32_t i = 0; i < n; i++) {
            struct bc_page *p = &s->bc->pages[i];
            if (page_get_unless_zero(p)) {
                kick_page(p);
                atomic_fetch_add(&s->kicks, 1);
            }
        }
    }
    return NULL;
}

static void *worker(void *arg)
{
    struct shared *s = arg;
    static _Atomic unsigned ids;
    uint64_t rng = 0x5151 + atomic_fetch_add(&ids, 1);
    while (!atomic_load(&s->stop)) {
        uint64_t b = xorshift64(&rng) % s->nblocks;
        struct buffer_head *bh = bh_read(s->dev, b);
        CHECK(bh, "bh_read: %s", strerror(errno));
        bh_lock(bh);
        CHECK(check_block(bh->b_data, BS, b) == (int64_t)atomic_load(&s->ver[b]),
              "block %llu lost its latest version", (unsigned long long)b);
        if (xorshift64(&rng) & 1) {
            uint64_t v = atomic_load(&s->ver[b]) + 1;
            fill_block(bh->b_data, BS, b, v);
            atomic_store(&s->ver[b], v);
            bh_mark_dirty(bh);
        }
        bh_unlock(bh);
        bh_put(bh);
    }
    return NULL;
}

static void part2(double seconds)
{
    char path[256];
    struct shared s = {.nblocks = 48 * (4096 / BS)};
    img_create(path, s.nblocks, BS);
    s.ver = calloc(s.nblocks, sizeof *s.ver);
    s.bc = xbcache(1 << 20, 10, 50);
    s.dev = bdev_open(s.bc, path, BS, O_RDWR);
    CHECK(s.dev, "bdev_open");
    pthread_t t[3];
    pthread_create(&t[0], NULL, kicker, &s);
    pthread_create(&t[1], NULL, worker, &s);
    pthread_create(&t[2], NULL, worker, &s);
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&s.stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    struct bcache_stats st = stats(s.bc);
    fprintf(stderr, "defrag_hooks: %llu kicks, %llu rings dropped, %llu rebuilt\n",
            (unsigned long long)atomic_load(&s.kicks), (unsigned long long)st.rings_dropped,
            (unsigned long long)st.rings_rebuilt);
    CHECK(st.rings_dropped > 0 && st.rings_rebuilt > 0, "kicks dropped and rebuilt rings");
    CHECK(bdev_sync(s.dev) == 0, "sync");
    CHECK(bcache_validate(s.bc) == 0, "validate");
    unsigned char buf[BS];
    for (uint64_t b = 0; b < s.nblocks; b++) {
        img_read_block(path, b, BS, buf);
        CHECK(check_block(buf, BS, b) == (int64_t)atomic_load(&s.ver[b]), "image block %llu",
              (unsigned long long)b);
    }
    CHECK(bdev_close(s.dev) == 0 && bcache_destroy(s.bc) == 0, "close/destroy");
    free(s.ver);
    img_remove(path);
}

int main(void)
{
    part1();
    part2(stress_seconds(1.0));
    return 0;
}
