/*
 * slab/debug.h — per-cache debug checks (slub_debug's letters), off by default.
 *
 * F  SLAB_CONSISTENCY  full checks on free (the object must not be on any free list)
 * Z  SLAB_RED_ZONE     guard bytes after each object, checked on free and alloc
 * P  SLAB_POISON       free objects filled with a pattern, checked on alloc
 * U  SLAB_STORE_USER   alloc/free call sites kept and shown in reports
 * A debug cache never takes the allocation fast path; see debug.c.
 */
#ifndef SLABDEFRAG_SLAB_DEBUG_H
#define SLABDEFRAG_SLAB_DEBUG_H

#include "internal.h"

#define SLAB_DEBUG_FLAGS (SLAB_POISON | SLAB_RED_ZONE | SLAB_STORE_USER | SLAB_CONSISTENCY)

/* Apply SLABDEFRAG_DEBUG=FZPU[,cache...] to the flags of a cache being created. */
unsigned debug_flags_from_env(const char *cache_name, unsigned flags);
/* Extra bytes a debug cache needs per object slot after the object. */
size_t debug_slot_extra(unsigned flags);
void debug_on_alloc(struct slab_cache *s, void *obj);
void debug_on_free(struct slab_cache *s, struct slab *sl, void *obj);
void debug_init_object(struct slab_cache *s, void *obj);

#endif
