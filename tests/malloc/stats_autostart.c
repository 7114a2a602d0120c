/*
 * stats_autostart: SLABDEFRAG_STATS=1 starts the control endpoint in a program
 * linked with the static malloc front end (libslabdefrag-malloc.a), where
 * the endpoint's start and the front end's initialisation (which creates
 * caches, so it calls the endpoint's autostart hook) meet: neither may
 * deadlock the other.  (The re-entry guard of endpoint/autostart.c is for an
 * order this program does not force: without the guard it passes too.)  The
 * program re-executes itself as a child that mallocs, says "ready" on a pipe
 * and waits for its stdin to close: its socket answers
 * "info" with the front end's size classes (malloc-16) and "version" with the
 * child's pid, and is unlinked when the child exits.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slabdefrag/stats.h>

#include "pipedchild.h"

static int child_main(void)
{
    char *p = malloc(100);
    if (!p || write(1, "r", 1) != 1)
        return 2;
    char b;
    while (read(0, &b, 1) > 0)
        ;
    free(p);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return child_main();
    char dir[] = "/tmp/sdt-mstats-XXXXXX", path[108], sock_env[160];
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(sock_env, sizeof sock_env, "SLABDEFRAG_STATS_SOCKET=%s", path);
    const char *env[] = { "SLABDEFRAG_STATS=1", sock_env, NULL };
    char *args[] = { "/proc/self/exe", "--child", NULL };
    struct piped_child c = piped_spawn(args, env);
    char b;
    CHECK(read(c.from_child, &b, 1) == 1 && b == 'r', "child did not get ready");

    char *reply, want[64];
    long n = slab_stats_request(path, "info", &reply);
    CHECK(n > 0 && strstr(reply, "\"name\": \"malloc-16\""), "info: %s",
          n > 0 ? reply : strerror((int)-n));
    free(reply);
    n = slab_stats_request(path, "version", &reply);
    snprintf(want, sizeof want, "\"pid\": %ld}", (long)c.pid);
    CHECK(n > 0 && strstr(reply, want), "version: %s", n > 0 ? reply : strerror((int)-n));
    free(reply);
    int st = piped_finish(&c);
    CHECK(st == 0, "child status %d", st);
    CHECK(access(path, F_OK) != 0 && rmdir(dir) == 0, "socket unlinked when the child exited");
    return 0;
}
