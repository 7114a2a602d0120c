/*
 * delayed_freer_outlives_take: a remote freer between its ARMED -> FREEING CAS
 * and its push onto the owner heap's delayed stack is waited for by whoever
 * gives the slab up, even when the owner took the slab's remote stack
 * meanwhile.  TEST_LIBRARY: slabdefrag_testing
 *
 * The interleaving, forced with the testing build's free hook (2 KiB objects:
 * no lfree cache, so the owner's frees go straight into their slabs):
 *   M  allocates one slab's worth and one more: slab S is full, ARMED, on M's
 *      full list.
 *   F  frees a1 of S from another thread: ARMED -> FREEING; the hook parks F
 *      before it reads S's owner.
 *   G  frees a2 of S: S is not ARMED (FREEING), so a plain remote push.
 *   M  frees a3 of S (S moves to M's partial list), then allocates until its
 *      refill takes S again: the refill merges S's remote stack.  Before the
 *      fix that take rebuilt the state word without its delay bits, so
 *      FREEING became NORMAL.
 *   T  shrinks the cache, which flushes M's idle heap: cache_put_slab(S)
 *      disarms S (it must wait for F) and clears S's owner.
 *   M  lets F go once T has finished or 300 ms have passed (T is then waiting
 *      for F, as it must).
 * Before the fix T did not wait, cleared the owner, and F loaded the delayed
 * stack of a NULL heap (SIGSEGV at 0xc0: the stress_handshake crash); a
 * moment earlier it would have pushed onto a heap about to be freed.  Now F
 * pushes onto M's heap, T's flush gives a1 back, and at the end nothing is
 * active and the cache validates.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "slabtest.h"

#include "slab/internal.h"

#define OBJ_SIZE 2048

static struct slab_cache *cache;
static struct slab *target;
static atomic_int f_parked, f_go, t_done;

static void park_freer(struct slab_cache *s, struct slab *sl, void *arg)
{
    (void)arg;
    if (s != cache || sl != target || atomic_load(&f_parked))
        return;
    atomic_store(&f_parked, 1);
    while (!atomic_load(&f_go))
        sched_yield();
}

static const struct slab_free_test_hooks hooks = { .in_delayed_push = park_freer };

static void *free_one(void *obj)
{
    slab_free(cache, obj);
    return NULL;
}

static void *shrink_cache(void *arg)
{
    (void)arg;
    CHECK(slab_cache_shrink(cache) >= 0, "shrink");
    atomic_store(&t_done, 1);
    return NULL;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(void)
{
    CHECK(slab_set_purge_delay(PURGE_DELAY_LONG_MS) == 0, "purge delay");
    cache = slab_cache_create("delayed-take", OBJ_SIZE, 0, 0, NULL);
    CHECK(cache != NULL, "create");
    unsigned per = (unsigned)cache_stats(cache).objects_per_slab;
    size_t slab_size = cache_stats(cache).slab_size;
    unsigned n = 3 * per + 1, live = 0;
    void **objs = calloc(n, sizeof *objs);
    CHECK(objs != NULL, "calloc");
    for (unsigned i = 0; i <= per; i++)
        CHECK((objs[live++] = slab_alloc(cache)) != NULL, "alloc");
    target = (struct slab *)slab_base(objs[0], slab_size);
    CHECK(slab_base(objs[per], slab_size) != (uintptr_t)target, "object %u is in a second slab", per);
    CHECK(xf_delay(atomic_load(&target->xfree)) == DF_ARMED, "the full slab is armed");

    slab_free_set_test_hooks(&hooks);
    pthread_t f, g, t;
    CHECK(pthread_create(&f, NULL, free_one, objs[0]) == 0, "F");
    while (!atomic_load(&f_parked))
        sched_yield();
    CHECK(xf_delay(atomic_load(&target->xfree)) == DF_FREEING, "F is freeing");
    CHECK(pthread_create(&g, NULL, free_one, objs[1]) == 0, "G");
    CHECK(pthread_join(g, NULL) == 0, "join G");
    CHECK(xf_count(atomic_load(&target->xfree)) == 1, "G's free is on the remote stack");
    slab_free(cache, objs[2]); /* S: full -> partial */
    objs[0] = objs[1] = objs[2] = NULL;
    /* Allocate until the refill has taken S again (its remote stack merged). */
    while (live < n && xf_count(atomic_load(&target->xfree)) != 0)
        CHECK((objs[live++] = slab_alloc(cache)) != NULL, "alloc");
    CHECK(xf_count(atomic_load(&target->xfree)) == 0, "the refill took S's remote stack");
    CHECK(xf_delay(atomic_load(&target->xfree)) == DF_FREEING,
          "taking the remote stack kept FREEING (delay now %u)",
          xf_delay(atomic_load(&target->xfree)));

    CHECK(pthread_create(&t, NULL, shrink_cache, NULL) == 0, "T");
    uint64_t start = now_ms();
    while (!atomic_load(&t_done) && now_ms() - start < 300)
        sched_yield();
    CHECK(!atomic_load(&t_done), "the shrink gave S up while F was still freeing into it");
    atomic_store(&f_go, 1);
    CHECK(pthread_join(f, NULL) == 0, "join F");
    CHECK(pthread_join(t, NULL) == 0, "join T");
    slab_free_set_test_hooks(NULL);

    for (unsigned i = 0; i < live; i++)
        if (objs[i])
            slab_free(cache, objs[i]);
    struct slab_cache_stats st = cache_stats(cache);
    CHECK(st.objects_active == 0, "%llu objects still active", (unsigned long long)st.objects_active);
    CHECK(slab_cache_validate(cache) == 0, "validate");
    slab_cache_destroy(cache);
    free(objs);
    return 0;
}
