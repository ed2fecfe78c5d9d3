# Warning/standard flags for simtrack's own sources (Fortran module, examples,
# tests): SIMTRACK_C_FLAGS (C and C++) and SIMTRACK_FORTRAN_FLAGS. Consumers'
# code never gets them; -Werror only with SIMTRACK_WARNINGS_AS_ERRORS.
set(SIMTRACK_C_FLAGS)
if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    set(SIMTRACK_C_FLAGS -Wall -Wextra)
    if(SIMTRACK_WARNINGS_AS_ERRORS)
        list(APPEND SIMTRACK_C_FLAGS -Werror)
    endif()
endif()

set(SIMTRACK_FORTRAN_FLAGS)
if(CMAKE_Fortran_COMPILER_ID STREQUAL "GNU")
    set(SIMTRACK_FORTRAN_FLAGS -Wall -fimplicit-none -std=f2018)
elseif(CMAKE_Fortran_COMPILER_ID MATCHES "^(LLVMFlang|Flang)$")
    set(SIMTRACK_FORTRAN_FLAGS -std=f2018)
endif()
if(SIMTRACK_WARNINGS_AS_ERRORS AND SIMTRACK_FORTRAN_FLAGS)
    list(APPEND SIMTRACK_FORTRAN_FLAGS -Werror)
endif()
