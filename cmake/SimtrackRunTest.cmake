# Test driver (cmake -P): empties WORKDIR and SPOOL, runs the command given after the
# script name, passes its output through, fails on a non-zero exit, and checks
#   EXPECT_STDERR_LINES  number of stderr lines starting with "simtrack: "
#   EXPECT_STDOUT        regex that stdout must match
#   EXPECT_RUNS          number of runs recorded in SPOOL
cmake_minimum_required(VERSION 3.22)

set(cmd)
set(after_script FALSE)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
    if(after_script)
        list(APPEND cmd "${CMAKE_ARGV${i}}")
    elseif(CMAKE_ARGV${i} MATCHES "SimtrackRunTest\\.cmake$")
        set(after_script TRUE)
    endif()
endforeach()

# A fresh start each time: the test's working directory and spool.
if(DEFINED WORKDIR)
    file(GLOB leftovers "${WORKDIR}/*")
    if(leftovers)
        file(REMOVE_RECURSE ${leftovers})
    endif()
endif()
# The library creates the spool itself, private to its owner (0700); a
# directory made here would carry the umask's mode and draw its warning.
file(REMOVE_RECURSE "${SPOOL}")
execute_process(COMMAND ${cmd}
    RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err
    ECHO_OUTPUT_VARIABLE ECHO_ERROR_VARIABLE)
if(NOT result STREQUAL "0")
    message(FATAL_ERROR "${cmd} exited with ${result}")
endif()

if(DEFINED EXPECT_STDERR_LINES)
    string(REGEX MATCHALL "(^|\n)simtrack: [^\n]*" lines "${err}")
    list(LENGTH lines n)
    if(NOT n EQUAL EXPECT_STDERR_LINES)
        message(FATAL_ERROR "expected ${EXPECT_STDERR_LINES} 'simtrack: ' lines on stderr, got ${n}")
    endif()
endif()
if(DEFINED EXPECT_STDOUT AND NOT out MATCHES "${EXPECT_STDOUT}")
    message(FATAL_ERROR "stdout does not match '${EXPECT_STDOUT}'")
endif()
if(DEFINED EXPECT_RUNS)
    include("${CMAKE_CURRENT_LIST_DIR}/SimtrackSpool.cmake")
    simtrack_count_runs("${SPOOL}" runs)
    if(NOT runs EQUAL EXPECT_RUNS)
        message(FATAL_ERROR "expected ${EXPECT_RUNS} run(s) in ${SPOOL}, found ${runs}")
    endif()
endif()
