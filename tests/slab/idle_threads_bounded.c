/*
 * idle_threads_bounded: memory held for live threads that freed everything
 * and went idle is bounded: 64 threads each allocate 2 MiB of 256 B objects,
 * wait until all have (128 MiB live at once), free all of it, and block (alive) on a condition variable; the process RSS
 * comes back to within 16 MiB of the start, and bytes_mapped and the residency
 * of the slabs (mincore) to within 16 MiB, without any call from those threads.
 * Then they are released and exit.
 *
 * Objects are chained through their own first word (no pointer arrays that
 * would add to the RSS).  Each thread records the slabs it used in a
 * preallocated table, so main can look at their residency.  Polls with a 30 s
 * deadline that only turns a hang into a failure.  The RSS check is skipped
 * under a sanitizer (shadow memory); the other two are checked everywhere.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>

#include "slabtest.h"

#define THREADS 64
#define OBJ_SIZE 256
#define PER_THREAD (2u << 20)
#define NOBJ (PER_THREAD / OBJ_SIZE)
#define SLACK (16u << 20)
#define DEADLINE_S 30

static struct slab_cache *cache;
static void *firsts[THREADS][NOBJ]; /* one object per slab is enough; sized for the worst */
static size_t nfirst[THREADS];
static size_t slab_size;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int idle_count, release;
static pthread_barrier_t all_allocated, go_free; /* THREADS + main */

static void *worker(void *arg)
{
    size_t me = (size_t)(uintptr_t)arg;
    void *head = NULL;
    uintptr_t last_base = 0;
    for (size_t i = 0; i < NOBJ; i++) {
        void **o = slab_alloc(cache);
        CHECK(o != NULL, "thread %zu: slab_alloc: %s", me, strerror(errno));
        memset(o, 0x77, OBJ_SIZE);
        *o = head;
        head = o;
        if (slab_base(o, slab_size) != last_base) {
            last_base = slab_base(o, slab_size);
            firsts[me][nfirst[me]++] = o;
        }
    }
    pthread_barrier_wait(&all_allocated); /* 128 MiB live at once: main looks */
    pthread_barrier_wait(&go_free);
    while (head) {
        void *next = *(void **)head;
        slab_free(cache, head);
        head = next;
    }
    pthread_mutex_lock(&mu);
    idle_count++;
    pthread_cond_broadcast(&cv);
    while (!release)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}

int main(void)
{
    cache = slab_cache_create("idle-threads", OBJ_SIZE, 0, 0, NULL);
    CHECK(cache != NULL, "create: %s", strerror(errno));
    slab_size = cache_stats(cache).slab_size;
    memset(firsts, 0, sizeof firsts);
    CHECK(pthread_barrier_init(&all_allocated, NULL, THREADS + 1) == 0, "barrier");
    CHECK(pthread_barrier_init(&go_free, NULL, THREADS + 1) == 0, "barrier");
    size_t rss0 = proc_rss_bytes();

    pthread_t th[THREADS];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    for (size_t t = 0; t < THREADS; t++)
        CHECK(pthread_create(&th[t], &attr, worker, (void *)(uintptr_t)t) == 0, "pthread_create");
    pthread_attr_destroy(&attr);
    pthread_barrier_wait(&all_allocated);
    size_t peak_mapped = cache_stats(cache).bytes_mapped;
    CHECK(peak_mapped >= (size_t)THREADS * PER_THREAD,
          "only %zu bytes mapped with every thread's objects allocated", peak_mapped);
    pthread_barrier_wait(&go_free);
    pthread_mutex_lock(&mu);
    while (idle_count < THREADS)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);

    struct slab_set set;
    {
        static void *all[THREADS * NOBJ];
        size_t n = 0;
        for (size_t t = 0; t < THREADS; t++)
            for (size_t i = 0; i < nfirst[t]; i++)
                all[n++] = firsts[t][i];
        slab_set_build(&set, all, n, slab_size);
    }
    struct held_memory h;
    int ok = poll_memory_released(cache, &set, rss0, SLACK, DEADLINE_S, &h);
    struct slab_cache_stats st = h.st;
    size_t resident = h.resident, rss = h.rss;
    if (!ok)
        print_stats("idle_threads_bounded: 64 idle threads", &st);
    CHECK(st.bytes_mapped <= SLACK, "%d idle threads: bytes_mapped %llu after %d s (allowed %u)",
          THREADS, (unsigned long long)st.bytes_mapped, DEADLINE_S, SLACK);
    CHECK(resident <= SLACK, "%d idle threads: %zu bytes of their slabs still resident", THREADS,
          resident);
    if (rss_ok_here())
        CHECK(rss <= rss0 + SLACK, "%d idle threads: RSS %zu KiB, %zu KiB at the start", THREADS,
              rss >> 10, rss0 >> 10);
    printf("idle_threads_bounded: ok: RSS %zu -> %zu KiB, bytes_mapped %zu KiB with all "
           "allocated -> %llu KiB, %zu KiB of %zu slabs resident\n",
           rss0 >> 10, rss >> 10, peak_mapped >> 10, (unsigned long long)st.bytes_mapped >> 10,
           resident >> 10, set.n);

    pthread_mutex_lock(&mu);
    release = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (size_t t = 0; t < THREADS; t++)
        CHECK(pthread_join(th[t], NULL) == 0, "pthread_join");
    st = cache_stats(cache);
    CHECK(st.objects_active == 0 && st.allocs == (uint64_t)THREADS * NOBJ &&
              st.frees == st.allocs,
          "after the threads exit: active %llu allocs %llu frees %llu",
          (unsigned long long)st.objects_active, (unsigned long long)st.allocs,
          (unsigned long long)st.frees);
    CHECK(slab_cache_validate(cache) == 0, "validate");
    slab_set_free(&set);
    pthread_barrier_destroy(&all_allocated);
    pthread_barrier_destroy(&go_free);
    slab_cache_destroy(cache);
    return 0;
}
