/*
 * race_evict: race (c) of the naive get (naive.h) — eviction drops the buffers while get is
 * between reading bh->b_page and pinning: the page's ring is released (the
 * page stays cached) and the next access rebuilds a ring of new buffer heads
 * on the same page, which is then dirtied.
 *
 * How: race.h's frame; in get's after_read_page hook the victim page's ring is
 * released with the release routine, then one of its blocks is overwritten
 * (bh_get rebuilds the ring; stamp; bh_mark_dirty).  The buffer head get read
 * is now free in the frozen slab with b_page NULL.  The real get pins the page,
 * re-reads b_page, finds NULL and skips; the naive logic pins the page and
 * kicks it (writes it back and strips the rebuilt ring) although none of the
 * frozen slab's buffer heads belongs to it any more.  Data must read back
 * right in both runs (cache and image after sync).
 * TEST_LIBRARY: slabdefrag_testing (the get/kick hooks).
 */
#include "race.h"

static void mutate_evict(struct race *r, struct bc_page *p)
{
    uint64_t index = atomic_load(&p->index);
    CHECK(race_drop_ring(r->bc, r->dev, index) == 4, "could not drop the victim's ring");
    struct bc_page *q = race_stamp(r, r->dev, index * 4 + 2);
    CHECK(q == p, "the block moved to another page");
    CHECK(atomic_load(&p->buffers) != NULL, "ring not rebuilt");
}

int main(void)
{
    static struct race r = {.name = "evict", .mutate = mutate_evict};
    return run_race(&r, 0);
}
