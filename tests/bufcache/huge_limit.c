/*
 * huge_limit: bcache_create answers at once for any memory limit.  Just above
 * 8 TiB (2^43 + 4096) the page index's 32-bit bucket count used to double until
 * it wrapped to 0, so create never returned; now every limit gives a cache or
 * NULL with EINVAL/ENOMEM.  A watchdog (alarm) turns a hang into a failure.
 * Limits above 8 TiB are refused with EINVAL; a limit that is not a power of two
 * below it still works.
 */
#include "bctest.h"

static void try_limit(size_t limit, int want_errno)
{
    struct bcache_config cfg = { .memory_limit = limit };
    errno = 0;
    struct bcache *bc = bcache_create(&cfg);
    if (want_errno) {
        CHECK(!bc && errno == want_errno, "limit %zu: %p errno %d, want errno %d", limit,
              (void *)bc, errno, want_errno);
        return;
    }
    CHECK(bc || errno == ENOMEM, "limit %zu: errno %d", limit, errno);
    if (bc) {
        struct bcache_stats st = stats(bc);
        CHECK(st.memory_limit == limit, "limit %zu reported as %llu", limit,
              (unsigned long long)st.memory_limit);
        CHECK(bcache_destroy(bc) == 0, "destroy");
    }
}

int main(void)
{
    alarm(60); /* SIGALRM ends a hung create: the test fails */
    const size_t tib8 = (size_t)1 << 43;
    try_limit(tib8 + 4096, EINVAL);
    try_limit(tib8 + (tib8 >> 1), EINVAL);
    try_limit(tib8 << 1, EINVAL);
    try_limit(SIZE_MAX, EINVAL);
    try_limit(SIZE_MAX - 4095, EINVAL);
    try_limit(((size_t)1 << 31) + 4096, 0); /* 2^19 + 1 pages: 2^20 buckets */
    try_limit(BCACHE_MIN_MEMORY_LIMIT + 1, 0);
    return 0;
}
