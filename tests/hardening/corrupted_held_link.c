/*
 * corrupted_held_link: a write after free into an object that a thread's heap
 * holds back from its slab — on the thread's cache of freed objects (lfree),
 * or on the delayed stack where other threads' frees into its full slabs
 * wait — is reported when that list is walked:
 * "slabdefrag: cache '<name>': corrupted free pointer in free object <ptr>
 * (decodes to <ptr>, outside its cache's slab memory): write after free or
 * overflow", instead of the walk following the link to a wild address (a
 * segmentation fault without a word).
 *
 * In a cache without ctor and debug flags the link lives at offset 0 of a free
 * object.  Setup in each forked child: allocate a bit more than three slabs'
 * worth of 64-byte objects, so the first slab is full, on the heap's full list
 * with its delayed free armed, and x is its first object.  Each case checks
 * that x really sits where it means (the heap's lfree or delayed head).
 *  1. lfree, garbage: this thread frees x (lfree), overwrites its link with
 *     0x4141..., and slab_cache_shrink flushes the heap (lfree is walked);
 *  2. lfree, zeros (a memset after free; hardened build only: in plain, 0 is
 *     the end of the list);
 *  3. lfree spilled: as 1, then 64 more frees into the full slabs fill lfree
 *     and the next one gives it back to its slabs (the same walk);
 *  4. delayed: another thread frees x (it lands on this heap's delayed stack),
 *     this thread overwrites its link and shrinks (the delayed stack is drained);
 *  5. delayed, drained by the owner: as 4, then this thread allocates until its
 *     active slab runs out (the refill drains the delayed stack).
 * Controls: each case without the write survives, and everything freed leaves
 * the cache valid with no object active.
 */
#include "hardtest.h"
#include "slab/internal.h" /* the heap's lfree and delayed heads */

#define OBJ_SIZE 64
#define NOBJ 200 /* 4 KiB slabs of 62 objects: three full slabs and an active one */

enum where { LFREE, LFREE_SPILL, DELAYED, DELAYED_REFILL };

struct held {
    struct slab_cache *s;
    enum where where;
    int corrupt;
    uint64_t value; /* written over x's link */
};

static void run_case(void *arg)
{
    struct held *c = arg;
    struct slab_cache *s = c->s;
    void *v[NOBJ + 100];
    for (int i = 0; i < NOBJ; i++)
        CHECK((v[i] = slab_alloc(s)) != NULL, "slab_alloc: %s", strerror(errno));
    void *x = v[0];
    struct heap *h = tls_heaps[s->id];
    CHECK(h != NULL && h->active != NULL, "no heap");
    CHECK(slab_base(x, slab_bytes(s)) != (uintptr_t)h->active, "x is in the active slab");
    if (c->where == LFREE || c->where == LFREE_SPILL) {
        slab_free(s, x);
        CHECK(h->lfree == x, "x is not on this thread's lfree");
    } else {
        free_on_thread(s, x);
        CHECK(atomic_load(&h->delayed) == x, "x is not on this heap's delayed stack");
    }
    if (c->corrupt)
        memcpy(x, &c->value, sizeof c->value);
    int allocated = NOBJ;
    if (c->where == LFREE_SPILL) {
        /* 64 more frees of objects in the full slabs: lfree holds 64, and the
         * last of them spills it. */
        for (int i = 1; i <= HEAP_LFREE_MAX; i++) {
            CHECK(slab_base(v[i], slab_bytes(s)) != (uintptr_t)h->active, "object %d active", i);
            slab_free(s, v[i]);
            v[i] = NULL;
        }
        CHECK(h->nlfree == 1, "lfree was not spilled (%u objects on it)", h->nlfree);
    } else if (c->where == DELAYED_REFILL) {
        for (int i = 0; i < 100; i++)
            CHECK((v[allocated++] = slab_alloc(s)) != NULL, "slab_alloc: %s", strerror(errno));
        CHECK(atomic_load(&h->delayed) == NULL, "the refill did not drain the delayed stack");
    } else {
        CHECK(slab_cache_shrink(s) >= 0, "slab_cache_shrink: %s", strerror(errno));
    }
    if (c->corrupt) {
        fprintf(stderr, "the corrupted link was walked without a report\n");
        return;
    }
    for (int i = 1; i < allocated; i++)
        slab_free(s, v[i]);
    CHECK(slab_cache_validate(s) == 0, "validate");
    CHECK(cache_stats(s).objects_active == 0, "objects still active");
}

static void expect_report(const char *label, struct slab_cache *s, enum where where, uint64_t value)
{
    struct held c = {s, where, 1, value};
    const char *needles[] = {"slabdefrag: cache 'held': corrupted free pointer in free object",
                             "outside its cache's slab memory): write after free or overflow", NULL};
    CHECK(expect_die(label, run_case, &c, needles) == 0, "%s: corrupted link not reported", label);
    char control[96];
    snprintf(control, sizeof control, "%s (control, no write)", label);
    c.corrupt = 0;
    CHECK(expect_survive(control, run_case, &c) == 0, "%s failed", control);
}

int main(void)
{
    /* Decay on (lfree exists only then), but long: no purge tick flushes a heap. */
    CHECK(slab_set_purge_delay(3600000) == 0, "slab_set_purge_delay");
    struct slab_cache *s = slab_cache_create("held", OBJ_SIZE, 0, 0, NULL);
    CHECK(s != NULL, "slab_cache_create: %s", strerror(errno));
    CHECK(s->objects * 3 < NOBJ && s->objects * 4 > NOBJ, "%u objects per slab", s->objects);
    const uint64_t garbage = 0x4141414141414141ull;

    expect_report("1: lfree, garbage", s, LFREE, garbage);
#ifndef SLABDEFRAG_NO_FREELIST_HARDENING
    expect_report("2: lfree, zeros", s, LFREE, 0);
#endif
    expect_report("3: lfree spilled", s, LFREE_SPILL, garbage);
    expect_report("4: delayed", s, DELAYED, garbage);
    expect_report("5: delayed, drained by the refill", s, DELAYED_REFILL, garbage);

    slab_cache_destroy(s);
    printf("corrupted_held_link: ok\n");
    return 0;
}
