/*
 * slab/defrag.h — the engine's internal interface, between defrag.c (one pass
 * over one cache), defrag_api.c (registration and triggers) and defrag_bg.c
 * (which caches, when, and how much).
 */
#ifndef SLABDEFRAG_SLAB_DEFRAG_H
#define SLABDEFRAG_SLAB_DEFRAG_H

#include "internal.h"

struct defrag_request {
    unsigned fill_percent;   /* candidates: slabs below this fill */
    bool flush_own_heap;     /* give back the calling thread's slabs first */
    bool release_all_empty;  /* release the empty reserve too (shrink) */
    bool trylock;            /* fail with -EBUSY rather than wait for another pass */
    bool forget_refusals;    /* clear unmovable marks first (shrink) */
    uint64_t deadline_ns;    /* stop after the slab that crosses it (0: none) */
    uint64_t max_slabs;      /* stop after this many slabs (0: no limit) */
};

struct defrag_result {
    uint64_t scanned, released; /* slabs frozen / handed back by callbacks */
    uint64_t emptied;           /* slabs the callbacks emptied: the pass made progress */
    long bytes;                 /* net bytes handed back to the OS */
    bool more;                  /* stopped by the deadline or max_slabs (candidates may be left) */
};

/* One pass; returns res->bytes or a negative errno (-EBUSY, -ENOMEM). */
long defrag_pass(struct slab_cache *s, const struct defrag_request *rq, struct defrag_result *res);
uint64_t defrag_now_ns(void);
bool defrag_in_pass(void); /* this thread runs a pass's callbacks */

/* defrag_bg.c: the background defragmenter's back-off (bg_lock inside).
 * defrag_update_backoff after a pass: the n-th fruitless pass in a row (one
 * that froze slabs and emptied none) makes the cache skip min(2^n, 2^6) rounds;
 * a pass that emptied a slab clears it.  defrag_backing_off consumes one
 * round: true if the cache is to be skipped this round. */
#define DEFRAG_BACKOFF_MAX_SHIFT 6
void defrag_update_backoff(struct slab_cache *s, const struct defrag_result *res);
bool defrag_backing_off(struct slab_cache *s);

/* defrag_bg.c: pin every live cache (skipping dying ones) / drop the pins. */
size_t cache_pin_all(struct slab_cache ***out);
void cache_unpin_all(struct slab_cache **v, size_t n);

/* defrag_bg.c: the live cache named `name`, pinned against slab_cache_destroy
 * until cache_unpin (NULL: no such cache, or it is being destroyed). */
struct slab_cache *cache_find_pinned(const char *name);
void cache_unpin(struct slab_cache *s);

/* cache.c: changes with every cache created (cache_list_lock held). */
unsigned long cache_list_generation(void);

#endif
