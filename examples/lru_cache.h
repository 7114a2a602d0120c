/*
 * lru_cache.h: an LRU cache of recomputable items whose slab cache is
 * defragmented with the evict protocol (get/kick).  See lru_cache.c for the
 * theory.
 *
 * lru_get() returns a referenced item (computing it on a miss); the caller
 * drops the reference with lru_put().  Items nobody references may be dropped
 * at any time (by LRU trimming or by defragmentation) and are recomputed on the
 * next lru_get().
 */
#ifndef SLABDEFRAG_EXAMPLE_LRU_CACHE_H
#define SLABDEFRAG_EXAMPLE_LRU_CACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <slabdefrag/slab.h>

#define LRU_VALUE_WORDS 12

struct lru_item {
    _Atomic int ref;               /* 0: free or being freed */
    int in_table;                  /* under the lock: linked in hash and LRU */
    uint64_t key;
    struct lru_item *hash_next;
    struct lru_item *lru_prev, *lru_next;
    uint64_t value[LRU_VALUE_WORDS]; /* lru_compute(key): recomputable */
};

struct lru_cache {
    pthread_mutex_t lock;          /* protects: buckets, LRU list, in_table, count */
    struct lru_item **buckets;
    size_t nbuckets, count, capacity;
    struct lru_item lru;           /* list head: lru.lru_next is the most recent */
    struct slab_cache *cache;
    _Atomic uint64_t misses, kicked, kick_busy, get_nulled;
};

/* The value an item of `key` holds. */
void lru_compute(uint64_t key, uint64_t value[LRU_VALUE_WORDS]);

/* 0 or -errno.  capacity: items kept before the least recent are dropped. */
int lru_init(struct lru_cache *c, const char *cache_name, size_t capacity);
void lru_destroy(struct lru_cache *c);

/* The item of `key`, referenced (computed and inserted on a miss); NULL on ENOMEM. */
struct lru_item *lru_get(struct lru_cache *c, uint64_t key);
void lru_put(struct lru_cache *c, struct lru_item *it);

/* Drop unreferenced items until at most `n` remain (least recent first). */
void lru_trim(struct lru_cache *c, size_t n);
/* Drop the item of `key` if nobody references it: 1 dropped, 0 not. */
int lru_drop(struct lru_cache *c, uint64_t key);

/* Check every item's value and the list/hash agreement; the count or -1. */
long lru_check(struct lru_cache *c);

#endif
