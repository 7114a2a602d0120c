/*
 * slab/inuse.h — the in-use mark: tell an allocated object from a free one by
 * reading one word of its slot, without walking any free list.
 *
 * 1. What it is.  Every allocation path stores the encoded value
 *    SLAB_FP_INUSE (1) in the object's free-pointer word (fp_set, so it is
 *    obfuscated with the cache secret and the slot address like a link); every
 *    free overwrites that word with a link (NULL or an object address, both
 *    even).  So for a cache whose free pointer lives outside the object
 *    (fp_outside: constructor, debug, or defrag callbacks), "the word decodes to
 *    SLAB_FP_INUSE" is exactly "the object is allocated" — nobody else writes
 *    there.  For a cache whose free pointer lies inside the object the owner's
 *    data overwrites the mark, so only "marked => allocated" holds there.
 * 2. Who uses it.  A defrag pass lists the live objects of a frozen slab by
 *    reading the word of every slot: independent loads the CPU overlaps, where
 *    a free-list walk is a chain of dependent cache misses (defrag.c).
 * 3. Trust.  The mark is a hint, never an authority: the pass compares what it
 *    found with the slab's counts (inuse minus remote frees) and walks the free
 *    list whenever they disagree, and a slab is released only when its counts
 *    say it is empty.  A forged mark needs the cache secret; a missing one (an
 *    allocation path that does not mark) costs the walk, never an object.
 * 4. Races.  A thread freeing an object of a frozen slab writes its link while
 *    the pass may read the word: an aligned word is read whole on every
 *    supported CPU, and either value is fine (the callbacks detect objects
 *    freed meanwhile).  The read is therefore not instrumented by TSan.
 * 5. Cost.  One store to the free-pointer word that the allocation has just
 *    read (heap_pop in alloc.c, the pass's own destination allocations), only
 *    in caches whose free pointer lies outside the object: elsewhere the pass
 *    does not trust the mark, so the allocation does not write it.
 */
#ifndef SLABDEFRAG_SLAB_INUSE_H
#define SLABDEFRAG_SLAB_INUSE_H

#include "internal.h"

#define SLAB_FP_INUSE ((void *)1)

/* In slab_cache->flags (outside SLAB_VALID_FLAGS): the owner placed the free
 * pointer inside the object (slab_cache_set_freeptr_offset, cache.c), so the
 * rest of a free object stays intact and defrag callbacks need it no further
 * out.  Such a cache has fp_outside false: its in-use marks are overwritten by
 * the owner's data, and a defrag pass walks its free lists instead. */
#define SLAB_CACHE_FP_PLACED 0x80000000u

/* Every path that hands out an object calls this once fp_get(obj) is done. */
static inline void obj_mark_inuse(const struct slab_cache *s, void *obj)
{
    if (s->fp_outside) /* inside the object the owner's data would overwrite it */
        fp_set(s, obj, SLAB_FP_INUSE);
}

/* 1 when obj carries the in-use mark (see the race note above). */
__attribute__((no_sanitize("thread"))) static inline bool obj_marked_inuse(const struct slab_cache *s,
                                                                            const void *obj)
{
    const char *slot = (const char *)obj + s->fp_offset;
    uintptr_t v = *(const volatile uintptr_t *)(const void *)slot;
    return (v ^ fp_key(s, slot)) == (uintptr_t)SLAB_FP_INUSE;
}

#endif
