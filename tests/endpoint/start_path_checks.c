/*
 * start_path_checks: at a caller-chosen path, start takes over only a stale
 * socket.  A socket file nobody listens on is replaced (start works); a live
 * server's socket is kept (-EADDRINUSE); a regular file is kept (-EEXIST); a
 * path longer than sun_path is -ENAMETOOLONG, and the endpoint is then not
 * serving.  Every socket is unlinked at the end (the directory is empty).
 */
#define _GNU_SOURCE
#include "endpointtest.h"

static char dir[] = "/tmp/sdt-paths-XXXXXX";

static void path_in_dir(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
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

int main(void)
{
    unsetenv("SLABDEFRAG_STATS");
    CHECK(mkdtemp(dir), "mkdtemp");
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
    CHECK(rmdir(dir) == 0, "every socket unlinked");
    return 0;
}
