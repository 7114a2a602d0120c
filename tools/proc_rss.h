/*
 * tools/proc_rss.h — proc_rss_bytes(): the resident set size of this process,
 * from /proc/self/statm (field 2, in pages), or 0 when it cannot be read.
 *
 * Header only and independent of slabdefrag (it includes only libc), so that
 * every program that reports RSS reads it the same way: the `slabdefrag` tool,
 * slabdefrag-kvtable (which links nothing from slabdefrag and runs under any
 * preloaded allocator), the examples, the tests and the benchmarks.  It opens
 * the file with fopen, so it allocates through the process's malloc.
 */
#ifndef SLABDEFRAG_TOOLS_PROC_RSS_H
#define SLABDEFRAG_TOOLS_PROC_RSS_H

#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

static inline size_t proc_rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

#endif
