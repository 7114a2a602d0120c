/*
 * private_dir_checks: the endpoint refuses to serve from a default directory
 * that someone else could use.  With XDG_RUNTIME_DIR pointing at a fresh
 * directory, a slabdefrag/ inside it that is open to group (0750), owned by
 * another user (nobody), or a symlink to a private directory makes
 * slab_stats_serve_start(NULL) fail with -EPERM; the endpoint is not serving
 * and nothing is created (the directory is empty afterwards).  Needs root to
 * give a directory away (skips with 77 otherwise).
 */
#define _GNU_SOURCE
#include "endpointtest.h"

static void expect_refused_dir(const char *xdg)
{
    setenv("XDG_RUNTIME_DIR", xdg, 1);
    CHECK(slab_stats_serve_start(NULL) == -EPERM, "start refused under %s", xdg);
    CHECK(slab_stats_socket_path() == NULL, "not serving");
}

int main(void)
{
    need_root("private_dir_checks");
    char base[] = "/tmp/sdt-dirs-XXXXXX", sub[128], link[128];
    CHECK(mkdtemp(base), "mkdtemp");
    snprintf(sub, sizeof sub, "%s/slabdefrag", base);

    CHECK(mkdir(sub, 0700) == 0 && chmod(sub, 0750) == 0, "group-readable dir");
    expect_refused_dir(base);
    CHECK(chmod(sub, 0700) == 0 && chown(sub, NOBODY, NOBODY) == 0, "someone else's dir");
    expect_refused_dir(base);
    CHECK(rmdir(sub) == 0, "rmdir");

    snprintf(link, sizeof link, "%s/elsewhere", base);
    CHECK(mkdir(link, 0700) == 0 && symlink(link, sub) == 0, "symlink");
    expect_refused_dir(base);
    CHECK(unlink(sub) == 0 && rmdir(link) == 0 && rmdir(base) == 0, "nothing created");
    unsetenv("XDG_RUNTIME_DIR");
    return 0;
}
