#!/usr/bin/env bash
# bench/defrag_run.sh: the defragmentation benchmark across allocators.
#
# Runs bench_defrag (slabdefrag: slab_cache_shrink), bench_defrag --background
# (slabdefrag's background defragmenter) and bench_defrag_<peer> (the peer's
# purge call) for the patterns random, sparse and half, BENCH_REPS times with
# the allocator order rotating, each run in a fresh process; prints the median
# of each cell.  Targets (issue 3): RSS/live <= 1.10 after defrag on all three
# patterns; defrag wall <= 3x the memcpy of the live bytes; longest background
# step <= 1 ms.
#
# Usage: bench/defrag_run.sh [BUILD_DIR]      (default: build)
# Environment: BENCH_DEFRAG_MB (1024), BENCH_QUICK=1 (64 MiB, 1 rep),
#   BENCH_REPS (3), BENCH_PATTERNS ("random sparse half"),
#   BENCH_ALLOCS ("slabdefrag slabdefrag-bg glibc jemalloc mimalloc tcmalloc").
# Raw lines go to BUILD_DIR/bench-results/defrag-<time>.log, the table next to it.
set -euo pipefail

build=${1:-build}
[ -d "$build/bench" ] || { echo "defrag_run.sh: $build/bench missing: build first" >&2; exit 1; }
quick=${BENCH_QUICK:-0}
reps=${BENCH_REPS:-3}; [ "$quick" = 1 ] && reps=${BENCH_REPS:-1}
patterns=${BENCH_PATTERNS:-random sparse half}
allocs=()
for a in ${BENCH_ALLOCS:-slabdefrag slabdefrag-bg glibc jemalloc mimalloc tcmalloc}; do
  case $a in
    slabdefrag | slabdefrag-bg) exe=$build/bench/bench_defrag ;;
    *) exe=$build/bench/bench_defrag_$a ;;
  esac
  if [ -x "$exe" ] && "$exe" --identify >/dev/null; then allocs+=("$a")
  else echo "defrag_run.sh: $exe missing or not verified; $a left out" >&2; fi
done
[ ${#allocs[@]} -gt 0 ] || { echo "defrag_run.sh: nothing to run" >&2; exit 1; }

outdir=$build/bench-results; mkdir -p "$outdir"
log=$outdir/defrag-$(date +%Y%m%d-%H%M%S).log
echo "# defrag benchmark $(date -Is) $(nproc) CPUs mb=${BENCH_DEFRAG_MB:-default} quick=$quick reps=$reps load $(cut -d' ' -f1-3 /proc/loadavg)" >"$log"
echo "defrag_run.sh: ${allocs[*]}; patterns: $patterns; $reps reps; raw: $log"

n=${#allocs[@]}
for ((rep = 0; rep < reps; rep++)); do
  for p in $patterns; do
    for ((k = 0; k < n; k++)); do
      a=${allocs[(k + rep) % n]}
      case $a in
        slabdefrag) cmd=("$build/bench/bench_defrag") ;;
        slabdefrag-bg) cmd=("$build/bench/bench_defrag" --background) ;;
        *) cmd=("$build/bench/bench_defrag_$a") ;;
      esac
      [ "$quick" = 1 ] && cmd+=(--quick)
      if out=$("${cmd[@]}" --pattern "$p" 2>&1); then
        grep '^DEFRAG' <<<"$out" >>"$log" || true
      else
        echo "  $a $p: FAILED: $(tail -n 2 <<<"$out" | tr '\n' ' ')" >&2
        echo "FAILED alloc=$a pattern=$p" >>"$log"
      fi
    done
  done
  echo "defrag_run.sh: repetition $((rep + 1))/$reps done"
done

python3 - "$log" <<'PY' | tee "${log%.log}.txt"
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if not line.startswith("DEFRAG "):
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    rows[(kv["pattern"], kv["alloc"])].append(kv)
def med(rs, key):
    return statistics.median(float(r[key]) for r in rs)
order = ["slabdefrag", "slabdefrag-bg", "glibc", "jemalloc", "mimalloc", "tcmalloc"]
print(f"{'pattern':8} {'allocator':14} {'live MiB':>8} {'RSS/live before':>15} {'after':>6} "
      f"{'wall ms':>8} {'cpu ms':>8} {'MiB back':>8} {'cpu ms/MB':>9} {'memcpy ms':>9} "
      f"{'wall/memcpy':>11} {'longest step us':>15} {'n':>2}")
for p in ["random", "sparse", "half"]:
    for a in order:
        rs = rows.get((p, a))
        if not rs:
            continue
        step = f"{med(rs, 'longest_step_us'):15.1f}" if a.endswith("-bg") else f"{'-':>15}"
        print(f"{p:8} {a:14} {med(rs,'live_mb'):8.1f} {med(rs,'ratio_before'):15.2f} "
              f"{med(rs,'ratio_after'):6.2f} {med(rs,'wall_ms'):8.1f} {med(rs,'cpu_ms'):8.1f} "
              f"{med(rs,'returned_mb'):8.1f} {med(rs,'cpu_ms_per_mb'):9.3f} "
              f"{med(rs,'memcpy_ms'):9.2f} {med(rs,'wall_over_memcpy'):11.2f} {step} {len(rs):2}")
print("targets: RSS/live after <= 1.10 (all patterns); wall/memcpy <= 3 (slabdefrag);"
      " longest background step <= 1000 us")
for p in ["random", "sparse", "half"]:
    rs = rows.get((p, "slabdefrag"))
    if rs:
        r, w = med(rs, "ratio_after"), med(rs, "wall_over_memcpy")
        print(f"  {p}: RSS/live {r:.2f} {'met' if r <= 1.10 else 'MISSED'}; "
              f"wall/memcpy {w:.1f} {'met' if w <= 3 else 'MISSED'}")
    rs = rows.get((p, "slabdefrag-bg"))
    if rs:
        s = med(rs, "longest_step_us")
        print(f"  {p} background: longest step {s:.0f} us {'met' if s <= 1000 else 'MISSED'}")
PY
