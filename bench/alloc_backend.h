/*
 * alloc_backend.h: the one allocator seam of the allocator benchmark.
 *
 * alloc_bench.c is compiled once per allocator into its own executable
 * (bench_alloc_glibc, _jemalloc, _mimalloc, _tcmalloc, _slabdefrag) with
 * exactly one BENCH_ALLOC_<NAME> macro defined.  The tests only ever call
 * obj_alloc(size) / obj_free(p, size), which this header turns into a direct
 * call of the allocator under test:
 *
 *   peers       malloc(size) / free(p).  The peer replaces malloc by being
 *               linked in front of libc (-ljemalloc, -lmimalloc,
 *               -ltcmalloc_minimal); glibc is plain libc.  slabdefrag_malloc
 *               is slabdefrag's own malloc front end (libslabdefrag-malloc.so)
 *               measured the same way.
 *   slabdefrag  slab_alloc(bench_slab_cache) / slab_free(bench_slab_cache, p)
 *               on a cache of exactly `size` bytes, created by
 *               backend_setup(size).  A cache is the natural unit of a slab
 *               allocator, so that is the fair comparison with malloc(size).
 *
 * Both sides are one direct call with no extra indirection, so the harness
 * costs the same for every allocator.  The functions in alloc_backend.c do the
 * slow work: set up, verify at run time that the intended allocator really
 * serves malloc (an executable that silently measured glibc would make the
 * whole table a lie), purge, tear down.
 */
#ifndef SLABDEFRAG_BENCH_ALLOC_BACKEND_H
#define SLABDEFRAG_BENCH_ALLOC_BACKEND_H

#include <stddef.h>
#include <stdio.h>

#if defined(BENCH_ALLOC_SLABDEFRAG)
#include <slabdefrag/slab.h>
#define BENCH_ALLOC_NAME "slabdefrag"
extern struct slab_cache *bench_slab_cache;
static inline void *obj_alloc(size_t size)
{
    (void)size;
    return slab_alloc(bench_slab_cache);
}
static inline void obj_free(void *p, size_t size)
{
    (void)size;
    slab_free(bench_slab_cache, p);
}
#else
#include <stdlib.h>
#if defined(BENCH_ALLOC_SLABDEFRAG_MALLOC)
#define BENCH_ALLOC_NAME "slabdefrag_malloc"
#elif defined(BENCH_ALLOC_GLIBC)
#define BENCH_ALLOC_NAME "glibc"
#elif defined(BENCH_ALLOC_JEMALLOC)
#define BENCH_ALLOC_NAME "jemalloc"
#elif defined(BENCH_ALLOC_MIMALLOC)
#define BENCH_ALLOC_NAME "mimalloc"
#elif defined(BENCH_ALLOC_TCMALLOC)
#define BENCH_ALLOC_NAME "tcmalloc"
#else
#error "define one BENCH_ALLOC_{GLIBC,JEMALLOC,MIMALLOC,TCMALLOC,SLABDEFRAG,SLABDEFRAG_MALLOC}"
#endif
static inline void *obj_alloc(size_t size)
{
    return malloc(size);
}
static inline void obj_free(void *p, size_t size)
{
    (void)size;
    free(p);
}
#endif

/*
 * Print an "ALLOCATOR alloc=<name> verified=<0|1> ..." line describing what
 * really serves allocations in this process.  Returns 1 when verified.
 */
int backend_identify(FILE *out);

/* Prepare for objects of `size` bytes (slabdefrag: create the cache; peers:
 * one warm-up malloc/free so lazy initialisation is not timed).  0 or -1. */
int backend_setup(size_t size);

/* Undo backend_setup (slabdefrag: destroy the cache). */
void backend_teardown(void);

/*
 * Hand free memory back to the OS with the allocator's documented call:
 * malloc_trim(0), mallctl("arena.<ALL>.purge"), mi_collect(true),
 * MallocExtension_ReleaseFreeMemory(), slab_cache_shrink().
 * Returns the name of the call, for the report.
 */
const char *backend_purge(void);

#endif /* SLABDEFRAG_BENCH_ALLOC_BACKEND_H */
