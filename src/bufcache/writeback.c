/*
 * bufcache/writeback.c: dirty lists, page writeback, sync, the flusher thread,
 * writer throttling, and error reporting (errseq).
 *
 * 1. Objects and states.  A dirty page is on its map's dirty list, oldest first
 *    (dirtied_at, ms).  Page writeback: PG_WRITEBACK set by exactly one thread
 *    (test-and-set; WB_NOWAIT callers that lose return -EBUSY, as kick needs),
 *    then PG_DIRTY is cleared (Linux clear_page_dirty_for_io), then each dirty
 *    block is locked, its BH_DIRTY cleared and contiguous runs written.  A page
 *    stays on the list while it is dirty or under writeback; the writer removes
 *    it at the end if it is clean.
 *    Failure policy (FreeBSD's brelse "failed write, redirty", never Linux's
 *    mark-clean): a failed run gets BH_DIRTY | BH_WRITE_EIO back, the page gets
 *    PG_DIRTY | PG_ERROR and moves to the list tail (retried after another
 *    dirty_expire_ms), and the error goes into the map's errseq.
 *    Flush epochs: each write records wb_epoch = flush_epoch + 1; a flush takes
 *    E = flush_epoch++ and on success sets durable_epoch >= E + 1; on failure
 *    every cached page with wb_epoch > durable_epoch is dirtied again, because
 *    whether its data reached stable storage is unknown.  Pages written and then
 *    evicted before that flush cannot be redone (their data is gone from the
 *    cache); the flush's error is returned and recorded in errseq, so such a
 *    loss, if the OS dropped the data, is reported, never silent.
 * 2. Locking.  map->dirty_lock: the list links, dirtied_at, PG_ON_LIST.  Writers
 *    of a block hold its BH_LOCK (WB_NOWAIT: trylock, skip, page stays dirty;
 *    WB_SYNC: see below; a block locked by the calling thread itself is written as is
 *    by WB_SYNC paths (bh_sync under the caller's lock) and skipped by WB_NOWAIT
 *    ones, so a throttled writer never writes its own half-made change).
 *    The thread holding PG_WRITEBACK only ever trylocks blocks; a WB_SYNC writer
 *    that meets a block locked by another thread finishes the pass, drops
 *    PG_WRITEBACK, waits for that block with nothing held and goes again, so a
 *    sync never deadlocks against threads that hold block locks and sync too.
 *    flush_lock: flush_stop, flush_kicked, flusher_gone, flush_cond.  pass_lock:
 *    one flusher pass (bdev_close waits on it before freeing a map).  In a
 *    forked child there is no flusher (flusher_gone, registry.c): dirty pages
 *    are written by throttled writers, syncs, closes and destroy.
 * 3. References.  Whoever writes a page holds a pin on it for the duration;
 *    dirty pages cannot be frozen (evict/release refuse PG_DIRTY|PG_ON_LIST), so
 *    a pin taken from the dirty list always succeeds unless a closing map is
 *    dropping the page.  The flusher and throttled writers pin a batch of up to
 *    32 pages, then write them one by one; bc->writer_pins counts such pins so
 *    that reclaim can tell them (soon gone) from users' pins (lasting).
 * 4. Invariants.  nr_dirty == pages with PG_DIRTY.  PG_WRITEBACK => on the list.
 *    errseq: an error set after a handle's cursor is reported to that handle
 *    exactly once (Linux lib/errseq.c: 12 bits errno, SEEN bit, counter).
 * 5. Policies and numbers.  dirty_expire_ms (default 3000): the flusher writes
 *    pages older than that, waking every expire/4 (5 ms .. 1 s).  Above
 *    dirty_limit_percent (default 20) of the limit in dirty pages, bh_mark_dirty
 *    throttles its caller: it writes (WB_NOWAIT) up to 16 of its device's oldest
 *    dirty pages per round until dirty pages fall to 3/4 of the limit or it makes
 *    no progress; above half the limit the flusher also writes regardless of age.
 * 6. Observability.  writes, flushes, writeback_errors, dirty_pages,
 *    pages_written, throttled.
 */
#define _GNU_SOURCE
#include "bufcache/internal.h"

#include <stdlib.h>
#include <time.h>

/* ---- errseq (the semantics of Linux lib/errseq.c) ------------------------------ */

#define ERRSEQ_ERRNO_MASK 0xfffu
#define ERRSEQ_SEEN       (1u << 12)
#define ERRSEQ_CTR_INC    (1u << 13)

void errseq_set(_Atomic uint32_t *eseq, int err)
{
    uint32_t old = atomic_load(eseq);
    for (;;) {
        uint32_t new = (old & ~(ERRSEQ_ERRNO_MASK | ERRSEQ_SEEN)) | ((uint32_t)err & ERRSEQ_ERRNO_MASK);
        if (old & ERRSEQ_SEEN)
            new += ERRSEQ_CTR_INC;
        if (new == old || atomic_compare_exchange_weak(eseq, &old, new))
            return;
    }
}

uint32_t errseq_sample(_Atomic uint32_t *eseq)
{
    uint32_t old = atomic_load(eseq);
    return (old & ERRSEQ_SEEN) ? old : 0; /* an unseen error is reported to new openers */
}

int errseq_check_and_advance(_Atomic uint32_t *eseq, _Atomic uint32_t *since)
{
    uint32_t cur = atomic_load(since);
    uint32_t old = atomic_load(eseq);
    if (old == cur)
        return 0;
    while (!(old & ERRSEQ_SEEN) && !atomic_compare_exchange_weak(eseq, &old, old | ERRSEQ_SEEN))
        ;
    uint32_t seen = old | ERRSEQ_SEEN;
    /* Several threads may share a cursor (bh_sync): one of them reports. */
    if (!atomic_compare_exchange_strong(since, &cur, seen))
        return 0;
    return -(int)(old & ERRSEQ_ERRNO_MASK);
}

/* ---- dirty lists ------------------------------------------------------------------ */

static void dirty_list_append_locked(struct bcache *bc, struct bdev_map *m, struct bc_page *p)
{
    uint32_t id = page_id(bc, p);
    p->dirty_prev = m->dirty_tail;
    p->dirty_next = BC_NONE;
    if (m->dirty_tail != BC_NONE)
        bc->pages[m->dirty_tail].dirty_next = id;
    else
        m->dirty_head = id;
    m->dirty_tail = id;
    p->dirtied_at = bc_now_ms(bc);
    page_set_flags(p, PG_ON_LIST);
}

void dirty_list_remove_locked(struct bcache *bc, struct bdev_map *m, struct bc_page *p)
{
    if (p->dirty_prev != BC_NONE)
        bc->pages[p->dirty_prev].dirty_next = p->dirty_next;
    else
        m->dirty_head = p->dirty_next;
    if (p->dirty_next != BC_NONE)
        bc->pages[p->dirty_next].dirty_prev = p->dirty_prev;
    else
        m->dirty_tail = p->dirty_prev;
    p->dirty_prev = p->dirty_next = BC_NONE;
    page_clear_flags(p, PG_ON_LIST);
}

void page_mark_dirty(struct bcache *bc, struct bc_page *p)
{
    if (atomic_fetch_or(&p->flags, PG_DIRTY) & PG_DIRTY)
        return;
    uint64_t dirty = atomic_fetch_add(&bc->nr_dirty, 1) + 1;
    struct bdev_map *m = page_map(p);
    pthread_mutex_lock(&m->dirty_lock);
    if (!(page_flags(p) & PG_ON_LIST))
        dirty_list_append_locked(bc, m, p);
    pthread_mutex_unlock(&m->dirty_lock);
    if (dirty == bc->dirty_bg_pages + 1)
        flusher_kick(bc);
}

/* Pin up to max pages from the head of m's dirty list that are not under
 * writeback and (unless min_age_ms is 0) were dirtied at least min_age_ms ago. */
static unsigned collect_dirty(struct bcache *bc, struct bdev_map *m, struct bc_page **v,
                              unsigned max, uint32_t min_age_ms)
{
    uint32_t now = bc_now_ms(bc);
    unsigned n = 0;
    pthread_mutex_lock(&m->dirty_lock);
    for (uint32_t id = m->dirty_head; id != BC_NONE && n < max;) {
        struct bc_page *p = &bc->pages[id];
        id = p->dirty_next;
        if (min_age_ms && now - p->dirtied_at < min_age_ms)
            break;
        if (page_flags(p) & PG_WRITEBACK)
            continue;
        /* Counted before the pin is taken, so a reclaimer that sees the pin
         * also sees the count (reclaim.c waits for writers' pins). */
        atomic_fetch_add(&bc->writer_pins, 1);
        if (page_get_unless_zero(p))
            v[n++] = p;
        else
            atomic_fetch_sub(&bc->writer_pins, 1);
    }
    pthread_mutex_unlock(&m->dirty_lock);
    return n;
}

/* Write back and unpin one page of a collect_dirty() batch. */
static void write_collected(struct bcache *bc, struct bc_page *p)
{
    page_writeback(bc, p, WB_NOWAIT);
    page_put(p);
    atomic_fetch_sub(&bc->writer_pins, 1);
}

/* ---- page writeback ------------------------------------------------------------------ */

struct wb_run {
    struct bdev_map *m;
    struct bc_page *p;
    struct bh_impl **v;
    bool locked[8];  /* locked by this writeback (not by the calling thread before) */
    bool wrote;
    int err;
};

static void write_run(struct wb_run *r, unsigned a, unsigned b)
{
    struct bdev_map *m = r->m;
    struct bh_impl **v = r->v;
    int err = dev_write(m, v[a]->pub.b_blocknr << m->block_shift, v[a]->pub.b_data,
                        (size_t)(b - a) << m->block_shift);
    uint32_t epoch = atomic_load(&m->flush_epoch) + 1;
    for (unsigned k = a; k < b; k++) {
        if (err)
            atomic_fetch_or(&v[k]->b_state, BH_DIRTY | BH_WRITE_EIO);
        else
            atomic_fetch_and(&v[k]->b_state, ~BH_WRITE_EIO);
        if (r->locked[k])
            bh_unlock_internal(v[k]);
    }
    if (err) {
        page_set_flags(r->p, PG_ERROR);
        errseq_set(&m->wb_err, -err);
        if (!r->err)
            r->err = err;
    } else {
        atomic_store(&r->p->wb_epoch, epoch);
        r->wrote = true;
    }
}

/* Lock and claim (clear BH_DIRTY of) block i for writing; false if it is not
 * to be written now.  Never blocks: a block locked by another thread is left
 * dirty and returned in *busy (WB_SYNC callers wait for it with nothing held). */
static bool claim_block(struct wb_run *r, unsigned i, enum wb_mode mode, bool *skipped,
                        struct bh_impl **busy)
{
    struct bh_impl *bh = r->v[i];
    if (!(atomic_load(&bh->b_state) & BH_DIRTY))
        return false;
    bool mine = atomic_load_explicit(&bh->b_owner, memory_order_relaxed) == bc_gettid();
    if (mine && mode == WB_NOWAIT) {
        *skipped = true;
        return false;
    }
    if (!mine && !bh_trylock_internal(bh)) {
        *skipped = true;
        if (!*busy)
            *busy = bh;
        return false;
    }
    r->locked[i] = !mine;
    if (atomic_fetch_and(&bh->b_state, ~BH_DIRTY) & BH_DIRTY)
        return true;
    if (!mine)
        bh_unlock_internal(bh);
    return false;
}

static int write_dirty_buffers(struct bc_page *p, enum wb_mode mode, bool *skipped,
                               bool *wrote, struct bh_impl **busy)
{
    struct bh_impl *ring = atomic_load_explicit(&p->buffers, memory_order_acquire);
    if (!ring)
        return 0;
    struct bh_impl *v[8];
    unsigned n = ring_vector(ring, v);
    struct wb_run r = {.m = page_map(p), .p = p, .v = v};
    unsigned start = n;
    for (unsigned i = 0; i < n; i++) {
        if (claim_block(&r, i, mode, skipped, busy)) {
            if (start == n)
                start = i;
            continue;
        }
        if (start != n)
            write_run(&r, start, i);
        start = n;
    }
    if (start != n)
        write_run(&r, start, n);
    *wrote = r.wrote;
    return r.err;
}

/* Keep the page on its dirty list while it is dirty; off it once clean. */
static void dirty_list_settle(struct bcache *bc, struct bdev_map *m, struct bc_page *p,
                              bool failed)
{
    pthread_mutex_lock(&m->dirty_lock);
    uint32_t f = page_flags(p);
    if (!(f & PG_DIRTY) && (f & PG_ON_LIST)) {
        dirty_list_remove_locked(bc, m, p);
    } else if (failed && (f & PG_ON_LIST)) { /* retry after another expire period */
        dirty_list_remove_locked(bc, m, p);
        dirty_list_append_locked(bc, m, p);
    } else if ((f & PG_DIRTY) && !(f & PG_ON_LIST)) {
        dirty_list_append_locked(bc, m, p);
    }
    pthread_mutex_unlock(&m->dirty_lock);
}

/* One writeback of the page with PG_WRITEBACK held; the holder of that bit
 * never blocks on a block lock, so waiting for the bit cannot deadlock. */
static int writeback_once(struct bcache *bc, struct bc_page *p, enum wb_mode mode,
                          struct bh_impl **busy)
{
    while (atomic_fetch_or_explicit(&p->flags, PG_WRITEBACK, memory_order_acquire) & PG_WRITEBACK) {
        if (mode == WB_NOWAIT)
            return -EBUSY;
        page_wait_writeback(p);
    }
    int ret = 0;
    bool skipped = false, wrote = false;
    if (atomic_fetch_and(&p->flags, ~PG_DIRTY) & PG_DIRTY) {
        atomic_fetch_sub(&bc->nr_dirty, 1);
        ret = write_dirty_buffers(p, mode, &skipped, &wrote, busy);
        if ((ret || skipped) && !(atomic_fetch_or(&p->flags, PG_DIRTY) & PG_DIRTY))
            atomic_fetch_add(&bc->nr_dirty, 1);
        if (!ret && !skipped)
            page_clear_flags(p, PG_ERROR);
    }
    dirty_list_settle(bc, page_map(p), p, ret != 0);
    bc_word_clear_wake(&p->flags, PG_WRITEBACK, PG_WAITERS);
    if (wrote)
        bc_count(bc, ST_PAGES_WRITTEN, 1);
    return ret;
}

int page_writeback(struct bcache *bc, struct bc_page *p, enum wb_mode mode)
{
    for (;;) {
        struct bh_impl *busy = NULL;
        int ret = writeback_once(bc, p, mode, &busy);
        if (mode == WB_NOWAIT || ret || !busy)
            return ret;
        /* A block another thread holds: wait for it holding nothing (our pin
         * keeps the ring attached), then write what is still dirty. */
        bc_word_wait(&busy->b_state, BH_WAITERS, BH_LOCK);
    }
}

int page_start_writeback_nowait(struct bc_page *p)
{
    return page_writeback(page_map(p)->bc, p, WB_NOWAIT);
}

/* ---- flush and sync ---------------------------------------------------------------------- */

/* Dirty again every cached page of m written since the last good flush. */
static void redirty_unflushed(struct bdev_map *m)
{
    struct bcache *bc = m->bc;
    uint32_t durable = atomic_load(&m->durable_epoch);
    uint32_t n = atomic_load_explicit(&bc->nr_inited, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
        struct bc_page *p = &bc->pages[i];
        uint32_t w = atomic_load(&p->wb_epoch);
        if (page_map(p) != m || w == 0 || w <= durable || !page_get_unless_zero(p))
            continue;
        struct bh_impl *ring;
        if (page_map(p) == m && (ring = page_buffers(bc, p))) {
            struct bh_impl *v[8];
            unsigned nb = ring_vector(ring, v);
            for (unsigned k = 0; k < nb; k++)
                if (atomic_load(&v[k]->b_state) & BH_UPTODATE)
                    atomic_fetch_or(&v[k]->b_state, BH_DIRTY);
            page_mark_dirty(bc, p);
        }
        page_put(p);
    }
}

int map_flush(struct bdev_map *m)
{
    uint32_t epoch = atomic_fetch_add(&m->flush_epoch, 1);
    int err = dev_flush(m);
    if (!err) {
        uint32_t d = atomic_load(&m->durable_epoch);
        while (d < epoch + 1 && !atomic_compare_exchange_weak(&m->durable_epoch, &d, epoch + 1))
            ;
        return 0;
    }
    errseq_set(&m->wb_err, -err);
    redirty_unflushed(m);
    return err;
}

int map_sync(struct bdev_map *m)
{
    if (m->readonly)
        return 0;
    struct bcache *bc = m->bc;
    pthread_mutex_lock(&m->dirty_lock);
    size_t count = 0;
    for (uint32_t id = m->dirty_head; id != BC_NONE; id = bc->pages[id].dirty_next)
        count++;
    pthread_mutex_unlock(&m->dirty_lock);
    struct bc_page **v = malloc((count + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    size_t n = 0;
    pthread_mutex_lock(&m->dirty_lock);
    for (uint32_t id = m->dirty_head; id != BC_NONE && n < count; id = bc->pages[id].dirty_next)
        if (page_get_unless_zero(&bc->pages[id]))
            v[n++] = &bc->pages[id];
    pthread_mutex_unlock(&m->dirty_lock);
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        int err = page_writeback(bc, v[i], WB_SYNC);
        if (err && !ret)
            ret = err;
        page_put(v[i]);
    }
    free(v);
    int err = map_flush(m);
    return ret ? ret : err;
}

int bh_sync(struct buffer_head *pub)
{
    if (!pub) {
        errno = EINVAL;
        return -EINVAL;
    }
    struct bh_impl *bh = bh_impl(pub);
    struct bc_page *p = bh_page(bh);
    struct bdev_map *m = page_map(p);
    int ret = 0;
    if (m->readonly) {
        ret = -EROFS;
    } else {
        bool mine = atomic_load_explicit(&bh->b_owner, memory_order_relaxed) == bc_gettid();
        if (!mine)
            bh_lock_internal(bh);
        if (atomic_fetch_and(&bh->b_state, ~BH_DIRTY) & BH_DIRTY) {
            struct bh_impl *v[1] = {bh};
            struct wb_run r = {.m = m, .p = p, .v = v};
            write_run(&r, 0, 1);
            if ((ret = r.err) != 0)
                page_mark_dirty(m->bc, p);
        }
        if (!mine)
            bh_unlock_internal(bh);
        if (!ret)
            ret = map_flush(m);
    }
    int seen = errseq_check_and_advance(&m->wb_err, &m->bhsync_cursor);
    if (!ret)
        ret = seen;
    if (ret)
        errno = -ret;
    return ret;
}

/* ---- throttling --------------------------------------------------------------------------- */

void balance_dirty_pages(struct bcache *bc, struct bdev_map *m)
{
    bc_count(bc, ST_THROTTLED, 1);
    uint64_t target = bc->dirty_limit_pages * 3 / 4;
    for (unsigned round = 0; round < 8; round++) {
        if (atomic_load(&bc->nr_dirty) <= target)
            break;
        struct bc_page *v[16];
        unsigned n = collect_dirty(bc, m, v, 16, 0);
        uint64_t before = atomic_load(&bc->nr_dirty);
        for (unsigned i = 0; i < n; i++)
            write_collected(bc, v[i]);
        if (n == 0 || atomic_load(&bc->nr_dirty) >= before)
            break;
    }
    flusher_kick(bc);
}

/* ---- the flusher thread --------------------------------------------------------------------- */

/* Write m's dirty pages older than the expire age (any age when over_bg),
 * without blocking on busy blocks; at most about as many pages as are dirty. */
static void flush_map_pages(struct bcache *bc, struct bdev_map *m, bool over_bg)
{
    uint64_t budget = atomic_load(&bc->nr_dirty) + 32;
    while (budget) {
        if (over_bg && atomic_load(&bc->nr_dirty) <= bc->dirty_bg_pages)
            over_bg = false;
        struct bc_page *v[32];
        unsigned n = collect_dirty(bc, m, v, 32, over_bg ? 0 : bc->dirty_expire_ms);
        for (unsigned i = 0; i < n; i++)
            write_collected(bc, v[i]);
        if (n < 32)
            break;
        budget = budget > n ? budget - n : 0;
    }
}

static void flusher_pass(struct bcache *bc)
{
    pthread_mutex_lock(&bc->pass_lock);
    pthread_mutex_lock(&bc->lock);
    size_t count = 0;
    for (struct bdev_map *m = bc->maps; m; m = m->next)
        count++;
    struct bdev_map **maps = malloc((count + 1) * sizeof *maps);
    size_t n = 0;
    for (struct bdev_map *m = bc->maps; maps && m; m = m->next)
        if (!m->readonly && !atomic_load(&m->closing))
            maps[n++] = m;
    pthread_mutex_unlock(&bc->lock);
    for (size_t i = 0; i < n; i++) {
        bool over_bg = atomic_load(&bc->nr_dirty) > bc->dirty_bg_pages;
        flush_map_pages(bc, maps[i], over_bg);
    }
    free(maps);
    pthread_mutex_unlock(&bc->pass_lock);
}

static void *flusher_main(void *arg)
{
    struct bcache *bc = arg;
    unsigned interval_ms = bc->dirty_expire_ms / 4;
    interval_ms = interval_ms < 5 ? 5 : interval_ms > 1000 ? 1000 : interval_ms;
    pthread_mutex_lock(&bc->flush_lock);
    while (!bc->flush_stop) {
        if (!bc->flush_kicked) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)interval_ms * 1000000u;
            ts.tv_sec += (time_t)(ns / 1000000000u);
            ts.tv_nsec = (long)(ns % 1000000000u);
            pthread_cond_timedwait(&bc->flush_cond, &bc->flush_lock, &ts);
        }
        bc->flush_kicked = false;
        if (bc->flush_stop)
            break;
        pthread_mutex_unlock(&bc->flush_lock);
        if (atomic_load(&bc->nr_dirty))
            flusher_pass(bc);
        pthread_mutex_lock(&bc->flush_lock);
    }
    pthread_mutex_unlock(&bc->flush_lock);
    return NULL;
}

void flusher_kick(struct bcache *bc)
{
    pthread_mutex_lock(&bc->flush_lock);
    bc->flush_kicked = true;
    pthread_cond_signal(&bc->flush_cond);
    pthread_mutex_unlock(&bc->flush_lock);
}

int flusher_start(struct bcache *bc)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int err = pthread_cond_init(&bc->flush_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (err)
        return -err;
    bc->flush_stop = false;
    if ((err = pthread_create(&bc->flusher, NULL, flusher_main, bc)) != 0) {
        pthread_cond_destroy(&bc->flush_cond);
        return -err;
    }
    return 0;
}

void flusher_stop(struct bcache *bc)
{
    pthread_mutex_lock(&bc->flush_lock);
    bc->flush_stop = true;
    bool gone = bc->flusher_gone;
    pthread_cond_signal(&bc->flush_cond);
    pthread_mutex_unlock(&bc->flush_lock);
    if (!gone)
        pthread_join(bc->flusher, NULL);
    pthread_cond_destroy(&bc->flush_cond);
}

/* In a forked child the flusher thread does not exist: never join it, and
 * start flush_cond afresh (its waiter is gone).  flush_lock is held. */
void flusher_forget_in_child(struct bcache *bc)
{
    bc->flusher_gone = true;
    bc->flush_stop = true;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&bc->flush_cond, &attr);
    pthread_condattr_destroy(&attr);
}
