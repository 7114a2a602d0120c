/*
 * slabtest.h: small helpers shared by the tests in tests/slab/ (header only, so
 * the per-directory glob of *.c files does not turn it into a test program).
 * The generic ones (cache_stats, print_stats, slab_base, resident_bytes,
 * stderr capture, expect_abort) are in tests/util/testutil.h.
 *
 * check_stats_consistent()  the invariants of an exact stats snapshot.
 * slab_set_*()              the distinct slabs a set of objects lies in, and how
 *                           much of them is resident (mincore: meaningful under
 *                           the sanitizers too, unlike the RSS).
 * POLL_UNTIL(cond, secs)    re-evaluate cond every 50 ms until it holds or secs
 *                           have passed; the value is whether it held.  For
 *                           behaviour that takes "about a second": the deadline
 *                           only turns a hang into a failure, it is no timing
 *                           assertion.
 * stage_set/stage_wait     a monotonic step counter for tests whose threads
 *                           take turns (mutex + condition variable).
 * FAIL_IF(bad, ...)         for randomised tests: prints fail_context (the test,
 *                           its seed and whatever else replays the run; the test
 *                           fills it in), file:line and the message; _exit(1),
 *                           so it may fire on any thread.
 * PURGE_DELAY_LONG_MS       the longest purge delay slab_set_purge_delay takes (an
 *                           hour): for tests in which nothing may decay, however
 *                           slowly an oversubscribed sanitizer build runs.
 * rss_ok_here()             1 when the process RSS means what it says (no
 *                           sanitizer shadow memory in it).
 * slab_job_run()            a pthread start routine that allocates or frees a
 *                           batch of objects; slab_in_thread() runs one on a new
 *                           thread and waits for it (remote frees, objects of
 *                           threads that have exited).
 * slabtest_cmp_uptr()       qsort/bsearch order of pointers (or slab bases).
 * poll_memory_released()   POLL_UNTIL an idle cache maps, keeps resident and
 *                           adds to the RSS at most a slack; the last sample.
 */
#ifndef SLABDEFRAG_TESTS_SLABTEST_H
#define SLABDEFRAG_TESTS_SLABTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <slabdefrag/slab.h>

#include "testutil.h"

/* The invariants that hold in every exact snapshot (no thread holds an active slab). */
static inline void check_stats_consistent(const struct slab_cache_stats *st)
{
    if (!(st->objects_active == st->allocs - st->frees && st->allocs >= st->frees &&
          st->objects_total == st->slabs * st->objects_per_slab &&
          st->slabs_partial + st->slabs_empty <= st->slabs &&
          st->objects_active <= st->objects_total &&
          st->bytes_mapped == st->slabs * st->slab_size))
        print_stats("inconsistent stats", st);
    CHECK(st->allocs >= st->frees, "frees exceed allocs");
    CHECK(st->objects_active == st->allocs - st->frees, "objects_active != allocs - frees");
    CHECK(st->objects_total == st->slabs * st->objects_per_slab,
          "objects_total != slabs * objects_per_slab");
    CHECK(st->slabs_partial + st->slabs_empty <= st->slabs, "partial + empty > slabs");
    CHECK(st->objects_active <= st->objects_total, "more active objects than capacity");
    CHECK(st->bytes_mapped == st->slabs * st->slab_size,
          "bytes_mapped != slabs * slab_size");
}

/* A batch of slab operations for another thread: allocate n objects of s into
 * objs[] (alloc true), or free objs[0..n) (alloc false). */
struct slab_job {
    struct slab_cache *s;
    void **objs;
    size_t n;
    bool alloc;
};

/* pthread start routine running a slab_job: NULL, or (void *)1 when an
 * allocation failed. */
static inline void *slab_job_run(void *arg)
{
    struct slab_job *j = arg;
    for (size_t i = 0; i < j->n; i++) {
        if (!j->alloc)
            slab_free(j->s, j->objs[i]);
        else if (!(j->objs[i] = slab_alloc(j->s)))
            return (void *)1;
    }
    return NULL;
}

/* Run the job on a new thread and wait for it to exit; fails the test if an
 * allocation failed. */
static inline void slab_in_thread(struct slab_cache *s, void **objs, size_t n, bool alloc)
{
    struct slab_job j = {s, objs, n, alloc};
    pthread_t t;
    void *ret;
    CHECK(pthread_create(&t, NULL, slab_job_run, &j) == 0, "pthread_create");
    CHECK(pthread_join(t, &ret) == 0, "pthread_join");
    CHECK(ret == NULL, "slab_alloc of cache '%s' failed in the thread", slab_cache_name(s));
}

/* Distinct slabs (sorted bases) of a set of objects. */
struct slab_set {
    uintptr_t *bases;
    size_t n, slab_size;
};

static inline int slabtest_cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static inline void slab_set_build(struct slab_set *set, void *const *objs, size_t n,
                                  size_t slab_size)
{
    set->bases = malloc((n ? n : 1) * sizeof *set->bases);
    CHECK(set->bases != NULL, "malloc");
    set->slab_size = slab_size;
    for (size_t i = 0; i < n; i++)
        set->bases[i] = slab_base(objs[i], slab_size);
    qsort(set->bases, n, sizeof *set->bases, slabtest_cmp_uptr);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || set->bases[k - 1] != set->bases[i])
            set->bases[k++] = set->bases[i];
    set->n = k;
}

static inline int slab_set_contains(const struct slab_set *set, const void *obj)
{
    uintptr_t b = slab_base(obj, set->slab_size);
    return bsearch(&b, set->bases, set->n, sizeof b, slabtest_cmp_uptr) != NULL;
}

static inline size_t slab_set_resident(const struct slab_set *set)
{
    size_t r = 0;
    for (size_t i = 0; i < set->n; i++)
        r += resident_bytes((void *)set->bases[i], set->slab_size);
    return r;
}

static inline void slab_set_free(struct slab_set *set)
{
    free(set->bases);
    set->bases = NULL;
    set->n = 0;
}

#define POLL_UNTIL(cond, seconds)                                                     \
    ({                                                                                \
        double poll_end_ = now_seconds() + (seconds);                                 \
        int poll_ok_;                                                                 \
        while (!(poll_ok_ = !!(cond)) && now_seconds() < poll_end_)                   \
            usleep(50 * 1000);                                                        \
        poll_ok_;                                                                     \
    })

static pthread_mutex_t stage_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stage_cv = PTHREAD_COND_INITIALIZER;
static int stage_now;

static inline void stage_set(int v)
{
    pthread_mutex_lock(&stage_mu);
    stage_now = v;
    pthread_cond_broadcast(&stage_cv);
    pthread_mutex_unlock(&stage_mu);
}

static inline void stage_wait(int v)
{
    pthread_mutex_lock(&stage_mu);
    while (stage_now < v)
        pthread_cond_wait(&stage_cv, &stage_mu);
    pthread_mutex_unlock(&stage_mu);
}

#define PURGE_DELAY_LONG_MS 3600000u

static char fail_context[160] __attribute__((unused));

#define FAIL_IF(bad, ...)                                                             \
    do {                                                                              \
        if (bad) {                                                                    \
            fprintf(stderr, "%s FAILED at %s:%d: ", fail_context, __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
            fflush(stderr);                                                           \
            _exit(1);                                                                 \
        }                                                                             \
    } while (0)

static inline int rss_ok_here(void) { return !under_sanitizer(); }

/* What an idle cache still holds: its statistics, the resident bytes of a set
 * of its slabs, and the process RSS. */
struct held_memory {
    struct slab_cache_stats st;
    size_t resident, rss;
};

/* Wait (POLL_UNTIL, at most secs) until cache s maps at most slack bytes, at
 * most slack bytes of set's slabs are resident and, where the RSS means what it
 * says, the RSS is at most rss0 + slack.  1 when it got there; *h is the last
 * sample either way, for the caller's checks and messages. */
static inline int poll_memory_released(struct slab_cache *s, const struct slab_set *set,
                                       size_t rss0, size_t slack, double secs,
                                       struct held_memory *h)
{
    return POLL_UNTIL((h->st = cache_stats(s), h->resident = slab_set_resident(set),
                       h->rss = proc_rss_bytes(),
                       h->st.bytes_mapped <= slack && h->resident <= slack &&
                           (!rss_ok_here() || h->rss <= rss0 + slack)),
                      secs);
}

#endif
