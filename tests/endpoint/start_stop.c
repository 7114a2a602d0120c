/*
 * start_stop: the endpoint's start/stop contract, in-process.  Not serving at
 * first; start (default path) works, a second start is -EALREADY; the process
 * can query itself ("info"); stop unlinks the socket and
 * slab_stats_socket_path() becomes NULL; a second stop is harmless; start
 * works again after a stop.
 */
#define _GNU_SOURCE
#include "endpointtest.h"

static void start_query_stop(void)
{
    CHECK(slab_stats_socket_path() == NULL, "not serving yet");
    CHECK(slab_stats_serve_start(NULL) == 0, "start");
    char path[108];
    snprintf(path, sizeof path, "%s", slab_stats_socket_path());
    CHECK(slab_stats_serve_start(NULL) == -EALREADY, "second start");
    char *r = ask(path, "info", NULL);
    CHECK(r && strncmp(r, "{\"caches\": [", 12) == 0, "query ourselves");
    free(r);
    slab_stats_serve_stop();
    CHECK(slab_stats_socket_path() == NULL && access(path, F_OK) != 0, "stopped and unlinked");
    slab_stats_serve_stop(); /* harmless */
}

int main(void)
{
    unsetenv("SLABDEFRAG_STATS");
    start_query_stop();
    start_query_stop(); /* start works again */
    return 0;
}
