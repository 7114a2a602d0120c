/*
 * malloc/defrag.c — defragmentation driven by the application (Redis' active
 * defrag): for each pointer it walks, it asks the hint and, if told so, moves
 * the allocation and updates its reference.
 *
 * 1. The hint is the slab core's per-object test (slab_obj_defrag_hint): the
 *    object's slab holds fewer than HINT_FILL_PERCENT of its objects, is not the
 *    calling thread's allocation slab and not owned by another thread.  Lock-free
 *    loads only: a few nanoseconds, meant to be asked for every pointer.
 * 2. A move allocates a new object of the same class with slab_alloc_for_move:
 *    the calling thread first hands back the free objects and partial slabs it
 *    caches (they are the sparse slabs being emptied), so the object comes from
 *    its active slab or the fullest partial slab.  It copies the whole object
 *    and frees the old one.  Repeated over a table, sparse slabs drain into full
 *    ones, and slab_malloc_trim hands the emptied slabs back to the OS at once.
 * 3. Numbers.  HINT_FILL_PERCENT = 75: below three quarters full a slab is worth
 *    draining; above, the copy costs more than the quarter slab it could free.
 * 4. Locking: none of its own; the slab core's.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define HINT_FILL_PERCENT 75

int slab_malloc_defrag_hint(const void *ptr)
{
    return ptr ? slab_obj_defrag_hint(ptr, HINT_FILL_PERCENT) : 0;
}

void *slab_malloc_defrag_move(void *ptr)
{
    if (!slab_malloc_defrag_hint(ptr) || mfe_depth)
        return ptr;
    struct slab_cache *c = slab_cache_of(ptr);
    int saved = errno;
    mfe_depth++;
    void *n = slab_alloc_for_move(c);
    if (n) {
        memcpy(n, ptr, slab_cache_object_size(c));
        slab_free(c, ptr);
    }
    mfe_depth--;
    errno = saved;
    return n ? n : ptr;
}

long slab_malloc_trim(void)
{
    long total = 0;
    mfe_depth++;
    for (unsigned i = 0; i < MFE_NCLASSES; i++) {
        struct slab_cache *c = mfe_class_cache(i);
        long r = c ? slab_cache_shrink(c) : 0;
        if (r > 0)
            total += r;
    }
    mfe_depth--;
    return total;
}
