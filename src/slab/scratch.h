/*
 * slab/scratch.h — large temporary arrays straight from mmap, for the slab
 * core's batch operations (a defrag pass's candidate and release arrays, the
 * runs of a batched release).
 *
 * Why not malloc for large ones: glibc raises its mmap threshold to the size
 * of the largest mmapped block freed, after which such arrays come from the
 * brk heap and stay resident when freed — a pass would leave its bookkeeping
 * in the RSS it was run to reduce.  mmap'd scratch is returned to the OS when
 * released.  Arrays under SCRATCH_SMALL (a background step's, at most a few
 * KiB) come from malloc: two system calls and a page fault cost more than the
 * step's whole release, and glibc reuses small blocks.  The caller passes the
 * same size to scratch_free; NULL on failure.
 */
#ifndef SLABDEFRAG_SLAB_SCRATCH_H
#define SLABDEFRAG_SLAB_SCRATCH_H

#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>

#define SCRATCH_SMALL ((size_t)64 << 10)

static inline size_t scratch_round(size_t bytes)
{
    return (bytes + 4095) & ~(size_t)4095;
}

static inline void *scratch_alloc(size_t bytes)
{
    if (bytes < SCRATCH_SMALL)
        return malloc(bytes ? bytes : 1);
    void *p = mmap(NULL, scratch_round(bytes ? bytes : 1), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static inline void scratch_free(void *p, size_t bytes)
{
    if (bytes < SCRATCH_SMALL)
        free(p);
    else if (p)
        munmap(p, scratch_round(bytes));
}

#endif
