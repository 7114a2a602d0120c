/*
 * tools/info.c — `slabdefrag info PID [--json]`: the slabinfo of a live process,
 * read from its stats endpoint (<slabdefrag/stats.h>), and the client helpers
 * that top.c and shrink.c share (statsview.h).
 *
 * The endpoint's JSON has a fixed shape, {"caches": [{"name": "...", "<field>":
 * N, ..., "move_results": [...]}, ...]}, so a small tolerant reader is enough:
 * it knows the numeric fields by name, skips keys it does not know (newer
 * libraries may add some), and rejects anything that is not that shape rather
 * than guessing.  Nesting is bounded (depth 8), so no input can recurse deeply;
 * the reader never moves past the text's terminating NUL (a reply may end
 * anywhere, e.g. inside a \u escape), and raw control characters in strings are
 * malformed, as in JSON.  The reply may come from a process that is not
 * trusted (root looking at another user's process): `info --json` passes on
 * only text that parses, and the table shows names with control characters,
 * DEL and bytes >= 0x80 escaped as \xNN (valid UTF-8 stays as sent in the
 * JSON).  fuzz/info_parse.c fuzzes sv_parse and the table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slabdefrag/stats.h>

#include "cli.h"
#include "statsview.h"

const char *const sv_field_names[SV_NFIELDS] = {
    "object_size", "slab_size", "objects_per_slab", "objects_active", "objects_total",
    "slabs", "slabs_partial", "slabs_empty", "bytes_mapped", "allocs", "frees",
    "defrag_passes", "defrag_slabs_scanned", "defrag_slabs_freed", "defrag_objects_kicked",
    "defrag_objects_moved", "defrag_objects_refused", "defrag_bytes_released",
};

/* ---- finding and asking the endpoint --------------------------------------- */

int sv_target(const char *arg, char *path, size_t size)
{
    if (strchr(arg, '/')) {
        if (strlen(arg) >= size) {
            fprintf(stderr, "slabdefrag: socket path too long\n");
            return -1;
        }
        strcpy(path, arg);
        return 0;
    }
    char *end;
    errno = 0;
    long pid = strtol(arg, &end, 10);
    if (*arg == '\0' || *end || pid <= 0 || errno || pid != (pid_t)pid) {
        fprintf(stderr, "slabdefrag: '%s' is not a PID or a socket path\n", arg);
        return -1;
    }
    int rc = slab_stats_find_socket((pid_t)pid, path, size);
    if (rc == -ESRCH)
        fprintf(stderr, "slabdefrag: no process %ld\n", pid);
    else if (rc == -ENOENT)
        fprintf(stderr, "slabdefrag: process %ld has no stats endpoint "
                        "(start it with SLABDEFRAG_STATS=1)\n", pid);
    else if (rc == -EPERM)
        fprintf(stderr, "slabdefrag: process %ld: refusing its socket: its directory is not "
                        "private to the process owner, or another process serves it\n", pid);
    else if (rc < 0)
        fprintf(stderr, "slabdefrag: process %ld: %s\n", pid, strerror(-rc));
    return rc < 0 ? -1 : 0;
}

/* The text of {"error": "TEXT"...} (up to the next quote), or NULL. */
static const char *error_text(const char *reply, int *len)
{
    const char *e = strstr(reply, "\"error\": \"");
    if (!e || strncmp(reply, "{\"error\"", 8) != 0)
        return NULL;
    e += 10;
    const char *q = strchr(e, '"');
    *len = q ? (int)(q - e) : (int)strlen(e);
    return e;
}

int sv_request(const char *path, const char *request, char **reply)
{
    long rc = slab_stats_request(path, request, reply);
    if (rc < 0) {
        fprintf(stderr, "slabdefrag: %s: %s\n", path, strerror((int)-rc));
        return -1;
    }
    int len;
    const char *err = error_text(*reply, &len);
    if (err) {
        fprintf(stderr, "slabdefrag: %.*s\n", len, err);
        free(*reply);
        *reply = NULL;
        return -1;
    }
    return 0;
}

/* ---- reading the JSON -------------------------------------------------------- */

struct reader {
    const char *p;
    bool bad;
};

/* Every step below looks at *r->p before moving past it and never moves past
 * the terminating NUL, so no input makes the reader leave its buffer. */
static void skip_ws(struct reader *r)
{
    while (*r->p == ' ' || *r->p == '\n' || *r->p == '\t' || *r->p == '\r')
        r->p++;
}

static bool take(struct reader *r, char c)
{
    if (r->bad)
        return false;
    skip_ws(r);
    if (*r->p != c)
        return false;
    r->p++;
    return true;
}

static void expect(struct reader *r, char c)
{
    if (!take(r, c))
        r->bad = true;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* After a backslash: the character an escape stands for (\u00XX as byte XX,
 * other \u as '?'), or -1 for a bad or cut-off escape. */
static int read_escape(struct reader *r)
{
    char e = *r->p;
    if (e == '\0')
        return -1;
    r->p++;
    if (e == 'u') {
        unsigned cp = 0;
        for (int i = 0; i < 4; i++) {
            int d = hex_digit(*r->p);
            if (d < 0)
                return -1; /* also a NUL: the reply ended inside the escape */
            cp = cp * 16 + (unsigned)d;
            r->p++;
        }
        return cp < 0x80 && cp ? (int)cp : '?';
    }
    switch (e) {
    case '"': case '\\': case '/': return e;
    case 'n': case 't': case 'r': case 'b': case 'f': return ' ';
    default: return -1;
    }
}

/* A JSON string into dst (truncated to cap-1; escapes decoded).  Raw control
 * characters are not JSON: they make the text malformed. */
static void read_string(struct reader *r, char *dst, size_t cap)
{
    size_t n = 0;
    expect(r, '"');
    while (!r->bad && *r->p != '"') {
        int c = (unsigned char)*r->p;
        if (c < 0x20) { /* includes the NUL at the end of the text */
            r->bad = true;
            break;
        }
        r->p++;
        if (c == '\\' && (c = read_escape(r)) < 0) {
            r->bad = true;
            break;
        }
        if (n + 1 < cap)
            dst[n++] = (char)c;
    }
    if (!r->bad)
        r->p++;
    if (cap)
        dst[n] = '\0';
}

static uint64_t read_uint(struct reader *r)
{
    if (r->bad)
        return 0;
    skip_ws(r);
    if (*r->p < '0' || *r->p > '9') {
        r->bad = true;
        return 0;
    }
    char *end;
    uint64_t v = strtoull(r->p, &end, 10);
    r->p = end;
    return v;
}

static void skip_value(struct reader *r, int depth)
{
    if (r->bad)
        return;
    skip_ws(r);
    char c = *r->p;
    char scratch[8];
    if (depth > 8 || c == '\0') {
        r->bad = true;
    } else if (c == '"') {
        read_string(r, scratch, sizeof scratch);
    } else if (c == '[' || c == '{') {
        char close = c == '[' ? ']' : '}';
        r->p++;
        if (take(r, close))
            return;
        do {
            if (c == '{') {
                read_string(r, scratch, sizeof scratch);
                expect(r, ':');
            }
            skip_value(r, depth + 1);
        } while (!r->bad && take(r, ','));
        expect(r, close);
    } else {
        size_t n = strspn(r->p, "0123456789+-.eEtruefalsn");
        if (n == 0)
            r->bad = true;
        r->p += n;
    }
}

static int field_index(const char *key)
{
    for (int i = 0; i < SV_NFIELDS; i++)
        if (strcmp(key, sv_field_names[i]) == 0)
            return i;
    return -1;
}

static void read_cache(struct reader *r, struct sv_cache *c)
{
    memset(c, 0, sizeof *c);
    expect(r, '{');
    if (take(r, '}'))
        return;
    do {
        char key[64];
        read_string(r, key, sizeof key);
        expect(r, ':');
        int f = field_index(key);
        if (r->bad)
            return;
        if (strcmp(key, "name") == 0)
            read_string(r, c->name, sizeof c->name);
        else if (f >= 0)
            c->v[f] = read_uint(r);
        else
            skip_value(r, 1);
    } while (!r->bad && take(r, ','));
    expect(r, '}');
}

static void read_caches(struct reader *r, struct sv_cache **rows, size_t *n)
{
    size_t cap = 0;
    expect(r, '[');
    if (take(r, ']'))
        return;
    do {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            struct sv_cache *nr = realloc(*rows, cap * sizeof *nr);
            if (!nr) {
                r->bad = true;
                return;
            }
            *rows = nr;
        }
        read_cache(r, &(*rows)[(*n)++]);
    } while (!r->bad && take(r, ','));
    expect(r, ']');
}

int sv_parse(const char *json, struct sv_cache **rows, size_t *n)
{
    struct reader r = { json, false };
    bool seen = false;
    *rows = NULL;
    *n = 0;
    expect(&r, '{');
    while (!r.bad && !take(&r, '}')) {
        char key[32];
        if (seen || *n)
            expect(&r, ',');
        read_string(&r, key, sizeof key);
        expect(&r, ':');
        if (r.bad)
            break;
        if (strcmp(key, "caches") == 0 && !seen) {
            read_caches(&r, rows, n);
            seen = true;
        } else {
            skip_value(&r, 1);
            seen = true;
        }
    }
    if (r.bad || !seen) {
        free(*rows);
        *rows = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

/* ---- the table --------------------------------------------------------------- */

unsigned sv_fill_percent(const struct sv_cache *c)
{
    uint64_t total = c->v[SV_OBJECTS_TOTAL];
    return total ? (unsigned)(100 * c->v[SV_OBJECTS_ACTIVE] / total) : 0;
}

void sv_print_header(FILE *out)
{
    fprintf(out, "%-20s %7s %6s %5s %10s %10s %7s %7s %5s %10s %4s %6s %7s %9s %9s\n", "# name",
            "objsize", "slabsz", "o/s", "active", "total", "slabs", "partial", "empty",
            "mappedKiB", "fill", "passes", "s_freed", "kicked", "moved");
}

/* A name as the table shows it: bytes below 0x20, 0x7f and above, and the
 * backslash written as \xNN / \\, so a name cannot move the cursor, change
 * colours or retitle the terminal.  dst holds SV_NAME_SHOWN bytes. */
void sv_name_shown(const char *name, char *dst)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p == '\\') {
            dst[n++] = '\\';
            dst[n++] = '\\';
        } else if (*p < 0x20 || *p >= 0x7f) {
            n += (size_t)snprintf(dst + n, 5, "\\x%02x", *p);
        } else {
            dst[n++] = (char)*p;
        }
    }
    dst[n] = '\0';
}

void sv_print_row(FILE *out, const struct sv_cache *c)
{
    const uint64_t *v = c->v;
    char name[SV_NAME_SHOWN];
    sv_name_shown(c->name, name);
    fprintf(out,
            "%-20s %7" PRIu64 " %6" PRIu64 " %5" PRIu64 " %10" PRIu64 " %10" PRIu64 " %7" PRIu64
            " %7" PRIu64 " %5" PRIu64 " %10" PRIu64 " %3u%% %6" PRIu64 " %7" PRIu64 " %9" PRIu64
            " %9" PRIu64 "\n",
            name, v[SV_OBJECT_SIZE], v[SV_SLAB_SIZE], v[SV_OBJECTS_PER_SLAB],
            v[SV_OBJECTS_ACTIVE], v[SV_OBJECTS_TOTAL], v[SV_SLABS], v[SV_SLABS_PARTIAL],
            v[SV_SLABS_EMPTY], v[SV_BYTES_MAPPED] / 1024, sv_fill_percent(c), v[SV_DEFRAG_PASSES],
            v[SV_DEFRAG_SLABS_FREED], v[SV_DEFRAG_OBJECTS_KICKED], v[SV_DEFRAG_OBJECTS_MOVED]);
}

/* ---- the command ----------------------------------------------------------------- */

static int info_usage(void)
{
    fprintf(stderr, "usage: slabdefrag info PID|SOCKET [--json]\n");
    return 2;
}

int cmd_info(int argc, char **argv)
{
    const char *target = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (!target && argv[i][0] != '-')
            target = argv[i];
        else
            return info_usage();
    }
    char path[256], *reply;
    if (!target)
        return info_usage();
    if (sv_target(target, path, sizeof path) != 0 || sv_request(path, "info", &reply) != 0)
        return 1;
    struct sv_cache *rows;
    size_t n;
    int rc = sv_parse(reply, &rows, &n); /* --json too: only well-formed text is passed on */
    if (rc == 0 && json)
        fputs(reply, stdout);
    free(reply);
    if (rc != 0) {
        fprintf(stderr, "slabdefrag: malformed reply from %s\n", path);
        return 1;
    }
    if (json) {
        free(rows);
        return 0;
    }
    sv_print_header(stdout);
    for (size_t i = 0; i < n; i++)
        sv_print_row(stdout, &rows[i]);
    free(rows);
    return 0;
}
