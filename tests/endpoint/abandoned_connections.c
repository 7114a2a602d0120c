/*
 * abandoned_connections: clients that hang up cannot wedge the endpoint.
 * Against a live server child (endpointtest.h): 50 clients connect and close
 * at once, after a partial line ("inf"), or after a whole request whose reply
 * they never read; then a fresh "info" is answered in full, the child is
 * alive, and it stops cleanly with intact caches.
 */
#define _GNU_SOURCE
#include "endpointtest.h"

int main(void)
{
    struct server_child sc;
    server_spawn(&sc, NULL, (uid_t)-1);
    abandon_connections(sc.path);
    char *r = exchange(sc.path, "info\n", 5, false);
    CHECK(strncmp(r, "{\"caches\": [", 12) == 0 && strstr(r, "]}\n"), "full info reply: %s", r);
    free(r);
    server_check_finish(&sc);
    return 0;
}
