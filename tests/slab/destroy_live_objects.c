/*
 * destroy_live_objects: slab_cache_destroy() of a cache that still has
 * allocated objects reports "slabdefrag: cache '<name>': <N> objects still
 * allocated at destroy" on stderr with the exact N, does not abort, and releases
 * the memory of the cache's slabs; a cache with no live objects is destroyed
 * silently.
 *
 * stderr is redirected to a temporary file around each destroy and the text is
 * checked: N counts objects allocated by this thread (in its active slab and in
 * full slabs), by threads that have exited, and remote frees are subtracted.
 * After destroy no page of the cache's slabs is resident (mincore), the name is
 * no longer found, and a new cache of the same name can be created.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "slabtest.h"

static char *destroy_captured(struct slab_cache *s)
{
    struct stderr_capture cap;
    stderr_capture_begin(&cap);
    slab_cache_destroy(s);
    return stderr_capture_end(&cap);
}

static void expect_report(struct slab_cache *s, const char *name, unsigned long n)
{
    char want[160];
    snprintf(want, sizeof want, "slabdefrag: cache '%s': %lu objects still allocated at destroy",
             name, n);
    char *out = destroy_captured(s);
    if (n == 0)
        CHECK(strstr(out, "still allocated") == NULL,
              "cache '%s' with no live objects reported at destroy: %s", name, out);
    else
        CHECK(strstr(out, want) != NULL, "destroy of '%s' printed \"%s\", want \"%s\"", name, out,
              want);
    free(out);
    CHECK(slab_cache_find(name) == NULL, "'%s' still found after destroy", name);
}

int main(void)
{
    /* 37 objects from this thread, spread over full slabs and the active one. */
    struct slab_cache *s = slab_cache_create("live-main", 1000, 0, 0, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    void *objs[64];
    for (int i = 0; i < 40; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "slab_alloc: %s", strerror(errno));
    }
    for (int i = 0; i < 3; i++)
        slab_free(s, objs[i * 5]);
    expect_report(s, "live-main", 37);

    /* A cache with a single live object. */
    s = slab_cache_create("live-one", 64, 0, 0, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    CHECK(slab_alloc(s) != NULL, "slab_alloc");
    expect_report(s, "live-one", 1);

    /* Nothing live: silent. */
    s = slab_cache_create("live-none", 64, 0, 0, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    for (int i = 0; i < 50; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "slab_alloc");
    }
    for (int i = 0; i < 50; i++)
        slab_free(s, objs[i]);
    expect_report(s, "live-none", 0);

    /* Objects of threads that exited, some freed by other threads, memory released. */
    s = slab_cache_create("live-threads", 512, 0, 0, NULL);
    CHECK(s != NULL, "create: %s", strerror(errno));
    size_t slab_size = cache_stats(s).slab_size;
    enum { T = 3, PER = 300 };
    static void *tobj[T][PER];
    pthread_t th[T];
    struct slab_job jobs[T];
    for (int t = 0; t < T; t++) {
        jobs[t] = (struct slab_job){s, tobj[t], PER, true};
        CHECK(pthread_create(&th[t], NULL, slab_job_run, &jobs[t]) == 0, "pthread_create");
    }
    for (int t = 0; t < T; t++) {
        void *ret;
        CHECK(pthread_join(th[t], &ret) == 0 && ret == NULL, "alloc worker failed");
        for (int i = 0; i < PER; i++)
            memset(tobj[t][i], 0x77, 512); /* every page of them resident */
    }
    /* Thread 0's objects 0..99 are freed by another thread, thread 1's 0..49 here. */
    slab_in_thread(s, tobj[0], 100, false);
    for (int i = 0; i < 50; i++)
        slab_free(s, tobj[1][i]);
    /* Main also holds a few. */
    for (int i = 0; i < 7; i++) {
        objs[i] = slab_alloc(s);
        CHECK(objs[i] != NULL, "slab_alloc");
        memset(objs[i], 0x66, 512);
    }
    unsigned long live = T * PER - 100 - 50 + 7;
    uintptr_t bases[T * PER + 7];
    size_t nb = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < PER; i++)
            bases[nb++] = slab_base(tobj[t][i], slab_size);
    for (int i = 0; i < 7; i++)
        bases[nb++] = slab_base(objs[i], slab_size);
    size_t res_before = 0;
    for (size_t i = 0; i < nb; i++)
        res_before += resident_bytes((void *)bases[i], slab_size);
    CHECK(res_before > 0, "the slabs are not resident before destroy?");
    expect_report(s, "live-threads", live);
    size_t res_after = 0;
    for (size_t i = 0; i < nb; i++)
        res_after += resident_bytes((void *)bases[i], slab_size);
    CHECK(res_after == 0, "%zu bytes of the destroyed cache's slabs are still resident",
          res_after);

    /* The name can be used again. */
    s = slab_cache_create("live-threads", 512, 0, 0, NULL);
    CHECK(s != NULL, "re-create: %s", strerror(errno));
    CHECK(slab_cache_find("live-threads") == s, "find after re-create");
    void *o = slab_alloc(s);
    CHECK(o != NULL, "slab_alloc");
    slab_free(s, o);
    CHECK(slab_cache_validate(s) == 0, "validate");
    expect_report(s, "live-threads", 0);
    printf("destroy_live_objects: ok\n");
    return 0;
}
