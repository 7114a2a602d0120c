/* The Redis-style sweep: a malloc'd table of 400k entries (~100 B values),
 * 90% deleted at random, then every entry asked slab_malloc_defrag_hint and
 * moved if told.  Before the sweep the heap holds several times the live bytes;
 * after it, heap RSS / live <= 1.3, and every entry still verifies. */
#include "preload.h"

static size_t field(const char *out, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, " %s=", name);
    const char *p = strstr(out, key);
    if (!p && strncmp(out, key + 1, strlen(key + 1)) == 0)
        p = out - 1;
    CHECK(p, "no %s in output: %s", name, out);
    return strtoull(p + strlen(key), NULL, 10);
}

int main(int argc, char **argv)
{
    CHECK(argc >= 3, "usage: hint_sweep LIBSLABDEFRAG_MALLOC_SO KVTABLE");
    char *cmd[] = { argv[2], "--entries", "400000", "--delete", "90", NULL };
    char *out;
    int st = run_capture(cmd, argv[1], NULL, NULL, &out, NULL);
    fprintf(stderr, "%s", out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "kvtable failed (status %#x)", st);
    CHECK(strstr(out, "verify=ok") && field(out, "sweep") == 1, "sweep must run and verify");
    double live = (double)field(out, "live"), base = (double)field(out, "base");
    double before = (field(out, "rss_deleted") - base) / live;
    double after = (field(out, "rss_swept") - base) / live;
    fprintf(stderr, "heap RSS / live: %.2f after deleting, %.2f after the sweep\n", before, after);
    CHECK(before > 2.0, "the deletion should fragment the table (%.2f)", before);
    CHECK(field(out, "moved") > 0 && field(out, "moved") == field(out, "hinted"), "moves");
    CHECK(after <= 1.3, "RSS / live after the sweep %.2f > 1.3", after);
    free(out);
    return 0;
}
