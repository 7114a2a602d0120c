/*
 * late_freer_recreated: a remote freer that emptied a LISTED slab, and comes
 * late to re-check it under the cache lock, finds the slab detached, released
 * and re-created for another cache — and touches nothing of it but its atomic
 * state word.  TEST_LIBRARY: slabdefrag_testing
 *
 * The interleaving, forced with the testing build's hooks:
 *   O  allocates one slab's worth of objects of cache A, frees one and exits:
 *      the slab goes to A's partial list (LISTED) with objects_per_slab - 1 live.
 *   F  frees those from another thread (remote frees).  The last one brings the
 *      remote count up to inuse, so F will re-check the slab under A's lock
 *      (cache_listed_maybe_empty); the free hook parks F just before.
 *   M  shrinks A: the settle finds the slab empty and detaches it.  Before the
 *      release (A's lock not held) a hook lets F go and waits until F's free
 *      has returned: F re-checks a detached slab.  After the release a hook
 *      lets R go and waits for it:
 *   R  allocates from cache B (same size), whose new slab is that same memory:
 *      slab_new writes its header with plain stores.
 * The threads hand over through relaxed atomics only, which create no
 * happens-before, and R takes no lock F released after its re-check: under
 * ThreadSanitizer (make test-tsan) every plain read F made of the slab header
 * (objects, list, freelist) is reported as a race with R's slab_new.  A
 * detached slab whose xfree still says LISTED (slab.c zeroes it under the
 * cache lock when it detaches the slab) makes F settle it: with that store
 * removed, TSan reports slab_new's write of `objects` against
 * slab_merge_remote's read every time.  Without TSan the test checks that the
 * interleaving happened and that A and B are intact after it.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "slabtest.h"

#include "slab/internal.h"

#define OBJ_SIZE 256

static struct slab_cache *cache_a, *cache_b;
static void **objs;
static unsigned per;
static size_t slab_size;
static struct slab *target;
static void *r_obj;
static atomic_int f_parked, f_go, f_done, f_exit, r_go, r_done, m_saw_release;

static void spin_until(atomic_int *flag)
{
    while (!atomic_load_explicit(flag, memory_order_relaxed))
        sched_yield();
}

/* The hooks act once, on the target slab of A, at their turn (`after` set and
 * `mine` not yet): set `mine`, signal `go`, wait for `until`. */
static void turn(struct slab_cache *s, struct slab *sl, atomic_int *after, atomic_int *mine,
                 atomic_int *go, atomic_int *until)
{
    if (s != cache_a || sl != target || !atomic_load_explicit(after, memory_order_relaxed) ||
        atomic_load_explicit(mine, memory_order_relaxed))
        return;
    atomic_store_explicit(mine, 1, memory_order_relaxed);
    if (go)
        atomic_store_explicit(go, 1, memory_order_relaxed);
    spin_until(until);
}

static atomic_int always = 1;

static void park_freer(struct slab_cache *s, struct slab *sl, void *arg)
{
    (void)arg;
    turn(s, sl, &always, &f_parked, NULL, &f_go);
}

static void before_release(struct slab_cache *s, struct slab *sl, void *arg)
{
    (void)arg;
    turn(s, sl, &f_parked, &m_saw_release, &f_go, &f_done);
}

static void after_release(struct slab_cache *s, struct slab *sl, void *arg)
{
    (void)arg;
    turn(s, sl, &m_saw_release, &r_go, &r_go, &r_done);
}

static const struct slab_free_test_hooks free_hooks = { .before_empty_check = park_freer };
static const struct slab_release_test_hooks release_hooks = { .before_release = before_release,
                                                                .after_release = after_release };

static void *owner(void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < per; i++) {
        objs[i] = slab_alloc(cache_a);
        CHECK(objs[i], "alloc %u", i);
        memset(objs[i], 0xa5, OBJ_SIZE);
    }
    for (unsigned i = 1; i < per; i++)
        CHECK(slab_base(objs[i], slab_size) == slab_base(objs[0], slab_size),
              "object %u outside the first slab", i);
    slab_free(cache_a, objs[0]); /* one free object: listed, not FULL, at exit */
    return NULL;
}

static void *recreator(void *arg)
{
    (void)arg;
    spin_until(&r_go);
    r_obj = slab_alloc(cache_b);
    if (r_obj)
        memset(r_obj, 0x5a, OBJ_SIZE);
    atomic_store_explicit(&r_done, 1, memory_order_relaxed);
    return NULL;
}

static void *freer(void *arg)
{
    (void)arg;
    for (unsigned i = 1; i < per; i++)
        slab_free(cache_a, objs[i]);
    atomic_store_explicit(&f_done, 1, memory_order_relaxed);
    /* Stay: this thread's exit would hand its heap back under locks that R
     * takes next, ordering F's reads before R's writes for TSan. */
    spin_until(&f_exit);
    return NULL;
}

int main(void)
{
    CHECK(slab_set_purge_delay(PURGE_DELAY_LONG_MS) == 0, "purge delay");
    cache_a = slab_cache_create("late-a", OBJ_SIZE, 0, 0, NULL);
    CHECK(cache_a, "create A");
    struct slab_cache_stats st = cache_stats(cache_a);
    per = (unsigned)st.objects_per_slab;
    slab_size = st.slab_size;
    objs = calloc(per, sizeof *objs);
    CHECK(objs && per > 2, "objects_per_slab %u", per);

    pthread_t o, f;
    CHECK(pthread_create(&o, NULL, owner, NULL) == 0 && pthread_join(o, NULL) == 0, "owner");
    target = (struct slab *)slab_base(objs[1], slab_size);
    st = cache_stats(cache_a);
    CHECK(st.slabs == 1 && st.objects_active == per - 1, "after the owner: %llu slabs, %llu live",
          (unsigned long long)st.slabs, (unsigned long long)st.objects_active);

    cache_b = slab_cache_create("late-b", OBJ_SIZE, 0, 0, NULL);
    CHECK(cache_b, "create B");
    slab_free_set_test_hooks(&free_hooks);
    slab_release_set_test_hooks(&release_hooks);
    pthread_t r;
    CHECK(pthread_create(&r, NULL, recreator, NULL) == 0, "recreator");
    CHECK(pthread_create(&f, NULL, freer, NULL) == 0, "freer");
    spin_until(&f_parked);
    long rel = slab_cache_shrink(cache_a);
    CHECK(pthread_join(r, NULL) == 0, "join recreator");
    atomic_store_explicit(&f_exit, 1, memory_order_relaxed);
    CHECK(pthread_join(f, NULL) == 0, "join freer");
    slab_free_set_test_hooks(NULL);
    slab_release_set_test_hooks(NULL);
    CHECK(atomic_load(&m_saw_release) && atomic_load(&r_done),
          "the shrink did not release the freer's slab");
    CHECK(rel == (long)slab_size, "shrink returned %ld, one slab is %zu", rel, slab_size);
    CHECK(r_obj, "alloc from B");
    CHECK(slab_base(r_obj, slab_size) == (uintptr_t)target,
          "B's new slab is not the released one (%p vs %p): interleaving not forced",
          (void *)slab_base(r_obj, slab_size), (void *)target);
    slab_free(cache_b, r_obj);

    st = cache_stats(cache_a);
    CHECK(st.slabs == 0 && st.objects_active == 0 && st.frees == st.allocs,
          "A after the late free: %llu slabs, %llu live", (unsigned long long)st.slabs,
          (unsigned long long)st.objects_active);
    st = cache_stats(cache_b);
    CHECK(st.slabs == 1 && st.objects_active == 0, "B: %llu slabs, %llu live",
          (unsigned long long)st.slabs, (unsigned long long)st.objects_active);
    slab_cache_destroy(cache_b);
    slab_cache_destroy(cache_a);
    free(objs);
    printf("late_freer_recreated: ok (slab %p re-created for B while the freer re-checked it)\n",
           (void *)target);
    return 0;
}
