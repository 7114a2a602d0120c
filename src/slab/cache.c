/*
 * slab/cache.c — creating, finding and destroying caches; the slab size rule.
 *
 * 1. Objects.  struct slab_cache (internal.h).  Every live cache is on the global
 *    cache list and owns a unique id in [0, SLAB_MAX_CACHES) that indexes each
 *    thread's heap table; ids are reused after destroy (heap.c handles orphans).
 * 2. Locking.  cache_list_lock protects: the cache list, the id bitmap, the
 *    ring of recently destroyed names, the list generation.  Order:
 *    cache_list_lock before any cache->lock.  destroy_rw: each destroy holds it
 *    for reading from start to end.  Fork (fork.h): destroy_rw is taken for
 *    writing (FORK_ORDER_DESTROY: destroys in flight finish, new ones wait);
 *    every live cache's lock is held across fork() (FORK_ORDER_CACHES), after
 *    cache_list_lock (taken by defrag_bg.c's hook).
 * 3. Layout of an object slot (stride bytes):
 *      [object][debug red zone][free pointer]   when the free pointer is outside
 *      [free pointer | rest of object]          otherwise (it overlays a free object)
 *      [object .. free pointer at fp_offset ..] when the owner placed it
 *    The free pointer lives outside the object whenever the object's contents must
 *    survive being free: a constructor (type-stable, constructed state kept across
 *    free/alloc), debug poisoning, or defrag callbacks (which may read a freed
 *    object, e.g. its refcount; set before the first slab exists, see defrag.c) —
 *    unless the owner named 8 bytes of the object that need not survive
 *    (slab_cache_set_freeptr_offset: SLAB_CACHE_FP_PLACED, as Linux's
 *    freeptr_offset), which saves the 8 bytes per object.  Debug caches keep it
 *    outside regardless.
 * 4. Slab size rule: the smallest power of two from 4 KiB to 256 KiB that holds
 *    at least 8 objects with at most 1/8 of the slab wasted (header + tail);
 *    if none does, 256 KiB.  Examples: 64 B → 4 KiB (62 objects:
 *    the 128 B header takes two), 256 B → 4 KiB
 *    (15), 1 KiB → 16 KiB (15), 8 KiB → 128 KiB (15), 32 KiB → 256 KiB (7).
 * 5. Destroy first takes the cache off the list (lookups, the stats endpoint and
 *    reclaimers no longer find it; those that pinned it before are waited for),
 *    reports live objects ("N objects still allocated at destroy"), returns
 *    every slab to the OS, then frees the id.  The cache list is the registry
 *    of live caches: destroying a cache that is not on it (a second destroy)
 *    aborts with "cache 'NAME': slab_cache_destroy(PTR): cache already
 *    destroyed" (the name from a ring of the last 16 destroyed caches), without
 *    reading the freed cache.  A second destroy after the address was reused by
 *    a new cache cannot be told apart from destroying the new one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"
#include "debug.h"
#include "defrag.h"
#include "fork.h"
#include "hooks.h"
#include "inuse.h"

pthread_mutex_t cache_list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slab_cache *cache_list;
static uint64_t id_used[SLAB_MAX_CACHES / 64];
static unsigned long list_gen; /* caches created so far (fork.h: FORK_ORDER_DEFRAG) */
/* Held for reading by each slab_cache_destroy, for writing across fork(), so a
 * child never inherits a destroy half done (FORK_ORDER_DESTROY).  Writers first:
 * a stream of destroys cannot hold a fork off. */
static pthread_rwlock_t destroy_rw = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

unsigned long cache_list_generation(void) { return list_gen; }

static size_t round_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

/* Compute stride, fp_offset, first_offset, objects, slab_shift.  0 or -EINVAL. */
int cache_compute_layout(struct slab_cache *s, bool fp_outside)
{
    size_t align = s->align;
    size_t obj = s->size < sizeof(void *) ? sizeof(void *) : s->size;
    if (fp_outside) {
        s->fp_offset = round_up(s->size + debug_slot_extra(s->flags), sizeof(void *));
        s->stride = round_up(s->fp_offset + sizeof(void *) + debug_meta_size(s->flags), align);
    } else {
        s->fp_offset = 0;
        s->stride = round_up(obj, align);
    }
    s->first_offset = round_up(sizeof(struct slab), align < 64 ? 64 : align);
    s->fp_outside = fp_outside;
    for (unsigned shift = SLAB_MIN_SHIFT; shift <= SLAB_MAX_SHIFT; shift++) {
        size_t bytes = (size_t)1 << shift;
        if (bytes <= s->first_offset)
            continue;
        size_t n = (bytes - s->first_offset) / s->stride;
        size_t waste = bytes - n * s->stride;
        if ((n >= 8 && waste * 8 <= bytes) || (shift == SLAB_MAX_SHIFT && n >= 1)) {
            s->slab_shift = shift;
            s->objects = (unsigned)n;
            s->objects_span = n * s->stride;
            s->stride_recip = ((UINT64_C(1) << 40) + s->stride - 1) / s->stride;
            return 0;
        }
    }
    return -EINVAL;
}

static uintptr_t random_secret(void)
{
    uintptr_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = (uintptr_t)&v ^ (uintptr_t)time(NULL) * 0x9e3779b97f4a7c15ull;
    return v | 1; /* never 0, so a zeroed link never decodes to NULL */
}

static int alloc_id(void)
{
    for (unsigned w = 0; w < SLAB_MAX_CACHES / 64; w++)
        if (~id_used[w]) {
            unsigned bit = (unsigned)__builtin_ctzll(~id_used[w]);
            id_used[w] |= UINT64_C(1) << bit;
            return (int)(w * 64 + bit);
        }
    return -1;
}

/* The per-thread cache of freed objects (heap.c's lfree) holds small objects
 * while decay is on: with decay off memory must go back at once, and a cached
 * large object would pin a large slab (and hide a double free of it). */
static void cache_update_lfree(struct slab_cache *s)
{
    bool on = s->size <= HEAP_LFREE_OBJECT_MAX && atomic_load(&purge_delay_ms) != 0;
    atomic_store_explicit(&s->lfree_max, on ? HEAP_LFREE_MAX : 0, relaxed);
}

static bool valid_args(size_t size, size_t align, unsigned flags)
{
    if (size == 0 || size > SLAB_MAX_OBJECT_SIZE)
        return false;
    if (align & (align - 1) || align > 4096)
        return false;
    if (flags & ~SLAB_VALID_FLAGS)
        return false;
    return true;
}

struct slab_cache *slab_cache_create(const char *name, size_t size, size_t align, unsigned flags,
                                     slab_ctor_fn ctor)
{
    if (slab_upper_hooks.cache_create) /* hooks.h: the endpoint's autostart, also when static */
        slab_upper_hooks.cache_create();
    if (!name || !valid_args(size, align, flags)) {
        errno = EINVAL;
        return NULL;
    }
    struct slab_cache *s = meta_alloc(sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    s->flags = debug_flags_from_env(s->name, flags);
    s->size = size;
    s->align = align ? align : sizeof(void *);
    if (s->flags & SLAB_HWCACHE_ALIGN && s->align < 64)
        s->align = 64;
    s->ctor = ctor;
    s->secret = random_secret();
    if (cache_compute_layout(s, ctor || (s->flags & SLAB_DEBUG_FLAGS)) != 0) {
        meta_free(s, sizeof *s);
        errno = EINVAL;
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->defrag_lock, NULL);
    slab_get_purge_delay(); /* the environment's delay decides lfree_max */
    cache_update_lfree(s);
    pthread_mutex_lock(&cache_list_lock);
    int id = alloc_id();
    if (id >= 0) {
        s->id = (unsigned)id;
        list_gen++;
        s->next_cache = cache_list;
        if (cache_list)
            cache_list->prev_cache = s;
        cache_list = s;
    }
    pthread_mutex_unlock(&cache_list_lock);
    if (id < 0) {
        meta_free(s, sizeof *s);
        errno = ENOMEM;
        return NULL;
    }
    return s;
}

/* Names of the last destroyed caches (cache_list_lock), newest at dead_next - 1,
 * so that a second destroy can name what it was given. */
#define DEAD_NAMES 16
static struct {
    const struct slab_cache *s;
    char name[sizeof ((struct slab_cache *)0)->name];
} dead[DEAD_NAMES];
static unsigned dead_next;

static _Noreturn void report_not_live(const struct slab_cache *s)
{
    const char *name = NULL;
    for (unsigned i = 1; i <= DEAD_NAMES && !name; i++) {
        unsigned k = (dead_next - i) % DEAD_NAMES;
        if (dead[k].s == s)
            name = dead[k].name;
    }
    if (name)
        fprintf(stderr, "slabdefrag: cache '%s': slab_cache_destroy(%p): cache already destroyed\n",
                name, (const void *)s);
    else
        fprintf(stderr, "slabdefrag: slab_cache_destroy(%p): not a live cache (destroyed twice, "
                "or never created)\n", (const void *)s);
    fflush(stderr);
    abort();
}

/* Destroy begins: take s off the cache list (so no lookup finds it any more),
 * or abort when s is not on it.  Its id stays reserved until cache_forget_id. */
static void cache_unlist(struct slab_cache *s)
{
    pthread_mutex_lock(&cache_list_lock);
    struct slab_cache *t = cache_list;
    while (t && t != s)
        t = t->next_cache;
    if (!t)
        report_not_live(s); /* abort: nothing of s may be read */
    DLIST_UNLINK(&cache_list, s, next_cache, prev_cache);
    s->next_cache = s->prev_cache = NULL;
    pthread_mutex_unlock(&cache_list_lock);
}

/* Destroy ends: free the id and remember the name of the address. */
static void cache_forget_id(struct slab_cache *s)
{
    pthread_mutex_lock(&cache_list_lock);
    id_used[s->id / 64] &= ~(UINT64_C(1) << (s->id % 64));
    dead[dead_next % DEAD_NAMES].s = s;
    memcpy(dead[dead_next % DEAD_NAMES].name, s->name, sizeof s->name);
    dead_next++;
    pthread_mutex_unlock(&cache_list_lock);
}

void slab_cache_destroy(struct slab_cache *s)
{
    if (!s)
        return;
    pthread_rwlock_rdlock(&destroy_rw);
    cache_unlist(s);
    slab_defrag_mark_dying_and_wait(s);
    heap_orphan_all(s);
    pthread_mutex_lock(&s->lock);
    uint64_t allocs, frees;
    heap_stats(s, &allocs, &frees);
    struct slab *chain = s->all_slabs;
    s->all_slabs = NULL;
    pthread_mutex_unlock(&s->lock);
    if (allocs > frees)
        fprintf(stderr, "slabdefrag: cache '%s': %llu objects still allocated at destroy\n", s->name,
                (unsigned long long)(allocs - frees));
    while (chain) {
        struct slab *next = chain->all_next;
        slab_release(s, chain);
        chain = next;
    }
    cache_forget_id(s);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->defrag_lock);
    meta_free(s, sizeof *s);
    pthread_rwlock_unlock(&destroy_rw);
}

int slab_cache_set_freeptr_offset(struct slab_cache *s, size_t offset)
{
    if (!s || offset % sizeof(void *) || offset + sizeof(void *) > s->size)
        return errno = EINVAL, -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (atomic_load(&s->nr_slabs) != 0 || s->heaps) {
        rc = EBUSY;
    } else if (!(s->flags & SLAB_DEBUG_FLAGS)) {
        rc = -cache_compute_layout(s, false);
        if (rc == 0) {
            s->fp_offset = offset;
            s->flags |= SLAB_CACHE_FP_PLACED;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (rc)
        errno = rc;
    return -rc;
}

struct slab_cache *cache_list_head(void) { return cache_list; }

void cache_update_lfree_all(void)
{
    pthread_mutex_lock(&cache_list_lock);
    for (struct slab_cache *s = cache_list; s; s = s->next_cache)
        cache_update_lfree(s);
    pthread_mutex_unlock(&cache_list_lock);
}

struct slab_cache *slab_cache_find(const char *name)
{
    struct slab_cache *found = NULL;
    pthread_mutex_lock(&cache_list_lock);
    for (struct slab_cache *s = cache_list; s && name; s = s->next_cache)
        if (strcmp(s->name, name) == 0) {
            found = s;
            break;
        }
    pthread_mutex_unlock(&cache_list_lock);
    return found;
}

void slab_cache_foreach(void (*fn)(struct slab_cache *s, void *arg), void *arg)
{
    pthread_mutex_lock(&cache_list_lock);
    for (struct slab_cache *s = cache_list; s; s = s->next_cache)
        fn(s, arg);
    pthread_mutex_unlock(&cache_list_lock);
}

size_t slab_cache_object_size(const struct slab_cache *s) { return s->size; }
const char *slab_cache_name(const struct slab_cache *s) { return s->name; }

const char *slabdefrag_version(void)
{
#ifdef SLABDEFRAG_VERSION
    return SLABDEFRAG_VERSION;
#else
    return "0.1.0";
#endif
}

/* Fork (FORK_ORDER_CACHES): every live cache's lock, in list order.  The
 * FORK_ORDER_DEFRAG hook already holds cache_list_lock, so the list is stable. */
static void fork_prepare(void)
{
    for (struct slab_cache *s = cache_list; s; s = s->next_cache)
        pthread_mutex_lock(&s->lock);
}

static void fork_release(void)
{
    for (struct slab_cache *s = cache_list; s; s = s->next_cache)
        pthread_mutex_unlock(&s->lock);
}

static void fork_prepare_destroy(void) { pthread_rwlock_wrlock(&destroy_rw); }
static void fork_parent_destroy(void) { pthread_rwlock_unlock(&destroy_rw); }

/* Unlocked, then made afresh: readers of the parent that were waiting are
 * counted inside the rwlock, and they do not exist here. */
static void fork_child_destroy(void)
{
    pthread_rwlock_unlock(&destroy_rw);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&destroy_rw, &attr);
    pthread_rwlockattr_destroy(&attr);
}

__attribute__((constructor)) static void fork_register(void)
{
    slab_fork_register(fork_prepare_destroy, fork_parent_destroy, fork_child_destroy,
                       FORK_ORDER_DESTROY);
    slab_fork_register(fork_prepare, fork_release, fork_release, FORK_ORDER_CACHES);
}

/*
 * Pointer → cache, for layers that receive bare pointers (the malloc front end's
 * free and malloc_usable_size).  The segment map gives the slab size at obj, the
 * slab header at the aligned base names the cache; the header's magic and the
 * cache's slab size must agree, so a pointer into a released slab, a segment
 * reused for another slab size, or memory outside every segment gives NULL.
 * Whether obj is the start of an object is left to slab_free's own check.
 */
struct slab_cache *slab_cache_of(const void *obj)
{
    unsigned shift = os_segment_slab_shift(obj);
    if (!shift)
        return NULL;
    const struct slab *sl = (const struct slab *)((uintptr_t)obj & ~(((uintptr_t)1 << shift) - 1));
    if (atomic_load_explicit(&((struct slab *)sl)->magic, relaxed) != SLAB_MAGIC)
        return NULL;
    struct slab_cache *s = slab_owner_cache(sl);
    return s && s->slab_shift == shift ? s : NULL;
}

/*
 * The defrag hint for one object (slab_obj_defrag_hint in slab.h): cheap,
 * lock-free reads only.  The calling thread's active slab is being allocated
 * from (moving out of it would move into it); a slab OWNED by another thread's
 * heap may be its active slab; a FULL slab is full.  Otherwise the live count is
 * the owner view inuse minus the pending remote frees (relaxed reads: a stale
 * value only changes the answer for this one call).
 */
int slab_obj_defrag_hint(const void *obj, unsigned fill_percent)
{
    struct slab_cache *s = slab_cache_of(obj);
    if (!s)
        return 0;
    struct slab *sl = (struct slab *)((uintptr_t)obj & ~(uintptr_t)(slab_bytes(s) - 1));
    struct heap *h = tls_heaps[s->id];
    if (h && h->cache == s && h->active == sl)
        return 0;
    uint64_t x = atomic_load_explicit(&sl->xfree, relaxed);
    unsigned st = xf_state(x);
    if (st == SS_FULL || (st == SS_OWNED && atomic_load_explicit(&sl->owner, relaxed) != h))
        return 0;
    unsigned inuse = slab_inuse(sl), remote = xf_count(x);
    unsigned live = inuse > remote ? inuse - remote : 0;
    return (uint64_t)live * 100 < (uint64_t)s->objects * fill_percent;
}

/*
 * An object to move another one into (slab_alloc_for_move in slab.h).  The
 * calling thread's cached free objects (lfree) and its partial slabs are the
 * sparse slabs a compaction wants to empty, so when it holds any, its heap is
 * flushed first (everything goes to the cache's binned lists); the allocation
 * then comes from the active slab or, on refill, the fullest partial slab.
 */
void *slab_alloc_for_move(struct slab_cache *s)
{
    struct heap *h = tls_heaps[s->id];
    if (h && h->cache == s) {
        heap_enter_wait(h);
        bool sparse_cached = h->lfree != NULL || h->partial.nr != 0;
        heap_leave(h);
        if (sparse_cached)
            heap_flush_own(s);
    }
    return slab_alloc(s);
}
