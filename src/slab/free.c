/*
 * slab/free.c — slab_free: pointer validation, the local fast paths, and frees
 * into slabs the calling thread does not own.
 *
 * 1. Validation (always on, cheap): the segment map says whether the pointer is
 *    in slab memory at all and the slab size there; the slab header at the
 *    aligned base names the cache; the offset must be a whole number of strides
 *    (a multiply by a precomputed reciprocal, no division).  Any failure aborts
 *    with "slabdefrag: cache '<name>': slab_free(<ptr>): <what>".
 * 2. Paths, by who owns the object's slab (see internal.h for the states); the
 *    first two run inside the caller's heap_enter/heap_leave:
 *      this thread's active slab   push on heap->freelist (plain stores);
 *      another slab this heap owns push on heap->lfree, the thread's cache of
 *                                  freed objects (plain stores; one compare of
 *                                  slab->owner decides), whatever the slab's
 *                                  fill; a full lfree goes back into its slabs
 *                                  (heap_free_local, heap.c);
 *      OWNED by another heap, ARMED (it is on its owner's full list): CAS
 *                                  ARMED → FREEING, push the object onto the
 *                                  owner's heap->delayed, set NORMAL;
 *      FULL                        claim it by CAS (FULL → OWNED by this heap) and
 *                                  keep it on this heap's partial list;
 *      anything else               push on the slab's remote stack by CAS; a
 *                                  LISTED slab whose remote count reaches its
 *                                  inuse may be empty: re-check under the lock.
 * 3. Double frees caught here without debug mode: the object is already the head
 *    of the freelist it would join; a heap or slab count would exceed the slab's
 *    capacity or go negative.  Debug mode (debug.c) catches all of them.
 * 4. Memory ordering: the remote push CAS is seq_cst and so is the inuse load
 *    after it, pairing with cache_settle_listed (see slab.c).  The ARMED →
 *    FREEING CAS acquires the owner's arming CAS, so slab->owner read after it is
 *    the heap that armed it, alive until FREEING is cleared (heap.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "debug.h"

_Noreturn void slab_report_bad_free(const struct slab_cache *s, const void *obj, const char *what,
                                    const char *detail)
{
    fprintf(stderr, "slabdefrag: cache '%s': slab_free(%p): %s%s\n", s->name, obj, what,
            detail ? detail : "");
    fflush(stderr);
    abort();
}

_Noreturn void slab_report_corrupt_freelist(const struct slab_cache *s, const void *obj, const void *next,
                                            const char *where)
{
    fprintf(stderr,
            "slabdefrag: cache '%s': corrupted free pointer in free object %p (decodes to %p, "
            "%s): write after free or overflow\n",
            s->name, obj, next, where);
    fflush(stderr);
    abort();
}

/* Not a caller's mistake: the state word says ARMED (an owner heap keeps the
 * slab on its full list) but no heap owns it.  Named, with the word, instead of
 * a fault on the NULL heap. */
static _Noreturn __attribute__((noinline)) void slab_report_no_owner(const struct slab_cache *s,
                                                                     const struct slab *sl,
                                                                     const void *obj)
{
    fprintf(stderr,
            "slabdefrag: cache '%s': internal error: free of %p found slab %p armed for delayed "
            "free with no owner (xfree %#llx)\n",
            s->name, obj, (const void *)sl,
            (unsigned long long)atomic_load_explicit(&((struct slab *)sl)->xfree, relaxed));
    fflush(stderr);
    abort();
}

static _Noreturn void report_foreign(const struct slab_cache *s, const void *obj)
{
    unsigned shift = os_segment_slab_shift(obj);
    if (shift) {
        const struct slab *sl = (const struct slab *)((uintptr_t)obj & ~(((uintptr_t)1 << shift) - 1));
        struct slab_cache *other = slab_owner_cache(sl);
        if (atomic_load_explicit(&sl->magic, relaxed) == SLAB_MAGIC && other && other != s) {
            char detail[64];
            snprintf(detail, sizeof detail, "'%s'", other->name);
            slab_report_bad_free(s, obj, "belongs to cache ", detail);
        }
        slab_report_bad_free(s, obj, "not a slab object", " (no live slab of this cache there)");
    }
    slab_report_bad_free(s, obj, "not a slab object", " (outside any slab)");
}

static inline struct slab *slab_checked(struct slab_cache *s, void *obj, unsigned *idx_out)
{
    if (unlikely(os_segment_slab_shift(obj) != s->slab_shift))
        report_foreign(s, obj);
    struct slab *sl = (struct slab *)((uintptr_t)obj & ~(uintptr_t)(slab_bytes(s) - 1));
    if (unlikely(!slab_is_live_of(sl, s)))
        report_foreign(s, obj);
    if (unlikely(!slab_is_slot(s, sl, obj)))
        slab_report_bad_free(s, obj, "misaligned", " (not the start of an object)");
    *idx_out = slab_index(s, sl, obj);
    return sl;
}

/* The object is the top of the slab's remote-free stack: freed twice. */
static inline bool on_remote_top(struct slab *sl, unsigned idx)
{
    return xf_head(atomic_load_explicit(&sl->xfree, relaxed)) == idx + 1;
}

/* Claim a FULL slab for heap h: the object being freed becomes its freelist. */
static void claim_full(struct slab_cache *s, struct heap *h, struct slab *sl, void *obj)
{
    atomic_store_explicit(&sl->owner, h, relaxed);
    fp_set(s, obj, NULL);
    sl->freelist = obj;
    slab_set_inuse(sl, sl->objects - 1);
    slab_list_push(&h->partial, sl, LIST_HEAP_PARTIAL);
    heap_publish(h);
}

TEST_HOOKS_DEFINE(struct slab_free_test_hooks, slab_free_set_test_hooks)

/* We turned the slab's delayed bits ARMED → FREEING: hand the object to the
 * owner heap's delayed stack, then let the next remote free push normally. */
static void delayed_push(struct slab_cache *s, struct slab *sl, void *obj)
{
    TEST_HOOK(in_delayed_push, s, sl);
    struct heap *o = atomic_load_explicit(&sl->owner, relaxed);
    if (unlikely(o == NULL)) /* an armed slab always has an owner: a broken invariant */
        slab_report_no_owner(s, sl, obj);
    void *head = atomic_load_explicit(&o->delayed, relaxed);
    do
        fp_set(s, obj, head);
    while (!atomic_compare_exchange_weak_explicit(&o->delayed, &head, obj, memory_order_release,
                                                  relaxed));
    uint64_t cur = atomic_load_explicit(&sl->xfree, relaxed);
    while (!atomic_compare_exchange_weak_explicit(&sl->xfree, &cur, xf_with_delay(cur, DF_NORMAL),
                                                  memory_order_release, relaxed))
        ;
}

/* A free into a slab the caller's heap h does not own (h: entered, or NULL when
 * there is none: then a FULL slab is listed instead of claimed). */
void slab_free_unowned(struct slab_cache *s, struct heap *h, struct slab *sl, void *obj, unsigned idx)
{
    uint64_t old = atomic_load_explicit(&sl->xfree, relaxed);
    uint64_t new;
    unsigned inuse;
    for (;;) {
        unsigned st = xf_state(old);
        if (st == SS_FULL && h) {
            if (atomic_compare_exchange_weak_explicit(&sl->xfree, &old, xf_make(SS_OWNED, 0, 0),
                                                      memory_order_acquire, relaxed)) {
                claim_full(s, h, sl, obj);
                return;
            }
            continue;
        }
        if (st == SS_OWNED && xf_delay(old) == DF_ARMED) {
            if (atomic_compare_exchange_weak_explicit(&sl->xfree, &old, xf_with_delay(old, DF_FREEING),
                                                      memory_order_acquire, relaxed)) {
                delayed_push(s, sl, obj);
                return;
            }
            continue;
        }
        /* Read inuse before publishing the push: once the CAS succeeds our object
         * is free and another thread may empty and release the slab.  For a
         * LISTED slab inuse only changes together with xfree (a drain), so a
         * successful CAS proves this value was current. */
        inuse = slab_inuse(sl);
        unsigned head = xf_head(old);
        if (unlikely(head == idx + 1))
            slab_report_bad_free(s, obj, "double free", " (object already on the remote free list)");
        fp_set(s, obj, head ? slab_obj(s, sl, head - 1) : NULL);
        /* Without a heap (ENOMEM) a FULL slab is listed instead of claimed. */
        new = xf_make(st == SS_FULL ? SS_LISTED : st, xf_count(old) + 1, idx + 1) |
              (old & XF_DELAY_MASK);
        if (atomic_compare_exchange_weak_explicit(&sl->xfree, &old, new, memory_order_seq_cst,
                                                  relaxed))
            break;
    }
    if (xf_state(old) == SS_FULL) {
        pthread_mutex_lock(&s->lock);
        cache_partial_add(s, sl);
        cache_settle_listed(s, sl);
        pthread_mutex_unlock(&s->lock);
    } else if (xf_state(new) == SS_LISTED) {
        if (unlikely(xf_count(new) > inuse))
            slab_report_bad_free(s, obj, "double free", " (more frees than allocated objects)");
        /* A settle that drained just before our push stores its new inuse after
         * our read above; reading inuse again (seq_cst, pairing with the
         * settle's re-load of xfree) makes one of the two notice an empty slab.
         * The slab may be released by now: its memory stays mapped (segments
         * are never unmapped, os.c) and cache_listed_maybe_empty re-checks
         * everything under the cache lock. */
        if (xf_count(new) == inuse || xf_count(new) == atomic_load(&sl->inuse)) {
            TEST_HOOK(before_empty_check, s, sl);
            cache_listed_maybe_empty(s, sl);
        }
    }
}

/* The object's slab is not this thread's (or this thread has no heap yet). */
static __attribute__((noinline)) void slab_free_other(struct slab_cache *s, struct slab *sl, void *obj,
                                                      unsigned idx)
{
    struct heap *h = tls_heaps[s->id];
    if (unlikely(!h || h->cache != s))
        h = heap_get(s);
    if (h)
        heap_enter_wait(h);
    if (h && atomic_load_explicit(&sl->owner, relaxed) == h && sl != h->active &&
        xf_state(atomic_load_explicit(&sl->xfree, relaxed)) == SS_OWNED)
        heap_free_local(s, h, sl, obj);
    else
        slab_free_unowned(s, h, sl, obj, idx);
    if (h) {
        counter_inc(&h->frees);
        heap_leave(h);
    }
}

/* Debug mode, or a thief holds this thread's heap: the general path. */
static __attribute__((noinline)) void slab_free_checked(struct slab_cache *s, struct slab *sl, void *obj,
                                                        unsigned idx, void *caller)
{
    if (unlikely(s->flags & SLAB_DEBUG_FLAGS))
        debug_on_free(s, sl, obj, caller);
    struct heap *h = tls_heaps[s->id];
    if (h) {
        heap_enter_wait(h);
        if (sl == h->active || atomic_load_explicit(&sl->owner, relaxed) == h) {
            if (sl == h->active) {
                if (unlikely(obj == h->freelist || h->nfree >= s->objects || on_remote_top(sl, idx)))
                    slab_report_bad_free(s, obj, "double free", " (object already free)");
                fp_set(s, obj, h->freelist);
                h->freelist = obj;
                h->nfree++;
            } else {
                heap_free_local(s, h, sl, obj);
            }
            counter_inc(&h->frees);
            heap_leave(h);
            return;
        }
        heap_leave(h);
    }
    slab_free_other(s, sl, obj, idx);
}

/* A full lfree (or none for this cache): back into the slabs, then this
 * object onto it or straight into its slab. */
static __attribute__((noinline)) void lfree_spill(struct slab_cache *s, struct heap *h, void *obj)
{
    heap_lfree_flush(s, h);
    struct slab *sl = (struct slab *)((uintptr_t)obj & ~(uintptr_t)(slab_bytes(s) - 1));
    if (atomic_load_explicit(&s->lfree_max, relaxed)) {
        fp_set(s, obj, NULL);
        h->lfree = obj;
        h->nlfree = 1;
    } else {
        heap_free_local(s, h, sl, obj);
    }
    counter_inc(&h->frees);
    heap_leave(h);
}

/* The common part of slab_free and slab_free_object, after validation. */
static inline __attribute__((always_inline)) void free_validated(struct slab_cache *s, struct slab *sl,
                                                                 void *obj, unsigned idx, void *caller)
{
    struct heap *h = tls_heaps[s->id];
    if (unlikely(h == NULL || (s->flags & SLAB_DEBUG_FLAGS) || !heap_enter(h)))
        return slab_free_checked(s, sl, obj, idx, caller);
    if (likely(sl == h->active)) {
        if (unlikely(obj == h->freelist || h->nfree >= s->objects || on_remote_top(sl, idx)))
            slab_report_bad_free(s, obj, "double free", " (object already free)");
        fp_set(s, obj, h->freelist);
        h->freelist = obj;
        h->nfree++;
    } else if (likely(atomic_load_explicit(&sl->owner, relaxed) == h)) {
        /* Into the heap's cache of freed objects; full: back to their slabs. */
        if (unlikely(obj == h->lfree))
            slab_report_bad_free(s, obj, "double free", " (object already free)");
        if (unlikely(h->nlfree >= atomic_load_explicit(&s->lfree_max, relaxed)))
            return lfree_spill(s, h, obj);
        fp_set(s, obj, h->lfree);
        h->lfree = obj;
        h->nlfree++;
    } else if (likely(h->cache == s)) {
        slab_free_unowned(s, h, sl, obj, idx); /* another thread's slab: remote */
    } else {
        heap_leave(h); /* an orphan heap of a destroyed cache that had this id */
        return slab_free_other(s, sl, obj, idx);
    }
    counter_inc(&h->frees);
    heap_leave(h);
}

void slab_free(struct slab_cache *s, void *obj)
{
    if (unlikely(obj == NULL))
        return;
    unsigned idx;
    struct slab *sl = slab_checked(s, obj, &idx);
    free_validated(s, sl, obj, idx, __builtin_return_address(0));
}

/*
 * Free an object of whichever cache's slab holds it (the malloc front end's
 * free): the slab header names the cache, then the checks of slab_free run
 * once.  0 when obj is not inside a live slab (nothing done: the caller decides
 * what it is).
 */
int slab_free_object(void *obj)
{
    unsigned shift = os_segment_slab_shift(obj);
    if (unlikely(!shift))
        return 0;
    struct slab *sl = (struct slab *)((uintptr_t)obj & ~(((uintptr_t)1 << shift) - 1));
    struct slab_cache *s = slab_owner_cache(sl);
    if (unlikely(atomic_load_explicit(&sl->magic, relaxed) != SLAB_MAGIC || !s || s->slab_shift != shift))
        return 0;
    if (unlikely(!slab_is_slot(s, sl, obj)))
        slab_report_bad_free(s, obj, "misaligned", " (not the start of an object)");
    free_validated(s, sl, obj, slab_index(s, sl, obj), __builtin_return_address(0));
    return 1;
}
