#!/usr/bin/env bash
# The release tarball as a cluster installs it: scripts/package.sh makes it
# (Debug, sharing the cargo target directory of the rest of the suite), it is
# unpacked into a temporary directory, the modulefile is loaded with Debian's
# Lmod (the Lua one, then the Tcl one for Environment Modules: Debian's
# environment-modules conflicts with lmod, and Lmod reads Tcl modulefiles
# too; where a modulecmd.tcl exists it loads the Tcl file as well), and the C, C++ (simtrack.hpp, C++17 and C++20) and Fortran examples
# are built against it with pkg-config and with CMake's find_package, then
# run offline; `simtrack run` from the tarball wraps a program.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
lmod_init=/usr/share/lmod/lmod/init/bash
[ -r "$lmod_init" ] || { echo "50-package: Lmod not found (apt-get install lmod)" >&2; exit 1; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "== scripts/package.sh"
tarball=$(BUILD_TYPE=Debug BUILD_DIR="$T/build" scripts/package.sh "$T/dist" | tail -n1)
ls -l "$tarball"
mkdir -p "$T/unpacked/any/prefix"
tar -C "$T/unpacked/any/prefix" -xzf "$tarball"
prefix=$(echo "$T/unpacked/any/prefix"/simtrack-*)
rm -rf "$T/build"   # nothing may depend on the build tree

echo "== module load simtrack (Lmod)"
set +u
# shellcheck disable=SC1090
source "$lmod_init"
module use "$prefix/share/modulefiles"
module load simtrack
set -u
[ "$(command -v simtrack)" = "$prefix/bin/simtrack" ] || { echo "simtrack not from the tarball: $(command -v simtrack)"; exit 1; }
[ "$SIMTRACK_ROOT" = "$prefix" ] || { echo "SIMTRACK_ROOT=$SIMTRACK_ROOT"; exit 1; }
simtrack --version

export SIMTRACK_MODE=offline SIMTRACK_OFFLINE_DIR=$T/spool
unset SIMTRACK_URL SIMTRACK_TOKEN
cd "$T"
echo "== pkg-config: C, C++17, C++20, Fortran"
cc -Wall -Wextra -Werror "$root/examples/c/heat.c" $(pkg-config --cflags --libs simtrack) -lm -o heat_c
./heat_c >/dev/null
for std in c++17 c++20; do
    c++ -std=$std -Wall -Wextra -Werror -pedantic "$root/tests/package/hpp.cpp" \
        $(pkg-config --cflags --libs simtrack) -o "hpp_$std"
    "./hpp_$std"
done
gfortran -Wall -Werror "$root/examples/fortran/heat.f90" $(pkg-config --cflags --libs simtrack-fortran) -o heat_f
./heat_f >/dev/null

echo "== find_package (CMAKE_PREFIX_PATH from the module)"
mkdir -p cm && cat > cm/CMakeLists.txt <<CMAKE
cmake_minimum_required(VERSION 3.22)
project(consumer LANGUAGES C CXX Fortran)
find_package(simtrack 0.1 CONFIG REQUIRED COMPONENTS Fortran)
add_executable(heat_c "$root/examples/c/heat.c")
target_link_libraries(heat_c PRIVATE simtrack::simtrack m)
add_executable(hpp "$root/tests/package/hpp.cpp")
target_compile_features(hpp PRIVATE cxx_std_20)
target_link_libraries(hpp PRIVATE simtrack::simtrack)
add_executable(heat_f "$root/examples/fortran/heat.f90")
target_link_libraries(heat_f PRIVATE simtrack::fortran)
CMAKE
cmake -S cm -B cm/build -DCMAKE_Fortran_COMPILER=gfortran >/dev/null
cmake --build cm/build >/dev/null
cm/build/heat_c >/dev/null
cm/build/hpp
cm/build/heat_f >/dev/null

echo "== simtrack run from the tarball"
simtrack run --name packaged --metric 'x=x=(\S+)' -- sh -c 'echo x=1; echo x=2' >/dev/null
runs=$(ls "$SIMTRACK_OFFLINE_DIR/runs" | wc -l)
[ "$runs" -ge 7 ] || { echo "expected the runs of every program in the spool, found $runs"; exit 1; }
echo "== the Tcl modulefile (Environment Modules), loaded by Lmod"
version=$(basename "$prefix"); version=${version#simtrack-}
tcl=$prefix/share/modulefiles/simtrack/$version
head -n1 "$tcl" | grep -qx '#%Module1.0' || { echo "no Tcl modulefile at $tcl"; exit 1; }
check_module_env() { # what loading either modulefile must give
    [ "$(command -v simtrack)" = "$prefix/bin/simtrack" ] || { echo "$1: simtrack is $(command -v simtrack)"; exit 1; }
    [ "$SIMTRACK_ROOT" = "$prefix" ] || { echo "$1: SIMTRACK_ROOT=$SIMTRACK_ROOT"; exit 1; }
    [ "$(realpath "$(pkg-config --variable=prefix simtrack)")" = "$(realpath "$prefix")" ] || { echo "$1: pkg-config prefix $(pkg-config --variable=prefix simtrack)"; exit 1; }
    case ":$CMAKE_PREFIX_PATH:" in *":$prefix:"*) ;; *) echo "$1: CMAKE_PREFIX_PATH=$CMAKE_PREFIX_PATH"; exit 1;; esac
    simtrack --version >/dev/null
}
set +u
module unload simtrack
[ -z "${SIMTRACK_ROOT:-}" ] || { echo "unload left SIMTRACK_ROOT=$SIMTRACK_ROOT"; exit 1; }
mv "$tcl.lua" "$T/simtrack.lua"   # Lmod prefers the .lua file: take it away
module load simtrack
set -u
check_module_env "Lmod, Tcl modulefile"
cc -Wall -Werror "$root/examples/c/heat.c" $(pkg-config --cflags --libs simtrack) -lm -o heat_tcl
./heat_tcl >/dev/null
set +u; module unload simtrack; set -u
mv "$T/simtrack.lua" "$tcl.lua"
modulecmd=${MODULES_CMD:-}
for c in /usr/lib/x86_64-linux-gnu/modulecmd.tcl /usr/share/modules/libexec/modulecmd.tcl /usr/lib/modulecmd.tcl; do
    [ -n "$modulecmd" ] || { [ -r "$c" ] && modulecmd=$c; }
done
if [ -n "$modulecmd" ] && command -v tclsh >/dev/null; then
    echo "== the Tcl modulefile, loaded by Environment Modules ($modulecmd)"
    (
        eval "$(MODULEPATH=$prefix/share/modulefiles tclsh "$modulecmd" bash load simtrack)"
        check_module_env "Environment Modules"
    )
else
    echo "(no modulecmd.tcl: Environment Modules itself not tried; set MODULES_CMD to try one)"
fi
echo "50-package: all good"
