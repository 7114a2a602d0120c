/* realloc: growth and shrink keep the bytes across classes and large blocks; the
 * same class stays in place; realloc(NULL, n) allocates; realloc(p, 0) frees and
 * returns NULL (glibc); a failed realloc leaves the block intact with ENOMEM;
 * reallocarray checks its multiplication. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"

static void fill(unsigned char *p, size_t n, unsigned salt)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + salt);
}
static void check(const unsigned char *p, size_t n, unsigned salt)
{
    for (size_t i = 0; i < n; i++)
        CHECK(p[i] == (unsigned char)(i * 31 + salt), "byte %zu of %zu changed", i, n);
}

int main(void)
{
    size_t sizes[] = { 1, 15, 16, 17, 100, 128, 129, 1000, 4096, 32768, 32769, 100000, 5 << 20, 300, 8 };
    unsigned char *p = realloc(NULL, 10);
    CHECK(p, "realloc(NULL, 10)");
    size_t have = 10;
    fill(p, have, 7);
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *q = realloc(p, n);
        CHECK(q && ((uintptr_t)q & 15) == 0, "realloc to %zu", n);
        check(q, have < n ? have : n, 7);
        CHECK(malloc_usable_size(q) >= n, "usable");
        fill(q, n, 7);
        p = q;
        have = n;
    }
    /* In place within a class. */
    unsigned char *a = malloc(200);
    size_t cls = malloc_usable_size(a);
    unsigned char *same = realloc(a, cls);
    CHECK(same == a, "same class must stay in place");
    a = realloc(same, cls - 10);
    CHECK(a == same, "a smaller size of the same class stays in place");
    /* Failure keeps the block. */
    volatile size_t huge = SIZE_MAX - 100, quarter = SIZE_MAX / 4;
    errno = 0;
    unsigned char *fail = realloc(a, huge);
    CHECK(fail == NULL && errno == ENOMEM, "huge realloc fails");
    memset(a, 1, cls);
    errno = 0;
    fail = reallocarray(a, quarter, 8);
    CHECK(fail == NULL && errno == ENOMEM, "reallocarray overflow");
    unsigned char *b = reallocarray(a, 100, 20);
    CHECK(b && b[0] == 1 && b[cls - 1] == 1, "reallocarray grows and keeps bytes");
    CHECK(realloc(b, 0) == NULL, "realloc(p, 0) frees and returns NULL");
    CHECK(realloc(p, 0) == NULL, "realloc(large p, 0)");
    return 0;
}
