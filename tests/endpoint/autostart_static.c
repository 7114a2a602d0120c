/*
 * autostart_static: SLABDEFRAG_STATS=1 works in a program linked with the
 * static library (libslabdefrag.a) that never calls the endpoint itself.
 *
 * A program gets from an archive only the members it references.  The child
 * half of this program references only the slab API (slab_cache_create,
 * slab_alloc); the parent half only the client calls (slab_stats_request, in
 * client.c, which references no server code).  So the endpoint's server is in
 * this binary only because slab_cache_create refers to the slab core's hook
 * table (slab/hooks.h), whose definition (library/hooks.c) names the
 * endpoint's autostart.  This file deliberately includes no endpoint test
 * helper (those start servers themselves).
 *
 * The program re-executes itself as a child that creates the cache
 * "autostart-probe", allocates from it, says "ready" on a pipe and waits for
 * its stdin to close.  With SLABDEFRAG_STATS=1 and SLABDEFRAG_STATS_SOCKET the
 * socket answers: "info" lists autostart-probe with one object active,
 * "version" names the child's pid, and the socket is unlinked when the child
 * exits.  Controls: SLABDEFRAG_STATS unset, and SLABDEFRAG_STATS=0, leave no
 * socket at the path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slabdefrag/slab.h>
#include <slabdefrag/stats.h>

#include "pipedchild.h"

static int child_main(void)
{
    struct slab_cache *s = slab_cache_create("autostart-probe", 64, 0, 0, NULL);
    void *obj = s ? slab_alloc(s) : NULL;
    if (!obj)
        return 2;
    if (write(1, "r", 1) != 1)
        return 3;
    char b;
    while (read(0, &b, 1) > 0)
        ;
    slab_free(s, obj);
    slab_cache_destroy(s);
    return 0;
}

/* The child, with SLABDEFRAG_STATS set to `stats` (NULL: unset) and the socket
 * path `path`; returns once it has created its cache. */
static struct piped_child child_start(const char *stats, const char *path)
{
    static char stats_env[32], sock_env[160];
    snprintf(stats_env, sizeof stats_env, "SLABDEFRAG_STATS=%s", stats ? stats : "");
    snprintf(sock_env, sizeof sock_env, "SLABDEFRAG_STATS_SOCKET=%s", path);
    const char *env[] = { stats ? stats_env : "SLABDEFRAG_STATS", sock_env, NULL };
    char *argv[] = { "/proc/self/exe", "--child", NULL };
    struct piped_child c = piped_spawn(argv, env);
    char b;
    CHECK(read(c.from_child, &b, 1) == 1 && b == 'r', "child did not get ready");
    return c;
}

static void child_finish(struct piped_child *c)
{
    int st = piped_finish(c);
    CHECK(st == 0, "child status %d", st);
}

static void check_serving(const char *path)
{
    struct piped_child c = child_start("1", path);
    char *reply;
    long n = slab_stats_request(path, "info", &reply);
    CHECK(n > 0, "info: %s", strerror((int)-n));
    const char *p = strstr(reply, "\"name\": \"autostart-probe\"");
    CHECK(p && strstr(p, "\"objects_active\": 1,"), "info reply: %s", reply);
    free(reply);
    n = slab_stats_request(path, "version", &reply);
    CHECK(n > 0, "version: %s", strerror((int)-n));
    char want[64];
    snprintf(want, sizeof want, "\"pid\": %ld}", (long)c.pid);
    CHECK(strstr(reply, want), "version reply %s, want %s", reply, want);
    free(reply);
    child_finish(&c);
    CHECK(access(path, F_OK) != 0, "socket unlinked when the child exited");
}

static void check_not_serving(const char *stats, const char *path)
{
    struct piped_child c = child_start(stats, path);
    CHECK(access(path, F_OK) != 0 && errno == ENOENT, "SLABDEFRAG_STATS=%s: a socket at %s",
          stats ? stats : "(unset)", path);
    child_finish(&c);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return child_main();
    char dir[] = "/tmp/sdt-static-XXXXXX", path[108];
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(path, sizeof path, "%s/s.sock", dir);
    check_serving(path);
    check_not_serving(NULL, path);
    check_not_serving("0", path);
    CHECK(rmdir(dir) == 0, "nothing left in %s", dir);
    return 0;
}
