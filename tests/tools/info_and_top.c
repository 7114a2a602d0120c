/*
 * info_and_top: `slabdefrag info` and `slabdefrag top` against a live process
 * (a forked server child with the endpoint at its default path,
 * endpointtest.h):
 *   - `info PID` prints a table naming the caches (also one whose name has
 *     spaces); `info PID --json` prints the JSON, with move_results; `info
 *     SOCKET` works by socket path;
 *   - `top PID --iterations 2` prints two frames, sorted by name as asked; an
 *     unknown sort field is a usage error (exit 2);
 *   - after the child stopped (socket unlinked, caches intact): `info` of that
 *     dead pid and of a process without an endpoint (ourselves) fail (exit 1),
 *     and `info` without a PID is a usage error (exit 2).
 */
#define _GNU_SOURCE
#include "endpointtest.h"

static char out[1 << 16];

static void check_info(const struct server_child *sc, const char *pid)
{
    CHECK(run_cli(out, sizeof out, "info", pid, NULL) == 0, "info: %s", out);
    CHECK(strstr(out, "# name") && strstr(out, "sdt_movable") && strstr(out, "sdt_plain") &&
              strstr(out, "sdt name with spaces"),
          "info table: %s", out);
    CHECK(run_cli(out, sizeof out, "info", pid, "--json", NULL) == 0, "info --json");
    CHECK(strncmp(out, "{\"caches\": [", 12) == 0 && strstr(out, "\"move_results\""), "json: %s", out);
    CHECK(run_cli(out, sizeof out, "info", sc->path, NULL) == 0, "info by socket path");
}

static void check_top(const char *pid)
{
    CHECK(run_cli(out, sizeof out, "top", pid, "--iterations", "2", "--interval", "10", "--sort",
                  "name", NULL) == 0,
          "top: %s", out);
    int frames = 0;
    for (char *f = strstr(out, "slabdefrag top:"); f; f = strstr(f + 1, "slabdefrag top:"))
        frames++;
    CHECK(frames == 2, "%d frames: %s", frames, out);
    char *first = strstr(out, "slabdefrag top:");
    /* sorted by name: "sdt name with spaces" < "sdt_movable" < "sdt_plain" */
    char *a = strstr(first, "sdt name with spaces"), *b = strstr(first, "sdt_movable"),
         *c = strstr(first, "sdt_plain");
    CHECK(a && b && c && a < b && b < c, "sorted by name: %s", out);
    CHECK(run_cli(out, sizeof out, "top", pid, "--sort", "nonsense", NULL) == 2, "bad sort field");
}

int main(void)
{
    struct server_child sc;
    server_spawn(&sc, NULL, (uid_t)-1);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)sc.pid);
    check_info(&sc, pid);
    check_top(pid);
    server_check_finish(&sc);

    /* Now nothing serves that pid (it is gone), nor our own pid. */
    CHECK(run_cli(out, sizeof out, "info", pid, NULL) == 1, "info of a dead process");
    char self[32];
    snprintf(self, sizeof self, "%ld", (long)getpid());
    CHECK(run_cli(out, sizeof out, "info", self, NULL) == 1, "info of a process without endpoint");
    CHECK(run_cli(out, sizeof out, "info", NULL) == 2, "info without PID");
    return 0;
}
