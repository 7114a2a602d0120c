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
