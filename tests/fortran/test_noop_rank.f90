! On an MPI rank other than 0 (CTest sets OMPI_COMM_WORLD_RANK=3), init gives
! a no-op handle: every call succeeds, nothing is recorded (CTest checks the
! spool holds no run), and neither logging nor finish slows the rank down.
program test_noop_rank
  use, intrinsic :: iso_fortran_env, only: real64, int64
  use simtrack
  use checks, only: check, checks_done
  implicit none

  integer, parameter :: n = 1000000
  type(simtrack_run) :: run
  integer :: ierr, i, failed
  integer(int64) :: t0, t1, rate
  real(real64) :: per_call_ns, finish_s

  call run%init(name='fortran-noop-rank', metadata='{"rank": 3}', stat=ierr)
  call check(ierr == 0, 'init on rank 3 succeeds')
  call run%set_metadata('dt', 1.0e-3_real64, stat=ierr)
  call check(ierr == 0, 'set_metadata on a no-op handle')
  call run%event('hello from rank 3', stat=ierr)
  call check(ierr == 0, 'event on a no-op handle')
  call run%save('no-such-file.nml', 'input', stat=ierr)
  call check(ierr == 0 .or. ierr == SIMTRACK_STATUS_FILE_NOT_FOUND, 'save on a no-op handle')
  call check(.not. run%abort_requested(), 'abort_requested on a no-op handle')

  call system_clock(t0, rate)
  failed = 0
  do i = 1, n
    call run%log('residual', real(i, real64), step=i, stat=ierr)
    if (ierr /= 0) failed = failed + 1
  end do
  call system_clock(t1)
  per_call_ns = real(t1 - t0, real64) / real(rate, real64) * 1.0e9_real64 / n
  write (*, '(a,f8.1,a)') 'no-op log: ', per_call_ns, ' ns/call'
  call check(failed == 0, 'log on a no-op handle')
  call check(per_call_ns < 1000.0_real64, 'logging on a no-op handle costs well under a microsecond')

  call system_clock(t0)
  call run%finish(stat=ierr)
  call system_clock(t1)
  finish_s = real(t1 - t0, real64) / real(rate, real64)
  call check(ierr == 0, 'finish on a no-op handle')
  call check(finish_s < 0.5_real64, 'finish on a no-op handle does not wait')
  call checks_done()
end program test_noop_rank
