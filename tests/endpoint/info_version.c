/*
 * info_version: what the "version" and "info" requests answer, through the
 * client library (slab_stats_request).  Against a forked server child with a
 * movable cache fragmented to 10% fill and a plain cache of 64 objects
 * (endpointtest.h): "version" names the child's pid; "info" is the JSON of
 * slab_info_write, with the objects_active each cache really has.
 */
#define _GNU_SOURCE
#include "endpointtest.h"

int main(void)
{
    struct server_child sc;
    server_spawn(&sc, NULL, (uid_t)-1);

    char *r = ask(sc.path, "version", NULL);
    char want[64];
    snprintf(want, sizeof want, "\"pid\": %ld}", (long)sc.pid);
    CHECK(r && strstr(r, want), "version reply: %s", r ? r : "(none)");
    free(r);
    r = ask(sc.path, "info", NULL);
    CHECK(r && strncmp(r, "{\"caches\": [", 12) == 0, "info reply: %s", r ? r : "(none)");
    CHECK(cache_field(r, "sdt_movable", "objects_active") == FRAG_OBJECTS / FRAG_KEEP_EVERY,
          "objects_active %llu", (unsigned long long)cache_field(r, "sdt_movable", "objects_active"));
    CHECK(cache_field(r, "sdt_plain", "objects_active") == 64, "plain active");
    free(r);

    server_check_finish(&sc);
    return 0;
}
