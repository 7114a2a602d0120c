/*
 * stats_info_shrink: against a live process (a forked child with a movable cache
 * fragmented to 10% fill, started with the endpoint at its default path):
 *   - slab_stats_find_socket(pid) finds the socket the child reports, mode 0600
 *     in a 0700 directory;
 *   - "info" answers the JSON of slab_info_write, "version" names the pid;
 *   - `slabdefrag info PID` prints a table naming the caches; --json the JSON;
 *   - `slabdefrag top PID --iterations 2` prints two frames, sorted as asked;
 *   - `slabdefrag shrink PID sdt_movable` moves the survivors and hands memory
 *     back: bytes_mapped drops, objects_active stays, objects were moved, and
 *     the bytes printed are positive; shrink of all caches, of a cache whose
 *     name has spaces, and --fill work; an unknown cache or PID fails (exit 1);
 *   - afterwards the child stops the endpoint (socket unlinked), validates its
 *     caches and checks every surviving object (statstest.h).
 */
#define _GNU_SOURCE
#include "statstest.h"

static char out[1 << 16];

static void check_socket_mode(const char *path)
{
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "%s is a socket", path);
    CHECK((st.st_mode & 0777) == 0600, "socket mode %o", st.st_mode & 0777);
    char dir[108];
    snprintf(dir, sizeof dir, "%s", path);
    CHECK(stat(dirname(dir), &st) == 0 && (st.st_mode & 0777) == 0700, "dir mode %o",
          st.st_mode & 0777);
}

static void check_library_client(const struct server_child *sc, char *pid)
{
    char found[108];
    CHECK(slab_stats_find_socket(sc->pid, found, sizeof found) == 0, "find_socket");
    CHECK(strcmp(found, sc->path) == 0, "found %s, child said %s", found, sc->path);
    CHECK(slab_stats_find_socket(getpid(), found, sizeof found) == -ENOENT, "we serve nothing");
    check_socket_mode(sc->path);

    char *r = ask(sc->path, "version", NULL);
    char want[64];
    snprintf(want, sizeof want, "\"pid\": %s}", pid);
    CHECK(r && strstr(r, want), "version reply: %s", r ? r : "(none)");
    free(r);
    r = ask(sc->path, "info", NULL);
    CHECK(r && strncmp(r, "{\"caches\": [", 12) == 0, "info reply: %s", r ? r : "(none)");
    CHECK(cache_field(r, "sdt_movable", "objects_active") == FRAG_OBJECTS / FRAG_KEEP_EVERY,
          "objects_active %llu", (unsigned long long)cache_field(r, "sdt_movable", "objects_active"));
    CHECK(cache_field(r, "sdt_plain", "objects_active") == 64, "plain active");
    free(r);
}

static void check_info_and_top(char *pid)
{
    CHECK(run_cli(out, sizeof out, "info", pid, NULL) == 0, "info: %s", out);
    CHECK(strstr(out, "# name") && strstr(out, "sdt_movable") && strstr(out, "sdt_plain") &&
              strstr(out, "sdt name with spaces"),
          "info table: %s", out);
    CHECK(run_cli(out, sizeof out, "info", pid, "--json", NULL) == 0, "info --json");
    CHECK(strncmp(out, "{\"caches\": [", 12) == 0 && strstr(out, "\"move_results\""), "json: %s", out);

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

static void check_shrink(const struct server_child *sc, char *pid)
{
    char *before = ask(sc->path, "info", NULL);
    CHECK(before, "info before");
    uint64_t mapped0 = cache_field(before, "sdt_movable", "bytes_mapped");
    free(before);

    CHECK(run_cli(out, sizeof out, "shrink", pid, "sdt_movable", NULL) == 0, "shrink: %s", out);
    const char *rel = strstr(out, "released ");
    CHECK(rel && strtoull(rel + 9, NULL, 10) > 0, "bytes released: %s", out);

    char *after = ask(sc->path, "info", NULL);
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
}

int main(void)
{
    struct server_child sc;
    server_spawn(&sc, NULL, (uid_t)-1);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)sc.pid);

    check_library_client(&sc, pid);
    check_info_and_top(pid);
    check_shrink(&sc, pid);
    CHECK(run_cli(out, sizeof out, "info", sc.path, NULL) == 0, "info by socket path");

    CHECK(server_alive(&sc), "server child still running");
    int st = server_finish(&sc);
    CHECK(st == 0, "server child exit status %d", st);
    CHECK(access(sc.path, F_OK) != 0, "socket unlinked");

    /* Now nothing serves that pid (it is gone), nor our own pid. */
    CHECK(run_cli(out, sizeof out, "info", pid, NULL) == 1, "info of a dead process");
    char self[32];
    snprintf(self, sizeof self, "%ld", (long)getpid());
    CHECK(run_cli(out, sizeof out, "info", self, NULL) == 1, "info of a process without endpoint");
    CHECK(run_cli(out, sizeof out, "info", NULL) == 2, "info without PID");
    return 0;
}
