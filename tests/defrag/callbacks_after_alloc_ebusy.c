/*
 * callbacks_after_alloc_ebusy: callbacks on a ctor-less cache must be set before
 * its first allocation (its free pointer overlays object memory until then);
 * afterwards both setters fail with -EBUSY and errno EBUSY and leave the cache
 * without callbacks.  A ctor cache keeps its free pointer outside the objects,
 * so it may get callbacks at any time.  NULL arguments give -EINVAL.
 */
#include "defragtest.h"

static enum slab_move_result move_never(void *old_obj, void *new_obj, size_t size, void *arg)
{
    CHECK(0, "move called on a cache whose set_move failed");
    return SLAB_MOVE_NO;
}

static void *get_never(struct slab_cache *s, int nr, void **objs)
{
    CHECK(0, "get called on a cache whose setup_defrag failed");
    return NULL;
}

static void kick_never(struct slab_cache *s, int nr, void **objs, void *p) {}

static enum slab_move_result move_yes(void *old_obj, void *new_obj, size_t size, void *arg)
{
    void **slot = *(void ***)old_obj;
    memcpy(new_obj, old_obj, size);
    *slot = new_obj;
    return SLAB_MOVE_YES;
}

static void ctor(void *obj) { memset(obj, 0, 64); }

int main(void)
{
    dt_watchdog(60);
    /* ctor-less: fine before the first allocation... */
    struct slab_cache *early = slab_cache_create("cb-early", 64, 0, 0, NULL);
    CHECK(early && slab_cache_set_move(early, move_yes, NULL) == 0, "set_move before alloc");
    void *p = slab_alloc(early);
    CHECK(p != NULL, "alloc");
    slab_free(early, p);
    slab_cache_destroy(early);

    /* ...-EBUSY after it. */
    struct slab_cache *late = slab_cache_create("cb-late", 64, 0, 0, NULL);
    CHECK(late != NULL, "create");
    void *objs[200];
    for (int i = 0; i < 200; i++)
        CHECK((objs[i] = slab_alloc(late)) != NULL, "alloc");
    errno = 0;
    int rc = slab_cache_set_move(late, move_never, NULL);
    CHECK(rc == -EBUSY && errno == EBUSY, "set_move after alloc: %d errno %d", rc, errno);
    errno = 0;
    rc = slab_cache_setup_defrag(late, get_never, kick_never);
    CHECK(rc == -EBUSY && errno == EBUSY, "setup_defrag after alloc: %d errno %d", rc, errno);
    for (int i = 0; i < 200; i++)
        if (i % 10)
            slab_free(late, objs[i]);
    /* The refused callbacks must never run (they CHECK-fail if they do). */
    CHECK(slab_cache_defrag(late, 100) >= 0, "defrag");
    CHECK(slab_cache_shrink(late) >= 0, "shrink");
    struct slab_cache_stats st = cache_stats(late);
    CHECK(st.defrag_objects_moved == 0 && st.defrag_objects_kicked == 0, "callbacks ran");
    for (int i = 0; i < 200; i += 10)
        slab_free(late, objs[i]);
    slab_cache_destroy(late);

    /* A ctor cache may get callbacks after allocations, and they work. */
    struct slab_cache *c = slab_cache_create("cb-ctor", 64, 0, 0, ctor);
    CHECK(c != NULL, "create");
    static void *table[630];
    for (int i = 0; i < 630; i++) {
        table[i] = slab_alloc(c);
        CHECK(table[i] != NULL, "alloc");
        *(void ***)table[i] = &table[i];
    }
    CHECK(slab_cache_set_move(c, move_yes, NULL) == 0, "set_move on a ctor cache after alloc");
    for (int i = 0; i < 630; i++)
        if (i % 9) {
            slab_free(c, table[i]);
            table[i] = NULL;
        }
    CHECK(slab_cache_defrag(c, 100) > 0, "defrag of the ctor cache released nothing");
    CHECK(cache_stats(c).defrag_objects_moved > 0, "nothing moved");
    for (int i = 0; i < 630; i += 9)
        CHECK(*(void ***)table[i] == &table[i], "slot %d not re-pointed", i);
    for (int i = 0; i < 630; i += 9)
        slab_free(c, table[i]);
    slab_cache_destroy(c);

    errno = 0;
    CHECK(slab_cache_set_move(NULL, move_yes, NULL) == -EINVAL && errno == EINVAL, "NULL cache");
    struct slab_cache *n = slab_cache_create("cb-null", 64, 0, 0, NULL);
    CHECK(slab_cache_set_move(n, NULL, NULL) == -EINVAL, "NULL move");
    CHECK(slab_cache_setup_defrag(n, NULL, kick_never) == -EINVAL, "NULL get");
    CHECK(slab_cache_setup_defrag(n, get_never, NULL) == -EINVAL, "NULL kick");
    CHECK(slab_cache_defrag(NULL, 30) == -EINVAL && slab_cache_shrink(NULL) == -EINVAL,
          "NULL trigger");
    slab_cache_destroy(n);
    printf("callbacks_after_alloc_ebusy: ok\n");
    return 0;
}
