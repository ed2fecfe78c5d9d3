! Without `stat`, a failure writes one line to error_unit and the program
! carries on. CTest checks that stderr holds exactly 5 "simtrack: " lines and
! that the last line of stdout was reached.
program test_no_stat
  use, intrinsic :: iso_fortran_env, only: real64
  use simtrack
  implicit none

  type(simtrack_run) :: run, never

  call never%log('residual', 1.0_real64)                   ! 1: not initialised
  call run%init(name='fortran-no-stat', folder='/tests/fortran')
  call run%save('no-such-file.nml', 'input')               ! 2: missing file
  call run%save('no-such-file.nml', 'bogus')               ! 3: bad category
  call run%set_status('exploded')                          ! 4: bad status
  call run%alert('a', 'is sideways', 'residual', 1.0_real64, 1.0_real64, 1.0_real64) ! 5
  call run%log('residual', 1.0_real64)
  call run%finish()
  write (*, '(a)') 'carried on to the end'
end program test_no_stat
