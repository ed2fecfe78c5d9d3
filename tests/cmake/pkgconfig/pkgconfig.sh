#!/usr/bin/env bash
# Install smoke test with pkg-config only (no CMake on the consumer side):
#   pkgconfig.sh <prefix> <work dir> <C compiler> [<Fortran compiler>]
# 1. shared: cc consumer.c $(pkg-config --cflags --libs simtrack), run it.
# 2. static: in a copy of the prefix without libsimtrack.so*, link with
#    $(pkg-config --cflags --libs --static simtrack) and check the program does
#    not need libsimtrack.so — i.e. Libs.private is enough.
# 3. Fortran (if a compiler is given): pkg-config simtrack-fortran.
set -euo pipefail
prefix=$1 work=$2 cc=$3 fc=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../consumer

rm -rf "$work" && mkdir -p "$work" && cd "$work"
libdir=$(dirname "$(find "$prefix" -name simtrack.pc -path '*/pkgconfig/*' | head -n1)")/..
libdir=$(cd "$libdir" && pwd)

export PKG_CONFIG_PATH=$libdir/pkgconfig
echo "pkg-config --cflags --libs simtrack: $(pkg-config --cflags --libs simtrack)"
# shellcheck disable=SC2046
"$cc" -Wall -Wextra -Werror -o consumer_shared "$src/consumer.c" $(pkg-config --cflags --libs simtrack)
LD_LIBRARY_PATH=$libdir ./consumer_shared

cp -a "$prefix" static-prefix
rm -f static-prefix/"${libdir#"$prefix"/}"/libsimtrack.so*
export PKG_CONFIG_PATH=$work/static-prefix/${libdir#"$prefix"/}/pkgconfig
echo "pkg-config --cflags --libs --static simtrack: $(pkg-config --cflags --libs --static simtrack)"
# shellcheck disable=SC2046
"$cc" -Wall -Wextra -Werror -o consumer_static "$src/consumer.c" $(pkg-config --cflags --libs --static simtrack)
if readelf -d consumer_static | grep -q 'NEEDED.*libsimtrack'; then
    echo "consumer_static still needs libsimtrack.so" >&2
    exit 1
fi
./consumer_static

if [ -n "$fc" ]; then
    export PKG_CONFIG_PATH=$libdir/pkgconfig
    echo "pkg-config --cflags --libs simtrack-fortran: $(pkg-config --cflags --libs simtrack-fortran)"
    # shellcheck disable=SC2046
    "$fc" -o consumer_fortran "$src/consumer.f90" $(pkg-config --cflags --libs simtrack-fortran)
    LD_LIBRARY_PATH=$libdir ./consumer_fortran
fi
echo "pkg-config smoke test passed"
