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
 *
 *      LISTED (a partial bin) ──freeze──► VACATING (owned by the pass) ──its turn ends──►
 *         │ empty:     SPARE (frozen, empty) ──reused──► DESTINATION
 *         │                 └──end of pass──► released to the OS (sorted, batched)
 *         └ not empty: DONE (frozen) ──end of pass──► back via cache_put_slab
 *      LISTED (the fullest bin) ──taken──► DESTINATION ──full──► DONE
 *      new slab ──────────────────────────► DESTINATION   (only when nothing else is)
 *      DESTINATION ──end of pass──► cache_put_slab (or released if it ended empty)
 *
 *    The pass owns every slab it holds through a private struct heap that no
 *    thread has: every other thread's free into them is a remote free (CAS push,
 *    accounted when the pass merges it), nobody else allocates from them, and
 *    nobody can release them, so their memory stays mapped and type-stable until
 *    the pass ends.  One slab is VACATING at a time and it is never a
 *    destination: new objects come from the current destination, which is the
 *    fullest partial slab when it holds more live objects than the slab being
 *    vacated (objects move from emptier to fuller slabs, so the two ends of the
 *    bins meet and a pass moves as few objects as it can), else a SPARE slab (one
 *    that an earlier turn of this pass emptied: its pages are resident, so it
 *    costs no page faults), else the fullest partial slab anyway, and a new
 *    slab only when the cache has no other partial slab.  A pass without
 *    deadline prefers SPARE slabs, lowest address first (section 4).  A slab
 *    taken as a destination has left the bins and stays with the pass (full
 *    ones on DONE) until the pass ends, so frees racing into it cannot make it
 *    a candidate of the same pass, and a slab whose turn is over is never
 *    frozen again: no object moves twice.
 *
 * 3. What a pass touches.  A trigger first reads the header of every partial
 *    slab once (section 4).  Per vacated slab: its header, the free-pointer word
 *    of each slot (in-use marks, inuse.h: independent loads, prefetched two
 *    slabs ahead, no free-list walk), and the objects it moves (prefetched one
 *    object ahead); per destination, the slots it fills.  A slab its turn
 *    empties is neither merged nor walked: its counts (inuse minus remote frees)
 *    say it is empty, and its (slab, segment) pair goes straight into the
 *    release array, which doubles as the stack of SPARE slabs.  Reusing a SPARE
 *    slab discards its free lists (every object is free, so no thread can push
 *    onto its remote stack meanwhile) and hands out slots in address order (a
 *    bump index, also in SLAB_RANDOM_ORDER caches: where a pass puts an object
 *    is the pass's choice, never an allocation an attacker can steer); the
 *    slots left over get a free list when the slab stops being the
 *    destination.  Only a slab that kept objects, or whose
 *    marks disagree with its counts (objects freed meanwhile, a cache whose free
 *    pointer lies inside the object, debug caches), has its free lists walked.
 *
 * 4. Order and release.  A pass without deadline (a trigger) lists its
 *    candidates in one walk of the bins under cache->lock (counts read from the
 *    headers, no free list merged; shrink forgets refusals in the same walk),
 *    sorts them by address (radix sort; insertion sort below 64) and visits
 *    them in that order, each frozen only at its turn and skipped if it is no
 *    longer a candidate, refilling the lowest emptied slabs first: survivors
 *    gather at low addresses and the released slabs form long runs.  A
 *    budgeted step (the
 *    background defragmenter) takes the emptiest candidate from the bins each
 *    time instead.  At the end of the pass the remaining SPARE slabs are
 *    unlinked from the cache in chunks of RELEASE_CHUNK slabs per cache->lock
 *    hold, then handed to os_slab_free_batch outside every lock: sorted by
 *    address, one MADV_DONTNEED per run of adjacent slabs (a run may span slabs
 *    that were already free).  The bytes a pass reports are exactly those
 *    slabs, less any slab it had to create.
 *
 * 5. What the owner may do in a callback: allocate and free objects of any cache
 *    (frees into frozen slabs land on their remote stacks), take its own locks.
 *    Not: destroy a cache, or trigger a pass on the same cache (-EBUSY: the
 *    thread-local `pass_cache` marks a thread inside a pass).  No allocator lock is
 *    held during callbacks, so the owner's locks can never deadlock against ours.
 *
 * 6. Why no object is lost or duplicated.  The pass only touches an object's slot
 *    in three ways: it lists allocated objects (in-use marks, or the slots not on
 *    the frozen slab's free lists), it frees `old` after YES / DONT_NEED, and it
 *    frees `new` after anything but YES.  The owner promised not to free old or
 *    new itself during move, so each slot is freed exactly once.  A listed object
 *    that a thread frees meanwhile is answered DONT_KNOW (move) or NULLed by get.
 *    Marks never decide a release: a slab goes back to the OS only when its
 *    counts say every object is free, and a SPARE slab cannot receive frees
 *    (it has no allocated object) until the pass hands one out of it.
 *
 * 7. Refusals and back-off.  NO marks the slab SLAB_DF_NOMOVE: it goes to the top
 *    bin ("treated as full": allocations, and passes as a destination, fill it)
 *    and is never a candidate until it empties or slab_cache_shrink clears the
 *    marks.  A turn after which the slab is still in use (LATER, DONT_KNOW, a kick
 *    that freed nothing) counts in slab->futile_turns; at 3 (illumos'
 *    KMEM_DISBELIEF) it is treated as NO.  A pass that emptied no slab raises the
 *    cache's back-off (defrag_bg.c skips it for 2, 4 .. 64 rounds).
 *
 * 8. Observability.  dstat: passes, scanned (slabs frozen), freed (slabs
 *    released), kicked / moved / refused objects, bytes released, and one counter
 *    per move result.
 * 9. Numbers.  RELEASE_CHUNK = 256 slabs per lock hold while unlinking (a few
 *    tens of microseconds of cache->lock); pass arrays come from mmap
 *    (meta.c: large ones are mappings of their own), so a pass leaves no malloc residue in the RSS it reduces.
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
#include "inuse.h"

#define DEFRAG_DISBELIEF 3 /* LATER answers (or futile kicks) before a slab counts as NO */
#define RELEASE_CHUNK 256  /* slabs unlinked per cache->lock hold at the end of a pass */
#define NO_BUMP UINT32_MAX /* dest_bump when the destination allocates from its free list */

static __thread struct slab_cache *pass_cache; /* non-NULL while this thread runs a pass */

struct pass {
    struct slab_cache *s;
    struct heap owner;         /* identity owning every slab the pass holds */
    struct slab *dest;         /* current destination slab (move protocol) */
    unsigned dest_bump;        /* next never-handed-out slot of a reused spare, or NO_BUMP */
    unsigned vacating_live;    /* live objects of the slab whose turn it is, at its start */
    struct slab *done;         /* vacated slabs that kept objects and full destinations,
                                  still owned by the pass (chained by next) */
    struct os_slab_ref *spare; /* emptied slabs: [spare_head, nr_spare) are available as */
    size_t spare_head;         /* destinations, the same range is released at the end */
    size_t nr_spare, cap_spare;
    bool ordered;              /* candidates in address order (cand), spares reused FIFO */
    struct slab **cand;        /* ordered: the candidates, ascending address */
    size_t nr_cand, next_cand, cap_cand;
    uint64_t nr_emptied;       /* slabs whose turn left them empty */
    bool nomem;                /* p->spare could not grow: the pass stopped early */
    void **vec;                /* objects of the slab being vacated */
    uint64_t *bitmap;          /* free objects of that slab (free-list walk) */
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

/* ---- slabs owned by the pass ----------------------------------------------- */

/* Make the pass the owner of a LISTED slab already off its list (cache->lock
 * held).  The remote stack stays where it is: a slab that its turn empties
 * never needs it merged. */
static void pass_own(struct pass *p, struct slab *sl)
{
    atomic_store_explicit(&sl->owner, &p->owner, relaxed);
    slab_set_state(sl, SS_OWNED);
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

/* Room in p->spare for the slab about to be vacated and the destination. */
static bool reserve_spare(struct pass *p)
{
    if (p->nr_spare + 2 <= p->cap_spare)
        return true;
    size_t cap = p->cap_spare ? p->cap_spare * 2 : 256;
    struct os_slab_ref *n = meta_alloc(cap * sizeof *n);
    if (!n)
        return false;
    if (p->nr_spare)
        memcpy(n, p->spare, p->nr_spare * sizeof *n);
    meta_free(p->spare, p->cap_spare * sizeof *n);
    p->spare = n;
    p->cap_spare = cap;
    return true;
}

/* The emptiest movable partial slab below the threshold, frozen; or NULL. */
static struct slab *freeze_candidate(struct pass *p)
{
    struct slab_cache *s = p->s;
    unsigned limit = (unsigned)(((uint64_t)p->threshold * s->objects + 99) / 100);
    unsigned top_bin = (unsigned)((uint64_t)limit * PARTIAL_BINS / s->objects);
    struct slab *found = NULL;
    if (!reserve_spare(p)) {
        p->nomem = true;
        return NULL;
    }
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
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

/* A slab may be vacated now: still LISTED on a partial bin of this cache, not
 * unmovable, below the threshold.  cache->lock held; the header is read
 * through atomics first because the slab may since have been released. */
static bool is_candidate(struct pass *p, struct slab *sl)
{
    struct slab_cache *s = p->s;
    return slab_is_live_of(sl, s) && xf_state(atomic_load(&sl->xfree)) == SS_LISTED &&
           sl->list == LIST_PARTIAL && !(sl->defrag_flags & SLAB_DF_NOMOVE) &&
           live_objects(sl) * 100u < p->threshold * s->objects;
}

/* LSD radix sort of slab pointers by address (12-bit digits over the slab
 * number: 36 bits cover the 47-bit address space above 4 KiB slabs); the
 * result is in tmp.  Below SORT_SMALL candidates an insertion sort: the radix
 * sort clears and sums three 4097-entry histograms whatever n is, which was
 * most of a pass over a small cache (a fifth of the fuzz targets' time). */
#define SORT_SMALL 64
static void sort_by_address(struct slab **a, struct slab **tmp, size_t n, unsigned shift)
{
    if (n < SORT_SMALL) {
        for (size_t i = 0; i < n; i++) {
            struct slab *x = a[i];
            size_t j = i;
            for (; j > 0 && (uintptr_t)tmp[j - 1] > (uintptr_t)x; j--)
                tmp[j] = tmp[j - 1];
            tmp[j] = x;
        }
        return;
    }
    for (unsigned d = 0; d < 36; d += 12) {
        size_t count[4097] = { 0 };
        for (size_t i = 0; i < n; i++)
            count[(((uintptr_t)a[i] >> (shift + d)) & 4095) + 1]++;
        for (unsigned k = 1; k <= 4096; k++)
            count[k] += count[k - 1];
        for (size_t i = 0; i < n; i++)
            tmp[count[((uintptr_t)a[i] >> (shift + d)) & 4095]++] = a[i];
        struct slab **t = a;
        a = tmp;
        tmp = t;
    }
    /* three passes: the sorted copy is in the caller's tmp */
    memcpy(tmp, a, n * sizeof *a);
}

/*
 * A pass without deadline visits its candidates in address order: it empties
 * them from the low end and refills the emptied ones first (FIFO), so the
 * survivors gather at low addresses and the released slabs form long runs
 * (one MADV_DONTNEED each) instead of one run per slab.  The candidates are
 * listed under one cache->lock hold; each is frozen only at its turn (and
 * skipped if it has changed meanwhile), so allocators keep every other slab.
 * false (use the bins) when the array cannot be had.
 */
static bool collect_candidates(struct pass *p, bool forget)
{
    struct slab_cache *s = p->s;
    pthread_mutex_lock(&s->lock);
    size_t cap = s->nr_partial;
    pthread_mutex_unlock(&s->lock);
    cap += cap / 8 + 16;
    struct slab **a = meta_alloc(cap * sizeof *a), **tmp = meta_alloc(cap * sizeof *tmp);
    if (!a || !tmp) {
        meta_free(a, cap * sizeof *a);
        meta_free(tmp, cap * sizeof *tmp);
        return false;
    }
    size_t n = 0, m = 0;
    pthread_mutex_lock(&s->lock);
    /* First only the links: a chain of misses, but slabs are listed as they
     * fill, in address order, pushed at the head, so a list's next members
     * usually lie within 16 slabs below (the other bins' slabs in between are
     * visited too, later: the prefetches are not wasted).  Then the headers'
     * counts and marks, prefetched ahead from the array. */
    size_t step = slab_bytes(s);
    for (unsigned b = 0; b < PARTIAL_BINS; b++)
        for (struct slab *sl = s->partial[b].head; sl && m < cap; sl = sl->next) {
            for (unsigned k = 1; k <= 16; k++)
                __builtin_prefetch(&((const struct slab *)((const char *)sl - k * step))->next, 0);
            a[m++] = sl;
        }
    for (size_t i = 0; i < m; i++) {
        struct slab *sl = a[i];
        if (i + 8 < m)
            __builtin_prefetch(a[i + 8], 1);
        if (forget && (sl->defrag_flags & SLAB_DF_NOMOVE || sl->futile_turns)) {
            /* shrink: "unmovable until the cache is shrunk" */
            sl->defrag_flags &= (uint8_t)~SLAB_DF_NOMOVE;
            sl->futile_turns = 0;
        }
        if (is_candidate(p, sl))
            a[n++] = sl;
    }
    pthread_mutex_unlock(&s->lock);
    sort_by_address(a, tmp, n, s->slab_shift);
    meta_free(a, cap * sizeof *a);
    p->cand = tmp;
    p->cap_cand = cap;
    p->nr_cand = n;
    return true;
}

/* Pull the in-use marks (free-pointer words) of a slab into the cache. */
static void prefetch_marks(const struct slab_cache *s, const struct slab *sl)
{
    const char *w = (const char *)slab_obj(s, sl, 0) + s->fp_offset;
    for (unsigned i = 0; i < s->objects; i++, w += s->stride)
        __builtin_prefetch(w, 0);
}

/* The next ordered candidate that is still one, frozen; or NULL. */
static struct slab *freeze_next_ordered(struct pass *p)
{
    struct slab_cache *s = p->s;
    if (!reserve_spare(p)) {
        p->nomem = true;
        return NULL;
    }
    while (p->next_cand < p->nr_cand) {
        struct slab *sl = p->cand[p->next_cand++];
        /* Headers four turns ahead, in-use marks two turns ahead: their
         * misses overlap this turn's and the next turn's moves. */
        if (p->next_cand + 4 < p->nr_cand)
            __builtin_prefetch(p->cand[p->next_cand + 4], 1);
        if (p->next_cand + 1 < p->nr_cand && s->fp_outside)
            prefetch_marks(s, p->cand[p->next_cand + 1]);
        pthread_mutex_lock(&s->lock);
        bool ok = is_candidate(p, sl);
        if (ok) {
            cache_partial_remove(s, sl);
            sl->list = LIST_FROZEN;
            pass_own(p, sl);
        }
        pthread_mutex_unlock(&s->lock);
        if (ok)
            return sl;
    }
    return NULL;
}

/* ---- destinations ---------------------------------------------------------- */

/* A spare slab becomes the destination: every object in it is free (nobody
 * holds one, so nobody can free one), so its free list and remote stack are
 * dropped and slots are handed out in address order. */
static void reuse_spare(struct pass *p, struct slab *sl)
{
    atomic_store(&sl->xfree, xf_make(SS_OWNED, 0, 0));
    sl->freelist = NULL;
    slab_set_inuse(sl, 0);
    p->dest_bump = 0;
}

/* The slots a reused spare never handed out join its free list. */
static void end_bump(struct pass *p, struct slab *d)
{
    struct slab_cache *s = p->s;
    if (p->dest_bump == NO_BUMP)
        return;
    for (unsigned i = s->objects; i-- > p->dest_bump;) {
        void *obj = slab_obj(s, d, i);
        fp_set(s, obj, d->freelist);
        d->freelist = obj;
    }
    p->dest_bump = NO_BUMP;
}

/* The next destination (see the theory comment, section 2); false on ENOMEM. */
static bool next_dest(struct pass *p)
{
    struct slab_cache *s = p->s;
    struct slab *d = NULL;
    p->dest_bump = NO_BUMP;
    if (p->ordered && p->spare_head < p->nr_spare) {
        d = p->spare[p->spare_head++].base; /* the lowest address: survivors stay low */
        reuse_spare(p, d);
        p->dest = d;
        if (p->spare_head < p->nr_spare) /* the next one's header, written on reuse */
            __builtin_prefetch(p->spare[p->spare_head].base, 1);
        return true;
    }
    pthread_mutex_lock(&s->lock);
    d = cache_partial_fullest(s);
    /* Not fuller than the slab being vacated: a spare is better; without one,
     * it still beats a new slab (page faults, and one more survivor). */
    if (d && !(d->defrag_flags & SLAB_DF_NOMOVE) && live_objects(d) <= p->vacating_live &&
        p->spare_head < p->nr_spare)
        d = NULL;
    if (d) {
        cache_partial_remove(s, d);
        pass_own(p, d);
    }
    pthread_mutex_unlock(&s->lock);
    if (d) {
        slab_merge_remote(s, d);
    } else if (p->spare_head < p->nr_spare) {
        d = p->spare[--p->nr_spare].base;
        reuse_spare(p, d);
    } else {
        d = slab_new(s);
        if (!d)
            return false;
        atomic_store_explicit(&d->owner, &p->owner, relaxed);
        p->created++;
    }
    p->dest = d;
    return true;
}

/* One object from the destination, or NULL when it has none left. */
static void *dest_take(struct pass *p, struct slab *d)
{
    struct slab_cache *s = p->s;
    void *obj;
    if (p->dest_bump != NO_BUMP) {
        if (p->dest_bump >= s->objects) {
            p->dest_bump = NO_BUMP; /* objects given back since are on its free list */
            return NULL;
        }
        obj = slab_obj(s, d, p->dest_bump++);
    } else {
        obj = d->freelist;
        if (!obj)
            return NULL;
        void *next = fp_next_in_slab(s, obj);
        d->freelist = next;
        if (next) { /* the next pop reads its link, the next move writes it */
            __builtin_prefetch((char *)next + s->fp_offset, 0);
            __builtin_prefetch(next, 1);
        }
    }
    obj_mark_inuse(s, obj);
    slab_set_inuse(d, slab_inuse(d) + 1);
    counter_inc(&p->owner.allocs);
    if (unlikely(s->flags & SLAB_DEBUG_FLAGS))
        debug_on_alloc(s, obj, __builtin_return_address(0));
    return obj;
}

/* A constructed object for move, never from the slab being vacated. */
static void *dest_alloc(struct pass *p)
{
    struct slab_cache *s = p->s;
    for (;;) {
        struct slab *d = p->dest;
        if (d) {
            void *obj = dest_take(p, d);
            if (obj)
                return obj;
            if (p->dest_bump != NO_BUMP || d->freelist)
                continue;
            slab_merge_remote(s, d);
            if (d->freelist)
                continue;
            /* Full.  It stays with the pass until the end, so frees that
             * race in cannot make it a candidate of this pass (its objects
             * would move twice). */
            p->dest = NULL;
            d->next = p->done;
            p->done = d;
        }
        if (!next_dest(p))
            return NULL;
    }
}

/* ---- listing live objects ---------------------------------------------------- */

/* Slow and exact: the slots that are on none of the slab's free lists. */
static int walk_live(struct pass *p, struct slab *sl)
{
    struct slab_cache *s = p->s;
    unsigned words = (s->objects + 63) / 64;
    memset(p->bitmap, 0, words * sizeof *p->bitmap);
    slab_merge_remote(s, sl);
    for (void *f = sl->freelist; f; f = fp_next_in_slab(s, f)) {
        unsigned i = slab_index(s, sl, f);
        p->bitmap[i / 64] |= UINT64_C(1) << (i % 64);
    }
    int nr = 0;
    for (unsigned i = 0; i < s->objects; i++)
        if (!(p->bitmap[i / 64] & (UINT64_C(1) << (i % 64))))
            p->vec[nr++] = slab_obj(s, sl, i);
    return nr;
}

/* The allocated objects of a frozen slab into p->vec, by their in-use marks
 * (inuse.h).  Every object still allocated after the scan carries its mark, so
 * finding at least the slab's live count (read after the scan) means none was
 * missed; otherwise (objects freed meanwhile, a cache whose free pointer lies
 * inside the object) walk the free lists. */
static int list_live(struct pass *p, struct slab *sl)
{
    struct slab_cache *s = p->s;
    if (s->fp_outside) {
        unsigned nr = 0;
        for (unsigned i = 0; i < s->objects; i++) {
            void *obj = slab_obj(s, sl, i);
            p->vec[nr] = obj;
            nr += obj_marked_inuse(s, obj);
        }
        if (nr >= live_objects(sl) && nr <= slab_inuse(sl))
            return (int)nr;
    }
    return walk_live(p, sl);
}

/* ---- one slab's turn --------------------------------------------------------- */

static void count_result(struct slab_cache *s, enum slab_move_result r)
{
    if ((unsigned)r < 5)
        atomic_fetch_add_explicit(&s->dstat.move_results[r], 1, relaxed);
}

/* Pull an object the callback is about to copy into the cache. */
static void prefetch_object(const struct slab_cache *s, const void *obj)
{
    size_t n = s->size < 512 ? s->size : 512;
    for (size_t off = 0; off < n; off += 64)
        __builtin_prefetch((const char *)obj + off, 0);
}

/* Move every object of a frozen slab; stops at NO. */
static void vacate_by_move(struct pass *p, struct slab *sl, int nr)
{
    struct slab_cache *s = p->s;
    prefetch_object(s, p->vec[0]);
    for (int i = 0; i < nr && !(sl->defrag_flags & SLAB_DF_NOMOVE); i++) {
        void *old = p->vec[i];
        if (i + 1 < nr)
            prefetch_object(s, p->vec[i + 1]);
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
    (void)sl;
    void *priv = s->get(s, nr, p->vec);
    s->kick(s, nr, p->vec, priv);
    p->kicked += (uint64_t)nr;
}

/*
 * End of a slab's turn.  Empty (by its counts): it becomes a spare, a future
 * destination and, unless reused, released at the end.  Not empty: a futile
 * turn (LATER, DONT_KNOW, a kick that freed nothing) counts once; at
 * DEFRAG_DISBELIEF the slab is treated as NO.  It stays frozen on p->done until
 * the pass ends, so one pass never asks about a slab twice.
 */
static void end_turn(struct pass *p, struct slab *sl)
{
    if (live_objects(sl) == 0) {
        p->nr_emptied++;
        sl->defrag_flags = 0; /* an emptied slab is movable again */
        sl->futile_turns = 0;
        p->spare[p->nr_spare++] = (struct os_slab_ref){ .base = sl, .seg = sl->seg };
        return;
    }
    slab_merge_remote(p->s, sl);
    if (++sl->futile_turns >= DEFRAG_DISBELIEF)
        sl->defrag_flags |= SLAB_DF_NOMOVE;
    sl->next = p->done;
    p->done = sl;
}

static void vacate(struct pass *p, struct slab *sl)
{
    struct slab_cache *s = p->s;
    p->scanned++;
    p->vacating_live = live_objects(sl);
    int nr = list_live(p, sl);
    if (nr > 0) {
        if (s->move)
            vacate_by_move(p, sl, nr);
        else
            vacate_by_evict(p, sl, nr);
    }
    end_turn(p, sl);
}

/* ---- end of the pass ----------------------------------------------------------- */

/* Unlink the spare slabs from the cache (RELEASE_CHUNK per lock hold, the
 * next headers prefetched) and hand them to the OS in one sorted batch. */
static void release_spares(struct pass *p)
{
    struct slab_cache *s = p->s;
    struct os_slab_ref *refs = p->spare + p->spare_head;
    size_t n = p->nr_spare - p->spare_head;
    for (size_t i = 0; i < n;) {
        size_t end = i + RELEASE_CHUNK < n ? i + RELEASE_CHUNK : n;
        pthread_mutex_lock(&s->lock);
        for (; i < end; i++) {
            if (i + 8 < n)
                __builtin_prefetch(&((struct slab *)refs[i + 8].base)->all_next, 1);
            struct slab *sl = refs[i].base;
            cache_unlink_slab(s, sl);
            /* No state, no remote stack: a late free finds nothing to push on. */
            atomic_store_explicit(&sl->xfree, 0, memory_order_release);
            atomic_store_explicit(&sl->magic, 0, relaxed);
        }
        pthread_mutex_unlock(&s->lock);
    }
    if (n)
        os_slab_free_batch(refs, n, s->slab_shift);
    p->released += n;
    p->nr_spare = p->spare_head = 0;
}

static void pass_finish(struct pass *p)
{
    struct slab_cache *s = p->s;
    struct slab *d = p->dest;
    p->dest = NULL;
    if (d) {
        end_bump(p, d);
        slab_merge_remote(s, d);
        if (slab_inuse(d) == 0) /* every answer gave its object back */
            p->spare[p->nr_spare++] = (struct os_slab_ref){ .base = d, .seg = d->seg };
        else
            cache_put_slab(s, d);
    }
    /* Slabs that kept objects and full destinations go back (FULL, or to the
     * partial lists, unmovable ones to the top bin); one that concurrent frees
     * emptied meanwhile is released by cache_put_slab beyond the empty reserve. */
    while (p->done) {
        struct slab *sl = p->done;
        p->done = sl->next;
        sl->list = LIST_NONE;
        cache_put_slab(s, sl);
    }
    release_spares(p);
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
    meta_free(p->vec, sizeof(void *) * s->objects);
    meta_free(p->bitmap, sizeof(uint64_t) * ((s->objects + 63) / 64));
    meta_free(p->spare, p->cap_spare * sizeof *p->spare);
    meta_free(p->cand, p->cap_cand * sizeof *p->cand);
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
    /* A pass without deadline orders its candidates itself (its own walk of
     * the bins sees each slab's live count and forgets refusals for shrink);
     * budgeted steps take them from settled bins. */
    release_empties(s, rq->release_all_empty, rq->deadline_ns && rq->forget_refusals,
                    rq->forget_refusals);
    long rc = 0;
    if (cache_has_callbacks(s)) {
        struct pass p = { .s = s, .threshold = rq->fill_percent };
        p.vec = meta_alloc(sizeof(void *) * s->objects);
        p.bitmap = meta_alloc(sizeof(uint64_t) * ((s->objects + 63) / 64));
        if (!p.vec || !p.bitmap) {
            meta_free(p.vec, sizeof(void *) * s->objects);
            meta_free(p.bitmap, sizeof(uint64_t) * ((s->objects + 63) / 64));
            rc = -ENOMEM;
        } else {
            struct slab_cache *outer = pass_cache;
            pass_cache = s;
            struct slab *sl;
            p.ordered = !rq->deadline_ns && collect_candidates(&p, rq->forget_refusals);
            while ((sl = p.ordered ? freeze_next_ordered(&p) : freeze_candidate(&p)) != NULL) {
                vacate(&p, sl);
                /* Stopped by the deadline or the slab limit: say whether
                 * candidates may remain, so a budgeted caller goes on. */
                if ((rq->deadline_ns && defrag_now_ns() >= rq->deadline_ns) ||
                    (rq->max_slabs && p.scanned >= rq->max_slabs)) {
                    res->more = true;
                    break;
                }
            }
            res->more |= p.nomem;
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

bool defrag_in_pass(void)
{
    return pass_cache != NULL;
}
