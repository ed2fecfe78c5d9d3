! fortran_log: cost of `run%log` of one real64 in a hot loop, from Fortran.
!
! Times batches of `batch` calls with system_clock and prints the median,
! 10th and 90th percentile of the per-call cost over `batches` batches,
! first for run%log (the public module) and then for the raw C entry point it
! wraps (simtrack_log_n), so the wrapper's own overhead is visible.
! Target (PRODUCT.md §8): median <= 100 ns per call.
!
! Build and run: bench/fortran_log.sh (release build, offline into a temp dir).
program fortran_log
  use, intrinsic :: iso_fortran_env, only: real64, int64
  use, intrinsic :: iso_c_binding, only: c_ptr, c_null_ptr, c_size_t, c_int64_t, c_int32_t
  use simtrack
  use simtrack_c, only: c_simtrack_init, c_simtrack_log_n, c_simtrack_finish
  implicit none

  integer, parameter :: batch = 1000, batches = 2000, warmup = 100
  type(simtrack_run) :: run
  real(real64) :: per_call(batches)
  integer :: ierr

  call run%init(name='bench-fortran-log', folder='/bench', stat=ierr)
  if (ierr /= 0) error stop 'init failed'

  call measure_module(run, per_call)
  call show('run%log(name, real64, step)', per_call)
  call run%finish(stat=ierr)
  if (ierr /= 0) write (*, '(a,i0)') 'finish returned ', ierr

  call measure_raw(per_call)
  call show('raw simtrack_log_n (no wrapper)', per_call)

contains

  subroutine measure_module(run, per_call)
    type(simtrack_run), intent(inout) :: run
    real(real64), intent(out) :: per_call(:)
    integer(int64) :: t0, t1, rate
    integer :: b, i, step

    call system_clock(count_rate=rate)
    step = 0
    do b = -warmup + 1, size(per_call)
      call system_clock(t0)
      do i = 1, batch
        call run%log('residual', real(i, real64), step=step)
        step = step + 1
      end do
      call system_clock(t1)
      if (b > 0) per_call(b) = real(t1 - t0, real64) / real(rate, real64) * 1.0e9_real64 / batch
    end do
  end subroutine measure_module

  subroutine measure_raw(per_call)
    real(real64), intent(out) :: per_call(:)
    type(c_ptr) :: handle
    integer(int64) :: t0, t1, rate
    integer :: b, i
    integer(c_int64_t) :: step
    integer(c_int32_t) :: status
    character(len=*), parameter :: name = 'raw'

    status = c_simtrack_init(c_null_ptr, c_null_ptr, c_null_ptr, c_null_ptr, c_null_ptr, handle)
    if (status /= 0) error stop 'raw init failed'
    call system_clock(count_rate=rate)
    step = 0
    do b = -warmup + 1, size(per_call)
      call system_clock(t0)
      do i = 1, batch
        status = ior(status, c_simtrack_log_n(handle, name, &
                                              len(name, kind=c_size_t), real(i, real64), step))
        step = step + 1
      end do
      call system_clock(t1)
      if (b > 0) per_call(b) = real(t1 - t0, real64) / real(rate, real64) * 1.0e9_real64 / batch
    end do
    if (status /= 0) write (*, '(a)') 'raw log failed'
    status = c_simtrack_finish(handle)
  end subroutine measure_raw

  subroutine show(label, per_call)
    character(len=*), intent(in) :: label
    real(real64), intent(inout) :: per_call(:)
    integer :: n

    call sort(per_call)
    n = size(per_call)
    write (*, '(a,t36,a,f8.1,a,f8.1,a,f8.1,a,i0,a)') label, ': median ', per_call((n + 1) / 2), &
      ' ns/call   (p10 ', per_call(max(1, n / 10)), ', p90 ', per_call(9 * n / 10), '; ', &
      n * batch, ' calls)'
  end subroutine show

  subroutine sort(a)
    real(real64), intent(inout) :: a(:)
    integer :: i, j
    real(real64) :: x

    do i = 2, size(a)
      x = a(i)
      j = i - 1
      do while (j >= 1)
        if (a(j) <= x) exit
        a(j + 1) = a(j)
        j = j - 1
      end do
      a(j + 1) = x
    end do
  end subroutine sort

end program fortran_log
