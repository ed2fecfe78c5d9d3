! fortran_omp: cost of `run%log` when OpenMP threads log to one run.
!
! Each thread logs its own metric ('t<k>', explicit steps) in blocks of
! `batch` calls timed with omp_get_wtime, and takes the median ns/call of its
! blocks; printed: the median and the range of the threads' medians.
! Threads: OMP_NUM_THREADS. Build and run: bench/log-scaling.sh.
program fortran_omp
  use, intrinsic :: iso_fortran_env, only: real64
  use omp_lib
  use simtrack
  implicit none

  integer, parameter :: batch = 1000, batches = 2000, warmup = 100
  type(simtrack_run) :: run
  real(real64), allocatable :: medians(:)
  integer :: ierr, nthreads, failures

  call run%init(name='bench-fortran-omp', folder='/bench', stat=ierr)
  if (ierr /= 0) error stop 'init failed'
  nthreads = omp_get_max_threads()
  allocate (medians(nthreads))
  failures = 0

  !$omp parallel reduction(+:failures)
  call work(omp_get_thread_num(), failures)
  !$omp end parallel

  call sort(medians)
  write (*, '(a,i0,a,f6.1,a,f6.1,a,f6.1,a)') 'fortran openmp threads ', nthreads, &
    ': median ns/call ', medians((nthreads + 1) / 2), ' (threads'' medians ', medians(1), '..', &
    medians(nthreads), ')'
  call run%finish(stat=ierr)
  if (ierr /= 0 .or. failures /= 0) error stop 'logging failed'

contains

  !> Thread k's share: times its blocks of calls and stores its median.
  subroutine work(k, failures)
    integer, intent(in) :: k
    integer, intent(inout) :: failures
    real(real64) :: per_call(batches), t0
    character(len=8) :: name
    integer :: b, i, st, step
    write (name, '(a,i0)') 't', k
    step = 0
    !$omp barrier
    do b = -warmup + 1, batches
      t0 = omp_get_wtime()
      do i = 1, batch
        call run%log(name, real(step, real64), step=step, stat=st)
        if (st /= 0) failures = failures + 1
        step = step + 1
      end do
      if (b > 0) per_call(b) = (omp_get_wtime() - t0) * 1.0e9_real64 / batch
    end do
    call sort(per_call)
    medians(k + 1) = per_call(batches / 2)
  end subroutine work

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
end program fortran_omp
