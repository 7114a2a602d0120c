/*
 * spin_model: runs the Promela model of the buffer_head defrag protocol
 * (spin/bh_defrag.pml) through spin/run.sh: the protocol as implemented must
 * verify with 0 errors (exhaustive search), and the NAIVE variant (the original
 * patch's get: no re-read of b_page after pinning, broken de-duplication) must produce
 * a counterexample to "kick only acts on the page that owns the buffer head".
 * The repository root is found from __FILE__ (CMake passes absolute paths).
 * Exit 77 (skip) only if spin or cc is absent (scripts/install-deps.sh installs
 * spin).  TEST_LABELS: nosan spin
 * (nosan: it runs an external model checker; a sanitizer build of this small
 * launcher would prove nothing about the library.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int main(void)
{
    char root[4096];
    snprintf(root, sizeof root, "%s", __FILE__);
    char *cut = strstr(root, "/tests/bhdefrag/");
    if (!cut) {
        fprintf(stderr, "cannot find the repository root from %s\n", __FILE__);
        return 1;
    }
    *cut = '\0';
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "sh '%s/spin/run.sh' '%s/spin'", root, root);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st)) {
        fprintf(stderr, "spin/run.sh did not run\n");
        return 1;
    }
    return WEXITSTATUS(st);
}
