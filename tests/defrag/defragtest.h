/*
 * defragtest.h: the movable-object fixture shared by the tests in tests/defrag/
 * (header only, so the per-directory glob of *.c files does not turn it into a
 * test program).
 *
 * 1. Objects.  A struct owner keeps objects of one cache in a table of slots
 *    (the only reference to each object).  Every object records its slot index
 *    and a generation, and the rest of its bytes is a pattern computed from
 *    (slot, generation), so owner_verify() can tell an intact object from a
 *    torn, stale or duplicated one.
 * 2. Locking.  owner->lock protects: slots[], answer, the per-pass slab
 *    records.  The move callback takes it (it may run on the background
 *    defragmenter's thread); the test thread takes it to free or replace an
 *    object.  The callback counters are atomics.
 * 3. References.  slots[i] is the one reference to an object.  The owner frees
 *    an object only after clearing its slot under the lock, so the move
 *    callback, which checks slots[old->slot] == old under the lock, never
 *    copies an object that is being freed: it answers DONT_KNOW instead.
 * 4. Checks.  The callback records the slab of every `old` and of every `new`
 *    it is given, with the call's sequence number in the pass;
 *    owner_pass_check() fails if a pass handed out a `new` in a slab that was
 *    still being vacated (a later call gave an `old` in the same slab), and
 *    returns how many `new` objects came from a slab an earlier step of the
 *    same pass had vacated.
 * 5. Policies.  `answer` is what the callback says for a live object
 *    (YES copies and re-points; DONT_NEED drops the slot; NO/LATER leave it).
 *    `decide`, when set, overrides it per object.
 */
#ifndef SLABDEFRAG_TESTS_DEFRAGTEST_H
#define SLABDEFRAG_TESTS_DEFRAGTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <slabdefrag/slab.h>

#include "testutil.h"

#define DT_NO_SLOT UINT64_MAX

static void dt_watchdog_fired(int sig)
{
    static const char msg[] = "watchdog: the test did not finish in time: a trigger that "
                              "never returns (spinning on a slab?)\n";
    (void)sig;
    (void)!write(2, msg, sizeof msg - 1);
    _exit(3);
}

/* A trigger that spins must fail the test in reasonable time, not hang ctest
 * until its 300 s timeout.  Generous: 10x more under a sanitizer. */
static inline void dt_watchdog(unsigned seconds)
{
    signal(SIGALRM, dt_watchdog_fired);
    alarm(under_sanitizer() ? seconds * 10 : seconds);
}
#define DT_MAX_PASS_RECORDS (1u << 16)

/* Tests that compare a trigger's return value with the fall of bytes_mapped:
 * the purge thread must not hand back, in the middle of the measurement, an
 * empty slab that an earlier trigger kept (a defrag pass keeps a spare; under
 * an oversubscribed sanitizer build 500 ms pass between two stats reads), or
 * bytes_mapped falls by a slab the trigger did not return. */
static inline void dt_no_decay_release(void)
{
    if (slab_set_purge_delay(3600u * 1000u) != 0) {
        perror("slab_set_purge_delay");
        exit(1);
    }
}

/* The object header; the pattern fills the rest of the object. */
struct dt_obj {
    _Atomic uint64_t slot; /* read by the move callback before it takes the lock */
    uint64_t gen;
};

static inline uint64_t dt_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static inline unsigned char dt_pattern_byte(uint64_t slot, uint64_t gen, size_t k)
{
    return (unsigned char)(dt_mix(slot * 0x9e3779b97f4a7c15ull + gen) >> ((k & 7) * 8)) ^
           (unsigned char)k;
}

static inline void dt_obj_write(void *p, size_t size, uint64_t slot, uint64_t gen)
{
    struct dt_obj *o = p;
    atomic_store_explicit(&o->slot, slot, memory_order_relaxed);
    o->gen = gen;
    unsigned char *c = p;
    for (size_t k = sizeof *o; k < size; k++)
        c[k] = dt_pattern_byte(slot, gen, k);
}

/* 1 when p holds slot's pattern for generation gen. */
static inline int dt_obj_intact(const void *p, size_t size, uint64_t slot, uint64_t gen)
{
    const struct dt_obj *o = p;
    if (atomic_load_explicit(&o->slot, memory_order_relaxed) != slot || o->gen != gen)
        return 0;
    const unsigned char *c = p;
    for (size_t k = sizeof *o; k < size; k++)
        if (c[k] != dt_pattern_byte(slot, gen, k))
            return 0;
    return 1;
}

struct dt_rec {
    uintptr_t base; /* slab of the object */
    uint64_t seq;   /* move call of the pass that gave it */
};

struct owner;
typedef enum slab_move_result (*dt_decide_fn)(struct owner *o, size_t slot, void *old_obj);

struct owner {
    struct slab_cache *s;
    size_t size, nslots, slab_size;
    pthread_mutex_t lock;
    void **slots;
    uint64_t *gens;
    enum slab_move_result answer;
    dt_decide_fn decide;
    void (*on_dont_know)(struct owner *o, void *old_obj); /* under lock, when set */
    void (*before_move)(struct owner *o, void *old_obj);  /* without the lock, when set */
    /* Per-pass records (under lock): slab and call number of every old and new. */
    struct dt_rec *old_recs, *new_recs;
    size_t n_old, n_new;
    /* What the callback did. */
    _Atomic uint64_t calls, dont_know;
    _Atomic uint64_t results[SLAB_MOVE_NR_RESULTS];
    _Atomic uint64_t *calls_per_slot;
};

static enum slab_move_result dt_move(void *old_obj, void *new_obj, size_t size, void *arg);

static inline void *dt_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    CHECK(p != NULL, "out of memory");
    return p;
}

/* A cache of `size`-byte objects (>= 16) with the owner's move callback. */
static inline void owner_init(struct owner *o, const char *name, size_t size, size_t nslots,
                              unsigned flags)
{
    memset(o, 0, sizeof *o);
    o->size = size;
    o->nslots = nslots;
    pthread_mutex_init(&o->lock, NULL);
    o->slots = dt_calloc(nslots, sizeof *o->slots);
    o->gens = dt_calloc(nslots, sizeof *o->gens);
    o->calls_per_slot = dt_calloc(nslots, sizeof *o->calls_per_slot);
    o->old_recs = dt_calloc(DT_MAX_PASS_RECORDS, sizeof *o->old_recs);
    o->new_recs = dt_calloc(DT_MAX_PASS_RECORDS, sizeof *o->new_recs);
    o->answer = SLAB_MOVE_YES;
    o->s = slab_cache_create(name, size, 0, flags, NULL);
    CHECK(o->s != NULL, "slab_cache_create(%s): %s", name, strerror(errno));
    int rc = slab_cache_set_move(o->s, dt_move, o);
    CHECK(rc == 0, "slab_cache_set_move: %d", rc);
    o->slab_size = cache_stats(o->s).slab_size;
    CHECK(o->slab_size >= 4096 && (o->slab_size & (o->slab_size - 1)) == 0, "slab_size %zu",
          o->slab_size);
}

static inline void owner_set_answer(struct owner *o, enum slab_move_result r)
{
    pthread_mutex_lock(&o->lock);
    o->answer = r;
    pthread_mutex_unlock(&o->lock);
}

static inline void owner_alloc_slot(struct owner *o, size_t i)
{
    void *p = slab_alloc(o->s);
    CHECK(p != NULL, "slab_alloc: %s", strerror(errno));
    pthread_mutex_lock(&o->lock);
    CHECK(o->slots[i] == NULL, "slot %zu in use", i);
    o->gens[i]++;
    dt_obj_write(p, o->size, i, o->gens[i]);
    o->slots[i] = p;
    pthread_mutex_unlock(&o->lock);
}

/* Unlink under the lock, then free: the callback never sees a half-freed object
 * as live. */
static inline void owner_free_slot(struct owner *o, size_t i)
{
    pthread_mutex_lock(&o->lock);
    void *p = o->slots[i];
    o->slots[i] = NULL;
    pthread_mutex_unlock(&o->lock);
    slab_free(o->s, p);
}

static inline void owner_fill(struct owner *o, size_t n)
{
    CHECK(n <= o->nslots, "fill %zu > %zu slots", n, o->nslots);
    for (size_t i = 0; i < n; i++)
        owner_alloc_slot(o, i);
}

/* Keep slot i only when i % keep_every == 0: a fill of about 1/keep_every. */
static inline void owner_sparsen(struct owner *o, size_t keep_every)
{
    for (size_t i = 0; i < o->nslots; i++)
        if (o->slots[i] != NULL && i % keep_every != 0)
            owner_free_slot(o, i);
}

static inline uint64_t owner_calls(struct owner *o) { return atomic_load(&o->calls); }

/* One round of the triggers that ask the callback: slab_cache_defrag at 30 and
 * at 100 percent, then slab_reclaim(SIZE_MAX); each must return, not fail.
 * Returns owner_calls() after the round. */
static inline uint64_t owner_trigger_round(struct owner *o)
{
    CHECK(slab_cache_defrag(o->s, 30) >= 0, "defrag 30");
    CHECK(slab_cache_defrag(o->s, 100) >= 0, "defrag 100");
    CHECK(slab_reclaim(SIZE_MAX) >= 0, "reclaim");
    return owner_calls(o);
}

static inline void owner_free_all(struct owner *o)
{
    for (size_t i = 0; i < o->nslots; i++)
        if (o->slots[i] != NULL)
            owner_free_slot(o, i);
}

static inline size_t owner_live(struct owner *o)
{
    size_t n = 0;
    pthread_mutex_lock(&o->lock);
    for (size_t i = 0; i < o->nslots; i++)
        n += o->slots[i] != NULL;
    pthread_mutex_unlock(&o->lock);
    return n;
}

static inline int dt_cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Every live slot holds an intact object of its own, no pointer twice.
 * Returns the number of live objects. */
static inline size_t owner_verify(struct owner *o, const char *when)
{
    uintptr_t *ptrs = dt_calloc(o->nslots ? o->nslots : 1, sizeof *ptrs);
    size_t n = 0;
    pthread_mutex_lock(&o->lock);
    for (size_t i = 0; i < o->nslots; i++) {
        void *p = o->slots[i];
        if (p == NULL)
            continue;
        CHECK(dt_obj_intact(p, o->size, i, o->gens[i]), "%s: slot %zu (%p) corrupted", when, i,
              p);
        ptrs[n++] = (uintptr_t)p;
    }
    pthread_mutex_unlock(&o->lock);
    qsort(ptrs, n, sizeof *ptrs, dt_cmp_ptr);
    for (size_t i = 1; i < n; i++)
        CHECK(ptrs[i] != ptrs[i - 1], "%s: object %p referenced from two slots", when,
              (void *)ptrs[i]);
    free(ptrs);
    return n;
}

/* A fragmented cache: owner_init (no flags), every slot filled, then only every
 * keep_every-th kept (owner_sparsen).  Returns the live objects owner_verify
 * counted. */
static inline size_t owner_init_sparse(struct owner *o, const char *name, size_t size,
                                       size_t nslots, size_t keep_every)
{
    owner_init(o, name, size, nslots, 0);
    owner_fill(o, nslots);
    owner_sparsen(o, keep_every);
    return owner_verify(o, "before");
}

static inline void owner_pass_begin(struct owner *o)
{
    pthread_mutex_lock(&o->lock);
    o->n_old = o->n_new = 0;
    pthread_mutex_unlock(&o->lock);
}

static inline int dt_cmp_rec(const void *a, const void *b)
{
    const struct dt_rec *x = a, *y = b;
    if (x->base != y->base)
        return x->base < y->base ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The last call of the pass that gave an `old` in slab `base`, or -1 (old
 * records sorted by slab, then call). */
static inline int64_t dt_last_old(struct owner *o, uintptr_t base)
{
    size_t lo = 0, hi = o->n_old; /* first record with a base above `base` */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (o->old_recs[mid].base <= base)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && o->old_recs[lo - 1].base == base ? (int64_t)o->old_recs[lo - 1].seq : -1;
}

/* No allocation from a slab still being vacated: every `new` of the pass lies
 * in a slab that no later call of the pass gave an `old` in.  Returns how many
 * `new` objects came from slabs an earlier step of the pass had vacated
 * (emptied slabs reused as destinations). */
static inline size_t owner_pass_check(struct owner *o, const char *when)
{
    size_t reused = 0;
    pthread_mutex_lock(&o->lock);
    CHECK(o->n_old < DT_MAX_PASS_RECORDS && o->n_new < DT_MAX_PASS_RECORDS,
          "%s: too many moves in one pass for the records", when);
    qsort(o->old_recs, o->n_old, sizeof *o->old_recs, dt_cmp_rec);
    for (size_t i = 0; i < o->n_new; i++) {
        struct dt_rec n = o->new_recs[i];
        int64_t last = dt_last_old(o, n.base);
        CHECK(last < (int64_t)n.seq,
              "%s: move call %llu got a new object in slab %#lx, which call %lld of the same "
              "pass was still vacating",
              when, (unsigned long long)n.seq, (unsigned long)n.base, (long long)last);
        reused += last >= 0;
    }
    pthread_mutex_unlock(&o->lock);
    return reused;
}

static inline void dt_record(struct owner *o, void *old_obj, void *new_obj)
{
    uint64_t seq = o->n_old;
    if (o->n_old < DT_MAX_PASS_RECORDS)
        o->old_recs[o->n_old++] = (struct dt_rec){ slab_base(old_obj, o->slab_size), seq };
    if (o->n_new < DT_MAX_PASS_RECORDS)
        o->new_recs[o->n_new++] = (struct dt_rec){ slab_base(new_obj, o->slab_size), seq };
}

static enum slab_move_result dt_move(void *old_obj, void *new_obj, size_t size, void *arg)
{
    struct owner *o = arg;
    struct dt_obj *old = old_obj;
    enum slab_move_result r;

    atomic_fetch_add(&o->calls, 1);
    CHECK(size == o->size, "move got size %zu, object size is %zu", size, o->size);
    CHECK(new_obj != NULL && new_obj != old_obj, "move got new %p for old %p", new_obj, old_obj);
    CHECK(slab_base(new_obj, o->slab_size) != slab_base(old_obj, o->slab_size),
          "move: new %p is in the slab being vacated (old %p)", new_obj, old_obj);
    if (o->before_move)
        o->before_move(o, old_obj);
    uint64_t slot = atomic_load_explicit(&old->slot, memory_order_relaxed);
    pthread_mutex_lock(&o->lock);
    dt_record(o, old_obj, new_obj);
    if (slot >= o->nslots || o->slots[slot] != old_obj) {
        r = SLAB_MOVE_DONT_KNOW; /* freed, or being freed, by the owner */
        atomic_fetch_add(&o->dont_know, 1);
        if (o->on_dont_know)
            o->on_dont_know(o, old_obj);
    } else {
        atomic_fetch_add(&o->calls_per_slot[slot], 1);
        r = o->decide ? o->decide(o, slot, old_obj) : o->answer;
        if (r == SLAB_MOVE_YES) {
            memcpy(new_obj, old_obj, size);
            o->slots[slot] = new_obj;
        } else if (r == SLAB_MOVE_DONT_NEED) {
            o->slots[slot] = NULL;
        }
    }
    pthread_mutex_unlock(&o->lock);
    atomic_fetch_add(&o->results[r], 1);
    return r;
}

static inline uint64_t owner_result(struct owner *o, enum slab_move_result r)
{
    return atomic_load(&o->results[r]);
}

/* The cache's move_results[] agree with what the callback answered. */
static inline void owner_check_results(struct owner *o, const char *when)
{
    struct slab_cache_stats st = cache_stats(o->s);
    static const char *const names[] = {"YES", "NO", "LATER", "DONT_NEED", "DONT_KNOW"};
    for (int r = 0; r < 5; r++)
        if (st.move_results[r] != owner_result(o, (enum slab_move_result)r)) {
            print_stats(when, &st);
            CHECK(0, "%s: move_results[%s] = %llu, the callback answered %s %llu times", when,
                  names[r], (unsigned long long)st.move_results[r], names[r],
                  (unsigned long long)owner_result(o, (enum slab_move_result)r));
        }
    CHECK(st.defrag_objects_moved == owner_result(o, SLAB_MOVE_YES),
          "%s: defrag_objects_moved %llu, the callback said YES %llu times", when,
          (unsigned long long)st.defrag_objects_moved,
          (unsigned long long)owner_result(o, SLAB_MOVE_YES));
}

static inline void owner_destroy(struct owner *o)
{
    owner_free_all(o);
    slab_cache_destroy(o->s);
    free(o->slots);
    free(o->gens);
    free(o->calls_per_slot);
    free(o->old_recs);
    free(o->new_recs);
    pthread_mutex_destroy(&o->lock);
}

#endif
