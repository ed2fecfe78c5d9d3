#!/usr/bin/env bash
# Makes the relocatable release tarball:
#   simtrack-<version>-linux-<arch>.tar.gz, holding simtrack-<version>/ with
#   bin/simtrack, lib/ (shared + static library, Fortran module library,
#   CMake package, pkg-config files), include/ (simtrack.h, simtrack.hpp,
#   Fortran .mod files under simtrack/fortran/<compiler>-<major>/) and
#   share/modulefiles/simtrack/<version>.lua (an Lmod modulefile) and
#   share/modulefiles/simtrack/<version> (the same in Tcl, for Environment
#   Modules; Lmod prefers the .lua beside it). Both find the prefix from
#   their own location, so the tree works unpacked anywhere.
#
# Usage: scripts/package.sh [OUT_DIR]   (default: dist/)
# Environment: FC (Fortran compiler, default gfortran), BUILD_TYPE (Release),
#   CARGO_TARGET_DIR (shared with other builds when set), BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$(realpath -m "${1:-dist}")
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(uname -m)
name=simtrack-$version
build=${BUILD_DIR:-$root/build/package}
build_type=${BUILD_TYPE:-Release}

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE="$build_type" -DCMAKE_Fortran_COMPILER="${FC:-gfortran}" \
    -DSIMTRACK_BUILD_TESTS=OFF -DSIMTRACK_BUILD_EXAMPLES=OFF -DSIMTRACK_CLI=ON \
    -DCMAKE_INSTALL_LIBDIR=lib >/dev/null
cmake --build "$build" -j "${SIMTRACK_JOBS:-2}"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cmake --install "$build" --prefix "$stage/$name" >/dev/null

mkdir -p "$stage/$name/share/modulefiles/simtrack"
cat > "$stage/$name/share/modulefiles/simtrack/$version.lua" <<LUA
-- simtrack $version: simulation tracking for Fortran, C and C++ solvers.
-- The prefix is found from this file's place (<prefix>/share/modulefiles/
-- simtrack/$version.lua), so the unpacked tree can live anywhere.
whatis("Name: simtrack")
whatis("Version: $version")
whatis("Description: libsimtrack (C, C++, Fortran), the simtrack command (server, run, sync)")
help([[simtrack $version: link with pkg-config simtrack / simtrack-fortran, or
find_package(simtrack) in CMake; 'simtrack run -- CMD' tracks any program.]])
local prefix = myFileName():gsub("/share/modulefiles/simtrack/[^/]*$", "")
setenv("SIMTRACK_ROOT", prefix)
prepend_path("PATH", pathJoin(prefix, "bin"))
prepend_path("LD_LIBRARY_PATH", pathJoin(prefix, "lib"))
prepend_path("LIBRARY_PATH", pathJoin(prefix, "lib"))
prepend_path("CPATH", pathJoin(prefix, "include"))
prepend_path("PKG_CONFIG_PATH", pathJoin(prefix, "lib/pkgconfig"))
prepend_path("CMAKE_PREFIX_PATH", prefix)
LUA
# Environment Modules reads only files starting with the #%Module cookie, so
# it skips the .lua file; Lmod, given both, takes the .lua one.
cat > "$stage/$name/share/modulefiles/simtrack/$version" <<TCL
#%Module1.0
## simtrack $version: simulation tracking for Fortran, C and C++ solvers.
## The prefix is found from this file's place (<prefix>/share/modulefiles/
## simtrack/$version), so the unpacked tree can live anywhere.
proc ModulesHelp { } {
    puts stderr "simtrack $version: link with pkg-config simtrack / simtrack-fortran, or"
    puts stderr "find_package(simtrack) in CMake; 'simtrack run -- CMD' tracks any program."
}
module-whatis "Name: simtrack"
module-whatis "Version: $version"
module-whatis "Description: libsimtrack (C, C++, Fortran), the simtrack command (server, run, sync)"
set prefix [file dirname [file dirname [file dirname [file dirname \$ModulesCurrentModulefile]]]]
setenv SIMTRACK_ROOT \$prefix
prepend-path PATH \$prefix/bin
prepend-path LD_LIBRARY_PATH \$prefix/lib
prepend-path LIBRARY_PATH \$prefix/lib
prepend-path CPATH \$prefix/include
prepend-path PKG_CONFIG_PATH \$prefix/lib/pkgconfig
prepend-path CMAKE_PREFIX_PATH \$prefix
TCL

# Nothing may point back into the build machine's paths.
if grep -rIl -e "$stage" -e "$build" "$stage/$name" >/dev/null; then
    echo "package.sh: absolute build paths in:" >&2
    grep -rIl -e "$stage" -e "$build" "$stage/$name" >&2
    exit 1
fi
mkdir -p "$out"
tar -C "$stage" -czf "$out/$name-linux-$arch.tar.gz" "$name"
echo "$out/$name-linux-$arch.tar.gz"
