/*
 * endpoint/endpoint.h — what the rest of the library may call in the control
 * endpoint module (its public functions are in <slabdefrag/stats.h>; its
 * internals in endpoint/internal.h).
 */
#ifndef SLABDEFRAG_ENDPOINT_ENDPOINT_H
#define SLABDEFRAG_ENDPOINT_ENDPOINT_H

/* Start serving if SLABDEFRAG_STATS=1 (autostart.c).  Cheap after the first
 * call; safe to re-enter from inside itself (starting the endpoint allocates,
 * and malloc may be the slab front end, which creates caches). */
void endpoint_autostart(void);

#endif
