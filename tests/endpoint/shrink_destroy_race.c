/*
 * shrink_destroy_race: "shrink CACHE" and "defrag CACHE N" requests to the
 * stats endpoint while another thread creates and destroys that very cache in a
 * loop.  The endpoint used to look the cache up without pinning it, so a
 * destroy during the pass freed the cache under it (SIGSEGV, or ASan
 * heap-use-after-free in defrag_pass).  Now the endpoint pins the cache: every
 * reply is {"ok": true, ...} or {"error": "no such cache"}, and the process
 * survives.  Each cache life is seeded (object count, which objects stay), so a
 * failing seed can be replayed: shrink_destroy_race SEED [SECONDS].
 * Runs stress_seconds(2) (1 under sanitizers); `make stress` runs it longer.
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

#define VICTIM "race-victim"
#define MAX_OBJS 4096

static _Atomic bool stop;
static uint64_t seed;
static _Atomic unsigned long lives;

static enum slab_move_result refuse_move(void *old_obj, void *new_obj, size_t size, void *arg)
{
    (void)old_obj, (void)new_obj, (void)size, (void)arg;
    return SLAB_MOVE_LATER; /* the pass freezes, asks, and puts slabs back */
}

static void *churn(void *unused)
{
    static void *objs[MAX_OBJS];
    uint64_t rng = seed;
    while (!atomic_load(&stop)) {
        struct slab_cache *s = slab_cache_create(VICTIM, 96, 0, 0, NULL);
        CHECK(s != NULL, "create: %s", strerror(errno));
        CHECK(slab_cache_set_move(s, refuse_move, NULL) == 0, "set_move");
        unsigned n = 256 + (unsigned)(xorshift64(&rng) % (MAX_OBJS - 256));
        for (unsigned i = 0; i < n; i++)
            CHECK((objs[i] = slab_alloc(s)) != NULL, "alloc");
        unsigned keep = 2 + (unsigned)(xorshift64(&rng) % 8); /* keep 1 in keep */
        for (unsigned i = 0; i < n; i++)
            if (i % keep) {
                slab_free(s, objs[i]);
                objs[i] = NULL;
            }
        for (unsigned i = 0; i < n; i++)
            if (objs[i])
                slab_free(s, objs[i]);
        slab_cache_destroy(s);
        atomic_fetch_add(&lives, 1);
    }
    return unused;
}

int main(int argc, char **argv)
{
    seed = test_seed(argc, argv, 1, 0x5eed1234);
    double secs = argc > 2 ? atof(argv[2]) : stress_seconds(under_sanitizer() ? 1.0 : 2.0);
    char dir[] = "/tmp/sdrace-XXXXXX", path[128];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/s.sock", dir);
    CHECK(slab_stats_serve_start(path) == 0, "serve_start: %s", strerror(errno));

    pthread_t t;
    CHECK(pthread_create(&t, NULL, churn, NULL) == 0, "pthread_create");
    unsigned long ok = 0, none = 0;
    double end = now_seconds() + secs;
    for (unsigned i = 0; now_seconds() < end; i++) {
        const char *rq = i % 3 == 0 ? "shrink " VICTIM : i % 3 == 1 ? "defrag " VICTIM " 100"
                                                                  : "defrag " VICTIM " 30";
        char *reply;
        long n = slab_stats_request(path, rq, &reply);
        CHECK(n > 0, "seed %llu: request %s: %s", (unsigned long long)seed, rq, strerror((int)-n));
        if (strstr(reply, "\"ok\": true"))
            ok++;
        else if (strstr(reply, "no such cache"))
            none++;
        else
            CHECK(0, "seed %llu: unexpected reply to %s: %s", (unsigned long long)seed, rq, reply);
        free(reply);
    }
    atomic_store(&stop, true);
    pthread_join(t, NULL);
    slab_stats_serve_stop();
    rmdir(dir);
    fprintf(stderr, "seed %llu: %lu cache lives, %lu requests hit a live cache, %lu found none\n",
            (unsigned long long)seed, atomic_load(&lives), ok, none);
    CHECK(slab_cache_find(VICTIM) == NULL, "victim left behind");
    return 0;
}
