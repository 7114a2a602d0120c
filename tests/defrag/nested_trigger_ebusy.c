/*
 * nested_trigger_ebusy: a trigger on the same cache from inside one of its
 * callbacks returns -EBUSY (and does not deadlock); the pass that is running
 * goes on and completes.  A callback may still allocate and free objects of any
 * cache, and a trigger on a *different* cache from inside the callback works.
 * Checked for the move protocol and for get and kick of the evict protocol.
 */
#include "defragtest.h"

static struct owner mover;
static struct slab_cache *evict_cache, *other;
static _Atomic int nested_done, nested_rc_defrag, nested_rc_shrink, other_rc;
static void *evict_objs[600];
static _Atomic int evicted[600];
static _Atomic int get_rc, kick_rc;

static enum slab_move_result nesting_decide(struct owner *o, size_t slot, void *old_obj)
{
    if (!atomic_exchange(&nested_done, 1)) {
        /* The owner's lock is held here (fixture); triggers take no owner lock. */
        atomic_store(&nested_rc_defrag, (int)slab_cache_defrag(o->s, 100));
        atomic_store(&nested_rc_shrink, (int)slab_cache_shrink(o->s));
        void *tmp = slab_alloc(other); /* allocation from inside a callback */
        CHECK(tmp != NULL, "alloc in callback");
        slab_free(other, tmp);
        atomic_store(&other_rc, (int)slab_cache_defrag(other, 100));
    }
    return SLAB_MOVE_YES;
}

static void *get(struct slab_cache *s, int nr, void **objs)
{
    atomic_store(&get_rc, (int)slab_cache_defrag(s, 100));
    return NULL;
}

static void kick(struct slab_cache *s, int nr, void **objs, void *priv)
{
    atomic_store(&kick_rc, (int)slab_cache_shrink(s));
    for (int k = 0; k < nr; k++)
        for (int i = 0; i < 600; i++)
            if (objs[k] && evict_objs[i] == objs[k] && !atomic_exchange(&evicted[i], 1)) {
                slab_free(s, objs[k]);
                evict_objs[i] = NULL;
            }
}

int main(void)
{
    dt_watchdog(60);
    other = slab_cache_create("nested-other", 64, 0, 0, NULL);
    CHECK(other != NULL, "create");
    size_t live = owner_init_sparse(&mover, "nested-move", 256, 3000, 10);
    mover.decide = nesting_decide;
    long rel = slab_cache_defrag(mover.s, 30);
    CHECK(atomic_load(&nested_done), "callback never ran");
    CHECK(nested_rc_defrag == -EBUSY, "nested slab_cache_defrag returned %d", nested_rc_defrag);
    CHECK(nested_rc_shrink == -EBUSY, "nested slab_cache_shrink returned %d", nested_rc_shrink);
    CHECK(other_rc >= 0, "defrag of another cache from a callback returned %d", other_rc);
    CHECK(rel > 0, "the outer pass released %ld", rel);
    CHECK(owner_verify(&mover, "after") == live, "objects");
    CHECK(cache_stats(mover.s).objects_active == live, "objects_active");
    owner_check_results(&mover, "after");

    evict_cache = slab_cache_create("nested-evict", 64, 0, 0, NULL);
    CHECK(slab_cache_setup_defrag(evict_cache, get, kick) == 0, "setup");
    for (int i = 0; i < 600; i++)
        CHECK((evict_objs[i] = slab_alloc(evict_cache)) != NULL, "alloc");
    for (int i = 0; i < 600; i++)
        if (i % 20) {
            slab_free(evict_cache, evict_objs[i]);
            evict_objs[i] = NULL;
            atomic_store(&evicted[i], 1);
        }
    CHECK(slab_cache_defrag(evict_cache, 30) >= 0, "evict pass");
    CHECK(get_rc == -EBUSY, "nested trigger from get returned %d", get_rc);
    CHECK(kick_rc == -EBUSY, "nested trigger from kick returned %d", kick_rc);
    CHECK(cache_stats(evict_cache).defrag_objects_kicked > 0, "kick freed nothing");
    for (int i = 0; i < 600; i++)
        if (evict_objs[i])
            slab_free(evict_cache, evict_objs[i]);
    slab_cache_destroy(evict_cache);
    owner_destroy(&mover);
    slab_cache_destroy(other);
    printf("nested_trigger_ebusy: ok\n");
    return 0;
}
