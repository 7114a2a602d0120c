/*
 * slab/debug.c — debug checks for caches created with debug flags or named in
 * SLABDEFRAG_DEBUG (see debug.h for the letters).
 *
 * Slot layout of a debug cache (stride covers all of it):
 *   [object: size][red zone: 8 x 0xbb (Z)][free pointer: 8][state: 8][alloc site, free site (U)]
 * state is STATE_FREE or STATE_ALLOCATED; anything else means the metadata was
 * overwritten.  Poison (P): a free object holds 0x6b bytes with 0xa5 last (as
 * SLUB); slab_alloc checks the pattern.  A ctor cache is never poisoned (its
 * objects must keep their constructed state), nor a cache with defrag callbacks
 * (their get/move read free objects, e.g. a refcount).  Every report names the cache, the
 * object and what was wrong, with the call sites when U is on, then aborts.
 * The metadata is owned like the free pointer: whoever owns the slot's slab (or
 * the object's user while allocated) — no locking of its own.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"

#define POISON_FREE 0x6b
#define POISON_END 0xa5
#define RED_ZONE_BYTE 0xbb
#define RED_ZONE_SIZE 8
#define STATE_FREE 0xf7eef7eef7eef7eeull
#define STATE_ALLOCATED 0xa110ca7eda110ca7ull

struct debug_meta {
    uint64_t state;
    void *alloc_site, *free_site;
};

static unsigned letters_to_flags(const char *p, const char *end)
{
    unsigned f = 0;
    for (; p < end; p++) {
        switch (*p) {
        case 'F': case 'f': f |= SLAB_CONSISTENCY; break;
        case 'Z': case 'z': f |= SLAB_RED_ZONE; break;
        case 'P': case 'p': f |= SLAB_POISON; break;
        case 'U': case 'u': f |= SLAB_STORE_USER; break;
        default: break;
        }
    }
    return f;
}

static bool name_listed(const char *list, const char *name)
{
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == strlen(name) && strncmp(p, name, n) == 0)
            return true;
        p += n + (e ? 1 : 0);
    }
    return false;
}

unsigned debug_flags_from_env(const char *cache_name, unsigned flags)
{
    const char *env = secure_getenv("SLABDEFRAG_DEBUG");
    if (!env || !*env)
        return flags;
    const char *comma = strchr(env, ',');
    const char *letters_end = comma ? comma : env + strlen(env);
    unsigned dbg = letters_end == env ? SLAB_DEBUG_FLAGS : letters_to_flags(env, letters_end);
    if (comma && !name_listed(comma + 1, cache_name))
        return flags;
    return flags | dbg;
}

size_t debug_slot_extra(unsigned flags) { return (flags & SLAB_RED_ZONE) ? RED_ZONE_SIZE : 0; }

size_t debug_meta_size(unsigned flags)
{
    return (flags & SLAB_DEBUG_FLAGS) ? sizeof(struct debug_meta) : 0;
}

static struct debug_meta *meta_of(const struct slab_cache *s, void *obj)
{
    return (struct debug_meta *)((char *)obj + s->fp_offset + sizeof(void *));
}

static void describe_site(char *buf, size_t len, void *site)
{
    Dl_info info;
    if (!site)
        snprintf(buf, len, "(unknown)");
    else if (dladdr(site, &info) && info.dli_sname)
        snprintf(buf, len, "%s+%#lx (%p)", info.dli_sname,
                 (unsigned long)((char *)site - (char *)info.dli_saddr), site);
    else
        snprintf(buf, len, "%p", site);
}

static _Noreturn void debug_report(struct slab_cache *s, void *obj, const char *op, const char *what)
{
    struct debug_meta *m = meta_of(s, obj);
    fprintf(stderr, "slabdefrag: cache '%s': %s(%p): %s\n", s->name, op, obj, what);
    if (s->flags & SLAB_STORE_USER) {
        char a[160], f[160];
        describe_site(a, sizeof a, m->alloc_site);
        describe_site(f, sizeof f, m->free_site);
        fprintf(stderr, "slabdefrag:   object %p last allocated at %s, last freed at %s\n", obj, a, f);
    }
    fflush(stderr);
    abort();
}

/* Not a ctor cache (constructed state is kept across free/alloc), nor a cache
 * with defrag callbacks: their get/move may read a free object (get-unless-zero
 * on a refcount), and poison would look like a live reference.  Callbacks are
 * set before the first slab exists (defrag_api.c), so an object is poisoned
 * either always or never. */
static bool poisonable(const struct slab_cache *s)
{
    return (s->flags & SLAB_POISON) && !s->ctor && !cache_has_callbacks(s);
}

static void poison(struct slab_cache *s, void *obj)
{
    memset(obj, POISON_FREE, s->size);
    ((unsigned char *)obj)[s->size - 1] = POISON_END;
}

static bool poison_intact(const struct slab_cache *s, const void *obj)
{
    const unsigned char *p = obj;
    for (size_t i = 0; i + 1 < s->size; i++)
        if (p[i] != POISON_FREE)
            return false;
    return p[s->size - 1] == POISON_END;
}

static bool red_zone_intact(const struct slab_cache *s, const void *obj)
{
    if (!(s->flags & SLAB_RED_ZONE))
        return true;
    const unsigned char *rz = (const unsigned char *)obj + s->size;
    for (unsigned i = 0; i < RED_ZONE_SIZE; i++)
        if (rz[i] != RED_ZONE_BYTE)
            return false;
    return true;
}

void debug_init_object(struct slab_cache *s, void *obj)
{
    struct debug_meta *m = meta_of(s, obj);
    m->state = STATE_FREE;
    m->alloc_site = m->free_site = NULL;
    if (s->flags & SLAB_RED_ZONE)
        memset((char *)obj + s->size, RED_ZONE_BYTE, RED_ZONE_SIZE);
    if (poisonable(s))
        poison(s, obj);
}

void debug_on_alloc(struct slab_cache *s, void *obj, void *caller)
{
    struct debug_meta *m = meta_of(s, obj);
    if (m->state != STATE_FREE)
        debug_report(s, obj, "slab_alloc", "object on the free list is not free (metadata overwritten)");
    if (!red_zone_intact(s, obj))
        debug_report(s, obj, "slab_alloc", "red zone overwritten (write past the end of the object)");
    if (poisonable(s) && !poison_intact(s, obj))
        debug_report(s, obj, "slab_alloc", "poison overwritten (write after free)");
    m->state = STATE_ALLOCATED;
    if (s->flags & SLAB_STORE_USER)
        m->alloc_site = caller;
}

void debug_on_free(struct slab_cache *s, struct slab *sl, void *obj, void *caller)
{
    (void)sl;
    struct debug_meta *m = meta_of(s, obj);
    if (m->state == STATE_FREE)
        debug_report(s, obj, "slab_free", "double free (object already free)");
    if (m->state != STATE_ALLOCATED)
        debug_report(s, obj, "slab_free", "object metadata overwritten (overflow from the previous object?)");
    if (!red_zone_intact(s, obj))
        debug_report(s, obj, "slab_free", "red zone overwritten (write past the end of the object)");
    m->state = STATE_FREE;
    if (s->flags & SLAB_STORE_USER)
        m->free_site = caller;
    if (poisonable(s))
        poison(s, obj);
}
