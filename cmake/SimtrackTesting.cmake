# Helpers for simtrack's own tests and examples.
#
# simtrack_add_test(NAME <name> COMMAND <cmd>... [EXPECT_STDERR_LINES <n>]
#                   [EXPECT_STDOUT <regex>] [EXPECT_RUNS <n>])
# runs <cmd> through cmake/SimtrackRunTest.cmake in its own working directory,
# offline, with its own empty spool (nothing reaches ~/.cache or a server the
# developer has configured), and checks what was asked.

set(SIMTRACK_RUN_TEST "${CMAKE_CURRENT_LIST_DIR}/SimtrackRunTest.cmake")

function(simtrack_add_test)
    cmake_parse_arguments(PARSE_ARGV 0 arg "" "NAME;EXPECT_STDERR_LINES;EXPECT_STDOUT;EXPECT_RUNS" "COMMAND")
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
        "SIMTRACK_URL=unset:;SIMTRACK_TOKEN=unset:;SIMTRACK_RANKS=unset:;SIMTRACK_MODE=set:offline;SIMTRACK_OFFLINE_DIR=set:${spool}")
endfunction()
