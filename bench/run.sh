#!/usr/bin/env bash
# bench/run.sh: run the allocator comparison and print the table (make bench).
#
# Every allocator has its own executable (bench_alloc_<name>) and every
# (test, size) runs in a fresh process.  Repetitions are interleaved: each
# repetition runs every test and size once for every allocator, and the
# allocator order rotates from one repetition to the next, so the noise of a
# busy 2-core machine spreads over all allocators instead of hitting one.
# bench/alloc_table.py takes the median per cell and prints the table.
#
# Usage:
#   bench/run.sh [BUILD_DIR]                           full run (BUILD_DIR: build)
#   BENCH_QUICK=1 bench/run.sh [BUILD_DIR]             smoke run, about a minute
#   bench/run.sh mt [BUILD_DIR]                        only the multi-thread table
#   bench/run.sh callgrind BUILD_DIR TEST SIZE [ALLOC...]
#       instruction counts of the timed region under valgrind --tool=callgrind,
#       Ir per operation and the top functions for each allocator (default:
#       slabdefrag and every peer).  Repeatable where wall time is not.
#       BENCH_CG_ARGS overrides the executable's arguments (default --quick).
#
# Environment:
#   BENCH_QUICK=1            small counts, 1 repetition, 256 MiB retention
#   BENCH_REPS=N             repetitions of churn/batch/xthread (5; quick 1)
#   BENCH_RETENTION_MB=N     retention payload in MiB (6144; quick 256)
#   BENCH_RETENTION_REPS=N   repetitions of retention (3; quick 1)
#   BENCH_TESTS="churn batch xthread retention"   subset of tests
#   BENCH_SIZES="64 256 1024"                     object sizes (not retention: 120)
#   BENCH_ALLOCS="slabdefrag slabdefrag_malloc glibc jemalloc mimalloc tcmalloc"
#   BENCH_STAT=min           summarise repetitions by their minimum, not median
#   BENCH_OTHERS=0           skip the other benchmarks (bench_bufcache) after the table
#   BENCH_MT=0               skip the multi-thread table (bench_mt_<alloc>: thread-local
#                            churn and a ring of cross-thread frees, 1..N threads)
#   BENCH_MT_THREADS="1 2 4" thread counts (default: powers of two up to 2 x nproc)
#   BENCH_MT_REPS=N          repetitions of the multi-thread runs (5; quick 1)
#   BENCH_MT_SIZE=N          object size of the multi-thread runs (64)
# Raw results go to BUILD_DIR/bench-results/alloc-<time>.log, the table next
# to it (.txt).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
all_allocs="slabdefrag slabdefrag_malloc glibc jemalloc mimalloc tcmalloc"

die() { echo "run.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- callgrind
callgrind_total_ir() { # the "totals:" line of a callgrind file (summary: is 0 with
  awk '/^totals:/ {print $2; exit}' "$1"   # --instr-atstart=no)
}

run_callgrind() {
  [ $# -ge 4 ] || die "usage: run.sh callgrind BUILD_DIR TEST SIZE [ALLOC...]"
  local build=$1 test=$2 size=$3; shift 3
  local allocs=${*:-$all_allocs} outdir args
  command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
  outdir="$build/bench-results"; mkdir -p "$outdir"
  read -r -a args <<<"${BENCH_CG_ARGS:---quick}"
  for a in $allocs; do
    local exe="$build/bench/bench_alloc_$a" cg="$outdir/callgrind.$a.$test.$size.out"
    [ -x "$exe" ] || { echo "== $a: $exe not built, skipped"; continue; }
    local log; log=$(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$cg" \
      "$exe" --test "$test" --size "$size" "${args[@]}" 2>/dev/null)
    local ops ir; ops=$(sed -n 's/^MEASURED .* ops=\([0-9]*\).*/\1/p' <<<"$log")
    ir=$(callgrind_total_ir "$cg")
    echo "== $a: $test size=$size: $ir Ir for $ops ops = $(awk -v i="$ir" -v o="$ops" \
      'BEGIN { printf "%.1f", (o > 0 ? i / o : 0) }') Ir/op   ($cg)"
    # The function table only (self cost): the lines after its header, top 15.
    callgrind_annotate --auto=no "$cg" 2>/dev/null |
      awk '/file:function/ {on = 1; getline; next} on && NF == 0 {exit} on' | head -n 15
  done
}

# ---------------------------------------------------------------- full run
# One run of one executable; its RESULT lines (or a FAILED line) go to $log.
run_one() {
  local exe=$1 alloc=$2 test=$3 size=$4 log=$5; shift 5
  local out rc=0
  out=$("$exe" --test "$test" --size "$size" "$@" 2>&1) || rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAILED alloc=$alloc test=$test size=$size rc=$rc" >>"$log"
    echo "  $alloc $test $size: FAILED (exit $rc): $(tail -n 2 <<<"$out" | tr '\n' ' ')" >&2
    return 0
  fi
  grep '^RESULT' <<<"$out" >>"$log" || true
}

# The allocator list rotated left by $1 places.
rotate() {
  local n=$1; shift
  local list=("$@") k=${#list[@]} i
  for ((i = 0; i < k; i++)); do printf '%s ' "${list[(i + n) % k]}"; done
}

run_full() {
  local build=${1:-build}
  [ -d "$build/bench" ] || die "$build/bench does not exist: build first (make build)"
  local quick=${BENCH_QUICK:-0} reps retention_reps retention_mb
  if [ "$quick" = 1 ]; then
    reps=${BENCH_REPS:-1}; retention_reps=${BENCH_RETENTION_REPS:-1}
    retention_mb=${BENCH_RETENTION_MB:-256}
  else
    reps=${BENCH_REPS:-5}; retention_reps=${BENCH_RETENTION_REPS:-3}
    retention_mb=${BENCH_RETENTION_MB:-6144}
  fi
  local tests=${BENCH_TESTS:-churn batch xthread retention} sizes=${BENCH_SIZES:-64 256 1024}
  local quick_arg=(); [ "$quick" = 1 ] && quick_arg=(--quick)

  local allocs=()
  for a in ${BENCH_ALLOCS:-$all_allocs}; do
    local exe="$build/bench/bench_alloc_$a"
    if [ ! -x "$exe" ]; then echo "run.sh: $exe not built; $a is left out" >&2; continue; fi
    # Refuse to compare under a wrong name: the executable checks what serves malloc.
    "$exe" --identify || die "$exe does not run on $a (see the ALLOCATOR line)"
    allocs+=("$a")
  done
  [ ${#allocs[@]} -gt 0 ] || die "no benchmark executables in $build/bench"

  local outdir="$build/bench-results" stamp; stamp=$(date +%Y%m%d-%H%M%S)
  mkdir -p "$outdir"
  local log="$outdir/alloc-$stamp.log"
  {
    echo "# slabdefrag allocator benchmark, $(date -Is), $(uname -r), $(nproc) CPUs"
    echo "# quick=$quick reps=$reps retention_reps=$retention_reps retention_mb=$retention_mb"
    echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  } >"$log"
  echo "run.sh: ${allocs[*]}; tests: $tests; sizes: $sizes; $reps reps" \
       "(retention: $retention_reps x $retention_mb MiB); raw results: $log"

  local start=$SECONDS
  # Retention first: it needs ~7 GiB per process, so a machine that cannot give
  # it that fails in the first minute rather than at the end.
  if [[ " $tests " == *" retention "* ]]; then
    for ((rep = 0; rep < retention_reps; rep++)); do
      for a in $(rotate "$rep" "${allocs[@]}"); do
        run_one "$build/bench/bench_alloc_$a" "$a" retention 120 "$log" \
          --retention-mb "$retention_mb" "${quick_arg[@]}"
      done
      echo "run.sh: retention $((rep + 1))/$retention_reps done ($((SECONDS - start)) s)"
    done
  fi
  for ((rep = 0; rep < reps; rep++)); do
    for test in $tests; do
      [ "$test" = retention ] && continue
      for size in $sizes; do
        for a in $(rotate "$rep" "${allocs[@]}"); do
          run_one "$build/bench/bench_alloc_$a" "$a" "$test" "$size" "$log" "${quick_arg[@]}"
        done
      done
    done
    echo "run.sh: repetition $((rep + 1))/$reps done ($((SECONDS - start)) s)"
  done
  echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg); $((SECONDS - start)) s" >>"$log"

  local table="${log%.log}.txt"
  if command -v python3 >/dev/null; then
    python3 "$here/alloc_table.py" ${BENCH_STAT:+--stat "$BENCH_STAT"} "$log" | tee "$table"
  else
    echo "run.sh: python3 not found; raw results:"; grep '^RESULT' "$log"
  fi
  [ "${BENCH_MT:-1}" = 0 ] || run_mt "$build"
  run_other_benchmarks "$build"
}

# ---------------------------------------------------------------- multi-thread
# Thread counts 1, 2, 4 .. up to 2 x nproc (and 2 x nproc itself).
mt_thread_counts() {
  local max=$(($(nproc) * 2)) n=1 out=""
  while [ $n -lt "$max" ]; do out+="$n "; n=$((n * 2)); done
  echo "$out$max"
}

# bench_mt_<alloc> for every allocator, test (churn, ring) and thread count,
# interleaved and rotated like the main table; bench/mt_table.py prints the
# medians.  The ring needs 2 threads, so it starts at 2.
run_mt() {
  local build=${1:-build} quick=${BENCH_QUICK:-0}
  local reps=${BENCH_MT_REPS:-$([ "$quick" = 1 ] && echo 1 || echo 5)}
  local threads=${BENCH_MT_THREADS:-$(mt_thread_counts)} size=${BENCH_MT_SIZE:-64}
  local quick_arg=(); [ "$quick" = 1 ] && quick_arg=(--quick)
  local allocs=() a
  for a in ${BENCH_ALLOCS:-$all_allocs}; do
    local exe="$build/bench/bench_mt_$a"
    [ -x "$exe" ] || { echo "run.sh: $exe not built; $a is left out" >&2; continue; }
    "$exe" --identify >/dev/null || die "$exe does not run on $a"
    allocs+=("$a")
  done
  [ ${#allocs[@]} -gt 0 ] || die "no bench_mt_* executables in $build/bench"
  local outdir="$build/bench-results" stamp; stamp=$(date +%Y%m%d-%H%M%S)
  mkdir -p "$outdir"
  local log="$outdir/mt-$stamp.log" start=$SECONDS
  echo "# slabdefrag multi-thread benchmark, $(date -Is), $(nproc) CPUs, size $size," \
       "threads $threads, $reps reps; load $(cut -d' ' -f1-3 /proc/loadavg)" >"$log"
  echo; echo "run.sh: multi-thread: ${allocs[*]}; threads: $threads; $reps reps; raw: $log"
  local rep test n
  for ((rep = 0; rep < reps; rep++)); do
    for test in churn ring; do
      for n in $threads; do
        [ "$test" = ring ] && [ "$n" -lt 2 ] && continue
        for a in $(rotate "$rep" "${allocs[@]}"); do
          run_one "$build/bench/bench_mt_$a" "$a" "$test" "$size" "$log" \
            --threads "$n" "${quick_arg[@]}"
        done
      done
    done
    echo "run.sh: multi-thread repetition $((rep + 1))/$reps done ($((SECONDS - start)) s)"
  done
  local table="${log%.log}.txt"
  if command -v python3 >/dev/null; then
    python3 "$here/mt_table.py" "$log" | tee "$table"
  else
    grep '^RESULT' "$log"
  fi
}

# Other benchmarks built into BUILD_DIR/bench (e.g. bench_bufcache, from
# bench/bufcache.cmake) run after the allocator table, with the same BENCH_*
# environment and --quick in a quick run; each prints its own report.
# BENCH_OTHERS=0 skips them.
run_other_benchmarks() {
  local exe quick_arg=()
  [ "${BENCH_OTHERS:-1}" = 0 ] && return 0
  [ "${BENCH_QUICK:-0}" = 1 ] && quick_arg=(--quick)
  for exe in "$1"/bench/bench_*; do
    [ -x "$exe" ] && [ -f "$exe" ] || continue
    case $(basename "$exe") in bench_alloc_* | bench_mt_*) continue ;; esac
    echo; echo "== $(basename "$exe") ${quick_arg[*]}"
    "$exe" "${quick_arg[@]}" || echo "run.sh: $(basename "$exe") failed (exit $?)" >&2
  done
}

case ${1:-} in
  callgrind) shift; run_callgrind "$@" ;;
  mt) shift; run_mt "$@" ;;
  -h | --help) sed -n '2,37p' "$0" ;;
  *) run_full "$@" ;;
esac
