/*
 * malloc/bootstrap.c — the reentrant arena: memory for requests made while this
 * thread is already inside the allocator.
 *
 * 1. Why.  The front end calls into the slab core, and the slab core (and the
 *    libc functions it uses during initialisation: pthread_create for the stats
 *    thread, atexit, pthread_atfork) may call malloc/calloc/free themselves.
 *    Such a nested call must not re-enter the slab core (it would recurse on the
 *    same cache, or deadlock on a lock this thread holds), so malloc.c sends it
 *    here whenever mfe_depth != 0.
 * 2. Objects.  One region of ARENA_BYTES reserved with mmap (MAP_NORESERVE: only
 *    touched pages cost memory), carved by a bump pointer into blocks of 2^k bytes
 *    (k = 5 .. 16), each starting with a 16-byte header {magic, class}.  Freed
 *    blocks go on a per-class free list and are reused; the region is never
 *    unmapped.  Requests above 64 KiB - 16 go to large.c (which never allocates).
 * 3. Locking.  arena.lock (a pthread mutex, which never allocates) protects
 *    every field.  fork: malloc.c's atfork handlers take it before fork and
 *    release it in both processes.
 * 4. Invariants.  A block's header magic is BOOT_LIVE while allocated and
 *    BOOT_FREE on a free list; freeing a block that is not BOOT_LIVE aborts.
 * 5. Numbers.  ARENA_BYTES = 256 MiB of address space; the slab core's heaps
 *    (one per thread and size class used) are the main users, a few KiB per
 *    thread.  When the region is exhausted, blocks come from large.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define ARENA_BYTES   ((size_t)256 << 20)
#define BOOT_MIN_SHIFT 5
#define BOOT_MAX_SHIFT 16
#define BOOT_HDR      16u
#define BOOT_LIVE     0xb0071ee7u
#define BOOT_FREE     0xb007f4eeu

struct boot_hdr {
    uint32_t magic;
    uint32_t shift;
    void *next; /* free-list link while BOOT_FREE */
};

static struct {
    pthread_mutex_t lock;
    char *base;   /* NULL until the first request */
    size_t used;  /* bump offset */
    struct boot_hdr *free[BOOT_MAX_SHIFT + 1];
} arena = { .lock = PTHREAD_MUTEX_INITIALIZER };

static unsigned block_shift(size_t n)
{
    size_t total = n + BOOT_HDR;
    unsigned k = BOOT_MIN_SHIFT;
    while (((size_t)1 << k) < total)
        k++;
    return k;
}

static struct boot_hdr *carve(unsigned k)
{
    if (!arena.base) {
        void *m = mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        arena.base = m;
    }
    size_t bytes = (size_t)1 << k;
    if (ARENA_BYTES - arena.used < bytes)
        return NULL;
    struct boot_hdr *b = (struct boot_hdr *)(arena.base + arena.used);
    arena.used += bytes;
    return b;
}

void *boot_alloc(size_t n)
{
    if (n > ((size_t)1 << BOOT_MAX_SHIFT) - BOOT_HDR)
        return large_alloc(n, 0);
    unsigned k = block_shift(n);
    pthread_mutex_lock(&arena.lock);
    struct boot_hdr *b = arena.free[k];
    if (b)
        arena.free[k] = b->next;
    else
        b = carve(k);
    if (b) {
        b->magic = BOOT_LIVE;
        b->shift = k;
    }
    pthread_mutex_unlock(&arena.lock);
    if (!b)
        return large_alloc(n, 0);
    return (char *)b + BOOT_HDR;
}

bool boot_owns(const void *p)
{
    /* base is written once under the lock; a pointer of ours was handed out
     * after that store by this or a synchronised thread. */
    char *base = __atomic_load_n(&arena.base, __ATOMIC_RELAXED);
    return base && (uintptr_t)p - (uintptr_t)base < ARENA_BYTES;
}

static struct boot_hdr *header_of(const void *p, const char *fn)
{
    if (((uintptr_t)p & (BOOT_HDR - 1)) != 0)
        mfe_report(fn, p, "not the start of an allocation");
    return (struct boot_hdr *)((char *)p - BOOT_HDR);
}

void boot_free(void *p)
{
    struct boot_hdr *b = header_of(p, "free");
    pthread_mutex_lock(&arena.lock);
    if (b->magic != BOOT_LIVE || b->shift < BOOT_MIN_SHIFT || b->shift > BOOT_MAX_SHIFT) {
        pthread_mutex_unlock(&arena.lock);
        mfe_report("free", p, b->magic == BOOT_FREE ? "double free" : "not the start of an allocation");
    }
    b->magic = BOOT_FREE;
    b->next = arena.free[b->shift];
    arena.free[b->shift] = b;
    pthread_mutex_unlock(&arena.lock);
}

size_t boot_usable(const void *p)
{
    struct boot_hdr *b = header_of(p, "malloc_usable_size");
    if (b->magic != BOOT_LIVE)
        mfe_report("malloc_usable_size", p, "not a live allocation");
    return ((size_t)1 << b->shift) - BOOT_HDR;
}

void boot_fork_prepare(void) { pthread_mutex_lock(&arena.lock); }
void boot_fork_release(void) { pthread_mutex_unlock(&arena.lock); }
