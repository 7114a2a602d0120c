/* calloc: zeroed memory for every size, also when the block reuses a dirty freed
 * one; nmemb * size overflow fails with ENOMEM; large calloc is zero. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"

static void check_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        CHECK(p[i] == 0, "byte %zu of %zu not zero", i, n);
}

int main(void)
{
    for (size_t n = 1; n <= 70000; n = n * 5 / 4 + 1) {
        for (int round = 0; round < 3; round++) {
            unsigned char *d = malloc(n);
            CHECK(d, "malloc");
            memset(d, 0xee, n);
            free(d); /* the next calloc of this class likely reuses it */
            unsigned char *p = calloc(1, n);
            CHECK(p && ((uintptr_t)p & 15) == 0, "calloc(1, %zu)", n);
            check_zero(p, n);
            memset(p, 0x5a, n);
            free(p);
        }
    }
    unsigned char *q = calloc(1000, 1000);
    CHECK(q, "calloc 1 MB");
    check_zero(q, 1000000);
    free(q);
    volatile size_t half = SIZE_MAX / 2, big = (size_t)1 << 33; /* hidden from the compiler */
    errno = 0;
    CHECK(calloc(half, 3) == NULL && errno == ENOMEM, "overflow must be ENOMEM");
    errno = 0;
    CHECK(calloc(big, big / 4) == NULL && errno == ENOMEM, "overflow 2^64");
    void *z = calloc(0, 5);
    CHECK(z, "calloc(0, 5) gives a unique pointer");
    free(z);
    return 0;
}
