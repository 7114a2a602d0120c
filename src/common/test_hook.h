/*
 * common/test_hook.h — points inside the product code where a test forces an
 * interleaving, for every layer.
 *
 * A file that offers hooks declares a struct of function pointers plus `arg`
 * (in its layer's internal header, inside #ifdef SLABDEFRAG_TESTING) and
 * defines its pointer and setter with TEST_HOOKS_DEFINE(type, setter); a test
 * sets them with setter(&hooks) and clears them with setter(NULL).
 * TEST_HOOK(fn, args...) calls test_hooks->fn(args..., arg) if set.
 *
 * They exist only in the testing build of the library (SLABDEFRAG_TESTING:
 * the static slabdefrag_testing that only tests link).  In the shipped
 * libraries TEST_HOOK compiles to nothing, and neither the hook pointers nor
 * their setters exist (tests/library/no_testing_symbols checks with nm).
 * The pointer is loaded with seq_cst: a hook that parks a thread must not be
 * missed by the thread it is meant for.
 */
#ifndef SLABDEFRAG_COMMON_TEST_HOOK_H
#define SLABDEFRAG_COMMON_TEST_HOOK_H

#ifdef SLABDEFRAG_TESTING
#include <stdatomic.h>
#define TEST_HOOKS_DEFINE(type, setter)                                                   \
    static _Atomic(const type *) test_hooks;                                              \
    void setter(const type *hooks)                                                        \
    {                                                                                     \
        atomic_store(&test_hooks, hooks);                                                 \
    }
#define TEST_HOOK(fn, ...)                                                                \
    do {                                                                                  \
        __auto_type hk_ = atomic_load(&test_hooks);                                       \
        if (hk_ && hk_->fn)                                                               \
            hk_->fn(__VA_ARGS__, hk_->arg);                                               \
    } while (0)
#else
#define TEST_HOOKS_DEFINE(type, setter)
#define TEST_HOOK(fn, ...) ((void)0)
#endif

#endif
