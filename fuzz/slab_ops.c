/*
 * fuzz/slab_ops.c — libFuzzer target: sequences of slab operations checked
 * against a simple reference model.
 *
 * Model.  Up to NCACHE caches, each with the list of its live objects (at most
 * NOBJ) and a 32-bit tag per object.  Every allocated object is filled with a
 * pattern derived from its tag (ctor caches: the first 8 bytes keep the ctor's
 * magic, the pattern fills the rest), so a lost, duplicated, overlapping or
 * corrupted object shows up as a pattern mismatch (objects over 1 KiB are
 * written and checked at both ends and every 512th byte, see fill() and
 * verify()).  Only valid operations are
 * issued: the allocator must never abort; any abort or model mismatch is a crash.
 *
 * Input format: a sequence of operations, each one opcode byte and its argument
 * bytes (missing bytes read as 0).  `c` is a cache slot (byte % NCACHE).
 *   0 CREATE   c, size_lo, size_hi, flags   destroy slot c if used, then create:
 *                size = 1 + (size_hi<<8 | size_lo) % 512, or % 32768 if flags
 *                bit 7 is set; flags bit 0 SLAB_HWCACHE_ALIGN, 1 SLAB_RANDOM_ORDER,
 *                2 SLAB_NO_RESERVE, 3 ctor, 4-5 defrag protocol (1 move, 2
 *                get/kick, else none), 6 all debug flags (F|Z|P|U)
 *   1 DESTROY  c                            free every live object, destroy
 *   2 ALLOC    c, n                         allocate 1 + n % 32 objects
 *   3 FREE     c, i, n                      free 1 + n % 32 objects from index i
 *   4 SPARSE   c, n, k                      allocate 1 + n % 128, free all but
 *                                           every (2 + k % 8)-th: fragmentation
 *   5 DEFRAG   c, fill, seed                slab_cache_defrag(fill % 101); the
 *                                           callbacks answer from a PRNG seeded
 *                                           by `seed`
 *   6 SHRINK   c, seed                      slab_cache_shrink, then exact stats
 *   7 RECLAIM  seed, amount                 slab_reclaim(amount ? amount*4096 :
 *                                           SIZE_MAX)
 *   8 CHECK    c                            every object's pattern; validate
 *   9 REWRITE  c, i                         give object i a new tag
 * ALLOC and SPARSE allocate at most OP_BYTES (512 KiB) of objects per op (at
 * least one object), and a cache's live objects stay within NOBJ and
 * LIVE_BYTES (4 MiB): a SPARSE of 128 objects of 32 KiB touched 4 MiB of fresh
 * slab pages, and objects over 4 KiB took three quarters of the target's time
 * (mostly those page faults).
 * Large objects still fill several slabs (8 objects of 32 KiB per 256 KiB slab).
 * After every op the touched cache must validate.  At the end every live object
 * is checked and freed, and the stats must show allocs == frees, no active object.
 * The emptied caches are kept for the next input (park(): a CREATE of the same
 * slot and parameters reuses its cache), so an input's behaviour may depend
 * on the inputs run before it.
 *
 * Callbacks.  move(old, new): old must be a live object of the model with an
 * intact pattern, new a fresh (constructed) object; the answer is random: YES
 * copies and re-points the model, DONT_NEED drops old from the model, NO / LATER
 * / DONT_KNOW change nothing.  get/kick: every listed object must be live; kick
 * leaves, frees, or relocates (allocate, copy, free) each at random.
 *
 * Built without libFuzzer (SLABDEFRAG_FUZZ off) this file links with
 * replay_main.c, and ctest replays the committed corpus as a regression test.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slabdefrag/slab.h>

#define FZ_TARGET "slab_ops"
#include "fuzz_common.h"

#define NCACHE 3
#define NOBJ 512
#define OP_BYTES (512u << 10)
#define LIVE_BYTES ((size_t)4 << 20)
#define CTOR_MAGIC 0xc7012c7012c7012cull

struct mcache {
    struct slab_cache *s;
    size_t size;
    unsigned flags;
    int ctor;
    int proto; /* 0 none, 1 move, 2 get/kick */
    unsigned n;
    void *obj[NOBJ];
    uint32_t tag[NOBJ];
    uint64_t rng;
};

static struct mcache caches[NCACHE];
static uint32_t next_tag;
static int in_callback;

static uint64_t rnd(struct mcache *m)
{
    uint64_t x = m->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return m->rng = x;
}

static void seed(struct mcache *m, uint8_t b)
{
    m->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)b * 0x100000001b3ull);
}

static void ctor(void *p)
{
    uint64_t v = CTOR_MAGIC;
    memcpy(p, &v, sizeof v);
}

/* Object contents: 8-byte words derived from (tag, word index); a ctor cache's
 * word 0 keeps the ctor's magic.  Objects are at least pointer-aligned. */
static size_t first_word(const struct mcache *m) { return m->ctor ? 1 : 0; }

FZ_BULK static uint64_t pword(uint32_t tag, size_t k)
{
    uint64_t x = (tag + 1ull) * 0x9e3779b97f4a7c15ull ^ (k + 1ull) * 0xff51afd7ed558ccdull;
    return x ^ (x >> 29);
}

/* The pattern words fill() writes and verify() checks: all of a small object;
 * both ends of a large one (an overlapping object of the same size always
 * covers one of them) and every 64th word.  Filling 32 KiB objects whole cost
 * more than everything else an input does. */
FZ_BULK static void pattern_words(struct mcache *m, unsigned char *p, uint32_t tag, bool write)
{
    size_t words = (m->size + 7) / 8;
    for (size_t k = first_word(m); k < words; k++) {
        if (words > 128 && k >= 64 && k < words - 64 && k % 64) {
            k = (k | 63) < words - 65 ? (k | 63) : words - 65; /* to the next one */
            continue;
        }
        /* Whole words are one load or store and the last partial word goes
         * byte by byte: a memcpy or memcmp of a variable length is a call
         * into the sanitizers' interceptors, which cost more than the check. */
        uint64_t w = pword(tag, k), got = 0;
        size_t len = m->size - 8 * k < 8 ? m->size - 8 * k : 8;
        unsigned char *q = p + 8 * k;
        if (len == 8) {
            if (write)
                memcpy(q, &w, 8);
            else
                memcpy(&got, q, 8);
        } else {
            unsigned char wb[8], gb[8] = {0};
            memcpy(wb, &w, 8);
            for (size_t b = 0; b < len; b++) {
                if (write)
                    q[b] = wb[b];
                else
                    gb[b] = q[b];
            }
            memset(wb + len, 0, 8 - len);
            memcpy(&w, wb, 8);
            memcpy(&got, gb, 8);
        }
        if (write)
            continue;
        FZ_CHECK(got == w, "cache %s: object %p (tag %u) bytes %zu..%zu corrupted",
                 slab_cache_name(m->s), (const void *)p, tag, 8 * k, 8 * k + len - 1);
    }
}

FZ_NOCOV static void fill(struct mcache *m, void *obj, uint32_t tag)
{
    pattern_words(m, obj, tag, true);
}

FZ_NOCOV static void verify(struct mcache *m, const void *obj, uint32_t tag)
{
    if (m->ctor) {
        uint64_t v;
        memcpy(&v, obj, sizeof v);
        FZ_CHECK(v == CTOR_MAGIC, "cache %s: object %p lost its constructed state",
                 slab_cache_name(m->s), obj);
    }
    pattern_words(m, (unsigned char *)obj, tag, false); /* only reads */
}

FZ_NOCOV static int find(const struct mcache *m, const void *obj)
{
    for (unsigned i = 0; i < m->n; i++)
        if (m->obj[i] == obj)
            return (int)i;
    return -1;
}

static void model_remove(struct mcache *m, unsigned i)
{
    m->n--;
    m->obj[i] = m->obj[m->n];
    m->tag[i] = m->tag[m->n];
}

/* A fresh object from the allocator: not live in any cache of the model. */
FZ_NOCOV static void check_fresh(struct mcache *m, void *obj)
{
    for (unsigned c = 0; c < NCACHE; c++)
        if (caches[c].s)
            FZ_CHECK(find(&caches[c], obj) < 0, "cache %s handed out live object %p",
                     slab_cache_name(m->s), obj);
    if (m->ctor) {
        uint64_t v;
        memcpy(&v, obj, sizeof v);
        FZ_CHECK(v == CTOR_MAGIC, "cache %s: new object %p is not constructed",
                 slab_cache_name(m->s), obj);
    }
}

static void do_alloc(struct mcache *m, unsigned count)
{
    if ((size_t)count * m->size > OP_BYTES)
        count = OP_BYTES / m->size ? (unsigned)(OP_BYTES / m->size) : 1;
    for (unsigned k = 0; k < count && m->n < NOBJ && (m->n + 1) * m->size <= LIVE_BYTES; k++) {
        void *obj = slab_alloc(m->s);
        FZ_CHECK(obj != NULL, "slab_alloc: %s", strerror(errno));
        check_fresh(m, obj);
        m->obj[m->n] = obj;
        m->tag[m->n] = ++next_tag;
        fill(m, obj, m->tag[m->n]);
        m->n++;
    }
}

static void do_free(struct mcache *m, unsigned i)
{
    verify(m, m->obj[i], m->tag[i]);
    slab_free(m->s, m->obj[i]);
    model_remove(m, i);
}

static struct mcache *model_of(struct slab_cache *s)
{
    for (unsigned c = 0; c < NCACHE; c++)
        if (caches[c].s == s)
            return &caches[c];
    FZ_CHECK(0, "callback for unknown cache %p", (void *)s);
    return NULL;
}

static enum slab_move_result move_cb(void *old, void *new, size_t size, void *arg)
{
    struct mcache *m = arg;
    FZ_CHECK(size == m->size, "move: size %zu, cache has %zu", size, m->size);
    FZ_CHECK(in_callback == 1, "move outside a defrag trigger");
    int i = find(m, old);
    FZ_CHECK(i >= 0, "move asked about %p, which is not live", old);
    verify(m, old, m->tag[i]);
    check_fresh(m, new);
    switch (rnd(m) % 8) {
    case 0: case 1: case 2: case 3: /* mostly yes, so that slabs do empty */
        memcpy(new, old, size);
        m->obj[i] = new;
        return SLAB_MOVE_YES;
    case 4:
        model_remove(m, (unsigned)i);
        return SLAB_MOVE_DONT_NEED;
    case 5:
        return SLAB_MOVE_NO;
    case 6:
        return SLAB_MOVE_LATER;
    default:
        return SLAB_MOVE_DONT_KNOW;
    }
}

static void *get_cb(struct slab_cache *s, int nr, void **objs)
{
    struct mcache *m = model_of(s);
    FZ_CHECK(in_callback == 1, "get outside a defrag trigger");
    for (int k = 0; k < nr; k++) {
        int i = find(m, objs[k]);
        FZ_CHECK(i >= 0, "get listed %p, which is not live", objs[k]);
        verify(m, objs[k], m->tag[i]);
    }
    return m;
}

static void kick_cb(struct slab_cache *s, int nr, void **objs, void *priv)
{
    struct mcache *m = priv;
    FZ_CHECK(m == model_of(s), "kick: private data is not what get returned");
    for (int k = 0; k < nr; k++) {
        if (!objs[k])
            continue;
        int i = find(m, objs[k]);
        FZ_CHECK(i >= 0, "kick got %p, which is not live", objs[k]);
        switch (rnd(m) % 3) {
        case 0:
            break; /* keep */
        case 1:
            do_free(m, (unsigned)i);
            break;
        default: { /* relocate: a new object elsewhere, then free the old one */
            void *obj = slab_alloc(s);
            FZ_CHECK(obj != NULL, "slab_alloc in kick: %s", strerror(errno));
            check_fresh(m, obj);
            verify(m, objs[k], m->tag[i]);
            memcpy(obj, objs[k], m->size);
            slab_free(s, objs[k]);
            m->obj[i] = obj;
            break;
        }
        }
    }
}

static void validate(struct mcache *m)
{
    FZ_CHECK(slab_cache_validate(m->s) == 0, "cache %s does not validate", slab_cache_name(m->s));
}

static void check_all(struct mcache *m)
{
    for (unsigned i = 0; i < m->n; i++)
        verify(m, m->obj[i], m->tag[i]);
    validate(m);
}

/* Exact after a shrink by the only thread that uses the cache. */
static void check_stats(struct mcache *m)
{
    struct slab_cache_stats st;
    FZ_CHECK(slab_cache_get_stats(m->s, &st) == 0, "get_stats");
    FZ_CHECK(st.objects_active == m->n, "cache %s: objects_active %llu, model has %u",
             slab_cache_name(m->s), (unsigned long long)st.objects_active, m->n);
    FZ_CHECK(st.allocs - st.frees == m->n && st.allocs >= st.frees,
             "cache %s: allocs %llu frees %llu, model has %u", slab_cache_name(m->s),
             (unsigned long long)st.allocs, (unsigned long long)st.frees, m->n);
    FZ_CHECK(st.objects_total == st.slabs * st.objects_per_slab, "objects_total");
    FZ_CHECK(st.bytes_mapped == st.slabs * st.slab_size, "bytes_mapped");
    FZ_CHECK(st.objects_active <= st.objects_total, "more active than capacity");
    FZ_CHECK(st.slabs_partial + st.slabs_empty <= st.slabs, "partial + empty > slabs");
}

static void shrink(struct mcache *m)
{
    in_callback = 1;
    long r = slab_cache_shrink(m->s);
    in_callback = 0;
    FZ_CHECK(r >= 0, "slab_cache_shrink: %ld", r);
}

/* Free every live object, shrink, and check the cache is exactly empty. */
static void empty_and_check(struct mcache *m)
{
    while (m->n)
        do_free(m, m->n - 1);
    shrink(m);
    check_stats(m);
    validate(m);
}

static void destroy(struct mcache *m)
{
    if (!m->s)
        return;
    empty_and_check(m);
    slab_cache_destroy(m->s);
    m->s = NULL;
}

/* Kept across inputs: at the end of an input each slot's cache is emptied,
 * shrunk and checked (park), and the next CREATE of the same slot with the
 * same size, flags, ctor and protocol takes it back instead of creating one
 * (no create/destroy, no fresh mappings).  The slot matters: move's arg is
 * the slot's model. */
static struct parked {
    struct slab_cache *s;
    size_t size;
    unsigned flags;
    int ctor, proto;
} parked[NCACHE];

static void park(struct mcache *m)
{
    struct parked *pk = &parked[m - caches];
    if (!m->s)
        return;
    empty_and_check(m);
    if (pk->s)
        slab_cache_destroy(pk->s);
    *pk = (struct parked){ m->s, m->size, m->flags, m->ctor, m->proto };
    m->s = NULL;
}

static void create(struct mcache *m, struct input *in)
{
    destroy(m);
    unsigned lo = byte(in), hi = byte(in), fl = byte(in);
    unsigned raw = hi << 8 | lo;
    size_t size = 1 + raw % ((fl & 0x80) ? 32768u : 512u);
    unsigned flags = 0;
    if (fl & 1)
        flags |= SLAB_HWCACHE_ALIGN;
    if (fl & 2)
        flags |= SLAB_RANDOM_ORDER;
    if (fl & 4)
        flags |= SLAB_NO_RESERVE;
    if (fl & 0x40)
        flags |= SLAB_CONSISTENCY | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER;
    m->ctor = (fl & 8) != 0;
    if (m->ctor && size < 8)
        size = 8;
    m->proto = (fl >> 4) & 3;
    if (m->proto == 3)
        m->proto = 0;
    m->size = size;
    m->flags = flags;
    m->n = 0;
    seed(m, (uint8_t)raw);
    struct parked *pk = &parked[m - caches];
    if (pk->s && pk->size == size && pk->flags == flags && pk->ctor == m->ctor &&
        pk->proto == m->proto) {
        m->s = pk->s; /* empty and shrunk, its callbacks set */
        pk->s = NULL;
        return;
    }
    if (pk->s) {
        slab_cache_destroy(pk->s);
        pk->s = NULL;
    }
    char name[32];
    snprintf(name, sizeof name, "fz%u-%zu", (unsigned)(m - caches), size);
    m->s = slab_cache_create(name, size, 0, flags, m->ctor ? ctor : NULL);
    FZ_CHECK(m->s != NULL, "slab_cache_create(%zu, %#x): %s", size, flags, strerror(errno));
    if (m->proto == 1)
        FZ_CHECK(slab_cache_set_move(m->s, move_cb, m) == 0, "set_move");
    else if (m->proto == 2)
        FZ_CHECK(slab_cache_setup_defrag(m->s, get_cb, kick_cb) == 0, "setup_defrag");
}

static void run_op(struct input *in)
{
    unsigned op = byte(in) % 10;
    if (op == 7) { /* RECLAIM: all caches */
        uint8_t sd = byte(in), amount = byte(in);
        for (unsigned c = 0; c < NCACHE; c++)
            seed(&caches[c], sd);
        in_callback = 1;
        long r = slab_reclaim(amount ? (size_t)amount * 4096 : SIZE_MAX);
        in_callback = 0;
        FZ_CHECK(r >= 0, "slab_reclaim: %ld", r);
        for (unsigned c = 0; c < NCACHE; c++)
            if (caches[c].s)
                validate(&caches[c]);
        return;
    }
    struct mcache *m = &caches[byte(in) % NCACHE];
    if (op == 0) {
        create(m, in);
        return;
    }
    if (!m->s)
        return; /* the other ops need a cache: skip (their arguments are not read) */
    switch (op) {
    case 1:
        destroy(m);
        return;
    case 2:
        do_alloc(m, 1 + byte(in) % 32u);
        break;
    case 3: {
        unsigned i = byte(in), count = 1 + byte(in) % 32u;
        for (unsigned k = 0; k < count && m->n; k++)
            do_free(m, i % m->n);
        break;
    }
    case 4: {
        unsigned count = 1 + byte(in) % 128u, keep = 2 + byte(in) % 8u;
        unsigned start = m->n;
        do_alloc(m, count);
        /* Free the new objects except every keep-th, from the end so that the
         * indexes of those still to visit do not move. */
        for (unsigned i = m->n; i-- > start;)
            if ((i - start) % keep)
                do_free(m, i);
        break;
    }
    case 5: {
        unsigned fill = byte(in) % 101u;
        seed(m, byte(in));
        in_callback = 1;
        long r = slab_cache_defrag(m->s, fill);
        in_callback = 0;
        FZ_CHECK(r >= 0, "slab_cache_defrag(%u): %ld", fill, r);
        break;
    }
    case 6:
        seed(m, byte(in));
        shrink(m);
        check_stats(m);
        break;
    case 8:
        check_all(m);
        break;
    case 9:
        if (m->n) {
            unsigned i = byte(in) % m->n;
            verify(m, m->obj[i], m->tag[i]);
            m->tag[i] = ++next_tag;
            fill(m, m->obj[i], m->tag[i]);
        }
        break;
    default:
        break;
    }
    validate(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    unsigned ops = 0;
    while (in.n && ops++ < 256)
        run_op(&in);
    for (unsigned c = 0; c < NCACHE; c++) {
        if (caches[c].s)
            check_all(&caches[c]);
        park(&caches[c]);
    }
    return 0;
}
