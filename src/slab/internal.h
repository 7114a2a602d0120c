/*
 * slab/internal.h — the slab core's types, shared by the files of src/slab/.
 *
 * Glossary (see also ../../include/slabdefrag/slab.h):
 *   segment  4 MiB aligned region from mmap, cut into slabs of one size (os.c).
 *   slab     2^slab_shift bytes (4 KiB .. 256 KiB), aligned to its size; a header
 *            (struct slab) at its start, then objects_per_slab objects (slab.c).
 *   heap     one thread's state for one cache: its active slab and a short list of
 *            partial slabs it owns (heap.c).  SLUB calls this the per-cpu slab.
 *   owner    whoever may touch a slab's freelist and inuse with plain loads/stores:
 *            a heap (state OWNED), the cache lock (state LISTED), or nobody (FULL).
 *
 * Lock order of the slab layer (take a lock only while holding locks above it):
 *   1. fork.c table_lock          the fork hook table; held from prepare to
 *                                 parent/child, so it comes before everything
 *      (the control endpoint's srv.lock and serve_lock come here, before every
 *      lock below: its requests call the slab API with them held, and no slab
 *      code takes them; src/endpoint/internal.h)
 *   2. cache.c destroy_rw         read-held by each slab_cache_destroy
 *   3. cache->defrag_lock         one pass per cache; callbacks run under it
 *                                 (never under any lock below); writes of get,
 *                                 kick, move, move_arg (with cache->lock)
 *   4. cache.c cache_list_lock    cache list, id bitmap, destroyed-name ring,
 *                                 list generation; every cache's lfree_max update
 *   5. defrag_bg.c bg_lock        every cache's pins, dying, defrag_backoff; the
 *                                 background defragmenter's state
 *   6. heap.c heaps_lock          heap registration (with cache->lock), thread
 *                                 exit, thieves (heap_flush_idle), heap idle_mark
 *   7. cache->lock                partial bins, nr_partial, partial_inuse, empty,
 *                                 all_slabs, heaps (with heaps_lock), retired
 *                                 counters; freelist/inuse/links of LISTED slabs
 *   8. os.c pool[shift].lock      a pool's segments, their bitmaps and nr_free;
 *      then os.c spare_lock       the whole free segments
 *   9. meta.c meta_lock           metadata free lists and chunk cursor (leaf)
 *  10. purge.c purge_lock         the purge thread's sleep handshake (leaf)
 * Not locks but owner-only data: a heap's fields and the slabs it owns belong
 * to its thread inside heap_enter/heap_leave, or to a thief that holds heaps_lock
 * and the heap's stolen flag (heap.c).  A pass owns its frozen slabs (defrag.c).
 *
 * Slab states (the `state` bits of slab->xfree; transitions in heap.c/slab.c/free.c):
 *
 *     new ──► OWNED(h) ◄──────────── a heap takes it (cache lock) ──────┐
 *              │  partial ⇄ full on h's own lists (owner only)          │
 *              │                                                        │
 *              │ h gives it up: thread exit, a thief flushes an idle    │
 *              │ heap, the slab empties beyond what h keeps             │
 *              ├── no free object ──► FULL ── first free (any thread):  │
 *              │                        │     CAS FULL → OWNED(freer)   │
 *              └── free objects ────► LISTED (partial bin / empty) ─────┘
 *                                       │ empty for purge_ms, or shrink/defrag/reclaim
 *                                       ▼
 *                                  released to the OS (xfree = 0 first, under the lock)
 *
 *   OWNED  owner heap h: h's thread alone reads/writes freelist, inuse and list links
 *          (the active slab keeps its free objects in h->freelist instead), and so
 *          does a thief that holds h (heap.c: an idle live thread's heap can be
 *          flushed by the purge thread or a defrag pass).  A slab stays OWNED when
 *          it fills up: it moves to h->full and its delayed-free bits are armed, so
 *          the first remote free into it tells h (below).  A defrag pass owns the
 *          slabs it froze through a private heap (defrag.c).
 *   FULL   unowned and on no list; every object allocated as far as the last owner
 *          knew.  The free that finds it FULL claims it by CAS.
 *   LISTED on the cache's partial or empty list; cache->lock owns freelist and inuse.
 *   In every state other threads free by pushing onto the remote stack in xfree.
 *
 * The xfree word (one atomic 64-bit value) = delay | state | remote count | head:
 *   bits  0..19  index+1 of the first object on the remote-free stack (0: empty)
 *   bits 20..39  number of objects on the remote-free stack
 *   bits 40..41  state
 *   bits 42..43  delayed-free mode, meaningful in state OWNED only:
 *     DF_NORMAL   remote frees push onto the slab's stack;
 *     DF_ARMED    set when the slab went to its owner's full list, cleared only when
 *                 it leaves the heap (a slab back on h->partial may stay armed,
 *                 which just routes one more free this way): the next remote free CASes
 *                 ARMED → FREEING, pushes its object onto owner->delayed (a stack in
 *                 the heap), then sets NORMAL.  The owner drains owner->delayed on
 *                 its slow path; that free moves the slab back to h->partial.  So a
 *                 full slab becomes reachable for its owner without any atomic on
 *                 the owner's fast path.
 *     DF_FREEING  a remote freer is between those two steps.  Whoever disarms a
 *                 slab (owner or thief) waits until FREEING has passed, so the heap
 *                 a freer is pushing onto outlives the push (heaps are never freed
 *                 while one of their slabs is ARMED or FREEING).
 *   The delay bits change only by the transitions above (and end NORMAL when the
 *   state changes): taking the remote stack (slab_take_remote) keeps them, or a
 *   FREEING erased there would let a disarm pass by a freer still pushing.
 * Pushing onto a stack needs no ABA protection: only the owner pops, and it takes
 * the whole stack at once (exchange), never one element.
 *
 * Invariants (a slab with owner view `inuse` and remote count `r`):
 *   objects allocated to users = inuse - r - (its objects on the owner's delayed
 *   stack) - (its objects on the owner's lfree cache)
 *   objects_per_slab = inuse + |freelist|  (for the active slab: + h->nfree instead)
 *   0 <= r <= inuse
 *   ARMED or FREEING  =>  state OWNED by a thread's heap (never a pass's)
 *   a released slab has xfree == 0 (written under cache->lock before the lock is
 *   dropped), so a late reader that takes the lock and sees LISTED is looking at a
 *   live incarnation whose fields were all written before it became LISTED.
 */
#ifndef SLABDEFRAG_SLAB_INTERNAL_H
#define SLABDEFRAG_SLAB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slabdefrag/slab.h>

#include "common/test_hook.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define relaxed     memory_order_relaxed

#define SEGMENT_SHIFT   22 /* 4 MiB */
#define SEGMENT_SIZE    ((size_t)1 << SEGMENT_SHIFT)
#define SLAB_MIN_SHIFT  12 /* 4 KiB */
#define SLAB_MAX_SHIFT  18 /* 256 KiB */
#define SLAB_MAX_CACHES SLAB_MAX_LIVE_CACHES /* cache ids: heap table and id bitmap */
_Static_assert(SLAB_MAX_CACHES % 64 == 0, "the id bitmap (cache.c) has 64 ids per word");
#define SLAB_MAGIC      0x51ab5eedu
#define HEAP_EMPTY_KEEP 1 /* empty slabs a heap keeps on its partial list */
#define HEAP_LFREE_MAX 64 /* objects a heap caches from its non-active slabs (heap.c) */
#define HEAP_LFREE_OBJECT_MAX 1024 /* larger objects are never cached on lfree */
#define CACHE_EMPTY_RESERVE 2 /* empty slabs a cache keeps before returning them to the OS */
#define PARTIAL_BINS 8 /* partial slabs binned by fill, in eighths (slab.c) */

_Static_assert(SLAB_MOVE_DONT_KNOW + 1 == SLAB_MOVE_NR_RESULTS,
               "SLAB_MOVE_NR_RESULTS counts the slab_move_result values");

/* --- xfree word ---------------------------------------------------------- */
/* A slab's state (SS_: slab state; the buffer cache's ST_* are statistics). */
enum slab_state { SS_OWNED = 1, SS_FULL = 2, SS_LISTED = 3 };
enum slab_delay { DF_NORMAL = 0, DF_ARMED = 1, DF_FREEING = 2 };
#define XF_HEAD_BITS  20
#define XF_COUNT_BITS 20
#define XF_HEAD_MASK  ((UINT64_C(1) << XF_HEAD_BITS) - 1)
#define XF_COUNT_MASK ((UINT64_C(1) << XF_COUNT_BITS) - 1)
#define XF_STATE_SHIFT (XF_HEAD_BITS + XF_COUNT_BITS)
/* The most objects a slab can hold: the largest slab of the smallest stride
 * (an object of at least one pointer).  The remote stack's head holds an
 * index + 1 and its count up to every object, so both fields must fit it. */
#define SLAB_MAX_OBJECTS (((size_t)1 << SLAB_MAX_SHIFT) / sizeof(void *))
_Static_assert(SLAB_MAX_OBJECTS + 1 <= XF_HEAD_MASK, "xfree head field too narrow for a slab's objects");
_Static_assert(SLAB_MAX_OBJECTS <= XF_COUNT_MASK, "xfree count field too narrow for a slab's objects");

static inline unsigned xf_head(uint64_t x) { return (unsigned)(x & XF_HEAD_MASK); }
static inline unsigned xf_count(uint64_t x) { return (unsigned)((x >> XF_HEAD_BITS) & XF_COUNT_MASK); }
#define XF_DELAY_SHIFT (XF_STATE_SHIFT + 2)
#define XF_DELAY_MASK  (UINT64_C(3) << XF_DELAY_SHIFT)
static inline unsigned xf_state(uint64_t x) { return (unsigned)(x >> XF_STATE_SHIFT) & 3; }
static inline unsigned xf_delay(uint64_t x) { return (unsigned)(x >> XF_DELAY_SHIFT) & 3; }
static inline uint64_t xf_make(unsigned state, unsigned count, unsigned head)
{
    return ((uint64_t)state << XF_STATE_SHIFT) | ((uint64_t)count << XF_HEAD_BITS) | head;
}
static inline uint64_t xf_with_delay(uint64_t x, unsigned delay)
{
    return (x & ~XF_DELAY_MASK) | ((uint64_t)delay << XF_DELAY_SHIFT);
}

struct slab_cache;
struct heap;
struct segment;

/* Doubly linked list of slabs; `nr` counts its members. */
struct slab_list {
    struct slab *head;
    unsigned nr;
};

/* Which list a slab is on (slab->list), for validation and unlinking. */
enum slab_list_id { LIST_NONE, LIST_HEAP_PARTIAL, LIST_PARTIAL, LIST_EMPTY, LIST_FROZEN, LIST_HEAP_FULL };

/* Defrag marks on a slab (slab->defrag_flags, owned like freelist). */
#define SLAB_DF_NOMOVE 0x01 /* callbacks said NO: not a candidate until it empties */

struct slab {
    /* magic and cache are atomics (relaxed) because a late reader may look at a
     * released slab while slab_new re-initialises it for another cache (free.c's
     * empty check, validation of bad pointers); everyone else reads them after a
     * happens-before edge and could use plain loads. */
    _Atomic uint32_t magic;          /* SLAB_MAGIC while the slab belongs to a cache */
    uint32_t objects;                /* objects_per_slab */
    _Atomic(struct slab_cache *) cache;
    struct segment *seg;
    _Atomic uint64_t xfree;        /* state | remote count | remote head (see above) */
    void *freelist;                /* owner's free objects (not the active slab's) */
    _Atomic uint32_t inuse;        /* owner view; written by the owner only (relaxed) */
    uint8_t list;                  /* enum slab_list_id, written by the owner (of the slab or list) */
    uint8_t defrag_flags;          /* SLAB_DF_*, under cache->lock or the freezing pass */
    uint8_t futile_turns;          /* defrag turns after which the slab was still in use
                                      (LATER, DONT_KNOW, a kick that freed nothing) */
    uint8_t bin;                   /* partial bin while on the cache's partial lists */
    uint32_t binned_inuse;         /* inuse when binned (for cache->partial_inuse) */
    _Atomic(struct heap *) owner;  /* valid in state OWNED; written by the owner only */
    struct slab *next, *prev;      /* list links, owned with the list */
    struct slab *all_next, *all_prev; /* cache->all_slabs, under cache->lock */
    uint64_t empty_since_ns;       /* on cache->empty: when it got there (decay, slab.c) */
};

/*
 * One thread's state for one cache (heap.c).  The owner thread touches freelist,
 * nfree, active, partial and full inside heap_enter/heap_leave (in_op = 1); a
 * thief touches them only while it holds the heap (stolen = 1 and in_op seen 0),
 * see heap.c for the handshake; slab_cache_destroy clears them when it orphans
 * the heap (heap_orphan_all, under heaps_lock and cache->lock: no thread may be
 * using a cache that is being destroyed).  allocs/frees are written by the owner with relaxed
 * stores and read by stats.  delayed is pushed onto by other threads (CAS) and
 * taken by the owner (exchange); it sits on its own cache line.  Registered on
 * cache->heaps under heaps_lock and cache->lock (either suffices to read the list).
 */
struct heap {
    void *freelist;            /* active slab's free objects */
    unsigned nfree;            /* length of freelist */
    void *lfree;               /* objects freed by this thread into its other owned
                                  slabs, not yet given back to them (a thread cache) */
    unsigned nlfree;           /* length of lfree, <= HEAP_LFREE_MAX */
    _Atomic unsigned in_op;    /* owner: inside an allocator call on this heap */
    _Atomic unsigned stolen;   /* a thief holds (or is trying to hold) this heap */
    struct slab *active;
    struct slab_cache *cache;  /* NULL once the cache is destroyed (orphan) */
    struct slab_list partial;  /* OWNED slabs, not active, with free objects */
    struct slab_list full;     /* OWNED slabs without free objects, delayed free ARMED */
    _Atomic uint64_t allocs, frees;
    _Atomic unsigned pub_partial; /* partial.nr, published for stats */
    uint64_t idle_mark;        /* purge thread: allocs+frees at its last look (heaps_lock) */
    struct heap *next, *prev;  /* cache->heaps */
    _Alignas(64) _Atomic(void *) delayed; /* objects freed remotely into full slabs */
};

struct slab_cache {
    /* Read-only after creation (hot). */
    unsigned id;               /* index into each thread's heap table */
    unsigned flags;
    size_t size;               /* object size as created */
    size_t align;              /* effective alignment */
    bool fp_outside;           /* free pointer after the object (see cache.c) */
    size_t stride;             /* distance between objects */
    size_t fp_offset;          /* free pointer offset within an object slot */
    size_t first_offset;       /* offset of object 0 from the slab base */
    size_t objects_span;       /* objects * stride: offsets of objects lie below it */
    _Atomic unsigned lfree_max;/* objects a heap may cache on lfree: HEAP_LFREE_MAX for
                                  objects up to HEAP_LFREE_OBJECT_MAX bytes while decay
                                  is on, else 0 (cache_update_lfree, cache.c) */
    unsigned objects;          /* objects_per_slab */
    unsigned slab_shift;
    uint64_t stride_recip;     /* ceil(2^40 / stride): index = (off * recip) >> 40 */
    slab_ctor_fn ctor;
    uintptr_t secret;          /* free-pointer obfuscation key (getrandom) */

    pthread_mutex_t lock;      /* protects everything below, except the atomics */
    struct slab_list partial[PARTIAL_BINS]; /* LISTED slabs with free and allocated objects,
                                               binned by fill when listed (slab.c) */
    unsigned nr_partial;       /* sum of partial[].nr */
    uint64_t partial_inuse;    /* sum of inuse of partial slabs when they were binned */
    struct slab_list empty;    /* LISTED slabs with no object allocated, newest first;
                                  each handed back purge_ms after it got there */
    struct slab *all_slabs;    /* every slab of the cache (all_next/all_prev) */
    struct heap *heaps;        /* heaps of live threads */
    _Atomic uint64_t nr_slabs;
    uint64_t retired_allocs, retired_frees; /* from heaps that went away */

    /* Defragmentation (defrag.c); set under lock before the first slab exists
     * when the layout or poisoning depends on them (defrag_api.c), read by passes. */
    slab_get_fn get;
    slab_kick_fn kick;
    slab_move_fn move;
    void *move_arg;
    pthread_mutex_t defrag_lock;      /* one pass per cache at a time */
    unsigned defrag_backoff;          /* rounds to skip (defrag_bg.c, under its lock) */
    _Atomic unsigned defrag_fruitless; /* consecutive passes that freed nothing */
    unsigned pins;                    /* reclaimers using the cache (defrag_bg.c) */
    bool dying;                       /* destroy has begun (defrag_bg.c) */
    struct {
        _Atomic uint64_t passes, scanned, freed, kicked, moved, refused, bytes;
        _Atomic uint64_t move_results[SLAB_MOVE_NR_RESULTS];
    } dstat;

    struct slab_cache *next_cache, *prev_cache; /* global list, under cache_list_lock */
    char name[32];
};

/* A cache the engine can defragment: a move callback, or get and kick.  The
 * fields change only under defrag_lock and cache->lock (defrag_api.c); read
 * them under either, or from a pass. */
static inline bool cache_has_callbacks(const struct slab_cache *s)
{
    return s->move || (s->get && s->kick);
}

/* --- helpers shared across files ----------------------------------------- */

/* Unlink x from a doubly linked, NULL-terminated list whose first element is
 * *headp, linked through x->NEXT and x->PREV (the slab lists, all_slabs, the
 * cache list, cache->heaps, a pool's segments).  x's own links are left as
 * they were. */
#define DLIST_UNLINK(headp, x, NEXT, PREV)                 \
    do {                                                   \
        if ((x)->PREV)                                     \
            (x)->PREV->NEXT = (x)->NEXT;                   \
        else                                               \
            *(headp) = (x)->NEXT;                          \
        if ((x)->NEXT)                                     \
            (x)->NEXT->PREV = (x)->PREV;                   \
    } while (0)
static inline struct slab_cache *slab_owner_cache(const struct slab *sl)
{
    return atomic_load_explicit(&((struct slab *)sl)->cache, relaxed);
}
/* Move a slab the caller holds (cache->lock, or a pass that owns it) to `state`,
 * keeping its remote stack: remote freers CAS the same word, so this is a CAS
 * loop.  The delay bits end NORMAL: no caller's slab is armed (LISTED slabs
 * never are; cache_put_slab disarms first). */
static inline void slab_set_state(struct slab *sl, unsigned state)
{
    uint64_t old = atomic_load(&sl->xfree);
    while (!atomic_compare_exchange_weak(&sl->xfree, &old,
                                         xf_make(state, xf_count(old), xf_head(old))))
        ;
}

static inline bool slab_is_live_of(const struct slab *sl, const struct slab_cache *s)
{
    return atomic_load_explicit(&((struct slab *)sl)->magic, relaxed) == SLAB_MAGIC &&
           slab_owner_cache(sl) == s;
}
static inline size_t slab_bytes(const struct slab_cache *s) { return (size_t)1 << s->slab_shift; }

static inline void *slab_obj(const struct slab_cache *s, const struct slab *sl, unsigned i)
{
    return (char *)sl + s->first_offset + (size_t)i * s->stride;
}

static inline unsigned slab_index(const struct slab_cache *s, const struct slab *sl, const void *obj)
{
    uint64_t off = (uint64_t)((const char *)obj - (const char *)sl - s->first_offset);
    return (unsigned)((off * s->stride_recip) >> 40);
}

/*
 * Free-pointer access: the link lives at fp_offset inside the object's slot.
 * Hardening (as Linux's CONFIG_SLAB_FREELIST_HARDENED): the stored value is
 * next ^ cache secret ^ byte-swapped address of the link, so a leaked or
 * overwritten link is useless without the secret, and a forged one decodes to a
 * pointer outside the slab, which every walk of a free list catches before
 * following it (fp_next_in_slab, fp_next_cross below).
 * Build with -DSLABDEFRAG_NO_FREELIST_HARDENING to measure its cost.
 */
static inline uintptr_t fp_key(const struct slab_cache *s, const void *slot)
{
#ifdef SLABDEFRAG_NO_FREELIST_HARDENING
    (void)s, (void)slot;
    return 0;
#else
    return s->secret ^ __builtin_bswap64((uint64_t)(uintptr_t)slot);
#endif
}
static inline void *fp_get(const struct slab_cache *s, const void *obj)
{
    const char *slot = (const char *)obj + s->fp_offset;
    uintptr_t v;
    __builtin_memcpy(&v, slot, sizeof v);
    return (void *)(v ^ fp_key(s, slot));
}
static inline void fp_set(const struct slab_cache *s, void *obj, void *next)
{
    char *slot = (char *)obj + s->fp_offset;
    uintptr_t v = (uintptr_t)next ^ fp_key(s, slot);
    __builtin_memcpy(slot, &v, sizeof v);
}

static inline unsigned slab_inuse(struct slab *sl) { return atomic_load_explicit(&sl->inuse, relaxed); }
static inline void slab_set_inuse(struct slab *sl, unsigned v) { atomic_store_explicit(&sl->inuse, v, relaxed); }
static inline void counter_inc(_Atomic uint64_t *c)
{   /* single writer: no read-modify-write needed */
    atomic_store_explicit(c, atomic_load_explicit(c, relaxed) + 1, relaxed);
}

static inline void heap_publish(struct heap *h)
{
    atomic_store_explicit(&h->pub_partial, h->partial.nr, relaxed);
}

/*
 * The owner's side of the heap handshake (heap.c, section 2).  Every owner
 * operation on its heap runs between heap_enter and heap_leave; heap_enter
 * fails while a thief holds the heap.  The store of in_op and the load of
 * stolen need a store-load barrier: membarrier() on the thief's side provides
 * it, so the owner pays two plain stores and a load.  ThreadSanitizer does not
 * know membarrier: there both are seq_cst (a correct, slower Dekker).
 */
#if defined(__SANITIZE_THREAD__)
#define HEAP_SC_HANDSHAKE 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HEAP_SC_HANDSHAKE 1
#endif
#endif
static inline bool heap_enter(struct heap *h)
{
#ifdef HEAP_SC_HANDSHAKE
    atomic_store(&h->in_op, 1);
    return likely(!atomic_load(&h->stolen));
#else
    atomic_store_explicit(&h->in_op, 1, relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    return likely(!atomic_load_explicit(&h->stolen, memory_order_acquire));
#endif
}
static inline void heap_leave(struct heap *h)
{
    atomic_store_explicit(&h->in_op, 0, memory_order_release);
}
void heap_wait_thief(struct heap *h);
/* Slow paths: enter, waiting for a thief that holds the heap. */
static inline void heap_enter_wait(struct heap *h)
{
    if (!heap_enter(h))
        heap_wait_thief(h);
}

/* list.c-like helpers (slab.c) */
void slab_list_push(struct slab_list *l, struct slab *sl, enum slab_list_id id);
void slab_list_remove(struct slab_list *l, struct slab *sl);
struct slab *slab_list_pop(struct slab_list *l);

/* os.c: segments and the segment map */
void *os_slab_alloc(unsigned shift, struct segment **seg_out);
void os_slab_free(void *base, unsigned shift, struct segment *seg);
struct os_slab_ref {
    void *base;
    struct segment *seg;
};
void os_slab_free_batch(struct os_slab_ref *refs, size_t n, unsigned shift);
/* The segment map: one byte per possible segment of the 47-bit user address
 * space (32 MiB of virtual memory, resident only where segments exist), the slab
 * shift of the segment there or 0.  Inline: every slab_free looks it up. */
#define ADDRESS_BITS 47
#define SEGMAP_ENTRIES ((size_t)1 << (ADDRESS_BITS - SEGMENT_SHIFT))
extern _Atomic uint8_t segmap[SEGMAP_ENTRIES];
static inline unsigned os_segment_slab_shift(const void *p) /* 0: not in any segment */
{
    uintptr_t a = (uintptr_t)p;
    if (unlikely(a >> ADDRESS_BITS))
        return 0;
    return atomic_load_explicit(&segmap[a >> SEGMENT_SHIFT], relaxed);
}

/* slab.c: slab lifecycle, cache lists (callers hold cache->lock where said) */
struct slab *slab_new(struct slab_cache *s);                    /* no lock held */
void slab_release(struct slab_cache *s, struct slab *sl);        /* no lock held; slab off all lists but all_slabs */
void *slab_take_remote(struct slab *sl, unsigned *count);        /* owner: take remote stack */
void slab_merge_remote(struct slab_cache *s, struct slab *sl);   /* owner: remote → freelist */
struct slab *cache_take_partial(struct slab_cache *s, struct heap *h); /* LISTED → OWNED(h) */
void cache_put_slab(struct slab_cache *s, struct slab *sl);      /* owner gives up sl: → LISTED/FULL/released */
long cache_release_empty(struct slab_cache *s, unsigned keep);   /* cache->lock held; bytes */
long cache_release_aged(struct slab_cache *s, uint64_t now_ns);  /* no lock held; bytes */
void slab_disarm(struct slab *sl);                               /* owner/thief: ARMED → NORMAL */
unsigned empty_reserve(const struct slab_cache *s);             /* empty slabs a cache keeps */
void cache_settle_listed(struct slab_cache *s, struct slab *sl); /* cache->lock held */
void cache_listed_maybe_empty(struct slab_cache *s, struct slab *sl); /* no lock held */
void cache_settle_all(struct slab_cache *s, bool forget_refusals); /* cache->lock held */
void cache_link_slab(struct slab_cache *s, struct slab *sl);     /* cache->lock held */
void cache_unlink_slab(struct slab_cache *s, struct slab *sl);   /* cache->lock held */
void cache_partial_add(struct slab_cache *s, struct slab *sl);   /* cache->lock held */
void cache_partial_remove(struct slab_cache *s, struct slab *sl);/* cache->lock held */
struct slab *cache_partial_fullest(struct slab_cache *s);        /* cache->lock held; not removed */

/* Test hooks (common/test_hook.h: only in the testing build).  free.c: a
 * remote free brought a LISTED slab's remote count up to its inuse, before the
 * re-check under the cache lock.  slab.c: an empty slab detached from its
 * cache (xfree zeroed, no lock held), before and after it goes back to the
 * OS pool. */
#ifdef SLABDEFRAG_TESTING
struct slab_free_test_hooks {
    void (*before_empty_check)(struct slab_cache *s, struct slab *sl, void *arg);
    /* after the ARMED -> FREEING CAS, before slab->owner is read */
    void (*in_delayed_push)(struct slab_cache *s, struct slab *sl, void *arg);
    void *arg;
};
void slab_free_set_test_hooks(const struct slab_free_test_hooks *hooks); /* NULL: none */
struct slab_release_test_hooks {
    void (*before_release)(struct slab_cache *s, struct slab *sl, void *arg);
    void (*after_release)(struct slab_cache *s, struct slab *sl, void *arg);
    void *arg;
};
void slab_release_set_test_hooks(const struct slab_release_test_hooks *hooks); /* NULL: none */
#endif

/* heap.c */
extern __thread struct heap *tls_heaps[SLAB_MAX_CACHES] __attribute__((tls_model("initial-exec")));
struct heap *heap_get(struct slab_cache *s);          /* this thread's heap, created on demand */
bool heap_refill(struct slab_cache *s, struct heap *h); /* owner, entered: h->freelist non-empty */
void heap_free_local(struct slab_cache *s, struct heap *h, struct slab *sl, void *obj); /* owner, sl OWNED by h */
void heap_lfree_flush(struct slab_cache *s, struct heap *h);  /* owner/thief: lfree back into its slabs */
void heap_flush(struct heap *h);                      /* owner or thief: give every slab back */
void heap_flush_own(struct slab_cache *s);            /* the calling thread's heap of s, if any */
unsigned heap_flush_idle(struct slab_cache *s, bool only_idle); /* thief: flush other threads' heaps */
void heap_orphan_all(struct slab_cache *s);           /* destroy: detach live threads' heaps */

void heap_stats(struct slab_cache *s, uint64_t *allocs, uint64_t *frees); /* cache->lock held */
unsigned heap_partial_slabs(struct slab_cache *s);   /* cache->lock held */

/* free.c */
void slab_free_unowned(struct slab_cache *s, struct heap *h, struct slab *sl, void *obj, unsigned idx);
/* "corrupted free pointer in free object <obj> (decodes to <next>, <where>)" */
_Noreturn void slab_report_corrupt_freelist(const struct slab_cache *s, const void *obj, const void *next,
                                            const char *where);
_Noreturn void slab_report_bad_free(const struct slab_cache *s, const void *obj, const char *what,
                                    const char *detail);

/*
 * Decoding a free pointer: every link is checked before anything dereferences
 * what it decodes to, so a link overwritten after its object was freed (or by
 * an overflow) ends in a report naming the object, not in a load from a wild
 * address.
 *   fp_next_in_slab  a slab's own free list (the active slab's, a slab's
 *                    freelist, its remote stack): the next object lies in the
 *                    same slab (one xor and shift).
 *   fp_next_cross    a list that spans slabs (a heap's lfree and delayed
 *                    stacks: their pops and walks, alloc.c and heap.c): the
 *                    next object lies in slab memory of the cache's slab size,
 *                    by the segment map, without a load from the address
 *                    itself.  Slab memory is never unmapped (os.c), so what a
 *                    walk then reads there cannot fault.  The check is cheap:
 *                    a forged link into another slab of that size is left to
 *                    the later checks (double free, slab_free's), as on a
 *                    slab's own lists.
 */
static inline void *fp_next_in_slab(const struct slab_cache *s, const void *obj)
{
    void *next = fp_get(s, obj);
    if (unlikely(((uintptr_t)next ^ (uintptr_t)obj) >> s->slab_shift) && next)
        slab_report_corrupt_freelist(s, obj, next, "outside its slab");
    return next;
}

static inline void *fp_next_cross(const struct slab_cache *s, const void *obj)
{
    void *next = fp_get(s, obj);
    /* The map indexed modulo its size (no compare on the alloc path that pops
     * lfree): a link outside the address space lands on an entry that is
     * almost surely 0 or another size, and is caught as well. */
    uintptr_t seg = ((uintptr_t)next >> SEGMENT_SHIFT) & (SEGMAP_ENTRIES - 1);
    if (unlikely(next && atomic_load_explicit(&segmap[seg], relaxed) != s->slab_shift))
        slab_report_corrupt_freelist(s, obj, next, "outside its cache's slab memory");
    return next;
}

/* obj is the start of one of sl's object slots (slab_free's alignment check). */
static inline bool slab_is_slot(const struct slab_cache *s, const struct slab *sl, const void *obj)
{
    uintptr_t off = (uintptr_t)obj - (uintptr_t)sl - s->first_offset;
    return off < s->objects_span && (uintptr_t)slab_index(s, sl, obj) * s->stride == off;
}

/* cache.c */
extern pthread_mutex_t cache_list_lock;
int cache_compute_layout(struct slab_cache *s, bool fp_outside);
struct slab_cache *cache_list_head(void); /* cache_list_lock held */
void cache_update_lfree_all(void);        /* after the purge delay changed */

/* meta.c: the core's own zeroed allocator (never libc malloc: see meta.c) */
void *meta_alloc(size_t size);
void meta_free(void *p, size_t size);

/* purge.c: decay of empty slabs, and flushing the heaps of idle threads */
extern _Atomic unsigned purge_delay_ms;
void purge_start_once(void);   /* first slab of the process: start the purge thread */
uint64_t purge_now_ns(void);

/* defrag_bg.c */
/* destroy: mark s dying (no new pins) and wait until no reclaimer uses it */
void slab_defrag_mark_dying_and_wait(struct slab_cache *s);

#endif
