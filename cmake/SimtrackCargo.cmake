# Configure-time half of the cargo wrapper: finds cargo, picks the profile and
# target directory, and defines
#   simtrack_cargo        the custom target that runs cmake/CargoBuild.cmake
#   simtrack::simtrack    the shared library (IMPORTED, with soname), C header
#
# Cache variables:
#   SIMTRACK_CARGO_PROFILE     debug | release (default: release unless
#                              CMAKE_BUILD_TYPE is Debug)
#   SIMTRACK_CARGO_TARGET_DIR  default: $CARGO_TARGET_DIR if set, else
#                              <build>/cargo. Share one between build trees to
#                              compile the Rust code once.

find_program(CARGO_EXECUTABLE cargo
    HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin"
    DOC "cargo, the Rust build tool")
if(NOT CARGO_EXECUTABLE)
    message(FATAL_ERROR "simtrack: cargo not found (install Rust from https://rustup.rs)")
endif()

if(CMAKE_BUILD_TYPE STREQUAL "Debug")
    set(_simtrack_profile debug)
else()
    set(_simtrack_profile release)
endif()
set(SIMTRACK_CARGO_PROFILE "${_simtrack_profile}" CACHE STRING "cargo profile: debug or release")
set_property(CACHE SIMTRACK_CARGO_PROFILE PROPERTY STRINGS debug release)
if(NOT SIMTRACK_CARGO_PROFILE MATCHES "^(debug|release)$")
    message(FATAL_ERROR "SIMTRACK_CARGO_PROFILE must be debug or release")
endif()

if(NOT "$ENV{CARGO_TARGET_DIR}" STREQUAL "")
    # A relative CARGO_TARGET_DIR means: relative to where cmake was run.
    set(_simtrack_cwd "$ENV{PWD}")
    if(_simtrack_cwd STREQUAL "")
        set(_simtrack_cwd "${CMAKE_BINARY_DIR}")
    endif()
    file(REAL_PATH "$ENV{CARGO_TARGET_DIR}" _simtrack_target_dir BASE_DIRECTORY "${_simtrack_cwd}")
else()
    set(_simtrack_target_dir "${CMAKE_CURRENT_BINARY_DIR}/cargo")
endif()
set(SIMTRACK_CARGO_TARGET_DIR "${_simtrack_target_dir}" CACHE PATH "cargo --target-dir")

set(SIMTRACK_LIB_DIR "${CMAKE_CURRENT_BINARY_DIR}/lib")
set(SIMTRACK_SHARED_LIB "${SIMTRACK_LIB_DIR}/libsimtrack.so.${PROJECT_VERSION}")
set(SIMTRACK_STATIC_LIB "${SIMTRACK_LIB_DIR}/libsimtrack.a")
set(SIMTRACK_NATIVE_LIBS_FILE "${SIMTRACK_LIB_DIR}/simtrack-native-static-libs.txt")

# pkg-config files: relocatable (prefix found from the .pc's own directory)
# unless the libdir is absolute. NATIVE_STATIC_LIBS is filled in at build time.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(SIMTRACK_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
    set(SIMTRACK_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
    file(RELATIVE_PATH _simtrack_up "/root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/root")
    set(SIMTRACK_PC_PREFIX "\${pcfiledir}/${_simtrack_up}")
    string(REGEX REPLACE "/$" "" SIMTRACK_PC_PREFIX "${SIMTRACK_PC_PREFIX}")
    set(SIMTRACK_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(SIMTRACK_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
    set(SIMTRACK_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
set(NATIVE_STATIC_LIBS "@NATIVE_STATIC_LIBS@")
configure_file("${CMAKE_CURRENT_LIST_DIR}/simtrack.pc.in"
               "${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/simtrack.pc.in" @ONLY)
unset(NATIVE_STATIC_LIBS)

add_custom_target(simtrack_cargo ALL
    COMMAND "${CMAKE_COMMAND}"
            "-DCARGO=${CARGO_EXECUTABLE}"
            "-DSOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}"
            "-DTARGET_DIR=${SIMTRACK_CARGO_TARGET_DIR}"
            "-DPROFILE=${SIMTRACK_CARGO_PROFILE}"
            "-DOUT_DIR=${SIMTRACK_LIB_DIR}"
            "-DVERSION=${PROJECT_VERSION}"
            "-DSOVERSION=${SIMTRACK_SOVERSION}"
            "-DPC_TEMPLATES=${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/simtrack.pc.in=${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/simtrack.pc"
            -P "${CMAKE_CURRENT_LIST_DIR}/CargoBuild.cmake"
    BYPRODUCTS "${SIMTRACK_SHARED_LIB}" "${SIMTRACK_STATIC_LIB}" "${SIMTRACK_NATIVE_LIBS_FILE}"
               "${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/simtrack.pc"
    WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
    USES_TERMINAL
    COMMENT "cargo: building libsimtrack (${SIMTRACK_CARGO_PROFILE}) in ${SIMTRACK_CARGO_TARGET_DIR}"
    VERBATIM)

add_library(simtrack::simtrack SHARED IMPORTED GLOBAL)
set_target_properties(simtrack::simtrack PROPERTIES
    IMPORTED_LOCATION "${SIMTRACK_SHARED_LIB}"
    IMPORTED_SONAME "libsimtrack.so.${SIMTRACK_SOVERSION}"
    INTERFACE_INCLUDE_DIRECTORIES "${CMAKE_CURRENT_SOURCE_DIR}/include")
add_dependencies(simtrack::simtrack simtrack_cargo)

# The `simtrack` command (workspace member `server/`), built by cargo in the
# same target directory and profile as the library.
if(SIMTRACK_CLI)
    set(SIMTRACK_CLI_EXECUTABLE "${SIMTRACK_CARGO_TARGET_DIR}/${SIMTRACK_CARGO_PROFILE}/simtrack")
    set(_simtrack_cli_profile)
    if(SIMTRACK_CARGO_PROFILE STREQUAL "release")
        set(_simtrack_cli_profile --release)
    endif()
    add_custom_target(simtrack_cli ALL
        COMMAND "${CARGO_EXECUTABLE}" build --locked -p simtrack-server --bin simtrack
                --target-dir "${SIMTRACK_CARGO_TARGET_DIR}" ${_simtrack_cli_profile}
        WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
        BYPRODUCTS "${SIMTRACK_CLI_EXECUTABLE}"
        COMMENT "cargo build -p simtrack-server (the simtrack command)"
        USES_TERMINAL VERBATIM)
    # One cargo at a time in a target directory.
    add_dependencies(simtrack_cli simtrack_cargo)
endif()
