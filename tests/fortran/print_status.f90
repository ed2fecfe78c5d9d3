! Prints every SIMTRACK_STATUS_* constant of the Fortran module as
! "NAME = value", for the test that compares them with include/simtrack.h.
program print_status
  use simtrack
  implicit none

  call show('SIMTRACK_STATUS_OK', SIMTRACK_STATUS_OK)
  call show('SIMTRACK_STATUS_NULL_RUN', SIMTRACK_STATUS_NULL_RUN)
  call show('SIMTRACK_STATUS_NULL_ARGUMENT', SIMTRACK_STATUS_NULL_ARGUMENT)
  call show('SIMTRACK_STATUS_INVALID_UTF8', SIMTRACK_STATUS_INVALID_UTF8)
  call show('SIMTRACK_STATUS_INVALID_ARGUMENT', SIMTRACK_STATUS_INVALID_ARGUMENT)
  call show('SIMTRACK_STATUS_INVALID_JSON', SIMTRACK_STATUS_INVALID_JSON)
  call show('SIMTRACK_STATUS_INVALID_CATEGORY', SIMTRACK_STATUS_INVALID_CATEGORY)
  call show('SIMTRACK_STATUS_INVALID_RULE', SIMTRACK_STATUS_INVALID_RULE)
  call show('SIMTRACK_STATUS_INVALID_STATUS', SIMTRACK_STATUS_INVALID_STATUS)
  call show('SIMTRACK_STATUS_CONFIG', SIMTRACK_STATUS_CONFIG)
  call show('SIMTRACK_STATUS_IO', SIMTRACK_STATUS_IO)
  call show('SIMTRACK_STATUS_FILE_NOT_FOUND', SIMTRACK_STATUS_FILE_NOT_FOUND)
  call show('SIMTRACK_STATUS_UNDELIVERED', SIMTRACK_STATUS_UNDELIVERED)
  call show('SIMTRACK_STATUS_REFUSED', SIMTRACK_STATUS_REFUSED)
  call show('SIMTRACK_STATUS_INTERNAL', SIMTRACK_STATUS_INTERNAL)

contains

  subroutine show(name, value)
    character(len=*), intent(in) :: name
    integer, intent(in) :: value

    write (*, '(a,a,i0)') name, ' = ', value
  end subroutine show

end program print_status
