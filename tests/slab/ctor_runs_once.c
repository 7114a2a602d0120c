/*
 * ctor_runs_once: a cache's constructor runs exactly once per object when the
 * object's slab is created, before the object is first handed out, and not again
 * while that slab lives; a slab handed back to the OS and created again runs it
 * again for its objects.
 *
 * The ctor records every address it constructs in a set (a second call for an
 * address whose slab was never released is a failure) and stamps a magic word.
 * Phase 1 allocates several slabs' worth: every object must carry the magic, the
 * number of ctor calls must equal objects_total (whole slabs are constructed),
 * and no address may be constructed twice.  Phase 2 frees every other object and
 * allocates as many again, so no slab ever becomes empty: no new ctor call on a
 * known address, ctor calls stay equal to objects_total.  Phase 3 (a
 * SLAB_NO_RESERVE cache) frees everything so the slabs go back to the OS and
 * allocates again: the objects must be constructed again (magic present; the
 * memory came back zeroed) and the ctor count must have grown accordingly.
 */
#define _GNU_SOURCE
#include "slabtest.h"

#define MAGIC 0x5ab1c7012345678ull

struct obj {
    uint64_t magic;
    uint64_t ctor_calls; /* incremented by the ctor: must stay 1 while the slab lives */
    char pad[40];
};

/* A set of addresses (single-threaded: the ctor runs inside slab_alloc). */
#define SET_CAP (1u << 16)
static uintptr_t set_keys[SET_CAP];
static unsigned set_count;
static uint64_t ctor_calls;
static int dup_ctor; /* a known address was constructed again */
static void *dup_addr;

/* The slot holding k, or the empty slot where it would go (linear probing). */
static size_t set_slot(uintptr_t k)
{
    size_t h = (size_t)((k >> 3) * 0x9e3779b97f4a7c15ull) & (SET_CAP - 1);
    while (set_keys[h] && set_keys[h] != k)
        h = (h + 1) & (SET_CAP - 1);
    return h;
}

static int set_contains(uintptr_t k)
{
    return set_keys[set_slot(k)] == k;
}

/* 1 if k was added, 0 if it was already there. */
static int set_insert(uintptr_t k)
{
    size_t h = set_slot(k);
    if (set_keys[h] == k)
        return 0;
    CHECK(set_count < SET_CAP / 2, "address set full");
    set_keys[h] = k;
    set_count++;
    return 1;
}

static void set_clear(void)
{
    memset(set_keys, 0, sizeof set_keys);
    set_count = 0;
}

static void ctor(void *p)
{
    struct obj *o = p;
    ctor_calls++;
    if (!set_insert((uintptr_t)p) && !dup_ctor) {
        dup_ctor = 1;
        dup_addr = p;
    }
    o->magic = MAGIC;
    o->ctor_calls = 1;
    memset(o->pad, 0xc7, sizeof o->pad);
}

static void check_constructed(const struct obj *o, const char *when)
{
    CHECK(o->magic == MAGIC, "%s: object %p handed out without its constructor (magic %#llx)",
          when, (const void *)o, (unsigned long long)o->magic);
    CHECK(set_contains((uintptr_t)o), "%s: object %p was never passed to the ctor", when,
          (const void *)o);
}

/* Allocate objs[i] for i = 0, step, 2*step ... < n: each must come constructed
 * and constructed once; then write user state into it, which must not matter
 * to the allocator. */
static void alloc_constructed(struct slab_cache *s, struct obj **objs, size_t n, size_t step,
                              const char *when)
{
    for (size_t i = 0; i < n; i += step) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "%s: slab_alloc: %s", when, strerror(errno));
        check_constructed(objs[i], when);
        CHECK(objs[i]->ctor_calls == 1, "%s: object %p constructed %llu times", when,
              (void *)objs[i], (unsigned long long)objs[i]->ctor_calls);
        objs[i]->pad[0] = 1;
    }
}

int main(void)
{
    struct slab_cache *s = slab_cache_create("ctor-once", sizeof(struct obj), 0, 0, ctor);
    CHECK(s != NULL, "create: %s", strerror(errno));
    CHECK(ctor_calls == 0, "ctor ran %llu times before any allocation",
          (unsigned long long)ctor_calls);
    struct slab_cache_stats st = cache_stats(s);
    unsigned per = st.objects_per_slab;
    CHECK(per >= 8, "objects_per_slab %u < 8", per);

    /* Phase 1: several slabs' worth, plus a partial slab. */
    size_t n = 6 * (size_t)per + per / 2;
    struct obj **objs = calloc(n, sizeof *objs);
    CHECK(objs != NULL, "calloc");
    alloc_constructed(s, objs, n, 1, "phase 1");
    CHECK(!dup_ctor, "phase 1: ctor ran twice on %p", dup_addr);
    slab_cache_shrink(s); /* make the counters exact (this thread is the only user) */
    st = cache_stats(s);
    CHECK(ctor_calls == st.objects_total,
          "phase 1: %llu ctor calls but objects_total %llu (ctor must run for every object "
          "of a slab when the slab is created)",
          (unsigned long long)ctor_calls, (unsigned long long)st.objects_total);
    CHECK(ctor_calls >= n, "phase 1: %llu ctor calls for %zu objects",
          (unsigned long long)ctor_calls, n);

    /* Phase 2: free every other object; no slab becomes empty; allocate again. */
    uint64_t calls_before = ctor_calls;
    uint64_t total_before = st.objects_total;
    for (size_t i = 0; i < n; i += 2) {
        slab_free(s, objs[i]);
        objs[i] = NULL;
    }
    alloc_constructed(s, objs, n, 2, "phase 2");
    CHECK(!dup_ctor, "phase 2: ctor ran again on %p although its slab was never released",
          dup_addr);
    slab_cache_shrink(s);
    st = cache_stats(s);
    CHECK(ctor_calls == st.objects_total,
          "phase 2: %llu ctor calls but objects_total %llu", (unsigned long long)ctor_calls,
          (unsigned long long)st.objects_total);
    CHECK(ctor_calls - calls_before == st.objects_total - total_before,
          "phase 2: %llu new ctor calls for %llu new object slots",
          (unsigned long long)(ctor_calls - calls_before),
          (unsigned long long)(st.objects_total - total_before));
    for (size_t i = 0; i < n; i++)
        slab_free(s, objs[i]);
    slab_cache_shrink(s);
    st = cache_stats(s);
    CHECK(st.slabs == 0 && st.objects_total == 0, "after freeing all and shrink: %llu slabs",
          (unsigned long long)st.slabs);
    slab_cache_destroy(s);

    /* Phase 3: slabs handed back to the OS are constructed again when re-created. */
    set_clear();
    ctor_calls = 0;
    dup_ctor = 0;
    s = slab_cache_create("ctor-once-nr", sizeof(struct obj), 0, SLAB_NO_RESERVE, ctor);
    CHECK(s != NULL, "create: %s", strerror(errno));
    alloc_constructed(s, objs, n, 1, "phase 3a");
    slab_cache_shrink(s);
    st = cache_stats(s);
    uint64_t first_calls = ctor_calls;
    CHECK(first_calls == st.objects_total, "phase 3a: %llu ctor calls, objects_total %llu",
          (unsigned long long)first_calls, (unsigned long long)st.objects_total);
    for (size_t i = 0; i < n; i++)
        slab_free(s, objs[i]);
    slab_cache_shrink(s);
    st = cache_stats(s);
    CHECK(st.slabs == 0 && st.bytes_mapped == 0,
          "phase 3: SLAB_NO_RESERVE cache keeps %llu slabs (%llu bytes) after freeing all",
          (unsigned long long)st.slabs, (unsigned long long)st.bytes_mapped);
    set_clear(); /* every slab was released: constructing again is now expected */
    dup_ctor = 0;
    alloc_constructed(s, objs, n, 1, "phase 3b (slabs re-created)");
    CHECK(!dup_ctor, "phase 3b: ctor ran twice on %p", dup_addr);
    slab_cache_shrink(s);
    st = cache_stats(s);
    CHECK(ctor_calls - first_calls == st.objects_total,
          "phase 3b: %llu ctor calls for re-created slabs holding %llu objects",
          (unsigned long long)(ctor_calls - first_calls),
          (unsigned long long)st.objects_total);
    for (size_t i = 0; i < n; i++)
        slab_free(s, objs[i]);
    CHECK(slab_cache_validate(s) == 0, "validate failed");
    slab_cache_destroy(s);
    free(objs);
    printf("ctor_runs_once: ok\n");
    return 0;
}
