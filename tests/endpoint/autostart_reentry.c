/*
 * autostart_reentry: the endpoint's autostart, re-entered on its own thread
 * from inside the start, returns at once instead of deadlocking.
 *
 * Starting the endpoint allocates; when malloc is the slab front end, that
 * allocation creates caches, and slab_cache_create calls the autostart again
 * on the same thread, inside its pthread_once (a second pthread_once on the
 * thread running the first waits for itself forever).  The testing build's
 * hook inside_start runs at exactly that point; this program sets it from a
 * constructor that runs before the library's (priority 101), so the start
 * made by the library's own constructor calls it.  The hook does what such a
 * malloc would: create a cache, allocate, free, destroy.
 *
 * Checked: the hook ran once, before main, on the main thread (the start's
 * runner), and its cache worked; a cache created later does not start again
 * (the hook is not called a second time).  Without the re-entry guard in
 * autostart.c the program hangs in the constructor and the alarm ends it.
 *
 * TEST_LIBRARY: slabdefrag_testing
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <unistd.h>

#include <slabdefrag/slab.h>

#include "endpoint/internal.h"
#include "testutil.h"

static _Atomic int hook_calls, inner_cache_worked;
static _Atomic pid_t hook_runner;

static void inside_start(pid_t runner, void *arg)
{
    (void)arg;
    atomic_fetch_add(&hook_calls, 1);
    atomic_store(&hook_runner, runner);
    struct slab_cache *s = slab_cache_create("reentry-probe", 64, 0, 0, NULL);
    void *obj = s ? slab_alloc(s) : NULL;
    if (obj)
        slab_free(s, obj);
    if (s)
        slab_cache_destroy(s);
    atomic_store(&inner_cache_worked, obj != NULL);
}

static const struct endpoint_autostart_test_hooks hooks = { .inside_start = inside_start };

__attribute__((constructor(101))) static void set_hooks_first(void)
{
    alarm(60); /* a deadlock on the once would hang the constructor */
    endpoint_autostart_set_test_hooks(&hooks);
}

int main(void)
{
    CHECK(atomic_load(&hook_calls) == 1, "the start ran %d times before main",
          atomic_load(&hook_calls));
    CHECK(atomic_load(&hook_runner) == gettid(), "the start ran on thread %d, not main (%d)",
          (int)atomic_load(&hook_runner), (int)gettid());
    CHECK(atomic_load(&inner_cache_worked), "the cache created inside the start failed");
    struct slab_cache *s = slab_cache_create("after-start", 64, 0, 0, NULL);
    CHECK(s != NULL, "slab_cache_create after the start");
    CHECK(atomic_load(&hook_calls) == 1, "a later slab_cache_create started again");
    slab_cache_destroy(s);
    endpoint_autostart_set_test_hooks(NULL);
    alarm(0);
    return 0;
}
