/*
 * <slabdefrag/stats.h> — the live statistics endpoint: a Unix socket through
 * which the owner of a process (the `slabdefrag info/top/shrink` commands, or
 * any program) reads the process's slab statistics and asks it to shrink or
 * defragment its caches.
 *
 * Opt-in: set SLABDEFRAG_STATS=1 in the environment (the library starts the
 * endpoint when it is loaded, and at the latest when the first cache is
 * created, linked statically or dynamically; SLABDEFRAG_STATS_SOCKET=PATH picks
 * the path), or call slab_stats_serve_start().  Default path:
 *     $XDG_RUNTIME_DIR/slabdefrag/<pid>.sock        when XDG_RUNTIME_DIR is set
 *     /tmp/slabdefrag-<uid>/<pid>.sock              otherwise
 * The directory is created with mode 0700 and refused when it exists but belongs
 * to someone else or is open to group/other; the socket has mode 0600.
 *
 * Who gets in: a peer whose uid (SO_PEERCRED, taken at connect time) equals the
 * process's effective uid, or root (uid 0, who may read the process's memory
 * through ptrace anyway).  Everyone else gets {"error": "permission denied"}.
 *
 * Protocol: one request per connection, a single line of at most
 * SLAB_STATS_LINE_MAX bytes (the newline may be replaced by closing the write
 * side); the server answers with one JSON document and closes the connection.
 *     info                    the JSON of slab_info_write(out, 1)
 *     shrink                  slab_reclaim(SIZE_MAX)      → {"ok": true, "bytes": N}
 *     shrink CACHE            slab_cache_shrink(CACHE)    → {"ok": true, "bytes": N}
 *     defrag CACHE PERCENT    slab_cache_defrag(CACHE, PERCENT 0..100) → same
 *     version                 {"version": "0.1.0", "pid": N}
 *     anything else           {"error": "..."}   (also: unknown cache, bad percent,
 *                             line too long, server busy, timeout)
 * CACHE is the rest of the line (it may contain spaces); for defrag, the last
 * word is PERCENT and the words before it are the cache name.
 */
#ifndef SLABDEFRAG_STATS_H
#define SLABDEFRAG_STATS_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLAB_STATS_LINE_MAX 4096 /* longest request line, newline included */
#define SLAB_STATS_MAX_CLIENTS 32 /* live connections served at once; one more
                                     is answered {"error": "busy..."} */
#define SLAB_STATS_TIMEOUT_MS 5000 /* a connection that has not sent its line and
                                      read its reply by then is closed */

/*
 * Start the endpoint's server thread, listening on `path` (NULL: the default
 * path above).  An existing socket file at the path is replaced only when no
 * process answers on it.  0, -EALREADY if already serving, -ENAMETOOLONG,
 * -EPERM (directory not private), -EADDRINUSE (a live server owns the path),
 * or another -errno from socket/bind/listen/pthread_create.
 */
int slab_stats_serve_start(const char *path);

/* Stop the server thread, close every connection and unlink the socket.  Does
 * nothing when not serving.  Also runs at exit (without waiting more than 2 s
 * for a request in progress).  A forked child never inherits the endpoint. */
void slab_stats_serve_stop(void);

/* The socket path while serving, else NULL.  The string is valid until
 * slab_stats_serve_stop(). */
const char *slab_stats_socket_path(void);

/* ---- client side ---------------------------------------------------------- */

/*
 * Find the socket of process `pid`: tries $XDG_RUNTIME_DIR/slabdefrag,
 * /run/user/<uid>/slabdefrag and /tmp/slabdefrag-<uid> for the process owner's
 * uid and for ours.  A socket is taken only if it and its directory belong to
 * that uid, the directory has no group/other access, and the process serving
 * it is `pid` (SO_PEERCRED).  Writes the path into buf.  0, -ESRCH (no such
 * process), -ENOENT (the process serves no endpoint), -EPERM (a socket was
 * found but fails those checks: not to be trusted), -ENAMETOOLONG.
 */
int slab_stats_find_socket(pid_t pid, char *buf, size_t size);

/*
 * Send one request line (without its newline) to the endpoint at `socket_path`
 * and read the whole reply (at most 64 MiB; 5 s without progress is a timeout).
 * On success returns the reply length and sets *reply to a malloc'd,
 * NUL-terminated copy that the caller frees; otherwise a negative errno
 * (-ECONNREFUSED, -EACCES, -ETIMEDOUT, -EMSGSIZE, ...) and *reply = NULL.
 */
long slab_stats_request(const char *socket_path, const char *request, char **reply);

#ifdef __cplusplus
}
#endif
#endif /* SLABDEFRAG_STATS_H */
