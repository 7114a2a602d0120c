/*
 * malloc/internal.h — what the files of the malloc front end share.
 *
 * The front end (malloc.c) serves requests up to SLAB_MALLOC_MAX_CLASS from
 * slab caches, one per size class; larger or over-aligned requests are mappings
 * of their own (large.c); allocations made while the front end is already inside
 * the allocator on the same thread (the slab core's own bookkeeping, library
 * code running during initialisation) come from a small reentrant arena
 * (bootstrap.c).  free() tells the three apart by address: the slab core's
 * segment map, the arena's reserved range, then the large-mapping registry;
 * anything else is a foreign pointer and aborts (report.c's message).
 */
#ifndef SLABDEFRAG_MALLOC_INTERNAL_H
#define SLABDEFRAG_MALLOC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <slabdefrag/malloc.h>
#include <slabdefrag/slab.h>

#define MFE_LIKELY(x)   __builtin_expect(!!(x), 1)
#define MFE_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MFE_HIDDEN      __attribute__((visibility("hidden")))
#define MFE_PAGE        4096u

/* Nesting depth of this thread inside the allocator (malloc.c).  Non-zero: a
 * request must not re-enter the slab core and goes to the bootstrap arena. */
extern __thread unsigned mfe_depth __attribute__((tls_model("initial-exec"))) MFE_HIDDEN;

/* bootstrap.c: reentrant arena for the allocator's own and early allocations. */
void *boot_alloc(size_t n) MFE_HIDDEN;            /* NULL + ENOMEM */
bool boot_owns(const void *p) MFE_HIDDEN;
void boot_free(void *p) MFE_HIDDEN;               /* aborts on a double free */
size_t boot_usable(const void *p) MFE_HIDDEN;
void boot_fork_prepare(void) MFE_HIDDEN;
void boot_fork_release(void) MFE_HIDDEN;

/* large.c: page-aligned mappings for big or over-aligned requests. */
void *large_alloc(size_t n, size_t align) MFE_HIDDEN; /* fresh zero memory; NULL + ENOMEM */
bool large_free(void *p) MFE_HIDDEN;              /* false: not a large allocation */
size_t large_usable(const void *p) MFE_HIDDEN;    /* 0: not a large allocation */
void *large_resize(void *p, size_t n) MFE_HIDDEN; /* mremap; NULL + ENOMEM (p kept) */
void large_fork_prepare(void) MFE_HIDDEN;
void large_fork_release(void) MFE_HIDDEN;

/* report.c: abort with "slabdefrag malloc: <fn>(<ptr>): <what>" (no stdio). */
_Noreturn void mfe_report(const char *fn, const void *p, const char *what) MFE_HIDDEN;

/* malloc.c: the size-class caches (NULL before initialisation). */
#define MFE_NCLASSES 72
struct slab_cache *mfe_class_cache(unsigned cls) MFE_HIDDEN;

#endif
