/*
 * invalid_free_foreign: slab_free() of a pointer that lies outside every slab
 * aborts with "slabdefrag: cache '<name>': slab_free(<ptr>): ... not a slab
 * object" on stderr instead of corrupting the cache or crashing silently.
 *
 * Each bad free runs in a forked child that must die from a signal with exactly
 * that message (pointer printed with %p): a malloc'ed pointer, a stack address, a
 * static variable, a small integer cast to a pointer, a zero-filled and a
 * 0xff-filled anonymous mapping aligned like a slab, an address that is not
 * mapped at all, and an object whose slab was
 * already handed back to the OS (for that one only the prefix naming the cache
 * and pointer is required, since "double free" is an equally right diagnosis).
 * slab_free(s, NULL) must do nothing.  The parent's cache stays valid.
 */
#define _GNU_SOURCE
#include "slabtest.h"

static struct slab_cache *cache;
static char static_buf[256] __attribute__((aligned(64)));

static void do_free(void *p)
{
    slab_free(cache, p);
}

static void expect_bad_free(void *p, const char *what, const char *label)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix, "slabdefrag: cache '%s': slab_free(%p): ",
             slab_cache_name(cache), p);
    const char *needles[] = {prefix, what, NULL};
    if (!what)
        needles[1] = NULL;
    CHECK(expect_abort(do_free, p, needles) == 0, "bad free of %s (%p) not diagnosed", label, p);
}

static void *aligned_map(size_t align, int fill)
{
    size_t len = 2 * align;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "mmap: %s", strerror(errno));
    char *a = (char *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
    memset(a, fill, align);
    return a;
}

int main(void)
{
    cache = slab_cache_create("foreign", 64, 0, 0, NULL);
    CHECK(cache != NULL, "create: %s", strerror(errno));
    /* Some live objects so the cache has slabs around. */
    void *live[100];
    for (int i = 0; i < 100; i++) {
        live[i] = slab_alloc(cache);
        CHECK(live[i] != NULL, "slab_alloc: %s", strerror(errno));
    }
    slab_free(cache, NULL); /* a no-op */

    void *m = malloc(64);
    CHECK(m != NULL, "malloc");
    expect_bad_free(m, "not a slab object", "a malloc'ed pointer");
    free(m);

    char stack_buf[128] __attribute__((aligned(64)));
    memset(stack_buf, 0, sizeof stack_buf);
    expect_bad_free(stack_buf, "not a slab object", "a stack address");
    expect_bad_free(static_buf, "not a slab object", "a static variable");
    expect_bad_free((void *)(uintptr_t)0x1000, "not a slab object", "a small integer");

    struct slab_cache_stats st = cache_stats(cache);
    size_t big = st.slab_size > 65536 ? st.slab_size : 65536;
    void *zeros = aligned_map(big, 0);
    expect_bad_free(zeros, "not a slab object", "the start of a zero-filled aligned mapping");
    expect_bad_free((char *)zeros + 4096, "not a slab object",
                    "inside a zero-filled aligned mapping");
    void *ones = aligned_map(big, 0xff);
    expect_bad_free(ones, "not a slab object", "the start of a 0xff-filled aligned mapping");
    expect_bad_free((char *)ones + 64, "not a slab object", "inside a 0xff-filled mapping");

    void *gone = aligned_map(big, 0);
    CHECK(munmap(gone, big) == 0, "munmap");
    expect_bad_free(gone, "not a slab object", "an unmapped aligned address");
    expect_bad_free((char *)gone + 192, "not a slab object", "an unmapped address");

    /* An object whose slab went back to the OS. */
    struct slab_cache *nr = slab_cache_create("foreign-nr", 64, 0, SLAB_NO_RESERVE, NULL);
    CHECK(nr != NULL, "create: %s", strerror(errno));
    void *o = slab_alloc(nr);
    CHECK(o != NULL, "slab_alloc");
    slab_free(nr, o);
    slab_cache_shrink(nr);
    st = cache_stats(nr);
    CHECK(st.slabs == 0, "SLAB_NO_RESERVE cache keeps %llu slabs",
          (unsigned long long)st.slabs);
    {
        struct slab_cache *saved = cache;
        cache = nr;
        expect_bad_free(o, NULL, "an object of a slab already handed back to the OS");
        cache = saved;
    }
    slab_cache_destroy(nr);

    CHECK(slab_cache_validate(cache) == 0, "validate failed");
    for (int i = 0; i < 100; i++)
        slab_free(cache, live[i]);
    slab_cache_destroy(cache);
    printf("invalid_free_foreign: ok\n");
    return 0;
}
