/*
 * tools/demo_malloc.c — act 3 of `slabdefrag demo`: malloc'd memory, defragmented
 * by the application through the malloc front end.
 *
 * The table program (slabdefrag-kvtable, tools/kvtable/) builds a key-value
 * table of --size MiB * 16384 entries (2 M at the default 128) with values of
 * mixed sizes (~100 B), deletes a random 90%, and, where the allocator offers
 * slab_malloc_defrag_hint/_move, walks the table once moving what the hint
 * points at (Redis' active defrag).  The act runs it in a child process under
 * each allocator, preloaded: libslabdefrag-malloc.so, then glibc (nothing
 * preloaded), jemalloc, mimalloc and tcmalloc from the system library
 * directory; a peer that is not installed is shown as such.  Every run verifies
 * every surviving entry byte by byte; a failed verification fails the demo.
 *
 * Numbers: "heap" RSS is the child's RSS minus its RSS before the table existed
 * (program text and libraries), divided by the live bytes (entries still
 * allocated plus the slot array).  Paths come from the build (the CMake target
 * files), or from $SLABDEFRAG_KVTABLE and $SLABDEFRAG_MALLOC_SO.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "demo.h"

#define PEER_DIR "/usr/lib/x86_64-linux-gnu/"

struct kv_result {
    double live, base, full, deleted, swept, moved;
    int sweep, ok;
};

static double kv_field(const char *out, const char *name)
{
    char key[48];
    snprintf(key, sizeof key, "%s=", name);
    for (const char *p = strstr(out, key); p; p = strstr(p + 1, key))
        if (p == out || p[-1] == ' ')
            return strtod(p + strlen(key), NULL);
    return -1;
}

/* Run the table program with `preload` (NULL: none); 0 with *r filled, -1 if it
 * could not run. */
static int kv_run(const char *kvtable, const char *preload, size_t entries, struct kv_result *r)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    char n[32];
    snprintf(n, sizeof n, "%zu", entries);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        if (preload)
            setenv("LD_PRELOAD", preload, 1);
        else
            unsetenv("LD_PRELOAD");
        execl(kvtable, kvtable, "--entries", n, "--delete", "90", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char out[1024];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof out - 1 && (got = read(fd[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)got;
    out[len] = '\0';
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 127 || kv_field(out, "live") <= 0)
        return -1;
    r->live = kv_field(out, "live");
    r->base = kv_field(out, "base");
    r->full = kv_field(out, "rss_full");
    r->deleted = kv_field(out, "rss_deleted");
    r->swept = kv_field(out, "rss_swept");
    r->moved = kv_field(out, "moved");
    r->sweep = kv_field(out, "sweep") == 1;
    r->ok = WEXITSTATUS(st) == 0 && strstr(out, "verify=ok") != NULL;
    return 0;
}

static const char *path_or(const char *env, const char *built)
{
    const char *e = getenv(env);
    return e && *e ? e : built;
}

int demo_malloc_run(const struct demo_opts *o)
{
#if defined(SLABDEFRAG_KVTABLE_PATH) && defined(SLABDEFRAG_MALLOC_SO_PATH)
    const char *kvtable = path_or("SLABDEFRAG_KVTABLE", SLABDEFRAG_KVTABLE_PATH);
    const char *so = path_or("SLABDEFRAG_MALLOC_SO", SLABDEFRAG_MALLOC_SO_PATH);
#else
    const char *kvtable = path_or("SLABDEFRAG_KVTABLE", NULL);
    const char *so = path_or("SLABDEFRAG_MALLOC_SO", NULL);
#endif
    if (!kvtable || !so || access(kvtable, X_OK) != 0 || access(so, R_OK) != 0) {
        printf("\n== act 3: malloc'd table == skipped: libslabdefrag-malloc.so or "
               "slabdefrag-kvtable not built (sanitizer build?)\n");
        return -1;
    }
    size_t entries = o->mib * 16384;
    printf("\n== act 3: a malloc'd key-value table: %zu entries of ~100 B, 90%% deleted at "
           "random, then one hint+move sweep ==\n",
           entries);
    printf("  %-12s %9s %10s %12s %12s %8s %8s %9s  %s\n", "allocator", "live MiB", "RSS full",
           "RSS deleted", "RSS after", "before", "after", "moved", "verified");
    const struct {
        const char *name, *lib;
    } allocs[] = {
        { "slabdefrag", so },
        { "glibc", NULL },
        { "jemalloc", PEER_DIR "libjemalloc.so.2" },
        { "mimalloc", PEER_DIR "libmimalloc.so.2" },
        { "tcmalloc", PEER_DIR "libtcmalloc_minimal.so.4" },
    };
    int rc = 0;
    for (unsigned i = 0; i < sizeof allocs / sizeof allocs[0]; i++) {
        struct kv_result r;
        if (allocs[i].lib && access(allocs[i].lib, R_OK) != 0) {
            printf("  %-12s not installed (%s)\n", allocs[i].name, allocs[i].lib);
            continue;
        }
        if (kv_run(kvtable, allocs[i].lib, entries, &r) != 0) {
            printf("  %-12s failed to run\n", allocs[i].name);
            rc = i == 0 ? 1 : rc;
            continue;
        }
        const double mib = 1048576.0;
        printf("  %-12s %9.1f %10.1f %12.1f %12.1f %7.2fx %7.2fx %9.0f  %s\n", allocs[i].name,
               r.live / mib, (r.full - r.base) / mib, (r.deleted - r.base) / mib,
               (r.swept - r.base) / mib, (r.deleted - r.base) / r.live, (r.swept - r.base) / r.live,
               r.sweep ? r.moved : 0, r.ok ? "yes" : "NO");
        if (!r.ok)
            rc = 1;
        if (i == 0 && !r.sweep)
            rc = 1;
    }
    printf("  (MiB of heap RSS: the process RSS minus its RSS before the table; before/after: "
           "heap RSS / live bytes;\n   only slabdefrag offers the hint, so the peers' \"after\" "
           "is their RSS with no sweep)\n");
    return rc;
}
