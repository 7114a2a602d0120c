/*
 * decay_idle_process: with the default purge delay, memory freed by a program
 * that then makes no allocator call at all goes back to the OS by itself (the
 * purge thread): bytes_mapped, the residency of the slabs (mincore) and the
 * process RSS fall back to within 8 MiB of where they were before.
 *
 * Allocate 64 MiB of 256 B objects (touching them), free them all from the
 * allocating thread, then only look: no slab_alloc/slab_free/shrink/defrag.
 * The thread keeps its heap (active slab, a kept empty slab, its cache of
 * freed objects) and the cache keeps its empty slabs for the delay; the purge
 * thread must find the thread idle, flush its heap, and hand everything back.
 * Polls with a 30 s deadline that only turns a hang into a failure.  The RSS
 * check is skipped under a sanitizer (shadow memory); mincore and bytes_mapped
 * are checked everywhere.
 */
#define _GNU_SOURCE
#include <unistd.h>

#include "slabtest.h"

#define OBJ_SIZE 256
#define TOTAL (64u << 20)
#define NOBJ (TOTAL / OBJ_SIZE)
#define SLACK (8u << 20)
#define DEADLINE_S 30

static void *objs[NOBJ];

int main(void)
{
    unsetenv("SLABDEFRAG_PURGE_MS"); /* read lazily: the default delay */
    struct slab_cache *s = slab_cache_create("decay-idle", OBJ_SIZE, 0, 0, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    CHECK(slab_get_purge_delay() > 0, "default purge delay is 0: no decay to test");
    memset(objs, 0, sizeof objs); /* resident before the baseline */
    size_t rss0 = proc_rss_bytes();

    for (size_t i = 0; i < NOBJ; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "slab_alloc: %s", strerror(errno));
        memset(objs[i], 0x5a, OBJ_SIZE);
    }
    struct slab_cache_stats st = cache_stats(s);
    struct slab_set set; /* its 2 MiB of bases count in the RSS: within the slack */
    slab_set_build(&set, objs, NOBJ, st.slab_size);
    size_t rss_full = proc_rss_bytes();
    CHECK(st.bytes_mapped >= TOTAL, "bytes_mapped %llu after allocating %u bytes",
          (unsigned long long)st.bytes_mapped, TOTAL);
    for (size_t i = 0; i < NOBJ; i++)
        slab_free(s, objs[i]);

    /* From here on: no allocator call that allocates, frees or releases. */
    struct held_memory h;
    int ok = poll_memory_released(s, &set, rss0, SLACK, DEADLINE_S, &h);
    st = h.st;
    size_t resident = h.resident, rss = h.rss;
    if (!ok)
        print_stats("decay_idle_process: still held", &st);
    CHECK(st.bytes_mapped <= SLACK, "bytes_mapped %llu after %d s idle (allowed %u)",
          (unsigned long long)st.bytes_mapped, DEADLINE_S, SLACK);
    CHECK(resident <= SLACK, "%zu bytes of the slabs still resident after %d s idle", resident,
          DEADLINE_S);
    if (rss_ok_here())
        CHECK(rss <= rss0 + SLACK, "RSS %zu KiB after %d s idle, %zu KiB at the start (%zu KiB "
              "with everything allocated)", rss >> 10, DEADLINE_S, rss0 >> 10, rss_full >> 10);
    CHECK(slab_cache_validate(s) == 0, "validate");
    printf("decay_idle_process: ok: RSS %zu -> %zu -> %zu KiB, %zu KiB of %zu slabs resident\n",
           rss0 >> 10, rss_full >> 10, rss >> 10, resident >> 10, set.n);
    slab_set_free(&set);
    slab_cache_destroy(s);
    return 0;
}
