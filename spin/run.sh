#!/bin/sh
# spin/run.sh: verify spin/bh_defrag.pml exhaustively.  The real protocol must
# verify with 0 errors; the NAIVE variant (the seed) must produce a
# counterexample.  Usage: run.sh [spin-dir]; exit 0 iff both hold, 77 if spin
# or cc is missing.
set -u
dir=${1:-$(dirname "$0")}
dir=$(cd "$dir" && pwd)
command -v spin >/dev/null 2>&1 || { echo "spin not installed (scripts/install-deps.sh)"; exit 77; }
command -v cc >/dev/null 2>&1 || { echo "cc not found"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/bhspin-XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
cp "$dir/bh_defrag.pml" . || exit 1

verify() { # $1: label, $2: extra spin flags; prints pan's report, echoes error count
    rm -f pan pan.* ./*.trail
    spin $2 -a bh_defrag.pml >spin.out 2>&1 || { cat spin.out >&2; echo -1; return; }
    cc -O2 -w -DSAFETY -o pan pan.c >cc.out 2>&1 || { cat cc.out >&2; echo -1; return; }
    ./pan -m100000 >pan.out 2>&1
    sed 's/^/    /' pan.out >&2
    if [ -n "$(ls ./*.trail 2>/dev/null)" ]; then
        echo "  counterexample ($1):" >&2
        spin $2 -t -p bh_defrag.pml 2>&1 | grep -vE "^ *$" | tail -30 | sed 's/^/    /' >&2
    fi
    sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.out | head -1
}

echo "== real protocol" >&2
real=$(verify real "")
echo "== NAIVE (seed) protocol" >&2
naive=$(verify naive "-DNAIVE")
echo "real errors: ${real:-?}; naive errors: ${naive:-?}"
[ "${real:-x}" = 0 ] || { echo "FAIL: the real protocol does not verify"; exit 1; }
case "${naive:-x}" in
    ''|x|0|-1) echo "FAIL: the naive protocol was not refuted"; exit 1 ;;
esac
echo "OK: real verified, naive refuted"
exit 0
