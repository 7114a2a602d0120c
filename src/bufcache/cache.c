/*
 * bufcache/cache.c: the cache object — create, destroy, statistics, validation,
 * and the small per-thread helpers (statistics slot, thread id, clock).
 *
 * 1. Objects and states.  A bcache owns: the descriptor array (max_pages =
 *    memory_limit / 4096 descriptors of 64 bytes) and the frame array (max_pages
 *    frames of 4 KiB), both reserved with one mmap each (MAP_NORESERVE, no huge
 *    pages, so a resident frame costs exactly 4 KiB) and touched lazily; the
 *    index; the free lists; the maps; the flusher thread; and statistics.  Its
 *    life: create -> running (flusher started) -> destroy (refused with -EBUSY
 *    while a buffer head is referenced; else flusher stopped, every device
 *    closed with writeback, memory unmapped).
 * 2. Locking.  See internal.h for the order.  Statistics are per-thread-slot
 *    relaxed atomics (16 cache-line slots chosen round-robin per thread), so the
 *    hit path shares no counter line between threads.
 *    Every live cache is in registry.c's list, whose fork hooks hold its
 *    mutexes across fork() (the child forgets the flusher).
 * 3. References.  The cache owns the buffer_head slab cache reference
 *    (bh_cache_acquire/release: one cache for the process, created with the
 *    first bcache and destroyed with the last).
 * 4. Invariants: checked by bcache_validate(), see below.
 * 5. Numbers.  Defaults: memory_limit 64 MiB (minimum 64 KiB, maximum 8 TiB =
 *    BC_MAX_PAGES pages: above it EINVAL at once), dirty_expire_ms
 *    3000, dirty_limit_percent 20; background writeback above half the dirty limit.
 * 6. Observability.  bcache_get_stats().
 */
#define _GNU_SOURCE
#include "bufcache/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- per-thread helpers ---------------------------------------------------------------- */

static _Atomic unsigned next_slot;
static _Thread_local unsigned tls_slot = UINT32_MAX;
static _Thread_local int tls_tid;

unsigned bc_stat_slot_index(void)
{
    if (__builtin_expect(tls_slot == UINT32_MAX, 0))
        tls_slot = atomic_fetch_add(&next_slot, 1) % BC_STAT_SLOTS;
    return tls_slot;
}

uint64_t bc_stat_sum(struct bcache *bc, enum bc_stat st)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < BC_STAT_SLOTS; i++)
        sum += atomic_load_explicit(&bc->stats[i].v[st], memory_order_relaxed);
    return sum;
}

int bc_gettid(void)
{
    if (__builtin_expect(!tls_tid, 0))
        tls_tid = (int)syscall(SYS_gettid);
    return tls_tid;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t bc_now_ms(struct bcache *bc)
{
    return (uint32_t)((mono_ns() - bc->t0_ns) / 1000000u);
}

/* ---- create / destroy ------------------------------------------------------------------------- */

static size_t round_up(size_t x, size_t a)
{
    return (x + a - 1) / a * a;
}

static int map_arrays(struct bcache *bc)
{
    bc->pages_map_bytes = round_up((size_t)bc->max_pages * sizeof(struct bc_page), BC_PAGE_SIZE);
    bc->frames_map_bytes = (size_t)bc->max_pages * BC_PAGE_SIZE;
    const int prot = PROT_READ | PROT_WRITE;
    const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    bc->pages = mmap(NULL, bc->pages_map_bytes, prot, flags, -1, 0);
    if (bc->pages == MAP_FAILED) {
        bc->pages = NULL;
        return -ENOMEM;
    }
    bc->frames = mmap(NULL, bc->frames_map_bytes, prot, flags, -1, 0);
    if (bc->frames == MAP_FAILED) {
        munmap(bc->pages, bc->pages_map_bytes);
        bc->pages = NULL;
        bc->frames = NULL;
        return -ENOMEM;
    }
    madvise(bc->frames, bc->frames_map_bytes, MADV_NOHUGEPAGE);
    return 0;
}

static void unmap_arrays(struct bcache *bc)
{
    munmap(bc->frames, bc->frames_map_bytes);
    munmap(bc->pages, bc->pages_map_bytes);
}

static int config_apply(struct bcache *bc, const struct bcache_config *cfg)
{
    size_t limit = cfg && cfg->memory_limit ? cfg->memory_limit : BCACHE_DEFAULT_MEMORY_LIMIT;
    unsigned pct = cfg && cfg->dirty_limit_percent ? cfg->dirty_limit_percent : 20;
    if (limit < BCACHE_MIN_MEMORY_LIMIT || pct > 100)
        return -EINVAL;
    uint64_t pages = limit / BC_PAGE_SIZE;
    if (pages > BC_MAX_PAGES)
        return -EINVAL; /* page numbers and the index's bucket count are 32-bit */
    bc->memory_limit = limit;
    bc->dirty_expire_ms = cfg && cfg->dirty_expire_ms ? cfg->dirty_expire_ms : 3000;
    bc->dirty_limit_percent = pct;
    bc->max_pages = (uint32_t)pages;
    bc->dirty_limit_pages = pages * pct / 100;
    if (bc->dirty_limit_pages == 0)
        bc->dirty_limit_pages = 1;
    bc->dirty_bg_pages = bc->dirty_limit_pages / 2;
    return 0;
}

static void init_locks(struct bcache *bc)
{
    pthread_mutex_init(&bc->free_lock, NULL);
    pthread_mutex_init(&bc->clock_lock, NULL);
    pthread_mutex_init(&bc->lock, NULL);
    pthread_mutex_init(&bc->pass_lock, NULL);
    pthread_mutex_init(&bc->flush_lock, NULL);
}

static void destroy_locks(struct bcache *bc)
{
    pthread_mutex_destroy(&bc->free_lock);
    pthread_mutex_destroy(&bc->clock_lock);
    pthread_mutex_destroy(&bc->lock);
    pthread_mutex_destroy(&bc->pass_lock);
    pthread_mutex_destroy(&bc->flush_lock);
}

struct bcache *bcache_create(const struct bcache_config *cfg)
{
    struct bcache *bc = aligned_alloc(64, round_up(sizeof *bc, 64));
    if (!bc) {
        errno = ENOMEM;
        return NULL;
    }
    memset(bc, 0, sizeof *bc);
    int err = config_apply(bc, cfg);
    if (err)
        goto fail;
    if ((err = map_arrays(bc)) != 0)
        goto fail;
    if ((err = page_index_init(bc)) != 0)
        goto fail_arrays;
    if ((err = bh_cache_acquire(bc)) != 0)
        goto fail_index;
    bc->free_warm = bc->free_cold = BC_NONE;
    bc->t0_ns = mono_ns();
    atomic_store(&bc->mem_used, (int64_t)(bc->index_bytes + sizeof *bc));
    init_locks(bc);
    if ((err = flusher_start(bc)) != 0)
        goto fail_locks;
    if ((err = bc_registry_add_cache(bc)) != 0) {
        flusher_stop(bc);
        goto fail_locks;
    }
    return bc;
fail_locks:
    destroy_locks(bc);
    bh_cache_release(bc);
fail_index:
    page_index_fini(bc);
fail_arrays:
    unmap_arrays(bc);
fail:
    free(bc);
    errno = -err;
    return NULL;
}

static int referenced_buffer_heads(struct bcache *bc)
{
    int refs = 0;
    pthread_mutex_lock(&bc->lock);
    for (struct bdev_map *m = bc->maps; m; m = m->next)
        refs += map_count_user_refs(bc, m);
    pthread_mutex_unlock(&bc->lock);
    return refs;
}

int bcache_destroy(struct bcache *bc)
{
    if (!bc) {
        errno = EINVAL;
        return -EINVAL;
    }
    if (referenced_buffer_heads(bc) > 0) {
        errno = EBUSY;
        return -EBUSY;
    }
    bc_registry_remove_cache(bc); /* the fork hooks no longer see it */
    flusher_stop(bc);
    int ret = 0;
    for (;;) {
        pthread_mutex_lock(&bc->lock);
        struct bdev *h = bc->maps ? bc->maps->handles : NULL;
        pthread_mutex_unlock(&bc->lock);
        if (!h)
            break;
        int err = bdev_close(h);
        if (err == -EBUSY) {
            fprintf(stderr, "bufcache: bcache_destroy: a buffer head was referenced while "
                            "destroying; leaking the cache\n");
            errno = EBUSY;
            return -EBUSY;
        }
        if (err && !ret)
            ret = err;
    }
    bh_cache_release(bc);
    page_index_fini(bc);
    unmap_arrays(bc);
    destroy_locks(bc);
    free(bc);
    if (ret)
        errno = -ret;
    return ret;
}

/* ---- statistics ----------------------------------------------------------------------------------- */

static uint64_t descriptor_bytes(struct bcache *bc)
{
    return round_up((size_t)atomic_load(&bc->nr_inited) * sizeof(struct bc_page), BC_PAGE_SIZE);
}

int bcache_get_stats(struct bcache *bc, struct bcache_stats *out)
{
    if (!bc || !out) {
        errno = EINVAL;
        return -EINVAL;
    }
    memset(out, 0, sizeof *out);
    out->hits = bc_stat_sum(bc, ST_HITS);
    out->misses = bc_stat_sum(bc, ST_MISSES);
    out->reads = bc_stat_sum(bc, ST_READS);
    out->writes = bc_stat_sum(bc, ST_WRITES);
    out->flushes = bc_stat_sum(bc, ST_FLUSHES);
    out->read_errors = bc_stat_sum(bc, ST_READ_ERRORS);
    out->writeback_errors = bc_stat_sum(bc, ST_WB_ERRORS);
    out->evictions = bc_stat_sum(bc, ST_EVICTIONS);
    out->rings_dropped = bc_stat_sum(bc, ST_RINGS_DROPPED);
    out->rings_rebuilt = bc_stat_sum(bc, ST_RINGS_REBUILT);
    out->throttled = bc_stat_sum(bc, ST_THROTTLED);
    out->pages_written = bc_stat_sum(bc, ST_PAGES_WRITTEN);
    out->dirty_pages = atomic_load(&bc->nr_dirty);
    out->cached_pages = atomic_load(&bc->nr_cached);
    out->buffer_heads_live = atomic_load(&bc->bh_live);
    out->memory_used = (uint64_t)atomic_load(&bc->mem_used);
    out->memory_limit = bc->memory_limit;
    out->descriptor_bytes = descriptor_bytes(bc);
    out->buffer_head_bytes = out->buffer_heads_live * bc->bh_size;
    out->index_bytes = bc->index_bytes;
    return 0;
}

/* ---- validation --------------------------------------------------------------------------------------- */

#define VALIDATE(cond, ...)                                                           \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "bcache_validate: " __VA_ARGS__);                         \
            fputc('\n', stderr);                                                      \
            return -EUCLEAN;                                                          \
        }                                                                             \
    } while (0)

struct tally {
    uint64_t cached, dirty, bh, frames, on_list;
};

static int validate_ring(struct bcache *bc, struct bc_page *p, struct bdev_map *m,
                         struct tally *t, unsigned *refs, bool *bh_dirty)
{
    struct bh_impl *ring = atomic_load(&p->buffers);
    VALIDATE(!!ring == !!(page_flags(p) & PG_HAS_BUFFERS), "page %u: HAS_BUFFERS wrong",
             page_id(bc, p));
    if (!ring)
        return 0;
    struct bh_impl *v[8];
    unsigned n = ring_vector(ring, v);
    VALIDATE(n == page_nr_blocks(m, p), "page %u: ring of %u, want %u", page_id(bc, p), n,
             page_nr_blocks(m, p));
    uint64_t first = atomic_load(&p->index) << m->bpp_shift;
    for (unsigned i = 0; i < n; i++) {
        VALIDATE(atomic_load(&v[i]->b_page) == p, "page %u: bh %u points elsewhere",
                 page_id(bc, p), i);
        VALIDATE(v[i]->pub.b_blocknr == first + i && v[i]->pub.b_size == m->block_size &&
                     v[i]->pub.b_data == (char *)page_data(bc, p) + ((size_t)i << m->block_shift),
                 "page %u: bh %u has the wrong block, size or data", page_id(bc, p), i);
        *refs += atomic_load(&v[i]->b_count);
        *bh_dirty |= (atomic_load(&v[i]->b_state) & BH_DIRTY) != 0;
        VALIDATE(!(atomic_load(&v[i]->b_state) & BH_LOCK), "page %u: bh %u locked while idle",
                 page_id(bc, p), i);
    }
    t->bh += n;
    return 0;
}

static int validate_page(struct bcache *bc, struct bc_page *p, struct tally *t)
{
    uint32_t rc = atomic_load(&p->refcount), f = page_flags(p);
    struct bdev_map *m = page_map(p);
    t->frames += (f & PG_FRAME) != 0;
    if (rc == 0) {
        VALIDATE(!m && !atomic_load(&p->buffers) && !(f & (PG_DIRTY | PG_ON_LIST | PG_WRITEBACK)),
                 "free page %u has state (flags %#x)", page_id(bc, p), f);
        return 0;
    }
    VALIDATE(m, "page %u: referenced but no device", page_id(bc, p));
    VALIDATE(f & PG_FRAME, "page %u: cached without a frame", page_id(bc, p));
    struct bc_page *found = page_lookup(bc, m, atomic_load(&p->index));
    VALIDATE(found == p, "page %u: index finds %p", page_id(bc, p), (void *)found);
    page_put(found);
    unsigned refs = 0;
    bool bh_dirty = false;
    if (validate_ring(bc, p, m, t, &refs, &bh_dirty))
        return -EUCLEAN;
    VALIDATE(rc == 1 + refs, "page %u: refcount %u but %u buffer references", page_id(bc, p),
             rc, refs);
    VALIDATE(!bh_dirty || (f & PG_DIRTY), "page %u: dirty block on a clean page", page_id(bc, p));
    VALIDATE(!(f & PG_DIRTY) || (f & PG_ON_LIST), "page %u: dirty but not listed", page_id(bc, p));
    VALIDATE(!(f & PG_WRITEBACK) && !(f & PG_LOCKED), "page %u: busy while idle", page_id(bc, p));
    t->cached++;
    t->dirty += (f & PG_DIRTY) != 0;
    t->on_list += (f & PG_ON_LIST) != 0;
    return 0;
}

static int validate_lists(struct bcache *bc, struct tally *t)
{
    uint64_t listed = 0;
    for (struct bdev_map *m = bc->maps; m; m = m->next) {
        uint32_t prev = BC_NONE;
        for (uint32_t id = m->dirty_head; id != BC_NONE; id = bc->pages[id].dirty_next) {
            struct bc_page *p = &bc->pages[id];
            VALIDATE(page_map(p) == m && (page_flags(p) & PG_ON_LIST) && p->dirty_prev == prev,
                     "dirty list of map %u: page %u misplaced", m->id, id);
            prev = id;
            VALIDATE(++listed <= t->on_list, "dirty lists hold more pages than are listed");
        }
        VALIDATE(m->dirty_tail == prev, "dirty list of map %u: bad tail", m->id);
    }
    VALIDATE(listed == t->on_list, "dirty lists hold %llu of %llu listed pages",
             (unsigned long long)listed, (unsigned long long)t->on_list);
    uint32_t warm = 0, cold = 0;
    for (uint32_t id = bc->free_warm; id != BC_NONE; id = bc->pages[id].dirty_next, warm++)
        VALIDATE(atomic_load(&bc->pages[id].refcount) == 0 &&
                     (page_flags(&bc->pages[id]) & PG_FRAME), "warm free page %u bad", id);
    for (uint32_t id = bc->free_cold; id != BC_NONE; id = bc->pages[id].dirty_next, cold++)
        VALIDATE(atomic_load(&bc->pages[id].refcount) == 0 &&
                     !(page_flags(&bc->pages[id]) & PG_FRAME), "cold free page %u bad", id);
    VALIDATE(warm == bc->nr_free_warm && cold == bc->nr_free_cold, "free list counts wrong");
    return 0;
}

static int validate_locked(struct bcache *bc)
{
    struct tally t = {0};
    uint32_t n = atomic_load(&bc->nr_inited);
    for (uint32_t i = 0; i < n; i++)
        if (validate_page(bc, &bc->pages[i], &t))
            return -EUCLEAN;
    if (validate_lists(bc, &t))
        return -EUCLEAN;
    VALIDATE(t.cached == atomic_load(&bc->nr_cached), "nr_cached %llu, counted %llu",
             (unsigned long long)atomic_load(&bc->nr_cached), (unsigned long long)t.cached);
    VALIDATE(t.dirty == atomic_load(&bc->nr_dirty), "nr_dirty %llu, counted %llu",
             (unsigned long long)atomic_load(&bc->nr_dirty), (unsigned long long)t.dirty);
    VALIDATE(t.bh == atomic_load(&bc->bh_live), "bh_live %llu, counted %llu",
             (unsigned long long)atomic_load(&bc->bh_live), (unsigned long long)t.bh);
    VALIDATE(t.frames == atomic_load(&bc->frames_resident), "frames %llu, counted %llu",
             (unsigned long long)atomic_load(&bc->frames_resident), (unsigned long long)t.frames);
    int64_t expect = (int64_t)(t.frames * BC_PAGE_SIZE + descriptor_bytes(bc) +
                               t.bh * bc->bh_size + bc->index_bytes + sizeof *bc);
    int64_t used = atomic_load(&bc->mem_used);
    VALIDATE(used == expect, "mem_used %lld, recomputed %lld", (long long)used, (long long)expect);
    VALIDATE(used <= (int64_t)bc->memory_limit, "mem_used %lld over the limit %zu",
             (long long)used, bc->memory_limit);
    return 0;
}

int bcache_validate(struct bcache *bc)
{
    if (!bc)
        return -EINVAL;
    pthread_mutex_lock(&bc->pass_lock); /* keep the flusher out */
    pthread_mutex_lock(&bc->lock);
    int ret = validate_locked(bc);
    pthread_mutex_unlock(&bc->lock);
    pthread_mutex_unlock(&bc->pass_lock);
    return ret;
}
