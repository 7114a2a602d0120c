/*
 * slab/defrag_bg.c — which caches get a pass, when, and how much: slab_reclaim
 * and the background defragmenter.
 *
 * 1. Objects.  One background thread per process (struct bg_state), started by
 *    slab_defrag_start with a policy; a stop pipe wakes it; an optional PSI
 *    trigger fd (/proc/pressure/memory) wakes it early under memory pressure.
 * 2. Locking.  bg_lock protects: every cache's pins, dying and defrag_backoff, and
 *    the bg_state fields that are not atomics.  Order: cache_list_lock, then
 *    bg_lock; a pass (defrag.c) runs with neither held.
 * 3. References.  A reclaimer pins each cache it will visit (pins++ under
 *    cache_list_lock + bg_lock, skipping dying caches); so does the stats
 *    endpoint for the cache a request names (cache_find_pinned/cache_unpin).
 *    slab_cache_destroy takes the cache off the list, marks it dying and waits
 *    for pins to drop to 0 (slab_defrag_mark_dying_and_wait) before it frees
 *    anything.  So a reclaimer never touches a destroyed cache, and a request
 *    naming a cache being destroyed finds none.  Callbacks must therefore not destroy caches
 *    (documented in slab.h).
 * 4. Policy and numbers (defaults in slab.h's struct slab_defrag_policy):
 *    - a cache is worth a pass when it has callbacks, is not backing off, wastes
 *      at least min_waste_bytes (256 KiB) in its partial slabs, and those free
 *      objects exceed frag_percent (12, i.e. 1/8 as illumos) of its capacity;
 *    - candidates: slabs below slab_fill_percent (30, Lameter's default ratio);
 *    - a step works until a quarter of max_step_us has passed, then finishes
 *      the slab it is on (a slab takes ~tens of µs); the rest of max_step_us is
 *      headroom for ending the pass (batched releases) and that last slab;
 *    - after each step the thread sleeps cpu_used * (100 - budget) / budget, so
 *      its CPU time stays within cpu_budget_percent of wall time (Redis' 1-25%);
 *    - a pass that frees nothing doubles the cache's back-off: after the n-th
 *      fruitless pass in a row the cache skips min(2^n, 64) rounds (2, 4, 8,
 *      16, 32, 64, 64 ..); a pass that frees something resets it to 0.
 *    slab_reclaim ranks caches by reclaimable bytes (empty slabs, plus the free
 *    space in partial slabs of caches with callbacks) and runs full passes (fill
 *    100%) on them, most reclaimable first, until the target is met.  A cache
 *    with nothing reclaimable costs one short critical section of its
 *    cache->lock (three counters and whether callbacks are set).
 * 5. Fork (fork.h, FORK_ORDER_DEFRAG).  Before fork every live cache is pinned
 *    and its defrag_lock taken (no pass is half done in the child), then
 *    cache_list_lock and bg_lock.  In the child the pins (of threads that are
 *    gone) are reset and the background defragmenter is stopped: status
 *    running = 0, and slab_defrag_start starts a new one.
 * 6. Observability.  slab_defrag_get_status: rounds, steps, cpu_ns, wall_ns,
 *    longest_step_ns (CPU time of the longest step: the work the defragmenter
 *    controls), longest_step_wall_ns (including preemption), bytes_released,
 *    psi_wakeups.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "defrag.h"
#include "fork.h"

static pthread_mutex_t bg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pins_cond = PTHREAD_COND_INITIALIZER;

/* ---- pins --------------------------------------------------------------- */

/* Pin every live cache (the purge thread and slab_reclaim visit them without
 * holding cache_list_lock).  The vector comes from meta.c, never malloc: this runs
 * in the purge thread of a program whose malloc is this library. */
size_t cache_pin_all(struct slab_cache ***out)
{
    struct slab_cache **v = meta_alloc(SLAB_MAX_CACHES * sizeof *v);
    size_t n = 0;
    *out = v;
    if (!v)
        return 0;
    pthread_mutex_lock(&cache_list_lock);
    pthread_mutex_lock(&bg_lock);
    for (struct slab_cache *s = cache_list_head(); s && n < SLAB_MAX_CACHES; s = s->next_cache) {
        if (s->dying)
            continue;
        s->pins++;
        v[n++] = s;
    }
    pthread_mutex_unlock(&bg_lock);
    pthread_mutex_unlock(&cache_list_lock);
    return n;
}

void cache_unpin_all(struct slab_cache **v, size_t n)
{
    pthread_mutex_lock(&bg_lock);
    for (size_t i = 0; i < n; i++)
        if (--v[i]->pins == 0)
            pthread_cond_broadcast(&pins_cond);
    pthread_mutex_unlock(&bg_lock);
    meta_free(v, SLAB_MAX_CACHES * sizeof *v);
}

/* The live cache named `name`, pinned (NULL if none, or if it is being
 * destroyed): a request from outside (the stats endpoint) may work on it until
 * cache_unpin, and slab_cache_destroy waits for that. */
struct slab_cache *cache_find_pinned(const char *name)
{
    struct slab_cache *found = NULL;
    pthread_mutex_lock(&cache_list_lock);
    pthread_mutex_lock(&bg_lock);
    for (struct slab_cache *s = cache_list_head(); s && name; s = s->next_cache)
        if (!s->dying && strcmp(s->name, name) == 0) {
            s->pins++;
            found = s;
            break;
        }
    pthread_mutex_unlock(&bg_lock);
    pthread_mutex_unlock(&cache_list_lock);
    return found;
}

void cache_unpin(struct slab_cache *s)
{
    pthread_mutex_lock(&bg_lock);
    if (--s->pins == 0)
        pthread_cond_broadcast(&pins_cond);
    pthread_mutex_unlock(&bg_lock);
}

void slab_defrag_mark_dying_and_wait(struct slab_cache *s)
{
    pthread_mutex_lock(&bg_lock);
    s->dying = true;
    while (s->pins)
        pthread_cond_wait(&pins_cond, &bg_lock);
    pthread_mutex_unlock(&bg_lock);
}

/* ---- measuring a cache ---------------------------------------------------- */

struct cache_measure {
    uint64_t capacity;      /* objects in all slabs */
    uint64_t free_partial;  /* free objects in partial slabs (as binned) */
    uint64_t empty_bytes;
    bool callbacks;         /* cache_has_callbacks */
};

static void measure(struct slab_cache *s, struct cache_measure *m)
{
    pthread_mutex_lock(&s->lock);
    m->capacity = atomic_load(&s->nr_slabs) * s->objects;
    m->free_partial = (uint64_t)s->nr_partial * s->objects - s->partial_inuse;
    m->empty_bytes = (uint64_t)s->empty.nr << s->slab_shift;
    m->callbacks = cache_has_callbacks(s);
    pthread_mutex_unlock(&s->lock);
}

static uint64_t reclaimable_bytes(struct slab_cache *s)
{
    struct cache_measure m;
    measure(s, &m);
    uint64_t bytes = m.empty_bytes;
    if (m.callbacks)
        bytes += m.free_partial * s->stride;
    return bytes;
}

/* Consume one round of back-off; true if the cache is to be skipped. */
bool defrag_backing_off(struct slab_cache *s)
{
    pthread_mutex_lock(&bg_lock);
    bool skip = s->defrag_backoff > 0;
    if (skip)
        s->defrag_backoff--;
    pthread_mutex_unlock(&bg_lock);
    return skip;
}

/* After a pass: the n-th fruitless pass in a row sets min(2^n, 64) rounds to
 * skip; a pass that emptied a slab clears it. */
void defrag_update_backoff(struct slab_cache *s, const struct defrag_result *res)
{
    pthread_mutex_lock(&bg_lock);
    if (res->scanned && !res->emptied) {
        unsigned f = atomic_load(&s->defrag_fruitless);
        f = f < DEFRAG_BACKOFF_MAX_SHIFT ? f : DEFRAG_BACKOFF_MAX_SHIFT;
        s->defrag_backoff = 1u << f;
    } else if (res->emptied) {
        s->defrag_backoff = 0;
    }
    pthread_mutex_unlock(&bg_lock);
}

/* ---- slab_reclaim ----------------------------------------------------------- */

struct ranked {
    struct slab_cache *s;
    uint64_t bytes;
};

static int by_bytes_desc(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

long slab_reclaim(size_t target_bytes)
{
    struct slab_cache **v;
    size_t n = cache_pin_all(&v);
    struct ranked *r = calloc(n ? n : 1, sizeof *r);
    long total = 0;
    if (!r) {
        cache_unpin_all(v, n);
        return errno = ENOMEM, -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        r[i] = (struct ranked){ v[i], reclaimable_bytes(v[i]) };
    qsort(r, n, sizeof *r, by_bytes_desc);
    for (size_t i = 0; i < n && (size_t)total < target_bytes; i++) {
        if (r[i].bytes == 0)
            break; /* sorted: nothing reclaimable from here on */
        if (defrag_backing_off(r[i].s))
            continue;
        struct defrag_request rq = { .fill_percent = 100, .flush_own_heap = true,
                                     .release_all_empty = true, .trylock = true };
        struct defrag_result res;
        if (defrag_pass(r[i].s, &rq, &res) > 0)
            total += res.bytes;
        defrag_update_backoff(r[i].s, &res);
    }
    free(r);
    cache_unpin_all(v, n);
    return total;
}

/* ---- the background defragmenter ------------------------------------------------ */

static struct bg_state {
    bool running;
    pthread_t thread;
    struct slab_defrag_policy policy;
    int stop_pipe[2];
    int psi_fd;
    uint64_t start_ns;
    _Atomic uint64_t rounds, steps, cpu_ns, longest_step_ns, longest_step_wall_ns, bytes, psi_wakeups;
    _Atomic bool stopping;
} bg = { .psi_fd = -1, .stop_pipe = { -1, -1 } };

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool worth_a_pass(struct slab_cache *s, const struct slab_defrag_policy *p)
{
    struct cache_measure m;
    measure(s, &m);
    if (!m.callbacks)
        return false;
    if (m.free_partial * s->stride < p->min_waste_bytes)
        return false;
    if (m.free_partial * 100 <= (uint64_t)p->frag_percent * m.capacity)
        return false;
    return !defrag_backing_off(s);
}

/* Wait up to ms on the stop pipe (and PSI); returns false when asked to stop. */
static bool bg_wait(unsigned ms, bool with_psi)
{
    struct pollfd fds[2] = { { bg.stop_pipe[0], POLLIN, 0 }, { bg.psi_fd, POLLPRI, 0 } };
    int nfds = (with_psi && bg.psi_fd >= 0) ? 2 : 1;
    int rc = poll(fds, (nfds_t)nfds, (int)ms);
    if (rc > 0 && nfds == 2 && (fds[1].revents & POLLPRI))
        atomic_fetch_add(&bg.psi_wakeups, 1);
    return !atomic_load(&bg.stopping);
}

/* Defragment one cache in budgeted steps. */
static bool bg_work_cache(struct slab_cache *s, const struct slab_defrag_policy *p)
{
    struct defrag_result res = { 0 };
    do {
        uint64_t w0 = defrag_now_ns(), c0 = thread_cpu_ns();
        /* A quarter of the step for freezing and callbacks: the rest is headroom
         * for ending the pass (batched releases) and for the last slab. */
        struct defrag_request rq = { .fill_percent = p->slab_fill_percent, .trylock = true,
                                     .deadline_ns = w0 + (uint64_t)p->max_step_us * 250u,
                                     .max_slabs = 256 };
        long rc = defrag_pass(s, &rq, &res);
        uint64_t step = defrag_now_ns() - w0, cpu = thread_cpu_ns() - c0;
        atomic_fetch_add(&bg.steps, 1);
        atomic_fetch_add(&bg.cpu_ns, cpu);
        if (cpu > atomic_load(&bg.longest_step_ns))
            atomic_store(&bg.longest_step_ns, cpu);
        if (step > atomic_load(&bg.longest_step_wall_ns))
            atomic_store(&bg.longest_step_wall_ns, step);
        if (rc > 0)
            atomic_fetch_add(&bg.bytes, (uint64_t)rc);
        defrag_update_backoff(s, &res);
        uint64_t sleep_ns = cpu * (100u - p->cpu_budget_percent) / p->cpu_budget_percent;
        if (!bg_wait((unsigned)(sleep_ns / 1000000u) + (sleep_ns % 1000000u ? 1 : 0), false))
            return false;
    } while (res.more);
    return true;
}

static void *bg_main(void *arg)
{
    const struct slab_defrag_policy *p = &bg.policy;
    while (bg_wait(p->interval_ms, p->use_psi)) {
        atomic_fetch_add(&bg.rounds, 1);
        struct slab_cache **v;
        size_t n = cache_pin_all(&v);
        bool go_on = true;
        for (size_t i = 0; i < n && go_on; i++)
            if (worth_a_pass(v[i], p))
                go_on = bg_work_cache(v[i], p);
        cache_unpin_all(v, n);
    }
    return NULL;
}

static void arm_psi(void)
{
    bg.psi_fd = open("/proc/pressure/memory", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (bg.psi_fd < 0)
        return;
    static const char trig[] = "some 100000 1000000"; /* 100 ms stalled in any 1 s */
    if (write(bg.psi_fd, trig, sizeof trig) < 0) {
        close(bg.psi_fd);
        bg.psi_fd = -1;
    }
}

static int fill_policy(struct slab_defrag_policy *out, const struct slab_defrag_policy *in)
{
    struct slab_defrag_policy d = { 100, 12, 256 * 1024, 30, 5, 1000, 0 };
    if (in) {
        if (in->interval_ms) d.interval_ms = in->interval_ms;
        if (in->frag_percent) d.frag_percent = in->frag_percent;
        if (in->min_waste_bytes) d.min_waste_bytes = in->min_waste_bytes;
        if (in->slab_fill_percent) d.slab_fill_percent = in->slab_fill_percent;
        if (in->cpu_budget_percent) d.cpu_budget_percent = in->cpu_budget_percent;
        if (in->max_step_us) d.max_step_us = in->max_step_us;
        d.use_psi = in->use_psi;
    }
    if (d.cpu_budget_percent > 100 || d.frag_percent > 100 || d.slab_fill_percent > 100 ||
        d.max_step_us < 10)
        return -EINVAL;
    *out = d;
    return 0;
}

int slab_defrag_start(const struct slab_defrag_policy *policy)
{
    struct slab_defrag_policy p;
    if (fill_policy(&p, policy) != 0)
        return errno = EINVAL, -EINVAL;
    pthread_mutex_lock(&bg_lock);
    int rc = 0;
    if (bg.running) {
        rc = -EALREADY;
    } else if (pipe2(bg.stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = -errno;
    } else {
        bg.policy = p;
        atomic_store(&bg.stopping, false);
        atomic_store(&bg.rounds, 0);
        atomic_store(&bg.steps, 0);
        atomic_store(&bg.cpu_ns, 0);
        atomic_store(&bg.longest_step_ns, 0);
        atomic_store(&bg.longest_step_wall_ns, 0);
        atomic_store(&bg.bytes, 0);
        atomic_store(&bg.psi_wakeups, 0);
        bg.psi_fd = -1;
        if (p.use_psi)
            arm_psi();
        bg.start_ns = defrag_now_ns();
        rc = -pthread_create(&bg.thread, NULL, bg_main, NULL);
        if (rc == 0)
            bg.running = true;
    }
    pthread_mutex_unlock(&bg_lock);
    if (rc)
        errno = -rc;
    return rc;
}

void slab_defrag_stop(void)
{
    pthread_mutex_lock(&bg_lock);
    bool running = bg.running;
    bg.running = false;
    pthread_mutex_unlock(&bg_lock);
    if (!running)
        return;
    atomic_store(&bg.stopping, true);
    char c = 1;
    if (write(bg.stop_pipe[1], &c, 1) < 0) { /* the flag alone stops it at the next wake */ }
    pthread_join(bg.thread, NULL);
    close(bg.stop_pipe[0]);
    close(bg.stop_pipe[1]);
    if (bg.psi_fd >= 0)
        close(bg.psi_fd);
    bg.psi_fd = -1;
}

int slab_defrag_get_status(struct slab_defrag_status *out)
{
    if (!out)
        return errno = EINVAL, -EINVAL;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&bg_lock);
    out->running = bg.running;
    out->psi_active = bg.running && bg.psi_fd >= 0;
    out->wall_ns = bg.start_ns ? defrag_now_ns() - bg.start_ns : 0;
    pthread_mutex_unlock(&bg_lock);
    out->rounds = atomic_load(&bg.rounds);
    out->steps = atomic_load(&bg.steps);
    out->cpu_ns = atomic_load(&bg.cpu_ns);
    out->longest_step_ns = atomic_load(&bg.longest_step_ns);
    out->longest_step_wall_ns = atomic_load(&bg.longest_step_wall_ns);
    out->bytes_released = atomic_load(&bg.bytes);
    out->psi_wakeups = atomic_load(&bg.psi_wakeups);
    return 0;
}

/* ---- fork ------------------------------------------------------------------------ */

/* Before fork (FORK_ORDER_DEFRAG): pin every live cache and take its defrag_lock
 * (so no pass is half done), then cache_list_lock and bg_lock.  The defrag
 * locks are taken without cache_list_lock held, because a pass's callbacks may
 * create or look up caches; a cache created meanwhile (generation changed)
 * means going again.  Held until the parent/child hook. */
static struct {
    struct slab_cache **v;
    size_t n;
} forking;

static void fork_unlock_defrag(void)
{
    for (size_t i = forking.n; i-- > 0;)
        pthread_mutex_unlock(&forking.v[i]->defrag_lock);
}

static void fork_prepare(void)
{
    for (;;) {
        pthread_mutex_lock(&cache_list_lock);
        unsigned long gen = cache_list_generation();
        pthread_mutex_unlock(&cache_list_lock);
        forking.n = cache_pin_all(&forking.v);
        for (size_t i = 0; i < forking.n; i++)
            pthread_mutex_lock(&forking.v[i]->defrag_lock);
        pthread_mutex_lock(&cache_list_lock);
        if (cache_list_generation() == gen)
            break;
        pthread_mutex_unlock(&cache_list_lock);
        fork_unlock_defrag();
        cache_unpin_all(forking.v, forking.n);
    }
    pthread_mutex_lock(&bg_lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&bg_lock);
    pthread_mutex_unlock(&cache_list_lock);
    fork_unlock_defrag();
    cache_unpin_all(forking.v, forking.n);
    forking.v = NULL;
}

/* The child has one thread: every pin belonged to a thread that is not there
 * (or to fork_prepare), and the background defragmenter is not running. */
static void fork_child(void)
{
    for (struct slab_cache *s = cache_list_head(); s; s = s->next_cache)
        s->pins = 0;
    pthread_cond_init(&pins_cond, NULL);
    if (bg.running) {
        close(bg.stop_pipe[0]);
        close(bg.stop_pipe[1]);
        if (bg.psi_fd >= 0)
            close(bg.psi_fd);
        bg.stop_pipe[0] = bg.stop_pipe[1] = bg.psi_fd = -1;
        bg.running = false;
    }
    pthread_mutex_unlock(&bg_lock);
    pthread_mutex_unlock(&cache_list_lock);
    fork_unlock_defrag();
    if (forking.v)
        meta_free(forking.v, SLAB_MAX_CACHES * sizeof *forking.v);
    forking.v = NULL;
}

__attribute__((constructor)) static void fork_register(void)
{
    slab_fork_register(fork_prepare, fork_parent, fork_child, FORK_ORDER_DEFRAG);
}
