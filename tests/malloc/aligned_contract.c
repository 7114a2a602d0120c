/* posix_memalign, aligned_alloc, memalign, valloc, pvalloc: alignment from 16 B
 * to 1 MiB, usable size, EINVAL for bad alignments, ENOMEM for impossible sizes. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

int main(void)
{
    for (size_t align = 8; align <= ((size_t)1 << 20); align *= 2) {
        for (size_t n = 0; n < 70000; n = n * 3 + 1) {
            void *p = NULL;
            CHECK(posix_memalign(&p, align, n) == 0, "posix_memalign(%zu, %zu)", align, n);
            CHECK(((uintptr_t)p & (align - 1)) == 0 && ((uintptr_t)p & 15) == 0,
                  "posix_memalign(%zu, %zu) = %p", align, n, p);
            CHECK(malloc_usable_size(p) >= n, "usable");
            memset(p, 0x11, n);
            free(p);
            void *q = aligned_alloc(align, n);
            CHECK(q && ((uintptr_t)q & (align - 1)) == 0, "aligned_alloc(%zu, %zu)", align, n);
            free(q);
            void *r = memalign(align, n);
            CHECK(r && ((uintptr_t)r & (align - 1)) == 0, "memalign(%zu, %zu)", align, n);
            free(r);
        }
    }
    void *p = (void *)1;
    CHECK(posix_memalign(&p, 24, 10) == EINVAL && p == (void *)1, "non-power-of-two: EINVAL, untouched");
    CHECK(posix_memalign(&p, 4, 10) == EINVAL, "below sizeof(void *): EINVAL");
    CHECK(posix_memalign(&p, 64, SIZE_MAX - 10) == ENOMEM, "huge: ENOMEM");
    errno = 0;
    CHECK(aligned_alloc(48, 10) == NULL && errno == EINVAL, "aligned_alloc non-power-of-two");
    void *m = memalign(48, 10); /* glibc rounds up to 64 */
    CHECK(m && ((uintptr_t)m & 63) == 0, "memalign(48) rounds the alignment up");
    free(m);
    long page = sysconf(_SC_PAGESIZE);
    void *v = valloc(100);
    CHECK(v && ((uintptr_t)v % (uintptr_t)page) == 0, "valloc page-aligned");
    free(v);
    void *pv = pvalloc(100);
    CHECK(pv && ((uintptr_t)pv % (uintptr_t)page) == 0 && malloc_usable_size(pv) >= (size_t)page,
          "pvalloc rounds the size up to a page");
    free(pv);
    errno = 0;
    CHECK(pvalloc(SIZE_MAX - 10) == NULL && errno == ENOMEM, "pvalloc overflow");
    return 0;
}
