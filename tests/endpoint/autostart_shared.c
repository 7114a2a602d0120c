/*
 * autostart_shared: SLABDEFRAG_STATS=1 starts the endpoint in a program that
 * loads the shared library libslabdefrag.so, before the program's main, even
 * if it never calls the library (the library's constructor).  The program is
 * cat(1) with the library preloaded (libslabdefrag.so, found in the build
 * directory: ../libslabdefrag.so from the test executable).  We write "ready"
 * into its stdin; once cat has echoed it, the constructor has run, so the
 * socket at SLABDEFRAG_STATS_SOCKET answers "version" with cat's pid and
 * "info" with JSON.  When its stdin closes, cat exits (through exit(), so the
 * library's at-exit hook runs: a shell would not do, dash leaves with _exit)
 * and the socket is unlinked.  Control: the same without SLABDEFRAG_STATS
 * leaves no socket.
 * Not under sanitizers: a sanitized library cannot be preloaded into a
 * program built without the sanitizer runtime.
 * TEST_LABELS: nosan
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabdefrag/stats.h>

#include "testutil.h"

static char lib[PATH_MAX];

static void find_library(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0, "readlink /proc/self/exe");
    self[n] = '\0';
    snprintf(lib, sizeof lib, "%s/../libslabdefrag.so", dirname(self));
    CHECK(access(lib, R_OK) == 0, "no shared library at %s", lib);
}

struct child {
    pid_t pid;
    int in_wr;
};

static struct child cat_start(const char *stats, const char *path)
{
    int in[2], out[2];
    CHECK(pipe(in) == 0 && pipe(out) == 0, "pipe");
    fflush(NULL);
    struct child c = { .pid = fork() };
    CHECK(c.pid >= 0, "fork");
    if (c.pid == 0) {
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
            _exit(126);
        close(in[1]);
        close(out[0]);
        if (stats)
            setenv("SLABDEFRAG_STATS", stats, 1);
        else
            unsetenv("SLABDEFRAG_STATS");
        setenv("SLABDEFRAG_STATS_SOCKET", path, 1);
        setenv("LD_PRELOAD", lib, 1);
        execlp("cat", "cat", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    char buf[6];
    CHECK(write(in[1], "ready\n", 6) == 6, "write");
    CHECK(read(out[0], buf, sizeof buf) == 6 && memcmp(buf, "ready\n", 6) == 0,
          "cat did not echo");
    close(out[0]);
    c.in_wr = in[1];
    return c;
}

static void cat_finish(struct child *c)
{
    close(c->in_wr);
    int st;
    CHECK(waitpid(c->pid, &st, 0) == c->pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "cat status %d", st);
}

int main(void)
{
    find_library();
    char dir[] = "/tmp/sdt-shared-XXXXXX", path[108];
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(path, sizeof path, "%s/s.sock", dir);

    struct child c = cat_start("1", path);
    char *reply, want[64];
    long n = slab_stats_request(path, "version", &reply);
    CHECK(n > 0, "version: %s", strerror((int)-n));
    snprintf(want, sizeof want, "\"pid\": %ld}", (long)c.pid);
    CHECK(strstr(reply, want), "version reply %s, want %s", reply, want);
    free(reply);
    n = slab_stats_request(path, "info", &reply);
    CHECK(n > 0 && strncmp(reply, "{\"caches\": [", 12) == 0, "info reply: %s",
          n > 0 ? reply : strerror((int)-n));
    free(reply);
    cat_finish(&c);
    CHECK(access(path, F_OK) != 0, "socket unlinked when cat exited");

    c = cat_start(NULL, path);
    CHECK(access(path, F_OK) != 0 && errno == ENOENT, "a socket without SLABDEFRAG_STATS");
    cat_finish(&c);
    CHECK(rmdir(dir) == 0, "nothing left in %s", dir);
    return 0;
}
