/*
 * <slabdefrag/slab.h> — object caches with targeted defragmentation.
 *
 * A slab cache hands out fixed-size objects carved from slabs: aligned blocks of
 * memory (4 KiB .. 256 KiB) that each hold objects_per_slab objects of one cache.
 * Each thread allocates from its own active slab without atomic read-modify-write
 * operations; frees from other threads go to a per-slab lock-free list and never
 * block the owning thread.  Empty slabs beyond a small per-cache reserve are handed
 * back to the OS at once (MADV_DONTNEED: RSS drops), without a background thread.
 *
 * Defragmentation empties sparse slabs by asking the cache's owner to evict
 * (get/kick, Lameter's protocol) or relocate (move, illumos kmem_cache_set_move)
 * the objects that keep them alive; see the section "Defragmentation" below.
 *
 * Errors: functions that can fail return NULL or a negative errno value and set
 * errno.  Every function is thread-safe unless its comment says otherwise.
 *
 * fork(): the library holds its locks across fork() (pthread_atfork), so a child
 * forked while other threads are inside it can use it; in the child the stats
 * endpoint and the background defragmenter are not running (slab_defrag_start
 * and slab_stats_serve_start start new ones), and passes that were running in
 * the parent have ended.  A move/get/kick callback must not wait for a lock that
 * a thread holds while it calls fork().
 *
 * Environment (SLABDEFRAG_DEBUG, SLABDEFRAG_STATS, SLABDEFRAG_STATS_SOCKET,
 * XDG_RUNTIME_DIR) is read with secure_getenv: set-user/group-ID programs
 * ignore it.
 *
 * Misuse that would touch freed memory aborts with a message naming the object,
 * e.g. destroying a cache twice ("cache 'NAME': slab_cache_destroy(PTR): cache
 * already destroyed").
 */
#ifndef SLABDEFRAG_SLAB_H
#define SLABDEFRAG_SLAB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct slab_cache; /* opaque */
typedef void (*slab_ctor_fn)(void *obj);

/* Flags for slab_cache_create(). */
#define SLAB_HWCACHE_ALIGN 0x0001u /* objects start on cache-line (64 B) boundaries */
#define SLAB_POISON        0x0002u /* debug: poison free objects, check on alloc
                                      (not with a ctor or defrag callbacks) */
#define SLAB_RED_ZONE      0x0004u /* debug: guard bytes around each object */
#define SLAB_STORE_USER    0x0008u /* debug: remember alloc/free call sites */
#define SLAB_CONSISTENCY   0x0010u /* debug: full consistency checks on every free */
#define SLAB_NO_RESERVE    0x0100u /* hand every empty slab back to the OS at once */
#define SLAB_RANDOM_ORDER  0x0200u /* hardening: new slabs hand out objects in random order */
#define SLAB_VALID_FLAGS   0x031fu

/*
 * Create a cache of objects of `size` bytes (1 .. SLAB_MAX_OBJECT_SIZE).
 * `name` is copied (at most 31 characters are kept); `align` 0 means pointer
 * alignment, otherwise a power of two up to 4096.  `ctor`, when not NULL, runs
 * once per object when its slab is created; objects keep their constructed state
 * across slab_free() and later slab_alloc() (type-stable memory).
 * Returns NULL with errno EINVAL (bad size/align, or a flag not defined here) or
 * ENOMEM (no memory, or SLAB_MAX_LIVE_CACHES caches already exist).
 * Slab size: the smallest power of two from 4 KiB to 256 KiB holding at least 8
 * objects with at most 1/8 wasted; 256 KiB (7 objects of 32 KiB) otherwise.
 */
#define SLAB_MAX_LIVE_CACHES 512
#define SLAB_MAX_OBJECT_SIZE (32u * 1024u)
struct slab_cache *slab_cache_create(const char *name, size_t size, size_t align,
                                     unsigned flags, slab_ctor_fn ctor);

/*
 * Destroy a cache.  No thread may use the cache during or after the call.
 * Objects still allocated are reported on stderr ("slabdefrag: cache 'x':
 * N objects still allocated") and their memory is released with the cache.
 */
void slab_cache_destroy(struct slab_cache *s);

/*
 * Place the allocator's free pointer inside the object, at byte `offset`
 * (a multiple of 8, offset + 8 <= size), as Linux's freeptr_offset does.  By
 * default a cache with a constructor or defrag callbacks keeps the free pointer
 * after the object (8 more bytes per object, or a whole alignment step) so that
 * a free object keeps every byte of its constructed, type-stable state; with
 * this call only the 8 bytes at `offset` are the allocator's while the object is
 * free, and get/kick/move callbacks may still read every other field of a free
 * object.  The owner promises never to rely on those 8 bytes of a free object.
 * Debug caches (SLAB_POISON, SLAB_RED_ZONE, ...) keep the pointer outside.
 * Call it before the first slab_alloc(): 0, or -EINVAL (NULL, misaligned or
 * out-of-range offset) or -EBUSY (the cache already has slabs), errno set.
 */
int slab_cache_set_freeptr_offset(struct slab_cache *s, size_t offset);

/* Allocate one object.  NULL with errno ENOMEM when the OS refuses memory. */
void *slab_alloc(struct slab_cache *s);

/*
 * Free an object of `s`.  slab_free(s, NULL) does nothing.  A pointer that is
 * not an object of `s` (outside any slab, another cache's object, misaligned)
 * or a detected double free aborts the process with a message on stderr that
 * names the cache, the pointer and what was wrong.
 */
void slab_free(struct slab_cache *s, void *obj);

/* Object size, and the cache's name, as given to slab_cache_create(). */
size_t slab_cache_object_size(const struct slab_cache *s);
const char *slab_cache_name(const struct slab_cache *s);

/*
 * Decay.  An empty slab is kept for reuse for a while, then handed back to the
 * OS (MADV_DONTNEED: RSS drops) by a purge thread that the library starts when
 * it creates its first slab — also in a program that makes no allocator call
 * after its last free.  The purge thread also gives back the slabs of threads
 * that made no call on a cache for that long.  The delay is
 * SLABDEFRAG_PURGE_MS (milliseconds) in the environment, or the value set here
 * (which wins); default 500.  0 hands every empty slab the cache holds, beyond
 * a reserve of two, back at once; slabs that a live thread owns (it allocated
 * from them) and other threads emptied go back when that thread next needs a
 * slab, or when the purge thread finds it idle (about a second).  slab_cache_shrink, slab_cache_defrag, slab_reclaim
 * and memory pressure release empty slabs at once whatever the delay.
 * slab_set_purge_delay: 0, or -EINVAL (errno EINVAL) above one hour.
 */
int slab_set_purge_delay(unsigned ms);
unsigned slab_get_purge_delay(void);

/*
 * The cache whose live slab contains obj, or NULL when obj lies in no live slab
 * (memory from another allocator, a released slab).  Lock-free and cheap (one
 * table load and one header load); it does not check that obj is the start of an
 * object: slab_free does.  For layers that receive bare pointers, such as the
 * malloc front end.
 */
struct slab_cache *slab_cache_of(const void *obj);

/*
 * Free obj into the cache whose slab holds it, as slab_free(slab_cache_of(obj),
 * obj) but validating once (kfree-style: for callers that do not know the
 * cache, such as a malloc front end).  Returns 1 when obj was a slab object and
 * is now free (a misaligned pointer or a detected double free aborts as in
 * slab_free), 0 when obj is not inside a live slab (nothing is done).
 */
int slab_free_object(void *obj);

/*
 * 1 when obj lies in a slab that a defrag pass would rather empty: fewer than
 * fill_percent of its objects allocated, not the calling thread's active slab
 * (the one its slab_alloc() fills) and not owned by another thread; 0 otherwise,
 * also for pointers in no live slab.  Lock-free relaxed reads: the answer may be
 * stale by concurrent frees.  Used by slab_malloc_defrag_hint().
 */
int slab_obj_defrag_hint(const void *obj, unsigned fill_percent);

/*
 * slab_alloc() for relocating an object of s (the malloc front end's
 * slab_malloc_defrag_move): the calling thread first hands the cache the free
 * objects and partial slabs it keeps besides its active slab, so the object
 * comes from its active slab or the fullest partial slab, never from a sparse
 * slab the caller is emptying.  NULL with errno ENOMEM.
 */
void *slab_alloc_for_move(struct slab_cache *s);

/* The library's version string, e.g. "0.1.0". */
const char *slabdefrag_version(void);

/* ------------------------------------------------------------------------
 * Statistics
 *
 * Counters are exact whenever no thread holds slabs of the cache: after the
 * threads exit, after slab_cache_shrink() (which also takes over the heaps of
 * threads that are not inside an allocator call on the cache at that moment),
 * or once the purge thread has flushed idle threads' heaps.  Otherwise they may
 * lag by a thread's cached objects.
 */
#define SLAB_MOVE_NR_RESULTS 5 /* the values of enum slab_move_result (below) */

struct slab_cache_stats {
    const char *name;
    size_t object_size, slab_size;
    unsigned objects_per_slab;
    uint64_t objects_active, objects_total; /* allocated / capacity of existing slabs */
    uint64_t slabs, slabs_partial, slabs_empty;
    uint64_t bytes_mapped; /* slab memory currently held from the OS */
    uint64_t allocs, frees;
    uint64_t defrag_passes, defrag_slabs_scanned, defrag_slabs_freed;
    uint64_t defrag_objects_kicked, defrag_objects_moved, defrag_objects_refused;
    uint64_t defrag_bytes_released;
    /* Per move-callback return code (index: enum slab_move_result). */
    uint64_t move_results[SLAB_MOVE_NR_RESULTS];
};

/* Fill *out.  0, or -EINVAL for a NULL argument.  out->name stays valid while s lives. */
int slab_cache_get_stats(struct slab_cache *s, struct slab_cache_stats *out);

/*
 * Per-slab fill histogram: counts[i] = number of slabs whose fill (allocated /
 * objects_per_slab) lies in [i/nbuckets, (i+1)/nbuckets), the last bucket
 * including 100%.  Slabs owned by live threads count with their owner's view.
 * Returns the number of slabs counted, or -EINVAL.
 */
long slab_cache_fill_histogram(struct slab_cache *s, uint64_t *counts, unsigned nbuckets);

/* The live cache with this name, or NULL. */
struct slab_cache *slab_cache_find(const char *name);

/*
 * Write every cache's statistics: a slabinfo-like table (json == 0), or
 * {"caches": [{"name": ..., <every field of struct slab_cache_stats>}, ...]}.
 */
void slab_info_write(FILE *out, int json);

/* Call fn for every live cache (under the global cache-list lock: fn must not
 * create or destroy caches). */
void slab_cache_foreach(void (*fn)(struct slab_cache *s, void *arg), void *arg);

/* Check every structure of the cache (lists, counts, free lists); 0 or -EUCLEAN,
 * with the first problem on stderr.  Expensive: for tests. */
int slab_cache_validate(struct slab_cache *s);

/* ------------------------------------------------------------------------
 * Defragmentation
 */

/*
 * How a pass works (both protocols).  A pass picks candidate slabs: partial slabs
 * of the cache whose fill (allocated / objects_per_slab) is below the pass's
 * threshold, emptiest first, skipping slabs marked unmovable.  It freezes them:
 * a frozen slab is off the partial lists, gets no allocations, and is not
 * released or unmapped until the pass ends, so its objects' memory stays mapped
 * and type-stable (the allocator never writes inside an object of a cache that
 * has callbacks: its free pointer lives outside the object).  Frees into a
 * frozen slab (from any thread) are accepted and accounted.  Callbacks for one
 * cache run one at a time, on the thread that triggered the pass (or the
 * background defragmenter's thread), with no allocator lock held: they may call
 * slab_alloc and slab_free on any cache, but must not destroy the cache or start
 * another pass on it (such a nested trigger returns -EBUSY).
 * After the callbacks, each frozen slab whose objects are all gone is handed back
 * to the OS; the others return to the partial lists.  A slab whose callbacks
 * achieved nothing 3 times (LATER, or a kick that freed nothing) or answered NO is
 * marked unmovable: no pass asks about it again until it empties, or
 * slab_cache_shrink() clears the mark.  A cache whose passes keep freeing nothing
 * is skipped by slab_reclaim and the background defragmenter for exponentially
 * more rounds (1, 2, 4 .. 64), so refusing callbacks cost no CPU.
 */

/*
 * Evict protocol (Lameter's get/kick).
 * `get(s, nr, objs)` runs with the slab frozen and no allocator lock held.  Every
 * pointer in objs was allocated when the vector was built, but an object may be
 * freed concurrently: get must detect that (e.g. get-unless-zero on a refcount)
 * and set its entry to NULL.  It may replace entries with other pointers of its
 * own (e.g. the page that holds the object); the allocator does not look at them.
 * Its return value is passed to kick as private_data.
 * `kick(s, nr, objs, private_data)` runs with no allocator lock held and frees (or
 * rebuilds elsewhere and frees) what it can, dropping the references get took.
 * Success is judged by the slab's in-use count afterwards.
 * Set the callbacks before the first slab_alloc of a cache without a ctor
 * (-EBUSY otherwise, because its free pointer overlays object memory, and a
 * poisoned cache stops poisoning so that get reads what the user left in a
 * free object); a ctor cache may set them at any time.  Returns 0, -EINVAL (NULL argument) or -EBUSY.
 */
typedef void *(*slab_get_fn)(struct slab_cache *s, int nr, void **objs);
typedef void (*slab_kick_fn)(struct slab_cache *s, int nr, void **objs, void *private_data);
int slab_cache_setup_defrag(struct slab_cache *s, slab_get_fn get, slab_kick_fn kick);

/*
 * Move protocol — relocation, illumos kmem move semantics.
 * `move(old, new, size, arg)` gets `new`: an allocated, constructed object taken
 * from the fullest partial slab of the cache, or from a slab that an earlier
 * step of the same pass has already emptied — never from a slab still being
 * vacated — or from a new slab when there is neither.  The owner copies old to
 * new and re-points every reference under its own locks, and answers:
 */
enum slab_move_result {
    SLAB_MOVE_YES,       /* moved: allocator frees old */
    SLAB_MOVE_NO,        /* never movable: allocator frees new, stops asking for this slab */
    SLAB_MOVE_LATER,     /* busy now: allocator frees new, may retry (a few times) */
    SLAB_MOVE_DONT_NEED, /* owner no longer needs old: allocator frees both */
    SLAB_MOVE_DONT_KNOW, /* old is not a live object (being freed/allocated): frees new */
};
/* The owner must not free old or new itself.  `size` is the object size.  If
 * both get/kick and move are set, move is used.  Same timing rule and returns as
 * slab_cache_setup_defrag. */
typedef enum slab_move_result (*slab_move_fn)(void *old_obj, void *new_obj, size_t size,
                                               void *arg);
int slab_cache_set_move(struct slab_cache *s, slab_move_fn move, void *arg);

/*
 * Triggers.  Each returns bytes handed back to the OS (>= 0) or a negative errno.
 * Every slab that is not being allocated from at that moment takes part: the
 * calling thread's slabs of the cache, and the slabs of every other thread that
 * is not inside an allocator call on the cache at that moment (they go back to
 * the cache's lists; the thread takes a slab from there on its next call).
 * (On a kernel without membarrier(2) no thread's slabs can be taken from it:
 * other live threads then keep theirs until they exit.)
 *   slab_cache_defrag(s, fill%)  one pass over slabs below fill% (0..100; 100: every
 *                                partial slab; over 100: -EINVAL); also releases empty slabs.
 *   slab_cache_shrink(s)         releases every empty slab, clears unmovable marks,
 *                                and defragments every partial slab (fill 100%).
 *   slab_reclaim(bytes)          all caches, most reclaimable first (empty slabs,
 *                                then sparse slabs of caches with callbacks), until
 *                                `bytes` are released; SIZE_MAX: all that can be.
 * -EINVAL for a NULL cache; -EBUSY from inside a callback of the same cache.
 */
long slab_cache_defrag(struct slab_cache *s, unsigned fill_percent);
long slab_cache_shrink(struct slab_cache *s);
long slab_reclaim(size_t target_bytes);

/* Background defragmenter policy; zero fields take the defaults shown. */
struct slab_defrag_policy {
    unsigned interval_ms;        /* how often caches are examined (default 100) */
    unsigned frag_percent;       /* a cache is worth a pass when free objects in partial
                                    slabs exceed this % of its capacity (default 12) */
    size_t min_waste_bytes;      /* ... and at least this many bytes are wasted (256 KiB) */
    unsigned slab_fill_percent;  /* slabs below this fill are candidates (default 30) */
    unsigned cpu_budget_percent; /* share of one CPU the defragmenter may use (default 5) */
    unsigned max_step_us;        /* longest single step (default 1000) */
    int use_psi;                 /* 1: also wake on /proc/pressure/memory stalls */
};

/*
 * Start the background defragmenter thread (one per process).  It examines every
 * cache each interval and defragments those over the thresholds in steps of at
 * most max_step_us, sleeping between steps so that its CPU time stays within
 * cpu_budget_percent of wall time.  With use_psi, a memory-pressure trigger on
 * /proc/pressure/memory (where the kernel offers it; otherwise ignored) also wakes
 * it.  0, -EALREADY if running, -EINVAL for a bad policy, or -errno.
 */
int slab_defrag_start(const struct slab_defrag_policy *policy); /* NULL = defaults */
void slab_defrag_stop(void);

/* What the background defragmenter did since it was started. */
struct slab_defrag_status {
    int running;
    int psi_active;             /* a PSI trigger is armed */
    uint64_t rounds;            /* intervals examined */
    uint64_t steps;             /* work steps run */
    uint64_t cpu_ns;            /* thread CPU time spent in steps */
    uint64_t wall_ns;           /* wall time since start */
    uint64_t longest_step_ns;      /* CPU time of the longest step */
    uint64_t longest_step_wall_ns; /* wall time of the longest step (includes preemption) */
    uint64_t bytes_released;
    uint64_t psi_wakeups;
};
int slab_defrag_get_status(struct slab_defrag_status *out);

#ifdef __cplusplus
}
#endif
#endif /* SLABDEFRAG_SLAB_H */
