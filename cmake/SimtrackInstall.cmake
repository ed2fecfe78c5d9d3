# Install rules: libraries (shared with soname + static), headers (C and the
# header-only C++ API), the `simtrack` command (SIMTRACK_CLI), Fortran
# modules and library, CMake package, pkg-config files.
include(CMakePackageConfigHelpers)

set(SIMTRACK_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/simtrack")

if(CMAKE_HOST_SYSTEM_NAME STREQUAL "Linux")
    install(FILES "${SIMTRACK_SHARED_LIB}"
                  "${SIMTRACK_LIB_DIR}/libsimtrack.so.${SIMTRACK_SOVERSION}"
                  "${SIMTRACK_LIB_DIR}/libsimtrack.so"
            TYPE LIB
            PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                        WORLD_READ WORLD_EXECUTE)
endif()
install(FILES "${SIMTRACK_STATIC_LIB}" TYPE LIB)
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/include/simtrack.h"
              "${CMAKE_CURRENT_SOURCE_DIR}/include/simtrack.hpp" TYPE INCLUDE)
if(SIMTRACK_CLI)
    install(PROGRAMS "${SIMTRACK_CLI_EXECUTABLE}" TYPE BIN)
endif()
install(FILES "${SIMTRACK_NATIVE_LIBS_FILE}" DESTINATION "${SIMTRACK_CMAKE_DIR}")
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/simtrack.pc"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")

if(SIMTRACK_FORTRAN)
    install(TARGETS simtrack_fortran EXPORT simtrackFortranTargets
            ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}")
    install(DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}/fortran/mod/"
            DESTINATION "${SIMTRACK_FORTRAN_MODDIR}"
            FILES_MATCHING PATTERN "*.mod")
    install(EXPORT simtrackFortranTargets NAMESPACE simtrack::
            FILE simtrackFortranTargets.cmake DESTINATION "${SIMTRACK_CMAKE_DIR}")
    configure_file("${CMAKE_CURRENT_LIST_DIR}/simtrack-fortran.pc.in"
                   "${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/simtrack-fortran.pc" @ONLY)
    install(FILES "${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/simtrack-fortran.pc"
            DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endif()

configure_package_config_file(
    "${CMAKE_CURRENT_LIST_DIR}/simtrackConfig.cmake.in"
    "${CMAKE_CURRENT_BINARY_DIR}/simtrackConfig.cmake"
    INSTALL_DESTINATION "${SIMTRACK_CMAKE_DIR}"
    PATH_VARS CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
# 0.x: a minor release may break the API, so only the same minor matches.
write_basic_package_version_file(
    "${CMAKE_CURRENT_BINARY_DIR}/simtrackConfigVersion.cmake"
    COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/simtrackConfig.cmake"
              "${CMAKE_CURRENT_BINARY_DIR}/simtrackConfigVersion.cmake"
        DESTINATION "${SIMTRACK_CMAKE_DIR}")
