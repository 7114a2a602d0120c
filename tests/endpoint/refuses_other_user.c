/*
 * refuses_other_user: at the default path (0600 socket in a 0700 directory)
 * another user cannot even connect, while the owner gets in.  Against a
 * forked server child (endpointtest.h); a grandchild that dropped to nobody
 * asks "info" and is refused.  Needs root to switch users (skips with 77
 * otherwise).
 */
#define _GNU_SOURCE
#include "endpointtest.h"

int main(void)
{
    need_root("refuses_other_user");
    struct server_child sc;
    server_spawn(&sc, NULL, (uid_t)-1);
    CHECK(allowed_info(sc.path) == 0, "root (the owner) gets in");
    CHECK(as_user(NOBODY, refused_info, sc.path) == 0, "nobody refused at the default path");
    CHECK(server_finish(&sc) == 0, "server child clean");
    return 0;
}
