/*
 * burst_clients: 48 clients that all send "info" at once each get a full
 * reply or "busy" (or, when refused before they could send, nothing), and at
 * least SLAB_STATS_MAX_CLIENTS of them are served.  Against a live server
 * child (endpointtest.h), which stops cleanly afterwards.
 */
#define _GNU_SOURCE
#include "endpointtest.h"

#define BURST_CLIENTS 48

int main(void)
{
    struct server_child sc;
    server_spawn(&sc, NULL, (uid_t)-1);

    int fds[BURST_CLIENTS], served = 0;
    bool refused[BURST_CLIENTS];
    for (int i = 0; i < BURST_CLIENTS; i++) {
        fds[i] = connect_to(sc.path);
        /* A client over the server's limit may be answered "busy" and closed
         * before it gets to send: then the send fails with EPIPE/ECONNRESET. */
        ssize_t n = send(fds[i], "info\n", 5, MSG_NOSIGNAL);
        refused[i] = n < 0 && (errno == EPIPE || errno == ECONNRESET);
        CHECK(n == 5 || refused[i], "send: %s", strerror(errno));
    }
    for (int i = 0; i < BURST_CLIENTS; i++) {
        char *r = read_reply(fds[i]);
        bool ok = strncmp(r, "{\"caches\": [", 12) == 0 && strstr(r, "]}\n");
        CHECK(ok || strstr(r, "busy") || (refused[i] && r[0] == '\0'), "burst reply '%s'", r);
        served += ok;
        free(r);
        close(fds[i]);
    }
    CHECK(served >= SLAB_STATS_MAX_CLIENTS, "served %d of %d", served, BURST_CLIENTS);

    server_check_finish(&sc);
    return 0;
}
