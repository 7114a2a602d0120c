/*
 * endpoint/paths.c — where the control endpoint's socket lives, and the checks
 * that make a path safe to serve on (server.c) or to trust (client.c).
 *
 * 1. Objects.  No state: functions of paths and the file system.
 * 2. Default path.  <dir>/<pid>.sock, where <dir> is $XDG_RUNTIME_DIR/slabdefrag
 *    when XDG_RUNTIME_DIR names an absolute path (the user chose it: a bad
 *    directory there is an error, not a reason to go elsewhere), else
 *    /tmp/slabdefrag-<euid>.  The server reads XDG_RUNTIME_DIR with
 *    secure_getenv, so a setuid/setgid program ignores it.  The client cannot
 *    see the server's environment and tries several runtime directories through
 *    the same endpoint_dir_name (client.c).
 * 3. The private-directory rule, one function for both halves: a real
 *    directory (lstat: a symlink is refused), owned by the expected uid, with
 *    no group/other bit.  The server creates it 0700 and refuses one that
 *    breaks the rule (another user could pre-create it and watch or replace
 *    sockets); the client trusts a socket only inside such a directory.
 * 4. Stale sockets.  A socket file nobody answers on (a process that died
 *    without unlinking) is removed before binding; a live server's socket and
 *    a file that is not a socket are kept.  No lock: the server calls these
 *    under srv.lock, the client from any thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "endpoint/internal.h"

int endpoint_make_addr(const char *path, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr->sun_path)
        return -ENAMETOOLONG;
    strcpy(addr->sun_path, path);
    return 0;
}

int endpoint_dir_name(char *buf, size_t size, const char *runtime_dir, uid_t uid)
{
    int n = runtime_dir && runtime_dir[0] == '/'
                ? snprintf(buf, size, "%s/slabdefrag", runtime_dir)
                : snprintf(buf, size, "/tmp/slabdefrag-%lu", (unsigned long)uid);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int endpoint_dir_private(const char *dir, uid_t uid)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 077))
        return -EPERM;
    return 0;
}

int endpoint_default_path(char *buf, size_t size)
{
    char dir[ENDPOINT_SUN_PATH_MAX];
    int rc = endpoint_dir_name(dir, sizeof dir, secure_getenv("XDG_RUNTIME_DIR"), geteuid());
    if (rc != 0)
        return rc;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    rc = endpoint_dir_private(dir, geteuid());
    if (rc != 0)
        return rc;
    int n = snprintf(buf, size, "%s/%ld.sock", dir, (long)getpid());
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int endpoint_clear_stale(const char *path, const struct sockaddr_un *addr)
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
