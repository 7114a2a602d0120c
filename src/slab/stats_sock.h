/*
 * slab/stats_sock.h — what the stats endpoint's server (statsd.c) and client
 * (stats_client.c) share: building the Unix socket address from a path; and the
 * one-time autostart that slab_cache_create triggers.
 */
#ifndef SLABDEFRAG_SLAB_STATS_SOCK_H
#define SLABDEFRAG_SLAB_STATS_SOCK_H

#include <sys/un.h>

/* Fill *addr for `path`; 0, or -ENAMETOOLONG when it does not fit sun_path. */
int stats_make_addr(const char *path, struct sockaddr_un *addr);

/* Start the endpoint once if SLABDEFRAG_STATS=1 (statsd.c; cache.c calls it). */
void stats_autostart_once(void);

#endif
