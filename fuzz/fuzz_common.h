/*
 * fuzz/fuzz_common.h — what the fuzz targets (fuzz/<target>.c) share: the
 * failure macro and the input reader.
 *
 * FZ_CHECK(cond, fmt, ...)  a model mismatch: print "<FZ_TARGET>: file:line:
 *                           CHECK(cond) failed: <message>" and abort() (a crash
 *                           is what libFuzzer and the corpus replay report).
 *                           Define FZ_TARGET (the target's name, a string)
 *                           before including this header.
 * struct input, byte()      the fuzzer's bytes, consumed from the front; past
 *                           the end every byte reads as 0.
 * FZ_NOCOV                  on a function: no coverage instrumentation (edge
 *                           counters, comparison tracing).  For the model's
 *                           checkers (pattern walks, searches): their loops
 *                           tell the fuzzer nothing about the library, the
 *                           iteration-count features they produce only grow
 *                           the corpus, and their per-comparison callbacks
 *                           took about a seventh of slab_ops's time.
 * FZ_BULK                   FZ_NOCOV and no AddressSanitizer checks, for the
 *                           loops that write or compare whole objects and
 *                           blocks: they touch only memory the library handed
 *                           out (slab and page memory from mmap, which ASan
 *                           does not track: every byte reads as addressable)
 *                           and the target's own fixed buffers, so the checks
 *                           could never fire; with them a word-by-word block
 *                           compare cost twice memcmp through the interceptor.
 */
#ifndef SLABDEFRAG_FUZZ_COMMON_H
#define SLABDEFRAG_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef FZ_TARGET
#error "define FZ_TARGET (the fuzz target's name) before including fuzz_common.h"
#endif

#define FZ_CHECK(cond, ...)                                                                  \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, FZ_TARGET ": %s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

#if defined(__clang__)
#define FZ_NOCOV __attribute__((no_sanitize("coverage")))
#define FZ_BULK __attribute__((no_sanitize("coverage", "address")))
#else
#define FZ_NOCOV
#define FZ_BULK
#endif

struct input {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t byte(struct input *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

#endif
