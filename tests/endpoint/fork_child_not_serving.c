/*
 * fork_child_not_serving: a forked child does not inherit the endpoint.  The
 * parent serves at a chosen path and forks; the child finds itself not
 * serving (slab_stats_socket_path() == NULL) and exits through exit(), so its
 * at-exit hooks run; the parent's socket is still there and still answers
 * "version"; the parent then stops and the socket is gone.
 */
#define _GNU_SOURCE
#include "endpointtest.h"

int main(void)
{
    unsetenv("SLABDEFRAG_STATS");
    char dir[] = "/tmp/sdt-fork-XXXXXX", path[108];
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(path, sizeof path, "%s/fork.sock", dir);
    CHECK(slab_stats_serve_start(path) == 0, "start");
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0)
        exit(slab_stats_socket_path() == NULL ? 0 : 1); /* exit(): at-exit hooks run */
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "child does not serve (status %d)", st);
    CHECK(access(path, F_OK) == 0, "child's exit left our socket");
    char *r = ask(path, "version", NULL);
    CHECK(r && strstr(r, "\"version\""), "still answering");
    free(r);
    slab_stats_serve_stop();
    CHECK(access(path, F_OK) != 0 && rmdir(dir) == 0, "socket unlinked at stop");
    return 0;
}
