/*
 * slab/defrag_api.c — the public face of the defragmentation engine:
 * registering callbacks (slab_cache_setup_defrag, slab_cache_set_move) and the
 * triggers slab_cache_defrag / slab_cache_shrink, which run one pass each
 * (defrag.c).
 *
 * 1. Registration.  Callbacks may read free objects (a refcount, b_page), so a
 *    cache with callbacks keeps its free pointer outside the object — or where
 *    the owner placed it (slab_cache_set_freeptr_offset) — and is never
 *    poisoned (debug P leaves its free objects as their user left them); the
 *    layout and the poisoning can only change before the first slab exists
 *    (-EBUSY after).  Both locks are
 *    taken (defrag_lock, then cache->lock: the engine's order), so no pass sees
 *    half-registered callbacks.
 * 2. Triggers.  slab_cache_defrag(s, fill): one pass over slabs below fill%,
 *    giving the calling thread's slabs back first.  slab_cache_shrink(s): fill
 *    100%, every empty slab released, refusals forgotten ("unmovable until the
 *    cache is shrunk").  A trigger from inside a callback of a pass (any cache)
 *    only tries the lock, so a nested trigger on the same cache fails with
 *    -EBUSY instead of deadlocking.
 */
#include <errno.h>

#include "debug.h"
#include "defrag.h"
#include "inuse.h"

/* ---- registration -------------------------------------------------------- */

/* Callbacks read freed objects, so the free pointer must live outside them,
 * or where the owner placed it (slab_cache_set_freeptr_offset), and a poisoned
 * cache (SLABDEFRAG_DEBUG=P, no constructor) stops poisoning (debug.c): a get
 * doing get-unless-zero on a just-freed object would read the poison as a
 * reference count.  Both must hold for every object, so a change is only
 * possible before the first slab exists. */
static int prepare_for_callbacks(struct slab_cache *s)
{
    bool fp_ok = s->fp_outside || (s->flags & SLAB_CACHE_FP_PLACED);
    bool poisoned = (s->flags & SLAB_POISON) && !s->ctor && !cache_has_callbacks(s);
    if (fp_ok && !poisoned)
        return 0;
    if (atomic_load(&s->nr_slabs) != 0 || s->heaps)
        return -EBUSY;
    return fp_ok ? 0 : cache_compute_layout(s, true);
}

static int set_callbacks(struct slab_cache *s, slab_get_fn get, slab_kick_fn kick, slab_move_fn move,
                         void *arg)
{
    pthread_mutex_lock(&s->defrag_lock);
    pthread_mutex_lock(&s->lock);
    int rc = prepare_for_callbacks(s);
    if (rc == 0) {
        if (move) {
            s->move = move;
            s->move_arg = arg;
        } else {
            s->get = get;
            s->kick = kick;
        }
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->defrag_lock);
    if (rc)
        errno = -rc;
    return rc;
}

int slab_cache_setup_defrag(struct slab_cache *s, slab_get_fn get, slab_kick_fn kick)
{
    if (!s || !get || !kick)
        return errno = EINVAL, -EINVAL;
    return set_callbacks(s, get, kick, NULL, NULL);
}

int slab_cache_set_move(struct slab_cache *s, slab_move_fn move, void *arg)
{
    if (!s || !move)
        return errno = EINVAL, -EINVAL;
    return set_callbacks(s, NULL, NULL, move, arg);
}

/* shrink: all_empty, and refusals are forgotten ("until the cache is shrunk")
 * unless this thread is inside a pass of this very cache (which fails -EBUSY). */
static long trigger(struct slab_cache *s, unsigned fill, bool all_empty)
{
    if (!s || fill > 100)
        return errno = EINVAL, -EINVAL;
    struct defrag_request rq = { .fill_percent = fill, .flush_own_heap = true,
                                 .release_all_empty = all_empty, .trylock = defrag_in_pass(),
                                 .forget_refusals = all_empty };
    struct defrag_result res;
    long rc = defrag_pass(s, &rq, &res);
    if (rc < 0)
        errno = (int)-rc;
    return rc;
}

long slab_cache_defrag(struct slab_cache *s, unsigned fill_percent)
{
    return trigger(s, fill_percent, false);
}

long slab_cache_shrink(struct slab_cache *s)
{
    return trigger(s, 100, true);
}
