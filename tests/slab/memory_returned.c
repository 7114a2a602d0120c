/*
 * memory_returned: freeing objects hands their slabs' memory back to the OS at
 * once: bytes_mapped falls, the slab pages stop being resident and the process
 * RSS drops, with no background thread; slab_cache_shrink() then releases the
 * reserve so bytes_mapped reaches 0.
 *
 * Allocate 64 MiB of 1 KiB objects and touch every byte, then free them all
 * (round 1: from the allocating thread; round 2: from another thread) and check
 * (a) right after the frees, before any shrink: at most the reserve (2 slabs)
 * plus one active slab stay mapped, and mincore() finds at most that much of the
 * slabs resident; the process RSS fell by at least 3/4 of what the allocation
 * added; (b) after slab_cache_shrink(): bytes_mapped == 0, slabs == 0 and no slab
 * page is resident.  mincore() looks only at the slabs, so the check means the
 * same under ASan/TSan; the RSS check is kept there too when it was verified to
 * hold (see below).
 */
#define _GNU_SOURCE
#include <pthread.h>

#include <unistd.h>

#include "slabtest.h"

#define OBJ_SIZE 1024
#define TOTAL (64u << 20)
#define NOBJ (TOTAL / OBJ_SIZE)

static void *objs[NOBJ];
static uintptr_t bases[NOBJ];
static size_t nbases;

static int cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static size_t slabs_resident(size_t slab_size)
{
    size_t r = 0;
    for (size_t i = 0; i < nbases; i++)
        r += resident_bytes((void *)bases[i], slab_size);
    return r;
}

struct free_job {
    struct slab_cache *s;
};

static void *free_all_thread(void *arg)
{
    struct free_job *j = arg;
    for (size_t i = 0; i < NOBJ; i++)
        slab_free(j->s, objs[i]);
    return NULL;
}

static void round_trip(struct slab_cache *s, int cross_thread)
{
    const char *how = cross_thread ? "round 2 (freed by another thread)"
                                   : "round 1 (freed by the allocating thread)";
    struct slab_cache_stats st = cache_stats(s);
    size_t slab_size = st.slab_size;
    size_t rss0 = proc_rss_bytes();
    for (size_t i = 0; i < NOBJ; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "slab_alloc #%zu: %s", i, strerror(errno));
        memset(objs[i], 0x5a, OBJ_SIZE);
    }
    size_t rss1 = proc_rss_bytes();
    for (size_t i = 0; i < NOBJ; i++)
        bases[i] = slab_base(objs[i], slab_size);
    qsort(bases, NOBJ, sizeof bases[0], cmp_uptr);
    nbases = 0;
    for (size_t i = 0; i < NOBJ; i++)
        if (nbases == 0 || bases[nbases - 1] != bases[i])
            bases[nbases++] = bases[i];

    st = cache_stats(s);
    CHECK(st.bytes_mapped >= TOTAL, "%s: bytes_mapped %llu < the %u bytes allocated", how,
          (unsigned long long)st.bytes_mapped, TOTAL);
    CHECK(st.bytes_mapped <= (uint64_t)TOTAL + TOTAL / 8 + 2 * slab_size,
          "%s: bytes_mapped %llu for %u bytes of objects", how,
          (unsigned long long)st.bytes_mapped, TOTAL);
    size_t res_alloc = slabs_resident(slab_size);
    CHECK(res_alloc >= TOTAL, "%s: only %zu bytes of the slabs resident after touching %u bytes",
          how, res_alloc, TOTAL);
    CHECK(rss1 >= rss0 + TOTAL - TOTAL / 16,
          "%s: RSS grew by %zd bytes only for %u bytes touched (RSS not measurable?)", how,
          (ssize_t)(rss1 - rss0), TOTAL);

    if (cross_thread) {
        struct free_job job = {s};
        pthread_t t;
        CHECK(pthread_create(&t, NULL, free_all_thread, &job) == 0, "pthread_create");
        CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    } else {
        for (size_t i = 0; i < NOBJ; i++)
            slab_free(s, objs[i]);
    }

    /* (a) at once, no shrink, when this thread freed them.  Freed by another
     * thread, the slabs still belong to this (idle) thread's heap: the purge
     * thread flushes an idle heap after about a second, so wait for it (the
     * deadline only turns a broken purge into a failure instead of a hang). */
    size_t keep = 3 * slab_size; /* the reserve of 2 + this thread's active slab */
    for (int i = 0; cross_thread && i < 300; i++) {
        st = cache_stats(s);
        if (st.bytes_mapped <= keep)
            break;
        usleep(100 * 1000);
    }
    size_t rss2 = proc_rss_bytes();
    st = cache_stats(s);
    size_t res_freed = slabs_resident(slab_size);
    if (st.bytes_mapped > keep || res_freed > keep)
        print_stats(how, &st);
    CHECK(st.bytes_mapped <= keep,
          "%s: %llu bytes still mapped right after freeing everything (allowed: %zu)", how,
          (unsigned long long)st.bytes_mapped, keep);
    CHECK(res_freed <= keep,
          "%s: %zu bytes of the freed slabs still resident (allowed: %zu): not handed back "
          "to the OS at once",
          how, res_freed, keep);
    /* Process RSS also counts the sanitizers' shadow of our slab memory, which
     * TSan keeps after MADV_DONTNEED (segments are never unmapped, os.c); the
     * mincore() check above is the sanitizer-proof one. */
    if (!under_sanitizer())
        CHECK(rss2 + (rss1 - rss0) * 3 / 4 <= rss1,
              "%s: RSS %zu -> %zu -> %zu: freeing %u bytes gave back only %zd", how, rss0,
              rss1, rss2, TOTAL, (ssize_t)(rss1 - rss2));

    /* (b) after shrink. */
    long released = slab_cache_shrink(s);
    CHECK(released >= 0, "shrink: %ld", released);
    CHECK((uint64_t)released == st.bytes_mapped,
          "%s: shrink released %ld bytes, %llu were mapped", how, released,
          (unsigned long long)st.bytes_mapped);
    st = cache_stats(s);
    CHECK(st.bytes_mapped == 0 && st.slabs == 0 && st.objects_active == 0,
          "%s: after shrink bytes_mapped %llu slabs %llu active %llu", how,
          (unsigned long long)st.bytes_mapped, (unsigned long long)st.slabs,
          (unsigned long long)st.objects_active);
    CHECK(slabs_resident(slab_size) == 0, "%s: %zu bytes of slabs resident after shrink", how,
          slabs_resident(slab_size));
    printf("%s: RSS %zu KiB -> %zu KiB after alloc -> %zu KiB after free; slabs resident "
           "%zu KiB -> %zu KiB\n",
           how, rss0 >> 10, rss1 >> 10, rss2 >> 10, res_alloc >> 10, res_freed >> 10);
}

int main(void)
{
    /* This test checks the reserve rule of immediate return: decay off. */
    slab_set_purge_delay(0);
    struct slab_cache *s = slab_cache_create("mem-returned", OBJ_SIZE, 0, 0, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    round_trip(s, 0);
    round_trip(s, 1);
    CHECK(slab_cache_validate(s) == 0, "validate failed");
    slab_cache_destroy(s);
    printf("memory_returned: ok\n");
    return 0;
}
