/*
 * fill_over_100_einval: slab_cache_defrag with a fill percentage over 100 is a
 * caller error: -EINVAL with errno EINVAL, and no pass runs (the cache's pass
 * counter does not move).  0 and 100 are accepted.
 */
#include <errno.h>

#include "testutil.h"

int main(void)
{
    struct slab_cache *s = slab_cache_create("fill_over_100", 64, 0, 0, NULL);
    CHECK(s != NULL, "create");
    void *objs[200];
    for (int i = 0; i < 200; i++)
        CHECK((objs[i] = slab_alloc(s)) != NULL, "alloc %d", i);
    for (int i = 0; i < 200; i += 2)
        slab_free(s, objs[i]);
    uint64_t passes = cache_stats(s).defrag_passes;
    unsigned bad[] = { 101, 1000, 0xffffffffu };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        long rc = slab_cache_defrag(s, bad[i]);
        CHECK(rc == -EINVAL && errno == EINVAL, "defrag(%u) = %ld errno %d", bad[i], rc, errno);
    }
    CHECK(cache_stats(s).defrag_passes == passes, "a pass ran for a bad fill");
    CHECK(slab_cache_defrag(s, 100) >= 0, "defrag(100)");
    CHECK(slab_cache_defrag(s, 0) >= 0, "defrag(0)");
    for (int i = 1; i < 200; i += 2)
        slab_free(s, objs[i]);
    slab_cache_destroy(s);
    return 0;
}
