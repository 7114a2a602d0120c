/*
 * backoff_sequence: the background defragmenter's back-off (defrag_bg.c) over
 * real passes.  A cache of sparse slabs whose move callback answers LATER
 * (busy) gets full passes that forget refusals (as slab_cache_shrink does), so
 * every pass freezes slabs and empties none: a fruitless pass.  After the n-th
 * fruitless pass in a row the cache must be skipped exactly min(2^n, 64)
 * rounds (2, 4, 8, 16, 32, 64, 64, 64) and examined in the round after.  Then
 * the callback answers DONT_NEED, the pass empties slabs, and the cache is
 * examined at once (back-off cleared); a fruitless pass after that starts
 * again at 2.  Also a pass that scans nothing (no candidates) leaves the
 * back-off as it was.
 */
#include "defragtest.h"
#include "slab/defrag.h"

#define NOBJ (62 * 40)

static struct slab_cache *cache;
static _Atomic(void *) objs[NOBJ];
static _Atomic int answer = SLAB_MOVE_LATER;

static enum slab_move_result move(void *old, void *new_obj, size_t size, void *arg)
{
    (void)new_obj, (void)size, (void)arg;
    int a = atomic_load(&answer);
    if (a == SLAB_MOVE_DONT_NEED)
        atomic_store(&objs[*(size_t *)old], NULL);
    return (enum slab_move_result)a;
}

static struct defrag_result fruitless_pass(void)
{
    struct defrag_request rq = { .fill_percent = 100, .flush_own_heap = true,
                                 .forget_refusals = true };
    struct defrag_result res;
    CHECK(defrag_pass(cache, &rq, &res) >= 0, "defrag_pass");
    return res;
}

/* Rounds skipped before the cache is examined again (consumes that round). */
static unsigned skipped_rounds(void)
{
    unsigned n = 0;
    while (defrag_backing_off(cache)) {
        n++;
        CHECK(n <= 1000, "back-off never ends");
    }
    return n;
}

int main(void)
{
    cache = slab_cache_create("backoff_seq", 64, 0, 0, NULL);
    CHECK(cache != NULL, "create");
    CHECK(slab_cache_set_move(cache, move, NULL) == 0, "set_move");
    for (size_t i = 0; i < NOBJ; i++) {
        size_t *o = slab_alloc(cache);
        CHECK(o != NULL, "alloc");
        *o = i;
        atomic_store(&objs[i], o);
    }
    for (size_t i = 0; i < NOBJ; i++)
        if (i % 8 != 0) {
            slab_free(cache, atomic_load(&objs[i]));
            atomic_store(&objs[i], NULL);
        }

    CHECK(skipped_rounds() == 0, "a new cache is not backing off");
    static const unsigned want[] = { 2, 4, 8, 16, 32, 64, 64, 64 };
    for (unsigned k = 0; k < sizeof want / sizeof want[0]; k++) {
        struct defrag_result res = fruitless_pass();
        CHECK(res.scanned > 0 && res.emptied == 0, "pass %u: scanned %llu emptied %llu: not fruitless",
              k + 1, (unsigned long long)res.scanned, (unsigned long long)res.emptied);
        defrag_update_backoff(cache, &res);
        unsigned got = skipped_rounds();
        CHECK(got == want[k], "after fruitless pass %u: skipped %u rounds, want %u", k + 1, got, want[k]);
    }

    /* A pass with nothing to scan changes nothing. */
    struct defrag_result none = { 0 };
    defrag_update_backoff(cache, &none);
    CHECK(skipped_rounds() == 0, "an empty pass set a back-off");

    /* A pass that empties slabs clears the back-off, and the count restarts. */
    struct defrag_result res = fruitless_pass(); /* back off first ... */
    defrag_update_backoff(cache, &res);
    atomic_store(&answer, SLAB_MOVE_DONT_NEED);
    res = fruitless_pass();                      /* ... then empty slabs */
    CHECK(res.emptied > 0, "DONT_NEED emptied no slab");
    defrag_update_backoff(cache, &res);
    CHECK(skipped_rounds() == 0, "a fruitful pass did not clear the back-off");
    atomic_store(&answer, SLAB_MOVE_LATER);
    for (size_t i = 0; i < NOBJ; i++)
        if (i % 8 != 0 && (i / 8) % 2 == 0) {
            size_t *o = slab_alloc(cache);
            CHECK(o != NULL, "alloc");
            *o = i;
            atomic_store(&objs[i], o);
        }
    res = fruitless_pass();
    CHECK(res.scanned > 0 && res.emptied == 0, "the pass after refilling was not fruitless");
    defrag_update_backoff(cache, &res);
    CHECK(skipped_rounds() == 2, "the count did not restart at 2 after a fruitful pass");

    for (size_t i = 0; i < NOBJ; i++) {
        void *o = atomic_load(&objs[i]);
        if (o)
            slab_free(cache, o);
    }
    slab_cache_destroy(cache);
    return 0;
}
