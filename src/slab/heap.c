/*
 * slab/heap.c — per-thread heaps: the active slab and a thread's partial slabs.
 *
 * 1. Objects.  Each thread has a table tls_heaps[SLAB_MAX_CACHES] indexed by
 *    cache id; entry i is that thread's struct heap for the cache with id i, made
 *    on first use.  A heap owns (slab state OWNED, slab->owner == heap) its active
 *    slab and up to HEAP_PARTIAL_MAX partial slabs.
 * 2. Locking.  A heap's freelist, nfree, active and partial are touched only by
 *    its thread.  cache->lock protects cache->heaps (the registry stats walk).
 *    heaps_lock (global) orders thread exit against slab_cache_destroy, so a heap
 *    is never flushed into a cache that is being destroyed.  Order: heaps_lock,
 *    then cache->lock.
 * 3. Lifecycle.  heap_get() creates and registers the heap.  When the thread exits
 *    (pthread key destructor), each heap gives its slabs back to its cache
 *    (heap_flush), its counters are folded into the cache's retired counters, and
 *    it is freed.  slab_cache_destroy orphans the heaps of live threads: it
 *    empties them and sets heap->cache = NULL; the owning thread frees an orphan
 *    when it next looks its table up for that id, or when it exits.  An orphan's
 *    freelist is NULL and it owns no slab, so the fast paths never use it.
 * 4. Invariants.  For the active slab: objects == inuse(slab view, stale) is not
 *    kept; instead h->nfree == |h->freelist| and the slab's inuse is recomputed on
 *    deactivation as objects - nfree.
 * 5. Numbers.  HEAP_PARTIAL_MAX = 8 slabs: enough that frees scattered over a few
 *    slabs stay thread-local, small enough that defrag sees (on the cache lists)
 *    nearly all of a cache's partial slabs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

__thread struct heap *tls_heaps[SLAB_MAX_CACHES] __attribute__((tls_model("initial-exec")));
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;

static void heap_retire(struct heap *h);

static void thread_exit_flush(void *unused)
{
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

struct heap *heap_lookup(struct slab_cache *s)
{
    struct heap *h = tls_heaps[s->id];
    return (h && h->cache == s) ? h : NULL;
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
    pthread_mutex_lock(&s->lock);
    h->next = s->heaps;
    if (s->heaps)
        s->heaps->prev = h;
    s->heaps = h;
    pthread_mutex_unlock(&s->lock);
    tls_heaps[s->id] = h;
    return h;
}

void heap_activate(struct heap *h, struct slab *sl)
{
    h->active = sl;
    h->freelist = sl->freelist;
    h->nfree = sl->objects - slab_inuse(sl);
    sl->freelist = NULL;
}

void heap_deactivate(struct heap *h)
{
    struct slab *sl = h->active;
    if (!sl)
        return;
    sl->freelist = h->freelist;
    slab_set_inuse(sl, sl->objects - h->nfree);
    h->freelist = NULL;
    h->nfree = 0;
    h->active = NULL;
    cache_put_slab(h->cache, sl);
}

void heap_add_partial(struct heap *h, struct slab *sl)
{
    if (h->nr_partial == HEAP_PARTIAL_MAX) {
        /* Full: the oldest partial slab goes to the cache, where other threads and
         * defrag can see it. */
        struct slab *oldest = h->partial[0];
        memmove(&h->partial[0], &h->partial[1], (HEAP_PARTIAL_MAX - 1) * sizeof h->partial[0]);
        h->nr_partial--;
        oldest->list = LIST_NONE;
        cache_put_slab(h->cache, oldest);
    }
    sl->list = LIST_HEAP_PARTIAL;
    h->partial[h->nr_partial++] = sl;
    heap_publish(h);
}

struct slab *heap_take_partial(struct heap *h)
{
    if (!h->nr_partial)
        return NULL;
    struct slab *sl = h->partial[--h->nr_partial];
    sl->list = LIST_NONE;
    heap_publish(h);
    return sl;
}

void heap_remove_partial(struct heap *h, struct slab *sl)
{
    for (unsigned i = 0; i < h->nr_partial; i++)
        if (h->partial[i] == sl) {
            memmove(&h->partial[i], &h->partial[i + 1], (h->nr_partial - i - 1) * sizeof h->partial[0]);
            h->nr_partial--;
            sl->list = LIST_NONE;
            heap_publish(h);
            return;
        }
}

void heap_flush(struct heap *h)
{
    heap_deactivate(h);
    struct slab *sl;
    while ((sl = heap_take_partial(h)) != NULL)
        cache_put_slab(h->cache, sl);
}

/* Thread exit: flush, fold counters into the cache, unregister.  heaps_lock held. */
static void heap_retire(struct heap *h)
{
    struct slab_cache *s = h->cache;
    heap_flush(h);
    pthread_mutex_lock(&s->lock);
    s->retired_allocs += atomic_load_explicit(&h->allocs, relaxed);
    s->retired_frees += atomic_load_explicit(&h->frees, relaxed);
    if (h->prev)
        h->prev->next = h->next;
    else
        s->heaps = h->next;
    if (h->next)
        h->next->prev = h->prev;
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
        h->active = NULL;
        h->nr_partial = 0;
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
