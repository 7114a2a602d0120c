/*
 * freeptr_offset: slab_cache_set_freeptr_offset places the allocator's free
 * pointer inside the object, so a constructed cache with defrag callbacks
 * spends no extra word per object, free objects keep every other byte, and
 * passes still empty slabs.
 *
 * Checks:
 *   - bad input: NULL cache, an offset not a multiple of 8, an offset whose
 *     word does not fit in the object: -EINVAL with errno EINVAL; after the
 *     first allocation: -EBUSY with errno EBUSY;
 *   - layout: a 56-byte object with a constructor and a move callback set after
 *     the offset occupies 56 bytes (objects_per_slab is that of 56-byte slots);
 *   - type stability: every byte of a freed object except the 8 at the offset
 *     still holds what the constructor wrote, when read through the pointer
 *     the next allocation returns (LIFO reuse of the same slot);
 *   - a pass with a YES callback over sparse slabs moves every object, frees
 *     slabs, keeps each object intact, and the cache validates.
 */
#include "defragtest.h"

#define SIZE 56
#define FP_AT 16
#define N (64 * 100)

static void ctor(void *obj)
{
    memset(obj, 0xc5, SIZE);
}

static void *table[N];

static enum slab_move_result move(void *old_obj, void *new_obj, size_t size, void *arg)
{
    (void)arg;
    uint64_t i;
    memcpy(&i, old_obj, sizeof i);
    if (i >= N || table[i] != old_obj)
        return SLAB_MOVE_DONT_KNOW;
    memcpy(new_obj, old_obj, size);
    table[i] = new_obj;
    return SLAB_MOVE_YES;
}

int main(void)
{
    dt_watchdog(60);
    CHECK(slab_cache_set_freeptr_offset(NULL, 0) == -EINVAL && errno == EINVAL, "NULL cache");
    struct slab_cache *s = slab_cache_create("freeptr", SIZE, 0, 0, ctor);
    CHECK(s, "create: %s", strerror(errno));
    CHECK(slab_cache_set_freeptr_offset(s, 4) == -EINVAL && errno == EINVAL, "misaligned offset");
    CHECK(slab_cache_set_freeptr_offset(s, SIZE - 4) == -EINVAL && errno == EINVAL,
          "offset past the object");
    CHECK(slab_cache_set_freeptr_offset(s, FP_AT) == 0, "set: %s", strerror(errno));
    CHECK(slab_cache_set_move(s, move, NULL) == 0, "set_move after the offset: %s",
          strerror(errno));
    struct slab_cache_stats st = cache_stats(s);
    unsigned slots56 = (unsigned)((st.slab_size - 128) / SIZE);
    CHECK(st.objects_per_slab >= slots56, "%u objects per %zu-byte slab: not %d-byte slots",
          st.objects_per_slab, st.slab_size, SIZE);

    unsigned char *a = slab_alloc(s);
    CHECK(a, "alloc");
    CHECK(slab_cache_set_freeptr_offset(s, 0) == -EBUSY && errno == EBUSY, "set after alloc");
    slab_free(s, a);
    unsigned char *b = slab_alloc(s);
    CHECK(b == a, "the freed slot was not reused (LIFO)");
    for (size_t k = 0; k < SIZE; k++)
        if (k < FP_AT || k >= FP_AT + 8)
            CHECK(b[k] == 0xc5, "byte %zu of a freed object lost its constructed value", k);
    slab_free(s, b);

    for (uint64_t i = 0; i < N; i++) {
        table[i] = slab_alloc(s);
        CHECK(table[i], "alloc");
        memcpy(table[i], &i, sizeof i);
    }
    for (uint64_t i = 0; i < N; i++)
        if (i % 16) {
            slab_free(s, table[i]);
            table[i] = NULL;
        }
    struct slab_cache_stats before = cache_stats(s);
    long rel = slab_cache_defrag(s, 100);
    struct slab_cache_stats after = cache_stats(s);
    CHECK(rel > 0 && after.slabs < before.slabs, "defrag released %ld, slabs %llu -> %llu", rel,
          (unsigned long long)before.slabs, (unsigned long long)after.slabs);
    CHECK(after.defrag_objects_moved > 0, "nothing moved");
    for (uint64_t i = 0; i < N; i += 16) {
        uint64_t got;
        memcpy(&got, table[i], sizeof got);
        CHECK(got == i, "object %llu holds %llu", (unsigned long long)i, (unsigned long long)got);
    }
    CHECK(after.objects_active == N / 16, "objects_active %llu",
          (unsigned long long)after.objects_active);
    CHECK(slab_cache_validate(s) == 0, "validate");
    for (uint64_t i = 0; i < N; i += 16)
        slab_free(s, table[i]);
    slab_cache_destroy(s);
    return 0;
}
