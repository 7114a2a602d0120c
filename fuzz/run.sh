#!/bin/sh
# fuzz/run.sh BUILD_DIR SECONDS — run every libFuzzer target built in
# BUILD_DIR/fuzz (fuzz_<target>) for SECONDS each, starting from a scratch copy of
# the committed corpus fuzz/corpus/<target>/ (the committed corpus is never
# modified).  Builds nothing: configure BUILD_DIR with -DSLABDEFRAG_FUZZ=ON and
# clang first (`make fuzz` does both).  Crash inputs are kept under
# $FUZZ_WORK (default: a fresh directory in /tmp) and named in the output.
# Exit status: 0 when every target ran without a crash, 1 otherwise (including
# "no targets found").  Extra libFuzzer flags: $FUZZ_FLAGS.
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
work=${FUZZ_WORK:-$(mktemp -d /tmp/slabdefrag-fuzz.XXXXXX)}
mkdir -p "$work"

targets=$(find "$build/fuzz" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x 2>/dev/null | sort)
if [ -z "$targets" ]; then
    echo "fuzz/run.sh: no fuzz_* targets in $build/fuzz (configure with -DSLABDEFRAG_FUZZ=ON)" >&2
    exit 1
fi
if ! "$(echo "$targets" | head -n1)" -help=1 2>&1 | grep -q max_total_time; then
    echo "fuzz/run.sh: the targets in $build/fuzz are not libFuzzer binaries (SLABDEFRAG_FUZZ=OFF?)" >&2
    exit 1
fi

# Image files (bufcache_ops) go to $TMPDIR; unless one is set, a tmpfs where
# fdatasync costs nothing: it took most of an input's time on a disk.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi

failed=0
for bin in $targets; do
    name=$(basename "$bin")
    t=${name#fuzz_}
    corpus=$work/$t/corpus
    artifacts=$work/$t/artifacts/
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$here/corpus/$t" ]; then
        cp "$here/corpus/$t"/* "$corpus"/ 2>/dev/null || true
    fi
    echo "== $t: $secs s, corpus $(ls "$corpus" | wc -l) files, log $work/$t/log"
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$secs" -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$artifacts" ${FUZZ_FLAGS:-} "$corpus" >"$work/$t/log" 2>&1
    rc=$?
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^Done [0-9]+ runs' "$work/$t/log"
    if [ $rc -ne 0 ]; then
        failed=1
        echo "== $t: FAILED (exit $rc); last lines of the log:"
        tail -n 40 "$work/$t/log"
        for a in "$artifacts"*; do
            [ -e "$a" ] && echo "== $t: crash input $a (replay: $bin $a)"
        done
    else
        echo "== $t: ok, corpus now $(ls "$corpus" | wc -l) files"
    fi
done
exit $failed
