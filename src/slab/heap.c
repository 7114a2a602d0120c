/*
 * slab/heap.c — per-thread heaps: the slabs a thread owns, and how another
 * thread may take them from an idle owner.
 *
 * 1. Objects and states.  Each thread has a table tls_heaps[SLAB_MAX_CACHES]
 *    indexed by cache id; entry i is that thread's struct heap for the cache with
 *    id i, made on first use.  A heap owns (slab state OWNED, slab->owner == heap):
 *      active        the slab it allocates from; its free objects are in
 *                    h->freelist (nfree of them), not in the slab;
 *      h->partial    slabs with free objects; a slab that empties by this
 *                    thread's free stays only while h->partial holds at most
 *                    HEAP_EMPTY_KEEP slabs, else it goes to the cache (slabs that
 *                    other threads' frees emptied are seen when merged);
 *      h->lfree      not a slab: up to HEAP_LFREE_MAX objects this thread freed into
 *                    its non-active slabs, kept for its next allocations (a thread
 *                    cache, as jemalloc's tcache): a free into a random owned slab
 *                    and the allocation after it touch no slab list.  Their slabs
 *                    still count them as allocated; heap_lfree_flush gives them
 *                    back when lfree is full and before any slab leaves the heap.
 *      h->full       slabs that had no free object when they stopped being active;
 *                    their delayed-free bits are ARMED (internal.h), so the first
 *                    remote free into one lands on h->delayed and the owner, which
 *                    drains h->delayed on its slow path, moves the slab back to
 *                    h->partial.  Owned slabs stay owned whatever their fill: the
 *                    owner's free into any of them is plain stores.
 * 2. Locking and the thief handshake.  A heap's freelist, nfree, active, partial
 *    and full, and the freelist/inuse/list links of the slabs it owns, are
 *    touched by their owner thread inside heap_enter/heap_leave, or by a thief.
 *    A thief (the purge thread, a defrag pass, shrink: heap_flush_idle) holds
 *    heaps_lock, sets h->stolen, runs membarrier(PRIVATE_EXPEDITED) — a full
 *    barrier on every thread of the process — and then reads h->in_op:
 *      owner: in_op = 1; [compiler barrier]; if (stolen) back off
 *      thief: stolen = 1; membarrier();      if (in_op) back off, else take it
 *    (asymmetric Dekker: membarrier orders the owner's store before its load, so
 *    at most one side proceeds).  A thief that finds the owner inside a call
 *    skips that heap ("being allocated from at this very moment"); an owner that
 *    finds a thief waits for it (heap_wait_thief).  A thief only flushes: it gives
 *    every slab of the heap back to the cache, which is what the owner would do
 *    at exit, and clears stolen.  Without membarrier (old kernel, seccomp) no
 *    heap is ever stolen: idle threads then keep their slabs until they exit.
 *    heaps_lock (global) also orders thread exit against slab_cache_destroy and
 *    thieves, and protects each heap's idle_mark.  cache->heaps is changed under
 *    heaps_lock and cache->lock, read under either.
 *    Lock order: heaps_lock, then cache->lock, then os.c and meta.c locks.
 * 3. Lifecycle.  heap_get() creates and registers the heap (meta.c memory).  At
 *    thread exit (pthread key destructor) each heap is flushed, its counters are
 *    folded into the cache's retired counters, and it is freed — after every slab
 *    it owned was disarmed (no remote freer can still be pushing onto
 *    h->delayed).  slab_cache_destroy orphans the heaps of live threads: they are
 *    emptied and heap->cache = NULL; the owning thread frees an orphan when it
 *    next looks its table up for that id, or when it exits.
 * 4. Invariants.  h->nfree == |h->freelist|; h->nlfree == |h->lfree| and every
 *    object on it lies in a slab h owns (its link, like those on h->delayed,
 *    is checked to point into the cache's slab memory before the walks of
 *    heap_lfree_flush and heap_drain_delayed follow it: a write after free
 *    into a held object is reported, not followed to a wild address); the
 *    active slab's own freelist is NULL and its inuse is recomputed as
 *    objects - nfree when it stops being active; a slab on h->partial has
 *    freelist != NULL; a slab on h->full has an empty freelist and may have
 *    remote frees and delayed objects waiting.
 *    Delayed free is ARMED when a slab goes to h->full and disarmed only when the
 *    slab leaves the heap (cache_put_slab): an armed slab back on h->partial just
 *    sends its next remote free through h->delayed, which is harmless.
 * 5. Numbers.  HEAP_EMPTY_KEEP = 1 empty slab per heap (with decay on): a thread
 *    that frees and reallocates around a slab boundary does not ping-pong with
 *    the cache lock.  With purge_ms == 0 every emptied slab goes to the cache.
 *    Memory held by an idle thread: its heaps are flushed by the purge thread
 *    after purge_ms without activity (purge.c), so it is bounded in time.
 * 6. Observability.  allocs/frees per heap (stats.c sums them), pub_partial.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fork.h"
#include "internal.h"

__thread struct heap *tls_heaps[SLAB_MAX_CACHES] __attribute__((tls_model("initial-exec")));
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;

static void heap_retire(struct heap *h);

static void thread_exit_flush(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&heaps_lock);
    for (unsigned i = 0; i < SLAB_MAX_CACHES; i++) {
        struct heap *h = tls_heaps[i];
        if (!h)
            continue;
        tls_heaps[i] = NULL;
        if (h->cache)
            heap_retire(h);
        meta_free(h, sizeof *h);
    }
    pthread_mutex_unlock(&heaps_lock);
}

static void make_exit_key(void)
{
    pthread_key_create(&exit_key, thread_exit_flush);
}

struct heap *heap_get(struct slab_cache *s)
{
    struct heap *h = tls_heaps[s->id];
    if (likely(h && h->cache == s))
        return h;
    if (h) { /* orphan of a destroyed cache that had this id */
        pthread_mutex_lock(&heaps_lock);
        meta_free(h, sizeof *h);
        tls_heaps[s->id] = NULL;
        pthread_mutex_unlock(&heaps_lock);
    }
    pthread_once(&exit_key_once, make_exit_key);
    pthread_setspecific(exit_key, (void *)1);
    h = meta_alloc(sizeof *h);
    if (!h)
        return NULL;
    h->cache = s;
    pthread_mutex_lock(&heaps_lock);
    pthread_mutex_lock(&s->lock);
    h->next = s->heaps;
    if (s->heaps)
        s->heaps->prev = h;
    s->heaps = h;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&heaps_lock);
    tls_heaps[s->id] = h;
    return h;
}

void heap_wait_thief(struct heap *h)
{
    do {
        heap_leave(h);
        while (atomic_load_explicit(&h->stolen, memory_order_acquire))
            sched_yield();
    } while (!heap_enter(h));
}

/* ---- the owner's slab lists ---------------------------------------------- */

static void heap_activate(struct heap *h, struct slab *sl)
{
    h->active = sl;
    h->freelist = sl->freelist;
    h->nfree = sl->objects - slab_inuse(sl);
    sl->freelist = NULL;
    sl->list = LIST_NONE;
}

/* The active slab's free objects go back into it. */
static struct slab *heap_detach_active(struct heap *h)
{
    struct slab *sl = h->active;
    if (sl) {
        sl->freelist = h->freelist;
        slab_set_inuse(sl, sl->objects - h->nfree);
        h->freelist = NULL;
        h->nfree = 0;
        h->active = NULL;
    }
    return sl;
}

/*
 * The active slab has no free object left: it goes to h->full with delayed free
 * armed, unless remote frees arrived (then they are its new free objects and it
 * stays active: returns true).
 */
static bool heap_retire_active(struct heap *h)
{
    struct slab *sl = h->active;
    uint64_t old = atomic_load_explicit(&sl->xfree, memory_order_acquire);
    for (;;) {
        if (xf_head(old)) {
            unsigned count;
            void *remote = slab_take_remote(sl, &count);
            if (remote) {
                h->freelist = remote;
                h->nfree = count;
                return true;
            }
            old = atomic_load_explicit(&sl->xfree, memory_order_acquire);
            continue;
        }
        if (xf_delay(old) != DF_NORMAL)
            break; /* still ARMED from an earlier turn, or a freer is notifying us */
        if (atomic_compare_exchange_weak_explicit(&sl->xfree, &old, xf_with_delay(old, DF_ARMED),
                                                  memory_order_seq_cst, memory_order_acquire))
            break;
    }
    heap_detach_active(h);
    slab_list_push(&h->full, sl, LIST_HEAP_FULL);
    return false;
}

/* An object the heap held back (on h->delayed or h->lfree): free it as its
 * slab's state now says. */
static void heap_free_held(struct slab_cache *s, struct heap *h, void *obj)
{
    struct slab *sl = (struct slab *)((uintptr_t)obj & ~(uintptr_t)(slab_bytes(s) - 1));
    if (sl == h->active) {
        fp_set(s, obj, h->freelist);
        h->freelist = obj;
        h->nfree++;
    } else if (atomic_load_explicit(&sl->owner, relaxed) == h) {
        heap_free_local(s, h, sl, obj);
    } else {
        slab_free_unowned(s, NULL, sl, obj, slab_index(s, sl, obj));
    }
}

static void heap_drain_delayed(struct slab_cache *s, struct heap *h, bool as_owner)
{
    void *obj = atomic_exchange_explicit(&h->delayed, NULL, memory_order_acquire);
    while (obj) {
        void *next = fp_next_cross(s, obj); /* links on h->delayed cross slabs */
        if (as_owner) {
            heap_free_held(s, h, obj);
        } else {
            struct slab *sl = (struct slab *)((uintptr_t)obj & ~(uintptr_t)(slab_bytes(s) - 1));
            slab_free_unowned(s, NULL, sl, obj, slab_index(s, sl, obj));
        }
        obj = next;
    }
}

/* Every object on h->lfree back into its slab (all owned by h: a slab leaves the
 * heap only after this ran, and never empties while lfree holds its objects). */
void heap_lfree_flush(struct slab_cache *s, struct heap *h)
{
    void *obj = h->lfree;
    h->lfree = NULL;
    h->nlfree = 0;
    while (obj) {
        void *next = fp_next_cross(s, obj);
        heap_free_held(s, h, obj);
        obj = next;
    }
}

void heap_free_local(struct slab_cache *s, struct heap *h, struct slab *sl, void *obj)
{
    unsigned inuse = slab_inuse(sl);
    if (unlikely(obj == sl->freelist || inuse == 0 ||
                 xf_head(atomic_load_explicit(&sl->xfree, relaxed)) == slab_index(s, sl, obj) + 1))
        slab_report_bad_free(s, obj, "double free", " (object already free)");
    fp_set(s, obj, sl->freelist);
    sl->freelist = obj;
    slab_set_inuse(sl, inuse - 1);
    if (sl->list == LIST_HEAP_FULL) {
        /* Delayed free stays armed: the next remote free just tells us again. */
        slab_list_remove(&h->full, sl);
        slab_list_push(&h->partial, sl, LIST_HEAP_PARTIAL);
        heap_publish(h);
    } else if (inuse == 1 && (h->partial.nr > HEAP_EMPTY_KEEP ||
                              !atomic_load_explicit(&purge_delay_ms, relaxed))) {
        slab_list_remove(&h->partial, sl);
        heap_publish(h);
        cache_put_slab(s, sl);
    }
}

bool heap_refill(struct slab_cache *s, struct heap *h)
{
    for (;;) {
        if (h->active && heap_retire_active(h))
            return true; /* remote frees refilled the active slab */
        /* Objects other threads freed into our full slabs move them to partial. */
        if (atomic_load_explicit(&h->delayed, relaxed))
            heap_drain_delayed(s, h, true);
        struct slab *sl = slab_list_pop(&h->partial);
        if (sl) {
            heap_publish(h);
            slab_merge_remote(s, sl);
        } else if ((sl = cache_take_partial(s, h)) == NULL) {
            sl = slab_new(s);
            if (!sl)
                return false;
            atomic_store_explicit(&sl->owner, h, relaxed);
        }
        heap_activate(h, sl);
        if (h->freelist)
            return true;
    }
}

/* ---- giving slabs back ----------------------------------------------------- */

void heap_flush(struct heap *h)
{
    struct slab_cache *s = h->cache;
    heap_lfree_flush(s, h);
    struct slab *sl = heap_detach_active(h);
    if (sl)
        cache_put_slab(s, sl);
    while ((sl = slab_list_pop(&h->partial)) != NULL)
        cache_put_slab(s, sl);
    while ((sl = slab_list_pop(&h->full)) != NULL)
        cache_put_slab(s, sl); /* disarms: no freer pushes onto h->delayed after this */
    heap_drain_delayed(s, h, false);
    heap_publish(h);
}

void heap_flush_own(struct slab_cache *s)
{
    struct heap *h = tls_heaps[s->id];
    if (!h || h->cache != s)
        return;
    heap_enter_wait(h);
    heap_flush(h);
    heap_leave(h);
}

/* membarrier: registered once per process (again in a forked child). */
static _Atomic int steal_state; /* 0 unknown, 1 usable, -1 unusable */

static bool steal_usable(void)
{
#ifdef HEAP_SC_HANDSHAKE
    return true;
#else
    int st = atomic_load(&steal_state);
    if (st == 0) {
        long rc = syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
        st = rc == 0 ? 1 : -1;
        atomic_store(&steal_state, st);
    }
    return st > 0;
#endif
}

static void barrier_all_threads(void)
{
#ifndef HEAP_SC_HANDSHAKE
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        abort(); /* registered above: cannot fail */
#endif
}

static uint64_t heap_activity(struct heap *h)
{
    return atomic_load_explicit(&h->allocs, relaxed) + atomic_load_explicit(&h->frees, relaxed);
}

/*
 * Flush other threads' heaps of s that are not inside an allocator call.  With
 * only_idle, only heaps with no allocation or free since the previous call with
 * only_idle (the purge thread's ticks).  Returns the number of heaps flushed.
 */
unsigned heap_flush_idle(struct slab_cache *s, bool only_idle)
{
    if (!steal_usable())
        return 0;
    struct heap *mine = tls_heaps[s->id];
    unsigned n = 0, chosen = 0;
    pthread_mutex_lock(&heaps_lock);
    for (struct heap *h = s->heaps; h; h = h->next) {
        if (h == mine)
            continue;
        if (only_idle) {
            uint64_t a = heap_activity(h);
            bool idle = a == h->idle_mark;
            h->idle_mark = a;
            if (!idle)
                continue;
        }
        atomic_store(&h->stolen, 1);
        chosen++;
    }
    if (chosen) {
        barrier_all_threads();
        for (struct heap *h = s->heaps; h; h = h->next) {
            if (!atomic_load_explicit(&h->stolen, relaxed))
                continue;
            if (atomic_load(&h->in_op) == 0) {
                heap_flush(h);
                n++;
            }
            atomic_store_explicit(&h->stolen, 0, memory_order_release);
        }
    }
    pthread_mutex_unlock(&heaps_lock);
    return n;
}

/* Thread exit: flush, fold counters into the cache, unregister.  heaps_lock held
 * (no thief can hold h meanwhile). */
static void heap_retire(struct heap *h)
{
    struct slab_cache *s = h->cache;
    heap_flush(h);
    pthread_mutex_lock(&s->lock);
    s->retired_allocs += atomic_load_explicit(&h->allocs, relaxed);
    s->retired_frees += atomic_load_explicit(&h->frees, relaxed);
    DLIST_UNLINK(&s->heaps, h, next, prev);
    pthread_mutex_unlock(&s->lock);
}

void heap_orphan_all(struct slab_cache *s)
{
    pthread_mutex_lock(&heaps_lock);
    pthread_mutex_lock(&s->lock);
    for (struct heap *h = s->heaps; h; h = h->next) {
        s->retired_allocs += atomic_load_explicit(&h->allocs, relaxed);
        s->retired_frees += atomic_load_explicit(&h->frees, relaxed);
        h->freelist = NULL;
        h->nfree = 0;
        h->lfree = NULL;
        h->nlfree = 0;
        h->active = NULL;
        h->partial = (struct slab_list){ 0 };
        h->full = (struct slab_list){ 0 };
        atomic_store_explicit(&h->delayed, NULL, relaxed);
        heap_publish(h);
        h->cache = NULL;
    }
    s->heaps = NULL;
    pthread_mutex_unlock(&s->lock);
    /* The calling thread's own heap can be freed right away. */
    struct heap *mine = tls_heaps[s->id];
    if (mine && mine->cache == NULL) {
        tls_heaps[s->id] = NULL;
        meta_free(mine, sizeof *mine);
    }
    pthread_mutex_unlock(&heaps_lock);
}

void heap_stats(struct slab_cache *s, uint64_t *allocs, uint64_t *frees)
{
    uint64_t a = s->retired_allocs, f = s->retired_frees;
    for (struct heap *h = s->heaps; h; h = h->next) {
        a += atomic_load_explicit(&h->allocs, relaxed);
        f += atomic_load_explicit(&h->frees, relaxed);
    }
    *allocs = a;
    *frees = f;
}

unsigned heap_partial_slabs(struct slab_cache *s)
{
    unsigned n = 0;
    for (struct heap *h = s->heaps; h; h = h->next)
        n += atomic_load_explicit(&h->pub_partial, relaxed);
    return n;
}

/*
 * fork: no thief and no exiting thread is half-way through a heap in the child.
 * The child registers membarrier again (registration belongs to the old mm).
 * A remote freer that was between ARMED → FREEING and clearing FREEING when the
 * parent forked does not exist in the child: its slab would stay FREEING and
 * whoever disarms it would wait forever, so the child sets such slabs NORMAL
 * (the object it was handing over is lost to the child: at most one per thread
 * of the parent).  Every cache list and heap list is stable: the child is
 * single-threaded and the locks guarding them were taken before fork.  A heap
 * whose thread was inside a call (in_op) is skipped: its lists may be half-way
 * through a change, and no thief ever takes such a heap.
 */
static void heap_fork_child(void)
{
    for (struct slab_cache *s = cache_list_head(); s; s = s->next_cache)
        for (struct heap *h = s->heaps; h; h = h->next) {
            if (atomic_load_explicit(&h->in_op, relaxed))
                continue; /* its thread was inside a call: nobody will ever use it */
            struct slab_list *lists[] = { &h->full, &h->partial };
            for (unsigned l = 0; l < 2; l++)
                for (struct slab *sl = lists[l]->head; sl; sl = sl->next) {
                    uint64_t x = atomic_load_explicit(&sl->xfree, relaxed);
                    if (xf_delay(x) == DF_FREEING)
                        atomic_store_explicit(&sl->xfree, xf_with_delay(x, DF_NORMAL), relaxed);
                }
        }
    pthread_mutex_unlock(&heaps_lock); /* taken by this thread before fork */
    atomic_store(&steal_state, 0);
}

static void heap_fork_prepare(void) { pthread_mutex_lock(&heaps_lock); }
static void heap_fork_parent(void) { pthread_mutex_unlock(&heaps_lock); }

__attribute__((constructor)) static void heap_fork_register(void)
{
    slab_fork_register(heap_fork_prepare, heap_fork_parent, heap_fork_child, FORK_ORDER_HEAPS);
}
