/*
 * bufcache/page.c: page descriptors — references, the page lock, the
 * (device, page number) index, and the free lists.
 *
 * 1. Objects and states.  Descriptors sit in one array of max_pages entries
 *    (memory_limit / 4096), 64 bytes each, mapped at bcache_create and touched
 *    lazily: [0, nr_inited) have been used.  Frames sit in a parallel array of
 *    4 KiB frames (frame i belongs to descriptor i).  A free descriptor is on the
 *    warm list (frame resident, PG_FRAME) or the cold list (frame released with
 *    MADV_DONTNEED); page_alloc prefers warm ones, so steady-state misses reuse
 *    an evicted page's frame without a system call.
 * 2. Locking.  refcount and flags are atomics; PG_LOCKED is a sleeping bit lock
 *    (futex on the flags word, PG_WAITERS says someone sleeps).  The index is an
 *    array of bucket heads; insert and remove take one of 64 stripe mutexes;
 *    lookups take none: they walk chains with acquire loads, pin a candidate with
 *    get-unless-zero and re-check its identity (descriptors are type-stable, so
 *    reading a stale one is safe; a walk that strays into another chain because
 *    its page was moved only causes a miss, and the slow path re-checks under the
 *    stripe lock).  free_lock protects the free lists and nr_inited growth.
 * 3. References: see internal.h.  Freezing (refcount 1+pins -> 0) excludes every
 *    new pin: a lookup that meets a frozen page looks again (yielding after 64
 *    tries) until the page is unfrozen or gone from the index.
 * 4. Invariants.  A page is in the index iff its refcount > 0 or it is frozen by
 *    an evictor or releaser that holds its page lock.  Walks are bounded (64
 *    steps); chain length averages <= 1 (one bucket per possible page).
 * 5. Numbers.  64-byte descriptors (one cache line, so two threads hitting two
 *    pages never share a line); descriptor memory is charged in 4 KiB steps as
 *    the high-water mark grows and is never returned while the cache lives.
 * 6. Observability.  cached_pages, descriptor_bytes, index_bytes.
 */
#define _GNU_SOURCE
#include "bufcache/internal.h"

#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- futex-backed bit waits ------------------------------------------------------ */

void bc_word_wait(_Atomic uint32_t *word, uint32_t waiters_bit, uint32_t busy_bit)
{
    uint32_t v = atomic_load_explicit(word, memory_order_acquire);
    while (v & busy_bit) {
        if (!(v & waiters_bit)) {
            if (!atomic_compare_exchange_weak(word, &v, v | waiters_bit))
                continue;
            v |= waiters_bit;
        }
        syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
        v = atomic_load_explicit(word, memory_order_acquire);
    }
}

void bc_word_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void bc_word_clear_wake(_Atomic uint32_t *word, uint32_t bit, uint32_t waiters_bit)
{
    uint32_t old = atomic_fetch_and_explicit(word, ~(bit | waiters_bit), memory_order_release);
    if (old & waiters_bit)
        bc_word_wake(word);
}

/* ---- references and the page lock ------------------------------------------------ */

bool page_get_unless_zero(struct bc_page *p)
{
    uint32_t c = atomic_load_explicit(&p->refcount, memory_order_relaxed);
    do {
        if (c == 0)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&p->refcount, &c, c + 1,
                                                    memory_order_acquire,
                                                    memory_order_relaxed));
    return true;
}

void page_put(struct bc_page *p)
{
    uint32_t old = atomic_fetch_sub_explicit(&p->refcount, 1, memory_order_release);
    if (old <= 1) {
        fprintf(stderr, "bufcache: page_put on page %p with refcount %u: the cache's own "
                        "reference was dropped (unbalanced bh_put?)\n", (void *)p, old);
        abort();
    }
}

bool page_freeze(struct bc_page *p, uint32_t pins)
{
    uint32_t expected = 1 + pins;
    return atomic_compare_exchange_strong_explicit(&p->refcount, &expected, 0,
                                                   memory_order_acquire,
                                                   memory_order_relaxed);
}

void page_unfreeze(struct bc_page *p, uint32_t pins)
{
    atomic_store_explicit(&p->refcount, 1 + pins, memory_order_release);
}

bool page_trylock(struct bc_page *p)
{
    return !(atomic_fetch_or_explicit(&p->flags, PG_LOCKED, memory_order_acquire) & PG_LOCKED);
}

void page_lock(struct bc_page *p)
{
    while (!page_trylock(p))
        bc_word_wait(&p->flags, PG_WAITERS, PG_LOCKED);
}

void page_unlock(struct bc_page *p)
{
    bc_word_clear_wake(&p->flags, PG_LOCKED, PG_WAITERS);
}

void page_wait_writeback(struct bc_page *p)
{
    bc_word_wait(&p->flags, PG_WAITERS, PG_WRITEBACK);
}

void page_set_flags(struct bc_page *p, uint32_t bits)
{
    atomic_fetch_or_explicit(&p->flags, bits, memory_order_acq_rel);
}

void page_clear_flags(struct bc_page *p, uint32_t bits)
{
    atomic_fetch_and_explicit(&p->flags, ~bits, memory_order_acq_rel);
}

/* ---- index --------------------------------------------------------------------- */

static inline uint32_t index_hash(struct bcache *bc, const struct bdev_map *m, uint64_t index)
{
    uint64_t h = (index + ((uint64_t)m->id << 40)) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 32) & bc->bucket_mask;
}

static inline pthread_mutex_t *stripe_of(struct bcache *bc, uint32_t bucket)
{
    return &bc->stripes[bucket % BC_INDEX_STRIPES].lock;
}

int page_index_init(struct bcache *bc)
{
    uint64_t nb = 1; /* 64-bit: doubling up to max_pages (<= BC_MAX_PAGES) cannot wrap */
    while (nb < bc->max_pages)
        nb <<= 1;
    if (nb > BC_MAX_PAGES)
        return -EINVAL;
    bc->bucket_mask = (uint32_t)(nb - 1);
    bc->buckets = calloc(nb, sizeof *bc->buckets);
    bc->stripes = aligned_alloc(64, BC_INDEX_STRIPES * sizeof *bc->stripes);
    if (!bc->buckets || !bc->stripes) {
        free(bc->buckets);
        free(bc->stripes);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < BC_INDEX_STRIPES; i++)
        pthread_mutex_init(&bc->stripes[i].lock, NULL);
    bc->index_bytes = nb * sizeof *bc->buckets + BC_INDEX_STRIPES * sizeof *bc->stripes;
    return 0;
}

void page_index_fini(struct bcache *bc)
{
    for (unsigned i = 0; i < BC_INDEX_STRIPES; i++)
        pthread_mutex_destroy(&bc->stripes[i].lock);
    free(bc->stripes);
    free(bc->buckets);
}

static inline bool page_is(struct bc_page *p, struct bdev_map *m, uint64_t index)
{
    return atomic_load_explicit(&p->map, memory_order_relaxed) == m &&
           atomic_load_explicit(&p->index, memory_order_relaxed) == index;
}

/* Walk one chain; 1 = found and pinned (*out), 0 = absent, -1 = met a frozen page. */
static int chain_find(struct bcache *bc, uint32_t bucket, struct bdev_map *m, uint64_t index,
                      struct bc_page **out)
{
    struct bc_page *p = atomic_load_explicit(&bc->buckets[bucket], memory_order_acquire);
    for (unsigned steps = 0; p && steps < 64; steps++) {
        if (page_is(p, m, index)) {
            if (!page_get_unless_zero(p))
                return -1;
            if (page_is(p, m, index)) {
                *out = p;
                return 1;
            }
            page_put(p); /* reused for another block meanwhile */
            return -1;
        }
        p = atomic_load_explicit(&p->hash_next, memory_order_acquire);
    }
    return 0;
}

struct bc_page *page_lookup(struct bcache *bc, struct bdev_map *m, uint64_t index)
{
    uint32_t bucket = index_hash(bc, m, index);
    for (unsigned tries = 0;; tries++) {
        struct bc_page *p = NULL;
        int r = chain_find(bc, bucket, m, index, &p);
        if (r >= 0)
            return p;
        if (tries >= 64)
            sched_yield(); /* a frozen page: its evictor/releaser is working */
    }
}

struct bc_page *page_index_insert(struct bcache *bc, struct bc_page *fresh)
{
    struct bdev_map *m = page_map(fresh);
    uint64_t index = atomic_load_explicit(&fresh->index, memory_order_relaxed);
    uint32_t bucket = index_hash(bc, m, index);
    pthread_mutex_t *lock = stripe_of(bc, bucket);
    for (unsigned tries = 0;; tries++) {
        pthread_mutex_lock(lock);
        bool frozen = false;
        struct bc_page *head = atomic_load_explicit(&bc->buckets[bucket], memory_order_relaxed);
        for (struct bc_page *p = head; p;
             p = atomic_load_explicit(&p->hash_next, memory_order_relaxed)) {
            if (!page_is(p, m, index))
                continue;
            if (page_get_unless_zero(p)) {
                pthread_mutex_unlock(lock);
                return p;
            }
            frozen = true; /* being evicted (needs this lock) or released */
            break;
        }
        if (!frozen) {
            atomic_store_explicit(&fresh->hash_next, head, memory_order_relaxed);
            atomic_store_explicit(&bc->buckets[bucket], fresh, memory_order_release);
            pthread_mutex_unlock(lock);
            return fresh;
        }
        pthread_mutex_unlock(lock);
        if (tries >= 16)
            sched_yield();
    }
}

void page_index_remove(struct bcache *bc, struct bc_page *p)
{
    struct bdev_map *m = page_map(p);
    uint64_t index = atomic_load_explicit(&p->index, memory_order_relaxed);
    uint32_t bucket = index_hash(bc, m, index);
    pthread_mutex_t *lock = stripe_of(bc, bucket);
    pthread_mutex_lock(lock);
    _Atomic(struct bc_page *) *link = &bc->buckets[bucket];
    struct bc_page *q;
    while ((q = atomic_load_explicit(link, memory_order_relaxed)) != p) {
        if (!q) {
            fprintf(stderr, "bufcache: page %p (index %llu) missing from the index\n",
                    (void *)p, (unsigned long long)index);
            abort();
        }
        link = &q->hash_next;
    }
    /* p->hash_next stays: a lock-free walker standing on p carries on. */
    atomic_store_explicit(link, atomic_load_explicit(&p->hash_next, memory_order_relaxed),
                          memory_order_release);
    pthread_mutex_unlock(lock);
}

/* ---- free lists and allocation ------------------------------------------------------ */

static struct bc_page *pop_list(struct bcache *bc, uint32_t *head, uint32_t *count)
{
    if (*head == BC_NONE)
        return NULL;
    struct bc_page *p = &bc->pages[*head];
    *head = p->dirty_next;
    (*count)--;
    p->dirty_next = BC_NONE;
    return p;
}

static void push_list(struct bcache *bc, uint32_t *head, uint32_t *count, struct bc_page *p)
{
    p->dirty_next = *head;
    *head = page_id(bc, p);
    (*count)++;
}

static struct bc_page *pop_warm(struct bcache *bc)
{
    pthread_mutex_lock(&bc->free_lock);
    struct bc_page *p = pop_list(bc, &bc->free_warm, &bc->nr_free_warm);
    pthread_mutex_unlock(&bc->free_lock);
    return p;
}

void page_free(struct bcache *bc, struct bc_page *p)
{
    pthread_mutex_lock(&bc->free_lock);
    push_list(bc, &bc->free_warm, &bc->nr_free_warm, p);
    pthread_mutex_unlock(&bc->free_lock);
}

/* A cold descriptor, or a never-used one (charging its 4 KiB of descriptor
 * memory when it starts a new page of the array).  free_lock held. */
static struct bc_page *take_cold_locked(struct bcache *bc)
{
    struct bc_page *p = pop_list(bc, &bc->free_cold, &bc->nr_free_cold);
    if (p)
        return p;
    uint32_t n = atomic_load_explicit(&bc->nr_inited, memory_order_relaxed);
    if (n >= bc->max_pages)
        return NULL;
    if ((n * sizeof(struct bc_page)) % BC_PAGE_SIZE == 0 && !mem_try_charge(bc, BC_PAGE_SIZE))
        return NULL;
    p = &bc->pages[n];
    p->dirty_next = p->dirty_prev = BC_NONE;
    atomic_store_explicit(&bc->nr_inited, n + 1, memory_order_release);
    return p;
}

static struct bc_page *take_cold(struct bcache *bc)
{
    pthread_mutex_lock(&bc->free_lock);
    struct bc_page *p = take_cold_locked(bc);
    pthread_mutex_unlock(&bc->free_lock);
    if (p) {
        page_set_flags(p, PG_FRAME);
        atomic_fetch_add(&bc->frames_resident, 1);
    }
    return p;
}

struct bc_page *page_alloc(struct bcache *bc, size_t extra)
{
    /* Fail only after several rounds in which reclaim found nothing: memory
     * freed by other threads in between (a shrink, a bh_put) is retried. */
    for (unsigned fruitless = 0;;) {
        struct bc_page *p = pop_warm(bc);
        if (p) {
            if (mem_try_charge(bc, extra))
                return p;
            page_free(bc, p);
            if (page_release_free_frames(bc, 1))
                continue; /* 4 KiB freed: try again before evicting */
        } else if (mem_try_charge(bc, extra + BC_PAGE_SIZE)) {
            if ((p = take_cold(bc)))
                return p;
            mem_uncharge(bc, extra + BC_PAGE_SIZE);
        }
        if (reclaim_some(bc) == 0 && ++fruitless >= 3) {
            errno = ENOMEM;
            return NULL;
        }
    }
}

size_t page_release_free_frames(struct bcache *bc, size_t max)
{
    size_t freed = 0;
    while (freed < max) {
        struct bc_page *p = pop_warm(bc);
        if (!p)
            break;
        madvise(page_data(bc, p), BC_PAGE_SIZE, MADV_DONTNEED);
        page_clear_flags(p, PG_FRAME);
        atomic_fetch_sub(&bc->frames_resident, 1);
        mem_uncharge(bc, BC_PAGE_SIZE);
        pthread_mutex_lock(&bc->free_lock);
        push_list(bc, &bc->free_cold, &bc->nr_free_cold, p);
        pthread_mutex_unlock(&bc->free_lock);
        freed++;
    }
    return freed * BC_PAGE_SIZE;
}
