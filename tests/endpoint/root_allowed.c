/*
 * root_allowed: root is let into another user's endpoint, a third user is
 * not.  A server child running as nobody serves at its default path
 * (/tmp/slabdefrag-65534/<pid>.sock): root finds it by pid
 * (slab_stats_find_socket) and its "info" is answered; a grandchild running
 * as uid 65533 is refused.  Needs root (skips with 77 otherwise).
 */
#define _GNU_SOURCE
#include "endpointtest.h"

int main(void)
{
    need_root("root_allowed");
    struct server_child sc;
    server_spawn(&sc, NULL, NOBODY);
    char found[108];
    CHECK(slab_stats_find_socket(sc.pid, found, sizeof found) == 0 && strcmp(found, sc.path) == 0,
          "root finds nobody's socket: %s", sc.path);
    CHECK(allowed_info(sc.path) == 0, "root gets in");
    CHECK(as_user(NOBODY - 1, refused_info, sc.path) == 0, "a third user does not");
    CHECK(server_finish(&sc) == 0, "server child clean");
    char dir[108];
    snprintf(dir, sizeof dir, "%s", sc.path);
    rmdir(dirname(dir)); /* tidy; harmless if another run is using it */
    return 0;
}
