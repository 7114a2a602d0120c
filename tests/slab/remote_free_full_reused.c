/*
 * remote_free_full_reused: objects another thread frees into slabs that are
 * full and owned by a live thread come back to that owner: its next
 * allocations return those very objects before any new slab is created.
 *
 * Thread A allocates 4 slabs' worth of 512 B objects plus one: the first 4
 * slabs are full (still A's: owned slabs stay owned when full), the fifth is
 * A's active slab with objects_per_slab - 1 free objects.  Thread B frees 3
 * objects of each full slab (12 in all).  A then allocates the fifth slab's
 * remaining objects plus 12: those 12 must be exactly the objects B freed, and
 * the cache's slab count must stay 5 throughout.  The purge delay is an hour so
 * that the purge thread does not flush A's heap while A waits for B (that
 * would hand the slabs to the cache and test a different path).
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "slabtest.h"

#define OBJ_SIZE 512
#define FULL_SLABS 4
#define PER_SLAB_FREED 3
#define NFREED (FULL_SLABS * PER_SLAB_FREED)

static struct slab_cache *cache;
static unsigned per;
static void **objs; /* A's first FULL_SLABS * per + 1 objects */
static void *freed[NFREED];

static int is_freed(const void *p)
{
    for (int i = 0; i < NFREED; i++)
        if (freed[i] == p)
            return 1;
    return 0;
}

static void check_slabs(const char *when)
{
    struct slab_cache_stats st = cache_stats(cache);
    if (st.slabs != FULL_SLABS + 1)
        print_stats(when, &st);
    CHECK(st.slabs == FULL_SLABS + 1, "%s: %llu slabs, want %d", when,
          (unsigned long long)st.slabs, FULL_SLABS + 1);
}

static void *thread_a(void *arg)
{
    (void)arg;
    size_t n = (size_t)FULL_SLABS * per + 1;
    size_t S = cache_stats(cache).slab_size;
    for (size_t i = 0; i < n; i++) {
        objs[i] = slab_alloc(cache);
        CHECK(objs[i] != NULL, "slab_alloc: %s", strerror(errno));
        memset(objs[i], 0x21, OBJ_SIZE);
    }
    for (size_t k = 0; k < FULL_SLABS; k++)
        for (size_t i = 1; i < per; i++)
            CHECK(slab_base(objs[k * per + i], S) == slab_base(objs[k * per], S),
                  "A's objects %zu and %zu are not in one slab: allocation order changed",
                  k * per, k * per + i);
    check_slabs("A filled its slabs");
    stage_set(1);
    stage_wait(2); /* B frees into A's full slabs */

    size_t again = (per - 1) + NFREED, got_freed = 0;
    void **mine = calloc(again, sizeof *mine);
    CHECK(mine != NULL, "calloc");
    for (size_t i = 0; i < again; i++) {
        mine[i] = slab_alloc(cache);
        CHECK(mine[i] != NULL, "slab_alloc: %s", strerror(errno));
        got_freed += is_freed(mine[i]);
        check_slabs("A allocating again");
    }
    CHECK(got_freed == NFREED,
          "A got back only %zu of the %d objects B freed into its full slabs", got_freed, NFREED);
    for (size_t i = 0; i < again; i++)
        slab_free(cache, mine[i]);
    free(mine);
    for (size_t i = 0; i < n; i++)
        if (!is_freed(objs[i]))
            slab_free(cache, objs[i]);
    return NULL;
}

static void *thread_b(void *arg)
{
    (void)arg;
    int n = 0;
    for (size_t k = 0; k < FULL_SLABS; k++)
        for (size_t j = 0; j < PER_SLAB_FREED; j++) {
            /* Spread over the slab: first, middle, last-but-one. */
            size_t i = k * per + (j == 0 ? 0 : j == 1 ? per / 2 : per - 2);
            freed[n++] = objs[i];
            slab_free(cache, objs[i]);
        }
    return NULL;
}

int main(void)
{
    CHECK(slab_set_purge_delay(PURGE_DELAY_LONG_MS) == 0, "slab_set_purge_delay");
    cache = slab_cache_create("remote-full", OBJ_SIZE, 0, 0, NULL);
    CHECK(cache != NULL, "create: %s", strerror(errno));
    per = cache_stats(cache).objects_per_slab;
    CHECK(per >= 4, "objects_per_slab %u", per);
    objs = calloc((size_t)FULL_SLABS * per + 1, sizeof *objs);
    CHECK(objs != NULL, "calloc");

    pthread_t a, b;
    CHECK(pthread_create(&a, NULL, thread_a, NULL) == 0, "pthread_create");
    stage_wait(1);
    CHECK(pthread_create(&b, NULL, thread_b, NULL) == 0, "pthread_create");
    CHECK(pthread_join(b, NULL) == 0, "pthread_join");
    stage_set(2);
    CHECK(pthread_join(a, NULL) == 0, "pthread_join");

    struct slab_cache_stats st = cache_stats(cache);
    CHECK(st.objects_active == 0, "%llu objects still active", (unsigned long long)st.objects_active);
    CHECK(slab_cache_validate(cache) == 0, "validate");
    slab_cache_destroy(cache);
    free(objs);
    printf("remote_free_full_reused: ok (%u objects per slab)\n", per);
    return 0;
}
