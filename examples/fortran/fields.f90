! fields.f90 — logs whole fields per step from Fortran: a 1-D temperature
! profile along a rod and a 2-D temperature field on a plate, each on a grid
! with named axes, units and coordinates (array metrics). The values are
! the same closed forms as examples/c/fields.c (+, -, *, / only), so a test
! can recompute every one exactly.
!
!   ./fields [steps]     (offline, or online with SIMTRACK_URL/SIMTRACK_TOKEN)
program fields
  use, intrinsic :: iso_fortran_env, only: real64
  use simtrack
  implicit none

  integer, parameter :: nx = 64, px = 40, py = 30
  type(simtrack_run) :: run
  real(real64) :: x(nx), gx(px), gy(py), t(nx), p(px, py), c, d
  integer :: i, j, s, steps, failures, st
  character(len=32) :: arg
  character(len=256) :: msg

  steps = 20
  if (command_argument_count() >= 1) then
    call get_command_argument(1, arg)
    read (arg, *) steps
  end if
  failures = 0

  call run%init(name='fields-fortran', folder='/examples/fortran', tags='fields,fortran,example', &
                metadata='{"nx": 64, "px": 40, "py": 30}', stat=st, errmsg=msg)
  call tally('init')
  do i = 1, nx
    x(i) = real(i - 1, real64) / real(nx - 1, real64)
  end do
  do i = 1, px
    gx(i) = real(i - 1, real64) * 0.5_real64
  end do
  do j = 1, py
    gy(j) = real(j - 1, real64) * 0.5_real64
  end do
  call run%grid('rod', x, xlabel='x', xunits='m', stat=st, errmsg=msg)
  call tally('grid rod')
  call run%grid('plate', gx, xlabel='x', xunits='cm', y=gy, ylabel='y', yunits='cm', &
                stat=st, errmsg=msg)
  call tally('grid plate')

  do s = 0, steps - 1
    c = real(s, real64) / real(steps, real64)
    do i = 1, nx
      d = x(i) - c
      t(i) = 300.0_real64 + 50.0_real64 * (1.0_real64 - d * d)
    end do
    do j = 1, py
      do i = 1, px
        p(i, j) = 20.0_real64 + 0.25_real64 * real(i - 1, real64) - 0.5_real64 * real(j - 1, real64) &
                  + real(mod(i - 1 + j - 1 + s, 7), real64) / 4.0_real64
      end do
    end do
    call run%log_array('temperature', 'rod', t, s, stat=st, errmsg=msg)
    call tally('log_array temperature')
    call run%log_array('plate_temperature', 'plate', p, s, stat=st, errmsg=msg)
    call tally('log_array plate')
  end do
  call run%flush(stat=st, errmsg=msg)
  call tally('flush')
  call run%finish(stat=st, errmsg=msg)
  call tally('finish')
  print '(a, i0, a, i0, a)', 'fields: ', steps, ' steps, ', failures, ' failures'
  if (failures /= 0) error stop 1

contains

  subroutine tally(what)
    character(len=*), intent(in) :: what
    if (st /= SIMTRACK_STATUS_OK) then
      failures = failures + 1
      print '(a)', 'fields: ' // what // ' failed: ' // trim(msg)
    end if
  end subroutine tally
end program fields
