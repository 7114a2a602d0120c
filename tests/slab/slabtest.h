/*
 * slabtest.h: small helpers shared by the tests in tests/slab/ (header only, so
 * the per-directory glob of *.c files does not turn it into a test program).
 * The generic ones (cache_stats, print_stats, slab_base, resident_bytes,
 * stderr capture, expect_abort) are in tests/util/testutil.h.
 *
 * check_stats_consistent()  the invariants of an exact stats snapshot.
 */
#ifndef SLABDEFRAG_TESTS_SLABTEST_H
#define SLABDEFRAG_TESTS_SLABTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabdefrag/slab.h>

#include "testutil.h"

/* The invariants that hold in every exact snapshot (no thread holds an active slab). */
static inline void check_stats_consistent(const struct slab_cache_stats *st)
{
    if (!(st->objects_active == st->allocs - st->frees && st->allocs >= st->frees &&
          st->objects_total == st->slabs * st->objects_per_slab &&
          st->slabs_partial + st->slabs_empty <= st->slabs &&
          st->objects_active <= st->objects_total &&
          st->bytes_mapped == st->slabs * st->slab_size))
        print_stats("inconsistent stats", st);
    CHECK(st->allocs >= st->frees, "frees exceed allocs");
    CHECK(st->objects_active == st->allocs - st->frees, "objects_active != allocs - frees");
    CHECK(st->objects_total == st->slabs * st->objects_per_slab,
          "objects_total != slabs * objects_per_slab");
    CHECK(st->slabs_partial + st->slabs_empty <= st->slabs, "partial + empty > slabs");
    CHECK(st->objects_active <= st->objects_total, "more active objects than capacity");
    CHECK(st->bytes_mapped == st->slabs * st->slab_size,
          "bytes_mapped != slabs * slab_size");
}

#endif
