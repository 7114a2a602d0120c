/*
 * library/hooks.c — the library's wiring: which upper module answers each of
 * the slab core's hooks (slab/hooks.h).  It sits above every layer, so it may
 * name them all; the core only knows the table's type.
 *
 *   cache_create  the control endpoint's autostart (SLABDEFRAG_STATS=1,
 *                 endpoint/autostart.c), so that the first slab_cache_create
 *                 starts serving in a statically linked program too: this
 *                 object is linked whenever cache.c is (cache.c refers to
 *                 slab_upper_hooks), and it refers to endpoint_autostart.
 *
 * No state, no lock: a constant table, set before main runs.
 */
#include "endpoint/endpoint.h"
#include "slab/hooks.h"

const struct slab_upper_hooks slab_upper_hooks = {
    .cache_create = endpoint_autostart,
};
