/*
 * peercred_refuses_other_user: the credential check (SO_PEERCRED) keeps
 * another user out even when the socket file lets everyone connect.  The
 * endpoint serves at a path in a world-searchable directory; the test checks
 * the socket was made 0600, then opens it to everyone (chmod 0666, as root):
 * nobody connects but is answered exactly {"error": "permission denied"} for
 * info, shrink, shrink CACHE and defrag CACHE 100, and no defrag pass ran
 * (defrag_passes stays 0).  Needs root (skips with 77 otherwise).
 */
#define _GNU_SOURCE
#include "endpointtest.h"

/* 0 when connected and refused by the credential check, for every request. */
static int refused_by_peercred(const char *path)
{
    const char *reqs[] = { "info", "shrink", "shrink sdt_movable", "defrag sdt_movable 100" };
    for (int i = 0; i < 4; i++) {
        long err;
        char *r = ask(path, reqs[i], &err);
        if (!r)
            return 20 + i;
        int bad = strcmp(r, "{\"error\": \"permission denied\"}\n") != 0;
        free(r);
        if (bad)
            return 30 + i;
    }
    return 0;
}

int main(void)
{
    need_root("peercred_refuses_other_user");
    char dir[] = "/tmp/sdt-peercred-XXXXXX", path[108];
    CHECK(mkdtemp(dir) && chmod(dir, 0755) == 0, "mkdtemp");
    snprintf(path, sizeof path, "%s/open.sock", dir);
    struct server_child sc;
    server_spawn(&sc, path, (uid_t)-1);
    CHECK(strcmp(sc.path, path) == 0, "serves at the path asked for");
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "socket made 0600");
    CHECK(chmod(path, 0666) == 0, "open the socket to everyone");

    char *before = ask(path, "info", NULL);
    CHECK(before, "info before");
    CHECK(as_user(NOBODY, refused_by_peercred, path) == 0, "nobody refused by SO_PEERCRED");
    char *after = ask(path, "info", NULL);
    CHECK(after, "info after");
    CHECK(cache_field(before, "sdt_movable", "defrag_passes") ==
              cache_field(after, "sdt_movable", "defrag_passes") &&
              cache_field(after, "sdt_movable", "defrag_passes") == 0,
          "nobody's shrink/defrag did not run");
    free(before);
    free(after);
    CHECK(server_finish(&sc) == 0, "server child clean");
    CHECK(rmdir(dir) == 0, "socket unlinked, directory empty");
    return 0;
}
