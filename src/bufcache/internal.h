/*
 * bufcache/internal.h: the buffer cache's types, shared by its source files.
 *
 * Glossary.  bcache: one cache (memory limit, flusher thread, page array).
 * map (struct bdev_map): one open device or image file, shared by the handles
 * (struct bdev) that opened it.  page (struct bc_page): the descriptor of one
 * 4 KiB frame of cached device data.  frame: the 4 KiB of data, at
 * bc->frames + 4096 * (page - bc->pages).  ring: a page's buffer heads, one per
 * block, linked by b_this_page in block order, headed by page->buffers.
 *
 * 1. Objects and states
 *    page: FREE (refcount 0, map NULL, on a free list, frame resident "warm" or
 *    released "cold") -> CACHED (refcount >= 1, in the index; with or without a
 *    ring; clean/dirty; maybe under writeback) -> FROZEN (refcount forced 1+n -> 0
 *    by evict or ring release while they work, page lock held) -> FREE or back
 *    to CACHED.  Descriptors live in one array mapped at bcache_create and
 *    unmapped at bcache_destroy: they are type-stable, so a stale pointer to a
 *    page may always be read, and get-unless-zero on it is safe.
 *    buffer head: allocated from the "buffer_head" slab cache when a ring is
 *    built, attached (b_page set) until the ring is released, then freed.
 * 2. Locking.  Lock order of the buffer cache (take a lock only while holding
 *    locks above it; slab_alloc/slab_free of buffer heads happen under these,
 *    so the slab layer's allocation locks, src/slab/internal.h, come after):
 *     1. registry.c registry_lock  the live-cache array (leaf in normal use;
 *                                  first in the fork hooks)
 *     2. bh.c bh_cache_lock        the global "buffer_head" slab cache pointer
 *                                  and its user count (create/destroy of it)
 *     3. bc->pass_lock             one flusher pass (writeback.c flusher_pass);
 *                                  bdev_close takes and drops it to wait out a
 *                                  pass that picked its map; bcache_validate
 *                                  holds it to keep the flusher out
 *     4. bc->lock                  bc->maps, next_map_id, map->handles, map
 *                                  ->next, map->closing changes.  Taken alone or
 *                                  with pass_lock held (writeback.c flusher_pass,
 *                                  cache.c bcache_validate); never with a page or
 *                                  block lock held
 *     5. registry.c handles_lock   the live-handle tree and the closed-handle
 *                                  ring; taken under bc->lock when a handle is
 *                                  made, alone otherwise
 *     6. bh->b_state BH_LOCK       the block's data against writeback and other
 *                                  writers (a futex bit)
 *     7. page->flags PG_LOCKED     page->buffers transitions (ring attach and
 *                                  release) and the saved uptodate mask (a
 *                                  futex bit).  PG_WRITEBACK: one writer of a
 *                                  page at a time; its holder only trylocks
 *                                  blocks, so waiting for it is safe while
 *                                  holding block locks.  Other page flags are
 *                                  atomic bits
 *     8. bc->clock_lock            the clock hand
 *     9. map->dirty_lock           the map's dirty list (dirty_prev/next,
 *                                  dirty_head/tail, dirtied_at, PG_ON_LIST)
 *    10. index stripe lock         bucket chain insert/remove; lookups take none
 *    11. bc->free_lock             free lists (linked through dirty_next),
 *                                  nr_free_warm/cold, nr_inited growth
 *    12. bc->flush_lock            flush_stop, flush_kicked, flusher_gone,
 *                                  flush_cond (leaf: the flusher drops it
 *                                  before a pass)
 *    The fork hooks (registry.c) take 1-2, then per cache 3, 4, 8, 9, 10, 11,
 *    12, then 5 — the same relative order.  bh_defrag.c's get/kick run under the
 *    slab layer's defrag_lock of the buffer_head cache with no bufcache mutex
 *    held, and only trylock pages.
 * 3. References (the one paragraph).  The index holds one reference on every
 *    cached page.  Every other reference is temporary and counted in
 *    page->refcount: a lookup takes one with get-unless-zero (0 means free or
 *    frozen: look again), and a caller's buffer-head reference (b_count) always
 *    comes with one page reference, so bh_put drops both.  A page whose refcount
 *    is 1 therefore has no user; only a thread that freezes it (compare-exchange
 *    1+own pins -> 0, page locked) may remove it from the index (evict) or free
 *    its ring (release), and nothing else frees either.  The page owns its ring;
 *    nothing on a buffer head pins the page except that b_count reference.
 *    Buffer heads are freed only by ring release, after b_page is cleared
 *    (release order), so get-style code that pins bh->b_page and re-reads it
 *    (acquire) knows the page still owns the buffer head.
 * 4. Invariants.  refcount == 0 <=> FREE or FROZEN.  CACHED <=> in the index.
 *    PG_DIRTY => some bh BH_DIRTY or a write being redone; PG_DIRTY or
 *    PG_WRITEBACK => PG_ON_LIST (on the map's dirty list); dirty or referenced or
 *    locked buffers => ring attached.  mem_used == frames_resident * 4096 +
 *    descriptor bytes + bh_live * bh_size + index bytes <= memory_limit.
 * 5. Numbers: see each file.  6. Observability: struct bcache_stats.
 * 7. Test hooks.  Points where a test forces an interleaving (bh_defrag.c's get
 *    and kick, reclaim.c's sweeps, bh.c's page creation; the macros are in
 *    common/test_hook.h) exist only in the testing build of the
 *    library (SLABDEFRAG_TESTING: the static slabdefrag_testing that only tests
 *    link); in the shipped libraries TEST_HOOK is nothing, and neither the hook
 *    pointers nor their setters exist (tests/library/no_testing_symbols).
 */
#ifndef SLABDEFRAG_BUFCACHE_INTERNAL_H
#define SLABDEFRAG_BUFCACHE_INTERNAL_H

#include <slabdefrag/buffer.h>
#include <slabdefrag/buffer_fault.h>
#include <slabdefrag/slab.h>

#include "common/test_hook.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define BC_PAGE_SHIFT 12u
#define BC_PAGE_SIZE  (1u << BC_PAGE_SHIFT)
#define BC_NONE       UINT32_MAX /* "no page" in uint32 page links */
#define BC_MAX_PAGES  (UINT32_C(1) << 31) /* most pages a cache may hold (8 TiB): the
                                             index's power-of-two bucket count fits 32 bits */

/* ---- page descriptor ---------------------------------------------------- */

/* page->flags: one 32-bit atomic word (also the futex for lock/writeback waits). */
enum {
    PG_LOCKED = 1u << 0,      /* page lock (ring attach/release) */
    PG_WAITERS = 1u << 1,     /* a thread sleeps on this word: wake on change */
    PG_UPTODATE = 1u << 2,    /* every block of the page is uptodate */
    PG_DIRTY = 1u << 3,       /* some block is dirty (or being redone) */
    PG_WRITEBACK = 1u << 4,   /* one thread is writing the page */
    PG_ERROR = 1u << 5,       /* the last write of a block failed */
    PG_HAS_BUFFERS = 1u << 6, /* a ring is attached */
    PG_REFERENCED = 1u << 7,  /* CLOCK second chance: set by hits */
    PG_ON_LIST = 1u << 8,     /* on map's dirty list (map->dirty_lock) */
    PG_FRAME = 1u << 9,       /* the frame is resident (counted in mem_used) */
};
#define PG_SAVED_SHIFT 16u      /* bits 16..23: uptodate mask kept while no ring */
#define PG_SAVED_MASK  (0xffu << PG_SAVED_SHIFT)

struct bdev_map;
struct bh_impl;

struct bc_page {
    _Atomic uint32_t refcount;          /* see "References" */
    _Atomic uint32_t flags;             /* PG_* */
    _Atomic uint64_t index;             /* page number on the device */
    _Atomic(struct bdev_map *) map;     /* NULL while free */
    _Atomic(struct bc_page *) hash_next;/* index chain (stripe lock; read lock-free) */
    _Atomic(struct bh_impl *) buffers;  /* ring head (block 0 of the page) or NULL */
    uint32_t dirty_prev, dirty_next;    /* dirty list (map->dirty_lock); dirty_next
                                           is also the free-list link (free_lock) */
    uint32_t dirtied_at;                /* ms since bcache creation (dirty_lock) */
    _Atomic uint32_t wb_epoch;          /* map flush epoch of the last write */
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct bc_page) == 64, "a page descriptor is one cache line");

/* ---- buffer head -------------------------------------------------------- */

enum {
    BH_UPTODATE = 1u << 0,
    BH_DIRTY = 1u << 1,
    BH_LOCK = 1u << 2,
    BH_MAPPED = 1u << 3,    /* attached to a device block (always, while in a ring) */
    BH_WRITE_EIO = 1u << 4, /* the last write failed; the block stays dirty */
    BH_WAITERS = 1u << 5,   /* a thread sleeps on b_state */
};

struct bh_impl {
    struct buffer_head pub;           /* b_data, b_blocknr, b_size */
    _Atomic uint32_t b_state;         /* BH_* (futex word for BH_LOCK waits) */
    _Atomic uint32_t b_count;         /* caller references (each with a page ref) */
    _Atomic int32_t b_owner;          /* tid holding BH_LOCK, 0 if none */
    _Atomic(struct bc_page *) b_page; /* owning page; cleared (release) on detach */
    struct bh_impl *b_this_page;      /* next buffer of the ring (circular) */
};
_Static_assert(sizeof(struct bh_impl) <= 56, "a buffer head fits in 56 bytes");

static inline struct bh_impl *bh_impl(struct buffer_head *bh)
{
    return (struct bh_impl *)bh;
}

/* ---- device map and handle ------------------------------------------------ */

struct bdev_faults {                 /* fault injection (<slabdefrag/buffer_fault.h>) */
    _Atomic uint64_t count[BDEV_IO_NR];   /* operations issued so far */
    _Atomic uint64_t fail_at[BDEV_IO_NR]; /* 0 = off; else the op number to fail */
    _Atomic int error[BDEV_IO_NR];
    _Atomic unsigned mode[BDEV_IO_NR];    /* BDEV_FAULT_* flags */
};

struct bdev {                      /* a handle */
    struct bdev_map *map;
    _Atomic uint32_t err_cursor;   /* errseq position of this handle */
    struct bdev *next_handle;      /* map->handles (bc->lock) */
};

struct bdev_map {
    struct bcache *bc;
    int fd;
    int open_flags;                /* O_RDONLY/O_RDWR [| O_DIRECT] */
    bool readonly, direct;
    _Atomic bool closing;          /* last close in progress: no background writes */
    unsigned block_size, block_shift;
    unsigned blocks_per_page, bpp_shift;
    uint64_t nr_blocks, nr_pages;
    uint32_t id;                   /* index hash salt */
    dev_t st_dev;
    ino_t st_ino;
    struct bdev *handles;          /* bc->lock */
    struct bdev_map *next;         /* bc->maps (bc->lock) */

    pthread_mutex_t dirty_lock;    /* dirty list, dirtied_at, PG_ON_LIST */
    uint32_t dirty_head, dirty_tail;

    _Atomic uint32_t wb_err;       /* errseq of writeback errors */
    _Atomic uint32_t bhsync_cursor;/* errseq position shared by bh_sync callers */
    _Atomic uint32_t flush_epoch;  /* incremented by each flush */
    _Atomic uint32_t durable_epoch;/* writes with wb_epoch < this are flushed */
    struct bdev_faults faults;
};

/* ---- statistics ------------------------------------------------------------ */

enum bc_stat {
    ST_HITS, ST_MISSES, ST_READS, ST_WRITES, ST_FLUSHES, ST_READ_ERRORS,
    ST_WB_ERRORS, ST_EVICTIONS, ST_RINGS_DROPPED, ST_RINGS_REBUILT, ST_THROTTLED,
    ST_PAGES_WRITTEN, ST_NR
};
#define BC_STAT_SLOTS 16u /* threads spread over 16 cache lines: no shared counter */
struct bc_stat_slot {
    _Atomic uint64_t v[ST_NR];
} __attribute__((aligned(64)));

#define BC_INDEX_STRIPES 64u
struct bc_stripe {
    pthread_mutex_t lock;
} __attribute__((aligned(64)));

/* ---- the cache --------------------------------------------------------------- */

struct bcache {
    size_t memory_limit;
    unsigned dirty_expire_ms, dirty_limit_percent;
    uint64_t dirty_limit_pages;    /* throttle writers above this */
    uint64_t dirty_bg_pages;       /* the flusher writes regardless of age above */

    /* page array and frames: mapped once, never moved */
    struct bc_page *pages;
    char *frames;
    uint32_t max_pages;
    _Atomic uint32_t nr_inited;    /* descriptors [0, nr_inited) have been used */
    size_t pages_map_bytes, frames_map_bytes;

    pthread_mutex_t free_lock;
    uint32_t free_warm, free_cold; /* free lists via dirty_next */
    uint32_t nr_free_warm, nr_free_cold;

    /* index: (map, page number) -> page */
    _Atomic(struct bc_page *) *buckets;
    uint32_t bucket_mask;
    struct bc_stripe *stripes;

    /* memory accounting (bytes) */
    _Atomic int64_t mem_used;
    _Atomic uint64_t frames_resident;
    _Atomic uint64_t bh_live;
    _Atomic uint64_t nr_cached;
    _Atomic uint64_t nr_dirty;
    _Atomic uint32_t writer_pins;  /* pins held by collect_dirty() batches (writeback.c) */
    size_t bh_size;                /* slab object size of a buffer head */
    size_t index_bytes;
    struct slab_cache *bh_cache;

    pthread_mutex_t clock_lock;
    uint32_t clock_hand;

    pthread_mutex_t lock;          /* maps, next_map_id, map handles (order 4) */
    struct bdev_map *maps;
    uint32_t next_map_id;

    pthread_t flusher;
    pthread_mutex_t pass_lock;     /* held by the flusher during one pass (order 3) */
    pthread_mutex_t flush_lock;    /* the four fields below (order 12) */
    pthread_cond_t flush_cond;
    bool flush_stop;               /* flush_lock */
    bool flush_kicked;             /* flush_lock */
    bool flusher_gone;             /* forked child: no flusher thread (flush_lock) */

    uint64_t t0_ns;                /* creation time (CLOCK_MONOTONIC) */
    struct bc_stat_slot stats[BC_STAT_SLOTS];
};

/* ---- small helpers ------------------------------------------------------------ */

unsigned bc_stat_slot_index(void);
static inline void bc_count(struct bcache *bc, enum bc_stat st, uint64_t n)
{
    atomic_fetch_add_explicit(&bc->stats[bc_stat_slot_index()].v[st], n,
                              memory_order_relaxed);
}
uint64_t bc_stat_sum(struct bcache *bc, enum bc_stat st);
uint32_t bc_now_ms(struct bcache *bc);
int bc_gettid(void);

static inline uint32_t page_id(struct bcache *bc, const struct bc_page *p)
{
    return (uint32_t)(p - bc->pages);
}
static inline void *page_data(struct bcache *bc, const struct bc_page *p)
{
    return bc->frames + (size_t)page_id(bc, p) * BC_PAGE_SIZE;
}
static inline struct bdev_map *page_map(struct bc_page *p)
{
    return atomic_load_explicit(&p->map, memory_order_relaxed);
}
static inline uint32_t page_flags(struct bc_page *p)
{
    return atomic_load_explicit(&p->flags, memory_order_acquire);
}
static inline struct bc_page *bh_page(struct bh_impl *bh)
{
    return atomic_load_explicit(&bh->b_page, memory_order_acquire);
}

/* futex-backed waits on a 32-bit atomic word (page flags, bh state) */
void bc_word_wait(_Atomic uint32_t *word, uint32_t waiters_bit, uint32_t busy_bit);
void bc_word_wake(_Atomic uint32_t *word);
/* Clear `bit` (release) and wake sleepers if waiters_bit was set. */
void bc_word_clear_wake(_Atomic uint32_t *word, uint32_t bit, uint32_t waiters_bit);


/* ---- page.c: descriptors, references, lock, index ------------------------------- */

/*
 * Used by the buffer_head defrag (get/kick, bh_defrag.c) and by
 * reclaim.  page_get_unless_zero: pin a page unless it is free or frozen
 * (acquire).  page_put: drop a pin (release); the count never reaches 0 this way.
 */
bool page_get_unless_zero(struct bc_page *p);
void page_put(struct bc_page *p);
bool page_trylock(struct bc_page *p);
void page_lock(struct bc_page *p);
void page_unlock(struct bc_page *p);
void page_wait_writeback(struct bc_page *p);
/* Freeze: refcount 1 + pins -> 0 (the caller holds `pins` pins).  Unfreeze restores it. */
bool page_freeze(struct bc_page *p, uint32_t pins);
void page_unfreeze(struct bc_page *p, uint32_t pins);
void page_set_flags(struct bc_page *p, uint32_t bits);
void page_clear_flags(struct bc_page *p, uint32_t bits);

int page_index_init(struct bcache *bc);
void page_index_fini(struct bcache *bc);
/* Lock-free lookup: the cached page, pinned, or NULL. */
struct bc_page *page_lookup(struct bcache *bc, struct bdev_map *m, uint64_t index);
/* Insert `fresh` (refcount already 2) unless the page is cached: then return that
 * one pinned and leave `fresh` alone.  Returns fresh when it was inserted. */
struct bc_page *page_index_insert(struct bcache *bc, struct bc_page *fresh);
void page_index_remove(struct bcache *bc, struct bc_page *p);

/* A free descriptor with a resident frame, memory charged for it and for
 * `extra` bytes; reclaims to make room.  NULL + ENOMEM when everything is pinned. */
struct bc_page *page_alloc(struct bcache *bc, size_t extra);
/* Return a frozen or never-inserted page to the warm free list. */
void page_free(struct bcache *bc, struct bc_page *p);
/* Release the frames of up to `max` warm free pages (a count); returns bytes released. */
size_t page_release_free_frames(struct bcache *bc, size_t max);

/* ---- bh.c: buffer rings ------------------------------------------------------------ */

bool bh_trylock_internal(struct bh_impl *bh);
void bh_lock_internal(struct bh_impl *bh);
void bh_unlock_internal(struct bh_impl *bh);
/* The ring's buffers in block order into v[8]; returns how many. */
unsigned ring_vector(struct bh_impl *ring, struct bh_impl **v);
void page_update_uptodate(struct bc_page *p);

int bh_cache_acquire(struct bcache *bc);
void bh_cache_release(struct bcache *bc);
void bh_cache_fork_lock(void);   /* the buffer_head cache lock, across fork (registry.c) */
void bh_cache_fork_unlock(void);
/* The ring of a pinned page, building it if needed.  NULL + ENOMEM. */
struct bh_impl *page_buffers(struct bcache *bc, struct bc_page *p);
/* Build a new page's ring (not yet visible to anyone); -ENOMEM. */
int page_build_ring(struct bcache *bc, struct bc_page *p, uint32_t uptodate_mask);
/*
 * The release routine (Linux try_to_release_page): drop the ring of a page that
 * the caller has locked and holds `pins` pins on, if no buffer is referenced,
 * dirty, locked or failed and the page is not dirty or under writeback.  Returns
 * the number of buffer heads freed (>0) or -EBUSY.  Keeps the uptodate state in
 * the page so the ring is rebuilt with no I/O.
 */
int page_release_buffers(struct bc_page *p, uint32_t pins);
/* The release routine's verdict alone: may this page's buffers go?  (Page clean,
 * not under writeback or listed; every bh unreferenced, clean, unlocked, without
 * WRITE_EIO.)  *uptodate_mask gets the ring's uptodate bits.  Eviction asks it
 * too, on the frozen page, before it frees the ring. */
bool page_ring_releasable(struct bc_page *p, uint32_t *uptodate_mask);
/* Detach and free the ring of a frozen page (evict). */
void page_detach_ring(struct bcache *bc, struct bc_page *p);
unsigned page_nr_blocks(struct bdev_map *m, struct bc_page *p);

/* ---- dev.c: device I/O with fault injection ---------------------------------------- */

int dev_read(struct bdev_map *m, uint64_t offset, void *buf, size_t len);
int dev_write(struct bdev_map *m, uint64_t offset, const void *buf, size_t len);
int dev_flush(struct bdev_map *m);
struct bdev_map *map_open(struct bcache *bc, const char *path, unsigned block_size,
                          int flags);
void map_free(struct bdev_map *m);

/* ---- writeback.c ------------------------------------------------------------------- */

enum wb_mode { WB_NOWAIT, WB_SYNC };
/*
 * Write a pinned page's dirty blocks.  WB_NOWAIT: returns -EBUSY at once if
 * another thread is writing the page, and skips blocks it cannot trylock (the
 * page stays dirty).  WB_SYNC: waits for those (holding nothing while it
 * waits) and writes blocks the calling thread has locked as they are.
 * 0 or the first write error.
 */
int page_writeback(struct bcache *bc, struct bc_page *p, enum wb_mode mode);
/* bh_defrag.c kick's entry point: writeback without blocking. */
int page_start_writeback_nowait(struct bc_page *p);
void page_mark_dirty(struct bcache *bc, struct bc_page *p);
void dirty_list_remove_locked(struct bcache *bc, struct bdev_map *m, struct bc_page *p);
int map_sync(struct bdev_map *m);
/* fdatasync with flush epochs: on failure, cached pages written since the last
 * good flush are dirtied again (their durability is unknown). */
int map_flush(struct bdev_map *m);
void balance_dirty_pages(struct bcache *bc, struct bdev_map *m);
int flusher_start(struct bcache *bc);
void flusher_stop(struct bcache *bc);
void flusher_kick(struct bcache *bc);
void flusher_forget_in_child(struct bcache *bc); /* fork child, flush_lock held */

/* errseq (Linux lib/errseq.c semantics) */
void errseq_set(_Atomic uint32_t *eseq, int err);
uint32_t errseq_sample(_Atomic uint32_t *eseq);
int errseq_check_and_advance(_Atomic uint32_t *eseq, _Atomic uint32_t *since);

/* ---- reclaim.c ----------------------------------------------------------------------- */

bool mem_try_charge(struct bcache *bc, size_t bytes);
void mem_uncharge(struct bcache *bc, size_t bytes);
/* Evict a few unreferenced pages (writing dirty ones first); returns pages evicted. */
unsigned reclaim_some(struct bcache *bc);
/* Charge bytes that are not a frame: release warm free frames, then evict, as
 * needed; false only when reclaim finds nothing to free (all pinned by users). */
bool mem_charge_reclaiming(struct bcache *bc, size_t bytes);
#ifdef SLABDEFRAG_TESTING
/* bh.c: before_insert runs when a new page (refcount 2: the index's and the
 * caller's, ring built) is about to be inserted into the index, where another
 * thread may insert the same block's page first. */
struct bh_test_hooks {
    void (*before_insert)(struct bc_page *p, void *arg);
    void *arg;
};
void bh_set_test_hooks(const struct bh_test_hooks *hooks); /* NULL: none */
/* after_sweep runs after each sweep of reclaim_some that evicted nothing
 * (clock_lock held), so a test can change the world between sweeps. */
struct reclaim_test_hooks {
    void (*after_sweep)(struct bcache *bc, unsigned attempt, void *arg);
    void *arg;
};
void reclaim_set_test_hooks(const struct reclaim_test_hooks *hooks); /* NULL: none */
#endif
/* Evict a frozen, locked, clean page; unlocks it and frees it to the warm list. */
void page_evict_frozen(struct bcache *bc, struct bc_page *p);
/* Drop every page of a map (last close); -EBUSY if a buffer head is referenced. */
int map_drop_pages(struct bcache *bc, struct bdev_map *m);
int map_count_user_refs(struct bcache *bc, struct bdev_map *m);

/* ---- registry.c: live caches and handles (fork hooks, double close) ------------------- */

int bc_registry_add_cache(struct bcache *bc);
void bc_registry_remove_cache(struct bcache *bc);
int bc_registry_add_handle(struct bdev *h);
void bc_registry_take_handle(struct bdev *h); /* close begins; aborts if h is not open */

#endif /* SLABDEFRAG_BUFCACHE_INTERNAL_H */
