/*
 * busy_counts_live_clients: "busy" means SLAB_STATS_MAX_CLIENTS live
 * connections, however recently other clients left.  Against a live server
 * child (endpointtest.h): right after 50 clients connected and hung up
 * (abandon_connections), 40 idle clients connect and send nothing: exactly
 * those over the bound (40 - 32) are told "busy", and the server closes the
 * idle ones itself (its timeout, SLAB_STATS_TIMEOUT_MS) without being asked —
 * each idle client reads EOF.
 */
#define _GNU_SOURCE
#include "endpointtest.h"

#define IDLE_CLIENTS 40

int main(void)
{
    struct server_child sc;
    server_spawn(&sc, NULL, (uid_t)-1);
    abandon_connections(sc.path);

    int fds[IDLE_CLIENTS];
    for (int i = 0; i < IDLE_CLIENTS; i++)
        fds[i] = connect_to(sc.path);
    int busy = 0;
    for (int i = 0; i < IDLE_CLIENTS; i++) {
        char *r = read_reply(fds[i]); /* "busy" at once, or EOF at the server's timeout */
        busy += strstr(r, "busy") != NULL;
        CHECK(r[0] == '\0' || strstr(r, "busy"), "idle client got '%s'", r);
        free(r);
        close(fds[i]);
    }
    CHECK(busy == IDLE_CLIENTS - SLAB_STATS_MAX_CLIENTS, "%d busy replies", busy);

    server_check_finish(&sc);
    return 0;
}
