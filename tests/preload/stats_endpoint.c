/* SLABDEFRAG_STATS=1 in a preloaded python3: `slabdefrag info SOCKET --json`
 * reads its size classes live from the stats endpoint (malloc-* caches holding
 * python's objects).  Skips (77) only if python3 is not installed. */
#include <sys/stat.h>

#include "preload.h"

int main(int argc, char **argv)
{
    CHECK(argc >= 4, "usage: stats_endpoint SO KVTABLE SLABDEFRAG");
    if (program_missing("python3")) {
        fprintf(stderr, "python3 not installed: skipped\n");
        return 77;
    }
    /* The real interpreter, not a wrapper script (pyenv's shim would start
     * several preloaded processes, each with its own endpoint). */
    char *where[] = { "python3", "-c", "import sys; print(sys.executable)", NULL };
    char *exe;
    int wst = run_capture(where, NULL, NULL, NULL, &exe, NULL);
    CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0 && exe[0] == '/', "python3 sys.executable");
    exe[strcspn(exe, "\n")] = '\0';
    char sock[64];
    snprintf(sock, sizeof sock, "/tmp/slabdefrag-test-stats-%d.sock", (int)getpid());
    char sockenv[96];
    snprintf(sockenv, sizeof sockenv, "SLABDEFRAG_STATS_SOCKET=%s", sock);
    int ready[2], hold[2]; /* python waits on `hold` (its stdin) until we are done */
    CHECK(pipe(ready) == 0 && pipe(hold) == 0, "pipe");
    pid_t py = fork();
    CHECK(py >= 0, "fork");
    if (py == 0) {
        dup2(ready[1], 1);
        dup2(hold[0], 0);
        close(ready[0]);
        close(hold[1]);
        setenv("LD_PRELOAD", argv[1], 1);
        putenv("SLABDEFRAG_STATS=1");
        putenv(sockenv);
        putenv("PYTHONMALLOC=malloc");
        execl(exe, "python3", "-c",
               "import sys\nd = {i: str(i) * 3 for i in range(50000)}\nprint('ready', flush=True)\n"
               "sys.stdin.read()\n", (char *)NULL);
        _exit(127);
    }
    close(ready[1]);
    close(hold[0]);
    char line[16] = "";
    CHECK(read(ready[0], line, sizeof line - 1) > 0 && strncmp(line, "ready", 5) == 0,
          "python3 did not start");
    char *cmd[] = { argv[3], "info", sock, "--json", NULL };
    char *out;
    int st = run_capture(cmd, NULL, NULL, NULL, &out, NULL);
    close(hold[1]);
    kill(py, SIGTERM);
    waitpid(py, NULL, 0);
    unlink(sock);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "slabdefrag info failed (status %#x): %s", st, out);
    CHECK(strstr(out, "\"malloc-16\"") && strstr(out, "\"malloc-32768\""), "no malloc-* caches: %.400s", out);
    unsigned long long active = 0;
    for (const char *a = strstr(out, "\"objects_active\": "); a; a = strstr(a + 1, "\"objects_active\": "))
        active += strtoull(a + 18, NULL, 10);
    CHECK(active > 10000, "the malloc-* caches should hold python's objects: %llu", active);
    free(out);
    free(exe);
    return 0;
}
