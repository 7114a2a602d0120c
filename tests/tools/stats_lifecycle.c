/*
 * stats_lifecycle: the endpoint's start/stop contract, in-process.
 *   - SLABDEFRAG_STATS=1 (+ SLABDEFRAG_STATS_SOCKET) starts it from the library
 *     constructor (this program re-executes itself with them set);
 *   - a process that exits while serving unlinks its socket (at exit);
 *   - start twice is -EALREADY; the process can query itself; stop unlinks the
 *     socket and slab_stats_socket_path() becomes NULL; start works again;
 *   - at a chosen path: a stale socket is replaced, a live server's socket is
 *     not (-EADDRINUSE), nor a regular file (-EEXIST); an overlong path is
 *     -ENAMETOOLONG;
 *   - a forked child does not inherit the endpoint: it is not serving, and its
 *     exit leaves the parent's socket in place and working.
 */
#define _GNU_SOURCE
#include "statstest.h"

static char dir[] = "/tmp/sdt-life-XXXXXX";

static void path_in_dir(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

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

static void check_constructor_and_exit(const char *self)
{
    char path[108];
    path_in_dir(path, sizeof path, "ctor.sock");
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        setenv("SLABDEFRAG_STATS", "1", 1);
        setenv("SLABDEFRAG_STATS_SOCKET", path, 1);
        execl(self, self, "--constructor-child", (char *)NULL);
        _exit(127);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "constructor child status %d", st);
    CHECK(access(path, F_OK) != 0, "socket unlinked at exit");
}

static void check_start_stop(void)
{
    CHECK(slab_stats_socket_path() == NULL, "not serving yet");
    CHECK(slab_stats_serve_start(NULL) == 0, "start");
    char path[108];
    snprintf(path, sizeof path, "%s", slab_stats_socket_path());
    CHECK(slab_stats_serve_start(NULL) == -EALREADY, "second start");
    char *r = ask(path, "info", NULL);
    CHECK(r && strncmp(r, "{\"caches\": [", 12) == 0, "query ourselves");
    free(r);
    slab_stats_serve_stop();
    CHECK(slab_stats_socket_path() == NULL && access(path, F_OK) != 0, "stopped and unlinked");
    slab_stats_serve_stop(); /* harmless */
}

static int bound_socket(const char *path, bool listening)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0, "bind %s", path);
    CHECK(!listening || listen(fd, 1) == 0, "listen");
    return fd;
}

static void check_chosen_paths(void)
{
    char path[108];
    path_in_dir(path, sizeof path, "stale.sock");
    close(bound_socket(path, false)); /* the file stays: a stale socket */
    CHECK(slab_stats_serve_start(path) == 0, "stale socket replaced");
    slab_stats_serve_stop();

    path_in_dir(path, sizeof path, "live.sock");
    int live = bound_socket(path, true);
    CHECK(slab_stats_serve_start(path) == -EADDRINUSE, "live socket kept");
    close(live);
    unlink(path);

    path_in_dir(path, sizeof path, "file");
    FILE *f = fopen(path, "w");
    CHECK(f && fclose(f) == 0, "create file");
    CHECK(slab_stats_serve_start(path) == -EEXIST, "regular file kept");
    unlink(path);

    char longpath[300];
    memset(longpath, 'x', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    CHECK(slab_stats_serve_start(longpath) == -ENAMETOOLONG, "long path");
    CHECK(slab_stats_socket_path() == NULL, "still not serving");
}

static void check_fork_child(void)
{
    char path[108];
    path_in_dir(path, sizeof path, "fork.sock");
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
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--constructor-child") == 0)
        return constructor_child();
    unsetenv("SLABDEFRAG_STATS");
    CHECK(mkdtemp(dir), "mkdtemp");
    check_constructor_and_exit("/proc/self/exe");
    check_start_stop();
    check_chosen_paths();
    check_fork_child();
    CHECK(rmdir(dir) == 0, "every socket unlinked");
    return 0;
}
