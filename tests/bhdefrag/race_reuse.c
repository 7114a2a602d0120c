/*
 * race_reuse: race (a) of the naive get (naive.h) — between get reading bh->b_page and
 * pinning that page, the buffer head is freed (its page is evicted, which
 * detaches and frees the ring) and the page descriptor is reused for another
 * block of the same device.
 *
 * How: race.h's frame; in get's after_read_page hook the victim page is evicted
 * and a block of an uncached page is read, which takes the victim descriptor
 * from the head of the warm free list (asserted: the same pointer).  The real
 * get pins the reused page, re-reads b_page (now NULL), unpins and skips it;
 * the naive logic pins it and kicks a page that owns none of the frozen slab's
 * buffer heads, stripping the new block's ring.  Passes only if the real code
 * acts on no wrong page, the naive code is caught, and all data reads back
 * right in both runs (through the cache and from the image after sync).
 * TEST_LIBRARY: slabdefrag_testing (the get/kick hooks).
 */
#include "race.h"

static void mutate_reuse(struct race *r, struct bc_page *p)
{
    race_evict(r->bc, p);
    struct bc_page *q = race_touch(r->dev, (RNP + 3) * 4 + 1);
    CHECK(q == p, "the evicted descriptor was not reused (got page %u, victim %u)",
          page_id(r->bc, q), page_id(r->bc, p));
    CHECK(atomic_load(&q->index) != r->victim_index, "reused for the same block");
}

int main(void)
{
    static struct race r = {.name = "reuse", .mutate = mutate_reuse};
    return run_race(&r, 0);
}
