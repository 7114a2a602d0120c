/*
 * slab/alloc.c — slab_alloc: the fast path and the refill (slow) path.
 *
 * Fast path: pop the calling thread's heap->freelist (the active slab's free
 * objects).  Plain loads and stores only: the heap belongs to this thread.
 *
 * Refill, in order of cost:
 *   1. objects other threads freed into the active slab (take its remote stack);
 *   2. the active slab is exhausted: give it back (FULL, or LISTED if frees raced
 *      in) and activate one of the heap's own partial slabs;
 *   3. a partial (then an empty reserve) slab from the cache, under cache->lock;
 *   4. a new slab from the OS (os.c), constructing its objects.
 * Errors: ENOMEM when the heap or a new slab cannot be had.
 * Every object handed out carries the in-use mark in its free-pointer word
 * (inuse.h), which a defrag pass reads instead of walking free lists.
 */
#include <errno.h>

#include "internal.h"
#include "debug.h"
#include "inuse.h"

static inline void *heap_pop(struct slab_cache *s, struct heap *h)
{
    void *obj = h->freelist;
    void *next = fp_get(s, obj);
    /* The next free object must be in the same slab (one xor and shift): a
     * corrupted or forged link stops here instead of handing out wild memory. */
    if (unlikely(((uintptr_t)next ^ (uintptr_t)obj) >> s->slab_shift) && next)
        slab_report_corrupt_freelist(s, obj, next);
    obj_mark_inuse(s, obj); /* defrag lists live objects by this mark (inuse.h) */
    h->freelist = next;
    h->nfree--;
    counter_inc(&h->allocs);
    return obj;
}

static bool heap_refill(struct slab_cache *s, struct heap *h)
{
    struct slab *sl = h->active;
    if (sl) {
        unsigned count;
        void *remote = slab_take_remote(sl, &count);
        if (remote) {
            h->freelist = remote;
            h->nfree += count;
            return true;
        }
        heap_deactivate(h);
    }
    sl = heap_take_partial(h);
    if (sl) {
        slab_merge_remote(s, sl);
        heap_activate(h, sl);
        return true;
    }
    sl = cache_take_partial(s, h);
    if (!sl) {
        sl = slab_new(s);
        if (!sl)
            return false;
        atomic_store_explicit(&sl->owner, h, relaxed);
    }
    heap_activate(h, sl);
    return true;
}

static void *slab_alloc_slow(struct slab_cache *s, struct heap *h, void *caller)
{
    if (unlikely(!h || h->cache != s))
        h = heap_get(s);
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    while (!h->freelist) {
        if (!heap_refill(s, h)) {
            errno = ENOMEM;
            return NULL;
        }
    }
    void *obj = heap_pop(s, h);
    if (unlikely(s->flags & SLAB_DEBUG_FLAGS))
        debug_on_alloc(s, obj, caller);
    return obj;
}

void *slab_alloc(struct slab_cache *s)
{
    struct heap *h = tls_heaps[s->id];
    if (likely(h != NULL && h->freelist != NULL && !(s->flags & SLAB_DEBUG_FLAGS)))
        return heap_pop(s, h);
    return slab_alloc_slow(s, h, __builtin_return_address(0));
}
