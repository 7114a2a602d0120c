/*
 * evict_get_kick: the evict protocol (get/kick) with refcounted objects.
 *
 * 1. Objects.  An item (128 B) has a refcount, an `allocated` flag the test
 *    sets after slab_alloc and clears before slab_free, and its slot index.
 *    The table's slot holds one reference; get() takes one more.
 * 2. Locking.  table_lock protects: slots[].  The refcount is atomic: a
 *    reference is taken with get-unless-zero, and whoever drops the last one
 *    frees the item.  Unlinking a slot (under table_lock) drops the table's
 *    reference, so exactly one path frees each item.
 * 3. What is checked.
 *    Phase 1 (one thread): the sparse cache is kicked with slab_cache_defrag(30);
 *    during the first get() a second thread frees one object of the vector
 *    (unlink + last put), so get must see refcount 0 and NULL the entry.  Every
 *    other pointer get receives is an allocated item.  Afterwards:
 *    objects_active == the table's live count, the kicked slabs went back to the
 *    OS (bytes_mapped fell, slabs left <= what the few dense slabs need), and
 *    defrag_objects_kicked counts the kicks.
 *    Phase 2 (TSan): a thread frees random items while the main thread runs
 *    passes; at the end the accounting still agrees and nothing was freed twice
 *    (slab_free would abort).
 */
#include "defragtest.h"

#define NITEMS 12000

struct item {
    _Atomic int ref;
    _Atomic int allocated;
    _Atomic size_t slot;
    char payload[128 - 3 * sizeof(size_t)];
};

static struct slab_cache *cache;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct item *slots[NITEMS];
static _Atomic uint64_t get_calls, get_objs, get_nulled, get_bad, kick_freed;
static _Atomic int inject_concurrent_free = 0;
static size_t per_slab; /* objects_per_slab of the cache */
static _Atomic uint64_t injected;

static void item_put(struct item *it)
{
    if (atomic_fetch_sub(&it->ref, 1) == 1) {
        atomic_store(&it->allocated, 0);
        slab_free(cache, it);
    }
}

static void item_new(size_t i)
{
    struct item *it = slab_alloc(cache);
    CHECK(it != NULL, "slab_alloc");
    /* `allocated` before the reference: a defrag pass may call get() on this
     * object as soon as slab_alloc returned it, and get-unless-zero succeeding
     * must imply the flag is already set. */
    atomic_store(&it->allocated, 1);
    atomic_store(&it->ref, 1);
    atomic_store(&it->slot, i);
    memset(it->payload, (int)(i & 0xff), sizeof it->payload);
    pthread_mutex_lock(&table_lock);
    slots[i] = it;
    pthread_mutex_unlock(&table_lock);
}

/* Drop the table's reference to slot i's item if it is still `it` (or any item
 * when it == NULL).  1 when this call unlinked it. */
static int item_unlink(size_t i, struct item *it)
{
    pthread_mutex_lock(&table_lock);
    struct item *cur = slots[i];
    int unlink = cur != NULL && (it == NULL || cur == it);
    if (unlink)
        slots[i] = NULL;
    pthread_mutex_unlock(&table_lock);
    if (unlink)
        item_put(cur);
    return unlink;
}

static int get_unless_zero(struct item *it)
{
    int r = atomic_load(&it->ref);
    while (r > 0)
        if (atomic_compare_exchange_weak(&it->ref, &r, r + 1))
            return 1;
    return 0;
}

static void *free_victim(void *arg)
{
    struct item *it = arg;
    item_unlink(atomic_load(&it->slot), it);
    return NULL;
}

static void *get(struct slab_cache *s, int nr, void **objs)
{
    atomic_fetch_add(&get_calls, 1);
    CHECK(s == cache && nr > 0, "get(%p, %d)", (void *)s, nr);
    if (nr >= 2 && atomic_exchange(&inject_concurrent_free, 0)) {
        pthread_t t; /* another thread frees the last object while we look */
        CHECK(pthread_create(&t, NULL, free_victim, objs[nr - 1]) == 0, "pthread_create");
        CHECK(pthread_join(t, NULL) == 0, "join");
        atomic_fetch_add(&injected, 1);
    }
    for (int k = 0; k < nr; k++) {
        struct item *it = objs[k];
        atomic_fetch_add(&get_objs, 1);
        if (!get_unless_zero(it)) {
            objs[k] = NULL; /* being freed: not ours to touch */
            atomic_fetch_add(&get_nulled, 1);
        } else if (!atomic_load(&it->allocated)) {
            atomic_fetch_add(&get_bad, 1); /* pinned something never allocated */
        }
    }
    return (void *)0x1234;
}

static void kick(struct slab_cache *s, int nr, void **objs, void *priv)
{
    CHECK(priv == (void *)0x1234, "kick got private_data %p", priv);
    for (int k = 0; k < nr; k++) {
        struct item *it = objs[k];
        if (it == NULL)
            continue;
        if (item_unlink(atomic_load(&it->slot), it))
            atomic_fetch_add(&kick_freed, 1);
        item_put(it); /* get's reference */
    }
}

static size_t table_live(void)
{
    size_t n = 0;
    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; i < NITEMS; i++)
        n += slots[i] != NULL;
    pthread_mutex_unlock(&table_lock);
    return n;
}

static void phase_single_thread(void)
{
    for (size_t i = 0; i < NITEMS; i++)
        item_new(i);
    /* Dense first 10 slabs, sparse (1 in 10) elsewhere. */
    per_slab = cache_stats(cache).objects_per_slab;
    for (size_t i = 10 * per_slab; i < NITEMS; i++)
        if (i % 10 != 0)
            item_unlink(i, NULL);
    size_t live = table_live();
    struct slab_cache_stats before = cache_stats(cache);
    atomic_store(&inject_concurrent_free, 1);
    long rel = slab_cache_defrag(cache, 30);
    struct slab_cache_stats st = cache_stats(cache);
    size_t live_after = table_live();
    CHECK(get_calls > 0, "get never called");
    CHECK(atomic_load(&injected) == 1, "no concurrent free injected");
    CHECK(get_nulled >= 1, "get did not see the object freed concurrently");
    CHECK(get_bad == 0, "get pinned %llu objects that were not allocated",
          (unsigned long long)get_bad);
    CHECK(st.objects_active == live_after, "objects_active %llu, table %zu",
          (unsigned long long)st.objects_active, live_after);
    CHECK(live_after == live - 1 - kick_freed, "live %zu -> %zu with %llu kicked", live,
          live_after, (unsigned long long)kick_freed);
    CHECK(kick_freed > 0 && st.defrag_objects_kicked > 0, "kicked: ours %llu, stats %llu",
          (unsigned long long)kick_freed, (unsigned long long)st.defrag_objects_kicked);
    if (!(rel > 0 && st.slabs <= 10 + 2 + 2))
        print_stats("after evict pass", &st);
    CHECK(rel > 0 && st.bytes_mapped < before.bytes_mapped, "released %ld", rel);
    CHECK(st.slabs <= 10 + 2 + 2, "%llu slabs left (10 dense ones expected)",
          (unsigned long long)st.slabs);
    CHECK(slab_cache_validate(cache) == 0, "validate");
    printf("evict_get_kick: phase 1: %llu get calls, %llu objs, %llu nulled, %llu kicked; "
           "slabs %llu -> %llu\n",
           (unsigned long long)get_calls, (unsigned long long)get_objs,
           (unsigned long long)get_nulled, (unsigned long long)kick_freed,
           (unsigned long long)before.slabs, (unsigned long long)st.slabs);
}

static _Atomic int stop;

static void *random_freer(void *arg)
{
    uint64_t rng = 0x1234567;
    while (!atomic_load(&stop)) {
        size_t i = xorshift64(&rng) % NITEMS;
        if (!item_unlink(i, NULL))
            item_new(i);
    }
    return NULL;
}

static void phase_concurrent(void)
{
    for (size_t i = 0; i < NITEMS; i++)
        if (i % 7 == 0 && slots[i] == NULL)
            item_new(i);
    pthread_t t;
    atomic_store(&stop, 0);
    CHECK(pthread_create(&t, NULL, random_freer, NULL) == 0, "pthread_create");
    int rounds = under_sanitizer() ? 20 : 200;
    for (int r = 0; r < rounds; r++)
        CHECK(slab_cache_defrag(cache, r % 2 ? 30 : 100) >= 0, "defrag");
    atomic_store(&stop, 1);
    CHECK(pthread_join(t, NULL) == 0, "join");
    slab_cache_shrink(cache);
    struct slab_cache_stats st = cache_stats(cache);
    CHECK(st.objects_active == table_live(), "objects_active %llu, table %zu",
          (unsigned long long)st.objects_active, table_live());
    CHECK(get_bad == 0, "get pinned unallocated objects");
    CHECK(slab_cache_validate(cache) == 0, "validate");
}

int main(void)
{
    dt_watchdog(60);
    cache = slab_cache_create("evict-items", sizeof(struct item), 0, 0, NULL);
    CHECK(cache != NULL, "create");
    CHECK(slab_cache_setup_defrag(cache, get, kick) == 0, "setup_defrag");
    phase_single_thread();
    phase_concurrent();
    for (size_t i = 0; i < NITEMS; i++)
        item_unlink(i, NULL);
    CHECK(cache_stats(cache).objects_active == 0, "objects left");
    slab_cache_destroy(cache);
    return 0;
}
