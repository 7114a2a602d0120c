/*
 * setgid_env: a set-user/group-ID program does not obey the library's
 * environment variables (they are read with secure_getenv).  The test copies
 * itself into a setgid program (group nogroup, so the kernel marks it AT_SECURE
 * when root runs it) and runs the copy with SLABDEFRAG_STATS=1,
 * SLABDEFRAG_STATS_SOCKET, SLABDEFRAG_DEBUG and XDG_RUNTIME_DIR set.  The copy
 * reports: no endpoint was started and no socket made at the given path; a
 * cache's layout is the plain one (no debug metadata); an explicitly started
 * endpoint's default path is not under the given XDG_RUNTIME_DIR.  Control: the
 * same environment in an ordinary run does change the layout.  Skipped (77)
 * when not root or when the file system ignores the setgid bit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabdefrag/stats.h>

#include "testutil.h"

#define NOGROUP 65534

static int objects_per_slab(void)
{
    struct slab_cache *s = slab_cache_create("setgid-env", 64, 0, 0, NULL);
    CHECK(s != NULL, "create");
    int n = (int)cache_stats(s).objects_per_slab;
    slab_cache_destroy(s);
    return n;
}

/* The setgid copy: exit 0 when it ignored the environment. */
static int child(const char *dir)
{
    int n = objects_per_slab();
    if (!getauxval(AT_SECURE)) { /* an ordinary run (the control), or setgid ignored here */
        printf("%d\n", n);
        return 77;
    }
    char evil[PATH_MAX];
    snprintf(evil, sizeof evil, "%s/evil.sock", dir);
    if (slab_stats_socket_path() != NULL || access(evil, F_OK) == 0)
        return 3; /* SLABDEFRAG_STATS / _SOCKET obeyed */
    if (slab_stats_serve_start(NULL) == 0) {
        const char *p = slab_stats_socket_path();
        int bad = p && strncmp(p, dir, strlen(dir)) == 0;
        slab_stats_serve_stop();
        if (bad)
            return 4; /* XDG_RUNTIME_DIR obeyed */
    }
    printf("%d\n", n);
    return 0;
}

static int run(const char *prog, const char *dir, int *out)
{
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        char sockenv[PATH_MAX + 32], xdgenv[PATH_MAX + 32];
        snprintf(sockenv, sizeof sockenv, "SLABDEFRAG_STATS_SOCKET=%s/evil.sock", dir);
        snprintf(xdgenv, sizeof xdgenv, "XDG_RUNTIME_DIR=%s", dir);
        char *envp[] = { "SLABDEFRAG_STATS=1", sockenv, "SLABDEFRAG_DEBUG=FZPU", xdgenv, NULL };
        dup2(p[1], 1);
        execle(prog, prog, "child", dir, (char *)NULL, envp);
        _exit(127);
    }
    close(p[1]);
    char buf[64] = "";
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    close(p[0]);
    *out = n > 0 ? atoi(buf) : -1;
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child") == 0)
        return child(argv[2]);
    if (geteuid() != 0)
        return 77;
    char self[PATH_MAX], dir[PATH_MAX], copy[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0, "readlink");
    self[n] = '\0';
    snprintf(dir, sizeof dir, "%s/setgid-env-XXXXXX", test_binary_dir());
    CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
    chmod(dir, 0755);
    snprintf(copy, sizeof copy, "%s/prog", dir);
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", self, copy);
    CHECK(system(cmd) == 0, "cp");
    CHECK(chown(copy, 0, NOGROUP) == 0 && chmod(copy, 02755) == 0, "chown/chmod");

    int plain = objects_per_slab(), ordinary = 0, secure = 0;
    int rc = run(self, dir, &ordinary); /* not setgid: obeys the environment */
    CHECK(rc == 77 && ordinary != plain, "ordinary run: status %d, %d objects per slab, plain %d "
          "(SLABDEFRAG_DEBUG should apply)", rc, ordinary, plain);
    rc = run(copy, dir, &secure);
    unlink(copy);
    char evil[PATH_MAX + 16];
    snprintf(evil, sizeof evil, "%s/evil.sock", dir);
    unlink(evil);
    rmdir(dir);
    if (rc == 77)
        return 77;
    CHECK(rc == 0, "setgid run obeyed the environment (status %d)", rc);
    CHECK(secure == plain, "setgid run: %d objects per slab, plain %d (SLABDEFRAG_DEBUG obeyed)",
          secure, plain);
    return 0;
}
