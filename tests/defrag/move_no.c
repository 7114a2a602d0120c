/*
 * move_no: NO frees the new object, and the slab is not asked about again until
 * it empties or slab_cache_shrink() clears the mark.
 *
 * 400 slabs of 15 objects of 256 B, every 8th kept.  With a NO-only callback:
 *   - one slab_cache_defrag(s, 30): each candidate slab is asked about at most
 *     once (NO stops asking for that slab), objects_active is unchanged (every
 *     new was freed), move_results[NO] and defrag_objects_refused account for
 *     the answers, nothing moved, every object intact;
 *   - more slab_cache_defrag / slab_reclaim calls ask nothing more;
 *   - a NO slab that empties is forgotten: its slab goes back to the OS;
 *   - slab_cache_shrink() clears the marks: it asks again.  With the answer
 *     switched to YES afterwards, a plain defrag asks only about objects in
 *     slabs that shrink's pass used as destinations (every slab it asked about
 *     it marked NO again; a destination is not asked in the pass it serves),
 *     and the next shrink moves everything.
 */
#include "defragtest.h"

#define PER_SLAB 15
#define NSLABS 400
#define NOBJ (PER_SLAB * NSLABS)
#define KEEP_EVERY 8

int main(void)
{
    dt_watchdog(60);
    struct owner o;
    size_t live = owner_init_sparse(&o, "move-no", 256, NOBJ, KEEP_EVERY);
    owner_set_answer(&o, SLAB_MOVE_NO);

    struct slab_cache_stats before = cache_stats(o.s);
    long r = slab_cache_defrag(o.s, 30);
    CHECK(r >= 0, "slab_cache_defrag: %ld", r);
    struct slab_cache_stats st = cache_stats(o.s);
    uint64_t first = owner_calls(&o);
    CHECK(first > 0, "the callback was never asked");
    CHECK(first <= before.slabs, "%llu NO answers for %llu slabs: a slab was asked again "
          "after NO", (unsigned long long)first, (unsigned long long)before.slabs);
    CHECK(owner_result(&o, SLAB_MOVE_NO) == first, "answers other than NO");
    owner_check_results(&o, "after the NO pass");
    CHECK(st.defrag_objects_moved == 0, "moved %llu", (unsigned long long)st.defrag_objects_moved);
    CHECK(st.defrag_objects_refused >= first, "defrag_objects_refused %llu < %llu NO answers",
          (unsigned long long)st.defrag_objects_refused, (unsigned long long)first);
    CHECK(st.objects_active == live, "objects_active %llu, owner holds %zu: a new object of a NO "
          "answer was not freed", (unsigned long long)st.objects_active, live);
    CHECK(owner_verify(&o, "after NO") == live, "live objects changed");
    CHECK(st.slabs <= before.slabs, "slabs %llu -> %llu", (unsigned long long)before.slabs,
          (unsigned long long)st.slabs);

    /* Repeated triggers do not re-ask NO slabs: each slab is asked at most once
     * in all (a slab that served as the pass's destination is asked later), and
     * the triggers soon ask nothing at all. */
    uint64_t per_round[6];
    for (int i = 0; i < 6; i++) {
        per_round[i] = owner_trigger_round(&o);
    }
    CHECK(owner_calls(&o) <= before.slabs, "NO slabs asked again: %llu NO answers for %llu slabs",
          (unsigned long long)owner_calls(&o), (unsigned long long)before.slabs);
    CHECK(per_round[5] == per_round[2], "still asking after 3 rounds: %llu -> %llu",
          (unsigned long long)per_round[2], (unsigned long long)per_round[5]);
    for (size_t i = 0; i < NOBJ; i++)
        CHECK(atomic_load(&o.calls_per_slot[i]) <= 1, "slot %zu asked %llu times after NO", i,
              (unsigned long long)atomic_load(&o.calls_per_slot[i]));

    /* A NO slab that empties is released and forgotten.  Slot 0's slab holds
     * slots 0 and 8 (fill order): free every live object of one slab. */
    size_t slab_size = o.slab_size;
    uintptr_t base0 = slab_base(o.slots[0], slab_size);
    size_t freed_here = 0;
    for (size_t i = 0; i < NOBJ; i++)
        if (o.slots[i] && slab_base(o.slots[i], slab_size) == base0) {
            owner_free_slot(&o, i);
            freed_here++;
        }
    live -= freed_here;
    slab_cache_defrag(o.s, 30);
    st = cache_stats(o.s);
    CHECK(st.slabs - st.slabs_empty < before.slabs,
          "the emptied NO slab is still in use (%llu slabs, %llu empty)",
          (unsigned long long)st.slabs, (unsigned long long)st.slabs_empty);
    CHECK(st.objects_active == live, "objects_active %llu, owner %zu",
          (unsigned long long)st.objects_active, live);

    /* shrink clears the marks and asks again. */
    uint64_t before_shrink = owner_calls(&o);
    owner_pass_begin(&o);
    CHECK(slab_cache_shrink(o.s) >= 0, "shrink");
    CHECK(owner_calls(&o) > before_shrink, "slab_cache_shrink did not ask the NO slabs again");
    owner_pass_check(&o, "shrink after NO");
    pthread_mutex_lock(&o.lock);
    size_t n_dest = o.n_new;
    struct dt_rec *dests = dt_calloc(n_dest ? n_dest : 1, sizeof *dests);
    memcpy(dests, o.new_recs, n_dest * sizeof *dests);
    pthread_mutex_unlock(&o.lock);
    for (size_t i = 0; i < n_dest; i++)
        dests[i].seq = 0;
    qsort(dests, n_dest, sizeof *dests, dt_cmp_rec);
    owner_set_answer(&o, SLAB_MOVE_YES);
    owner_pass_begin(&o);
    slab_cache_defrag(o.s, 30);
    pthread_mutex_lock(&o.lock);
    for (size_t i = 0; i < o.n_old; i++) {
        struct dt_rec key = { o.old_recs[i].base, 0 };
        CHECK(bsearch(&key, dests, n_dest, sizeof *dests, dt_cmp_rec) != NULL,
              "defrag asked about slab %#lx, which shrink's pass had just marked NO",
              (unsigned long)key.base);
    }
    pthread_mutex_unlock(&o.lock);
    free(dests);
    struct slab_cache_stats pre = cache_stats(o.s);
    long rel = slab_cache_shrink(o.s);
    st = cache_stats(o.s);
    CHECK(owner_result(&o, SLAB_MOVE_YES) > 0, "shrink after NO->YES moved nothing");
    CHECK(rel > 0 && st.bytes_mapped < pre.bytes_mapped, "shrink released %ld, mapped %llu -> %llu",
          rel, (unsigned long long)pre.bytes_mapped, (unsigned long long)st.bytes_mapped);
    CHECK(st.slabs <= (live + PER_SLAB - 1) / PER_SLAB + 2, "%llu slabs for %zu objects",
          (unsigned long long)st.slabs, live);
    owner_check_results(&o, "end");
    CHECK(owner_verify(&o, "end") == live, "live objects changed");
    CHECK(cache_stats(o.s).objects_active == live, "objects_active");
    CHECK(slab_cache_validate(o.s) == 0, "validate");
    owner_destroy(&o);
    printf("move_no: %llu NO answers for %llu slabs, none repeated; shrink re-asked\n",
           (unsigned long long)first, (unsigned long long)before.slabs);
    return 0;
}
