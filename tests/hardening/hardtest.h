/*
 * hardtest.h: helpers shared by the hardening tests (header only, so the
 * per-directory glob of *.c files does not turn it into a test program).
 *
 * Each test provokes one class of misuse in a forked child and checks that the
 * child dies by a signal (abort) with the expected message on stderr.  The
 * allocator's slab memory is mmap'ed by the library, not by malloc, so ASan does
 * not watch it: under the sanitizers it is our own checks that fire, exactly as
 * in the plain build (the tests pass in all three).
 *
 * run_child(), expect_die(), expect_survive() and child_stderr (what the last
 * child wrote) are in tests/util/testutil.h.
 *
 * report_site()   from a "last allocated at X, last freed at Y" line, the
 *                 address of X (which = 0) or Y (which = 1), or 0.
 * ptr_prefix()    "slabdefrag: cache '<name>': <op>(<ptr>): ", the start of
 *                 every report about one object.
 * NOINLINE        for helper functions whose call sites a report must name.
 * alloc_one(), free_one()  slab_alloc/slab_free from a function of their own,
 *                 so site_in() can tell that a report names their call sites.
 * free_on_thread() free_one() on a new thread, waited for: a remote free (the
 *                 object's slab belongs to the calling thread's heap).
 * ovf_*           the body of overflow_by_1.c and overflow_by_8.c (one test
 *                 program per overflow size): four red-zoned caches, each
 *                 checked by ovf_check() for an in-bounds control, an overflow
 *                 caught by slab_free and one caught by the next slab_alloc.
 */
#ifndef SLABDEFRAG_TESTS_HARDTEST_H
#define SLABDEFRAG_TESTS_HARDTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabdefrag/slab.h>

#include "testutil.h"

#define NOINLINE __attribute__((noinline))

/* The asm after each call keeps it out of tail position: the return address
 * the allocator records must lie inside these functions. */
static NOINLINE __attribute__((unused)) void *alloc_one(struct slab_cache *s)
{
    void *p = slab_alloc(s);
    __asm__ volatile("" ::: "memory");
    return p;
}

static NOINLINE __attribute__((unused)) void free_one(struct slab_cache *s, void *p)
{
    slab_free(s, p);
    __asm__ volatile("" ::: "memory");
}

struct thread_free {
    struct slab_cache *s;
    void *obj;
};

static inline void *thread_free_main(void *arg)
{
    struct thread_free *f = arg;
    free_one(f->s, f->obj);
    return NULL;
}

static inline __attribute__((unused)) void free_on_thread(struct slab_cache *s, void *obj)
{
    struct thread_free f = {s, obj};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_free_main, &f) == 0, "pthread_create");
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
}

static inline const char *ptr_prefix(const char *cache, const char *op, const void *p)
{
    static char buf[4][160];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, sizeof buf[0], "slabdefrag: cache '%s': %s(%p): ", cache, op, p);
    return b;
}

/* A site is printed as "sym+0xoff (0xaddr)" or "0xaddr" or "(unknown)". */
static inline uintptr_t parse_site(const char *p, const char *end)
{
    const char *open = memchr(p, '(', (size_t)(end - p));
    if (open)
        p = open + 1;
    if (strncmp(p, "0x", 2) != 0)
        return 0;
    return (uintptr_t)strtoull(p, NULL, 16);
}

static inline uintptr_t report_site(const char *report, int which)
{
    const char *a = strstr(report, "last allocated at ");
    const char *f = a ? strstr(a, ", last freed at ") : NULL;
    if (!a || !f)
        return 0;
    if (which == 0)
        return parse_site(a + strlen("last allocated at "), f);
    const char *start = f + strlen(", last freed at ");
    const char *end = strchr(start, '\n');
    return parse_site(start, end ? end : start + strlen(start));
}

/* Is `site` (a return address) inside function fn?  Functions here are small:
 * the call site lies within a few hundred bytes after the entry. */
static inline int site_in(uintptr_t site, void (*fn)(void))
{
    uintptr_t f = (uintptr_t)fn;
    return site > f && site < f + 1024;
}

/* One write of len bytes at obj+at (optionally after freeing obj). */
struct ovf {
    struct slab_cache *s;
    unsigned char *obj;
    size_t at; /* offset of the first byte written */
    size_t len;
    int free_first; /* write after freeing, then allocate */
};

static inline void ovf_write(void *arg)
{
    struct ovf *o = arg;
    if (o->free_first)
        slab_free(o->s, o->obj);
    memset(o->obj + o->at, 0x5a, o->len);
    if (o->free_first) {
        void *again = slab_alloc(o->s);
        fprintf(stderr, "slab_alloc returned %p without a report\n", again);
        return;
    }
    slab_free(o->s, o->obj);
}

static inline void ovf_ctor(void *p)
{
    memset(p, 0x11, 24);
}

static inline void ovf_check(const char *label, struct slab_cache *s, size_t overflow_by)
{
    size_t size = slab_cache_object_size(s);
    unsigned char *obj = slab_alloc(s);
    CHECK(obj != NULL, "%s: slab_alloc: %s", label, strerror(errno));

    /* Control: the whole object is writable. */
    struct ovf ok = {s, obj, 0, size, 0};
    CHECK(expect_survive(label, ovf_write, &ok) == 0, "%s: in-bounds write reported", label);

    struct ovf bad = {s, obj, size, overflow_by, 0};
    const char *needles[] = {ptr_prefix(slab_cache_name(s), "slab_free", obj),
                             "red zone overwritten (write past the end of the object)",
                             "last allocated at", "last freed at", NULL};
    CHECK(expect_die(label, ovf_write, &bad, needles) == 0, "%s: overflow by %zu not caught",
          label, overflow_by);

    /* The same write into a free object is caught when it is handed out again
     * (it is the head of this thread's freelist right after the free). */
    struct ovf late = {s, obj, size, overflow_by, 1};
    const char *late_needles[] = {ptr_prefix(slab_cache_name(s), "slab_alloc", obj),
                                  "red zone overwritten", "last allocated at", NULL};
    CHECK(expect_die(label, ovf_write, &late, late_needles) == 0,
          "%s: overflow of a free object by %zu not caught by slab_alloc", label, overflow_by);

    slab_free(s, obj);
    CHECK(slab_cache_validate(s) == 0, "%s: validate", label);
}

/* The four red-zoned caches, named <prefix>-odd (13 bytes), <prefix>-64,
 * <prefix>-ctor (24 bytes, free pointer outside the object) and <prefix>-all
 * (40 bytes, every debug flag). */
struct ovf_caches {
    struct slab_cache *odd, *even, *ct, *all;
};

static inline void ovf_caches_create(struct ovf_caches *c, const char *prefix)
{
    const unsigned dbg = SLAB_RED_ZONE | SLAB_STORE_USER;
    char name[4][64];
    snprintf(name[0], sizeof name[0], "%s-odd", prefix);
    snprintf(name[1], sizeof name[1], "%s-64", prefix);
    snprintf(name[2], sizeof name[2], "%s-ctor", prefix);
    snprintf(name[3], sizeof name[3], "%s-all", prefix);
    c->odd = slab_cache_create(name[0], 13, 0, dbg, NULL);
    c->even = slab_cache_create(name[1], 64, 0, dbg, NULL);
    c->ct = slab_cache_create(name[2], 24, 0, dbg, ovf_ctor);
    c->all = slab_cache_create(name[3], 40, 0, dbg | SLAB_POISON | SLAB_CONSISTENCY, NULL);
    CHECK(c->odd && c->even && c->ct && c->all, "slab_cache_create: %s", strerror(errno));
}

/* Cases 1-4: an overflow by `overflow_by` bytes in each of the four caches. */
static inline void ovf_check_all(const struct ovf_caches *c, size_t overflow_by)
{
    ovf_check("1: 13-byte objects", c->odd, overflow_by);
    ovf_check("2: 64-byte objects", c->even, overflow_by);
    ovf_check("3: ctor cache", c->ct, overflow_by);
    ovf_check("4: all debug flags", c->all, overflow_by);
}

static inline void ovf_caches_destroy(struct ovf_caches *c)
{
    slab_cache_destroy(c->odd);
    slab_cache_destroy(c->even);
    slab_cache_destroy(c->ct);
    slab_cache_destroy(c->all);
}

#endif
