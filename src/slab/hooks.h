/*
 * slab/hooks.h — what the slab core calls in the layers above it without
 * knowing them.  Lower layers never include upper ones, so the core only
 * names a table of functions here; the library's top-level wiring
 * (src/library/hooks.c), which sits above every layer, defines it.
 *
 * Why a table defined above the core rather than a slot that an upper module
 * fills from its constructor: a program linked with the static library gets
 * only the archive members it references.  slab_cache_create (cache.c) refers
 * to slab_upper_hooks, so every program that creates a cache links the wiring
 * object and, through it, the functions it names (the control endpoint's
 * autostart) — with libslabdefrag.a as with the shared library, and in
 * libslabdefrag-malloc, which contains the wiring too.  A slot filled from a
 * constructor would stay empty in a static program, because nothing would pull
 * the filler in.
 *
 * Each entry may be NULL.  The core calls them with no slab lock held.
 */
#ifndef SLABDEFRAG_SLAB_HOOKS_H
#define SLABDEFRAG_SLAB_HOOKS_H

struct slab_upper_hooks {
    /* At the start of every slab_cache_create, before its arguments are checked.
     * Must be cheap after its first call and must tolerate being re-entered from
     * inside itself on the same thread (it may allocate, and malloc may be the
     * slab front end, which creates caches). */
    void (*cache_create)(void);
};

extern const struct slab_upper_hooks slab_upper_hooks;

#endif
