/*
 * concurrent_digest: allocation, free and defragmentation running at once in
 * several threads lose, duplicate or corrupt nothing.  TEST_LABELS: stress
 *
 * Two mutator threads own alternate slots of one table of 128 B objects and
 * free / reallocate random ones (each new object gets a fresh generation and
 * the matching pattern); a third thread runs slab_cache_defrag at 30/60/100%,
 * slab_cache_shrink and slab_reclaim in a loop.  The move callback takes the
 * owner's lock, answers DONT_KNOW for an object whose slot no longer points to
 * it (freed or being freed), otherwise copies and re-points.  Run time:
 * stress_seconds(2) (`make stress` raises it), 1 s under sanitizers; the seed
 * (argv[1] or $SLABDEFRAG_SEED) is printed for replay.
 * After the threads stop, as in Redis' defrag test: every live object is
 * reachable, intact and referenced once; a digest of all the data is
 * computed, a final slab_cache_shrink moves what is left, and the digest is
 * unchanged; objects_active == the owner's count; the cache validates.
 */
#include "defragtest.h"

#define OBJ 128
#define NMUT 2

static struct owner o;
static size_t nslots;
static _Atomic int stop;
static uint64_t seed;

struct mutator {
    int id;
    uint64_t ops;
};

static void *mutate(void *arg)
{
    struct mutator *m = arg;
    uint64_t rng = seed + (uint64_t)m->id * 0x9e3779b97f4a7c15ull;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int k = 0; k < 256; k++) {
            size_t i = (size_t)(xorshift64(&rng) % (nslots / NMUT)) * NMUT + (size_t)m->id;
            pthread_mutex_lock(&o.lock);
            int live = o.slots[i] != NULL;
            pthread_mutex_unlock(&o.lock); /* only this thread changes slot i's liveness */
            if (live)
                owner_free_slot(&o, i);
            else
                owner_alloc_slot(&o, i);
            m->ops++;
        }
    }
    return NULL;
}

static _Atomic uint64_t passes;

static void *defragment(void *arg)
{
    static const unsigned fills[] = {30, 60, 100};
    unsigned n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        long r;
        if (n % 16 == 15)
            r = slab_cache_shrink(o.s);
        else if (n % 16 == 7)
            r = slab_reclaim(SIZE_MAX);
        else
            r = slab_cache_defrag(o.s, fills[n % 3]);
        CHECK(r >= 0, "seed %#llx: trigger returned %ld", (unsigned long long)seed, r);
        n++;
        atomic_fetch_add(&passes, 1);
    }
    return NULL;
}

/* FNV-1a over (slot, object bytes) of every live object, in slot order. */
static uint64_t digest(void)
{
    uint64_t h = 0xcbf29ce484222325ull;
    pthread_mutex_lock(&o.lock);
    for (size_t i = 0; i < nslots; i++) {
        const unsigned char *p = o.slots[i];
        if (p == NULL)
            continue;
        for (size_t k = 0; k < sizeof i; k++)
            h = (h ^ ((i >> (8 * k)) & 0xff)) * 0x100000001b3ull;
        for (size_t k = sizeof(struct dt_obj); k < OBJ; k++)
            h = (h ^ p[k]) * 0x100000001b3ull;
        h = (h ^ o.gens[i]) * 0x100000001b3ull;
    }
    pthread_mutex_unlock(&o.lock);
    return h;
}

int main(int argc, char **argv)
{
    dt_watchdog(120);
    seed = test_seed(argc, argv, 1, 0xd1e5e1);
    double seconds = under_sanitizer() ? 1.0 : stress_seconds(2.0);
    nslots = under_sanitizer() ? 8000 : 60000;
    owner_init(&o, "concurrent", OBJ, nslots, 0);
    owner_fill(&o, nslots);
    owner_sparsen(&o, 3);

    pthread_t mt[NMUT], dt;
    struct mutator ms[NMUT];
    for (int t = 0; t < NMUT; t++) {
        ms[t] = (struct mutator){.id = t};
        CHECK(pthread_create(&mt[t], NULL, mutate, &ms[t]) == 0, "pthread_create");
    }
    CHECK(pthread_create(&dt, NULL, defragment, NULL) == 0, "pthread_create");
    double end = now_seconds() + seconds;
    while (now_seconds() < end)
        usleep(20000);
    atomic_store(&stop, 1);
    for (int t = 0; t < NMUT; t++)
        CHECK(pthread_join(mt[t], NULL) == 0, "join");
    CHECK(pthread_join(dt, NULL) == 0, "join");

    char when[64];
    snprintf(when, sizeof when, "seed %#llx after the run", (unsigned long long)seed);
    size_t live = owner_verify(&o, when);
    struct slab_cache_stats st = cache_stats(o.s);
    CHECK(st.objects_active == live, "seed %#llx: objects_active %llu, owner holds %zu",
          (unsigned long long)seed, (unsigned long long)st.objects_active, live);
    uint64_t d1 = digest();
    slab_cache_shrink(o.s);
    uint64_t d2 = digest();
    CHECK(d1 == d2, "seed %#llx: digest changed by the final shrink", (unsigned long long)seed);
    CHECK(owner_verify(&o, "after the final shrink") == live, "live count changed");
    st = cache_stats(o.s);
    CHECK(st.objects_active == live, "objects_active after shrink");
    CHECK(st.slabs <= (live + st.objects_per_slab - 1) / st.objects_per_slab + 2,
          "seed %#llx: %llu slabs for %zu objects after shrink", (unsigned long long)seed,
          (unsigned long long)st.slabs, live);
    CHECK(slab_cache_validate(o.s) == 0, "validate");
    owner_check_results(&o, "end");
    printf("concurrent_digest: seed %#llx, %.1f s, %llu+%llu mutations, %llu passes, %llu moved, "
           "%llu DONT_KNOW, %zu live\n",
           (unsigned long long)seed, seconds, (unsigned long long)ms[0].ops,
           (unsigned long long)ms[1].ops, (unsigned long long)atomic_load(&passes),
           (unsigned long long)owner_result(&o, SLAB_MOVE_YES),
           (unsigned long long)owner_result(&o, SLAB_MOVE_DONT_KNOW), live);
    owner_destroy(&o);
    return 0;
}
