/* free: free(NULL) does nothing; free keeps errno (small, large and aligned
 * blocks); malloc_trim and slab_malloc_trim hand emptied slabs back. */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include <slabdefrag/malloc.h>
#include "testutil.h"

int main(void)
{
    errno = 1234;
    free(NULL);
    CHECK(errno == 1234, "free(NULL) changed errno");
    size_t sizes[] = { 1, 100, 5000, 40000, 1 << 22 };
    for (unsigned i = 0; i < 5; i++) {
        void *p = malloc(sizes[i]);
        void *q = aligned_alloc(4096, sizes[i]);
        CHECK(p && q, "alloc");
        errno = 4321;
        free(p);
        free(q);
        CHECK(errno == 4321, "free of a %zu-byte block changed errno to %d", sizes[i], errno);
    }
    /* Free 8 MiB of 64-byte objects: trimming then hands back slabs. */
    enum { N = 1 << 17 };
    void **v = malloc(N * sizeof *v);
    for (int i = 0; i < N; i++)
        CHECK((v[i] = malloc(64)) != NULL, "malloc");
    for (int i = 0; i < N; i++)
        free(v[i]);
    free(v);
    long released = slab_malloc_trim();
    CHECK(released >= 0, "slab_malloc_trim: %ld", released);
    CHECK(malloc_trim(0) == 0 || malloc_trim(0) == 1, "malloc_trim returns 0 or 1");
    return 0;
}
