! Logs until run%abort_requested() turns true (the test driver presses Abort
! on the server), then ends the run as terminated. Gives up after 60 s.
program test_abort
  use, intrinsic :: iso_fortran_env, only: real64, int64
  use simtrack
  implicit none

  type(simtrack_run) :: run
  integer :: ierr, step
  integer(int64) :: t0, t, rate

  call run%init(name='fortran-abort', folder='/tests/fortran', stat=ierr)
  if (ierr /= 0) error stop 'init failed'
  call system_clock(t0, rate)
  step = 0
  do
    call run%log('residual', 1.0_real64 / (step + 1), step=step)
    step = step + 1
    if (run%abort_requested()) exit
    call system_clock(t)
    if (t - t0 > 60 * rate) then
      call run%finish()
      error stop 'abort was never requested'
    end if
    call sleep_ms(10)
  end do
  call run%event('abort requested')
  call run%set_status('terminated', stat=ierr)
  if (ierr /= 0) error stop 'set_status failed'
  call run%finish(stat=ierr)
  if (ierr /= 0) error stop 'finish failed'
  write (*, '(a,i0,a)') 'abort seen after ', step, ' steps'

contains

  subroutine sleep_ms(ms)
    use, intrinsic :: iso_c_binding, only: c_int
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

end program test_abort
