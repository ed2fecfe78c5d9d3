# Test (cmake -P): the SIMTRACK_STATUS_* constants of the Fortran module equal
# those of include/simtrack.h, and none is missing on either side.
#   -DHEADER=<simtrack.h> -DPRINTER=<print_status executable>
cmake_minimum_required(VERSION 3.22)

file(READ "${HEADER}" header)
string(REGEX MATCHALL "SIMTRACK_STATUS_[A-Z0-9_]+ = -?[0-9]+" c_pairs "${header}")
execute_process(COMMAND "${PRINTER}" OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${PRINTER} failed: ${rc}")
endif()
string(REGEX MATCHALL "SIMTRACK_STATUS_[A-Z0-9_]+ = -?[0-9]+" f_pairs "${out}")
list(SORT c_pairs)
list(SORT f_pairs)
list(LENGTH c_pairs n)
if(n EQUAL 0)
    message(FATAL_ERROR "no SIMTRACK_STATUS_* values found in ${HEADER}")
endif()
if(NOT c_pairs STREQUAL f_pairs)
    set(only_c ${c_pairs})
    list(REMOVE_ITEM only_c ${f_pairs})
    set(only_f ${f_pairs})
    list(REMOVE_ITEM only_f ${c_pairs})
    message(FATAL_ERROR "status constants differ.\n  header only:  ${only_c}\n  Fortran only: ${only_f}\n"
                        "Update fortran/simtrack_c.f90 (and the public list in simtrack.f90, "
                        "and tests/fortran/print_status.f90).")
endif()
message(STATUS "${n} status constants match the header")
