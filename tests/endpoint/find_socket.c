/*
 * find_socket: slab_stats_find_socket(pid) finds a live process's endpoint at
 * its default path.  Against a forked server child (endpointtest.h) started
 * with the default path: the path found is the one the child reports, the
 * socket has mode 0600 in a 0700 directory, and our own pid (which serves
 * nothing) is -ENOENT.  The child then stops cleanly and unlinks the socket.
 */
#define _GNU_SOURCE
#include "endpointtest.h"

static void check_socket_mode(const char *path)
{
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "%s is a socket", path);
    CHECK((st.st_mode & 0777) == 0600, "socket mode %o", st.st_mode & 0777);
    char dir[108];
    snprintf(dir, sizeof dir, "%s", path);
    CHECK(stat(dirname(dir), &st) == 0 && (st.st_mode & 0777) == 0700, "dir mode %o",
          st.st_mode & 0777);
}

int main(void)
{
    struct server_child sc;
    server_spawn(&sc, NULL, (uid_t)-1);
    char found[108];
    CHECK(slab_stats_find_socket(sc.pid, found, sizeof found) == 0, "find_socket");
    CHECK(strcmp(found, sc.path) == 0, "found %s, child said %s", found, sc.path);
    CHECK(slab_stats_find_socket(getpid(), found, sizeof found) == -ENOENT, "we serve nothing");
    check_socket_mode(sc.path);
    server_check_finish(&sc);
    return 0;
}
