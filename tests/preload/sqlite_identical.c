/* The sqlite3 shell runs an insert/index/delete/update/aggregate workload
 * byte-identically under the front end and under glibc.  Skips (77) only if
 * sqlite3 is not installed. */
#include "preload.h"

static const char sql[] =
    "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB, n REAL);\n"
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 60000)\n"
    "  INSERT INTO t SELECT x, printf('key%08d', (x * 7919) % 100003), zeroblob(x % 300), x / 7.0 FROM c;\n"
    "CREATE INDEX tk ON t(k);\n"
    "CREATE INDEX tn ON t(n, k);\n"
    "DELETE FROM t WHERE id % 3 = 0;\n"
    "UPDATE t SET k = k || '-u', v = zeroblob(length(v) * 2) WHERE id % 5 = 1;\n"
    "SELECT count(*), sum(length(v)), min(k), max(k), total(n) FROM t;\n"
    "SELECT k, length(v) FROM t WHERE k BETWEEN 'key00010000' AND 'key00010400' ORDER BY k;\n"
    "SELECT id % 17 AS g, count(*), group_concat(id % 10, '') FROM t WHERE id < 3000 GROUP BY g;\n"
    "VACUUM;\n"
    "SELECT count(*) FROM t;\n";

int main(int argc, char **argv)
{
    CHECK(argc >= 2, "usage: sqlite_identical LIBSLABDEFRAG_MALLOC_SO");
    skip_unless_installed("sqlite3");
    char *cmd[] = { "sqlite3", ":memory:", NULL };
    return same_output(cmd, argv[1], NULL, sql, 100);
}
