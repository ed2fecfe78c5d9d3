# Build-time half of the cargo wrapper (run with `cmake -P` by the
# `simtrack_cargo` target on every build; cargo decides what is stale).
#
# 1. Builds the root package's cdylib and staticlib with the soname baked in
#    and asks rustc for the native libraries a static link needs.
# 2. Keeps that list next to cargo's artifacts (rustc prints it only when it
#    actually compiles, so a shared CARGO_TARGET_DIR must remember it).
# 3. Links the artifacts into OUT_DIR under their installed names and writes
#    simtrack.pc / simtrack-native-static-libs.txt from the list.
#
# Inputs (-D): CARGO, SOURCE_DIR, TARGET_DIR, PROFILE (debug|release),
# OUT_DIR, VERSION, SOVERSION, PC_TEMPLATES (list of "template=output").

cmake_minimum_required(VERSION 3.22)

foreach(var CARGO SOURCE_DIR TARGET_DIR PROFILE OUT_DIR VERSION SOVERSION)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "CargoBuild.cmake: ${var} is not set")
    endif()
endforeach()

set(profile_args)
if(PROFILE STREQUAL "release")
    set(profile_args --release)
endif()
set(artifact_dir "${TARGET_DIR}/${PROFILE}")
set(native_file "${artifact_dir}/simtrack-native-static-libs.txt")

set(rustc_args --print native-static-libs)
if(CMAKE_HOST_SYSTEM_NAME STREQUAL "Linux")
    list(PREPEND rustc_args -C "link-arg=-Wl,-soname,libsimtrack.so.${SOVERSION}")
endif()

# cargo's fingerprints include CC/CXX (build scripts of C-using crates read
# them), and some drivers (ctest --build-and-test, IDEs) set them. Unset, the
# artifacts stay shared with plain `cargo build`/`cargo test` runs on the same
# target dir instead of rebuilding those crates; cc-rs still finds the system
# compiler (set TARGET_CC to choose one).
unset(ENV{CC})
unset(ENV{CXX})

function(run_cargo)
    execute_process(
        COMMAND "${CARGO}" rustc --locked -p simtrack --lib
                --crate-type cdylib,staticlib --target-dir "${TARGET_DIR}" ${profile_args}
                -- ${rustc_args}
        WORKING_DIRECTORY "${SOURCE_DIR}"
        RESULT_VARIABLE result
        ERROR_VARIABLE err
        ECHO_ERROR_VARIABLE)
    if(NOT result EQUAL 0)
        message(FATAL_ERROR "cargo failed (${result})")
    endif()
    if(err MATCHES "native-static-libs: ([^\r\n]*)")
        string(STRIP "${CMAKE_MATCH_1}" libs)
        file(WRITE "${native_file}" "${libs}\n")
    endif()
endfunction()

run_cargo()
if(NOT EXISTS "${native_file}")
    # The library was fresh, built by someone who did not record the list:
    # rebuild just this crate (dependencies stay) so rustc prints it.
    message(STATUS "cargo: recompiling simtrack to learn its native static libraries")
    execute_process(
        COMMAND "${CARGO}" clean -p simtrack --target-dir "${TARGET_DIR}" ${profile_args}
        WORKING_DIRECTORY "${SOURCE_DIR}")
    run_cargo()
    if(NOT EXISTS "${native_file}")
        message(FATAL_ERROR "rustc did not report native-static-libs")
    endif()
endif()
file(STRINGS "${native_file}" NATIVE_STATIC_LIBS LIMIT_COUNT 1)

file(MAKE_DIRECTORY "${OUT_DIR}")
# Hard links keep cargo's timestamps (dependents relink only on real change)
# and survive a later cargo build that replaces the files in TARGET_DIR.
function(link_artifact from to)
    file(REMOVE "${to}")
    file(CREATE_LINK "${from}" "${to}" COPY_ON_ERROR)
endfunction()
if(CMAKE_HOST_SYSTEM_NAME STREQUAL "Linux")
    link_artifact("${artifact_dir}/libsimtrack.so" "${OUT_DIR}/libsimtrack.so.${VERSION}")
    file(CREATE_LINK "libsimtrack.so.${VERSION}" "${OUT_DIR}/libsimtrack.so.${SOVERSION}" SYMBOLIC)
    file(CREATE_LINK "libsimtrack.so.${SOVERSION}" "${OUT_DIR}/libsimtrack.so" SYMBOLIC)
endif()
link_artifact("${artifact_dir}/libsimtrack.a" "${OUT_DIR}/libsimtrack.a")

file(WRITE "${OUT_DIR}/simtrack-native-static-libs.txt.tmp" "${NATIVE_STATIC_LIBS}\n")
file(COPY_FILE "${OUT_DIR}/simtrack-native-static-libs.txt.tmp"
     "${OUT_DIR}/simtrack-native-static-libs.txt" ONLY_IF_DIFFERENT)
foreach(pair IN LISTS PC_TEMPLATES)
    string(REPLACE "=" ";" pair "${pair}")
    list(GET pair 0 template)
    list(GET pair 1 output)
    configure_file("${template}" "${output}" @ONLY)
endforeach()
