/*
 * endpoint/internal.h — the control endpoint's shared declarations.
 *
 * The control endpoint (<slabdefrag/stats.h>) is a Unix socket through which
 * the owner of a process reads its slab statistics and asks it to shrink or
 * defragment its caches.  It sits above the slab core: it calls the slab API,
 * and the slab core reaches it only through the hook table of slab/hooks.h.
 *
 * Files of the module:
 *   protocol.c   one request line -> one JSON reply: parsing, the slab calls
 *   server.c     the endpoint thread, its connection table, start/stop, fork, exit
 *   paths.c      socket addresses, the default directory and path, the
 *                private-directory check (server and client both use it),
 *                stale-socket removal
 *   client.c     finding a process's socket and asking it one question
 *   autostart.c  SLABDEFRAG_STATS=1: start serving when the library is loaded
 *                or the first cache is created
 *
 * Lock order of the endpoint (take a lock only while holding locks above it):
 *   1. server.c srv.lock        running, owner, thread, path, sock_dev/sock_ino;
 *                               creating and closing the listening socket and
 *                               the wake pipe (start, stop, fork child, exit)
 *   2. server.c srv.serve_lock  the connection table: held by the endpoint thread
 *                               whenever it works on it (all but its poll()), and
 *                               across fork()
 * How it nests with the slab layer (src/slab/internal.h):
 *   - fork.c's table_lock (slab order 1) is held while our fork hooks run, so it
 *     comes before srv.lock; our hooks run first (FORK_ORDER_ENDPOINT, fork.h).
 *   - Under serve_lock a request calls the slab API (slab_info_write,
 *     slab_cache_shrink, slab_cache_defrag, slab_reclaim, cache_find_pinned),
 *     which takes the slab locks from a cache's defrag_lock down (the
 *     application's callbacks run under defrag_lock, so the application's own
 *     locks nest here too): cache_list_lock, bg_lock, heaps_lock, cache->lock,
 *     the segment pool and spare locks, meta_lock.  So both endpoint locks come
 *     before every slab lock after table_lock.
 *   - The endpoint thread never takes srv.lock, but stop joins that thread with
 *     srv.lock held, so srv.lock waits for whatever a request waits for (a
 *     pass, the application's callbacks): it is therefore first.
 *   - No slab code takes an endpoint lock: the core calls the endpoint only
 *     through slab_upper_hooks.cache_create at the start of slab_cache_create,
 *     with no slab lock held.
 * The client (client.c) takes no lock and keeps no global state.
 */
#ifndef SLABDEFRAG_ENDPOINT_INTERNAL_H
#define SLABDEFRAG_ENDPOINT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

#include <slabdefrag/stats.h>

#define ENDPOINT_SUN_PATH_MAX ((int)sizeof(((struct sockaddr_un *)0)->sun_path))
/* The reply to a request the endpoint cannot serve, with the reason as a JSON string. */
#define ENDPOINT_ERROR_FMT "{\"error\": \"%s\"}\n"

/* ---- protocol.c ---- */

/* The reply to one request line (line[0..len) NUL-terminated at len, newline
 * removed; it may be modified): malloc'd JSON, or NULL when out of memory. */
char *endpoint_reply(char *line, size_t len);

/* ENDPOINT_ERROR_FMT with msg, malloc'd; NULL when out of memory. */
char *endpoint_reply_error(const char *msg);

/* ---- paths.c ---- */

/* Fill *addr for `path`; 0, or -ENAMETOOLONG when it does not fit sun_path. */
int endpoint_make_addr(const char *path, struct sockaddr_un *addr);

/* The endpoint directory of a process of user `uid` whose runtime directory is
 * `runtime_dir`: "<runtime_dir>/slabdefrag" when runtime_dir is an absolute
 * path, else "/tmp/slabdefrag-<uid>".  0 or -ENAMETOOLONG. */
int endpoint_dir_name(char *buf, size_t size, const char *runtime_dir, uid_t uid);

/* 0 when `dir` is a directory (not a symlink) owned by `uid` that nobody else
 * may enter or write (no group/other bit); -EPERM when it is not; -errno when
 * it cannot be examined. */
int endpoint_dir_private(const char *dir, uid_t uid);

/* The server's default socket path, its directory created (0700) or checked:
 * endpoint_dir_name(secure_getenv("XDG_RUNTIME_DIR"), euid) + "/<pid>.sock".
 * 0, -ENAMETOOLONG, -EPERM (a directory someone else could use), -errno. */
int endpoint_default_path(char *buf, size_t size);

/* A socket file at `path` that nobody answers on is stale: remove it.  0 when
 * the path is free now; -EADDRINUSE when a live server answers there; -EEXIST
 * when it is not a socket; -errno. */
int endpoint_clear_stale(const char *path, const struct sockaddr_un *addr);

/* ---- autostart.c (testing build only: common/test_hook.h) ---- */

#ifdef SLABDEFRAG_TESTING
/* inside_start runs on the starting thread inside the once, before the
 * environment is read: a test re-enters from there as a malloc that creates
 * caches would. */
struct endpoint_autostart_test_hooks {
    void (*inside_start)(pid_t runner, void *arg);
    void *arg;
};
void endpoint_autostart_set_test_hooks(const struct endpoint_autostart_test_hooks *hooks);
#endif

#endif
