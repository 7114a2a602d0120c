/*
 * slab/defrag.c — placeholder until the defragmentation engine lands (issue 3).
 * Registration stores the callbacks; triggers release empty slabs only.
 */
#include <errno.h>

#include "internal.h"

int slab_cache_setup_defrag(struct slab_cache *s, slab_get_fn get, slab_kick_fn kick)
{
    if (!s || !get || !kick)
        return errno = EINVAL, -EINVAL;
    pthread_mutex_lock(&s->lock);
    s->get = get;
    s->kick = kick;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int slab_cache_set_move(struct slab_cache *s, slab_move_fn move, void *arg)
{
    if (!s || !move)
        return errno = EINVAL, -EINVAL;
    pthread_mutex_lock(&s->lock);
    s->move = move;
    s->move_arg = arg;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

long defrag_cache(struct slab_cache *s, unsigned fill_percent, bool forced) { return 0; }
void slab_defrag_forget(struct slab_cache *s) {}
long slab_cache_defrag(struct slab_cache *s, unsigned fill_percent) { return cache_shrink_empty(s); }
long slab_cache_shrink(struct slab_cache *s) { return s ? cache_shrink_empty(s) : -EINVAL; }
long slab_reclaim(size_t target_bytes) { return 0; }
int slab_defrag_start(const struct slab_defrag_policy *policy) { return -ENOSYS; }
void slab_defrag_stop(void) {}
