/*
 * fork_busy: fork() while other threads are inside the library, and the child
 * can still use it.  Threads of the parent: two alloc/free loops (one also
 * frees objects of the other's cache, so remote frees run), one that creates
 * and destroys caches, one that asks the stats endpoint for "info" and
 * "shrink", and the background defragmenter.  Every fork's child creates a
 * cache, allocates, frees, destroys it, checks that the background
 * defragmenter is seen stopped (slab_defrag_get_status: running 0; it can be
 * started again — not checked under the sanitizers, whose runtimes do not
 * support starting threads in the child of a multithreaded process), and exits
 * 0.  The parent waits at most
 * 60 s for each child (a hang is what the bug looked like: a child stuck in
 * slab_cache_create on the cache-list lock), then kills it and fails.
 * Forks: 200 (100 under sanitizers); `make stress` runs more.
 * TEST_LABELS: stress
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <slabdefrag/slab.h>
#include <slabdefrag/stats.h>

#include "testutil.h"

#define NOBJ 2000

static _Atomic bool stop;
static struct slab_cache *ca, *cb;
static char sock_path[128];
static void *_Atomic handoff[64]; /* objects of ca freed by the other thread */

static enum slab_move_result move_yes(void *old_obj, void *new_obj, size_t size, void *arg)
{
    (void)old_obj, (void)new_obj, (void)size, (void)arg;
    return SLAB_MOVE_LATER;
}

static void *alloc_loop(void *arg)
{
    struct slab_cache *s = arg;
    static _Thread_local void *objs[NOBJ];
    while (!atomic_load(&stop)) {
        for (int i = 0; i < NOBJ; i++)
            CHECK((objs[i] = slab_alloc(s)) != NULL, "alloc");
        for (int i = 0; i < NOBJ; i++) {
            if (s == ca && i < 64 && !atomic_load(&handoff[i])) {
                atomic_store(&handoff[i], objs[i]); /* the other thread frees it */
                continue;
            }
            slab_free(s, objs[i]);
        }
        if (s == cb)
            for (int i = 0; i < 64; i++) {
                void *p = atomic_exchange(&handoff[i], NULL);
                if (p)
                    slab_free(ca, p);
            }
    }
    return NULL;
}

static void *churn_loop(void *unused)
{
    while (!atomic_load(&stop)) {
        struct slab_cache *s = slab_cache_create("fork-churn", 128, 0, 0, NULL);
        CHECK(s != NULL, "create");
        struct slab_cache *t = slab_cache_create("fork-churn2", 40, 0, 0, NULL);
        CHECK(t != NULL, "create");
        slab_cache_destroy(s);
        slab_cache_destroy(t);
    }
    return unused;
}

static void *stats_loop(void *unused)
{
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        char *reply;
        long n = slab_stats_request(sock_path, i % 2 ? "info" : "shrink", &reply);
        CHECK(n > 0, "stats request: %s", strerror((int)-n));
        free(reply);
    }
    return unused;
}

static void child_main(void)
{
    struct slab_defrag_status st;
    if (slab_defrag_get_status(&st) != 0 || st.running)
        _exit(3);
    struct slab_cache *s = slab_cache_create("fork-child", 72, 0, 0, NULL);
    if (!s)
        _exit(4);
    void *p[300];
    for (int i = 0; i < 300; i++)
        if (!(p[i] = slab_alloc(s)))
            _exit(5);
    for (int i = 0; i < 300; i++)
        slab_free(s, p[i]);
    if (slab_cache_shrink(s) < 0 || slab_cache_defrag(ca, 50) < 0)
        _exit(6);
    slab_cache_destroy(s);
    if (!under_sanitizer()) {
        if (slab_defrag_start(NULL) != 0)
            _exit(7);
        slab_defrag_stop();
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    int forks = argc > 1 ? atoi(argv[1])
                         : (int)(stress_seconds(0) > 0 ? 50 * stress_seconds(0)
                                                       : under_sanitizer() ? 100 : 200);
    char dir[] = "/tmp/forkbusy-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(sock_path, sizeof sock_path, "%s/s.sock", dir);
    CHECK(slab_stats_serve_start(sock_path) == 0, "serve_start: %s", strerror(errno));
    ca = slab_cache_create("fork-a", 64, 0, 0, NULL);
    cb = slab_cache_create("fork-b", 200, 0, 0, NULL);
    CHECK(ca && cb, "create");
    CHECK(slab_cache_set_move(ca, move_yes, NULL) == 0, "set_move");
    struct slab_defrag_policy pol = { .interval_ms = 1, .min_waste_bytes = 1, .frag_percent = 1 };
    CHECK(slab_defrag_start(&pol) == 0, "defrag_start");

    pthread_t t[4];
    CHECK(pthread_create(&t[0], NULL, alloc_loop, ca) == 0, "thread");
    CHECK(pthread_create(&t[1], NULL, alloc_loop, cb) == 0, "thread");
    CHECK(pthread_create(&t[2], NULL, churn_loop, NULL) == 0, "thread");
    CHECK(pthread_create(&t[3], NULL, stats_loop, NULL) == 0, "thread");

    int failed = fork_many(forks, child_main, 60) != 0;
    atomic_store(&stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    slab_defrag_stop();
    slab_stats_serve_stop();
    rmdir(dir);
    for (int i = 0; i < 64; i++)
        if (handoff[i])
            slab_free(ca, handoff[i]);
    slab_cache_destroy(ca);
    slab_cache_destroy(cb);
    CHECK(!failed, "a child could not use the library after fork");
    fprintf(stderr, "%d forks, every child completed\n", forks);
    return 0;
}
