/*
 * slab/alloc.c — slab_alloc: the fast path and the refill (slow) path.
 *
 * Fast path: enter the calling thread's heap (heap.c's handshake: two plain
 * stores and a load), pop heap->freelist (the active slab's free objects) or
 * else heap->lfree (objects this thread freed into its other slabs), leave.  No atomic read-modify-write and no shared cache line: the heap belongs
 * to this thread.
 *
 * Refill (heap_refill in heap.c), in order of cost:
 *   1. objects other threads freed into the active slab (take its remote stack);
 *   2. the active slab is exhausted: it goes to the heap's full list (delayed
 *      free armed); objects freed remotely into full slabs (heap->delayed) move
 *      their slabs back to the heap's partial list; take one of those;
 *   3. a partial (then an empty) slab from the cache, under cache->lock;
 *   4. a new slab from the OS (os.c), constructing its objects.
 * A thief holding the heap makes the fast path fail; the slow path waits for it.
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
    /* The next free object must be in the same slab (one xor and shift): a
     * corrupted or forged link stops here instead of handing out wild memory. */
    void *next = fp_next_in_slab(s, obj);
    obj_mark_inuse(s, obj); /* defrag lists live objects by this mark (inuse.h) */
    h->freelist = next;
    h->nfree--;
    counter_inc(&h->allocs);
    return obj;
}

/* From the heap's cache of freed objects: they span slabs, so the check is that
 * the next link points into slab memory of this cache's slab size (the
 * segment map, internal.h's fp_next_cross). */
static inline void *heap_pop_lfree(struct slab_cache *s, struct heap *h)
{
    void *obj = h->lfree;
    void *next = fp_next_cross(s, obj);
    obj_mark_inuse(s, obj); /* defrag lists live objects by this mark (inuse.h) */
    h->lfree = next;
    h->nlfree--;
    counter_inc(&h->allocs);
    return obj;
}

static __attribute__((noinline)) void *slab_alloc_slow(struct slab_cache *s, void *caller)
{
    struct heap *h = heap_get(s);
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    heap_enter_wait(h);
    void *obj;
    if (h->freelist) {
        obj = heap_pop(s, h);
    } else if (h->lfree) {
        obj = heap_pop_lfree(s, h);
    } else if (heap_refill(s, h)) {
        obj = heap_pop(s, h);
    } else {
        heap_leave(h);
        errno = ENOMEM;
        return NULL;
    }
    heap_leave(h);
    if (unlikely(s->flags & SLAB_DEBUG_FLAGS))
        debug_on_alloc(s, obj, caller);
    return obj;
}

void *slab_alloc(struct slab_cache *s)
{
    struct heap *h = tls_heaps[s->id];
    if (likely(h != NULL)) {
        bool entered = heap_enter(h);
        if (likely(entered && !(s->flags & SLAB_DEBUG_FLAGS))) {
            void *obj;
            if (likely(h->freelist != NULL))
                obj = heap_pop(s, h);
            else if (h->lfree != NULL)
                obj = heap_pop_lfree(s, h);
            else
                goto slow;
            heap_leave(h);
            return obj;
        }
    slow:
        heap_leave(h);
    }
    return slab_alloc_slow(s, __builtin_return_address(0));
}
