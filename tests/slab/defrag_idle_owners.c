/*
 * defrag_idle_owners: a defrag pass reaches the slabs owned by live, idle
 * threads: with 8 such threads each owning sparse slabs of a cache with a move
 * callback, slab_cache_defrag(s, 100) from the main thread packs the objects
 * so that bytes_mapped / live bytes <= 1.25 while all 8 threads are still alive.
 *
 * Each thread allocates 2048 objects of 256 B into its own range of the
 * owner's slot table (tests/defrag/defragtest.h: the move callback re-points
 * slots), frees 7 of every 8 itself (its slabs stay its own, sparse: about
 * 1/8 full), and waits without touching the cache.  The purge delay is an hour,
 * so that the purge thread does not flush the idle heaps first: the pass
 * itself must take them.  Before the pass the ratio is checked to be far above
 * the bound (else the test proves nothing); after it, the ratio is checked and
 * every object verified intact in its (possibly new) place.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "slabtest.h"
#include "../defrag/defragtest.h"

#define THREADS 8
#define PER_THREAD 2048
#define KEEP_EVERY 8
#define OBJ_SIZE 256
#define MAX_RATIO 1.25

static struct owner own;

static void *idle_owner(void *arg)
{
    size_t t = (size_t)(uintptr_t)arg;
    for (size_t i = t * PER_THREAD; i < (t + 1) * PER_THREAD; i++)
        owner_alloc_slot(&own, i);
    for (size_t i = t * PER_THREAD; i < (t + 1) * PER_THREAD; i++)
        if (i % KEEP_EVERY != 0)
            owner_free_slot(&own, i);
    pthread_mutex_lock(&stage_mu);
    stage_now++; /* one more thread is idle */
    pthread_cond_broadcast(&stage_cv);
    while (stage_now < 1000)
        pthread_cond_wait(&stage_cv, &stage_mu);
    pthread_mutex_unlock(&stage_mu);
    return NULL;
}

static double ratio(const struct slab_cache_stats *st, size_t live)
{
    return live ? (double)st->bytes_mapped / (double)(live * OBJ_SIZE) : 0;
}

int main(void)
{
    dt_watchdog(60);
    CHECK(slab_set_purge_delay(PURGE_DELAY_LONG_MS) == 0, "slab_set_purge_delay");
    owner_init(&own, "idle-owners", OBJ_SIZE, THREADS * PER_THREAD, 0);

    pthread_t th[THREADS];
    for (size_t t = 0; t < THREADS; t++)
        CHECK(pthread_create(&th[t], NULL, idle_owner, (void *)(uintptr_t)t) == 0,
              "pthread_create");
    stage_wait(THREADS);

    size_t live = owner_live(&own);
    struct slab_cache_stats st = cache_stats(own.s);
    double before = ratio(&st, live);
    CHECK(live == THREADS * PER_THREAD / KEEP_EVERY, "%zu live objects", live);
    CHECK(before > 2 * MAX_RATIO, "before the pass bytes_mapped / live bytes is only %.2f: the "
          "threads' slabs are not sparse", before);

    owner_pass_begin(&own);
    long rc = slab_cache_defrag(own.s, 100);
    st = cache_stats(own.s);
    double after = ratio(&st, owner_live(&own));
    printf("defrag_idle_owners: %zu live objects of %d B; bytes_mapped %.2f x live before, "
           "%.2f x after (pass returned %ld, moved %llu)\n",
           live, OBJ_SIZE, before, after, rc, (unsigned long long)st.defrag_objects_moved);
    if (after > MAX_RATIO)
        print_stats("defrag_idle_owners: after the pass", &st);
    CHECK(rc > 0, "slab_cache_defrag returned %ld", rc);
    CHECK(after <= MAX_RATIO,
          "bytes_mapped / live bytes %.2f after a full pass with %d idle owner threads alive "
          "(%.2f before): their slabs were out of reach", after, THREADS, before);
    owner_pass_check(&own, "the pass");
    CHECK(owner_verify(&own, "after the pass") == live, "live objects changed");
    owner_check_results(&own, "after the pass");

    stage_set(1000);
    for (size_t t = 0; t < THREADS; t++)
        CHECK(pthread_join(th[t], NULL) == 0, "pthread_join");
    CHECK(slab_cache_validate(own.s) == 0, "validate");
    owner_destroy(&own);
    return 0;
}
