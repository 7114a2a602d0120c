/*
 * shrink_frees_memory: `slabdefrag shrink` against a live process (a forked
 * server child with a movable cache fragmented to 10% fill, endpointtest.h):
 *   - `shrink PID sdt_movable` moves the survivors and hands memory back:
 *     bytes_mapped drops, objects_active stays, objects were moved, and the
 *     bytes printed are positive;
 *   - shrink of all caches, of a cache whose name has spaces, and --fill work;
 *     an unknown cache fails (exit 1), --fill 101 is a usage error (exit 2);
 *   - afterwards the child stops the endpoint (socket unlinked), validates its
 *     caches and checks every surviving object.
 */
#define _GNU_SOURCE
#include "endpointtest.h"

static char out[1 << 16];

int main(void)
{
    struct server_child sc;
    server_spawn(&sc, NULL, (uid_t)-1);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)sc.pid);

    char *before = ask(sc.path, "info", NULL);
    CHECK(before, "info before");
    uint64_t mapped0 = cache_field(before, "sdt_movable", "bytes_mapped");
    free(before);

    CHECK(run_cli(out, sizeof out, "shrink", pid, "sdt_movable", NULL) == 0, "shrink: %s", out);
    const char *rel = strstr(out, "released ");
    CHECK(rel && strtoull(rel + 9, NULL, 10) > 0, "bytes released: %s", out);

    char *after = ask(sc.path, "info", NULL);
    CHECK(after, "info after");
    uint64_t mapped1 = cache_field(after, "sdt_movable", "bytes_mapped");
    CHECK(mapped1 < mapped0, "bytes_mapped %llu -> %llu", (unsigned long long)mapped0,
          (unsigned long long)mapped1);
    CHECK(cache_field(after, "sdt_movable", "objects_active") == FRAG_OBJECTS / FRAG_KEEP_EVERY,
          "objects kept");
    CHECK(cache_field(after, "sdt_movable", "defrag_objects_moved") > 0, "objects moved");
    free(after);

    CHECK(run_cli(out, sizeof out, "shrink", pid, NULL) == 0 && strstr(out, "all caches"),
          "shrink all: %s", out);
    CHECK(run_cli(out, sizeof out, "shrink", pid, "sdt name with spaces", NULL) == 0,
          "shrink spaced name: %s", out);
    CHECK(run_cli(out, sizeof out, "shrink", pid, "sdt_movable", "--fill", "50", NULL) == 0,
          "defrag: %s", out);
    CHECK(run_cli(out, sizeof out, "shrink", pid, "no_such_cache", NULL) == 1, "unknown cache");
    CHECK(run_cli(out, sizeof out, "shrink", pid, "sdt_movable", "--fill", "101", NULL) == 2,
          "bad percent is a usage error");

    server_check_finish(&sc);
    return 0;
}
