# Helpers for simtrack's own tests and examples.
#
# simtrack_add_test(NAME <name> COMMAND <cmd>... [EXPECT_STDERR_LINES <n>]
#                   [EXPECT_STDOUT <regex>] [EXPECT_RUNS <n>] [ENV <var=value>...])
# runs <cmd> through cmake/SimtrackRunTest.cmake in its own working directory,
# offline, with its own empty spool (nothing reaches ~/.cache or a server the
# developer has configured), and checks what was asked.

set(SIMTRACK_RUN_TEST "${CMAKE_CURRENT_LIST_DIR}/SimtrackRunTest.cmake")

function(simtrack_add_test)
    cmake_parse_arguments(PARSE_ARGV 0 arg "" "NAME;EXPECT_STDERR_LINES;EXPECT_STDOUT;EXPECT_RUNS" "COMMAND;ENV")
    set(work "${CMAKE_CURRENT_BINARY_DIR}/work/${arg_NAME}")
    set(spool "${CMAKE_CURRENT_BINARY_DIR}/spool/${arg_NAME}")
    file(MAKE_DIRECTORY "${work}")
    set(checks)
    foreach(check EXPECT_STDERR_LINES EXPECT_STDOUT EXPECT_RUNS)
        if(DEFINED arg_${check})
            list(APPEND checks "-D${check}=${arg_${check}}")
        endif()
    endforeach()
    add_test(NAME ${arg_NAME}
        COMMAND "${CMAKE_COMMAND}" "-DSPOOL=${spool}" "-DWORKDIR=${work}" ${checks}
                -P "${SIMTRACK_RUN_TEST}" ${arg_COMMAND}
        WORKING_DIRECTORY "${work}")
    set_tests_properties(${arg_NAME} PROPERTIES
        ENVIRONMENT_MODIFICATION
        "SIMTRACK_URL=unset:;SIMTRACK_TOKEN=unset:;SIMTRACK_CONFIG=unset:;SIMTRACK_RANKS=unset:;SIMTRACK_MODE=set:offline;SIMTRACK_OFFLINE_DIR=set:${spool}")
    if(arg_ENV)
        set_property(TEST ${arg_NAME} APPEND PROPERTY ENVIRONMENT ${arg_ENV})
    endif()
endfunction()

# simtrack_add_live_test(NAME <name> SCENARIO <scenario> [OFFLINE_THEN_SYNC]
#                        COMMAND <cmd>...)
# runs <cmd> against a fresh `simtrack server` (SIMTRACK_SERVER_EXECUTABLE)
# and checks what the server received (tests/fortran/live_server.py); with
# OFFLINE_THEN_SYNC the run is recorded offline and uploaded by `simtrack sync`. Skipped
# (exit 77) when the server binary does not exist, unless the environment
# sets SIMTRACK_LIVE_REQUIRED=1 (scripts/test.d/10-cmake.sh does).
find_package(Python3 COMPONENTS Interpreter)
set(SIMTRACK_SERVER_EXECUTABLE "${SIMTRACK_CARGO_TARGET_DIR}/${SIMTRACK_CARGO_PROFILE}/simtrack"
    CACHE FILEPATH "simtrack CLI (server) used by the live-server tests")

function(simtrack_add_live_test)
    cmake_parse_arguments(PARSE_ARGV 0 arg "OFFLINE_THEN_SYNC" "NAME;SCENARIO" "COMMAND")
    set(mode)
    if(arg_OFFLINE_THEN_SYNC)
        set(mode --offline-then-sync)
    endif()
    if(NOT Python3_Interpreter_FOUND)
        message(STATUS "simtrack: no python3, skipping live-server test ${arg_NAME}")
        return()
    endif()
    set(work "${CMAKE_CURRENT_BINARY_DIR}/work/${arg_NAME}")
    file(MAKE_DIRECTORY "${work}")
    add_test(NAME ${arg_NAME}
        COMMAND "${Python3_EXECUTABLE}" "${PROJECT_SOURCE_DIR}/tests/fortran/live_server.py"
                --server "${SIMTRACK_SERVER_EXECUTABLE}" --scenario ${arg_SCENARIO} ${mode}
                ${arg_COMMAND}
        WORKING_DIRECTORY "${work}")
    set_tests_properties(${arg_NAME} PROPERTIES
        SKIP_RETURN_CODE 77
        TIMEOUT 180
        ENVIRONMENT_MODIFICATION "SIMTRACK_CONFIG=unset:;SIMTRACK_RANKS=unset:")
endfunction()
