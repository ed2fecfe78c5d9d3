! simtrack_handle_signals from Fortran: bad and repeated lists give the
! documented statuses; then, opted in to SIGTERM, the program logs, raises
! SIGTERM at itself (what SLURM does at the time limit or on scancel) and
! must die of it, after the library marked the run terminated and delivered
! it. The driver (live_server.py, scenario "signals") checks the death and
! what the server holds.
program test_signals
  use, intrinsic :: iso_fortran_env, only: real64, output_unit
  use, intrinsic :: iso_c_binding, only: c_int
  use simtrack
  use checks
  implicit none

  interface
    function c_raise(sig) bind(C, name='raise') result(rc)
      import :: c_int
      integer(c_int), value, intent(in) :: sig
      integer(c_int) :: rc
    end function c_raise
  end interface

  integer(c_int), parameter :: sigterm = 15
  type(simtrack_run) :: run
  integer :: ierr, step
  character(len=200) :: msg

  msg = ''
  call simtrack_handle_signals('TERM,KILL', stat=ierr, errmsg=msg)
  call check(ierr == SIMTRACK_STATUS_CONFIG, 'SIGKILL cannot be handled: config error')
  call check(index(msg, 'KILL') > 0, 'the message names the signal')
  call simtrack_handle_signals('TERM', 5.0_real64, stat=ierr)
  call check(ierr == SIMTRACK_STATUS_OK, 'TERM is handled')
  call simtrack_handle_signals('SIGTERM', stat=ierr)
  call check(ierr == SIMTRACK_STATUS_OK, 'the same list again: nothing to do')
  msg = ''
  call simtrack_handle_signals('USR1', stat=ierr, errmsg=msg)
  call check(ierr == SIMTRACK_STATUS_INVALID_ARGUMENT, 'another list: refused')
  call check(len_trim(msg) > 0, 'with a message')
  call checks_done()

  call run%init(name='fortran-signals', folder='/tests/fortran', stat=ierr)
  if (ierr /= 0) error stop 'init failed'
  do step = 0, 4
    call run%log('residual', 1.0_real64 / (step + 1), step=step)
  end do
  call run%event('before the signal')
  write (*, '(a)') 'raising SIGTERM'
  flush (output_unit)
  if (c_raise(sigterm) /= 0) error stop 'raise failed'
  ! The library's thread marks the run, delivers it, then raises SIGTERM
  ! again with its default action: the program dies in this wait.
  do step = 1, 600
    call sleep_ms(100)
  end do
  write (*, '(a)') 'survived SIGTERM'
  error stop 3

contains

  subroutine sleep_ms(ms)
    integer, intent(in) :: ms
    interface
      function usleep(us) bind(C, name='usleep') result(rc)
        import :: c_int
        integer(c_int), value, intent(in) :: us
        integer(c_int) :: rc
      end function usleep
    end interface

    if (usleep(int(ms * 1000, c_int)) /= 0) return
  end subroutine sleep_ms
end program test_signals
