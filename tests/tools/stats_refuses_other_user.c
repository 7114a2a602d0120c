/*
 * stats_refuses_other_user: only the owner (same uid) and root get in.
 * Needs root to switch users (skips with 77 otherwise).
 *   1. Default path (0600 socket in a 0700 directory): a child that dropped to
 *      nobody cannot even connect.
 *   2. Credential check: the endpoint at a path in a world-searchable directory,
 *      the socket then opened to everyone (chmod 0666, as root): nobody
 *      connects but is answered "permission denied" for info and shrink, and
 *      the caches are untouched.
 *   3. Root is let in: a server child running as nobody (default path
 *      /tmp/slabdefrag-65534) is found by PID and answers root's "info"; a
 *      third uid is kept out.
 *   4. The directory checks: a runtime directory whose slabdefrag/ is open to
 *      group/other, owned by someone else, or a symlink makes start fail with
 *      -EPERM, and nothing is created.
 */
#define _GNU_SOURCE
#include "statstest.h"

/* Run fn as `uid` in a forked child; its exit status. */
static int as_user(uid_t uid, int (*fn)(const char *), const char *path)
{
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0 || getuid() != uid)
            _exit(90);
        _exit(fn(path));
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* 0 when refused: no connection at all (EACCES), or a "permission denied" reply. */
static int refused_info(const char *path)
{
    long err;
    char *r = ask(path, "info", &err);
    if (!r)
        return err == -EACCES ? 0 : 10;
    int rc = strstr(r, "caches") ? 11 : strstr(r, "permission denied") ? 0 : 12;
    free(r);
    return rc;
}

/* 0 when connected and refused by the credential check, for info and shrink. */
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

static int allowed_info(const char *path)
{
    char *r = ask(path, "info", NULL);
    int rc = r && strstr(r, "sdt_movable") ? 0 : 40;
    free(r);
    return rc;
}

static void check_default_path(void)
{
    struct server_child sc;
    server_spawn(&sc, NULL, (uid_t)-1);
    CHECK(allowed_info(sc.path) == 0, "root (the owner) gets in");
    CHECK(as_user(NOBODY, refused_info, sc.path) == 0, "nobody refused at the default path");
    CHECK(server_finish(&sc) == 0, "server child clean");
}

static void check_peercred(void)
{
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
}

static void check_root_allowed(void)
{
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
}

static void expect_refused_dir(const char *xdg)
{
    setenv("XDG_RUNTIME_DIR", xdg, 1);
    CHECK(slab_stats_serve_start(NULL) == -EPERM, "start refused under %s", xdg);
    CHECK(slab_stats_socket_path() == NULL, "not serving");
}

static void check_directory_checks(void)
{
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
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "stats_refuses_other_user: needs root to switch users; skipped\n");
        return 77;
    }
    check_default_path();
    check_peercred();
    check_root_allowed();
    check_directory_checks();
    return 0;
}
