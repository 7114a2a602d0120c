/*
 * endpoint/client.c — the client half of <slabdefrag/stats.h>: finding a
 * process's control endpoint and asking it one question (server.c serves).
 *
 * 1. Finding.  The server's default directories depend on its environment and
 *    euid, which a client cannot see; it tries, in order, $XDG_RUNTIME_DIR/
 *    slabdefrag (ours), /run/user/<uid>/slabdefrag and /tmp/slabdefrag-<uid> for
 *    the target's uid (the owner of /proc/<pid>) and for ours (paths.c's
 *    endpoint_dir_name, as the server names its directory), and takes the
 *    first path it can trust: a socket owned by that uid, in a directory that
 *    passes the server's own rule for it (endpoint_dir_private: not a symlink,
 *    owned by that uid, no group/other access), served by
 *    the process itself (SO_PEERCRED pid == the target pid, uid == that uid; the
 *    check connects once and hangs up).  A socket found only where these fail
 *    (another user pre-created the directory, a fake server) is -EPERM, so a
 *    privileged client never reads or acts on a stranger's endpoint.  A path
 *    given to slab_stats_request directly is the caller's choice and trusted.
 * 2. Asking.  One connection per request: send the line, shut down our write
 *    side, read to EOF.  The server may refuse (busy, permission denied) and
 *    close before reading our line: then send fails with EPIPE but its answer
 *    is still queued for us, so we read it.  A reset after some data counts as
 *    EOF (the server closed with bytes of ours unread).
 * 3. Bounds.  CLIENT_TIMEOUT_MS = 5 s without progress is -ETIMEDOUT; replies
 *    over CLIENT_REPLY_MAX = 64 MiB are -EMSGSIZE; an empty reply is
 *    -ECONNRESET (every answer has at least "{}").
 *    No lock and no global state: any number of threads may call these.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "endpoint/internal.h"

#define CLIENT_TIMEOUT_MS 5000
#define CLIENT_REPLY_MAX (64u << 20)

/* The socket at `path` may be trusted as process pid's endpoint: its directory
 * is a real directory owned by `uid` that nobody else may enter or write (as
 * the server makes it: 0700), the socket belongs to `uid` too, and the process
 * answering on it is `pid` (SO_PEERCRED, taken when the server called listen).
 * 0; -ENOENT when there is no socket there (or nobody answers); -EPERM when
 * there is one but it fails a check. */
static int trusted_socket(const char *path, pid_t pid, uid_t uid)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return -ENOENT;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return -EPERM;
    *slash = '\0';
    if (endpoint_dir_private(dir, uid) != 0 || st.st_uid != uid)
        return -EPERM;
    struct sockaddr_un addr;
    if (endpoint_make_addr(path, &addr) != 0)
        return -ENOENT;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = -ENOENT; /* a stale socket: nobody answers */
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        bool ok = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
                  len == sizeof cred && cred.pid == pid && cred.uid == uid;
        rc = ok ? 0 : -EPERM;
    }
    close(fd);
    return rc;
}

int slab_stats_find_socket(pid_t pid, char *buf, size_t size)
{
    char proc[64];
    struct stat st;
    snprintf(proc, sizeof proc, "/proc/%ld", (long)pid);
    if (pid <= 0 || stat(proc, &st) != 0)
        return errno = ESRCH, -ESRCH;
    uid_t uids[2] = { st.st_uid, geteuid() };
    const char *xdg = secure_getenv("XDG_RUNTIME_DIR");
    bool too_long = false, untrusted = false;
    for (int k = 0; k < 5; k++) {
        /* 0: our XDG dir; 1, 2: /run/user of target, ours; 3, 4: /tmp of target, ours */
        uid_t owner = k == 0 ? uids[1] : uids[(k - 1) % 2];
        char runtime[64], dir[PATH_MAX];
        if (k == 0 && !(xdg && xdg[0] == '/'))
            continue;
        snprintf(runtime, sizeof runtime, "/run/user/%lu", (unsigned long)owner);
        const char *rt = k == 0 ? xdg : k <= 2 ? runtime : NULL;
        int n = endpoint_dir_name(dir, sizeof dir, rt, owner) == 0
                    ? snprintf(buf, size, "%s/%ld.sock", dir, (long)pid)
                    : -1;
        if (n < 0 || (size_t)n >= size) {
            too_long = true;
            continue;
        }
        int rc = trusted_socket(buf, pid, owner);
        if (rc == 0)
            return 0;
        untrusted |= rc == -EPERM;
    }
    int rc = untrusted ? -EPERM : too_long ? -ENAMETOOLONG : -ENOENT;
    errno = -rc;
    return rc;
}

/* Wait up to CLIENT_TIMEOUT_MS for `events` on fd: 0, or -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short events)
{
    struct pollfd p = { .fd = fd, .events = events };
    int n;
    do
        n = poll(&p, 1, CLIENT_TIMEOUT_MS);
    while (n < 0 && errno == EINTR);
    return n > 0 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

static int send_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            int rc = wait_fd(fd, POLLOUT);
            if (rc)
                return rc;
            continue;
        }
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read until EOF into a growing buffer.  A reset after some data counts as EOF:
 * the server closed with our unread bytes in its queue. */
static long recv_all(int fd, char **out)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    long rc = buf ? 0 : -ENOMEM;
    while (rc == 0) {
        if (len + 1 == cap) {
            char *nb = cap >= CLIENT_REPLY_MAX ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                rc = cap >= CLIENT_REPLY_MAX ? -EMSGSIZE : -ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
        if (n > 0)
            len += (size_t)n;
        else if (n == 0 || (errno == ECONNRESET && len > 0))
            break;
        else if (errno == EAGAIN)
            rc = wait_fd(fd, POLLIN);
        else if (errno != EINTR)
            rc = -errno;
    }
    if (rc == 0 && len == 0)
        rc = -ECONNRESET; /* closed without a word: every reply has at least "{}" */
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    return (long)len;
}

long slab_stats_request(const char *socket_path, const char *request, char **reply)
{
    struct sockaddr_un addr;
    *reply = NULL;
    long rc = endpoint_make_addr(socket_path, &addr);
    if (rc == 0 && strlen(request) + 1 > SLAB_STATS_LINE_MAX)
        rc = -EMSGSIZE;
    int fd = rc == 0 ? socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
    if (rc == 0 && fd < 0)
        rc = -errno;
    if (rc == 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        rc = -errno;
    char line[SLAB_STATS_LINE_MAX + 1];
    if (rc == 0) {
        int n = snprintf(line, sizeof line, "%s\n", request);
        rc = send_all(fd, line, (size_t)n);
        /* A server that refuses (busy, permission) may answer and close before
         * reading our request: its answer is still there to read. */
        if (rc == -EPIPE || rc == -ECONNRESET)
            rc = 0;
    }
    if (rc == 0) {
        shutdown(fd, SHUT_WR);
        rc = recv_all(fd, reply);
    }
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        errno = (int)-rc;
    return rc;
}
