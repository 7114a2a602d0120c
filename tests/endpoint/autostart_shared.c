/*
 * autostart_shared: SLABDEFRAG_STATS=1 starts the endpoint in a program that
 * loads the shared library libslabdefrag.so, before the program's main, even
 * if it never calls the library (the library's constructor).  The program is
 * cat(1) with the library preloaded (libslabdefrag.so, found in the build
 * directory: ../libslabdefrag.so from the test executable).  We write "ready"
 * into its stdin; once cat has echoed it, the constructor has run, so the
 * socket at SLABDEFRAG_STATS_SOCKET answers "version" with cat's pid and
 * "info" with JSON.  When its stdin closes, cat exits (through exit(), so the
 * library's at-exit hook runs: a shell would not do, dash leaves with _exit)
 * and the socket is unlinked.  Control: the same without SLABDEFRAG_STATS
 * leaves no socket.
 * Not under sanitizers: a sanitized library cannot be preloaded into a
 * program built without the sanitizer runtime.
 * TEST_LABELS: nosan
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <slabdefrag/stats.h>

#include "pipedchild.h"

static char lib[PATH_MAX];

static void find_library(void)
{
    snprintf(lib, sizeof lib, "%s/../libslabdefrag.so", test_binary_dir());
    CHECK(access(lib, R_OK) == 0, "no shared library at %s", lib);
}

/* cat with the library preloaded, SLABDEFRAG_STATS set to `stats` (NULL:
 * unset) and the socket path `path`; returns once cat has echoed a line. */
static struct piped_child cat_start(const char *stats, const char *path)
{
    static char preload_env[PATH_MAX + 16], sock_env[160];
    snprintf(preload_env, sizeof preload_env, "LD_PRELOAD=%s", lib);
    snprintf(sock_env, sizeof sock_env, "SLABDEFRAG_STATS_SOCKET=%s", path);
    const char *env[] = { stats ? "SLABDEFRAG_STATS=1" : "SLABDEFRAG_STATS", sock_env,
                          preload_env, NULL };
    char *argv[] = { "cat", NULL };
    struct piped_child c = piped_spawn(argv, env);
    char buf[6];
    CHECK(write(c.to_child, "ready\n", 6) == 6, "write");
    CHECK(read(c.from_child, buf, sizeof buf) == 6 && memcmp(buf, "ready\n", 6) == 0,
          "cat did not echo");
    return c;
}

static void cat_finish(struct piped_child *c)
{
    int st = piped_finish(c);
    CHECK(st == 0, "cat status %d", st);
}

int main(void)
{
    find_library();
    char dir[] = "/tmp/sdt-shared-XXXXXX", path[108];
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(path, sizeof path, "%s/s.sock", dir);

    struct piped_child c = cat_start("1", path);
    char *reply, want[64];
    long n = slab_stats_request(path, "version", &reply);
    CHECK(n > 0, "version: %s", strerror((int)-n));
    snprintf(want, sizeof want, "\"pid\": %ld}", (long)c.pid);
    CHECK(strstr(reply, want), "version reply %s, want %s", reply, want);
    free(reply);
    n = slab_stats_request(path, "info", &reply);
    CHECK(n > 0 && strncmp(reply, "{\"caches\": [", 12) == 0, "info reply: %s",
          n > 0 ? reply : strerror((int)-n));
    free(reply);
    cat_finish(&c);
    CHECK(access(path, F_OK) != 0, "socket unlinked when cat exited");

    c = cat_start(NULL, path);
    CHECK(access(path, F_OK) != 0 && errno == ENOENT, "a socket without SLABDEFRAG_STATS");
    cat_finish(&c);
    CHECK(rmdir(dir) == 0, "nothing left in %s", dir);
    return 0;
}
