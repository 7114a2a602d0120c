/*
 * poison_callbacks_ebusy: a poisoned cache (SLAB_POISON, no constructor) stops
 * poisoning when it gets defrag callbacks, because get/move read free objects
 * (a refcount).  So callbacks are accepted before its first slab exists and
 * refused with -EBUSY after: objects poisoned earlier would look referenced.
 * Checked: setup_defrag on a fresh poisoned cache returns 0 and a freed
 * object keeps the bytes its user left (no 0x6b poison); on a poisoned cache
 * that already allocated, setup_defrag and set_move return -EBUSY with errno.
 */
#include <errno.h>
#include <string.h>

#include <slabdefrag/slab.h>

#include "testutil.h"

static void *get(struct slab_cache *s, int nr, void **objs) { (void)s, (void)nr, (void)objs; return NULL; }
static void kick(struct slab_cache *s, int nr, void **objs, void *p) { (void)s, (void)nr, (void)objs, (void)p; }
static enum slab_move_result move(void *old, void *new_obj, size_t size, void *arg)
{
    (void)old, (void)new_obj, (void)size, (void)arg;
    return SLAB_MOVE_NO;
}

int main(void)
{
    struct slab_cache *a = slab_cache_create("poison_cb_fresh", 64, 0, SLAB_POISON, NULL);
    CHECK(a != NULL, "create");
    CHECK(slab_cache_setup_defrag(a, get, kick) == 0, "callbacks before the first slab");
    unsigned char *o = slab_alloc(a);
    CHECK(o != NULL, "alloc");
    memset(o, 0, 64);
    slab_free(a, o);
    /* The slab is frozen-stable while the cache lives: reading a free object
     * is what a get callback does. */
    unsigned char copy[64];
    memcpy(copy, o, sizeof copy);
    for (size_t i = 0; i < sizeof copy; i++)
        CHECK(copy[i] == 0, "byte %zu of a free object of a callback cache is %#x (poisoned)", i, copy[i]);
    slab_cache_destroy(a);

    struct slab_cache *b = slab_cache_create("poison_cb_late", 64, 0, SLAB_POISON, NULL);
    CHECK(b != NULL, "create");
    void *x = slab_alloc(b);
    CHECK(x != NULL, "alloc");
    errno = 0;
    CHECK(slab_cache_setup_defrag(b, get, kick) == -EBUSY && errno == EBUSY,
          "setup_defrag on a poisoned cache with slabs must fail with EBUSY");
    errno = 0;
    CHECK(slab_cache_set_move(b, move, NULL) == -EBUSY && errno == EBUSY,
          "set_move on a poisoned cache with slabs must fail with EBUSY");
    slab_free(b, x);
    slab_cache_destroy(b);
    return 0;
}
