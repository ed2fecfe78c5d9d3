! Install smoke test, Fortran side: `use simtrack` from the installed .mod
! files, link simtrack::fortran, run a tiny tracked run offline.
program consumer
  use, intrinsic :: iso_fortran_env, only: real64
  use simtrack
  implicit none

  type(simtrack_run) :: run
  integer :: ierr, it

  call run%init(name='install-smoke-fortran', folder='/tests/install', stat=ierr)
  if (ierr /= 0) error stop 'init failed'
  do it = 0, 9
    call run%log('residual', 1.0_real64 / (it + 1), step=it, stat=ierr)
    if (ierr /= 0) error stop 'log failed'
  end do
  call run%finish(stat=ierr)
  if (ierr /= 0) error stop 'finish failed'
  write (*, '(a)') 'simtrack ' // simtrack_version() // ': fortran consumer ok'
end program consumer
