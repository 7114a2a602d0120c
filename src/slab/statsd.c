/*
 * slab/statsd.c — the live statistics endpoint (<slabdefrag/stats.h>): a Unix
 * socket that answers with slab_info_write's JSON and takes shrink/defrag
 * requests.  (The client calls of <slabdefrag/stats.h> are in stats_client.c.)
 *
 * 1. Objects and threads.  One endpoint per process (struct server): a listening
 *    socket, a wake pipe, and one server thread that owns a fixed table of
 *    STATS_MAX_CLIENTS connection slots.  The thread runs a poll() loop over the
 *    wake pipe, the listening socket and every connection; all sockets are
 *    non-blocking and close-on-exec.  A connection goes READING (collect one
 *    line) → REPLYING (send the reply computed when the line completed) → closed.
 *    Requests run on the server thread, one at a time (the slab API is
 *    thread-safe; a pass's callbacks run on this thread).
 * 2. Locking.  srv.lock protects: running, owner, thread, path, the fds' creation
 *    and teardown (start, stop, fork child, exit).  The client table belongs to
 *    the server thread, which holds serve_lock whenever it works on it (all but
 *    its poll()), so that fork() copies a consistent table.  The thread never
 *    holds srv.lock, and it calls the slab API only between I/O calls, so it
 *    holds no allocator lock while it waits (replies are computed in full, into
 *    memory, before any send()).  Order: srv.lock, serve_lock, slab locks.
 * 3. Socket lifecycle.  start: make the private directory (default path), refuse
 *    a path where a live server answers, unlink a stale socket, bind, chmod 0600,
 *    listen, remember the socket's inode, start the thread (with every signal
 *    blocked, so the application's handlers never run on it).  stop: a byte on
 *    the wake pipe, join, close everything, unlink the path if it is still our
 *    inode.  At exit the same, but joining waits at most 2 s (a request blocked
 *    in a move callback must not hang exit); the path is unlinked regardless.
 *    In a forked child (fork.h, FORK_ORDER_STATSD: srv.lock is held across
 *    fork) the thread does not exist: the child closes its copies of the fds
 *    and forgets the endpoint without unlinking.
 * 4. Security checks.  Default directory: created 0700; if it exists it must be
 *    a directory (lstat: no symlink), owned by our euid, with no group/other bit.
 *    Socket file: 0600 (for a caller-chosen path in a shared directory there is a
 *    window between bind and chmod; the credential check covers it).  Every
 *    accepted peer: SO_PEERCRED uid must be our euid or 0 (root could ptrace us
 *    anyway); others get {"error": "permission denied"} and are closed.
 * 5. Bounds — why no client can crash or block the server.
 *    - a request line is at most STATS_LINE_MAX bytes in a fixed buffer; a
 *      longer one gets an error reply; bytes after the first line are ignored;
 *    - at most STATS_MAX_CLIENTS connections; one more gets "busy" and is closed
 *      (after the table has been polled once without waiting, so that slots of
 *      clients that have already hung up are freed first: "busy" means 32 live
 *      connections, however fast clients connect and leave);
 *    - a connection that has not finished its request, or not read its reply,
 *      STATS_TIMEOUT_MS after it connected is closed;
 *    - recv/send never block (O_NONBLOCK, MSG_DONTWAIT) and send never raises
 *      SIGPIPE (MSG_NOSIGNAL); EMFILE on accept pauses accepting for 100 ms
 *      instead of spinning;
 *    - parsing is on a NUL-terminated copy; embedded NULs, unknown words, names
 *      of no cache, a PERCENT that is not 0..100 all get an error reply; cache
 *      names are never echoed, so replies need no escaping;
 *    - out of memory for a reply closes that connection, nothing else.
 *    - a shrink/defrag request pins the cache it names (cache_find_pinned, as
 *      slab_reclaim pins every cache it visits): slab_cache_destroy of that
 *      cache waits until the pass ends, and a cache being destroyed is "no
 *      such cache".
 * 6. Observability.  The endpoint is the observability; slab_stats_socket_path()
 *    tells where it is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <slabdefrag/slab.h>
#include <slabdefrag/stats.h>

#include "defrag.h"
#include "fork.h"
#include "stats_sock.h"

#define STATS_LINE_MAX SLAB_STATS_LINE_MAX
#define STATS_MAX_CLIENTS SLAB_STATS_MAX_CLIENTS
#define STATS_TIMEOUT_MS SLAB_STATS_TIMEOUT_MS
#define STATS_EMFILE_PAUSE_MS 100
#define STATS_EXIT_JOIN_MS 2000
#define SUN_PATH_MAX ((int)sizeof(((struct sockaddr_un *)0)->sun_path))

enum conn_state { CONN_FREE, CONN_READING, CONN_REPLYING };

struct conn {
    enum conn_state state;
    int fd;
    int64_t deadline_ms;
    size_t in_len;
    char in[STATS_LINE_MAX + 1];
    char *out; /* malloc'd reply */
    size_t out_len, out_off;
};

static struct server {
    pthread_mutex_t lock;
    pthread_mutex_t serve_lock; /* held by the server thread while it works */
    bool running;
    pid_t owner;
    pthread_t thread;
    int listen_fd, wake_rd, wake_wr;
    dev_t sock_dev;
    ino_t sock_ino;
    char path[SUN_PATH_MAX];
    struct conn conns[STATS_MAX_CLIENTS]; /* server thread only */
} srv = { .lock = PTHREAD_MUTEX_INITIALIZER, .serve_lock = PTHREAD_MUTEX_INITIALIZER,
        .listen_fd = -1, .wake_rd = -1, .wake_wr = -1 };

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* ---- replies --------------------------------------------------------------- */

static char *reply_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *reply_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

static char *reply_error(const char *msg) { return reply_printf("{\"error\": \"%s\"}\n", msg); }

static char *reply_bytes(long rc, const char *what)
{
    if (rc < 0)
        return reply_printf("{\"error\": \"%s: %s\", \"errno\": %ld}\n", what, strerror((int)-rc), -rc);
    return reply_printf("{\"ok\": true, \"bytes\": %ld}\n", rc);
}

static char *reply_info(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    slab_info_write(f, 1);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- requests ---------------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* "PERCENT" as 0..100, or -1. */
static int parse_percent(const char *s)
{
    if (*s < '0' || *s > '9' || strlen(s) > 3)
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    return *end || v > 100 ? -1 : (int)v;
}

/* Run a shrink (percent < 0) or a defrag pass on the cache named `name`, pinned
 * so that a concurrent slab_cache_destroy waits for the pass to end. */
static char *run_on_cache(const char *name, int percent)
{
    struct slab_cache *s = cache_find_pinned(name);
    if (!s)
        return reply_error("no such cache");
    char *reply = percent < 0 ? reply_bytes(slab_cache_shrink(s), "slab_cache_shrink")
                              : reply_bytes(slab_cache_defrag(s, (unsigned)percent),
                                            "slab_cache_defrag");
    cache_unpin(s);
    return reply;
}

static char *handle_shrink(char *args)
{
    if (!*args)
        return reply_bytes(slab_reclaim(SIZE_MAX), "slab_reclaim");
    return run_on_cache(args, -1);
}

static char *handle_defrag(char *args)
{
    char *sp = strrchr(args, ' ');
    if (!sp)
        return reply_error("usage: defrag CACHE PERCENT");
    int pct = parse_percent(sp + 1);
    if (pct < 0)
        return reply_error("PERCENT must be an integer from 0 to 100");
    *sp = '\0';
    return run_on_cache(trim(args), pct);
}

/* The reply to one request line (NUL-terminated, newline removed); NULL only
 * when out of memory. */
static char *handle_request(char *line, size_t len)
{
    if (memchr(line, '\0', len))
        return reply_error("malformed request: NUL byte");
    line = trim(line);
    size_t word = strcspn(line, " \t");
    char *args = line[word] ? trim(line + word + 1) : line + word;
    line[word] = '\0';
    if (strcmp(line, "info") == 0 && !*args)
        return reply_info();
    if (strcmp(line, "shrink") == 0)
        return handle_shrink(args);
    if (strcmp(line, "defrag") == 0)
        return handle_defrag(args);
    if (strcmp(line, "version") == 0 && !*args)
        return reply_printf("{\"version\": \"%s\", \"pid\": %ld}\n", slabdefrag_version(),
                            (long)getpid());
    return reply_error("unknown request (try: info, shrink [CACHE], defrag CACHE PERCENT, version)");
}

/* ---- connections --------------------------------------------------------------- */

static void conn_close(struct conn *c)
{
    /* Drain what the client sent beyond its request (bounded), so that closing
     * with unread data does not turn the client's EOF into ECONNRESET. */
    char sink[512];
    for (int i = 0; i < 16 && recv(c->fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
        ;
    close_fd(&c->fd);
    free(c->out);
    c->out = NULL;
    c->state = CONN_FREE;
}

/* Queue `reply` (may be NULL: out of memory) and switch to sending it. */
static void conn_reply(struct conn *c, char *reply)
{
    if (!reply) {
        conn_close(c);
        return;
    }
    c->out = reply;
    c->out_len = strlen(reply);
    c->out_off = 0;
    c->state = CONN_REPLYING;
}

static void conn_send(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0)
            break; /* EPIPE, ECONNRESET: the client left */
        c->out_off += (size_t)n;
    }
    conn_close(c);
}

/* A complete line (or EOF after a partial one) is in c->in[0..len). */
static void conn_request(struct conn *c, size_t len)
{
    c->in[len] = '\0';
    conn_reply(c, handle_request(c->in, len));
    if (c->state == CONN_REPLYING)
        conn_send(c);
}

static void conn_read(struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, STATS_LINE_MAX - c->in_len, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0 || (n == 0 && c->in_len == 0)) {
            conn_close(c);
            return;
        }
        if (n == 0) { /* the client closed its write side after a partial line */
            conn_request(c, c->in_len);
            return;
        }
        char *nl = memchr(c->in + c->in_len, '\n', (size_t)n);
        c->in_len += (size_t)n;
        if (nl) {
            conn_request(c, (size_t)(nl - c->in));
            return;
        }
        if (c->in_len == STATS_LINE_MAX) {
            conn_reply(c, reply_error("request line too long"));
            if (c->state == CONN_REPLYING)
                conn_send(c);
            return;
        }
    }
}

static bool peer_allowed(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred)
        return false;
    return cred.uid == geteuid() || cred.uid == 0;
}

/* Best effort, never blocks: for connections we will not serve. */
static void refuse(int fd, const char *msg)
{
    char buf[128];
    int n = snprintf(buf, sizeof buf, "{\"error\": \"%s\"}\n", msg);
    if (send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        /* nothing to do: the client is gone or not reading */
    }
    close(fd);
}

static struct conn *free_slot(void)
{
    for (int i = 0; i < STATS_MAX_CLIENTS; i++)
        if (srv.conns[i].state == CONN_FREE)
            return &srv.conns[i];
    return NULL;
}

/* One pollfd per connection slot (fd -1 for a free slot). */
static void conn_pollfds(struct pollfd pfd[STATS_MAX_CLIENTS])
{
    for (int i = 0; i < STATS_MAX_CLIENTS; i++) {
        struct conn *c = &srv.conns[i];
        pfd[i] = (struct pollfd){ .fd = c->state == CONN_FREE ? -1 : c->fd,
                                  .events = c->state == CONN_READING ? POLLIN : POLLOUT };
    }
}

/* Serve the connections poll() found ready (any_ready: pfd[].revents are
 * valid) and close those past their deadline. */
static void service_conns(const struct pollfd pfd[STATS_MAX_CLIENTS], bool any_ready, int64_t now)
{
    for (int i = 0; i < STATS_MAX_CLIENTS; i++) {
        struct conn *c = &srv.conns[i];
        if (c->state == CONN_FREE)
            continue;
        short ev = any_ready ? pfd[i].revents : 0;
        if (ev && c->state == CONN_READING)
            conn_read(c);
        else if (ev && c->state == CONN_REPLYING)
            conn_send(c);
        if (c->state != CONN_FREE && c->deadline_ms <= now)
            conn_close(c); /* too slow to ask or to read the answer */
    }
}

/* Serve whatever connections are ready right now, without waiting. */
static void service_conns_now(int64_t now)
{
    struct pollfd pfd[STATS_MAX_CLIENTS];
    conn_pollfds(pfd);
    int n = poll(pfd, STATS_MAX_CLIENTS, 0);
    service_conns(pfd, n > 0, now);
}

/* Accept every pending connection; returns when accept would block, or the
 * time until which accepting pauses (EMFILE/ENFILE/ENOMEM). */
static int64_t accept_all(int64_t now)
{
    for (;;) {
        int fd = accept4(srv.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS)
                return now + STATS_EMFILE_PAUSE_MS;
            return 0;
        }
        struct conn *c = free_slot();
        if (!c) {
            /* Slots may be held by clients that have already gone (a burst of
             * connect-then-close lands in the backlog while we accept): reap
             * those before telling a live client we are busy. */
            service_conns_now(now);
            c = free_slot();
        }
        if (!peer_allowed(fd)) {
            refuse(fd, "permission denied");
        } else if (!c) {
            refuse(fd, "busy: too many clients");
        } else {
            *c = (struct conn){ .state = CONN_READING, .fd = fd,
                                .deadline_ms = now + STATS_TIMEOUT_MS };
        }
    }
}

/* ---- the server thread --------------------------------------------------------- */

static int poll_timeout(int64_t now, int64_t accept_paused_until)
{
    int64_t next = now + 60000;
    for (int i = 0; i < STATS_MAX_CLIENTS; i++)
        if (srv.conns[i].state != CONN_FREE && srv.conns[i].deadline_ms < next)
            next = srv.conns[i].deadline_ms;
    if (accept_paused_until > now && accept_paused_until < next)
        next = accept_paused_until;
    return next <= now ? 0 : (int)(next - now);
}

static void *server_main(void *unused)
{
    struct pollfd pfd[2 + STATS_MAX_CLIENTS];
    int64_t accept_paused_until = 0;
    for (;;) {
        int64_t now = now_ms();
        pfd[0] = (struct pollfd){ .fd = srv.wake_rd, .events = POLLIN };
        pfd[1] = (struct pollfd){ .fd = now >= accept_paused_until ? srv.listen_fd : -1,
                                  .events = POLLIN };
        conn_pollfds(pfd + 2);
        int n = poll(pfd, 2 + STATS_MAX_CLIENTS, poll_timeout(now, accept_paused_until));
        if (n < 0 && errno != EINTR)
            break; /* cannot happen with valid arguments; leave rather than spin */
        if (n > 0 && pfd[0].revents)
            break;
        pthread_mutex_lock(&srv.serve_lock);
        now = now_ms();
        service_conns(pfd + 2, n > 0, now);
        if (n > 0 && pfd[1].revents)
            accept_paused_until = accept_all(now);
        pthread_mutex_unlock(&srv.serve_lock);
    }
    pthread_mutex_lock(&srv.serve_lock);
    for (int i = 0; i < STATS_MAX_CLIENTS; i++)
        if (srv.conns[i].state != CONN_FREE)
            conn_close(&srv.conns[i]);
    pthread_mutex_unlock(&srv.serve_lock);
    return NULL;
}

/* ---- paths and directories ------------------------------------------------------ */

/* 0 when dir exists (or was created) as a directory of ours that nobody else can
 * enter or write. */
static int private_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (lstat(dir, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
        return -EPERM;
    return 0;
}

static bool usable_xdg_dir(const char *xdg)
{
    return xdg && xdg[0] == '/';
}

/* $XDG_RUNTIME_DIR/slabdefrag when XDG_RUNTIME_DIR names an absolute path (the
 * user chose it: a bad directory there is an error, not a reason to go elsewhere),
 * else /tmp/slabdefrag-<euid>. */
static int default_path(char *buf, size_t size)
{
    char dir[SUN_PATH_MAX];
    const char *xdg = secure_getenv("XDG_RUNTIME_DIR");
    int n = usable_xdg_dir(xdg) ? snprintf(dir, sizeof dir, "%s/slabdefrag", xdg)
                                : snprintf(dir, sizeof dir, "/tmp/slabdefrag-%lu",
                                           (unsigned long)geteuid());
    if (n < 0 || (size_t)n >= sizeof dir)
        return -ENAMETOOLONG;
    int rc = private_dir(dir);
    if (rc != 0)
        return rc;
    n = snprintf(buf, size, "%s/%ld.sock", dir, (long)getpid());
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* A socket file at `path` that nobody answers on is stale: remove it.  A live
 * server keeps its path (-EADDRINUSE); a file that is not a socket is kept too. */
static int clear_stale_socket(const char *path, const struct sockaddr_un *addr)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, (const struct sockaddr *)addr, sizeof *addr);
    int err = errno;
    close(fd);
    if (rc == 0)
        return -EADDRINUSE;
    if (err != ECONNREFUSED)
        return -err;
    return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
}

/* ---- start / stop ------------------------------------------------------------------- */

static int open_listener(const char *path)
{
    struct sockaddr_un addr;
    int rc = stats_make_addr(path, &addr);
    if (rc == 0)
        rc = clear_stale_socket(path, &addr);
    if (rc != 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || chmod(path, 0600) != 0 ||
        listen(fd, 64) != 0 || stat(path, &st) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    srv.sock_dev = st.st_dev;
    srv.sock_ino = st.st_ino;
    return fd;
}

/* Unlink the socket only while the path still names the socket we bound. */
static void unlink_ours(void)
{
    struct stat st;
    if (lstat(srv.path, &st) == 0 && st.st_dev == srv.sock_dev && st.st_ino == srv.sock_ino)
        unlink(srv.path);
}

static void close_server_fds(void)
{
    close_fd(&srv.listen_fd);
    close_fd(&srv.wake_rd);
    close_fd(&srv.wake_wr);
}

static int start_thread(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&srv.thread, NULL, server_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

static void at_exit(void);
/* srv.lock, then serve_lock: the server thread is between two polls, so its
 * connection table is consistent when fork() copies it. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&srv.lock);
    pthread_mutex_lock(&srv.serve_lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&srv.serve_lock);
    pthread_mutex_unlock(&srv.lock);
}

/* In the child the server thread does not exist: drop our copies of its fds. */
static void fork_child(void)
{
    if (srv.running) {
        for (int i = 0; i < STATS_MAX_CLIENTS; i++)
            if (srv.conns[i].state != CONN_FREE) {
                close_fd(&srv.conns[i].fd);
                free(srv.conns[i].out);
                srv.conns[i] = (struct conn){ .state = CONN_FREE, .fd = -1 };
            }
        close_server_fds();
        srv.running = false;
    }
    pthread_mutex_unlock(&srv.serve_lock);
    pthread_mutex_unlock(&srv.lock);
}

static void register_hooks(void)
{
    atexit(at_exit);
    slab_fork_register(fork_prepare, fork_parent, fork_child, FORK_ORDER_STATSD);
}

static int start_locked(const char *path)
{
    int rc = path ? (strlen(path) < sizeof srv.path ? 0 : -ENAMETOOLONG)
                  : default_path(srv.path, sizeof srv.path);
    if (rc != 0)
        return rc;
    if (path)
        strcpy(srv.path, path);
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
        return -errno;
    srv.wake_rd = p[0];
    srv.wake_wr = p[1];
    srv.listen_fd = open_listener(srv.path);
    if (srv.listen_fd < 0) {
        rc = srv.listen_fd;
        srv.listen_fd = -1;
    } else if ((rc = start_thread()) != 0) {
        unlink_ours();
    }
    if (rc != 0) {
        close_server_fds();
        return rc;
    }
    srv.running = true;
    srv.owner = getpid();
    return 0;
}

int slab_stats_serve_start(const char *path)
{
    static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
    pthread_once(&hooks_once, register_hooks);
    pthread_mutex_lock(&srv.lock);
    int rc = srv.running ? -EALREADY : start_locked(path);
    pthread_mutex_unlock(&srv.lock);
    if (rc < 0)
        errno = -rc;
    return rc;
}

/* srv.lock held.  max_wait_ms < 0: join however long the thread takes. */
static void stop_locked(int max_wait_ms)
{
    if (!srv.running)
        return;
    char b = 1;
    if (write(srv.wake_wr, &b, 1) < 0) {
        /* the pipe is never full (one byte per stop) */
    }
    bool joined = true;
    if (max_wait_ms < 0) {
        pthread_join(srv.thread, NULL);
    } else {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += max_wait_ms / 1000;
        joined = pthread_timedjoin_np(srv.thread, NULL, &until) == 0;
    }
    unlink_ours();
    if (joined) /* else the thread still uses them; exit will close them */
        close_server_fds();
    srv.running = false;
}

void slab_stats_serve_stop(void)
{
    pthread_mutex_lock(&srv.lock);
    stop_locked(-1);
    pthread_mutex_unlock(&srv.lock);
}

static void at_exit(void)
{
    pthread_mutex_lock(&srv.lock);
    if (srv.running && srv.owner == getpid())
        stop_locked(STATS_EXIT_JOIN_MS);
    pthread_mutex_unlock(&srv.lock);
}

const char *slab_stats_socket_path(void)
{
    pthread_mutex_lock(&srv.lock);
    const char *p = srv.running ? srv.path : NULL;
    pthread_mutex_unlock(&srv.lock);
    return p;
}

/* SLABDEFRAG_STATS=1: serve from the start (SLABDEFRAG_STATS_SOCKET picks the path). */
static void stats_autostart(void)
{
    const char *on = secure_getenv("SLABDEFRAG_STATS");
    if (!on || strcmp(on, "1") != 0)
        return;
    const char *path = secure_getenv("SLABDEFRAG_STATS_SOCKET");
    int rc = slab_stats_serve_start(path && *path ? path : NULL);
    if (rc < 0)
        fprintf(stderr, "slabdefrag: stats endpoint not started: %s\n", strerror(-rc));
}

static pthread_once_t autostart_once = PTHREAD_ONCE_INIT;

/*
 * Run the autostart once per process: from the shared library's constructor, and
 * from slab_cache_create (cache.c), because a statically linked program only pulls
 * this file in when something references it.
 */
void stats_autostart_once(void)
{
    pthread_once(&autostart_once, stats_autostart);
}

__attribute__((constructor)) static void stats_autostart_ctor(void)
{
    stats_autostart_once();
}
