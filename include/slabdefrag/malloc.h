/*
 * <slabdefrag/malloc.h> — the malloc front end: the standard allocation functions
 * on slabdefrag's slab caches, and defragmentation of malloc'd memory.
 *
 * libslabdefrag-malloc (shared or static) defines malloc, free, calloc, realloc,
 * reallocarray, posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 * malloc_usable_size and malloc_trim with glibc's contracts:
 *   - every pointer is aligned to 16 bytes (more for the *align functions);
 *   - failure returns NULL (posix_memalign: the error number) with errno ENOMEM;
 *     calloc and reallocarray check nmemb * size for overflow (ENOMEM);
 *   - malloc(0) returns a unique pointer; realloc(p, 0) frees p and returns NULL;
 *     realloc(NULL, n) is malloc(n); free(NULL) does nothing; free keeps errno;
 *   - fork() from a multithreaded process leaves a usable allocator in the child.
 * Run any program on it with LD_PRELOAD=<libdir>/libslabdefrag-malloc.so, or link
 * it (pkg-config slabdefrag-malloc).  The library also contains and exports the
 * slab API of <slabdefrag/slab.h>, so a process has one allocator and sees the
 * front end's caches through slab_info_write(), the stats endpoint
 * (SLABDEFRAG_STATS=1) and slab_reclaim().
 *
 * Size classes: 16..128 bytes in steps of 16, then 8 classes per doubling up to
 * 32 KiB (136 → 144, 160, ... 256, 288, ...): above 128 bytes at most 1/9 of an
 * object is unused (between 64 and 128 bytes, where the 16-byte alignment sets
 * the step, at most 15 of 80 bytes).  Each class is a slab cache named
 * "malloc-<size>".  Larger requests (and alignments above 64 bytes) are mapped
 * from the OS page-aligned and unmapped at free.
 *
 * A pointer the front end did not hand out (another allocator's, a stack
 * address, an interior pointer) and a detected double free abort the process
 * with a message on stderr naming the pointer, as slab_free does.  (An object
 * of another slab cache of the same process passed to free() goes back to that
 * cache: free() finds caches by address, it does not tell malloc's apart.)
 */
#ifndef SLABDEFRAG_MALLOC_H
#define SLABDEFRAG_MALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest size served from a slab cache; larger requests are mapped directly. */
#define SLAB_MALLOC_MAX_CLASS 32768u

/*
 * Would moving this allocation help give memory back?  1 if it lies in a slab
 * that a defrag pass would rather empty (less than 3/4 full, not being allocated
 * from by this thread, not owned by another thread), 0 otherwise (also for NULL,
 * large or foreign pointers).  Lock-free: meant to be called for every pointer an
 * application walks, as Redis' active defrag asks its allocator.  The answer may
 * be stale when other threads free into the same slab concurrently.
 */
int slab_malloc_defrag_hint(const void *ptr);

/*
 * If slab_malloc_defrag_hint(ptr) says so, copy the allocation into a fuller slab
 * of its size class (this thread's allocation slab, which takes the fullest
 * partial slab first), free the old one and return the new address; otherwise
 * (or when no memory is available) return ptr unchanged.  The caller must own
 * ptr exclusively (no other thread may use it during the call) and update its
 * references to the returned pointer.  malloc_usable_size() stays the same.
 */
void *slab_malloc_defrag_move(void *ptr);

/*
 * Hand every empty slab of the front end's caches back to the OS now (and
 * defragment their partial slabs as slab_cache_shrink does); returns the bytes
 * handed back.  malloc_trim(pad) calls it and returns 1 if anything was released.
 */
long slab_malloc_trim(void);

#ifdef __cplusplus
}
#endif

#endif
