/*
 * slab/debug.h — per-cache debug checks (slub_debug's letters), off by default.
 *
 * F  SLAB_CONSISTENCY  every free checks the object's allocation state: any double
 *                      free, however delayed, is caught
 * Z  SLAB_RED_ZONE     8 guard bytes after each object, checked on free and alloc
 * P  SLAB_POISON       free objects filled with a pattern, checked on alloc (not
 *                      in ctor caches nor in caches with defrag callbacks)
 * U  SLAB_STORE_USER   alloc/free call sites kept and shown in every report
 * Any debug flag gives each slot a metadata word (allocation state), so double
 * frees are always caught in debug caches.  A debug cache never takes the
 * allocation fast path.  SLABDEFRAG_DEBUG=FZPU[,cache...] turns flags on from the
 * environment (all letters if none given; all caches if no name given).
 */
#ifndef SLABDEFRAG_SLAB_DEBUG_H
#define SLABDEFRAG_SLAB_DEBUG_H

#include "internal.h"

#define SLAB_DEBUG_FLAGS (SLAB_POISON | SLAB_RED_ZONE | SLAB_STORE_USER | SLAB_CONSISTENCY)

unsigned debug_flags_from_env(const char *cache_name, unsigned flags);
size_t debug_slot_extra(unsigned flags);   /* red zone bytes right after the object */
size_t debug_meta_size(unsigned flags);    /* metadata bytes after the free pointer */
void debug_init_object(struct slab_cache *s, void *obj);
void debug_on_alloc(struct slab_cache *s, void *obj, void *caller);
void debug_on_free(struct slab_cache *s, struct slab *sl, void *obj, void *caller);

#endif
