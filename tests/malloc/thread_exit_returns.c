/* Memory of exited threads comes back: 4 threads each malloc 5 MB in small
 * blocks, free half and exit; the main thread frees the rest (frees into slabs
 * whose owner is gone).  After slab_malloc_trim() the front end's caches hold
 * less than 2 MiB of slabs, against ~20 MB at the peak. */
#include <pthread.h>
#include <string.h>

#include <slabdefrag/malloc.h>
#include "testutil.h"

#define THREADS 4
#define PER_THREAD 50000

static void *blocks[THREADS][PER_THREAD];

static void *worker(void *arg)
{
    void **mine = blocks[(uintptr_t)arg];
    for (int i = 0; i < PER_THREAD; i++) {
        mine[i] = malloc(16 + (size_t)(i % 12) * 16);
        CHECK(mine[i], "malloc");
        memset(mine[i], 0x3c, 16);
    }
    for (int i = 0; i < PER_THREAD; i += 2) {
        free(mine[i]);
        mine[i] = NULL;
    }
    return NULL;
}

static void add_mapped(struct slab_cache *s, void *arg)
{
    struct slab_cache_stats st;
    if (strncmp(slab_cache_name(s), "malloc-", 7) == 0 && slab_cache_get_stats(s, &st) == 0)
        *(uint64_t *)arg += st.bytes_mapped;
}

static uint64_t mapped(void)
{
    uint64_t total = 0;
    slab_cache_foreach(add_mapped, &total);
    return total;
}

int main(void)
{
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0, "pthread_create");
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    uint64_t peak = mapped();
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < PER_THREAD; j++)
            free(blocks[i][j]);
    slab_malloc_trim();
    uint64_t after = mapped();
    fprintf(stderr, "malloc-* slabs: %.1f MiB with half the blocks, %.2f MiB after\n",
            peak / 1048576.0, after / 1048576.0);
    CHECK(peak > 8u << 20, "the threads should have mapped memory (%llu)", (unsigned long long)peak);
    CHECK(after < 2u << 20, "exited threads' memory not returned: %llu bytes", (unsigned long long)after);
    return 0;
}
