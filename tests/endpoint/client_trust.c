/*
 * client_trust: the client does not trust any socket it finds.  A fake
 * endpoint (another process, serving a made-up cache) at the path where
 * process T's socket would be is refused by slab_stats_find_socket (-EPERM)
 * and by `slabdefrag info T` (non-zero exit, no fake cache printed) when:
 *   1. the socket directory is open to others (mode 0777, as another user
 *      could pre-create it);
 *   2. the directory is private, but the process serving is not T (SO_PEERCRED);
 *   3. (as root) the directory belongs to another user.
 * Before, the client took the first socket file it found and printed the fake
 * caches.  Control: T's own endpoint in the private directory is found and
 * `info T` works.  XDG_RUNTIME_DIR points at a fresh directory, so the default
 * paths of other tests are not touched.
 */
#include "endpointtest.h"


static char base[] = "/tmp/sdtrust-XXXXXX";
static char dir[64], sock[100];

static const char fake_reply[] =
    "{\"caches\": [\n  {\"name\": \"fake-cache\", \"object_size\": 1}\n]}\n";

/* T: starts its own endpoint (default path) when told, then waits. */
static pid_t target_spawn(int *ctl)
{
    int go[2], done[2];
    CHECK(pipe(go) == 0 && pipe(done) == 0, "pipe");
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        close(go[1]);
        close(done[0]);
        char b;
        if (read(go[0], &b, 1) == 1) {
            if (slab_stats_serve_start(NULL) != 0)
                _exit(2);
            if (write(done[1], "x", 1) != 1)
                _exit(3);
            while (read(go[0], &b, 1) > 0)
                ;
            slab_stats_serve_stop();
        }
        _exit(0);
    }
    close(go[0]);
    close(done[1]);
    ctl[0] = go[1];
    ctl[1] = done[0];
    return pid;
}

static void expect_refused(pid_t t, const char *what)
{
    char path[256], out[4096];
    int rc = slab_stats_find_socket(t, path, sizeof path);
    CHECK(rc == -EPERM, "%s: find_socket = %d (%s), want -EPERM", what, rc, strerror(-rc));
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)t);
    int st = run_cli(out, sizeof out, "info", pid, NULL);
    CHECK(st != 0 && !strstr(out, "fake-cache"), "%s: info exited %d and printed: %s", what, st,
          out);
}

int main(void)
{
    CHECK(mkdtemp(base) != NULL, "mkdtemp");
    setenv("XDG_RUNTIME_DIR", base, 1);
    snprintf(dir, sizeof dir, "%s/slabdefrag", base);
    int ctl[2];
    pid_t t = target_spawn(ctl);
    snprintf(sock, sizeof sock, "%s/%ld.sock", dir, (long)t);

    CHECK(mkdir(dir, 0700) == 0 && chmod(dir, 0777) == 0, "mkdir: %s", strerror(errno));
    pid_t f = fake_server(sock, fake_reply);
    expect_refused(t, "directory mode 0777");
    CHECK(chmod(dir, 0700) == 0, "chmod");
    expect_refused(t, "served by another process");
    if (geteuid() == 0) {
        CHECK(chown(dir, NOBODY, NOBODY) == 0, "chown");
        expect_refused(t, "directory of another user");
        CHECK(chown(dir, 0, 0) == 0, "chown back");
    }
    stop_fake(f, sock);

    /* T's own endpoint is found and read. */
    xwrite(ctl[0], "x", 1);
    char b, path[256], out[16384], pid[32];
    CHECK(read(ctl[1], &b, 1) == 1, "target did not start its endpoint");
    CHECK(slab_stats_find_socket(t, path, sizeof path) == 0, "find_socket of the real endpoint");
    CHECK(strcmp(path, sock) == 0, "found %s, want %s", path, sock);
    snprintf(pid, sizeof pid, "%ld", (long)t);
    CHECK(run_cli(out, sizeof out, "info", pid, NULL) == 0, "info of the real endpoint");
    close(ctl[0]);
    int st;
    CHECK(waitpid(t, &st, 0) == t && WIFEXITED(st) && WEXITSTATUS(st) == 0, "target status %d", st);
    rmdir(dir);
    rmdir(base);
    return 0;
}
