/*
 * slab/debug.c — debug checks for caches created with debug flags or named in
 * SLABDEFRAG_DEBUG (see debug.h for the letters).
 *
 * Slot layout of a debug cache (stride covers all of it):
 *   [object: size bytes][red zone: 8 bytes of 0xbb (Z)][free pointer (8)]
 * Poison (P): a free object is filled with 0x6b and its last byte 0xa5 (as SLUB);
 * slab_alloc checks the pattern and reports a write after free.  A ctor cache is
 * never poisoned (its objects must keep their constructed state).
 * This first version implements P and Z; U and F are accepted and imply the cheap
 * always-on checks only (issue 6 extends them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"

#define POISON_FREE 0x6b
#define POISON_END  0xa5
#define RED_ZONE_BYTE 0xbb
#define RED_ZONE_SIZE 8

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

unsigned debug_flags_from_env(const char *cache_name, unsigned flags)
{
    const char *env = getenv("SLABDEFRAG_DEBUG");
    if (!env || !*env)
        return flags;
    const char *comma = strchr(env, ',');
    const char *letters_end = comma ? comma : env + strlen(env);
    unsigned dbg = letters_to_flags(env, letters_end);
    if (letters_end == env)
        dbg = SLAB_DEBUG_FLAGS;
    if (!comma)
        return flags | dbg;
    for (const char *p = comma + 1; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == strlen(cache_name) && strncmp(p, cache_name, n) == 0)
            return flags | dbg;
        p += n + (e ? 1 : 0);
    }
    return flags;
}

size_t debug_slot_extra(unsigned flags)
{
    return (flags & SLAB_RED_ZONE) ? RED_ZONE_SIZE : 0;
}

static void debug_report(struct slab_cache *s, void *obj, const char *what)
{
    fprintf(stderr, "slabdefrag: cache '%s': object %p: %s\n", s->name, obj, what);
    fflush(stderr);
    abort();
}

static bool poisonable(const struct slab_cache *s)
{
    return (s->flags & SLAB_POISON) && !s->ctor;
}

static void check_red_zone(struct slab_cache *s, void *obj)
{
    const unsigned char *rz = (const unsigned char *)obj + s->size;
    for (unsigned i = 0; i < RED_ZONE_SIZE; i++)
        if (rz[i] != RED_ZONE_BYTE)
            debug_report(s, obj, "red zone overwritten (write past the end of the object)");
}

void debug_init_object(struct slab_cache *s, void *obj)
{
    if (s->flags & SLAB_RED_ZONE)
        memset((char *)obj + s->size, RED_ZONE_BYTE, RED_ZONE_SIZE);
    if (poisonable(s)) {
        memset(obj, POISON_FREE, s->size);
        ((unsigned char *)obj)[s->size - 1] = POISON_END;
    }
}

void debug_on_alloc(struct slab_cache *s, void *obj)
{
    if (s->flags & SLAB_RED_ZONE)
        check_red_zone(s, obj);
    if (poisonable(s)) {
        const unsigned char *p = obj;
        for (size_t i = 0; i + 1 < s->size; i++)
            if (p[i] != POISON_FREE)
                debug_report(s, obj, "poison overwritten (write after free)");
        if (p[s->size - 1] != POISON_END)
            debug_report(s, obj, "poison overwritten (write after free)");
    }
}

void debug_on_free(struct slab_cache *s, struct slab *sl, void *obj)
{
    (void)sl;
    if (s->flags & SLAB_RED_ZONE)
        check_red_zone(s, obj);
    if (poisonable(s)) {
        memset(obj, POISON_FREE, s->size);
        ((unsigned char *)obj)[s->size - 1] = POISON_END;
    }
}
