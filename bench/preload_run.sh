#!/usr/bin/env bash
# preload_run.sh: real programs on each allocator, preloaded the same way.
#
# usage: bench/preload_run.sh [BUILD_DIR]      (default: build)
#
# Workloads (each a fixed script, no input files):
#   python   python3 with PYTHONMALLOC=malloc (every object through malloc): 4
#            threads building and trimming dicts of lists and strings, json, sort
#   sqlite   the sqlite3 shell on an in-memory database: 300k inserts, two
#            indexes, deleting a third, updates that grow rows, aggregates, VACUUM
# Allocators: glibc (nothing preloaded), slabdefrag (BUILD_DIR/libslabdefrag-malloc.so),
# jemalloc, mimalloc, tcmalloc (the Debian libraries in /usr/lib/x86_64-linux-gnu,
# installed by `make deps`); a missing one is left out with a message.
# Each (workload, allocator) runs PRELOAD_REPS times (default 5), interleaved:
# repetition r runs every allocator once, in an order rotated by r, so drift in
# the machine's load spreads over all of them.  Wall time and peak RSS come from
# /usr/bin/time -f "%e %M"; the table shows medians and the ratio to the best peer.
# Every run's output is compared with glibc's: a different output is an error.
set -euo pipefail

build=${1:-build}
reps=${PRELOAD_REPS:-5}
lib=/usr/lib/x86_64-linux-gnu
so=$(cd "$build" && pwd)/libslabdefrag-malloc.so
[ -e "$so" ] || { echo "preload_run.sh: $so not built" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "preload_run.sh: /usr/bin/time missing (make deps)" >&2; exit 1; }

declare -A preload=([glibc]="" [slabdefrag]="$so" [jemalloc]="$lib/libjemalloc.so.2"
                    [mimalloc]="$lib/libmimalloc.so.2" [tcmalloc]="$lib/libtcmalloc_minimal.so.4")
allocs=()
for a in slabdefrag glibc jemalloc mimalloc tcmalloc; do
  if [ -n "${preload[$a]}" ] && [ ! -e "${preload[$a]}" ]; then
    echo "preload_run.sh: ${preload[$a]} missing; $a left out" >&2; continue
  fi
  allocs+=("$a")
done

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat >"$work/python.py" <<'PY'
import json, threading
def work(seed, out):
    total = 0
    for rnd in range(2):
        d = {}
        for i in range(60000):
            k = 'k%d' % ((i * 7919 + seed + rnd) % 200000)
            d[k] = [i, str(i) * (i % 9), {'x': i % 13, 'y': (i, seed)}]
            if i % 3 == 0:
                d.pop('k%d' % (i // 2), None)
        s = json.dumps(sorted(d.items())[:20000])
        total += len(s) + len(d)
    out[seed] = total
out = {}
ts = [threading.Thread(target=work, args=(s, out)) for s in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sorted(out.items()))
PY
cat >"$work/sqlite.sql" <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB, n REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000)
  INSERT INTO t SELECT x, printf('key%08d', (x * 7919) % 1000003), zeroblob(x % 400), x / 7.0 FROM c;
CREATE INDEX tk ON t(k);
CREATE INDEX tn ON t(n, k);
DELETE FROM t WHERE id % 3 = 0;
UPDATE t SET k = k || '-u', v = zeroblob(length(v) * 2) WHERE id % 5 = 1;
SELECT count(*), sum(length(v)), min(k), max(k), total(n) FROM t;
SELECT id % 17 AS g, count(*), sum(length(k)) FROM t GROUP BY g ORDER BY g;
VACUUM;
SELECT count(*) FROM t;
SQL

run_one() { # workload alloc -> "seconds kib" on stdout; output compared with glibc's
  local w=$1 a=$2 out="$work/out.$1.$2" t="$work/time"
  local env=(env LD_PRELOAD="${preload[$a]}")
  [ -z "${preload[$a]}" ] && env=(env -u LD_PRELOAD)
  case $w in
    python) PYTHONMALLOC=malloc /usr/bin/time -o "$t" -f "%e %M" "${env[@]}" python3 "$work/python.py" >"$out" ;;
    sqlite) /usr/bin/time -o "$t" -f "%e %M" "${env[@]}" sqlite3 :memory: <"$work/sqlite.sql" >"$out" ;;
  esac
  if [ -e "$work/out.$w.glibc" ] && ! cmp -s "$out" "$work/out.$w.glibc"; then
    echo "preload_run.sh: $w output under $a differs from glibc's" >&2; exit 1
  fi
  cat "$t"
}

rotate() { local n=$1; shift; local l=("$@") k=$#; for ((i = 0; i < k; i++)); do printf '%s ' "${l[(i + n) % k]}"; done; }

declare -A times rss
for w in python sqlite; do
  command -v "$([ $w = python ] && echo python3 || echo sqlite3)" >/dev/null ||
    { echo "preload_run.sh: $w missing, skipped" >&2; continue; }
  run_one "$w" glibc >/dev/null # reference output
  for ((r = 0; r < reps; r++)); do
    for a in $(rotate "$r" "${allocs[@]}"); do
      read -r s k < <(run_one "$w" "$a")
      times[$w.$a]+="$s "; rss[$w.$a]+="$k "
    done
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg); medians of $reps interleaved runs"
printf '%-8s %-11s %9s %12s\n' workload allocator "time s" "peak RSS MiB"
for w in python sqlite; do
  [ -n "${times[$w.glibc]:-}" ] || continue
  best_t=""; best_r=""
  for a in "${allocs[@]}"; do
    t=$(median <<<"${times[$w.$a]}"); m=$(median <<<"${rss[$w.$a]}")
    printf '%-8s %-11s %9.2f %12.1f\n' "$w" "$a" "$t" "$(awk -v k="$m" 'BEGIN {print k / 1024}')"
    if [ "$a" != slabdefrag ]; then
      best_t=$(awk -v a="$t" -v b="$best_t" 'BEGIN {print (b == "" || a < b) ? a : b}')
      best_r=$(awk -v a="$m" -v b="$best_r" 'BEGIN {print (b == "" || a < b) ? a : b}')
    fi
  done
  t=$(median <<<"${times[$w.slabdefrag]}"); m=$(median <<<"${rss[$w.slabdefrag]}")
  awk -v t="$t" -v bt="$best_t" -v m="$m" -v bm="$best_r" -v w="$w" \
    'BEGIN {printf "%-8s slabdefrag / best peer: time %.2fx, peak RSS %.2fx (target <= 1.0 each)\n", w, t / bt, m / bm}'
done
