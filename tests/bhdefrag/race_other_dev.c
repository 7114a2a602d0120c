/*
 * race_other_dev: race (b) of the naive get (naive.h) — between get reading bh->b_page and
 * pinning that page, the page is evicted and gets buffers of *another device*
 * opened on the same bcache, and that block is dirtied.
 *
 * How: race.h's frame with two image files; in get's after_read_page hook the
 * victim page is evicted and a block of the second device is overwritten
 * (bh_get + stamp + bh_mark_dirty), which reuses the victim descriptor
 * (asserted).  The real get notices that b_page changed after pinning and
 * skips the page; the naive logic pins it and kicks it: it starts writeback of
 * the other device's page and strips its ring — a wrong-page access that the
 * kick_page hook catches.  Both runs must keep all data of both devices right
 * (through the cache, and in the image files after bdev_sync).
 * TEST_LIBRARY: slabdefrag_testing (the get/kick hooks).
 */
#include "race.h"

static void mutate_other_dev(struct race *r, struct bc_page *p)
{
    race_evict(r->bc, p);
    struct bc_page *q = race_stamp(r, r->dev2, 5 * 4 + 1);
    CHECK(q == p, "the evicted descriptor was not reused by device 2 (got %u, victim %u)",
          page_id(r->bc, q), page_id(r->bc, p));
    CHECK(page_map(q) == rmap(r->dev2), "reused page is not device 2's");
    CHECK(page_flags(q) & PG_DIRTY, "device 2's page is not dirty");
}

int main(void)
{
    static struct race r = {.name = "other_dev", .mutate = mutate_other_dev};
    return run_race(&r, 1);
}
