/*
 * slab/slab.c — a slab's lifecycle and the cache's shared lists.
 *
 * 1. Objects and states.  See internal.h for the slab states OWNED / FULL / LISTED
 *    and the xfree word.  This file makes the transitions that involve the cache:
 *      slab_new            (nothing) → OWNED, objects constructed once (ctor)
 *      cache_take_partial  LISTED → OWNED(h), under cache->lock
 *      cache_put_slab      OWNED → FULL (no free object) or → LISTED; disarms
 *                          delayed free first (waits out a FREEING freer)
 *      cache_release_empty LISTED empty → released to the OS (os.c)
 *      cache_release_aged  the same for empty slabs older than purge_ms (decay)
 * 2. Locking.  cache->lock protects: partial, empty, all_slabs, and the freelist,
 *    inuse and list links of LISTED slabs.  Lock order: cache->defrag_lock, then
 *    cache->lock, then an os.c pool lock.  No user callback runs under cache->lock.
 * 3. References.  A slab belongs to its cache from slab_new until slab_release;
 *    its memory is never unmapped while any state above holds it, so a remote
 *    free (which only needs the slab header) can never touch unmapped memory.
 * 4. Invariants.  nr_slabs == |all_slabs|; a LISTED slab is on a `partial` bin
 *    iff 0 < inuse - remote, on `empty` iff inuse - remote == 0 (after settling);
 *    empty.nr <= reserve whenever cache->lock is released by cache_put_slab;
 *    nr_partial == sum of partial[b].nr; partial_inuse == sum of the inuse each
 *    partial slab had when binned.
 *    Bins: a slab with inuse i goes to bin i * 8 / objects (eighths of fill), and
 *    an unmovable slab (SLAB_DF_NOMOVE) to the top bin, "treated as full" as in
 *    illumos.  Remote frees do not re-bin a slab (that would need the lock), so a
 *    bin can only overstate fill.  Allocation takes the fullest slab (top bin
 *    first), which packs objects; defrag takes candidates from the bottom.
 * 5. Numbers and decay.  An empty slab stays on cache->empty, ready for reuse,
 *    for purge_ms (SLABDEFRAG_PURGE_MS, slab_set_purge_delay; default 500 ms)
 *    and is handed back by the purge thread's next tick after that (purge.c), so
 *    a program that frees and reallocates the same memory within the delay
 *    takes no page faults, and idle memory goes back within purge_ms plus a
 *    tick.  What a cache keeps is thereby bounded by its own footprint of the
 *    last purge_ms.  shrink, defrag and reclaim release at once.  With
 *    purge_ms == 0 (the old behaviour) empties beyond CACHE_EMPTY_RESERVE = 2
 *    (0 with SLAB_NO_RESERVE) go back the moment they appear.
 *    Every released slab's xfree is zeroed under cache->lock first, so a late
 *    remote freer that takes the lock (cache_listed_maybe_empty) never mistakes
 *    a released or re-created slab for a LISTED one of its cache.
 * 6. Observability.  nr_slabs, partial.nr and empty.nr feed slab_cache_get_stats.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include "internal.h"
#include "debug.h"

static void cache_empty_push(struct slab_cache *s, struct slab *sl);

void slab_list_push(struct slab_list *l, struct slab *sl, enum slab_list_id id)
{
    sl->prev = NULL;
    sl->next = l->head;
    if (l->head)
        l->head->prev = sl;
    l->head = sl;
    l->nr++;
    sl->list = (uint8_t)id;
}

void slab_list_remove(struct slab_list *l, struct slab *sl)
{
    DLIST_UNLINK(&l->head, sl, next, prev);
    sl->next = sl->prev = NULL;
    sl->list = LIST_NONE;
    l->nr--;
}

struct slab *slab_list_pop(struct slab_list *l)
{
    struct slab *sl = l->head;
    if (sl)
        slab_list_remove(l, sl);
    return sl;
}

static unsigned fill_bin(const struct slab_cache *s, const struct slab *sl)
{
    if (sl->defrag_flags & SLAB_DF_NOMOVE)
        return PARTIAL_BINS - 1;
    unsigned b = (unsigned)((uint64_t)slab_inuse((struct slab *)sl) * PARTIAL_BINS / s->objects);
    return b < PARTIAL_BINS ? b : PARTIAL_BINS - 1;
}

void cache_partial_add(struct slab_cache *s, struct slab *sl)
{
    sl->bin = (uint8_t)fill_bin(s, sl);
    slab_list_push(&s->partial[sl->bin], sl, LIST_PARTIAL);
    s->nr_partial++;
    s->partial_inuse += slab_inuse(sl);
    sl->binned_inuse = slab_inuse(sl);
}

void cache_partial_remove(struct slab_cache *s, struct slab *sl)
{
    slab_list_remove(&s->partial[sl->bin], sl);
    s->nr_partial--;
    s->partial_inuse -= sl->binned_inuse;
}

struct slab *cache_partial_fullest(struct slab_cache *s)
{
    for (unsigned b = PARTIAL_BINS; b-- > 0;)
        if (s->partial[b].head)
            return s->partial[b].head;
    return NULL;
}

void cache_link_slab(struct slab_cache *s, struct slab *sl)
{
    sl->all_prev = NULL;
    sl->all_next = s->all_slabs;
    if (s->all_slabs)
        s->all_slabs->all_prev = sl;
    s->all_slabs = sl;
    atomic_fetch_add_explicit(&s->nr_slabs, 1, relaxed);
}

void cache_unlink_slab(struct slab_cache *s, struct slab *sl)
{
    DLIST_UNLINK(&s->all_slabs, sl, all_next, all_prev);
    atomic_fetch_sub_explicit(&s->nr_slabs, 1, relaxed);
}

/* Objects in address order: allocation walks the slab front to back. */
static void *build_freelist(struct slab_cache *s, struct slab *sl)
{
    void *next = NULL;
    for (unsigned i = s->objects; i-- > 0;) {
        void *obj = slab_obj(s, sl, i);
        fp_set(s, obj, next);
        next = obj;
    }
    return next;
}

static uint64_t thread_random(void)
{
    static __thread uint64_t state;
    if (!state)
        state = (uint64_t)(uintptr_t)&state * 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL) ^ 1;
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

/* Fisher-Yates over the slot order (CONFIG_SLAB_FREELIST_RANDOM): where the next
 * object comes from is unpredictable, so heap-layout attacks lose their aim. */
static void *build_random_freelist(struct slab_cache *s, struct slab *sl)
{
    unsigned *order = meta_alloc(sizeof *order * s->objects);
    if (!order)
        return build_freelist(s, sl);
    for (unsigned i = 0; i < s->objects; i++)
        order[i] = i;
    for (unsigned i = s->objects - 1; i > 0; i--) {
        unsigned j = (unsigned)(thread_random() % (i + 1));
        unsigned t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    void *next = NULL;
    for (unsigned i = 0; i < s->objects; i++) {
        void *obj = slab_obj(s, sl, order[i]);
        fp_set(s, obj, next);
        next = obj;
    }
    meta_free(order, sizeof *order * s->objects);
    return next;
}

struct slab *slab_new(struct slab_cache *s)
{
    struct segment *seg;
    struct slab *sl = os_slab_alloc(s->slab_shift, &seg);
    if (!sl)
        return NULL;
    sl->objects = s->objects;
    sl->seg = seg;
    atomic_store_explicit(&sl->xfree, xf_make(SS_OWNED, 0, 0), relaxed);
    atomic_store_explicit(&sl->inuse, 0, relaxed);
    atomic_store_explicit(&sl->owner, NULL, relaxed);
    atomic_store_explicit(&sl->cache, s, relaxed);
    atomic_store_explicit(&sl->magic, SLAB_MAGIC, relaxed);
    sl->list = LIST_NONE;
    sl->defrag_flags = 0;
    sl->empty_since_ns = 0;
    sl->futile_turns = 0;
    sl->next = sl->prev = NULL;
    for (unsigned i = 0; i < s->objects; i++) {
        void *obj = slab_obj(s, sl, i);
        if (s->ctor)
            s->ctor(obj);
        if (unlikely(s->flags & SLAB_DEBUG_FLAGS))
            debug_init_object(s, obj);
    }
    sl->freelist = (s->flags & SLAB_RANDOM_ORDER) ? build_random_freelist(s, sl)
                                                  : build_freelist(s, sl);
    pthread_mutex_lock(&s->lock);
    cache_link_slab(s, sl);
    pthread_mutex_unlock(&s->lock);
    purge_start_once();
    return sl;
}

void slab_release(struct slab_cache *s, struct slab *sl)
{
    struct segment *seg = sl->seg;
    atomic_store_explicit(&sl->magic, 0, relaxed);
    os_slab_free(sl, s->slab_shift, seg);
}

void *slab_take_remote(struct slab *sl, unsigned *count)
{
    uint64_t old = atomic_load_explicit(&sl->xfree, memory_order_acquire);
    while (xf_head(old)) {
        /* The delay bits stay: a FREEING dropped here would let slab_disarm
         * return while a freer is still pushing onto the owner's delayed stack
         * (it would then read the owner after cache_put_slab cleared it). */
        uint64_t new = xf_make(xf_state(old), 0, 0) | (old & XF_DELAY_MASK);
        if (atomic_compare_exchange_weak_explicit(&sl->xfree, &old, new, memory_order_seq_cst,
                                                  memory_order_acquire)) {
            *count = xf_count(old);
            return slab_obj(slab_owner_cache(sl), sl, xf_head(old) - 1);
        }
    }
    *count = 0;
    return NULL;
}

void slab_merge_remote(struct slab_cache *s, struct slab *sl)
{
    unsigned count;
    unsigned nlocal = sl->objects - slab_inuse(sl); /* |freelist| */
    void *list = slab_take_remote(sl, &count);
    if (!list)
        return;
    slab_set_inuse(sl, slab_inuse(sl) - count);
    if (!sl->freelist) { /* the common case: no walk (each link is checked when popped) */
        sl->freelist = list;
        return;
    }
    /* Append the shorter list to the longer: walk only the shorter one. */
    void *head = list, *tail_of = sl->freelist;
    if (count < nlocal) {
        head = sl->freelist;
        tail_of = list;
    }
    void *tail = tail_of;
    for (void *n; (n = fp_next_in_slab(s, tail)) != NULL;)
        tail = n;
    fp_set(s, tail, head);
    sl->freelist = tail_of;
}

/*
 * Drain a LISTED slab's remote frees and put it on the list its fill says.
 * A free that raced with the drain compared its count against the old inuse and
 * did not call us; the seq_cst re-load below sees its push (store-buffer
 * pattern: both sides use seq_cst), so no empty slab is left unnoticed.
 */
void cache_settle_listed(struct slab_cache *s, struct slab *sl)
{
    do {
        slab_merge_remote(s, sl);
    } while (xf_count(atomic_load(&sl->xfree)) != 0 &&
             xf_count(atomic_load(&sl->xfree)) == slab_inuse(sl));
    if (sl->list != LIST_PARTIAL)
        return;
    if (slab_inuse(sl) == 0) {
        cache_partial_remove(s, sl);
        sl->defrag_flags = 0; /* an emptied slab is movable again */
        cache_empty_push(s, sl);
    } else if (fill_bin(s, sl) != sl->bin) {
        cache_partial_remove(s, sl);
        cache_partial_add(s, sl);
    }
}

struct slab *cache_take_partial(struct slab_cache *s, struct heap *h)
{
    pthread_mutex_lock(&s->lock);
    struct slab *sl = cache_partial_fullest(s);
    if (sl)
        cache_partial_remove(s, sl);
    else
        sl = slab_list_pop(&s->empty); /* the newest: its pages are the likeliest resident */
    if (sl) {
        atomic_store_explicit(&sl->owner, h, relaxed);
        slab_set_state(sl, SS_OWNED);
        slab_merge_remote(s, sl);
    }
    pthread_mutex_unlock(&s->lock);
    return sl;
}

/* Detach up to all-but-`keep` empty slabs under the lock; the caller releases
 * them after unlocking, so no syscall runs under cache->lock. */
static struct slab *detach_empty(struct slab_cache *s, unsigned keep)
{
    struct slab *chain = NULL;
    while (s->empty.nr > keep) {
        struct slab *sl = slab_list_pop(&s->empty);
        cache_unlink_slab(s, sl);
        atomic_store_explicit(&sl->xfree, 0, memory_order_release);
        sl->next = chain;
        chain = sl;
    }
    return chain;
}

TEST_HOOKS_DEFINE(struct slab_release_test_hooks, slab_release_set_test_hooks)

static long release_chain(struct slab_cache *s, struct slab *chain)
{
    long bytes = 0;
    while (chain) {
        struct slab *next = chain->next;
        TEST_HOOK(before_release, s, chain);
        slab_release(s, chain);
        TEST_HOOK(after_release, s, chain);
        bytes += (long)slab_bytes(s);
        chain = next;
    }
    return bytes;
}

/* Empty slabs kept hot.  A debug cache with consistency checks (F) keeps all of
 * them until shrink/defrag/destroy, so a late double free still finds its
 * object's state word instead of a released slab. */
unsigned empty_reserve(const struct slab_cache *s)
{
    if (s->flags & SLAB_CONSISTENCY)
        return UINT32_MAX;
    return (s->flags & SLAB_NO_RESERVE) ? 0 : CACHE_EMPTY_RESERVE;
}

/* Empty slabs cache_put_slab may leave on the list: all of them while decay
 * holds them (the purge thread hands them back), else the reserve. */
static unsigned empty_keep(const struct slab_cache *s)
{
    if (atomic_load_explicit(&purge_delay_ms, relaxed) && !(s->flags & SLAB_NO_RESERVE))
        return UINT32_MAX;
    return empty_reserve(s);
}

static void cache_empty_push(struct slab_cache *s, struct slab *sl)
{
    sl->empty_since_ns = purge_now_ns();
    slab_list_push(&s->empty, sl, LIST_EMPTY);
}

/* Hand back the empty slabs that have waited purge_ms (keeping the reserve). */
long cache_release_aged(struct slab_cache *s, uint64_t now_ns)
{
    uint64_t delay_ns = (uint64_t)atomic_load_explicit(&purge_delay_ms, relaxed) * 1000000u;
    if (delay_ns == 0)
        return 0; /* no decay: cache_put_slab keeps only the reserve, and keeps it */
    struct slab *chain = NULL;
    pthread_mutex_lock(&s->lock);
    unsigned keep = (s->flags & SLAB_CONSISTENCY) ? UINT32_MAX : 0;
    struct slab *next;
    for (struct slab *sl = s->empty.head; sl && s->empty.nr > keep; sl = next) {
        next = sl->next;
        /* Emptied after the caller read the clock: young, not 2^64 ns old. */
        if (sl->empty_since_ns > now_ns || now_ns - sl->empty_since_ns < delay_ns)
            continue;
        slab_list_remove(&s->empty, sl);
        cache_unlink_slab(s, sl);
        atomic_store_explicit(&sl->xfree, 0, memory_order_release);
        sl->next = chain;
        chain = sl;
    }
    pthread_mutex_unlock(&s->lock);
    return release_chain(s, chain);
}

void slab_disarm(struct slab *sl)
{
    uint64_t old = atomic_load_explicit(&sl->xfree, memory_order_acquire);
    for (;;) {
        unsigned d = xf_delay(old);
        if (d == DF_NORMAL)
            return;
        if (d == DF_FREEING) { /* a remote freer is pushing onto the owner's heap */
            sched_yield();
            old = atomic_load_explicit(&sl->xfree, memory_order_acquire);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&sl->xfree, &old, xf_with_delay(old, DF_NORMAL),
                                                  memory_order_acq_rel, memory_order_acquire))
            return;
    }
}

/* Caller holds cache->lock; releases the lock around the syscalls and retakes it. */
long cache_release_empty(struct slab_cache *s, unsigned keep)
{
    struct slab *chain = detach_empty(s, keep);
    if (!chain)
        return 0;
    pthread_mutex_unlock(&s->lock);
    long bytes = release_chain(s, chain);
    pthread_mutex_lock(&s->lock);
    return bytes;
}

/* The owner gives up an OWNED slab whose freelist and inuse are current. */
void cache_put_slab(struct slab_cache *s, struct slab *sl)
{
    slab_disarm(sl);
    slab_merge_remote(s, sl);
    if (sl->freelist == NULL) {
        /* No free object: try to leave it unowned and unlisted (FULL). */
        atomic_store_explicit(&sl->owner, NULL, relaxed);
        uint64_t expect = xf_make(SS_OWNED, 0, 0);
        if (atomic_compare_exchange_strong(&sl->xfree, &expect, xf_make(SS_FULL, 0, 0)))
            return;
        /* A remote free arrived meanwhile: the slab has room after all. */
    }
    pthread_mutex_lock(&s->lock);
    atomic_store_explicit(&sl->owner, NULL, relaxed);
    slab_set_state(sl, SS_LISTED);
    cache_partial_add(s, sl);
    cache_settle_listed(s, sl);
    struct slab *chain = detach_empty(s, empty_keep(s));
    pthread_mutex_unlock(&s->lock);
    release_chain(s, chain);
}

/* A remote free brought a LISTED slab's remote count up to its inuse: it may be
 * empty.  Re-check under the lock (it may have been taken meanwhile). */
void cache_listed_maybe_empty(struct slab_cache *s, struct slab *sl)
{
    pthread_mutex_lock(&s->lock);
    struct slab *chain = NULL;
    /* State first (acquire): LISTED proves a live incarnation whose fields were
     * written before it was listed; only then is its cache worth comparing. */
    if (xf_state(atomic_load_explicit(&sl->xfree, memory_order_acquire)) == SS_LISTED &&
        slab_is_live_of(sl, s)) {
        cache_settle_listed(s, sl);
        chain = detach_empty(s, empty_keep(s));
    }
    pthread_mutex_unlock(&s->lock);
    release_chain(s, chain);
}

/* Settle every partial slab (shrink, defrag): empties move to the empty list and
 * bins become exact.  In place: a slab is unlinked only when its bin changes (a
 * slab moved to a higher bin is met again there, harmlessly: settling is
 * idempotent).  forget_refusals also clears every unmovable mark and futile-turn
 * count first ("until the cache is shrunk").  O(partial slabs); not for hot
 * paths. */
void cache_settle_all(struct slab_cache *s, bool forget_refusals)
{
    for (unsigned b = 0; b < PARTIAL_BINS; b++) {
        struct slab *next;
        for (struct slab *sl = s->partial[b].head; sl; sl = next) {
            next = sl->next;
            if (forget_refusals) {
                sl->defrag_flags &= (uint8_t)~SLAB_DF_NOMOVE;
                sl->futile_turns = 0;
            }
            cache_settle_listed(s, sl);
            unsigned inuse = slab_inuse(sl);
            if (sl->list == LIST_PARTIAL && sl->binned_inuse != inuse) {
                s->partial_inuse = s->partial_inuse - sl->binned_inuse + inuse;
                sl->binned_inuse = inuse;
            }
        }
    }
}
