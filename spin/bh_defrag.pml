/*
 * bh_defrag.pml: a Promela model of the buffer_head defrag protocol
 * (src/bufcache/bh_defrag.c get/kick against bh.c's ring detach and page
 * reuse).  It proves: kick only acts on a page that still owns the buffer head
 * through which get pinned it ("no wrong-page access"), pins are balanced, and
 * no pin is taken on a free or frozen page.
 *
 * State: one page descriptor P (type-stable: it is never unmapped, only reused)
 * and the two buffer heads B0, B1 of its ring, both in the slab the engine has
 * frozen, so a freed one is never handed out again during the pass.
 *   ref        P's refcount: 1 = cached, unpinned (the index reference); 0 =
 *              free or frozen; each get pin adds 1.
 *   bh_page[i] B_i's b_page: 1 = P, 0 = detached (being freed / free).
 *   ring       P's ring: 1 = {B0, B1}, 2 = a newer ring of other buffer heads,
 *              0 = none.
 *   gen        P's identity (which device block it caches): +1 on each reuse.
 * Processes:
 *   owner  the rest of the buffer cache, up to OPS times, in any interleaving:
 *          release the ring (freeze 1->0, clear every b_page (release), free the
 *          buffer heads, unfreeze) — the eviction race (c);
 *          evict P (freeze, clear b_page, free, page freed) and reuse the
 *          descriptor for another block or device with a new ring — races (a)
 *          and (b) (the model does not care which device: gen changes);
 *          rebuild a released ring (new buffer heads, never B0/B1).
 *   get+kick  the defrag pass, as implemented: for each B_i read b_page
 *          (acquire); NULL: skip; already pinned: skip (de-duplication); pin
 *          with get-unless-zero; re-read b_page (acquire) and unpin + skip if
 *          it is not P any more.  Then kick: assert the page still owns the
 *          buffer head it was pinned through; try the release routine (freeze
 *          with our one pin: 2 -> 0, detach, unfreeze); drop the pin.
 * The model is sequentially consistent; the C code's orderings that make it
 * so are: detach clears b_page with release before the buffers are freed and
 * before the page is unfrozen or freed (refcount store is release), the pin is
 * an acquire CAS, and the re-read of b_page is an acquire load after it.
 * NAIVE (spin -DNAIVE): the seed's get — no re-read after pinning, no working
 * de-duplication.  It must produce a counterexample (assertion violated).
 */
#define NBH 2
#ifndef OPS
#define OPS 3
#endif

byte ref = 1;
byte bh_page[NBH];
bool bh_freed[NBH];
byte ring = 1;
byte gen = 1;
byte pins = 0;      /* get's pins, for the balance check */
byte done = 0;

init {
    bh_page[0] = 1;
    bh_page[1] = 1;
    run owner();
    run defrag();
}

/* Detach ring {B0,B1} from frozen P: clear b_page first, then free. */
inline detach_ring() {
    if
    :: ring == 1 ->
        bh_page[0] = 0;
        bh_page[1] = 0;
        bh_freed[0] = true;
        bh_freed[1] = true
    :: ring != 1 -> skip
    fi;
    ring = 0
}

proctype owner() {
    byte ops = 0;
    bool frozen;
    do
    :: ops < OPS ->
        if
        :: /* release routine (eviction drops the buffers; page stays cached) */
            atomic { if :: ref == 1 -> ref = 0; frozen = true :: ref != 1 -> frozen = false fi };
            if
            :: frozen -> detach_ring(); ref = 1
            :: !frozen -> skip
            fi
        :: /* evict, then the descriptor is reused for another block / device */
            atomic { if :: ref == 1 -> ref = 0; frozen = true :: ref != 1 -> frozen = false fi };
            if
            :: frozen ->
                detach_ring();
                /* P is free now (ref 0); page_alloc hands it out again */
                gen++;
                ring = 2;
                ref = 1
            :: !frozen -> skip
            fi
        :: /* an access rebuilds a released ring (new buffer heads) */
            ref > 0 && ring == 0 -> ring = 2
        fi;
        ops++
    :: else -> break
    od;
    done++
}

proctype defrag() {
    byte v[NBH];     /* pinned pages (1 = P), compacted */
    byte src[NBH];   /* the buffer head each pin came through */
    byte n = 0;
    byte i = 0;
    byte k;
    byte pg;
    bool ok;
    /* ---- get ---- */
    do
    :: i < NBH ->
        pg = bh_page[i];                      /* load_acquire(bh->b_page) */
        if
        :: pg == 0 -> goto next               /* being freed: skip, never follow */
        :: else -> skip
        fi;
#ifndef NAIVE
        k = 0;
        do
        :: k < n && v[k] == pg -> goto next   /* each page once */
        :: k < n && v[k] != pg -> k++
        :: k >= n -> break
        od;
#endif
        atomic {                              /* page_get_unless_zero */
            if
            :: ref > 0 -> ref++; pins++; ok = true
            :: else -> ok = false
            fi
        };
        if
        :: !ok -> goto next
        :: else -> skip
        fi;
#ifndef NAIVE
        if
        :: bh_page[i] != pg ->                /* re-read (acquire): the ring left */
            atomic { assert(ref > 1); ref--; pins-- };
            goto next
        :: else -> skip
        fi;
#endif
        v[n] = pg;
        src[n] = i;
        n++;
next:
        i++
    :: else -> break
    od;
    /* ---- kick ---- */
    k = 0;
    do
    :: k < n ->
        /* the property: kick acts only on the page that owns the buffer head
         * get pinned it through (hence the page that owned it at the pin) */
        assert(bh_page[src[k]] == v[k] && ref > 1);
        atomic { if :: ref == 2 -> ref = 0; ok = true :: else -> ok = false fi };
        if
        :: ok -> detach_ring(); ref = 2       /* page_release_buffers(p, 1) */
        :: else -> skip                       /* busy: another pin, or frozen */
        fi;
        atomic { assert(ref > 1); ref--; pins-- };  /* page_put */
        k++
    :: else -> break
    od;
    done++
}

/* At the end every pin was dropped and P is cached with only its index ref. */
active proctype check() {
    done == 2;
    assert(pins == 0 && ref == 1)
}
