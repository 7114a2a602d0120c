/*
 * lru_cache: an evict-protocol client — an LRU cache of recomputable items
 * with refcounts, defragmented by get (pin) and kick (drop what is unused).
 *
 * 1. Objects and states.  struct lru_item.  ref counts references: the table
 *    holds one while in_table, and each user of lru_get() one.  ref == 0
 *    means the item is free or being freed; whoever drops the last reference
 *    frees it (item_unref).  An item is linked (in_table = 1) into a hash chain
 *    and the LRU list together, under the lock.
 * 2. Locking.  c->lock protects: buckets, the LRU list, in_table, count.  ref
 *    is atomic and changes without the lock.  The allocator calls get and kick
 *    with no allocator lock held, so taking c->lock in kick cannot deadlock.
 * 3. References.  Table: one, dropped by whoever unlinks the item (under the
 *    lock).  Users: one each from lru_get(), dropped by lru_put().  get (the
 *    defrag callback): one per object it pins, dropped by kick.  An item is
 *    freed exactly once, by the last unref.
 * 4. Why get and kick are safe against concurrent frees.  Every pointer in the
 *    vector was allocated when the allocator built it, and its slab is frozen:
 *    mapped, type-stable, nothing allocated from it, and the allocator never
 *    writes inside the objects of a cache with callbacks.  So get may read
 *    it->ref even if the item was freed meanwhile: get-unless-zero (a CAS that
 *    never raises 0) either pins a live item or sees 0 and NULLs the entry —
 *    an item whose last reference is being dropped is never resurrected.  An
 *    item just allocated and not linked yet has ref 1 from its creator: get
 *    pins it, and kick, finding in_table == 0, only drops its own pin.
 *    kick drops an item only when, under the lock, it is linked and its ref is
 *    exactly 2 (the table's and get's): nobody else uses it, and nobody can
 *    take a new reference without the lock (lru_get takes it).
 * 5. Numbers.  Item 144 B (28 per 4 KiB slab).  Hash buckets: a power of two
 *    >= capacity.
 * 6. Observability.  kicked / kick_busy / get_nulled count what the callbacks
 *    did; the cache's defrag_objects_kicked and objects_active must agree.
 */
#include "lru_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lru_compute(uint64_t key, uint64_t value[LRU_VALUE_WORDS])
{
    uint64_t x = key * 0x9e3779b97f4a7c15ull + 1;
    for (int i = 0; i < LRU_VALUE_WORDS; i++) {
        x ^= x >> 31;
        x *= 0xbf58476d1ce4e5b9ull;
        value[i] = x ^ (x >> 29);
    }
}

static struct lru_item **bucket(struct lru_cache *c, uint64_t key)
{
    return &c->buckets[(key * 0x9e3779b97f4a7c15ull >> 20) & (c->nbuckets - 1)];
}

static void item_unref(struct lru_cache *c, struct lru_item *it)
{
    if (atomic_fetch_sub(&it->ref, 1) == 1)
        slab_free(c->cache, it);
}

/* Unlink from hash and LRU.  Lock held; the caller drops the table's ref. */
static void unlink_locked(struct lru_cache *c, struct lru_item *it)
{
    struct lru_item **l = bucket(c, it->key);
    while (*l != it)
        l = &(*l)->hash_next;
    *l = it->hash_next;
    it->lru_prev->lru_next = it->lru_next;
    it->lru_next->lru_prev = it->lru_prev;
    it->in_table = 0;
    c->count--;
}

static void lru_front_locked(struct lru_cache *c, struct lru_item *it)
{
    it->lru_prev = &c->lru;
    it->lru_next = c->lru.lru_next;
    c->lru.lru_next->lru_prev = it;
    c->lru.lru_next = it;
}

static int get_unless_zero(struct lru_item *it)
{
    int r = atomic_load(&it->ref);
    while (r > 0)
        if (atomic_compare_exchange_weak(&it->ref, &r, r + 1))
            return 1;
    return 0;
}

/* The cache is found through a registry of one: the example has one table per
 * slab cache, and kick gets the slab cache. */
static struct lru_cache *owner_of[8];

static struct lru_cache *find_owner(struct slab_cache *s)
{
    for (int i = 0; i < 8; i++)
        if (owner_of[i] && owner_of[i]->cache == s)
            return owner_of[i];
    return NULL;
}

static void *lru_defrag_get(struct slab_cache *s, int nr, void **objs)
{
    struct lru_cache *c = find_owner(s);
    for (int i = 0; i < nr; i++)
        if (!get_unless_zero(objs[i])) {
            objs[i] = NULL; /* being freed: not ours */
            atomic_fetch_add(&c->get_nulled, 1);
        }
    return c;
}

static void lru_defrag_kick(struct slab_cache *s, int nr, void **objs, void *priv)
{
    struct lru_cache *c = priv;
    for (int i = 0; i < nr; i++) {
        struct lru_item *it = objs[i];
        if (!it)
            continue;
        pthread_mutex_lock(&c->lock);
        int drop = it->in_table && atomic_load(&it->ref) == 2;
        if (drop)
            unlink_locked(c, it);
        pthread_mutex_unlock(&c->lock);
        if (drop) {
            item_unref(c, it); /* the table's */
            atomic_fetch_add(&c->kicked, 1);
        } else {
            atomic_fetch_add(&c->kick_busy, 1);
        }
        item_unref(c, it); /* get's */
    }
}

int lru_init(struct lru_cache *c, const char *cache_name, size_t capacity)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->capacity = capacity;
    c->nbuckets = 1;
    while (c->nbuckets < capacity)
        c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (!c->buckets)
        return -ENOMEM;
    c->lru.lru_next = c->lru.lru_prev = &c->lru;
    c->cache = slab_cache_create(cache_name, sizeof(struct lru_item), 0, 0, NULL);
    if (!c->cache)
        return -errno;
    for (int i = 0; i < 8; i++)
        if (!owner_of[i]) {
            owner_of[i] = c;
            break;
        }
    return slab_cache_setup_defrag(c->cache, lru_defrag_get, lru_defrag_kick);
}

static struct lru_item *find_locked(struct lru_cache *c, uint64_t key)
{
    for (struct lru_item *it = *bucket(c, key); it; it = it->hash_next)
        if (it->key == key)
            return it;
    return NULL;
}

static struct lru_item *insert(struct lru_cache *c, uint64_t key)
{
    struct lru_item *it = slab_alloc(c->cache);
    if (!it)
        return NULL;
    it->key = key;
    lru_compute(key, it->value);
    atomic_store(&it->ref, 2); /* the table's and the caller's */
    pthread_mutex_lock(&c->lock);
    struct lru_item *other = find_locked(c, key);
    if (other) { /* another thread computed it first */
        atomic_fetch_add(&other->ref, 1);
        lru_front_locked(c, other);
        pthread_mutex_unlock(&c->lock);
        atomic_store(&it->ref, 1);
        item_unref(c, it);
        return other;
    }
    struct lru_item **b = bucket(c, key);
    it->hash_next = *b;
    *b = it;
    it->in_table = 1;
    lru_front_locked(c, it);
    c->count++;
    pthread_mutex_unlock(&c->lock);
    return it;
}

struct lru_item *lru_get(struct lru_cache *c, uint64_t key)
{
    pthread_mutex_lock(&c->lock);
    struct lru_item *it = find_locked(c, key);
    if (it) {
        atomic_fetch_add(&it->ref, 1); /* linked: the table's ref keeps it > 0 */
        it->lru_prev->lru_next = it->lru_next;
        it->lru_next->lru_prev = it->lru_prev;
        lru_front_locked(c, it);
    }
    pthread_mutex_unlock(&c->lock);
    if (it)
        return it;
    atomic_fetch_add(&c->misses, 1);
    it = insert(c, key);
    pthread_mutex_lock(&c->lock);
    int over = c->count > c->capacity;
    pthread_mutex_unlock(&c->lock);
    if (it && over)
        lru_trim(c, c->capacity);
    return it;
}

void lru_put(struct lru_cache *c, struct lru_item *it)
{
    item_unref(c, it);
}

/* Drop `it` if only the table references it.  Lock held; 1 if unlinked. */
static int drop_locked(struct lru_cache *c, struct lru_item *it)
{
    if (atomic_load(&it->ref) != 1)
        return 0;
    unlink_locked(c, it);
    return 1;
}

void lru_trim(struct lru_cache *c, size_t n)
{
    struct lru_item *victims = NULL;
    pthread_mutex_lock(&c->lock);
    for (struct lru_item *it = c->lru.lru_prev; it != &c->lru && c->count > n;) {
        struct lru_item *prev = it->lru_prev;
        if (drop_locked(c, it)) {
            it->hash_next = victims; /* unlinked: hash_next is ours now */
            victims = it;
        }
        it = prev;
    }
    pthread_mutex_unlock(&c->lock);
    while (victims) {
        struct lru_item *next = victims->hash_next;
        item_unref(c, victims);
        victims = next;
    }
}

int lru_drop(struct lru_cache *c, uint64_t key)
{
    pthread_mutex_lock(&c->lock);
    struct lru_item *it = find_locked(c, key);
    int dropped = it && drop_locked(c, it);
    pthread_mutex_unlock(&c->lock);
    if (dropped)
        item_unref(c, it);
    return dropped;
}

long lru_check(struct lru_cache *c)
{
    uint64_t v[LRU_VALUE_WORDS];
    long n = 0;
    pthread_mutex_lock(&c->lock);
    for (struct lru_item *it = c->lru.lru_next; it != &c->lru; it = it->lru_next, n++) {
        lru_compute(it->key, v);
        if (!it->in_table || find_locked(c, it->key) != it || atomic_load(&it->ref) < 1 ||
            memcmp(v, it->value, sizeof v) != 0 || it->lru_next->lru_prev != it) {
            fprintf(stderr, "lru: item %p key %llu is inconsistent\n", (void *)it,
                    (unsigned long long)it->key);
            n = -1;
            break;
        }
    }
    if (n >= 0 && (size_t)n != c->count)
        n = -1;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void lru_destroy(struct lru_cache *c)
{
    lru_trim(c, 0);
    for (int i = 0; i < 8; i++)
        if (owner_of[i] == c)
            owner_of[i] = NULL;
    slab_cache_destroy(c->cache);
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
}
