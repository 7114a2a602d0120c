/* malloc: every size up to 40 KiB (and some far beyond) gives a 16-byte aligned,
 * writable block of at least the size asked; malloc(0) is a unique pointer;
 * impossible sizes fail with ENOMEM; each size class lands in "malloc-<size>". */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>

#include <slabdefrag/malloc.h>
#include "testutil.h"

int main(void)
{
    for (size_t n = 0; n <= 40000; n += (n < 1200 ? 1 : 97)) {
        unsigned char *p = malloc(n);
        CHECK(p, "malloc(%zu) failed", n);
        CHECK(((uintptr_t)p & 15) == 0, "malloc(%zu) = %p not 16-aligned", n, (void *)p);
        size_t u = malloc_usable_size(p);
        CHECK(u >= n, "usable %zu < %zu", u, n);
        if (n > 128 && n <= SLAB_MALLOC_MAX_CLASS)
            CHECK((u - n) * 9 <= u, "size %zu: class %zu wastes more than 1/9", n, u);
        if (n > 0 && n <= 128)
            CHECK(u - n < 16, "size %zu: class %zu", n, u);
        memset(p, 0xab, u);
        if (n > 0 && n <= SLAB_MALLOC_MAX_CLASS) {
            struct slab_cache *c = slab_cache_of(p);
            CHECK(c, "size %zu: not in a slab", n);
            char want[32];
            snprintf(want, sizeof want, "malloc-%zu", u);
            CHECK(strcmp(slab_cache_name(c), want) == 0, "size %zu in cache %s", n, slab_cache_name(c));
        }
        free(p);
    }
    void *a = malloc(0), *b = malloc(0);
    CHECK(a && b && a != b, "malloc(0) must give unique pointers");
    free(a);
    free(b);
    size_t huge[] = { SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1, (size_t)1 << 62 };
    for (unsigned i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        errno = 0;
        CHECK(malloc(huge[i]) == NULL && errno == ENOMEM, "malloc(%zu) must fail with ENOMEM", huge[i]);
    }
    unsigned char *big = malloc(10 << 20);
    CHECK(big && ((uintptr_t)big & 4095) == 0, "large allocation page-aligned");
    CHECK(slab_cache_of(big) == NULL, "large allocation outside the slabs");
    memset(big, 1, 10 << 20);
    free(big);
    return 0;
}
