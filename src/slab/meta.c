/*
 * slab/meta.c — the slab core's own allocator for its metadata (caches, heaps,
 * scratch arrays), so that the core never calls libc malloc/calloc/free.
 *
 * Why: when the malloc front end replaces malloc (LD_PRELOAD), a core that
 * called malloc from inside slab_alloc's slow path would recurse into itself
 * (a heap is created by the first allocation of a thread, and creating it would
 * allocate).  Everything the core allocates for itself comes from here instead.
 *
 * 1. Objects.  Blocks of a power-of-two size class, 16 B .. 64 KiB, carved from
 *    256 KiB chunks mapped with mmap; a free block goes on its class's free list
 *    (the link is the block's first word).  Larger requests are a mapping each.
 *    Every block handed out is zeroed (calloc semantics) and aligned to its class
 *    size up to 64 bytes.
 * 2. Locking.  meta_lock protects: free lists, the current chunk and its cursor.
 *    It is a leaf lock: nothing else is taken while it is held (lock order: last).
 * 3. Lifecycle.  Chunks are never unmapped: metadata churn is rare (caches and
 *    threads come and go slowly) and type-stable memory keeps late readers of a
 *    freed heap or cache descriptor safe.  Large blocks are unmapped at free.
 * 4. Invariants.  A block is on at most one free list; class(size) of meta_free
 *    equals the class of the meta_alloc that returned it (callers pass the size).
 * 5. Numbers.  256 KiB chunks: one mmap per ~1000 heaps.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>

#include "fork.h"
#include "internal.h"

#define META_MIN_SHIFT 4
#define META_MAX_SHIFT 16
#define META_CHUNK     ((size_t)256 << 10)
#define META_CLASSES   (META_MAX_SHIFT - META_MIN_SHIFT + 1)

static pthread_mutex_t meta_lock = PTHREAD_MUTEX_INITIALIZER;
static void *meta_free_list[META_CLASSES];
static char *chunk_cur, *chunk_end;

static unsigned meta_class(size_t size)
{
    unsigned shift = META_MIN_SHIFT;
    while (((size_t)1 << shift) < size)
        shift++;
    return shift - META_MIN_SHIFT;
}

static void *map_zeroed(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *meta_alloc(size_t size)
{
    if (size == 0)
        size = 1;
    if (size > ((size_t)1 << META_MAX_SHIFT))
        return map_zeroed(size);
    unsigned c = meta_class(size);
    size_t bytes = (size_t)1 << (c + META_MIN_SHIFT);
    void *p;
    pthread_mutex_lock(&meta_lock);
    if ((p = meta_free_list[c]) != NULL) {
        meta_free_list[c] = *(void **)p;
    } else {
        /* Blocks are aligned to their size up to a cache line (struct heap
         * keeps its remotely written field on a line of its own). */
        size_t align = bytes < 64 ? bytes : 64;
        chunk_cur = (char *)(((uintptr_t)chunk_cur + align - 1) & ~(uintptr_t)(align - 1));
        if (chunk_cur > chunk_end || (size_t)(chunk_end - chunk_cur) < bytes) {
            char *chunk = map_zeroed(META_CHUNK);
            if (!chunk) {
                pthread_mutex_unlock(&meta_lock);
                return NULL;
            }
            chunk_cur = chunk;
            chunk_end = chunk + META_CHUNK;
        }
        p = chunk_cur; /* fresh mapping: already zero */
        chunk_cur += bytes;
        pthread_mutex_unlock(&meta_lock);
        return p;
    }
    pthread_mutex_unlock(&meta_lock);
    memset(p, 0, bytes);
    return p;
}

void meta_free(void *p, size_t size)
{
    if (!p)
        return;
    if (size == 0)
        size = 1;
    if (size > ((size_t)1 << META_MAX_SHIFT)) {
        munmap(p, size);
        return;
    }
    unsigned c = meta_class(size);
    pthread_mutex_lock(&meta_lock);
    *(void **)p = meta_free_list[c];
    meta_free_list[c] = p;
    pthread_mutex_unlock(&meta_lock);
}

/* fork: the child must not inherit meta_lock held by a thread that is gone. */
static void meta_fork_prepare(void) { pthread_mutex_lock(&meta_lock); }
static void meta_fork_parent(void) { pthread_mutex_unlock(&meta_lock); }
static void meta_fork_child(void) { pthread_mutex_init(&meta_lock, NULL); }

__attribute__((constructor)) static void meta_fork_register(void)
{
    slab_fork_register(meta_fork_prepare, meta_fork_parent, meta_fork_child, FORK_ORDER_META);
}
