/*
 * examples/example_util.h — the few helpers the example programs share
 * (dentry_move.c, lru_evict.c): header only, nothing here is part of the
 * library's API.
 *
 * die(what)         print "<EXAMPLE_NAME>: <what>" and exit 1 (define
 *                   EXAMPLE_NAME, a string, before including this header).
 * proc_rss_bytes()  the process RSS from /proc/self/statm (tools/proc_rss.h,
 *                   shared with the tool, the tests and the benchmarks).
 * cache_stats(s)    a slab_cache_get_stats() snapshot of cache s.
 */
#ifndef SLABDEFRAG_EXAMPLE_UTIL_H
#define SLABDEFRAG_EXAMPLE_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <slabdefrag/slab.h>

#include "../tools/proc_rss.h"

#ifndef EXAMPLE_NAME
#error "define EXAMPLE_NAME (the program's name) before including example_util.h"
#endif

static inline void die(const char *what)
{
    fprintf(stderr, EXAMPLE_NAME ": %s\n", what);
    exit(1);
}

static inline struct slab_cache_stats cache_stats(struct slab_cache *s)
{
    struct slab_cache_stats st;
    slab_cache_get_stats(s, &st);
    return st;
}

#endif
