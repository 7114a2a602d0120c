/*
 * bufcache/registry.c — the buffer cache's process-wide registries and its fork
 * safety: which caches and which device handles are live.
 *
 * 1. Objects.  The live caches (a growable array of struct bcache pointers) and
 *    the live handles (a binary tree of struct bdev pointers, <search.h>).  A
 *    ring of the last 16 closed handles with their device (st_dev, st_ino)
 *    names a handle closed twice.
 * 2. Locking.  registry_lock protects the cache array; handles_lock the handle
 *    tree and the ring (it is taken under bc->lock when a handle is made).  Both
 *    are leaves outside the fork hooks (internal.h: lock order 1 and 5).
 * 3. Misuse.  bdev_close of a handle that is not live (closed already, or by
 *    bcache_destroy) aborts with "bufcache: bdev_close(PTR): handle already
 *    closed (device MAJ:MIN inode N)" or "not an open handle", before anything
 *    of the freed handle is read.  A handle address reused by a new open cannot
 *    be told apart from the new handle.
 * 4. Fork (slab/fork.h).  FORK_ORDER_BUFCACHE_GLOBAL: registry_lock and the
 *    buffer_head cache lock (bh.c).  FORK_ORDER_BUFCACHE: for every live cache,
 *    in the cache's lock order: pass_lock, lock, clock_lock, each map's
 *    dirty_lock, the index stripes, free_lock, flush_lock; then handles_lock.  (Under
 *    ThreadSanitizer, which cannot track more than 64 mutexes held by one
 *    thread, the index stripes are not taken.)  In the child the flushers do not
 *    exist: each cache forgets its flusher (writeback.c); dirty data is then
 *    written by throttled writers, syncs, closes and destroy.  Page and block
 *    locks are bits, not mutexes: a child must not use pages another thread had
 *    locked at fork.
 * 5. Numbers.  Registering costs one tree insert per open, one array append per
 *    cache: both rare operations.
 */
#define _GNU_SOURCE
#include "bufcache/internal.h"

#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sysmacros.h>

#include "slab/fork.h"

#if defined(__SANITIZE_THREAD__)
#define HOLD_STRIPES 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HOLD_STRIPES 0
#endif
#endif
#ifndef HOLD_STRIPES
#define HOLD_STRIPES 1
#endif

#define CLOSED_RING 16

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER; /* caches */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;  /* handles, closed */
static struct bcache **caches;
static size_t nr_caches, cap_caches;
static void *handles; /* tsearch root */
static struct {
    const struct bdev *h;
    dev_t dev;
    ino_t ino;
} closed[CLOSED_RING];
static unsigned closed_next;

static int by_pointer(const void *a, const void *b)
{
    return a < b ? -1 : a > b;
}

/* ---- caches ------------------------------------------------------------------ */

static void fork_register_once(void);

int bc_registry_add_cache(struct bcache *bc)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fork_register_once);
    int rc = 0;
    pthread_mutex_lock(&registry_lock);
    if (nr_caches == cap_caches) {
        size_t cap = cap_caches ? cap_caches * 2 : 8;
        struct bcache **v = realloc(caches, cap * sizeof *v);
        if (v) {
            caches = v;
            cap_caches = cap;
        } else {
            rc = -ENOMEM;
        }
    }
    if (rc == 0)
        caches[nr_caches++] = bc;
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

void bc_registry_remove_cache(struct bcache *bc)
{
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < nr_caches; i++)
        if (caches[i] == bc) {
            caches[i] = caches[--nr_caches];
            break;
        }
    pthread_mutex_unlock(&registry_lock);
}

/* ---- handles ------------------------------------------------------------------- */

int bc_registry_add_handle(struct bdev *h)
{
    pthread_mutex_lock(&handles_lock);
    void *node = tsearch(h, &handles, by_pointer);
    pthread_mutex_unlock(&handles_lock);
    return node ? 0 : -ENOMEM;
}

static _Noreturn void report_not_open(const struct bdev *h)
{
    pthread_mutex_lock(&handles_lock);
    for (unsigned i = 1; i <= CLOSED_RING; i++) {
        unsigned k = (closed_next - i) % CLOSED_RING;
        if (closed[k].h == h) {
            fprintf(stderr, "bufcache: bdev_close(%p): handle already closed (device %u:%u "
                    "inode %llu)\n", (const void *)h, major(closed[k].dev), minor(closed[k].dev),
                    (unsigned long long)closed[k].ino);
            fflush(stderr);
            abort();
        }
    }
    pthread_mutex_unlock(&handles_lock);
    fprintf(stderr, "bufcache: bdev_close(%p): not an open handle (closed twice, or never "
            "opened)\n", (const void *)h);
    fflush(stderr);
    abort();
}

/* A close begins: h must be live (else abort); it leaves the registry, so a
 * second close, even a concurrent one, is caught.  A close that fails with
 * -EBUSY puts it back (bc_registry_add_handle). */
void bc_registry_take_handle(struct bdev *h)
{
    pthread_mutex_lock(&handles_lock);
    if (!tfind(h, &handles, by_pointer)) {
        pthread_mutex_unlock(&handles_lock);
        report_not_open(h);
    }
    tdelete(h, &handles, by_pointer);
    closed[closed_next % CLOSED_RING].h = h;
    closed[closed_next % CLOSED_RING].dev = h->map->st_dev;
    closed[closed_next % CLOSED_RING].ino = h->map->st_ino;
    closed_next++;
    pthread_mutex_unlock(&handles_lock);
}

/* ---- fork ------------------------------------------------------------------------ */

static void global_prepare(void)
{
    pthread_mutex_lock(&registry_lock);
    bh_cache_fork_lock();
}

static void global_release(void)
{
    bh_cache_fork_unlock();
    pthread_mutex_unlock(&registry_lock);
}

static void cache_prepare(struct bcache *bc)
{
    pthread_mutex_lock(&bc->pass_lock);
    pthread_mutex_lock(&bc->lock);
    pthread_mutex_lock(&bc->clock_lock);
    for (struct bdev_map *m = bc->maps; m; m = m->next)
        pthread_mutex_lock(&m->dirty_lock);
    for (unsigned i = 0; HOLD_STRIPES && i < BC_INDEX_STRIPES; i++)
        pthread_mutex_lock(&bc->stripes[i].lock);
    pthread_mutex_lock(&bc->free_lock);
    pthread_mutex_lock(&bc->flush_lock);
}

static void cache_release(struct bcache *bc)
{
    pthread_mutex_unlock(&bc->flush_lock);
    pthread_mutex_unlock(&bc->free_lock);
    for (unsigned i = BC_INDEX_STRIPES; HOLD_STRIPES && i-- > 0;)
        pthread_mutex_unlock(&bc->stripes[i].lock);
    for (struct bdev_map *m = bc->maps; m; m = m->next)
        pthread_mutex_unlock(&m->dirty_lock);
    pthread_mutex_unlock(&bc->clock_lock);
    pthread_mutex_unlock(&bc->lock);
    pthread_mutex_unlock(&bc->pass_lock);
}

/* registry_lock is held from global_prepare: the array cannot change. */
static void caches_prepare(void)
{
    for (size_t i = 0; i < nr_caches; i++)
        cache_prepare(caches[i]);
    pthread_mutex_lock(&handles_lock);
}

static void caches_parent(void)
{
    pthread_mutex_unlock(&handles_lock);
    for (size_t i = nr_caches; i-- > 0;)
        cache_release(caches[i]);
}

static void caches_child(void)
{
    pthread_mutex_unlock(&handles_lock);
    for (size_t i = nr_caches; i-- > 0;) {
        flusher_forget_in_child(caches[i]); /* flush_lock still held */
        cache_release(caches[i]);
    }
}

static void fork_register_once(void)
{
    slab_fork_register(global_prepare, global_release, global_release,
                       FORK_ORDER_BUFCACHE_GLOBAL);
    slab_fork_register(caches_prepare, caches_parent, caches_child, FORK_ORDER_BUFCACHE);
}
