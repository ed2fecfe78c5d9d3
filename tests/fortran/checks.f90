! checks: a minimal assertion helper for the Fortran tests. Each failed check
! prints one line; `checks_done` ends the program with a non-zero code if any
! failed.
module checks
  implicit none
  private
  public :: check, checks_done

  integer :: failures = 0

contains

  subroutine check(condition, what)
    logical, intent(in) :: condition
    character(len=*), intent(in) :: what

    if (condition) then
      write (*, '(a)') 'ok   ' // what
    else
      write (*, '(a)') 'FAIL ' // what
      failures = failures + 1
    end if
  end subroutine check

  subroutine checks_done()
    if (failures > 0) then
      write (*, '(i0,a)') failures, ' check(s) failed'
      error stop 1
    end if
    write (*, '(a)') 'all checks passed'
  end subroutine checks_done

end module checks
