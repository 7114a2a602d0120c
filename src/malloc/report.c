/*
 * malloc/report.c — the front end's fatal error message.
 *
 * Misuse that would corrupt memory (a pointer the front end never handed out, a
 * double free it can see) aborts with one line on stderr:
 *     slabdefrag malloc: free(0x7f...): not allocated by slabdefrag malloc
 * written with write(2) from a stack buffer: no stdio, no locale, no allocation,
 * so it works inside the allocator and with its locks held.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n > cap - at)
        n = cap - at;
    memcpy(buf + at, s, n);
    return at + n;
}

_Noreturn void mfe_report(const char *fn, const void *p, const char *what)
{
    char buf[256], hex[2 + 16 + 1];
    uintptr_t v = (uintptr_t)p;
    int i = 2 + 16;
    hex[i] = '\0';
    do {
        hex[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v && i > 2);
    hex[--i] = 'x';
    hex[--i] = '0';
    size_t at = put(buf, 0, sizeof buf, "slabdefrag malloc: ");
    at = put(buf, at, sizeof buf, fn);
    at = put(buf, at, sizeof buf, "(");
    at = put(buf, at, sizeof buf, hex + i);
    at = put(buf, at, sizeof buf, "): ");
    at = put(buf, at, sizeof buf - 1, what);
    buf[at++] = '\n';
    ssize_t rc = write(2, buf, at);
    (void)rc;
    abort();
}
