/*
 * endpoint/autostart.c — SLABDEFRAG_STATS=1: the control endpoint starts by
 * itself, with no call in the program.
 *
 * 1. When.  Once per process, at the first of: the library's constructor
 *    (below: a shared library, and a static program that links this object,
 *    start serving when they are loaded, before main), and the start of the
 *    first slab_cache_create (through the slab core's hook table, slab/hooks.h,
 *    which the library's wiring, src/library/hooks.c, points here).
 * 2. Why both.  A program linked with the static library gets only the archive
 *    members it references, and nothing references this file by name: a
 *    constructor here alone would never run there.  slab_cache_create refers to
 *    the hook table, so every program that creates a cache links the wiring
 *    object, which refers to endpoint_autostart, which brings this file (and
 *    its constructor) along — static or shared alike.
 * 3. Environment.  Read with secure_getenv: a setuid/setgid program ignores
 *    SLABDEFRAG_STATS and SLABDEFRAG_STATS_SOCKET (a non-empty
 *    SLABDEFRAG_STATS_SOCKET picks the socket path; else the default one,
 *    paths.c).  A start that fails is reported on stderr, once; the program
 *    runs on without the endpoint.
 * 4. Re-entry and threads.  pthread_once makes other threads wait until the
 *    start is over.  Starting allocates (pthread_create, atexit), and in a
 *    process whose malloc is the slab front end (libslabdefrag-malloc) that
 *    allocation may create the front end's caches and so call back here on
 *    the same thread, inside the once: `runner` (the starting thread's id)
 *    makes that inner call return at once instead of deadlocking on the once
 *    (endpoint/autostart_reentry forces it through a testing-build hook).
 *    `done` makes every later call one load.  A child forked after the start
 *    inherits done = true and does not start again by itself (server.c: the
 *    child does not inherit the endpoint either).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slabdefrag/stats.h>

#include "common/test_hook.h"
#include "endpoint/endpoint.h"
#include "endpoint/internal.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_bool done;
static _Atomic pid_t runner; /* thread id inside autostart_run, or 0 */

TEST_HOOKS_DEFINE(struct endpoint_autostart_test_hooks, endpoint_autostart_set_test_hooks)

static void autostart_run(void)
{
    atomic_store(&runner, gettid());
    TEST_HOOK(inside_start, atomic_load(&runner));
    const char *on = secure_getenv("SLABDEFRAG_STATS");
    if (on && strcmp(on, "1") == 0) {
        const char *path = secure_getenv("SLABDEFRAG_STATS_SOCKET");
        int rc = slab_stats_serve_start(path && *path ? path : NULL);
        if (rc < 0)
            fprintf(stderr, "slabdefrag: stats endpoint not started: %s\n", strerror(-rc));
    }
    atomic_store(&runner, 0);
    atomic_store_explicit(&done, true, memory_order_release);
}

void endpoint_autostart(void)
{
    if (atomic_load_explicit(&done, memory_order_acquire))
        return;
    if (atomic_load(&runner) == gettid())
        return; /* called back from inside autostart_run on this thread */
    pthread_once(&once, autostart_run);
}

__attribute__((constructor)) static void endpoint_autostart_ctor(void)
{
    endpoint_autostart();
}
