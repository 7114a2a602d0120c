/*
 * bufcache/reclaim.c: the memory limit — accounting, CLOCK eviction, shrink,
 * and dropping a closing device's pages.
 *
 * 1. Objects and states.  mem_used counts every byte the cache holds for data
 *    and metadata: resident frames (4096 each, warm free ones included),
 *    descriptor memory (in 4 KiB steps of the descriptor array's high-water
 *    mark), buffer heads (live count x the slab's object size), the index (bucket
 *    array and stripe locks) and struct bcache itself.  A charge that would pass
 *    memory_limit fails; the caller reclaims and retries, so the limit holds at
 *    every instant, not just on average.
 * 2. Locking.  mem_used is an atomic updated with compare-exchange.  clock_lock
 *    serialises sweeps of the clock hand over the descriptor array; a sweep takes
 *    page locks only by trylock and writes dirty pages only WB_NOWAIT, so any
 *    thread may reclaim while holding block or page locks.
 * 3. References.  Eviction freezes a page (refcount 1 -> 0, page locked): a page
 *    with any reference, dirty, on the dirty list or under writeback is never
 *    evicted, and the release routine's check (page_ring_releasable) must agree
 *    on the frozen page before its ring goes through page_detach_ring (b_page
 *    cleared, buffer heads slab_free'd).  Its frame stays warm for the next miss.
 * 4. Invariants.  mem_used <= memory_limit.  An evicted page is out of the index
 *    before its ring is freed and its map cleared.
 * 5. Policies and numbers.  CLOCK (second chance): a hit sets PG_REFERENCED; the
 *    sweep clears it and moves on, evicts unreferenced clean pages, and starts a
 *    non-blocking writeback of dirty ones (evicted on a later lap).  One call
 *    evicts up to 8 pages and looks at most at 2 laps of the array; when it
 *    evicted nothing but saw pages that may become evictable soon (dirty ones it
 *    started writing, pages a writer has pinned, a page lock held) it
 *    sweeps again, up to 32 times — waiting for a page's writeback to finish
 *    when one is in flight, otherwise yielding, then sleeping 50 us doubling to
 *    3.2 ms (~75 ms in all: a writer preempted on a loaded machine holds its
 *    pins for a time slice or more) — before the caller's allocation fails with
 *    ENOMEM.  Pinned pages are waited for only while writers hold pins
 *    (bc->writer_pins: the flusher and throttled writers pin a batch of dirty
 *    pages before writing them one by one); a user's pins fail the allocation
 *    at once; a page referenced by someone who holds none of its buffer heads
 *    (a thread between its lookup and its bh, a page being created) is
 *    transient and swept again like a pending one, so whether an allocation
 *    fails does not depend on where other threads are.  Nor is a dirty page
 *    whose write the device refuses waited for: it stays dirty (nothing is
 *    dropped) and the allocation fails with ENOMEM.  Memory that is not a frame
 *    (a ring's buffer heads, mem_charge_reclaiming) is found first among the
 *    warm free frames, which eviction leaves charged for the next miss, then by
 *    evicting.
 *    bcache_shrink then hands evicted frames back to the OS (MADV_DONTNEED) and
 *    shrinks the buffer_head slab cache; it reports the two separately (page
 *    bytes: what mem_used fell by; slab bytes: buffer_head slab memory handed
 *    to the OS, which mem_used never counted).  A reclaim that evicted pages
 *    also defragments the buffer_head cache when most of its slab memory is
 *    fragmentation (reclaim_defrag_buffer_heads).
 * 6. Observability.  evictions, memory_used, cached_pages.
 */
#define _GNU_SOURCE
#include "bufcache/internal.h"

#include <sched.h>
#include <stdint.h>
#include <time.h>

#define RECLAIM_BATCH 8u
#define RECLAIM_ATTEMPTS 32u

bool mem_try_charge(struct bcache *bc, size_t bytes)
{
    int64_t cur = atomic_load_explicit(&bc->mem_used, memory_order_relaxed);
    do {
        if (cur + (int64_t)bytes > (int64_t)bc->memory_limit)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&bc->mem_used, &cur, cur + (int64_t)bytes,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

void mem_uncharge(struct bcache *bc, size_t bytes)
{
    atomic_fetch_sub_explicit(&bc->mem_used, (int64_t)bytes, memory_order_relaxed);
}

void page_evict_frozen(struct bcache *bc, struct bc_page *p)
{
    page_index_remove(bc, p);
    page_detach_ring(bc, p);
    atomic_store_explicit(&p->map, NULL, memory_order_relaxed);
    atomic_fetch_and(&p->flags, PG_LOCKED | PG_WAITERS | PG_FRAME);
    atomic_fetch_sub(&bc->nr_cached, 1);
    bc_count(bc, ST_EVICTIONS, 1);
    page_unlock(p);
    page_free(bc, p);
}

/* SWEEP_PENDING: not evictable now, probably soon (a writeback to wait for, a
 * lock or pin in passing).  SWEEP_PINNED: held by a reference — a user's pin
 * (lasting) or a writer's (bc->writer_pins says whether any exist).
 * SWEEP_SKIP: free, given its second chance, or dirty with a write the device
 * refused. */
enum sweep_result { SWEEP_SKIP, SWEEP_EVICTED, SWEEP_PENDING, SWEEP_PINNED };

static unsigned ring_user_refs(struct bc_page *p);

/* A page with references besides the index's: SWEEP_PINNED if a caller holds
 * one of its buffer heads (a lasting pin), else SWEEP_PENDING: a thread between
 * its lookup and taking (or after dropping) the buffer head, a page being
 * created, a writer, a defrag get — gone in a moment, so worth another sweep
 * rather than an ENOMEM that depends on when the sweep ran.  The ring is read
 * under the page lock, which keeps it attached (a page lock held by someone
 * else is in passing too). */
static enum sweep_result sweep_pinned(struct bc_page *p)
{
    if (!page_trylock(p))
        return SWEEP_PENDING;
    bool user = ring_user_refs(p) > 0;
    page_unlock(p);
    return user ? SWEEP_PINNED : SWEEP_PENDING;
}

/* One clock step at page p. */
static enum sweep_result sweep_one(struct bcache *bc, struct bc_page *p)
{
    const uint32_t busy = PG_DIRTY | PG_WRITEBACK | PG_ON_LIST;
    if (atomic_load_explicit(&p->refcount, memory_order_relaxed) == 0)
        return SWEEP_SKIP;
    uint32_t f = page_flags(p);
    if (f & PG_REFERENCED) {
        page_clear_flags(p, PG_REFERENCED);
        return SWEEP_SKIP;
    }
    if (atomic_load_explicit(&p->refcount, memory_order_relaxed) > 1)
        return sweep_pinned(p);
    if (f & busy) {
        /* Dirty: start writing it.  Clean but still listed: the writeback
         * call takes it off the list.  A write that fails (the device refuses
         * it) leaves the page dirty for good: nothing to wait for. */
        int err = 0;
        if (!(f & PG_WRITEBACK) && page_get_unless_zero(p)) {
            struct bdev_map *m = page_map(p);
            if (m && !atomic_load(&m->closing))
                err = page_writeback(bc, p, WB_NOWAIT);
            page_put(p);
        }
        return err && err != -EBUSY ? SWEEP_SKIP : SWEEP_PENDING;
    }
    if (!page_trylock(p))
        return SWEEP_PENDING;
    if (!page_freeze(p, 0)) { /* pinned meanwhile */
        page_unlock(p);
        return SWEEP_PENDING;
    }
    if (!page_ring_releasable(p, NULL)) { /* the release routine says no */
        page_unfreeze(p, 0);
        page_unlock(p);
        return SWEEP_PENDING;
    }
    page_evict_frozen(bc, p);
    return SWEEP_EVICTED;
}

/* Between sweeps that evicted nothing: yield a few times, then sleep 50 us
 * doubling to 3.2 ms, so the 32 attempts span ~75 ms — longer than a
 * scheduler time slice on a loaded machine, which is how long a preempted
 * writer may sit on its pins. */
static void reclaim_backoff(unsigned attempt)
{
    if (attempt < 4) {
        sched_yield();
    } else {
        unsigned shift = attempt - 4 < 6 ? attempt - 4 : 6;
        struct timespec ts = {0, 50000L << shift};
        nanosleep(&ts, NULL);
    }
}

/* A page another thread is writing back, pinned, to wait for when a sweep found
 * nothing to evict: waiting for the I/O to end beats guessing how long it takes
 * (a slow or preempted writer made the time-based back-off fail with ENOMEM). */
static struct bc_page *pin_writeback_page(struct bc_page *p, struct bc_page *have)
{
    if (have || !(page_flags(p) & PG_WRITEBACK) || !page_get_unless_zero(p))
        return have;
    return p;
}

TEST_HOOKS_DEFINE(struct reclaim_test_hooks, reclaim_set_test_hooks)

/*
 * Evicting pages frees their buffer heads, which leaves the buffer_head slabs
 * sparse: memory the process holds but the cache no longer counts.  When most
 * of that slab memory is fragmentation (fewer than half the slab capacity
 * allocated, over at least BH_DEFRAG_MIN_SLABS slabs), the allocation path runs
 * one get/kick pass over the slabs below half full, as bcache_shrink and the
 * background defragmenter do.  A pass that hands nothing back (buffer heads
 * referenced, dirty or locked) makes the next BH_DEFRAG_SKIP reclaims skip the
 * check, so a cache whose buffer heads cannot go pays for it rarely.  Called
 * with no lock held; get/kick only trylock pages, so a caller holding block or
 * page locks cannot deadlock with it, and a thread already inside a pass of
 * this cache gets -EBUSY at once.
 */
#define BH_DEFRAG_MIN_SLABS 16u
#define BH_DEFRAG_SKIP 64u /* reclaims that skip the check after a pass freed nothing */

/* Process-wide like the buffer_head cache: reclaims left to skip. */
static _Atomic unsigned bh_defrag_skip;

static void reclaim_defrag_buffer_heads(struct bcache *bc)
{
    struct slab_cache_stats st;
    unsigned skip = atomic_load_explicit(&bh_defrag_skip, memory_order_relaxed);
    if (skip) {
        atomic_compare_exchange_strong(&bh_defrag_skip, &skip, skip - 1);
        return;
    }
    if (!bc->bh_cache || slab_cache_get_stats(bc->bh_cache, &st) != 0)
        return;
    if (st.slabs >= BH_DEFRAG_MIN_SLABS && st.objects_active * 2 < st.objects_total &&
        slab_cache_defrag(bc->bh_cache, 50) == 0)
        atomic_store_explicit(&bh_defrag_skip, BH_DEFRAG_SKIP, memory_order_relaxed);
}

unsigned reclaim_some(struct bcache *bc)
{
    unsigned evicted = 0;
    pthread_mutex_lock(&bc->clock_lock);
    for (unsigned attempt = 0; attempt < RECLAIM_ATTEMPTS && !evicted; attempt++) {
        uint32_t n = atomic_load_explicit(&bc->nr_inited, memory_order_acquire);
        bool pending = false, pinned = false;
        struct bc_page *under_wb = NULL;
        for (uint64_t scanned = 0; scanned < 2ull * n && evicted < RECLAIM_BATCH; scanned++) {
            if (bc->clock_hand >= n)
                bc->clock_hand = 0;
            struct bc_page *p = &bc->pages[bc->clock_hand++];
            enum sweep_result r = sweep_one(bc, p);
            evicted += r == SWEEP_EVICTED;
            pending |= r == SWEEP_PENDING;
            pinned |= r == SWEEP_PINNED;
            if (r == SWEEP_PENDING)
                under_wb = pin_writeback_page(p, under_wb);
        }
        if (under_wb && !evicted) {
            pthread_mutex_unlock(&bc->clock_lock);
            page_wait_writeback(under_wb);
            page_put(under_wb);
            pthread_mutex_lock(&bc->clock_lock);
        } else if (under_wb) {
            page_put(under_wb);
        }
        if (!evicted)
            TEST_HOOK(after_sweep, bc, attempt);
        /* Pinned pages are worth waiting for only while a writer (flusher,
         * throttled writer) holds pins: it may sit preempted on a batch of
         * collected pages.  A user's pins last: fail at once, as ever. */
        if (!pending && !(pinned && atomic_load(&bc->writer_pins) > 0))
            break;
        if (!evicted && !under_wb)
            reclaim_backoff(attempt);
    }
    pthread_mutex_unlock(&bc->clock_lock);
    if (evicted)
        reclaim_defrag_buffer_heads(bc);
    return evicted;
}

bool mem_charge_reclaiming(struct bcache *bc, size_t bytes)
{
    size_t frames = (bytes + BC_PAGE_SIZE - 1) / BC_PAGE_SIZE;
    for (unsigned fruitless = 0; !mem_try_charge(bc, bytes);) {
        if (page_release_free_frames(bc, frames))
            continue; /* warm free frames are the cache's own clean memory */
        if (!reclaim_some(bc) && ++fruitless >= 3)
            return false;
    }
    return true;
}

/* Slab memory the buffer_head cache holds (evictions free buffer heads, and the
 * slabs they empty go back to the OS on the way, before any shrink). */
static uint64_t bh_slab_bytes(struct bcache *bc)
{
    struct slab_cache_stats st;
    return bc->bh_cache && slab_cache_get_stats(bc->bh_cache, &st) == 0 ? st.bytes_mapped : 0;
}

long bcache_shrink(struct bcache *bc, size_t target_bytes)
{
    struct bcache_shrink_result res;
    long rc = bcache_shrink_split(bc, target_bytes, &res);
    return rc < 0 ? rc : (long)res.page_bytes;
}

long bcache_shrink_split(struct bcache *bc, size_t target_bytes, struct bcache_shrink_result *out)
{
    if (!bc || !out) {
        errno = EINVAL;
        return -EINVAL;
    }
    int64_t before = atomic_load(&bc->mem_used);
    uint64_t slab_before = bh_slab_bytes(bc);
    size_t frames = target_bytes == SIZE_MAX ? SIZE_MAX : target_bytes / BC_PAGE_SIZE + 1;
    page_release_free_frames(bc, frames);
    while ((size_t)(before - atomic_load(&bc->mem_used)) < target_bytes) {
        unsigned evicted = reclaim_some(bc);
        page_release_free_frames(bc, evicted);
        if (!evicted)
            break;
    }
    int64_t freed = before - atomic_load(&bc->mem_used);
    slab_cache_shrink(bc->bh_cache);
    uint64_t slab_after = bh_slab_bytes(bc);
    out->page_bytes = freed > 0 ? (uint64_t)freed : 0;
    out->slab_bytes = slab_before > slab_after ? slab_before - slab_after : 0;
    return (long)out->page_bytes;
}

/* ---- dropping a closing device's pages ------------------------------------------------- */

/* b_count summed over the ring of a page the caller has pinned. */
static unsigned ring_user_refs(struct bc_page *p)
{
    struct bh_impl *ring = atomic_load_explicit(&p->buffers, memory_order_acquire);
    if (!ring)
        return 0;
    struct bh_impl *v[8];
    unsigned n = ring_vector(ring, v), refs = 0;
    for (unsigned i = 0; i < n; i++)
        refs += atomic_load(&v[i]->b_count);
    return refs;
}

int map_count_user_refs(struct bcache *bc, struct bdev_map *m)
{
    uint32_t n = atomic_load_explicit(&bc->nr_inited, memory_order_acquire);
    int refs = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct bc_page *p = &bc->pages[i];
        if (page_map(p) != m || !page_get_unless_zero(p))
            continue;
        if (page_map(p) == m)
            refs += (int)ring_user_refs(p);
        page_put(p);
    }
    return refs;
}

/* Forget a frozen page's dirty state (its device is being closed after a failed
 * sync; the error has been returned). */
static void drop_dirty_state(struct bcache *bc, struct bdev_map *m, struct bc_page *p)
{
    struct bh_impl *ring = atomic_load_explicit(&p->buffers, memory_order_acquire);
    if (ring) {
        struct bh_impl *v[8];
        unsigned n = ring_vector(ring, v);
        for (unsigned i = 0; i < n; i++)
            atomic_fetch_and(&v[i]->b_state, ~(BH_DIRTY | BH_WRITE_EIO));
    }
    if (atomic_fetch_and(&p->flags, ~PG_DIRTY) & PG_DIRTY)
        atomic_fetch_sub(&bc->nr_dirty, 1);
    pthread_mutex_lock(&m->dirty_lock);
    if (page_flags(p) & PG_ON_LIST)
        dirty_list_remove_locked(bc, m, p);
    pthread_mutex_unlock(&m->dirty_lock);
}

/* Evict page p of m whatever its state; waits out transient pins (flusher,
 * defrag).  0, or -EBUSY if a caller holds a buffer head of it. */
static int drop_page(struct bcache *bc, struct bdev_map *m, struct bc_page *p)
{
    for (;;) {
        if (!page_get_unless_zero(p)) {
            if (page_map(p) != m)
                return 0;
            sched_yield(); /* frozen by a releaser or evictor */
            continue;
        }
        if (page_map(p) != m) {
            page_put(p);
            return 0;
        }
        if (ring_user_refs(p)) {
            page_put(p);
            return -EBUSY;
        }
        page_lock(p);
        page_wait_writeback(p);
        if (!page_freeze(p, 1)) {
            page_unlock(p);
            page_put(p);
            sched_yield();
            continue;
        }
        drop_dirty_state(bc, m, p);
        page_evict_frozen(bc, p);
        return 0;
    }
}

int map_drop_pages(struct bcache *bc, struct bdev_map *m)
{
    uint32_t n = atomic_load_explicit(&bc->nr_inited, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
        struct bc_page *p = &bc->pages[i];
        if (page_map(p) == m && drop_page(bc, m, p) == -EBUSY)
            return -EBUSY;
    }
    return 0;
}
