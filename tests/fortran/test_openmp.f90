! One run shared by OpenMP threads: each thread logs its own metric from inside
! a parallel region (as a hybrid MPI+OpenMP solver would), every call must
! succeed; the live-server scenario `openmp` then checks that every point
! arrived, in step order.
program test_openmp
  use, intrinsic :: iso_fortran_env, only: real64
  use omp_lib, only: omp_get_thread_num, omp_get_num_threads
  use simtrack
  use checks, only: check, checks_done
  implicit none

  integer, parameter :: nthreads = 4, npoints = 5000
  type(simtrack_run) :: run
  integer :: ierr, failures, nseen, i
  character(len=16) :: name

  call run%init(name='fortran-openmp', folder='/tests/fortran', stat=ierr)
  call check(ierr == 0, 'init')

  failures = 0
  nseen = 0
  !$omp parallel num_threads(nthreads) private(name, ierr, i) reduction(+:failures)
  write (name, '(a,i0)') 'thread', omp_get_thread_num()
  do i = 0, npoints - 1
    call run%log(trim(name), real(i, real64), step=i, stat=ierr)
    if (ierr /= 0) failures = failures + 1
  end do
  call run%event('done: ' // trim(name), stat=ierr)
  if (ierr /= 0) failures = failures + 1
  !$omp single
  nseen = omp_get_num_threads()
  !$omp end single
  !$omp end parallel

  call check(nseen == nthreads, 'ran with 4 threads')
  call check(failures == 0, 'every log from every thread succeeded')
  call run%finish(stat=ierr)
  call check(ierr == 0, 'finish')
  call checks_done()
end program test_openmp
