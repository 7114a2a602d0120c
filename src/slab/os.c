/*
 * slab/os.c — the OS boundary: segments of slab memory, and the segment map.
 *
 * 1. Objects.  A segment is a 4 MiB region, aligned to 4 MiB, obtained with mmap
 *    and cut into slabs of one size (2^shift, 4 KiB .. 256 KiB); its descriptor
 *    (struct segment) lives outside it, so every byte of the segment is slab memory.
 *    One segment pool per slab size; a slab is "in use" (handed to a cache) or
 *    "free" (its pages given back with MADV_DONTNEED, so they cost no RSS).
 * 2. Locking.  pool[shift].lock protects: the pool's segment list, each of its
 *    segments' bitmap and nr_free.  The segment map is written under the same
 *    lock and read without it (relaxed atomics): a pointer that really is a slab
 *    object was published to its user after its segment was mapped.
 * 3. Lifecycle.  os_slab_alloc takes a free slab from a segment with room, taking
 *    a spare segment or mapping a new one when none has; os_slab_free first
 *    MADV_DONTNEEDs the slab (RSS drops at once, as the contract demands — never
 *    MADV_FREE), then marks it free.  A segment whose slabs are all free becomes a
 *    spare (any pool may reuse it, with its own slab size) and is never unmapped:
 *    a thread that has just published a free may still look at the slab header
 *    (free.c), and a defrag callback may read a frozen object, so slab memory
 *    must stay readable for the life of the process.  Its pages are not resident
 *    (every slab was MADV_DONTNEEDed), so this costs address space, not RSS.
 * 4. Invariants.  nr_free == number of zero bits among the first nslabs bits;
 *    segmap[addr >> 22] == shift for every address of a mapped segment, else 0.
 * 5. Numbers.  4 MiB segments: one mmap per 16 .. 1024 slabs keeps syscalls off the
 *    slab-creation path; keeping one empty segment per pool avoids map/unmap churn
 *    at a cost of address space only (its pages are not resident).
 * 6. Observability.  Caches count their own bytes_mapped (slabs they hold).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define NR_POOLS (SLAB_MAX_SHIFT - SLAB_MIN_SHIFT + 1)
#define MAX_SLABS_PER_SEGMENT (SEGMENT_SIZE >> SLAB_MIN_SHIFT)

struct segment {
    char *base;
    unsigned shift, nslabs, nr_free;
    uint64_t used[MAX_SLABS_PER_SEGMENT / 64];
    struct segment *next, *prev;
};

static struct pool {
    pthread_mutex_t lock;
    struct segment *segments;
    unsigned nr_segments;
} pools[NR_POOLS] = {
    [0 ... NR_POOLS - 1] = { PTHREAD_MUTEX_INITIALIZER, NULL, 0 },
};

/* One byte per possible segment of the 47-bit user address space (32 MiB of
 * virtual memory, resident only where segments exist). */
static struct segment *spare_segments; /* whole free segments, under spare_lock */
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;

_Atomic uint8_t segmap[SEGMAP_ENTRIES];

static char *map_aligned_segment(void)
{
    size_t len = SEGMENT_SIZE * 2;
    char *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    char *base = (char *)(((uintptr_t)raw + SEGMENT_SIZE - 1) & ~(uintptr_t)(SEGMENT_SIZE - 1));
    if (base > raw)
        munmap(raw, (size_t)(base - raw));
    char *end = base + SEGMENT_SIZE;
    if (raw + len > end)
        munmap(end, (size_t)(raw + len - end));
    return base;
}

static struct segment *take_spare(void)
{
    pthread_mutex_lock(&spare_lock);
    struct segment *seg = spare_segments;
    if (seg)
        spare_segments = seg->next;
    pthread_mutex_unlock(&spare_lock);
    return seg;
}

static struct segment *segment_new(struct pool *p, unsigned shift)
{
    struct segment *seg = take_spare();
    if (seg) {
        char *base = seg->base;
        memset(seg, 0, sizeof *seg);
        seg->base = base;
    } else {
        seg = meta_alloc(sizeof *seg);
        if (!seg)
            return NULL;
        seg->base = map_aligned_segment();
        if (!seg->base) {
            meta_free(seg, sizeof *seg);
            return NULL;
        }
    }
    seg->shift = shift;
    seg->nslabs = (unsigned)(SEGMENT_SIZE >> shift);
    seg->nr_free = seg->nslabs;
    atomic_store_explicit(&segmap[(uintptr_t)seg->base >> SEGMENT_SHIFT], (uint8_t)shift, relaxed);
    seg->next = p->segments;
    if (p->segments)
        p->segments->prev = seg;
    p->segments = seg;
    p->nr_segments++;
    return seg;
}

static void segment_delete(struct pool *p, struct segment *seg)
{
    DLIST_UNLINK(&p->segments, seg, next, prev);
    p->nr_segments--;
    /* The segment map keeps the old slab size until the segment is reused, so
     * a stale pointer still finds (zeroed) slab headers there. */
    pthread_mutex_lock(&spare_lock);
    seg->next = spare_segments;
    spare_segments = seg;
    pthread_mutex_unlock(&spare_lock);
}

static int segment_take_slab(struct segment *seg)
{
    for (unsigned w = 0; w * 64 < seg->nslabs; w++) {
        uint64_t free_bits = ~seg->used[w];
        if (seg->nslabs - w * 64 < 64)
            free_bits &= (UINT64_C(1) << (seg->nslabs - w * 64)) - 1;
        if (free_bits) {
            unsigned bit = (unsigned)__builtin_ctzll(free_bits);
            seg->used[w] |= UINT64_C(1) << bit;
            seg->nr_free--;
            return (int)(w * 64 + bit);
        }
    }
    return -1;
}

void *os_slab_alloc(unsigned shift, struct segment **seg_out)
{
    struct pool *p = &pools[shift - SLAB_MIN_SHIFT];
    pthread_mutex_lock(&p->lock);
    struct segment *seg = p->segments;
    while (seg && seg->nr_free == 0)
        seg = seg->next;
    if (!seg)
        seg = segment_new(p, shift);
    void *base = NULL;
    if (seg) {
        int idx = segment_take_slab(seg);
        base = seg->base + ((size_t)idx << shift);
        *seg_out = seg;
    }
    pthread_mutex_unlock(&p->lock);
    if (!base)
        errno = ENOMEM;
    return base;
}

/* Pool lock held: the slab at base (already MADV_DONTNEEDed) is free again; a
 * segment left with no slab in use becomes a spare unless it is the pool's last. */
static void mark_slab_free(struct pool *p, struct segment *seg, void *base, unsigned shift)
{
    unsigned idx = (unsigned)(((char *)base - seg->base) >> shift);
    seg->used[idx / 64] &= ~(UINT64_C(1) << (idx % 64));
    seg->nr_free++;
    if (seg->nr_free == seg->nslabs && p->nr_segments > 1)
        segment_delete(p, seg);
}

void os_slab_free(void *base, unsigned shift, struct segment *seg)
{
    struct pool *p = &pools[shift - SLAB_MIN_SHIFT];
    /* Give the pages back before the slab can be handed out again. */
    madvise(base, (size_t)1 << shift, MADV_DONTNEED);
    pthread_mutex_lock(&p->lock);
    mark_slab_free(p, seg, base, shift);
    pthread_mutex_unlock(&p->lock);
}

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct os_slab_ref *)a)->base;
    uintptr_t y = (uintptr_t)((const struct os_slab_ref *)b)->base;
    return x < y ? -1 : x > y;
}

/* A run of slabs handed back with one MADV_DONTNEED. */
struct os_run {
    char *base;
    size_t len;
    struct segment *seg;
};

static bool slab_is_free(const struct segment *seg, unsigned idx)
{
    return !(seg->used[idx / 64] & (UINT64_C(1) << (idx % 64)));
}

/*
 * Pool lock held.  Cut the sorted refs[] into runs: consecutive refs of one
 * segment join a run when every slab between them is free; those free gap
 * slabs are marked in use (borrowed), so no os_slab_alloc can take one while
 * the run is zapped outside the lock.  The caller marks every slab of every
 * run free afterwards.  Returns the number of runs.
 */
static size_t bridge_free_gaps(const struct os_slab_ref *refs, size_t n, unsigned shift,
                               struct os_run *runs)
{
    size_t nr = 0;
    for (size_t i = 0; i < n;) {
        struct segment *seg = refs[i].seg;
        size_t j = i + 1;
        for (; j < n && refs[j].seg == seg; j++) {
            unsigned from = (unsigned)(((char *)refs[j - 1].base - seg->base) >> shift) + 1;
            unsigned to = (unsigned)(((char *)refs[j].base - seg->base) >> shift);
            unsigned k = from;
            while (k < to && slab_is_free(seg, k))
                k++;
            if (k < to)
                break;
            for (k = from; k < to; k++) {
                seg->used[k / 64] |= UINT64_C(1) << (k % 64);
                seg->nr_free--;
            }
        }
        char *end = (char *)refs[j - 1].base + ((size_t)1 << shift);
        runs[nr++] = (struct os_run){ .base = refs[i].base, .len = (size_t)(end - (char *)refs[i].base),
                                      .seg = seg };
        i = j;
    }
    return nr;
}

/*
 * Release many slabs of one size at once (a defrag pass's emptied slabs): one
 * MADV_DONTNEED per run of adjacent slabs instead of one per slab, outside the
 * pool lock, then one pool lock for all the bitmap updates.  refs[] is sorted
 * in place (unless it already is).  A run also spans slabs of the segment that
 * are already free (their pages are gone: zapping them again costs next to
 * nothing), which bridge_free_gaps() borrows for the duration.
 */
void os_slab_free_batch(struct os_slab_ref *refs, size_t n, unsigned shift)
{
    size_t size = (size_t)1 << shift;
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = (uintptr_t)refs[i - 1].base < (uintptr_t)refs[i].base;
    if (!sorted)
        qsort(refs, n, sizeof *refs, by_address);
    struct pool *p = &pools[shift - SLAB_MIN_SHIFT];
    struct os_run *runs = meta_alloc(n * sizeof *runs);
    if (runs) {
        pthread_mutex_lock(&p->lock);
        size_t nr = bridge_free_gaps(refs, n, shift, runs);
        pthread_mutex_unlock(&p->lock);
        for (size_t r = 0; r < nr; r++)
            madvise(runs[r].base, runs[r].len, MADV_DONTNEED);
        pthread_mutex_lock(&p->lock);
        for (size_t r = 0; r < nr; r++)
            for (size_t off = 0; off < runs[r].len; off += size)
                mark_slab_free(p, runs[r].seg, runs[r].base + off, shift);
        pthread_mutex_unlock(&p->lock);
        meta_free(runs, n * sizeof *runs);
        return;
    }
    for (size_t i = 0; i < n;) { /* no memory for the runs: adjacent slabs only */
        size_t j = i + 1;
        while (j < n && (char *)refs[j].base == (char *)refs[j - 1].base + size && refs[j].seg == refs[i].seg)
            j++;
        madvise(refs[i].base, (j - i) * size, MADV_DONTNEED);
        i = j;
    }
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < n; i++)
        mark_slab_free(p, refs[i].seg, refs[i].base, shift);
    pthread_mutex_unlock(&p->lock);
}

#include "fork.h" /* here, with the only code that needs it */

/* Fork (fork.h, FORK_ORDER_OS): every pool lock, then spare_lock (the order in
 * which segment_new nests them), held across fork(). */
static void os_fork_prepare(void)
{
    for (unsigned i = 0; i < NR_POOLS; i++)
        pthread_mutex_lock(&pools[i].lock);
    pthread_mutex_lock(&spare_lock);
}

static void os_fork_release(void)
{
    pthread_mutex_unlock(&spare_lock);
    for (unsigned i = NR_POOLS; i-- > 0;)
        pthread_mutex_unlock(&pools[i].lock);
}

__attribute__((constructor)) static void os_fork_register(void)
{
    slab_fork_register(os_fork_prepare, os_fork_release, os_fork_release, FORK_ORDER_OS);
}
