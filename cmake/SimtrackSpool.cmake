# Reading the offline spool from tests (layout documented in src/spool.rs:
# <offline dir>/runs/<run id>/{records.log,files/<sha256>,state.json}).

# simtrack_count_runs(<spool> <out-var>): number of run directories.
function(simtrack_count_runs spool out)
    file(GLOB runs LIST_DIRECTORIES true "${spool}/runs/*")
    set(n 0)
    foreach(run IN LISTS runs)
        if(IS_DIRECTORY "${run}")
            math(EXPR n "${n} + 1")
        endif()
    endforeach()
    set(${out} ${n} PARENT_SCOPE)
endfunction()
