! f_workload: the bench/peers workloads for simtrack from Fortran (the same
! protocol as c_workload.c, read by peers.py):
!   f_workload calls NAME N BLOCKS   W1 run%log, W2 run%log_many (10 metrics)
!   f_workload bulk NAME POINTS      W3: POINTS points as POINTS/10 calls of 10
! Times with clock_gettime(CLOCK_MONOTONIC) so first_log/last_log share the
! driver's clock.
program f_workload
  use, intrinsic :: iso_fortran_env, only: real64, int64
  use, intrinsic :: iso_c_binding, only: c_int, c_long
  use simtrack
  implicit none

  type, bind(c) :: timespec
    integer(c_long) :: sec, nsec
  end type timespec
  interface
    integer(c_int) function clock_gettime(id, ts) bind(c, name='clock_gettime')
      import :: c_int, timespec
      integer(c_int), value :: id
      type(timespec), intent(out) :: ts
    end function clock_gettime
  end interface

  character(len=2), parameter :: names(10) = ['m0', 'm1', 'm2', 'm3', 'm4', &
                                              'm5', 'm6', 'm7', 'm8', 'm9']
  type(simtrack_run) :: run
  character(len=64) :: mode, name, arg
  integer(int64) :: n, i
  integer :: blocks, b, k, ierr, step
  real(real64) :: values(10), t0, first

  call get_command_argument(1, mode)
  call get_command_argument(2, name)
  call get_command_argument(3, arg)
  read (arg, *) n
  blocks = 5
  if (command_argument_count() > 3) then
    call get_command_argument(4, arg)
    read (arg, *) blocks
  end if

  call run%init(name=trim(name), tags='bench', folder='/bench', stat=ierr)
  if (ierr /= 0) error stop 'init failed'
  step = 0
  if (trim(mode) == 'calls') then
    write (*, '(a)', advance='no') 'w1_ns'
    do b = 0, blocks
      t0 = now()
      do i = 1, n
        call run%log('residual', 1.0_real64 / real(step + 1, real64), step=step)
        step = step + 1
      end do
      if (b > 0) write (*, '(a,f0.2)', advance='no') ' ', (now() - t0) * 1.0e9_real64 / real(n, real64)
    end do
    write (*, '(/,a)', advance='no') 'w2_ns'
    step = 0
    do b = 0, blocks
      t0 = now()
      do i = 1, n
        do k = 1, 10
          values(k) = real(step + k, real64)
        end do
        call run%log_many(names, values, step=step)
        step = step + 1
      end do
      if (b > 0) write (*, '(a,f0.2)', advance='no') ' ', (now() - t0) * 1.0e9_real64 / real(n, real64)
    end do
    write (*, '(a)') ''
  else
    first = now()
    do i = 1, n / 10
      do k = 1, 10
        values(k) = real(step + k, real64)
      end do
      call run%log_many(names, values, step=step)
      step = step + 1
    end do
    write (*, '(a,f0.6)') 'first_log ', first
    write (*, '(a,f0.6)') 'last_log ', now()
  end if
  t0 = now()
  call run%finish(stat=ierr)
  first = now()
  write (*, '(a,f0.6)') 'finish_s ', first - t0
  write (*, '(a,f0.6)') 'closed_at ', first
  if (ierr /= 0) error stop 'finish failed'

contains

  real(real64) function now()
    type(timespec) :: ts
    integer(c_int) :: rc
    rc = clock_gettime(1_c_int, ts)
    now = real(ts%sec, real64) + real(ts%nsec, real64) * 1.0e-9_real64
  end function now

end program f_workload
