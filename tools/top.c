/*
 * tools/top.c — `slabdefrag top PID [--sort FIELD] [--interval MS]
 * [--iterations N]`: a slabtop-like live view of a process's caches.
 *
 * Each refresh asks the stats endpoint for "info", sorts the rows (default: bytes
 * mapped, largest first; names sort A..Z) and prints a summary line and the
 * table.  On a terminal the screen is cleared first (ANSI) and stdin is put in
 * non-canonical mode so single keys act at once: q quits, and b/n/a/s/p/f/m re-sort
 * by bytes/name/active/slabs/partial/fill/moved.  Ctrl-C quits too (the terminal
 * is restored either way).  Off a terminal (tests, pipes) frames are separated by
 * a blank line.  --iterations N stops after N frames (0: until q or Ctrl-C).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "statsview.h"

#define SORT_NAME (-1) /* sort key: by name; otherwise an enum sv_field */
#define SORT_FILL (-2) /* by fill percent */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) { interrupted = 1; }

static int sort_key; /* for qsort's comparator */

static uint64_t key_of(const struct sv_cache *c)
{
    return sort_key == SORT_FILL ? sv_fill_percent(c) : c->v[sort_key];
}

static int by_key(const void *a, const void *b)
{
    const struct sv_cache *x = a, *y = b;
    if (sort_key == SORT_NAME)
        return strcmp(x->name, y->name);
    uint64_t kx = key_of(x), ky = key_of(y);
    return kx < ky ? 1 : kx > ky ? -1 : strcmp(x->name, y->name);
}

static const struct {
    const char *name;
    char key;
    int field;
} sort_names[] = {
    { "bytes", 'b', SV_BYTES_MAPPED },   { "name", 'n', SORT_NAME },
    { "active", 'a', SV_OBJECTS_ACTIVE }, { "slabs", 's', SV_SLABS },
    { "partial", 'p', SV_SLABS_PARTIAL }, { "fill", 'f', SORT_FILL },
    { "moved", 'm', SV_DEFRAG_OBJECTS_MOVED }, { "size", 0, SV_OBJECT_SIZE },
    { "total", 0, SV_OBJECTS_TOTAL },    { "empty", 0, SV_SLABS_EMPTY },
};
#define NSORT (sizeof sort_names / sizeof sort_names[0])

/* A sort name or any numeric JSON field name; 1 when known. */
static bool parse_sort(const char *s, int *key)
{
    for (size_t i = 0; i < NSORT; i++)
        if (strcmp(s, sort_names[i].name) == 0)
            return *key = sort_names[i].field, true;
    for (int f = 0; f < SV_NFIELDS; f++)
        if (strcmp(s, sv_field_names[f]) == 0)
            return *key = f, true;
    return false;
}

static const char *sort_label(int key)
{
    for (size_t i = 0; i < NSORT; i++)
        if (sort_names[i].field == key)
            return sort_names[i].name;
    return sv_field_names[key];
}

struct top_opts {
    const char *target;
    int sort;
    unsigned interval_ms;
    unsigned long iterations;
};

static void print_frame(const struct top_opts *o, struct sv_cache *rows, size_t n, bool tty)
{
    uint64_t active = 0, total = 0, mapped = 0;
    for (size_t i = 0; i < n; i++) {
        active += rows[i].v[SV_OBJECTS_ACTIVE];
        total += rows[i].v[SV_OBJECTS_TOTAL];
        mapped += rows[i].v[SV_BYTES_MAPPED];
    }
    sort_key = o->sort;
    qsort(rows, n, sizeof *rows, by_key);
    fputs(tty ? "\033[H\033[2J" : "\n", stdout);
    printf("slabdefrag top: %s   caches %zu   objects %" PRIu64 "/%" PRIu64 " (%u%%)   mapped %" PRIu64
           " KiB   sort: %s%s\n",
           o->target, n, active, total, total ? (unsigned)(100 * active / total) : 0, mapped / 1024,
           sort_label(o->sort), tty ? "   (q quits; b n a s p f m sort)" : "");
    sv_print_header(stdout);
    for (size_t i = 0; i < n; i++)
        sv_print_row(stdout, &rows[i]);
    fflush(stdout);
}

/* Wait one interval, reacting to keys when stdin is a terminal.  false: quit. */
static bool wait_interval(struct top_opts *o, bool keys)
{
    struct pollfd p = { .fd = keys ? 0 : -1, .events = POLLIN };
    if (poll(&p, 1, (int)o->interval_ms) < 0 || interrupted)
        return false;
    char c;
    if (p.revents && read(0, &c, 1) == 1) {
        if (c == 'q' || c == 'Q')
            return false;
        for (size_t i = 0; i < NSORT; i++)
            if (sort_names[i].key && sort_names[i].key == c)
                o->sort = sort_names[i].field;
    }
    return true;
}

static int run_top(struct top_opts *o, const char *path, bool keys)
{
    bool tty = isatty(1);
    for (unsigned long frame = 0; !interrupted; frame++) {
        char *reply;
        struct sv_cache *rows;
        size_t n;
        if (sv_request(path, "info", &reply) != 0)
            return 1;
        int rc = sv_parse(reply, &rows, &n);
        free(reply);
        if (rc != 0) {
            fprintf(stderr, "slabdefrag: malformed reply from %s\n", path);
            return 1;
        }
        print_frame(o, rows, n, tty);
        free(rows);
        if (o->iterations && frame + 1 >= o->iterations)
            break;
        if (!wait_interval(o, keys))
            break;
    }
    return 0;
}

static int top_usage(void)
{
    fprintf(stderr, "usage: slabdefrag top PID|SOCKET [--sort FIELD] [--interval MS] "
                    "[--iterations N]\n"
                    "  FIELD: bytes (default), name, active, slabs, partial, fill, moved,\n"
                    "         size, total, empty, or any numeric field of `info --json`\n");
    return 2;
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || errno || v > max)
        return false;
    *out = v;
    return true;
}

static int parse_top_args(int argc, char **argv, struct top_opts *o)
{
    *o = (struct top_opts){ .sort = SV_BYTES_MAPPED, .interval_ms = 1000 };
    for (int i = 1; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long v;
        if (strcmp(argv[i], "--sort") == 0 && next && parse_sort(next, &o->sort))
            i++;
        else if (strcmp(argv[i], "--interval") == 0 && next && parse_ulong(next, 3600000, &v) && v)
            o->interval_ms = (unsigned)v, i++;
        else if (strcmp(argv[i], "--iterations") == 0 && next && parse_ulong(next, ~0ul, &v))
            o->iterations = v, i++;
        else if (argv[i][0] != '-' && !o->target)
            o->target = argv[i];
        else
            return -1;
    }
    return o->target ? 0 : -1;
}

int cmd_top(int argc, char **argv)
{
    struct top_opts o;
    char path[256];
    if (parse_top_args(argc, argv, &o) != 0)
        return top_usage();
    if (sv_target(o.target, path, sizeof path) != 0)
        return 1;
    struct termios saved, raw;
    bool keys = isatty(0) && tcgetattr(0, &saved) == 0;
    if (keys) {
        raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(0, TCSANOW, &raw);
    }
    struct sigaction sa = { .sa_handler = on_sigint }, old_int;
    sigemptyset(&sa.sa_mask); /* no SA_RESTART: poll returns at once on Ctrl-C */
    sigaction(SIGINT, &sa, &old_int);
    int rc = run_top(&o, path, keys);
    sigaction(SIGINT, &old_int, NULL);
    if (keys)
        tcsetattr(0, TCSANOW, &saved);
    return rc;
}
