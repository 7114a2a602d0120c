/*
 * bufcache/bh.c: buffer heads — rings, lookup (bh_get/bh_read/bh_put), block
 * locks, reads, and the release routine that makes rings reconstructible.
 *
 * 1. Objects and states.  A ring holds one buffer head per addressable block of
 *    a page (blocks_per_page = 4096 / block_size, fewer on the device's last
 *    page), in block order, circular through b_this_page, headed by
 *    page->buffers.  State bits (b_state): UPTODATE (data valid), DIRTY (must be
 *    written), LOCK (data being changed or written; b_owner = tid), MAPPED
 *    (attached to its device block: always, while in a ring), WRITE_EIO (its
 *    last write failed; it stays DIRTY).  A ring is ATTACHED (b_page = its page)
 *    or, once released, its buffer heads are FREE in the "buffer_head" slab
 *    cache (b_page NULL, constructed state kept: the slab cache has a ctor).
 * 2. Locking.  Ring attach and release hold the page lock; release also freezes
 *    the page (refcount -> 0) so that no lock-free reader can be walking the ring.
 *    Readers of a ring hold a page pin, which keeps the ring attached.  BH_LOCK
 *    is a futex bit lock on b_state.  The global bh_cache pointer and its user
 *    count are protected by bh_cache_lock.
 * 3. References.  b_count counts callers' references; each comes with one page
 *    reference (internal.h).  The page owns the ring: only the release routine
 *    and eviction free buffer heads, after clearing b_page (release ordering)
 *    and page->buffers; anyone holding a pin on bh->b_page who re-reads b_page
 *    (acquire) and still finds that page knows the buffer head is attached to it.
 * 4. Invariants.  For every attached bh: b_page == its page, b_data == frame +
 *    (b_blocknr % blocks_per_page) * b_size, ring length == page_nr_blocks().
 *    Release needs: page clean, not under writeback, not on the dirty list; every
 *    bh unreferenced, clean, unlocked, without WRITE_EIO.  The page keeps the
 *    ring's uptodate bits (PG_SAVED mask) so a rebuilt ring has the same state:
 *    no I/O and nothing lost.
 * 5. Policies.  A lookup prefetches the block's first data line as soon as the
 *    page is found (the frame address follows from the descriptor), overlapping
 *    that cache miss with the buffer head's; measured on a 256 MiB random hit
 *    set it cut the hit time by a quarter or more (noisy shared machine).
 *    A read of a block also reads the page's other blocks that are
 *    not uptodate and can be trylocked, in contiguous runs (one pread for a
 *    cold page), which is read-ahead within the page as ext2's 1 KiB blocks want.
 *    bh_mark_dirty implies uptodate.
 * 6. Observability.  hits, misses, buffer_heads_live, rings_dropped,
 *    rings_rebuilt, reads, read_errors.
 */
#define _GNU_SOURCE
#include "bufcache/internal.h"
#include "bufcache/bh_defrag.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the buffer_head slab cache (one per process, shared by all bcaches) ------ */

static pthread_mutex_t bh_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slab_cache *bh_cache;
static unsigned bh_cache_users;

static void bh_ctor(void *obj)
{
    struct bh_impl *bh = obj;
    memset(bh, 0, sizeof *bh);
}

/* What one buffer head really costs: its share of a slab, the slab's own
 * overhead included.  Partly empty slabs (fragmentation) are not included:
 * that is what defrag reclaims, and the slab statistics show it. */
static size_t bh_footprint(struct slab_cache *s)
{
    size_t bytes = sizeof(struct bh_impl);
    struct slab_cache_stats st;
    if (slab_cache_get_stats(s, &st) == 0 && st.objects_per_slab &&
        st.slab_size / st.objects_per_slab > bytes)
        bytes = st.slab_size / st.objects_per_slab;
    return bytes;
}

/* The "buffer_head" cache: 56-byte objects, no padding.  The allocator's free
 * pointer overlays b_blocknr of a free buffer head (set on every ring build,
 * never read through a stale pointer), so the fields that get/kick read of a
 * possibly free buffer head — b_page above all, NULL once freed — keep their
 * values and no extra word per object is needed. */
static struct slab_cache *bh_cache_create(void)
{
    struct slab_cache *s = slab_cache_create("buffer_head", sizeof(struct bh_impl), 0, 0, bh_ctor);
    if (s && slab_cache_set_freeptr_offset(s, offsetof(struct bh_impl, pub.b_blocknr)) != 0) {
        slab_cache_destroy(s); /* cannot happen: a new cache with room for the pointer */
        s = NULL;
    }
    return s;
}

int bh_cache_acquire(struct bcache *bc)
{
    int err = 0;
    pthread_mutex_lock(&bh_cache_lock);
    if (!bh_cache)
        bh_cache = bh_cache_create();
    if (bh_cache && !bh_cache_users && bh_defrag_register(bh_cache) != 0) {
        slab_cache_destroy(bh_cache); /* cannot happen: a new ctor cache accepts get/kick */
        bh_cache = NULL;
    }
    if (bh_cache) {
        bh_cache_users++;
        bc->bh_cache = bh_cache;
        bc->bh_size = bh_footprint(bh_cache);
    } else {
        err = errno ? -errno : -ENOMEM;
    }
    pthread_mutex_unlock(&bh_cache_lock);
    return err;
}

void bh_cache_release(struct bcache *bc)
{
    pthread_mutex_lock(&bh_cache_lock);
    if (--bh_cache_users == 0) {
        slab_cache_destroy(bh_cache);
        bh_cache = NULL;
    }
    pthread_mutex_unlock(&bh_cache_lock);
    bc->bh_cache = NULL;
}

/* ---- block locks ------------------------------------------------------------------ */

static inline bool bh_owned_by_me(struct bh_impl *bh)
{
    return atomic_load_explicit(&bh->b_owner, memory_order_relaxed) == bc_gettid();
}

bool bh_trylock_internal(struct bh_impl *bh)
{
    if (atomic_fetch_or_explicit(&bh->b_state, BH_LOCK, memory_order_acquire) & BH_LOCK)
        return false;
    atomic_store_explicit(&bh->b_owner, bc_gettid(), memory_order_relaxed);
    return true;
}

void bh_lock_internal(struct bh_impl *bh)
{
    while (!bh_trylock_internal(bh))
        bc_word_wait(&bh->b_state, BH_WAITERS, BH_LOCK);
}

void bh_unlock_internal(struct bh_impl *bh)
{
    atomic_store_explicit(&bh->b_owner, 0, memory_order_relaxed);
    bc_word_clear_wake(&bh->b_state, BH_LOCK, BH_WAITERS);
}

static void bh_misuse(struct bh_impl *bh, const char *what)
{
    struct bc_page *p = bh_page(bh);
    fprintf(stderr, "bufcache: %s: buffer head %p (block %llu, page %p)\n", what, (void *)bh,
            (unsigned long long)bh->pub.b_blocknr, (void *)p);
    abort();
}

void bh_lock(struct buffer_head *pub)
{
    struct bh_impl *bh = bh_impl(pub);
    if (bh_owned_by_me(bh))
        bh_misuse(bh, "bh_lock of a block this thread already holds locked");
    bh_lock_internal(bh);
}

void bh_unlock(struct buffer_head *pub)
{
    struct bh_impl *bh = bh_impl(pub);
    if (!bh_owned_by_me(bh))
        bh_misuse(bh, "bh_unlock of a block this thread has not locked");
    bh_unlock_internal(bh);
}

/* ---- rings ---------------------------------------------------------------------------- */

unsigned page_nr_blocks(struct bdev_map *m, struct bc_page *p)
{
    uint64_t first = atomic_load_explicit(&p->index, memory_order_relaxed) << m->bpp_shift;
    uint64_t left = m->nr_blocks - first;
    return left < m->blocks_per_page ? (unsigned)left : m->blocks_per_page;
}

int page_build_ring(struct bcache *bc, struct bc_page *p, uint32_t uptodate_mask)
{
    struct bdev_map *m = page_map(p);
    unsigned n = page_nr_blocks(m, p);
    struct bh_impl *v[8];
    for (unsigned i = 0; i < n; i++) {
        if (!(v[i] = slab_alloc(bc->bh_cache))) {
            while (i--)
                slab_free(bc->bh_cache, v[i]);
            return -ENOMEM;
        }
    }
    char *data = page_data(bc, p);
    uint64_t first = atomic_load_explicit(&p->index, memory_order_relaxed) << m->bpp_shift;
    for (unsigned i = 0; i < n; i++) {
        struct bh_impl *bh = v[i];
        bh->pub.b_data = data + ((size_t)i << m->block_shift);
        bh->pub.b_blocknr = first + i;
        bh->pub.b_size = m->block_size;
        atomic_store_explicit(&bh->b_state,
                              BH_MAPPED | ((uptodate_mask >> i) & 1u ? BH_UPTODATE : 0),
                              memory_order_relaxed);
        atomic_store_explicit(&bh->b_count, 0, memory_order_relaxed);
        atomic_store_explicit(&bh->b_owner, 0, memory_order_relaxed);
        bh->b_this_page = v[(i + 1) % n];
        atomic_store_explicit(&bh->b_page, p, memory_order_release);
    }
    atomic_fetch_add(&bc->bh_live, n);
    atomic_store_explicit(&p->buffers, v[0], memory_order_release);
    page_set_flags(p, PG_HAS_BUFFERS);
    return 0;
}

void page_detach_ring(struct bcache *bc, struct bc_page *p)
{
    struct bh_impl *ring = atomic_load_explicit(&p->buffers, memory_order_acquire);
    if (!ring)
        return;
    struct bh_impl *v[8];
    unsigned n = 0;
    struct bh_impl *bh = ring;
    do {
        v[n++] = bh;
        atomic_store_explicit(&bh->b_page, NULL, memory_order_release);
        bh = bh->b_this_page;
    } while (bh != ring && n < 8);
    atomic_store_explicit(&p->buffers, NULL, memory_order_release);
    page_clear_flags(p, PG_HAS_BUFFERS);
    for (unsigned i = 0; i < n; i++)
        slab_free(bc->bh_cache, v[i]);
    atomic_fetch_sub(&bc->bh_live, n);
    mem_uncharge(bc, n * bc->bh_size);
}

unsigned ring_vector(struct bh_impl *ring, struct bh_impl **v)
{
    unsigned n = 0;
    struct bh_impl *bh = ring;
    do {
        v[n++] = bh;
        bh = bh->b_this_page;
    } while (bh != ring && n < 8);
    return n;
}

static void save_uptodate_mask(struct bc_page *p, uint32_t mask)
{
    uint32_t old = atomic_load(&p->flags);
    while (!atomic_compare_exchange_weak(&p->flags, &old,
                                         (old & ~PG_SAVED_MASK) | (mask << PG_SAVED_SHIFT)))
        ;
}

bool page_ring_releasable(struct bc_page *p, uint32_t *uptodate_mask)
{
    const uint32_t busy_bh = BH_DIRTY | BH_LOCK | BH_WRITE_EIO;
    uint32_t mask = 0;
    if (page_flags(p) & (PG_DIRTY | PG_WRITEBACK | PG_ON_LIST))
        return false;
    struct bh_impl *ring = atomic_load_explicit(&p->buffers, memory_order_acquire);
    if (ring) {
        struct bh_impl *v[8];
        unsigned n = ring_vector(ring, v);
        for (unsigned i = 0; i < n; i++) {
            uint32_t st = atomic_load_explicit(&v[i]->b_state, memory_order_acquire);
            if ((st & busy_bh) || atomic_load(&v[i]->b_count))
                return false;
            mask |= (st & BH_UPTODATE ? 1u : 0u) << i;
        }
    }
    if (uptodate_mask)
        *uptodate_mask = mask;
    return true;
}

int page_release_buffers(struct bc_page *p, uint32_t pins)
{
    struct bdev_map *m = page_map(p);
    uint32_t mask;
    if (!m || !atomic_load_explicit(&p->buffers, memory_order_acquire) ||
        !page_ring_releasable(p, NULL))
        return -EBUSY; /* cheap early answer; decided again below, frozen */
    if (!page_freeze(p, pins))
        return -EBUSY;
    if (!page_ring_releasable(p, &mask)) {
        page_unfreeze(p, pins);
        return -EBUSY;
    }
    unsigned n = page_nr_blocks(m, p);
    save_uptodate_mask(p, mask);
    page_detach_ring(m->bc, p);
    page_unfreeze(p, pins);
    bc_count(m->bc, ST_RINGS_DROPPED, 1);
    return (int)n;
}

struct bh_impl *page_buffers(struct bcache *bc, struct bc_page *p)
{
    struct bh_impl *ring = atomic_load_explicit(&p->buffers, memory_order_acquire);
    if (ring)
        return ring;
    size_t bytes = page_nr_blocks(page_map(p), p) * bc->bh_size;
    if (!mem_charge_reclaiming(bc, bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    page_lock(p);
    ring = atomic_load_explicit(&p->buffers, memory_order_acquire);
    if (ring) {
        mem_uncharge(bc, bytes);
    } else {
        uint32_t mask = (page_flags(p) & PG_SAVED_MASK) >> PG_SAVED_SHIFT;
        if (page_build_ring(bc, p, mask) == 0) {
            ring = atomic_load_explicit(&p->buffers, memory_order_relaxed);
            bc_count(bc, ST_RINGS_REBUILT, 1);
        } else {
            mem_uncharge(bc, bytes);
            errno = ENOMEM;
        }
    }
    page_unlock(p);
    return ring;
}

/* ---- lookup ------------------------------------------------------------------------------ */

static void page_reset_flags(struct bc_page *p, uint32_t value)
{
    uint32_t old = atomic_load(&p->flags);
    while (!atomic_compare_exchange_weak(&p->flags, &old,
                                         (old & (PG_LOCKED | PG_WAITERS)) | value))
        ;
}

TEST_HOOKS_DEFINE(struct bh_test_hooks, bh_set_test_hooks)

/* A new page for (m, index), pinned for the caller, or the page another thread
 * inserted first. */
static struct bc_page *page_create(struct bcache *bc, struct bdev_map *m, uint64_t index)
{
    uint64_t first = index << m->bpp_shift;
    uint64_t left = m->nr_blocks - first;
    unsigned n = left < m->blocks_per_page ? (unsigned)left : m->blocks_per_page;
    size_t ring_bytes = n * bc->bh_size;
    struct bc_page *p = page_alloc(bc, ring_bytes);
    if (!p)
        return NULL;
    atomic_store_explicit(&p->index, index, memory_order_relaxed);
    atomic_store_explicit(&p->map, m, memory_order_relaxed);
    page_reset_flags(p, PG_FRAME);
    atomic_store_explicit(&p->wb_epoch, 0, memory_order_relaxed);
    p->dirty_prev = p->dirty_next = BC_NONE;
    if (page_build_ring(bc, p, 0) != 0) {
        atomic_store_explicit(&p->map, NULL, memory_order_relaxed);
        mem_uncharge(bc, ring_bytes);
        page_free(bc, p);
        errno = ENOMEM;
        return NULL;
    }
    atomic_store_explicit(&p->refcount, 2, memory_order_release);
    TEST_HOOK(before_insert, p);
    struct bc_page *q = page_index_insert(bc, p);
    if (q == p) {
        atomic_fetch_add(&bc->nr_cached, 1);
        return p;
    }
    /* Lost the race.  No lookup can find p (it is not in the index), but its
     * ring's buffer heads are live objects of the buffer_head cache, so a
     * defrag pass may have pinned p through bh->b_page (get).  Its pin is
     * transient — kick only trylocks and drops it — so wait for our own two
     * references to be the only ones and freeze them away; a plain store of 0
     * would erase that pin and its page_put would find refcount 0. */
    while (!page_freeze(p, 1))
        sched_yield();
    page_detach_ring(bc, p);
    atomic_store_explicit(&p->map, NULL, memory_order_relaxed);
    page_free(bc, p);
    return q;
}

/* The referenced buffer head of a block; *cached says whether its page was. */
static struct bh_impl *bh_getblk(struct bdev *dev, uint64_t blocknr, bool *cached)
{
    if (!dev) {
        errno = EINVAL;
        return NULL;
    }
    struct bdev_map *m = dev->map;
    struct bcache *bc = m->bc;
    if (blocknr >= m->nr_blocks) {
        errno = EINVAL;
        return NULL;
    }
    uint64_t index = blocknr >> m->bpp_shift;
    struct bc_page *p = page_lookup(bc, m, index);
    *cached = p != NULL;
    if (!p && !(p = page_create(bc, m, index)))
        return NULL;
    unsigned k = (unsigned)(blocknr & (m->blocks_per_page - 1));
    /* The frame's address follows from the descriptor: start fetching the
     * block's first line now, in parallel with the buffer head's. */
    __builtin_prefetch((char *)page_data(bc, p) + ((size_t)k << m->block_shift));
    struct bh_impl *bh = page_buffers(bc, p);
    if (!bh) {
        page_put(p);
        return NULL;
    }
    for (; k; k--)
        bh = bh->b_this_page;
    atomic_fetch_add_explicit(&bh->b_count, 1, memory_order_relaxed);
    if (!(atomic_load_explicit(&p->flags, memory_order_relaxed) & PG_REFERENCED))
        page_set_flags(p, PG_REFERENCED);
    return bh;
}

struct buffer_head *bh_get(struct bdev *dev, uint64_t blocknr)
{
    bool cached;
    struct bh_impl *bh = bh_getblk(dev, blocknr, &cached);
    if (bh)
        bc_count(dev->map->bc, cached ? ST_HITS : ST_MISSES, 1);
    return bh ? &bh->pub : NULL;
}

void bh_put(struct buffer_head *pub)
{
    if (!pub)
        return;
    struct bh_impl *bh = bh_impl(pub);
    struct bc_page *p = bh_page(bh);
    if (!p)
        bh_misuse(bh, "bh_put of a buffer head that is not attached to a page");
    uint32_t old = atomic_fetch_sub_explicit(&bh->b_count, 1, memory_order_release);
    if (old == 0)
        bh_misuse(bh, "bh_put of an unreferenced buffer head (double put?)");
    page_put(p);
}

void page_update_uptodate(struct bc_page *p)
{
    struct bh_impl *ring = atomic_load_explicit(&p->buffers, memory_order_acquire);
    struct bh_impl *v[8];
    unsigned n = ring_vector(ring, v);
    for (unsigned i = 0; i < n; i++)
        if (!(atomic_load_explicit(&v[i]->b_state, memory_order_relaxed) & BH_UPTODATE))
            return;
    page_set_flags(p, PG_UPTODATE);
}

void bh_mark_uptodate(struct buffer_head *pub)
{
    struct bh_impl *bh = bh_impl(pub);
    if (atomic_fetch_or_explicit(&bh->b_state, BH_UPTODATE, memory_order_release) & BH_UPTODATE)
        return;
    page_update_uptodate(bh_page(bh));
}

/* Read `want` (locked by us) and whichever other not-uptodate blocks of its page
 * we can trylock, in contiguous runs.  0 or the error of want's run. */
static int read_page_blocks(struct bdev_map *m, struct bc_page *p, struct bh_impl *want)
{
    struct bh_impl *v[8];
    unsigned n = ring_vector(atomic_load_explicit(&p->buffers, memory_order_acquire), v);
    uint32_t sel = 0;
    for (unsigned i = 0; i < n; i++) {
        if (v[i] == want) {
            sel |= 1u << i;
        } else if (!(atomic_load(&v[i]->b_state) & BH_UPTODATE) && bh_trylock_internal(v[i])) {
            if (atomic_load(&v[i]->b_state) & BH_UPTODATE)
                bh_unlock_internal(v[i]);
            else
                sel |= 1u << i;
        }
    }
    int ret = 0;
    for (unsigned i = 0; i < n;) {
        if (!(sel & (1u << i))) {
            i++;
            continue;
        }
        unsigned j = i;
        bool has_want = false;
        while (j < n && (sel & (1u << j)))
            has_want |= v[j++] == want;
        int err = dev_read(m, v[i]->pub.b_blocknr << m->block_shift, v[i]->pub.b_data,
                           (size_t)(j - i) << m->block_shift);
        for (unsigned k = i; k < j; k++) {
            if (!err)
                atomic_fetch_or_explicit(&v[k]->b_state, BH_UPTODATE, memory_order_release);
            if (v[k] != want)
                bh_unlock_internal(v[k]);
        }
        if (err && has_want)
            ret = err;
        i = j;
    }
    page_update_uptodate(p);
    return ret;
}

struct buffer_head *bh_read(struct bdev *dev, uint64_t blocknr)
{
    bool cached;
    struct bh_impl *bh = bh_getblk(dev, blocknr, &cached);
    if (!bh)
        return NULL;
    struct bcache *bc = dev->map->bc;
    if (atomic_load_explicit(&bh->b_state, memory_order_acquire) & BH_UPTODATE) {
        bc_count(bc, cached ? ST_HITS : ST_MISSES, 1);
        return &bh->pub;
    }
    bc_count(bc, ST_MISSES, 1);
    bool own = bh_owned_by_me(bh);
    if (!own)
        bh_lock_internal(bh);
    int err = 0;
    if (!(atomic_load_explicit(&bh->b_state, memory_order_acquire) & BH_UPTODATE))
        err = read_page_blocks(dev->map, bh_page(bh), bh);
    if (!own)
        bh_unlock_internal(bh);
    if (err) {
        bh_put(&bh->pub);
        errno = -err;
        return NULL;
    }
    return &bh->pub;
}

void bh_mark_dirty(struct buffer_head *pub)
{
    struct bh_impl *bh = bh_impl(pub);
    struct bc_page *p = bh_page(bh);
    if (!p)
        bh_misuse(bh, "bh_mark_dirty of a buffer head that is not attached to a page");
    struct bdev_map *m = page_map(p);
    if (m->readonly) {
        /* Refuse the change: forget the modified data, report it later. */
        atomic_fetch_and(&bh->b_state, ~BH_UPTODATE);
        page_clear_flags(p, PG_UPTODATE);
        errseq_set(&m->wb_err, EROFS);
        errno = EROFS;
        return;
    }
    uint32_t old = atomic_fetch_or_explicit(&bh->b_state, BH_UPTODATE | BH_DIRTY,
                                            memory_order_acq_rel);
    if (!(old & BH_UPTODATE))
        page_update_uptodate(p);
    if (old & BH_DIRTY)
        return;
    struct bcache *bc = m->bc;
    page_mark_dirty(bc, p);
    if (atomic_load_explicit(&bc->nr_dirty, memory_order_relaxed) > bc->dirty_limit_pages)
        balance_dirty_pages(bc, m);
}

/* Fork (registry.c): the buffer_head cache lock is held across fork(). */
void bh_cache_fork_lock(void)
{
    pthread_mutex_lock(&bh_cache_lock);
}

void bh_cache_fork_unlock(void)
{
    pthread_mutex_unlock(&bh_cache_lock);
}
