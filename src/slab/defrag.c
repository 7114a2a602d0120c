/*
 * slab/defrag.c — the defragmentation engine: one pass over one cache.
 *
 * 1. Protocols.  The owner of a cache registers either
 *      evict (Lameter): get(s, nr, objs) pins what it can and NULLs objects being
 *        freed; kick(s, nr, objs, priv) frees what it can; or
 *      move (illumos kmem): move(old, new, size, arg) relocates one object into a
 *        constructed `new` and answers YES / NO / LATER / DONT_NEED / DONT_KNOW.
 *    The header <slabdefrag/slab.h> states the contract the owner sees.
 *
 * 2. States a slab passes through in a pass (see internal.h for OWNED/LISTED/FULL):
 *      LISTED (a partial bin) ──freeze──► OWNED by the pass (list = LIST_FROZEN)
 *        ──callbacks──► done list (still frozen) ──end of pass──► empty: released
 *        to the OS (batched) | not empty: back to a bin, or FULL, via cache_put_slab
 *        (a destination that fills up goes that way at once)
 *    The pass owns its frozen slabs and its current destination slab through a
 *    private struct heap that no thread has: every other thread's free into them is
 *    a remote free (CAS push, accounted when the pass merges it), nobody allocates
 *    from them, and nobody can release them, so their memory stays mapped and
 *    type-stable until the pass ends (lesson 1 of the spec).  Keeping a slab frozen
 *    after its turn means one pass never asks about a slab twice.  A destination is
 *    the fullest partial slab that is not itself a candidate (fill at or above the
 *    threshold, or unmovable), else a new slab; a frozen slab is never in a bin, so
 *    it can never be a destination (lesson 7), and an unused destination is
 *    released with the emptied slabs.  A slab the pass has emptied stays frozen
 *    on the done list and is never a destination ("a frozen slab gets no
 *    allocations"), though reusing it would save a new slab's page faults.  At
 *    the end the empty ones are unlinked under one cache->lock and released
 *    with one MADV_DONTNEED per run of adjacent slabs.

 * 3. What the owner may do in a callback: allocate and free objects of any cache
 *    (frees into frozen slabs land on their remote stacks), take its own locks.
 *    Not: destroy a cache, or trigger a pass on the same cache (-EBUSY: the
 *    thread-local `pass_cache` marks a thread inside a pass).  No allocator lock is
 *    held during callbacks, so the owner's locks can never deadlock against ours.
 *
 * 4. Why no object is lost or duplicated.  The pass only touches an object's slot
 *    in three ways: it lists allocated objects (those not on the frozen slab's
 *    free list after the remote stack was merged), it frees `old` after YES /
 *    DONT_NEED, and it frees `new` after anything but YES.  The owner promised not
 *    to free old or new itself during move, so each slot is freed exactly once.
 *    With evict the owner frees through slab_free, which validates as usual.
 *
 * 5. Refusals and back-off.  NO marks the slab SLAB_DF_NOMOVE: it goes to the top
 *    bin ("treated as full": allocations fill it) and is never a candidate until
 *    it empties or slab_cache_shrink clears the marks.  A turn after which the
 *    slab is still in use (LATER, DONT_KNOW, a kick that freed nothing) counts in
 *    slab->later_count; at 3 (illumos' KMEM_DISBELIEF) it is treated as NO.  A
 *    pass that emptied no slab raises the cache's back-off (defrag_bg.c skips
 *    it for 1, 2, 4 .. 64 rounds).
 *
 * 6. Observability.  dstat: passes, scanned (slabs frozen), freed (slabs
 *    released), kicked / moved / refused objects, bytes released, and one counter
 *    per move result.
 *
 * Lock order: defrag_lock (one pass per cache), then cache->lock; callbacks run
 * with neither cache->lock nor any os.c lock held (defrag_lock is held, which is
 * why a nested trigger on the same cache must fail instead of waiting).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "defrag.h"
#include "debug.h"

#define DEFRAG_DISBELIEF 3 /* LATER answers (or futile kicks) before a slab counts as NO */

static __thread struct slab_cache *pass_cache; /* non-NULL while this thread runs a pass */

struct pass {
    struct slab_cache *s;
    struct heap owner;         /* identity owning frozen and destination slabs */
    struct slab *dest;         /* current destination slab (move protocol) */
    struct slab *done;         /* slabs whose turn is over, still frozen (chained by next) */
    size_t nr_frozen;          /* slabs on done + dest (sizes the release batch) */
    uint64_t nr_emptied;       /* slabs whose turn left them empty */
    void **vec;                /* objects of the slab being vacated */
    uint64_t *bitmap;          /* free objects of that slab */
    unsigned threshold;        /* fill percent: candidates are below it */
    uint64_t released, created;/* slabs handed back / created for destinations */
    uint64_t moved, kicked, refused, scanned;
};

uint64_t defrag_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool has_callbacks(const struct slab_cache *s)
{
    return s->move || (s->get && s->kick);
}

/* ---- registration -------------------------------------------------------- */

/* Callbacks read freed objects, so the free pointer must live outside them. */
static int make_fp_outside(struct slab_cache *s)
{
    if (s->fp_outside)
        return 0;
    if (atomic_load(&s->nr_slabs) != 0 || s->heaps)
        return -EBUSY;
    return cache_compute_layout(s, true);
}

static int set_callbacks(struct slab_cache *s, slab_get_fn get, slab_kick_fn kick, slab_move_fn move,
                         void *arg)
{
    pthread_mutex_lock(&s->defrag_lock);
    pthread_mutex_lock(&s->lock);
    int rc = make_fp_outside(s);
    if (rc == 0) {
        if (move) {
            s->move = move;
            s->move_arg = arg;
        } else {
            s->get = get;
            s->kick = kick;
        }
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->defrag_lock);
    if (rc)
        errno = -rc;
    return rc;
}

int slab_cache_setup_defrag(struct slab_cache *s, slab_get_fn get, slab_kick_fn kick)
{
    if (!s || !get || !kick)
        return errno = EINVAL, -EINVAL;
    return set_callbacks(s, get, kick, NULL, NULL);
}

int slab_cache_set_move(struct slab_cache *s, slab_move_fn move, void *arg)
{
    if (!s || !move)
        return errno = EINVAL, -EINVAL;
    return set_callbacks(s, NULL, NULL, move, arg);
}

/* ---- slabs owned by the pass ----------------------------------------------- */

/* Take a LISTED slab off its list and make the pass its owner. cache->lock held. */
static void pass_own(struct pass *p, struct slab *sl)
{
    atomic_store_explicit(&sl->owner, &p->owner, relaxed);
    uint64_t old = atomic_load(&sl->xfree);
    while (!atomic_compare_exchange_weak(&sl->xfree, &old,
                                         xf_make(ST_OWNED, xf_count(old), xf_head(old))))
        ;
    slab_merge_remote(p->s, sl);
}

static void pass_free(struct pass *p, struct slab *sl, void *obj)
{
    if (unlikely(p->s->flags & SLAB_DEBUG_FLAGS))
        debug_on_free(p->s, sl, obj, __builtin_return_address(0));
    fp_set(p->s, obj, sl->freelist);
    sl->freelist = obj;
    slab_set_inuse(sl, slab_inuse(sl) - 1);
    counter_inc(&p->owner.frees);
}

static unsigned live_objects(struct slab *sl)
{
    return slab_inuse(sl) - xf_count(atomic_load(&sl->xfree));
}

/* The emptiest movable partial slab below the threshold, frozen; or NULL. */
static struct slab *freeze_candidate(struct pass *p)
{
    struct slab_cache *s = p->s;
    unsigned limit = (unsigned)(((uint64_t)p->threshold * s->objects + 99) / 100);
    unsigned top_bin = (unsigned)((uint64_t)limit * PARTIAL_BINS / s->objects);
    struct slab *found = NULL;
    pthread_mutex_lock(&s->lock);
    /* Bins below top_bin hold only candidates (a bin never understates fill);
     * in top_bin itself look at a bounded number of slabs. */
    for (unsigned b = 0; b <= top_bin && b < PARTIAL_BINS && !found; b++) {
        unsigned looked = 0;
        for (struct slab *sl = s->partial[b].head; sl && looked < 64; sl = sl->next, looked++)
            if (!(sl->defrag_flags & SLAB_DF_NOMOVE) &&
                live_objects(sl) * 100u < p->threshold * s->objects) {
                found = sl;
                break;
            }
    }
    if (found) {
        cache_partial_remove(s, found);
        found->list = LIST_FROZEN;
        pass_own(p, found);
        p->nr_frozen++;
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

/* A constructed object in the fullest non-frozen slab, for move. */
static void *dest_alloc(struct pass *p)
{
    struct slab_cache *s = p->s;
    for (;;) {
        struct slab *d = p->dest;
        if (d && d->freelist) {
            void *obj = d->freelist;
            d->freelist = fp_get(s, obj);
            slab_set_inuse(d, slab_inuse(d) + 1);
            counter_inc(&p->owner.allocs);
            if (unlikely(s->flags & SLAB_DEBUG_FLAGS))
                debug_on_alloc(s, obj, __builtin_return_address(0));
            return obj;
        }
        if (d)
            slab_merge_remote(s, d);
        if (d && d->freelist)
            continue;
        if (d) {
            cache_put_slab(s, d);
            p->nr_frozen--;
        }
        pthread_mutex_lock(&s->lock);
        d = cache_partial_fullest(s);
        /* A destination must not itself be a candidate of this pass: otherwise
         * it would escape the pass's questions, and objects would move twice. */
        if (d && !(d->defrag_flags & SLAB_DF_NOMOVE) &&
            live_objects(d) * 100u < p->threshold * s->objects)
            d = NULL;
        if (d) {
            cache_partial_remove(s, d);
            pass_own(p, d);
            p->nr_frozen++;
        }
        pthread_mutex_unlock(&s->lock);
        if (!d) {
            d = slab_new(s);
            if (!d) {
                p->dest = NULL;
                return NULL;
            }
            atomic_store_explicit(&d->owner, &p->owner, relaxed);
            p->created++;
            p->nr_frozen++;
        }
        p->dest = d;
    }
}

/* List the allocated objects of a frozen slab into p->vec. */
static int collect_objects(struct pass *p, struct slab *sl)
{
    struct slab_cache *s = p->s;
    unsigned words = (s->objects + 63) / 64;
    memset(p->bitmap, 0, words * sizeof *p->bitmap);
    slab_merge_remote(s, sl);
    for (void *f = sl->freelist; f; f = fp_get(s, f)) {
        unsigned i = slab_index(s, sl, f);
        p->bitmap[i / 64] |= UINT64_C(1) << (i % 64);
    }
    int nr = 0;
    for (unsigned i = 0; i < s->objects; i++)
        if (!(p->bitmap[i / 64] & (UINT64_C(1) << (i % 64))))
            p->vec[nr++] = slab_obj(s, sl, i);
    return nr;
}

static void count_result(struct slab_cache *s, enum slab_move_result r)
{
    if ((unsigned)r < 5)
        atomic_fetch_add_explicit(&s->dstat.move_results[r], 1, relaxed);
}

/* Move every object of a frozen slab; stops at NO. */
static void vacate_by_move(struct pass *p, struct slab *sl, int nr)
{
    struct slab_cache *s = p->s;
    for (int i = 0; i < nr && !(sl->defrag_flags & SLAB_DF_NOMOVE); i++) {
        void *old = p->vec[i];
        void *new = dest_alloc(p);
        if (!new)
            break;
        enum slab_move_result r = s->move(old, new, s->size, s->move_arg);
        count_result(s, r);
        switch (r) {
        case SLAB_MOVE_YES:
            pass_free(p, sl, old);
            p->moved++;
            break;
        case SLAB_MOVE_DONT_NEED:
            pass_free(p, sl, old);
            pass_free(p, p->dest, new);
            break;
        case SLAB_MOVE_NO:
            sl->defrag_flags |= SLAB_DF_NOMOVE;
            pass_free(p, p->dest, new);
            p->refused++;
            break;
        case SLAB_MOVE_LATER:
            pass_free(p, p->dest, new);
            p->refused++;
            break;
        default: /* DONT_KNOW, or an answer outside the enum */
            pass_free(p, p->dest, new);
            break;
        }
    }
}

static void vacate_by_evict(struct pass *p, struct slab *sl, int nr)
{
    struct slab_cache *s = p->s;
    void *priv = s->get(s, nr, p->vec);
    s->kick(s, nr, p->vec, priv);
    p->kicked += (uint64_t)nr;
}

/*
 * End of a slab's turn: a slab the callbacks could not empty (LATER, DONT_KNOW,
 * a kick that freed nothing) counts one futile turn; at DEFRAG_DISBELIEF it is
 * treated as NO.  It stays frozen on p->done until the pass ends, so one pass
 * never asks about a slab twice and never targets it.
 */
static void end_turn(struct pass *p, struct slab *sl)
{
    slab_merge_remote(p->s, sl);
    if (slab_inuse(sl) == 0)
        p->nr_emptied++;
    else if (++sl->later_count >= DEFRAG_DISBELIEF)
        sl->defrag_flags |= SLAB_DF_NOMOVE;
    sl->next = p->done;
    p->done = sl;
}

/* End of the pass: the slabs on `chain` (frozen, chained by next) that are
 * empty are unlinked from the cache under one lock and returned in refs[] (the
 * caller releases them in one batch); the others go back to the cache. */
static size_t unfreeze_all(struct pass *p, struct slab *chain, struct os_slab_ref *refs)
{
    struct slab_cache *s = p->s;
    struct slab *empty = NULL;
    while (chain) {
        struct slab *sl = chain;
        chain = sl->next;
        slab_merge_remote(s, sl);
        if (slab_inuse(sl) == 0) {
            sl->next = empty;
            empty = sl;
        } else {
            sl->list = LIST_NONE;
            cache_put_slab(s, sl);
        }
    }
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    for (struct slab *sl = empty; sl; sl = sl->next) {
        cache_unlink_slab(s, sl);
        atomic_store_explicit(&sl->xfree, 0, memory_order_release);
        atomic_store_explicit(&sl->magic, 0, relaxed);
        refs[n++] = (struct os_slab_ref){ .base = sl, .seg = sl->seg };
    }
    pthread_mutex_unlock(&s->lock);
    p->released += n;
    return n;
}

static void vacate(struct pass *p, struct slab *sl)
{
    struct slab_cache *s = p->s;
    p->scanned++;
    int nr = collect_objects(p, sl);
    if (nr > 0) {
        if (s->move)
            vacate_by_move(p, sl, nr);
        else
            vacate_by_evict(p, sl, nr);
    }
    end_turn(p, sl);
}

static void pass_finish(struct pass *p)
{
    struct slab_cache *s = p->s;
    if (p->dest) { /* an unused destination (all answers NO) is released too */
        p->dest->next = p->done;
        p->done = p->dest;
        p->dest = NULL;
    }
    /* Emptied slabs go back to the OS at the end of the pass, the rest to the
     * partial lists (unmovable ones to the top bin). */
    struct os_slab_ref *refs = malloc((p->nr_frozen ? p->nr_frozen : 1) * sizeof *refs);
    struct slab *done = p->done;
    p->done = NULL;
    if (refs) {
        size_t nrefs = unfreeze_all(p, done, refs);
        if (nrefs)
            os_slab_free_batch(refs, nrefs, s->slab_shift);
        free(refs);
    } else { /* no memory for the batch: release one by one */
        while (done) {
            struct slab *sl = done;
            struct os_slab_ref one;
            done = sl->next;
            sl->next = NULL;
            if (unfreeze_all(p, sl, &one))
                os_slab_free(one.base, s->slab_shift, one.seg);
        }
    }
    pthread_mutex_lock(&s->lock);
    s->retired_allocs += atomic_load_explicit(&p->owner.allocs, relaxed);
    s->retired_frees += atomic_load_explicit(&p->owner.frees, relaxed);
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->dstat.passes, 1);
    atomic_fetch_add(&s->dstat.scanned, p->scanned);
    atomic_fetch_add(&s->dstat.freed, p->released);
    atomic_fetch_add(&s->dstat.kicked, p->kicked);
    atomic_fetch_add(&s->dstat.moved, p->moved);
    atomic_fetch_add(&s->dstat.refused, p->refused);
    atomic_fetch_add(&s->dstat.bytes, p->released << s->slab_shift);
    free(p->vec);
    free(p->bitmap);
}

/* Release empty slabs (all of them when `all`), settling the bins first when
 * `settle` (O(partial slabs): triggers do it, budgeted background steps do not)
 * and forgetting refusals while at it when `forget` (shrink). */
static long release_empties(struct slab_cache *s, bool all, bool settle, bool forget)
{
    uint64_t before = atomic_load(&s->nr_slabs);
    pthread_mutex_lock(&s->lock);
    if (settle)
        cache_settle_all(s, forget);
    cache_release_empty(s, all ? 0 : empty_reserve(s));
    pthread_mutex_unlock(&s->lock);
    uint64_t after = atomic_load(&s->nr_slabs);
    return after < before ? (long)((before - after) << s->slab_shift) : 0;
}

long defrag_pass(struct slab_cache *s, const struct defrag_request *rq, struct defrag_result *res)
{
    memset(res, 0, sizeof *res);
    if (pass_cache == s)
        return -EBUSY;
    if (rq->trylock ? pthread_mutex_trylock(&s->defrag_lock) != 0
                    : pthread_mutex_lock(&s->defrag_lock) != 0)
        return -EBUSY;
    uint64_t before = atomic_load(&s->nr_slabs);
    if (rq->flush_own_heap)
        heap_flush_own(s);
    /* Every slab not being allocated from at this moment becomes reachable:
     * idle threads' heaps go to the cache's lists. */
    heap_flush_idle(s, false);
    release_empties(s, rq->release_all_empty, !rq->deadline_ns || rq->forget_refusals,
                    rq->forget_refusals);
    long rc = 0;
    if (has_callbacks(s)) {
        struct pass p = { .s = s, .threshold = rq->fill_percent };
        p.owner.is_defrag = true;
        p.vec = malloc(sizeof(void *) * s->objects);
        p.bitmap = malloc(sizeof(uint64_t) * ((s->objects + 63) / 64));
        if (!p.vec || !p.bitmap) {
            free(p.vec);
            free(p.bitmap);
            rc = -ENOMEM;
        } else {
            struct slab_cache *outer = pass_cache;
            pass_cache = s;
            struct slab *sl;
            while ((sl = freeze_candidate(&p)) != NULL) {
                vacate(&p, sl);
                /* Stopped by the deadline or the slab limit: say whether
                 * candidates may remain, so a budgeted caller goes on. */
                if ((rq->deadline_ns && defrag_now_ns() >= rq->deadline_ns) ||
                    (rq->max_slabs && p.scanned >= rq->max_slabs)) {
                    res->more = true;
                    break;
                }
            }
            pass_finish(&p);
            pass_cache = outer;
            res->scanned = p.scanned;
            res->released = p.released;
            res->emptied = p.nr_emptied;
        }
    }
    release_empties(s, rq->release_all_empty, !rq->deadline_ns, false);
    uint64_t after = atomic_load(&s->nr_slabs);
    res->bytes = after < before ? (long)((before - after) << s->slab_shift) : 0;
    if (res->scanned && !res->emptied)
        atomic_fetch_add(&s->defrag_fruitless, 1);
    else if (res->emptied)
        atomic_store(&s->defrag_fruitless, 0);
    pthread_mutex_unlock(&s->defrag_lock);
    return rc < 0 ? rc : res->bytes;
}

/* shrink: all_empty, and refusals are forgotten ("until the cache is shrunk")
 * unless this thread is inside a pass of this very cache (which fails -EBUSY). */
static long trigger(struct slab_cache *s, unsigned fill, bool all_empty)
{
    if (!s || fill > 100)
        return errno = EINVAL, -EINVAL;
    struct defrag_request rq = { .fill_percent = fill, .flush_own_heap = true,
                                 .release_all_empty = all_empty, .trylock = pass_cache != NULL,
                                 .forget_refusals = all_empty };
    struct defrag_result res;
    long rc = defrag_pass(s, &rq, &res);
    if (rc < 0)
        errno = (int)-rc;
    return rc;
}

long slab_cache_defrag(struct slab_cache *s, unsigned fill_percent)
{
    return trigger(s, fill_percent, false);
}

long slab_cache_shrink(struct slab_cache *s)
{
    return trigger(s, 100, true);
}
