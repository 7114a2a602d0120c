/*
 * slab/scratch.h — large temporary arrays straight from mmap, for the slab
 * core's batch operations (a defrag pass's candidate and release arrays, the
 * runs of a batched release).
 *
 * Why not malloc: glibc raises its mmap threshold to the size of the largest
 * mmapped block freed, after which such arrays come from the brk heap and stay
 * resident when freed — a pass would leave its bookkeeping in the RSS it was
 * run to reduce.  mmap'd scratch is returned to the OS when released.  Sizes
 * are rounded up to whole pages; NULL (errno ENOMEM) on failure.
 */
#ifndef SLABDEFRAG_SLAB_SCRATCH_H
#define SLABDEFRAG_SLAB_SCRATCH_H

#include <stddef.h>
#include <sys/mman.h>

static inline size_t scratch_round(size_t bytes)
{
    return (bytes + 4095) & ~(size_t)4095;
}

static inline void *scratch_alloc(size_t bytes)
{
    void *p = mmap(NULL, scratch_round(bytes ? bytes : 1), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static inline void scratch_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, scratch_round(bytes ? bytes : 1));
}

#endif
