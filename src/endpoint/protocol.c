/*
 * endpoint/protocol.c — the control endpoint's requests and replies: one
 * request line in, one JSON document out (the protocol is described in
 * <slabdefrag/stats.h>).
 *
 * 1. Objects.  No state.  endpoint_reply() parses a NUL-terminated copy of the
 *    line that server.c collected (at most SLAB_STATS_LINE_MAX bytes), runs
 *    the request, and returns the whole reply in malloc'd memory, so that the
 *    server sends it without holding any allocator lock.
 * 2. Requests.  info, shrink [CACHE], defrag CACHE PERCENT, version.  Blanks
 *    around words are ignored (a trailing \r too); CACHE is the rest of the
 *    line, and for defrag the last word is PERCENT.  Embedded NULs, unknown
 *    words, names of no cache, a PERCENT that is not 0..100 all get an error
 *    reply.  Cache names are never echoed, so replies need no escaping.
 * 3. Caches.  A shrink/defrag request pins the cache it names
 *    (cache_find_pinned, as slab_reclaim pins every cache it visits):
 *    slab_cache_destroy of that cache waits until the pass ends, and a cache
 *    being destroyed is "no such cache".
 * 4. Locking.  Runs on the endpoint thread under srv.serve_lock (server.c);
 *    takes only the slab layer's locks, through the slab API
 *    (endpoint/internal.h gives the order).
 * 5. Errors.  Out of memory for a reply is NULL (the server closes that
 *    connection); a failed slab call is {"error": "CALL: strerror", "errno": N}.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slabdefrag/slab.h>

#include "endpoint/internal.h"
#include "slab/defrag.h"

static char *reply_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *reply_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

char *endpoint_reply_error(const char *msg) { return reply_printf(ENDPOINT_ERROR_FMT, msg); }

static char *reply_bytes(long rc, const char *what)
{
    if (rc < 0)
        return reply_printf("{\"error\": \"%s: %s\", \"errno\": %ld}\n", what,
                            strerror((int)-rc), -rc);
    return reply_printf("{\"ok\": true, \"bytes\": %ld}\n", rc);
}

static char *reply_info(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    slab_info_write(f, 1);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* "PERCENT" as 0..100, or -1. */
static int parse_percent(const char *s)
{
    if (*s < '0' || *s > '9' || strlen(s) > 3)
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    return *end || v > 100 ? -1 : (int)v;
}

/* Run a shrink (percent < 0) or a defrag pass on the cache named `name`, pinned
 * so that a concurrent slab_cache_destroy waits for the pass to end. */
static char *run_on_cache(const char *name, int percent)
{
    struct slab_cache *s = cache_find_pinned(name);
    if (!s)
        return endpoint_reply_error("no such cache");
    char *reply = percent < 0 ? reply_bytes(slab_cache_shrink(s), "slab_cache_shrink")
                              : reply_bytes(slab_cache_defrag(s, (unsigned)percent),
                                            "slab_cache_defrag");
    cache_unpin(s);
    return reply;
}

static char *handle_shrink(char *args)
{
    if (!*args)
        return reply_bytes(slab_reclaim(SIZE_MAX), "slab_reclaim");
    return run_on_cache(args, -1);
}

static char *handle_defrag(char *args)
{
    char *sp = strrchr(args, ' ');
    if (!sp)
        return endpoint_reply_error("usage: defrag CACHE PERCENT");
    int pct = parse_percent(sp + 1);
    if (pct < 0)
        return endpoint_reply_error("PERCENT must be an integer from 0 to 100");
    *sp = '\0';
    return run_on_cache(trim(args), pct);
}

char *endpoint_reply(char *line, size_t len)
{
    if (memchr(line, '\0', len))
        return endpoint_reply_error("malformed request: NUL byte");
    line = trim(line);
    size_t word = strcspn(line, " \t");
    char *args = line[word] ? trim(line + word + 1) : line + word;
    line[word] = '\0';
    if (strcmp(line, "info") == 0 && !*args)
        return reply_info();
    if (strcmp(line, "shrink") == 0)
        return handle_shrink(args);
    if (strcmp(line, "defrag") == 0)
        return handle_defrag(args);
    if (strcmp(line, "version") == 0 && !*args)
        return reply_printf("{\"version\": \"%s\", \"pid\": %ld}\n", slabdefrag_version(),
                            (long)getpid());
    return endpoint_reply_error(
        "unknown request (try: info, shrink [CACHE], defrag CACHE PERCENT, version)");
}
