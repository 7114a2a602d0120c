/*
 * dentry_table: a move-protocol client — entries referenced from several
 * places, relocated by the slab allocator under the owner's own lock.
 *
 * 1. Objects and states.  struct dentry (dentry_table.h).  state is
 *    DENTRY_LIVE from the moment the entry is linked (under the lock) until
 *    dentry_delete() unlinks it (under the lock) and sets DENTRY_DEAD, after
 *    which the entry is freed.  Memory the allocator has handed out but that is
 *    not linked yet holds whatever its previous life left: never DENTRY_LIVE
 *    (a new slab is zero, a freed entry was DEAD, a moved-from entry was DEAD).
 * 2. Locking.  One mutex, t->lock, protects every field of every linked
 *    entry and the buckets.  Lookups, creates, deletes and the move callback
 *    take it; nothing else is needed because the move callback runs with no
 *    allocator lock held (the header's promise), so lock order is trivial.
 * 3. References to an entry — exactly these, all under t->lock:
 *      - its hash chain: the bucket head or the previous entry's hash_next;
 *      - its parent's children list: parent->first_child or the previous
 *        sibling's next_sibling;
 *      - each child's `parent` pointer;
 *      - pins: pointers handed out by dentry_lookup(), counted in d->pins.
 *    A move must re-point the first three; it cannot re-point a pin, so a
 *    pinned entry answers LATER (the caller will put it soon).
 * 4. Why move is safe against a concurrent free.  The allocator keeps a frozen
 *    slab mapped and type-stable and never writes inside an object of a cache
 *    with callbacks, so reading old->state is always defined.  Under t->lock,
 *    old->state == DENTRY_LIVE means old is linked and nobody can free it
 *    until we unlock; anything else means it is being freed, or allocated and
 *    not yet linked: DONT_KNOW, and the allocator frees only `new`.  For a
 *    live, unpinned entry the callback copies it, re-points every reference,
 *    marks old DEAD and answers YES; the allocator frees old.
 * 5. Numbers.  Entry size 112 B (36 per 4 KiB slab); buckets are a power of two.
 * 6. Observability.  t->moves / later / dont_know count the answers; the
 *    cache's move_results[] must agree.
 */
#include "dentry_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DENTRY_LIVE 0x11fe0001u
#define DENTRY_DEAD 0xdead0002u

static uint32_t name_hash(const struct dentry *parent, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)(uintptr_t)parent;
    for (const char *c = name; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    return (uint32_t)(h ^ (h >> 32));
}

/* Hashing by the parent's address would break when the parent moves; hash the
 * parent's inode instead, which travels with it. */
static uint32_t entry_hash(const struct dentry *parent, const char *name)
{
    return name_hash(parent ? (const struct dentry *)(uintptr_t)parent->inode : NULL, name);
}

static struct dentry **bucket_of(struct dentry_table *t, uint32_t hash)
{
    return &t->buckets[hash & (t->nbuckets - 1)];
}

/* The link that points to d in its hash chain.  t->lock held. */
static struct dentry **hash_link(struct dentry_table *t, struct dentry *d)
{
    struct dentry **l = bucket_of(t, d->hash);
    while (*l != d)
        l = &(*l)->hash_next;
    return l;
}

/* The link that points to d in its parent's children list.  t->lock held. */
static struct dentry **sibling_link(struct dentry *d)
{
    struct dentry **l = &d->parent->first_child;
    while (*l != d)
        l = &(*l)->next_sibling;
    return l;
}

static struct dentry *find_locked(struct dentry_table *t, struct dentry *parent,
                                  const char *name)
{
    uint32_t h = entry_hash(parent, name);
    for (struct dentry *d = *bucket_of(t, h); d; d = d->hash_next)
        if (d->hash == h && d->parent == parent && strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

static enum slab_move_result dentry_move(void *old_obj, void *new_obj, size_t size, void *arg)
{
    struct dentry_table *t = arg;
    struct dentry *old = old_obj, *new = new_obj;
    enum slab_move_result r;

    pthread_mutex_lock(&t->lock);
    if (atomic_load_explicit(&old->state, memory_order_relaxed) != DENTRY_LIVE) {
        r = SLAB_MOVE_DONT_KNOW; /* being freed, or allocated and not linked yet */
        atomic_fetch_add(&t->dont_know, 1);
    } else if (old->pins > 0) {
        r = SLAB_MOVE_LATER; /* a pointer we cannot re-point is out there */
        atomic_fetch_add(&t->later, 1);
    } else {
        struct dentry **hl = hash_link(t, old);
        struct dentry **sl = old->parent ? sibling_link(old) : NULL;
        memcpy(new, old, size);
        *hl = new;
        if (sl)
            *sl = new;
        for (struct dentry *c = new->first_child; c; c = c->next_sibling)
            c->parent = new;
        atomic_store_explicit(&old->state, DENTRY_DEAD, memory_order_relaxed);
        atomic_fetch_add(&t->moves, 1);
        r = SLAB_MOVE_YES;
    }
    pthread_mutex_unlock(&t->lock);
    return r;
}

int dentry_table_init(struct dentry_table *t, const char *cache_name, size_t nbuckets)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    t->nbuckets = 1;
    while (t->nbuckets < nbuckets)
        t->nbuckets <<= 1;
    t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
    if (!t->buckets)
        return -ENOMEM;
    t->cache = slab_cache_create(cache_name, sizeof(struct dentry), 0, 0, NULL);
    if (!t->cache)
        return -errno;
    return slab_cache_set_move(t->cache, dentry_move, t); /* before the first alloc */
}

struct dentry *dentry_create(struct dentry_table *t, struct dentry *parent, const char *name,
                             uint64_t inode)
{
    struct dentry *d = slab_alloc(t->cache);
    if (!d)
        return NULL;
    /* Not linked yet: state stays non-LIVE, so a move answers DONT_KNOW. */
    pthread_mutex_lock(&t->lock);
    if (find_locked(t, parent, name)) {
        pthread_mutex_unlock(&t->lock);
        slab_free(t->cache, d);
        errno = EEXIST;
        return NULL;
    }
    d->parent = parent;
    d->first_child = NULL;
    d->nchildren = 0;
    d->pins = 1; /* the caller's: it must dentry_put() */
    d->inode = inode;
    snprintf(d->name, sizeof d->name, "%s", name);
    d->hash = entry_hash(parent, name);
    struct dentry **b = bucket_of(t, d->hash);
    d->hash_next = *b;
    *b = d;
    if (parent) {
        d->next_sibling = parent->first_child;
        parent->first_child = d;
        parent->nchildren++;
    } else {
        d->next_sibling = NULL;
    }
    t->count++;
    atomic_store_explicit(&d->state, DENTRY_LIVE, memory_order_relaxed);
    pthread_mutex_unlock(&t->lock);
    return d;
}

struct dentry *dentry_lookup(struct dentry_table *t, struct dentry *parent, const char *name)
{
    pthread_mutex_lock(&t->lock);
    struct dentry *d = find_locked(t, parent, name);
    if (d)
        d->pins++;
    pthread_mutex_unlock(&t->lock);
    return d;
}

void dentry_put(struct dentry_table *t, struct dentry *d)
{
    pthread_mutex_lock(&t->lock);
    d->pins--;
    pthread_mutex_unlock(&t->lock);
}

int dentry_delete(struct dentry_table *t, struct dentry *parent, const char *name)
{
    pthread_mutex_lock(&t->lock);
    struct dentry *d = find_locked(t, parent, name);
    if (!d || d->pins > 0 || d->nchildren > 0) {
        pthread_mutex_unlock(&t->lock);
        return d ? -EBUSY : -ENOENT;
    }
    *hash_link(t, d) = d->hash_next;
    if (d->parent) {
        *sibling_link(d) = d->next_sibling;
        d->parent->nchildren--;
    }
    t->count--;
    atomic_store_explicit(&d->state, DENTRY_DEAD, memory_order_relaxed);
    pthread_mutex_unlock(&t->lock);
    slab_free(t->cache, d); /* a move in between sees DEAD: DONT_KNOW */
    return 0;
}

static long check_entry(struct dentry_table *t, struct dentry *d)
{
    if (atomic_load_explicit(&d->state, memory_order_relaxed) != DENTRY_LIVE ||
        d->hash != entry_hash(d->parent, d->name) || find_locked(t, d->parent, d->name) != d) {
        fprintf(stderr, "dentry: entry %p '%s' is not reachable by its name\n", (void *)d,
                d->name);
        return -1;
    }
    unsigned n = 0;
    for (struct dentry *c = d->first_child; c; c = c->next_sibling, n++)
        if (c->parent != d) {
            fprintf(stderr, "dentry: child '%s' of '%s' points to parent %p, not %p\n", c->name,
                    d->name, (void *)c->parent, (void *)d);
            return -1;
        }
    if (n != d->nchildren) {
        fprintf(stderr, "dentry: '%s' lists %u children, counts %u\n", d->name, n, d->nchildren);
        return -1;
    }
    return 0;
}

long dentry_table_check(struct dentry_table *t)
{
    long n = 0;
    pthread_mutex_lock(&t->lock);
    for (size_t b = 0; b < t->nbuckets && n >= 0; b++)
        for (struct dentry *d = t->buckets[b]; d && n >= 0; d = d->hash_next)
            n = check_entry(t, d) < 0 ? -1 : n + 1;
    if (n >= 0 && (size_t)n != t->count) {
        fprintf(stderr, "dentry: %ld entries reachable, %zu counted\n", n, t->count);
        n = -1;
    }
    pthread_mutex_unlock(&t->lock);
    return n;
}

static void free_subtree(struct dentry_table *t, struct dentry *d)
{
    while (d->first_child)
        free_subtree(t, d->first_child);
    dentry_delete(t, d->parent, d->name);
}

void dentry_table_destroy(struct dentry_table *t)
{
    for (size_t b = 0; b < t->nbuckets; b++)
        while (t->buckets[b]) {
            struct dentry *d = t->buckets[b];
            while (d->parent) /* delete from the root down */
                d = d->parent;
            free_subtree(t, d);
        }
    slab_cache_destroy(t->cache);
    free(t->buckets);
    pthread_mutex_destroy(&t->lock);
}
