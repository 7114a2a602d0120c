/*
 * endpoint/server.c — the control endpoint's server: the listening Unix
 * socket, the endpoint thread that serves it, start/stop, fork and exit.
 * (Requests are parsed and answered in protocol.c, paths are chosen and
 * checked in paths.c, the client calls are in client.c.)
 *
 * 1. Objects and threads.  One endpoint per process (struct server `srv`): a
 *    listening socket, a wake pipe, and one endpoint thread that owns a fixed
 *    table of SLAB_STATS_MAX_CLIENTS connection slots.  The thread runs a
 *    poll() loop over the wake pipe, the listening socket and every
 *    connection; all sockets are non-blocking and close-on-exec.  A connection
 *    goes FREE -> READING (collect one line) -> REPLYING (send the reply that
 *    endpoint_reply computed when the line completed) -> FREE.  Requests run on
 *    the endpoint thread, one at a time (the slab API is thread-safe; a pass's
 *    callbacks run on this thread).
 * 2. Locking (order and nesting with the slab layer: endpoint/internal.h).
 *    srv.lock protects running, owner, thread, path, sock_dev/sock_ino and the
 *    creation and closing of listen_fd, wake_rd, wake_wr (start, stop, fork
 *    child, exit); the endpoint thread never takes it.  The connection table
 *    belongs to the endpoint thread, which holds srv.serve_lock whenever it
 *    works on it (all but its poll()), so that fork() copies a consistent
 *    table.  The thread calls the slab API only between I/O calls, so it holds
 *    no allocator lock while it waits (replies are computed in full, into
 *    memory, before any send()).
 * 3. Socket lifecycle.  start: choose the path (the caller's, or the default
 *    one in a private directory: paths.c), refuse a path where a live server
 *    answers, unlink a stale socket, bind, chmod 0600, listen, remember the
 *    socket's inode, start the thread (with every signal blocked, so the
 *    application's handlers never run on it).  stop: a byte on the wake pipe,
 *    join, close everything, unlink the path if it is still our inode.  At
 *    exit the same, but joining waits at most EXIT_JOIN_MS = 2 s (a request
 *    blocked in a move callback must not hang exit); the path is unlinked
 *    regardless.
 * 4. Fork (slab/fork.h, FORK_ORDER_ENDPOINT, the first hooks to run): prepare
 *    takes srv.lock then serve_lock, so the endpoint thread is between two
 *    polls and no start or stop is half done; the parent releases both.  In
 *    the child the endpoint thread does not exist: the child closes its copies
 *    of every fd, frees pending replies, and forgets the endpoint without
 *    unlinking the socket (the parent still serves on it).
 * 5. Security.  Socket file 0600 (for a caller-chosen path in a shared
 *    directory there is a window between bind and chmod; the credential check
 *    covers it).  Every accepted peer: SO_PEERCRED uid must be our euid or 0
 *    (root could ptrace us anyway); others get {"error": "permission denied"}
 *    and are closed.
 * 6. Bounds — why no client can crash or block the server.
 *    - a request line is at most SLAB_STATS_LINE_MAX bytes in a fixed buffer;
 *      a longer one gets an error reply; bytes after the first line are ignored;
 *    - at most SLAB_STATS_MAX_CLIENTS connections; one more gets "busy" and is
 *      closed (after the table has been polled once without waiting, so that
 *      slots of clients that have already hung up are freed first: "busy" means
 *      32 live connections, however fast clients connect and leave);
 *    - a connection that has not finished its request, or not read its reply,
 *      SLAB_STATS_TIMEOUT_MS after it connected is closed;
 *    - recv/send never block (O_NONBLOCK, MSG_DONTWAIT) and send never raises
 *      SIGPIPE (MSG_NOSIGNAL); EMFILE on accept pauses accepting for
 *      EMFILE_PAUSE_MS = 100 ms instead of spinning;
 *    - out of memory for a reply closes that connection, nothing else.
 * 7. Observability.  The endpoint is the observability; slab_stats_socket_path()
 *    tells where it is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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

#include "endpoint/internal.h"
#include "slab/fork.h"

#define EMFILE_PAUSE_MS 100
#define EXIT_JOIN_MS 2000

enum conn_state { CONN_FREE, CONN_READING, CONN_REPLYING };

struct conn {
    enum conn_state state;
    int fd;
    int64_t deadline_ms;
    size_t in_len;
    char in[SLAB_STATS_LINE_MAX + 1];
    char *out; /* malloc'd reply */
    size_t out_len, out_off;
};

static struct server {
    pthread_mutex_t lock;
    pthread_mutex_t serve_lock; /* held by the endpoint thread while it works on conns */
    bool running;
    pid_t owner;
    pthread_t thread;
    int listen_fd, wake_rd, wake_wr;
    dev_t sock_dev;
    ino_t sock_ino;
    char path[ENDPOINT_SUN_PATH_MAX];
    struct conn conns[SLAB_STATS_MAX_CLIENTS]; /* endpoint thread (serve_lock), fork child */
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
    conn_reply(c, endpoint_reply(c->in, len));
    if (c->state == CONN_REPLYING)
        conn_send(c);
}

static void conn_read(struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, SLAB_STATS_LINE_MAX - c->in_len, MSG_DONTWAIT);
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
        if (c->in_len == SLAB_STATS_LINE_MAX) {
            conn_reply(c, endpoint_reply_error("request line too long"));
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
    int n = snprintf(buf, sizeof buf, ENDPOINT_ERROR_FMT, msg);
    if (send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        /* nothing to do: the client is gone or not reading */
    }
    close(fd);
}

static struct conn *free_slot(void)
{
    for (int i = 0; i < SLAB_STATS_MAX_CLIENTS; i++)
        if (srv.conns[i].state == CONN_FREE)
            return &srv.conns[i];
    return NULL;
}

/* One pollfd per connection slot (fd -1 for a free slot). */
static void conn_pollfds(struct pollfd pfd[SLAB_STATS_MAX_CLIENTS])
{
    for (int i = 0; i < SLAB_STATS_MAX_CLIENTS; i++) {
        struct conn *c = &srv.conns[i];
        pfd[i] = (struct pollfd){ .fd = c->state == CONN_FREE ? -1 : c->fd,
                                  .events = c->state == CONN_READING ? POLLIN : POLLOUT };
    }
}

/* Serve the connections poll() found ready (any_ready: pfd[].revents are
 * valid) and close those past their deadline. */
static void service_conns(const struct pollfd pfd[SLAB_STATS_MAX_CLIENTS], bool any_ready,
                          int64_t now)
{
    for (int i = 0; i < SLAB_STATS_MAX_CLIENTS; i++) {
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
    struct pollfd pfd[SLAB_STATS_MAX_CLIENTS];
    conn_pollfds(pfd);
    int n = poll(pfd, SLAB_STATS_MAX_CLIENTS, 0);
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
                return now + EMFILE_PAUSE_MS;
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
                                .deadline_ms = now + SLAB_STATS_TIMEOUT_MS };
        }
    }
}

/* ---- the endpoint thread --------------------------------------------------------- */

static int poll_timeout(int64_t now, int64_t accept_paused_until)
{
    int64_t next = now + 60000;
    for (int i = 0; i < SLAB_STATS_MAX_CLIENTS; i++)
        if (srv.conns[i].state != CONN_FREE && srv.conns[i].deadline_ms < next)
            next = srv.conns[i].deadline_ms;
    if (accept_paused_until > now && accept_paused_until < next)
        next = accept_paused_until;
    return next <= now ? 0 : (int)(next - now);
}

static void *endpoint_main(void *unused)
{
    struct pollfd pfd[2 + SLAB_STATS_MAX_CLIENTS];
    int64_t accept_paused_until = 0;
    for (;;) {
        int64_t now = now_ms();
        pfd[0] = (struct pollfd){ .fd = srv.wake_rd, .events = POLLIN };
        pfd[1] = (struct pollfd){ .fd = now >= accept_paused_until ? srv.listen_fd : -1,
                                  .events = POLLIN };
        conn_pollfds(pfd + 2);
        int n = poll(pfd, 2 + SLAB_STATS_MAX_CLIENTS, poll_timeout(now, accept_paused_until));
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
    for (int i = 0; i < SLAB_STATS_MAX_CLIENTS; i++)
        if (srv.conns[i].state != CONN_FREE)
            conn_close(&srv.conns[i]);
    pthread_mutex_unlock(&srv.serve_lock);
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------------- */

static int open_listener(const char *path)
{
    struct sockaddr_un addr;
    int rc = endpoint_make_addr(path, &addr);
    if (rc == 0)
        rc = endpoint_clear_stale(path, &addr);
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
    int rc = pthread_create(&srv.thread, NULL, endpoint_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

static void at_exit(void);
/* srv.lock, then serve_lock: the endpoint thread is between two polls, so its
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

/* In the child the endpoint thread does not exist: drop our copies of its fds. */
static void fork_child(void)
{
    if (srv.running) {
        for (int i = 0; i < SLAB_STATS_MAX_CLIENTS; i++)
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
    slab_fork_register(fork_prepare, fork_parent, fork_child, FORK_ORDER_ENDPOINT);
}

static int start_locked(const char *path)
{
    int rc = path ? (strlen(path) < sizeof srv.path ? 0 : -ENAMETOOLONG)
                  : endpoint_default_path(srv.path, sizeof srv.path);
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
        stop_locked(EXIT_JOIN_MS);
    pthread_mutex_unlock(&srv.lock);
}

const char *slab_stats_socket_path(void)
{
    pthread_mutex_lock(&srv.lock);
    const char *p = srv.running ? srv.path : NULL;
    pthread_mutex_unlock(&srv.lock);
    return p;
}
