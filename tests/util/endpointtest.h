/*
 * endpointtest.h — helpers for the control endpoint's tests (tests/endpoint/)
 * and the CLI tests that talk to an endpoint (tests/tools/).
 *
 * server_spawn() forks a child that builds caches in known states (frag_setup:
 * a movable cache fragmented to 10% fill, a plain cache, a cache whose name has
 * spaces), optionally drops to another uid, starts the endpoint, reports the
 * socket path through a pipe, and waits until the parent closes its control
 * pipe.  Then it stops the endpoint, checks that the socket file is gone, that
 * every cache validates and every surviving object is intact, frees
 * everything, and exits 0 — so a child that crashed, hung or leaked (ASan)
 * shows up in server_finish()'s status.  The parent stays single-threaded, so
 * its forks are clean under every sanitizer.
 * fake_server() serves a canned reply at a path from another process (a fake or
 * hostile endpoint); stop_fake() ends it.
 * run_cli() runs the built `slabdefrag` binary ($SLABDEFRAG_CLI, else
 * ../tools/slabdefrag next to this test's executable) and captures its stdout.
 * Raw-socket helpers (connect_to, read_reply, exchange, expect_error*,
 * abandon_connections) talk to a server without the client library, as a
 * careless or hostile client would.  server_check_finish() is how every
 * server-child test ends: "info" still answered, the child alive, and its
 * clean exit (status 0).
 */
#ifndef SLABDEFRAG_ENDPOINTTEST_H
#define SLABDEFRAG_ENDPOINTTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slabdefrag/slab.h>
#include <slabdefrag/stats.h>

#include "testutil.h"

#define FRAG_OBJECTS 20000
#define FRAG_KEEP_EVERY 10 /* keep 1 object in 10 */
#define NOBODY 65534
/* Each test uses a different subset of these static helpers. */
#pragma GCC diagnostic ignored "-Wunused-function"

struct frag_obj {
    uint32_t slot;
    uint32_t check;
    char payload[120];
};

static struct slab_cache *frag_cache, *plain_cache, *spaced_cache;
static struct frag_obj *frag_table[FRAG_OBJECTS];
static void *plain_objs[64];

static enum slab_move_result frag_move(void *old_obj, void *new_obj, size_t size, void *arg)
{
    struct frag_obj *old = old_obj;
    if (old->slot >= FRAG_OBJECTS || frag_table[old->slot] != old)
        return SLAB_MOVE_DONT_KNOW;
    memcpy(new_obj, old_obj, size);
    frag_table[old->slot] = new_obj;
    return SLAB_MOVE_YES;
}

/* Allocate in a thread that then exits, so its slabs go back to the cache and
 * the endpoint's shrink (another thread) can work on all of them. */
static void *frag_fill(void *unused)
{
    for (uint32_t i = 0; i < FRAG_OBJECTS; i++) {
        struct frag_obj *o = slab_alloc(frag_cache);
        CHECK(o != NULL, "slab_alloc");
        o->slot = i;
        o->check = i * 2654435761u;
        frag_table[i] = o;
    }
    for (uint32_t i = 0; i < FRAG_OBJECTS; i++)
        if (i % FRAG_KEEP_EVERY != 0) {
            slab_free(frag_cache, frag_table[i]);
            frag_table[i] = NULL;
        }
    for (int i = 0; i < 64; i++)
        CHECK((plain_objs[i] = slab_alloc(plain_cache)) != NULL, "slab_alloc plain");
    return NULL;
}

static void frag_setup(void)
{
    frag_cache = slab_cache_create("sdt_movable", sizeof(struct frag_obj), 0, 0, NULL);
    plain_cache = slab_cache_create("sdt_plain", 48, 0, 0, NULL);
    spaced_cache = slab_cache_create("sdt name with spaces", 32, 0, 0, NULL);
    CHECK(frag_cache && plain_cache && spaced_cache, "slab_cache_create");
    CHECK(slab_cache_set_move(frag_cache, frag_move, NULL) == 0, "set_move");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, frag_fill, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
}

/* Exit status 4..6 name what was wrong after the endpoint stopped. */
static void frag_teardown(void)
{
    if (slab_cache_validate(frag_cache) || slab_cache_validate(plain_cache) ||
        slab_cache_validate(spaced_cache))
        exit(4);
    for (uint32_t i = 0; i < FRAG_OBJECTS; i++) {
        struct frag_obj *o = frag_table[i];
        if ((i % FRAG_KEEP_EVERY == 0) != (o != NULL))
            exit(5);
        if (o && (o->slot != i || o->check != i * 2654435761u))
            exit(6);
        slab_free(frag_cache, o);
    }
    for (int i = 0; i < 64; i++)
        slab_free(plain_cache, plain_objs[i]);
    slab_cache_destroy(frag_cache);
    slab_cache_destroy(plain_cache);
    slab_cache_destroy(spaced_cache);
}

struct server_child {
    pid_t pid;
    int ctl_fd;
    char path[108];
};

static void xwrite(int fd, const void *p, size_t n)
{
    CHECK(write(fd, p, n) == (ssize_t)n, "write: %s", strerror(errno));
}

static void server_child_main(int ctl_rd, int path_wr, const char *path, uid_t run_as)
{
    frag_setup();
    if (run_as != (uid_t)-1) {
        unsetenv("XDG_RUNTIME_DIR"); /* root's runtime dir is not the new user's */
        if (setgid(run_as) != 0 || setuid(run_as) != 0)
            exit(7);
    }
    int rc = slab_stats_serve_start(path);
    if (rc != 0) {
        fprintf(stderr, "slab_stats_serve_start: %s\n", strerror(-rc));
        exit(8);
    }
    char sock[108];
    snprintf(sock, sizeof sock, "%s", slab_stats_socket_path());
    xwrite(path_wr, sock, sizeof sock);
    close(path_wr);
    char b;
    while (read(ctl_rd, &b, 1) > 0)
        ;
    slab_stats_serve_stop();
    if (slab_stats_socket_path() != NULL || access(sock, F_OK) == 0)
        exit(9);
    frag_teardown();
    exit(0);
}

/* path: NULL for the default; run_as: (uid_t)-1 to keep our uid. */
static void server_spawn(struct server_child *sc, const char *path, uid_t run_as)
{
    int ctl[2], rep[2];
    CHECK(pipe2(ctl, O_CLOEXEC) == 0 && pipe2(rep, O_CLOEXEC) == 0, "pipe");
    fflush(NULL);
    sc->pid = fork();
    CHECK(sc->pid >= 0, "fork");
    if (sc->pid == 0) {
        close(ctl[1]);
        close(rep[0]);
        server_child_main(ctl[0], rep[1], path, run_as);
    }
    close(ctl[0]);
    close(rep[1]);
    sc->ctl_fd = ctl[1];
    ssize_t n = read(rep[0], sc->path, sizeof sc->path);
    close(rep[0]);
    if (n != (ssize_t)sizeof sc->path) {
        int st;
        waitpid(sc->pid, &st, 0);
        CHECK(0, "server child failed to start (status %d)", st);
    }
}

static bool server_alive(const struct server_child *sc)
{
    int st;
    return waitpid(sc->pid, &st, WNOHANG) == 0;
}

/* Stop the child; its exit status (0: clean). */
static int server_finish(struct server_child *sc)
{
    int st;
    close(sc->ctl_fd);
    CHECK(waitpid(sc->pid, &st, 0) == sc->pid, "waitpid");
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

/* One request through the client library; the reply (caller frees), or NULL
 * with the error in *err. */
static char *ask(const char *path, const char *request, long *err)
{
    char *reply;
    long rc = slab_stats_request(path, request, &reply);
    if (err)
        *err = rc;
    return rc < 0 ? NULL : reply;
}

/* The number after "FIELD": in the JSON object of cache NAME, or UINT64_MAX. */
static uint64_t cache_field(const char *json, const char *name, const char *field)
{
    char key[128];
    snprintf(key, sizeof key, "\"name\": \"%s\"", name);
    const char *c = strstr(json, key);
    if (!c)
        return UINT64_MAX;
    const char *end = strchr(c, '}');
    snprintf(key, sizeof key, "\"%s\": ", field);
    const char *f = strstr(c, key);
    if (!f || (end && f > end))
        return UINT64_MAX;
    return strtoull(f + strlen(key), NULL, 10);
}

/* A fake endpoint at `path` (another process): answers every connection with
 * `reply`, whatever was asked.  stop_fake() kills it and removes the socket. */
static pid_t fake_server(const char *path, const char *reply)
{
    int ready[2];
    CHECK(pipe(ready) == 0, "pipe");
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a failing test */
        close(ready[0]);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0)
            _exit(2);
        if (write(ready[1], "x", 1) != 1)
            _exit(3);
        for (;;) {
            int c = accept(fd, NULL, NULL);
            if (c < 0)
                continue;
            char buf[256];
            if (recv(c, buf, sizeof buf, MSG_DONTWAIT) < 0) { /* the request, if any */ }
            if (send(c, reply, strlen(reply), MSG_NOSIGNAL) < 0) { /* gone */ }
            close(c);
        }
    }
    close(ready[1]);
    char b;
    CHECK(read(ready[0], &b, 1) == 1, "fake server did not start");
    close(ready[0]);
    return pid;
}

static void stop_fake(pid_t pid, const char *path)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    unlink(path);
}

static const char *cli_path(void)
{
    static char path[PATH_MAX];
    const char *env = getenv("SLABDEFRAG_CLI");
    if (env && *env)
        return env;
    snprintf(path, sizeof path, "%s/../tools/slabdefrag", test_binary_dir());
    CHECK(access(path, X_OK) == 0, "no CLI binary at %s (set SLABDEFRAG_CLI)", path);
    return path;
}

/* Run `slabdefrag ARGS...` (NULL-terminated); stdout into out; exit status. */
static int run_cli(char *out, size_t cap, ...)
{
    const char *argv[16] = { cli_path() };
    va_list ap;
    va_start(ap, cap);
    for (int i = 1; i < 15 && (argv[i] = va_arg(ap, const char *)) != NULL; i++)
        ;
    va_end(ap);
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe");
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        dup2(p[1], 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(p[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- other users (tests that run as root and switch uid in a child) ---- */

/* Run fn(path) as `uid` in a forked child; its exit status. */
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

/* 0 when "info" is answered with the server child's caches. */
static int allowed_info(const char *path)
{
    char *r = ask(path, "info", NULL);
    int rc = r && strstr(r, "sdt_movable") ? 0 : 40;
    free(r);
    return rc;
}

/* Tests that switch users need root; 77 (skip) otherwise. */
static void need_root(const char *test)
{
    if (geteuid() != 0) {
        fprintf(stderr, "%s: needs root to switch users; skipped\n", test);
        exit(77);
    }
}

/* ---- raw sockets: a client that does not use the client library ---- */

static int connect_to(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0, "socket");
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
    return fd;
}

/* Read until EOF (or reset) with a generous bound; the text read. */
static char *read_reply(int fd)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    CHECK(buf, "malloc");
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        CHECK(poll(&p, 1, 20000) == 1, "server answered within 20 s");
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        CHECK(len < cap - 1, "reply too long");
    }
    buf[len] = '\0';
    return buf;
}

/* All of data sent, or the server had already refused the connection. */
static bool send_or_refused(int fd, const void *data, size_t len)
{
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    return n == (ssize_t)len || (n < 0 && (errno == EPIPE || errno == ECONNRESET));
}

/* Send raw bytes (optionally closing our write side) and return the reply. */
static char *exchange(const char *path, const void *data, size_t len, bool shut)
{
    int fd = connect_to(path);
    CHECK(send(fd, data, len, MSG_NOSIGNAL) == (ssize_t)len, "send");
    if (shut)
        shutdown(fd, SHUT_WR);
    char *r = read_reply(fd);
    close(fd);
    return r;
}

static void expect_error(const char *path, const void *data, size_t len, const char *needle)
{
    char *r = exchange(path, data, len, false);
    CHECK(strncmp(r, "{\"error\": ", 10) == 0 && strstr(r, needle), "reply to %.40s: '%s'",
          (const char *)data, r);
    free(r);
}

static void expect_error_line(const char *path, const char *line, const char *needle)
{
    expect_error(path, line, strlen(line), needle);
}

/* 50 clients that connect and hang up: at once, after a partial line, or after
 * a whole request whose reply they never read. */
static void abandon_connections(const char *path)
{
    for (int i = 0; i < 50; i++) {
        int fd = connect_to(path);
        /* The server may still hold earlier abandoned connections (it notices a
         * close only on its next poll), so this one can be over its limit and be
         * answered "busy" and closed before we send: EPIPE/ECONNRESET is fine. */
        if (i % 3 == 1)
            CHECK(send_or_refused(fd, "inf", 3), "send: %s", strerror(errno));
        if (i % 3 == 2)
            CHECK(send_or_refused(fd, "info\n", 5), "send: %s", strerror(errno));
        close(fd);
    }
}

/* The end of every server-child test: the endpoint still answers "info", the
 * child is alive, and it stops cleanly with intact caches (status 0). */
static void server_check_finish(struct server_child *sc)
{
    char *r = ask(sc->path, "info", NULL);
    CHECK(r && strstr(r, "sdt_movable"), "info still answered");
    free(r);
    CHECK(server_alive(sc), "server child alive");
    int st = server_finish(sc);
    CHECK(st == 0, "server child exit status %d", st);
    CHECK(access(sc->path, F_OK) != 0, "socket unlinked");
}

#endif
