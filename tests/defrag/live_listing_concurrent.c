/*
 * live_listing_concurrent: the live objects a pass lists for the callbacks
 * agree with the allocator's state while other threads free objects of the
 * slabs being vacated (the pass lists them by in-use marks, falling back to the
 * free lists when the marks and the counts disagree).
 *
 * 24000 objects of 256 B, about 25% kept (seeded; the seed is printed on
 * failure).  12 rounds; in each, some slots are refilled, then a freer thread
 * frees objects (unlinking each from its slot under the owner's lock and
 * logging it there before slab_free) for as long as the main thread's
 * slab_cache_defrag(s, 100) with a YES callback runs.  The callback publishes
 * the slab of each object it is about to move and yields; the freer frees live
 * objects of that slab (from a seeded random slot on), so frees land between a
 * slab's listing and its moves.  Checks, per round:
 *   - never a free object: every object the callback is given that is no
 *     longer live (DONT_KNOW) was freed by this round's freer, so no object
 *     that was already free when the pass began is ever listed;
 *   - never a missed object: every object live after the pass that lies in a
 *     slab the pass vacated was asked about in this pass (it arrived there as a
 *     `new` after the slab's turn), so no allocated object was left out;
 *   - no allocation from a slab still being vacated; objects intact and
 *     referenced once; objects_active == the owner's count; validate.
 */
#include "defragtest.h"

#include <sched.h>
#include <stdbool.h>

#define NSLOTS 24000
#define ROUNDS 12

struct freer {
    struct owner *o;
    uint64_t rng;
    void **log; /* objects freed this round, under o->lock */
    size_t n_log;
    size_t bad_dont_know;
    atomic_bool stop, started;
    pthread_t thread;
};

static struct freer fr;

/* Under the owner's lock. */
static void check_dont_know(struct owner *o, void *old_obj)
{
    (void)o;
    for (size_t i = 0; i < fr.n_log; i++)
        if (fr.log[i] == old_obj)
            return;
    fr.bad_dont_know++;
}

/* Free random live objects until the pass is over (at most an eighth of the
 * slots per round), yielding now and then so the frees spread over the pass. */
static _Atomic uintptr_t vacating; /* slab of the object the callback is about to move */

/* Publish the slab being vacated and give the freer time to free in it. */
static void let_freer_run(struct owner *o, void *old_obj)
{
    atomic_store(&vacating, slab_base(old_obj, o->slab_size));
    for (int i = 0; i < 4; i++)
        sched_yield();
}

/* Free live objects of the slab the pass is vacating (at most an eighth of
 * the slots per round) until the pass is over. */
static void *freer_main(void *arg)
{
    struct freer *f = arg;
    struct owner *o = f->o;
    size_t freed = 0;
    atomic_store(&f->started, true);
    while (!atomic_load(&f->stop) && freed < o->nslots / 8) {
        uintptr_t b = atomic_load(&vacating);
        void *p = NULL;
        pthread_mutex_lock(&o->lock);
        size_t start = (size_t)(xorshift64(&f->rng) % o->nslots);
        for (size_t k = 0; b && k < o->nslots && !p; k++) {
            size_t i = (start + k) % o->nslots;
            if (o->slots[i] && slab_base(o->slots[i], o->slab_size) == b) {
                p = o->slots[i];
                o->slots[i] = NULL;
                f->log[f->n_log++] = p;
            }
        }
        pthread_mutex_unlock(&o->lock);
        if (p) {
            slab_free(o->s, p);
            freed++;
        }
        sched_yield();
    }
    return NULL;
}

int main(int argc, char **argv)
{
    dt_watchdog(120);
    uint64_t seed = test_seed(argc, argv, 1, 0x11571e57);
    struct owner o;
    owner_init(&o, "live-listing", 256, NSLOTS, 0);
    owner_fill(&o, NSLOTS);
    uint64_t rng = seed;
    for (size_t i = 0; i < NSLOTS; i++)
        if (xorshift64(&rng) % 4 != 0)
            owner_free_slot(&o, i);
    fr.o = &o;
    fr.log = dt_calloc(NSLOTS, sizeof *fr.log);
    o.on_dont_know = check_dont_know;
    o.before_move = let_freer_run;
    uint64_t *asked = dt_calloc(NSLOTS, sizeof *asked);
    uint64_t total_dont_know = 0;
    for (int round = 0; round < ROUNDS; round++) {
        /* Refill some slots so every round has objects to free and move. */
        for (size_t i = 0; i < NSLOTS; i++)
            if (!o.slots[i] && xorshift64(&rng) % 8 == 0)
                owner_alloc_slot(&o, i);
        for (size_t i = 0; i < NSLOTS; i++)
            asked[i] = atomic_load(&o.calls_per_slot[i]);
        char when[96];
        snprintf(when, sizeof when, "seed %#llx round %d", (unsigned long long)seed, round);
        owner_pass_begin(&o);
        pthread_mutex_lock(&o.lock);
        fr.n_log = 0;
        fr.rng = seed * 31 + (uint64_t)round + 1;
        atomic_store(&fr.stop, false);
        atomic_store(&fr.started, false);
        atomic_store(&vacating, 0);
        pthread_mutex_unlock(&o.lock);
        CHECK(pthread_create(&fr.thread, NULL, freer_main, &fr) == 0, "pthread_create");
        while (!atomic_load(&fr.started))
            sched_yield();
        long rel = slab_cache_defrag(o.s, 100);
        CHECK(rel >= 0, "%s: defrag = %ld", when, rel);
        atomic_store(&fr.stop, true);
        pthread_join(fr.thread, NULL);
        CHECK(fr.bad_dont_know == 0, "%s: %zu objects listed that were already free when the "
              "pass began", when, fr.bad_dont_know);
        owner_pass_check(&o, when);
        /* Every live object in a vacated slab was asked about in this pass. */
        pthread_mutex_lock(&o.lock);
        for (size_t i = 0; i < NSLOTS; i++) {
            void *p = o.slots[i];
            if (!p || atomic_load(&o.calls_per_slot[i]) != asked[i])
                continue;
            CHECK(dt_last_old(&o, slab_base(p, o.slab_size)) < 0,
                  "%s: slot %zu (%p) stayed in a slab the pass vacated without being asked "
                  "about: the listing missed a live object", when, i, p);
        }
        pthread_mutex_unlock(&o.lock);
        total_dont_know = atomic_load(&o.dont_know);
        size_t live = owner_verify(&o, when);
        CHECK(cache_stats(o.s).objects_active == live, "%s: objects_active %llu, owner %zu", when,
              (unsigned long long)cache_stats(o.s).objects_active, live);
        CHECK(slab_cache_validate(o.s) == 0, "%s: validate", when);
    }
    CHECK(owner_result(&o, SLAB_MOVE_YES) > 0, "nothing moved");
    owner_check_results(&o, "end");
    printf("live_listing_concurrent: %llu moves, %llu objects freed during passes\n",
           (unsigned long long)owner_result(&o, SLAB_MOVE_YES),
           (unsigned long long)total_dont_know);
    free(asked);
    free(fr.log);
    owner_destroy(&o);
    return 0;
}
