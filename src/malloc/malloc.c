/*
 * malloc/malloc.c — the standard allocation functions on slab caches.
 *
 * 1. Size classes (MFE_NCLASSES = 72).  Class i < 8 holds 16 * (i + 1) bytes
 *    (16 .. 128); above, each doubling (2^k, 2^(k+1)] for k = 7 .. 14 has 8
 *    classes 2^k + j * 2^(k-3), j = 1 .. 8, up to 32 KiB.  So an object wastes at
 *    most 1/9 of itself above 128 bytes, and at most 15 bytes below (the 16-byte
 *    alignment every malloc pointer has).  size_class() is a shift for sizes up
 *    to 128 and a count-leading-zeros plus two shifts above: no table, no loop.
 *    Each class is a slab cache "malloc-<size>" (alignment 16, no constructor):
 *    objects sit at slab base + a multiple of 64 + i * size, so a class whose
 *    size is a multiple of 32 or 64 gives that alignment too (memalign).
 * 2. The paths.  malloc: class → cache (one acquire load, a plain load on x86) →
 *    slab_alloc.  free: slab_cache_of (the slab core's segment map and slab
 *    header) → slab_free, which validates the pointer and catches double frees.
 *    Sizes above 32 KiB and alignments above 64 go to large.c.
 * 3. Reentrancy.  mfe_depth counts how deep this thread is inside the allocator.
 *    Around every call into the slab core it is raised, so a malloc made during
 *    that call (a defrag pass's vectors when slab_malloc_trim shrinks a cache;
 *    libc code the core calls: pthread_create when it starts its purge or stats
 *    thread, atexit, pthread_atfork) is served by bootstrap.c instead of
 *    re-entering the core.  The core's own metadata comes from its mmap-based
 *    meta allocator, never from malloc.  Before initialisation every request takes the slow
 *    path, which initialises once (below) and retries.
 * 4. Initialisation.  Lazy, on the first request, which may come before any
 *    constructor runs and from inside the dynamic loader: init_state goes
 *    0 → 1 (one thread creates the 72 caches with mfe_depth raised, registers
 *    the fork hooks) → 2.  Other threads arriving meanwhile yield until 2.
 *    All caches are created at once: creating one later would take the slab
 *    core's cache-list lock, which slab_info_write holds while it formats (and
 *    may allocate).
 * 5. fork.  The slab core's fork table (slab/fork.h) runs our prepare hook
 *    after the core's (FORK_ORDER_MALLOC, the last): it takes the bootstrap
 *    arena's and the large registry's locks; parent and child release them.  The child keeps every cache; heaps of threads that do not
 *    exist in the child keep their slabs (a bounded leak, as with glibc's
 *    per-thread caches).
 * 6. Thread exit: the slab core's thread-exit hook flushes the thread's heaps.
 * 7. Errors.  ENOMEM with NULL (posix_memalign returns it); EINVAL for bad
 *    alignments as glibc; a pointer in no slab, no arena block and no large
 *    mapping aborts via mfe_report.  free() preserves errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "slab/fork.h"

/* Our locks are leaves that slab-core code may take while holding its own (a
 * defrag pass allocating its vectors nests into bootstrap.c), so they are taken
 * after every core lock: above fork.h's largest order, FORK_ORDER_PURGE. */
#define FORK_ORDER_MALLOC (FORK_ORDER_PURGE + 4)

__thread unsigned mfe_depth __attribute__((tls_model("initial-exec")));

static _Atomic(struct slab_cache *) classes[MFE_NCLASSES];
static _Atomic int init_state; /* 0 not started, 1 running, 2 done */

/* Class of each 16-byte step up to 1 KiB: class boundaries are multiples of 16,
 * so every size in (16 (j - 1), 16 j] has the class of 16 j (0 for size 0). */
static const uint8_t class_small[65] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 16, 17, 17, 18, 18, 19, 19, 20, 20, 21, 21, 22, 22, 23,
    23, 24, 24, 24, 24, 25, 25, 25, 25, 26, 26, 26, 26, 27, 27, 27,
    27, 28, 28, 28, 28, 29, 29, 29, 29, 30, 30, 30, 30, 31, 31, 31,
    31,
};

static inline unsigned size_class(size_t n)
{
    if (n <= 1024)
        return class_small[(n + 15) >> 4];
    unsigned k = 63u - (unsigned)__builtin_clzl(n - 1); /* 2^k < n <= 2^(k+1) */
    return 8 + (k - 7) * 8 + (unsigned)((n - 1 - ((size_t)1 << k)) >> (k - 3));
}

static size_t class_size(unsigned i)
{
    if (i < 8)
        return 16 * (size_t)(i + 1);
    unsigned k = 7 + (i - 8) / 8, j = (i - 8) % 8 + 1;
    return ((size_t)1 << k) + (size_t)j * ((size_t)1 << (k - 3));
}

struct slab_cache *mfe_class_cache(unsigned cls)
{
    return atomic_load_explicit(&classes[cls], memory_order_acquire);
}

/* --- initialisation and fork ---------------------------------------------- */
static void fork_prepare(void)
{
    boot_fork_prepare();
    large_fork_prepare();
}

static void fork_release(void)
{
    large_fork_release();
    boot_fork_release();
}

static void class_name(char *buf, size_t n)
{
    char digits[24];
    int i = 0;
    do
        digits[i++] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    memcpy(buf, "malloc-", 7);
    buf += 7;
    while (i)
        *buf++ = digits[--i];
    *buf = '\0';
}

static void create_classes(void)
{
    mfe_depth++;
    for (unsigned i = 0; i < MFE_NCLASSES; i++) {
        char name[32];
        class_name(name, class_size(i));
        struct slab_cache *c = slab_cache_create(name, class_size(i), 16, 0, NULL);
        if (!c)
            mfe_report("malloc", NULL, "cannot create the size-class caches");
        atomic_store_explicit(&classes[i], c, memory_order_release);
    }
    slab_fork_register(fork_prepare, fork_release, fork_release, FORK_ORDER_MALLOC);
    mfe_depth--;
}

static void front_init(void)
{
    int expect = 0;
    if (atomic_compare_exchange_strong(&init_state, &expect, 1)) {
        create_classes();
        atomic_store(&init_state, 2);
        return;
    }
    while (atomic_load(&init_state) != 2)
        sched_yield();
}

/* Make sure the library is initialised when it is loaded, even if the program
 * never allocates (slab_info_write then lists the classes). */
__attribute__((constructor)) static void front_ctor(void)
{
    if (atomic_load(&init_state) == 0 && mfe_depth == 0)
        front_init();
}

/* --- allocation ------------------------------------------------------------ */
static void *alloc_slow(size_t n)
{
    if (mfe_depth)
        return boot_alloc(n);
    front_init();
    return malloc(n);
}

void *malloc(size_t n)
{
    if (MFE_LIKELY(n <= SLAB_MALLOC_MAX_CLASS)) {
        struct slab_cache *c = atomic_load_explicit(&classes[size_class(n)], memory_order_acquire);
        if (MFE_LIKELY(c && !mfe_depth)) {
            mfe_depth = 1;
            void *p = slab_alloc(c);
            mfe_depth = 0;
            return p;
        }
        return alloc_slow(n);
    }
    return large_alloc(n, 0);
}

/* Objects aligned to `align` (a power of two, 16 < align <= 64) of >= n bytes:
 * the smallest class at least n whose size is a multiple of align. */
static void *alloc_aligned_class(size_t n, size_t align)
{
    unsigned i = size_class(n < align ? align : n);
    while (i < MFE_NCLASSES && class_size(i) % align)
        i++;
    if (i == MFE_NCLASSES || mfe_depth)
        return large_alloc(n, align);
    return malloc(class_size(i));
}

static void *alloc_aligned(size_t align, size_t n)
{
    if (align <= 16)
        return malloc(n);
    if (align <= 64 && n <= SLAB_MALLOC_MAX_CLASS)
        return alloc_aligned_class(n, align);
    return large_alloc(n, align);
}

void *calloc(size_t nmemb, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(nmemb, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    if (n > SLAB_MALLOC_MAX_CLASS)
        return large_alloc(n, 0); /* fresh anonymous pages: already zero */
    void *p = malloc(n);
    if (p)
        memset(p, 0, n);
    return p;
}

/* --- free and sizes ------------------------------------------------------- */
static void free_other(void *p)
{
    if (boot_owns(p))
        boot_free(p);
    else if (!large_free(p))
        mfe_report("free", p, "not allocated by slabdefrag malloc (or freed twice)");
}

void free(void *p)
{
    if (MFE_UNLIKELY(!p))
        return;
    int saved = errno;
    mfe_depth++;
    int done = slab_free_object(p);
    mfe_depth--;
    if (MFE_UNLIKELY(!done))
        free_other(p);
    errno = saved;
}

size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    struct slab_cache *c = slab_cache_of(p);
    if (c)
        return slab_cache_object_size(c);
    if (boot_owns(p))
        return boot_usable(p);
    size_t n = large_usable(p);
    if (!n)
        mfe_report("malloc_usable_size", p, "not allocated by slabdefrag malloc");
    return n;
}

/* --- realloc ---------------------------------------------------------------- */
static void *move_to_new(void *p, size_t old, size_t n)
{
    void *q = malloc(n);
    if (!q)
        return NULL; /* p stays valid, errno ENOMEM */
    memcpy(q, p, old < n ? old : n);
    free(p);
    return q;
}

void *realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    struct slab_cache *c = slab_cache_of(p);
    if (c) {
        size_t old = slab_cache_object_size(c);
        if (n <= old && (n > SLAB_MALLOC_MAX_CLASS || class_size(size_class(n)) == old))
            return p; /* same class: in place */
        return move_to_new(p, old, n);
    }
    if (boot_owns(p))
        return move_to_new(p, boot_usable(p), n);
    size_t old = large_usable(p);
    if (!old)
        mfe_report("realloc", p, "not allocated by slabdefrag malloc");
    if (n > SLAB_MALLOC_MAX_CLASS) {
        void *q = large_resize(p, n);
        if (q)
            return q;
    }
    return move_to_new(p, old, n);
}

void *reallocarray(void *p, size_t nmemb, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(nmemb, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n);
}

/* --- aligned allocation ----------------------------------------------------- */
static bool power_of_two(size_t a) { return a && !(a & (a - 1)); }

int posix_memalign(void **out, size_t align, size_t n)
{
    if (!power_of_two(align) || align % sizeof(void *))
        return EINVAL;
    int saved = errno;
    void *p = alloc_aligned(align, n);
    if (!p)
        return ENOMEM;
    errno = saved;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    if (!power_of_two(align)) {
        errno = EINVAL;
        return NULL;
    }
    return alloc_aligned(align, n);
}

void *memalign(size_t align, size_t n)
{
    if (align > ((size_t)1 << 62)) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = 1; /* glibc: a non-power of two is rounded up */
    while (a < align)
        a <<= 1;
    return alloc_aligned(a, n);
}

void *valloc(size_t n) { return alloc_aligned(MFE_PAGE, n); }

void *pvalloc(size_t n)
{
    if (n > PTRDIFF_MAX - MFE_PAGE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t rounded = (n + MFE_PAGE - 1) & ~(size_t)(MFE_PAGE - 1);
    return alloc_aligned(MFE_PAGE, rounded ? rounded : MFE_PAGE);
}

int malloc_trim(size_t pad)
{
    (void)pad;
    return slab_malloc_trim() > 0;
}
