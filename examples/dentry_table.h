/*
 * dentry_table.h: a dentry-like table of named entries whose objects the slab
 * allocator may move (the move protocol).  See dentry_table.c for the theory.
 *
 * An entry has a name, a parent entry (NULL for a root) and children; it is
 * found by (parent, name) through a hash table.  dentry_lookup() pins an entry
 * (a counted reference the caller drops with dentry_put()); pinned entries are
 * never moved.  Entries are created and deleted through the table only.
 */
#ifndef SLABDEFRAG_EXAMPLE_DENTRY_TABLE_H
#define SLABDEFRAG_EXAMPLE_DENTRY_TABLE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include <slabdefrag/slab.h>

#define DENTRY_NAME_MAX 48

struct dentry {
    _Atomic uint32_t state;        /* DENTRY_LIVE while linked (see .c) */
    uint32_t hash;                 /* of (parent, name) */
    struct dentry *parent;         /* counted in parent->nchildren */
    struct dentry *hash_next;      /* chain in the table's bucket */
    struct dentry *first_child;    /* children, singly linked through next_sibling */
    struct dentry *next_sibling;
    unsigned nchildren;
    int pins;                      /* references held outside the table lock */
    uint64_t inode;                /* payload: what the entry names */
    char name[DENTRY_NAME_MAX];
};

struct dentry_table {
    pthread_mutex_t lock;          /* protects everything reachable from buckets */
    struct dentry **buckets;
    size_t nbuckets;
    size_t count;
    struct slab_cache *cache;
    _Atomic uint64_t moves, later, dont_know; /* what the move callback answered */
};

/* A table and its slab cache (with the move callback).  0 or -errno. */
int dentry_table_init(struct dentry_table *t, const char *cache_name, size_t nbuckets);
/* Free every entry and the cache. */
void dentry_table_destroy(struct dentry_table *t);

/* Create (parent, name) -> inode, returned pinned (dentry_put() it); parent is
 * NULL for a root or an entry the caller has pinned (an unpinned pointer may be
 * moved away at any time).  NULL with errno EEXIST or ENOMEM. */
struct dentry *dentry_create(struct dentry_table *t, struct dentry *parent, const char *name,
                             uint64_t inode);
/* Find and pin (parent, name); parent pinned or NULL.  NULL if absent.  A
 * pinned entry is never moved.  Drop with dentry_put(). */
struct dentry *dentry_lookup(struct dentry_table *t, struct dentry *parent, const char *name);
void dentry_put(struct dentry_table *t, struct dentry *d);
/* Delete an unpinned leaf found by (parent, name): 0, -ENOENT, -EBUSY. */
int dentry_delete(struct dentry_table *t, struct dentry *parent, const char *name);

/* Check every link (hash chains, parents, children lists, counts); returns the
 * number of entries, or -1 with a message on stderr. */
long dentry_table_check(struct dentry_table *t);

#endif
