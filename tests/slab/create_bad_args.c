/*
 * create_bad_args: slab_cache_create() rejects an object size of 0 or above
 * SLAB_MAX_OBJECT_SIZE (32 KiB) and an alignment that is not a power of two or
 * exceeds 4096, returning NULL with errno EINVAL; the limits themselves (size 1
 * and 32 KiB, align 1 and 4096) are accepted and work.
 */
#define _GNU_SOURCE
#include "slabtest.h"

static void expect_einval(size_t size, size_t align, unsigned flags)
{
    errno = 0;
    struct slab_cache *s = slab_cache_create("bad", size, align, flags, NULL);
    int err = errno;
    CHECK(s == NULL, "create(size %zu, align %zu, flags %#x) succeeded", size, align, flags);
    CHECK(err == EINVAL, "create(size %zu, align %zu, flags %#x): errno %d (%s), want EINVAL",
          size, align, flags, err, strerror(err));
    CHECK(slab_cache_find("bad") == NULL, "a rejected cache is listed");
}

static void expect_ok(size_t size, size_t align, unsigned flags)
{
    struct slab_cache *s = slab_cache_create("good", size, align, flags, NULL);
    CHECK(s != NULL, "create(size %zu, align %zu, flags %#x): %s", size, align, flags,
          strerror(errno));
    void *objs[20];
    for (int i = 0; i < 20; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "slab_alloc: %s", strerror(errno));
        CHECK(align < 2 || ((uintptr_t)objs[i] & (align - 1)) == 0, "misaligned object");
        memset(objs[i], 0xee, size);
    }
    for (int i = 0; i < 20; i++)
        slab_free(s, objs[i]);
    CHECK(slab_cache_validate(s) == 0, "validate");
    slab_cache_destroy(s);
}

int main(void)
{
    expect_einval(0, 0, 0);
    expect_einval(0, 8, 0);
    expect_einval(SLAB_MAX_OBJECT_SIZE + 1, 0, 0);
    expect_einval(64 * 1024, 0, 0);
    expect_einval(1u << 20, 0, 0);
    expect_einval(SIZE_MAX, 0, 0);
    expect_einval(SIZE_MAX / 2 + 1, 0, 0);
    static const size_t bad_aligns[] = {3, 5, 6, 7, 12, 24, 48, 96, 100, 1000, 4097, 6144, 8192,
                                        65536, (size_t)1 << 40, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad_aligns / sizeof bad_aligns[0]; i++) {
        expect_einval(64, bad_aligns[i], 0);
        expect_einval(64, bad_aligns[i], SLAB_HWCACHE_ALIGN);
    }
    expect_einval(0, 3, 0);

    expect_ok(1, 0, 0);
    expect_ok(1, 1, 0);
    expect_ok(SLAB_MAX_OBJECT_SIZE, 0, 0);
    expect_ok(SLAB_MAX_OBJECT_SIZE, 4096, 0);
    expect_ok(SLAB_MAX_OBJECT_SIZE, 0, SLAB_HWCACHE_ALIGN);
    expect_ok(1, 4096, 0);
    expect_ok(100, 4096, SLAB_HWCACHE_ALIGN);
    expect_ok(8, 2, 0);
    printf("create_bad_args: ok\n");
    return 0;
}
