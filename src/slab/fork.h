/*
 * slab/fork.h — fork safety for the whole library: each module registers the
 * hooks that take its locks before fork() and release them in the parent and
 * in the child (fork.c runs them from one pthread_atfork registration).
 *
 * Order numbers.  prepare hooks run in ascending order, parent and child hooks
 * in descending order, so each lock is taken after every lock that code may
 * hold while waiting for it:
 *   FORK_ORDER_ENDPOINT   10  control endpoint (src/endpoint/server.c:
 *                             srv.lock, then serve_lock; stop joins the
 *                             endpoint thread, which may be inside a pass)
 *   FORK_ORDER_BUFCACHE_GLOBAL 20  bufcache: live-cache registry, live-handle
 *                             registry, buffer_head cache lock (held across
 *                             slab_cache_create/destroy)
 *   FORK_ORDER_DESTROY    25  slab_cache_destroy calls in flight finish, new
 *                             ones wait (cache.c)
 *   FORK_ORDER_DEFRAG     30  every live cache pinned, its defrag_lock taken
 *                             (a pass's callbacks take the locks below), then
 *                             cache_list_lock and the reclaimer's bg_lock
 *   FORK_ORDER_BUFCACHE   40  each bcache's mutexes (a buffer_head move or
 *                             kick takes them under the defrag_lock)
 *   FORK_ORDER_HEAPS      60  heaps_lock (heap.c)
 *   FORK_ORDER_CACHES     70  every live cache's lock, in list order
 *   FORK_ORDER_OS         80  segment pools and spare segments (os.c)
 *   FORK_ORDER_META       90  the metadata allocator (meta.c; os.c allocates
 *                             segment descriptors from it under a pool lock)
 *   FORK_ORDER_PURGE      95  the purge thread's sleep lock (purge.c)
 * A module may register several hooks; equal numbers run in registration order
 * for prepare and in reverse for parent/child.
 */
#ifndef SLABDEFRAG_SLAB_FORK_H
#define SLABDEFRAG_SLAB_FORK_H

enum {
    FORK_ORDER_ENDPOINT = 10,
    FORK_ORDER_BUFCACHE_GLOBAL = 20,
    FORK_ORDER_DESTROY = 25,
    FORK_ORDER_DEFRAG = 30,
    FORK_ORDER_BUFCACHE = 40,
    FORK_ORDER_HEAPS = 60,
    FORK_ORDER_CACHES = 70,
    FORK_ORDER_OS = 80,
    FORK_ORDER_META = 90,
    FORK_ORDER_PURGE = 95,
};

/* Register one set of hooks (any of them may be NULL).  Safe to call from a
 * constructor or at any time from any thread; at most FORK_MAX_HOOKS sets. */
#define FORK_MAX_HOOKS 32
void slab_fork_register(void (*prepare)(void), void (*parent)(void), void (*child)(void),
                        int order);

#endif
