/*
 * purge_delay_vs_first_slab: slab_set_purge_delay on one thread while another
 * creates the process's first slab (which starts the purge thread) is not a
 * data race.
 *
 * Starting the purge thread initialises its condition variable (with the
 * monotonic clock); slab_set_purge_delay signals that condition variable.
 * Both must be ordered by purge_lock: an initialisation concurrent with a
 * signal is undefined behaviour (TSan reports it as a race between
 * pthread_cond_init and pthread_cond_signal).  Thread D sets the delay in a
 * loop from before the first slab exists until well after; the main thread
 * creates a cache and allocates (the first slab_new).  Checked: TSan stays
 * silent (the TSan build runs this program), the allocation works, and the
 * last delay set is the one in force.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "slabtest.h"

static _Atomic int stop, rounds;

static void *set_delay_loop(void *arg)
{
    (void)arg;
    for (unsigned i = 0; !atomic_load(&stop) || i < 2000; i++) {
        CHECK(slab_set_purge_delay(400 + i % 2) == 0, "slab_set_purge_delay");
        atomic_fetch_add(&rounds, 1);
    }
    CHECK(slab_set_purge_delay(450) == 0, "slab_set_purge_delay");
    return NULL;
}

int main(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, set_delay_loop, NULL) == 0, "pthread_create");
    while (atomic_load(&rounds) < 100)
        sched_yield();
    struct slab_cache *s = slab_cache_create("first-slab", 64, 0, 0, NULL);
    CHECK(s != NULL, "create");
    void *obj = slab_alloc(s); /* the first slab: starts the purge thread */
    CHECK(obj != NULL, "slab_alloc");
    atomic_store(&stop, 1);
    CHECK(pthread_join(t, NULL) == 0, "join");
    CHECK(slab_get_purge_delay() == 450, "delay in force %u", slab_get_purge_delay());
    slab_free(s, obj);
    slab_cache_destroy(s);
    return 0;
}
