/*
 * autostart_env: SLABDEFRAG_STATS=1 with SLABDEFRAG_STATS_SOCKET=PATH starts
 * the endpoint before main (the library's constructor), at that path, and a
 * process that exits while serving unlinks its socket (at exit).  This program
 * re-executes itself with the two variables set; the child finds itself
 * serving at PATH, answers its own "version", and exits without stopping; the
 * parent checks the child's status and that PATH is gone.
 */
#define _GNU_SOURCE
#include "endpointtest.h"

static int constructor_child(void)
{
    const char *p = slab_stats_socket_path();
    const char *want = getenv("SLABDEFRAG_STATS_SOCKET");
    if (!p || !want || strcmp(p, want) != 0)
        return 3;
    char *r = ask(p, "version", NULL);
    int rc = r && strstr(r, "\"version\"") ? 0 : 4;
    free(r);
    return rc; /* exits while serving: at-exit must unlink */
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--constructor-child") == 0)
        return constructor_child();
    char dir[] = "/tmp/sdt-autostart-XXXXXX", path[108];
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(path, sizeof path, "%s/ctor.sock", dir);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        setenv("SLABDEFRAG_STATS", "1", 1);
        setenv("SLABDEFRAG_STATS_SOCKET", path, 1);
        execl("/proc/self/exe", "autostart_env", "--constructor-child", (char *)NULL);
        _exit(127);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "constructor child status %d", st);
    CHECK(access(path, F_OK) != 0, "socket unlinked at exit");
    CHECK(rmdir(dir) == 0, "nothing left in %s", dir);
    return 0;
}
