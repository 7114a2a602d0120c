/*
 * slab/purge.c — decay: memory nobody uses goes back to the OS within about a
 * second, also in a process that makes no allocator call at all.
 *
 * 1. Objects.  One purge thread per process, started when the first slab is
 *    created (purge_start_once, from slab_new), and again in a forked child that
 *    creates a slab.  Each tick it visits every cache (pinned as reclaimers pin
 *    them, so a cache being destroyed is skipped) and
 *      - hands back the cache's empty slabs that have been empty for purge_ms
 *        (cache_release_aged, slab.c);
 *      - every purge_ms, flushes the heaps of threads that made no allocator
 *        call on that cache since the previous look (heap_flush_idle, heap.c):
 *        their slabs go to the cache's lists, where the next ticks release the
 *        empty ones and defragmentation reaches the rest.
 *    When no cache holds any slab it sleeps until slab_new wakes it.
 * 2. Locking.  purge_lock (a leaf) protects the sleeping handshake with
 *    purge_cond, and purge_cond itself: every signal is sent with it held, and
 *    the starter (re)initialises purge_cond (monotonic clock; a forked child's
 *    copy may record the parent's waiter) with it held too, since
 *    slab_set_purge_delay may signal from another thread at that moment.
 *    starting/started are atomics: the thread that turns starting
 *    from false to true creates the thread with no lock held (pthread_create may
 *    allocate through this very library when it is the program's malloc).  The
 *    thread takes cache_list_lock and bg_lock (pins), then heaps_lock and
 *    cache->lock in the callees, never holding purge_lock meanwhile.
 * 3. Numbers.  purge_ms: SLABDEFRAG_PURGE_MS (read once, with secure_getenv) or
 *    slab_set_purge_delay; default 500 ms; 0 = no decay (empty slabs beyond a
 *    reserve of 2 go back at once, as before decay existed).  Tick: purge_ms / 4,
 *    between 5 and 250 ms, so memory is back within 1.25 × purge_ms (an idle
 *    thread's: within 2.5 × purge_ms — idle for one look, flushed at the next).
 * 4. Observability.  slabs_empty and bytes_mapped of slab_cache_get_stats fall
 *    when the purge thread has worked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "defrag.h"
#include "fork.h"

#define PURGE_DEFAULT_MS 500u

_Atomic unsigned purge_delay_ms = PURGE_DEFAULT_MS;

static pthread_mutex_t purge_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t purge_cond = PTHREAD_COND_INITIALIZER;
static _Atomic bool starting, started, sleeping;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

uint64_t purge_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void read_env(void)
{
    const char *v = secure_getenv("SLABDEFRAG_PURGE_MS");
    if (!v || !*v)
        return;
    char *end;
    errno = 0;
    unsigned long ms = strtoul(v, &end, 10);
    if (errno == 0 && *end == '\0' && ms <= 3600000ul)
        atomic_store(&purge_delay_ms, (unsigned)ms);
}

int slab_set_purge_delay(unsigned ms)
{
    if (ms > 3600000u)
        return errno = EINVAL, -EINVAL;
    pthread_once(&env_once, read_env); /* the call wins over the environment */
    atomic_store(&purge_delay_ms, ms);
    cache_update_lfree_all();
    pthread_mutex_lock(&purge_lock);
    pthread_cond_signal(&purge_cond);
    pthread_mutex_unlock(&purge_lock);
    return 0;
}

unsigned slab_get_purge_delay(void)
{
    pthread_once(&env_once, read_env);
    return atomic_load(&purge_delay_ms);
}

static unsigned tick_ms(unsigned delay)
{
    unsigned t = delay / 4;
    return t < 5 ? 5 : t > 250 ? 250 : t;
}

/* One tick over every cache; returns whether any cache still holds slabs. */
static bool purge_tick(bool look_for_idle)
{
    struct slab_cache **v;
    size_t n = cache_pin_all(&v);
    bool holds = false;
    uint64_t now = purge_now_ns();
    for (size_t i = 0; i < n; i++) {
        struct slab_cache *s = v[i];
        if (look_for_idle)
            heap_flush_idle(s, true);
        cache_release_aged(s, now);
        holds |= atomic_load_explicit(&s->nr_slabs, relaxed) != 0;
    }
    cache_unpin_all(v, n);
    return holds;
}

static void wait_ms(unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&purge_lock);
    pthread_cond_timedwait(&purge_cond, &purge_lock, &ts);
    pthread_mutex_unlock(&purge_lock);
}

static void *purge_main(void *arg)
{
    (void)arg;
    uint64_t last_idle_look = purge_now_ns();
    for (;;) {
        unsigned delay = atomic_load(&purge_delay_ms);
        wait_ms(tick_ms(delay));
        uint64_t now = purge_now_ns();
        bool look = now - last_idle_look >= (uint64_t)(delay ? delay : 1000) * 1000000u;
        if (look)
            last_idle_look = now;
        if (!purge_tick(look)) {
            pthread_mutex_lock(&purge_lock);
            atomic_store(&sleeping, true);
            while (atomic_load(&sleeping))
                pthread_cond_wait(&purge_cond, &purge_lock);
            pthread_mutex_unlock(&purge_lock);
            last_idle_look = purge_now_ns();
        }
    }
    return NULL;
}

static void condattr_monotonic(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&purge_cond, &ca);
    pthread_condattr_destroy(&ca);
}

void purge_start_once(void)
{
    if (likely(atomic_load_explicit(&started, relaxed))) {
        if (unlikely(atomic_load_explicit(&sleeping, relaxed))) {
            pthread_mutex_lock(&purge_lock);
            atomic_store(&sleeping, false);
            pthread_cond_signal(&purge_cond);
            pthread_mutex_unlock(&purge_lock);
        }
        return;
    }
    /* One thread starts it, holding no lock: pthread_create may call malloc,
     * which in a program whose malloc is this library can come back here. */
    bool expect = false;
    if (!atomic_compare_exchange_strong(&starting, &expect, true))
        return;
    pthread_once(&env_once, read_env);
    pthread_mutex_lock(&purge_lock); /* no signal meanwhile (see 2.) */
    condattr_monotonic();
    pthread_mutex_unlock(&purge_lock);
    sigset_t all, old; /* the thread takes no signal meant for the program */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    bool ok = pthread_create(&t, &attr, purge_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    atomic_store(&started, ok);
    if (!ok)
        atomic_store(&starting, false); /* try again with the next slab */
}

/* fork: the child has no purge thread; its next slab_new starts one. */
static void purge_fork_prepare(void) { pthread_mutex_lock(&purge_lock); }
static void purge_fork_parent(void) { pthread_mutex_unlock(&purge_lock); }
static void purge_fork_child(void)
{
    pthread_mutex_unlock(&purge_lock); /* taken by this thread before fork */
    atomic_store(&starting, false);
    atomic_store(&started, false);
    atomic_store(&sleeping, false);
}

__attribute__((constructor)) static void purge_fork_register(void)
{
    slab_fork_register(purge_fork_prepare, purge_fork_parent, purge_fork_child, FORK_ORDER_PURGE);
}
