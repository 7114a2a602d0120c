#!/usr/bin/env bash
# bench/defrag_run.sh: defragmentation against its physical limit, and across
# allocators.
#
# For each pattern (random: a random 90% freed; sparse: one object per 4 KiB
# kept; half: every other object freed) and each size (BENCH_SIZES MiB of 256 B
# objects), runs bench_defrag (slabdefrag: one slab_cache_shrink pass),
# bench_defrag --background (slabdefrag's background defragmenter) and, when
# asked, bench_defrag_<peer> (the peer's purge call), BENCH_REPS times, each run
# in a fresh process, allocators in rotating order.  Every run measures in its
# own process, right after the pass, the pass's physical limit: a memcpy of the
# bytes it moved between resident buffers plus one MADV_DONTNEED of the bytes
# it released, best of 3 (see defrag_bench.c).  The table shows the median
# pass time, limit and pass/limit ratio (per run, then the median), the same
# ratio in CPU time (pass CPU / limit CPU: what to read when other processes
# load the machine, since wall times then include waiting for a CPU), RSS/live
# after, and the longest background step (CPU time of a step).  For the
# background defragmenter "pass ms" is the wall time until it is done,
# budget sleeps included: its ratio is not a pass's.
# Targets: pass/limit <= 2 (slabdefrag), RSS/live after <= 1.10, longest
# background step <= 1 ms.
#
# Usage: bench/defrag_run.sh [BUILD_DIR]      (default: build)
# Environment: BENCH_SIZES ("256 1024"), BENCH_QUICK=1 (sizes "64", 1 rep),
#   BENCH_REPS (3), BENCH_PATTERNS ("random sparse half"),
#   BENCH_ALLOCS ("slabdefrag slabdefrag-bg"; add glibc jemalloc mimalloc
#   tcmalloc for the peers).
# Raw lines go to BUILD_DIR/bench-results/defrag-<time>.log, the table next to it.
set -euo pipefail

build=${1:-build}
[ -d "$build/bench" ] || { echo "defrag_run.sh: $build/bench missing: build first" >&2; exit 1; }
quick=${BENCH_QUICK:-0}
reps=${BENCH_REPS:-3}; [ "$quick" = 1 ] && reps=${BENCH_REPS:-1}
sizes=${BENCH_SIZES:-256 1024}; [ "$quick" = 1 ] && sizes=${BENCH_SIZES:-64}
patterns=${BENCH_PATTERNS:-random sparse half}
allocs=()
for a in ${BENCH_ALLOCS:-slabdefrag slabdefrag-bg}; do
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
echo "# defrag benchmark $(date -Is) $(nproc) CPUs sizes=$sizes reps=$reps load $(cut -d' ' -f1-3 /proc/loadavg)" >"$log"
echo "defrag_run.sh: ${allocs[*]}; patterns: $patterns; sizes: $sizes MiB; $reps reps; raw: $log"

n=${#allocs[@]}
for ((rep = 0; rep < reps; rep++)); do
  for mb in $sizes; do
    for p in $patterns; do
      for ((k = 0; k < n; k++)); do
        a=${allocs[(k + rep) % n]}
        case $a in
          slabdefrag) cmd=("$build/bench/bench_defrag") ;;
          slabdefrag-bg) cmd=("$build/bench/bench_defrag" --background) ;;
          *) cmd=("$build/bench/bench_defrag_$a") ;;
        esac
        if out=$("${cmd[@]}" --mb "$mb" --pattern "$p" 2>&1); then
          grep '^DEFRAG' <<<"$out" >>"$log" || true
        else
          echo "  $a $p $mb MiB: FAILED: $(tail -n 2 <<<"$out" | tr '\n' ' ')" >&2
          echo "FAILED alloc=$a pattern=$p mb=$mb" >>"$log"
        fi
      done
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
    rows[(kv["pattern"], int(kv["mb"]), kv["alloc"])].append(kv)
def med(rs, key):
    return statistics.median(float(r[key]) for r in rs)
order = ["slabdefrag", "slabdefrag-bg", "glibc", "jemalloc", "mimalloc", "tcmalloc"]
sizes = sorted({k[1] for k in rows})
print(f"{'pattern':8} {'MiB':>5} {'allocator':14} {'moved MiB':>9} {'released MiB':>12} "
      f"{'pass ms':>8} {'limit ms':>8} {'pass/limit':>10} {'cpu ratio':>9} {'RSS/live':>8} {'longest step us':>15} {'n':>2}")
for p in ["random", "sparse", "half"]:
    for mb in sizes:
        for a in order:
            rs = rows.get((p, mb, a))
            if not rs:
                continue
            step = f"{med(rs, 'longest_step_us'):15.1f}" if a.endswith("-bg") else f"{'-':>15}"
            print(f"{p:8} {mb:5d} {a:14} {med(rs,'moved_mb'):9.1f} {med(rs,'released_mb'):12.1f} "
                  f"{med(rs,'wall_ms'):8.1f} {med(rs,'limit_ms'):8.1f} "
                  f"{med(rs,'pass_over_limit'):10.2f} {med(rs,'cpu_over_limit_cpu'):9.2f} "
                  f"{med(rs,'ratio_after'):8.2f} {step} {len(rs):2}")
print("targets: pass/limit <= 2 (slabdefrag); RSS/live after <= 1.10; longest background step <= 1000 us")
for p in ["random", "sparse", "half"]:
    for mb in sizes:
        rs = rows.get((p, mb, "slabdefrag"))
        if rs:
            q, r = med(rs, "pass_over_limit"), med(rs, "ratio_after")
            print(f"  {p} {mb} MiB: pass/limit {q:.2f} {'met' if q <= 2 else 'MISSED'}; "
                  f"RSS/live {r:.2f} {'met' if r <= 1.10 else 'MISSED'}")
        rs = rows.get((p, mb, "slabdefrag-bg"))
        if rs:
            s = med(rs, "longest_step_us")
            print(f"  {p} {mb} MiB background: longest step {s:.0f} us {'met' if s <= 1000 else 'MISSED'}")
PY
