#!/usr/bin/env bash
# Installs the Debian packages that the build, the tests and the benchmarks need,
# but only those missing.  Called by `make test`, `make demo` and `make bench`.
set -eu
want="cmake make gcc clang libclang-rt-14-dev pkg-config libjemalloc-dev libmimalloc-dev
      libgoogle-perftools-dev libext2fs-dev e2fsprogs spin gnuplot-nox python3 sqlite3 time"
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
