! heat_mpi: a 1-D explicit heat solver, domain-decomposed over MPI ranks,
! reporting to simtrack.
!
! What it shows: every rank calls the same simtrack code. The library detects
! the rank from the launcher's environment (OMPI_COMM_WORLD_RANK, PMI_RANK,
! SLURM_PROCID) and gives ranks other than 0 a no-op handle, so exactly one run
! is recorded. The residual and energy are reduced with MPI_Allreduce and the
! value every rank holds is logged (rank 0's call records it). Rank 0's
! abort_requested flag is broadcast so that all ranks stop together. Each rank
! times its simtrack calls; rank 0 prints its own and the other ranks' worst,
! to show that the no-op handles cost nothing.
!
! MPI bindings: `use mpi_f08` where the MPI library ships that module for the
! compiler at hand; otherwise (e.g. LLVM flang with a distribution OpenMPI,
! whose modules are gfortran's) the same code compiles against 'mpif.h' with
! -DSIMTRACK_MPIF_H. Every call therefore passes `ierr`, valid in both.
!
! Build and run (simtrack installed with the same Fortran compiler as mpif90):
!   mpif90 heat_mpi.F90 $(pkg-config --cflags --libs simtrack-fortran) -o heat_mpi
!   mpirun -np 4 ./heat_mpi
! or, in this repository: cmake -S . -B build && cmake --build build &&
!   ctest --test-dir build -R example_mpi
program heat_mpi
  use, intrinsic :: iso_fortran_env, only: real64
#ifndef SIMTRACK_MPIF_H
  use mpi_f08
#endif
  use simtrack
  implicit none
#ifdef SIMTRACK_MPIF_H
  include 'mpif.h'
#endif

  integer, parameter :: nx_global = 4000, nsteps = 2000, check_abort_every = 50
  real(real64), parameter :: cfl = 0.4_real64, alpha = 1.0_real64
  type(simtrack_run) :: run
  real(real64), allocatable :: u(:), u_new(:)
  real(real64) :: dx, dt, local(2), global(2), t0, t_track, t_others
  integer :: rank, nranks, nx, first, i, it, left, right, ig, ierr
  logical :: stop_now
  character(len=64) :: metadata

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, nranks, ierr)

  ! Block decomposition with one ghost cell on each side: u(0) and u(nx + 1).
  nx = nx_global / nranks
  first = rank * nx
  if (rank == nranks - 1) nx = nx_global - first
  left = merge(MPI_PROC_NULL, rank - 1, rank == 0)
  right = merge(MPI_PROC_NULL, rank + 1, rank == nranks - 1)
  dx = 1.0_real64 / (nx_global - 1)
  dt = cfl * dx**2 / alpha

  write (metadata, '(a,i0,a,i0,a)') '{"nx": ', nx_global, ', "ranks": ', nranks, '}'
  call run%init(name='heat-1d-mpi', folder='/examples/mpi', tags='heat,mpi,example', &
                description='1-D explicit heat equation, MPI domain decomposition', &
                metadata=trim(metadata))
  call run%set_metadata('dt', dt)
  call run%alert('heat-diverging', 'is above', 'residual', frequency=1.0_real64, &
                 window=1.0_real64, threshold=1.0_real64)

  allocate (u(0:nx + 1), u_new(0:nx + 1))
  do i = 1, nx
    ig = first + i
    u(i) = merge(1.0_real64, 0.0_real64, abs(ig - nx_global / 2) <= nx_global / 10)
  end do
  u(0) = 0.0_real64
  u(nx + 1) = 0.0_real64
  u_new = u

  stop_now = .false.
  t_track = 0.0_real64
  do it = 1, nsteps
    call MPI_Sendrecv(u(1), 1, MPI_DOUBLE_PRECISION, left, 0, u(nx + 1), 1, &
                      MPI_DOUBLE_PRECISION, right, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE, ierr)
    call MPI_Sendrecv(u(nx), 1, MPI_DOUBLE_PRECISION, right, 1, u(0), 1, &
                      MPI_DOUBLE_PRECISION, left, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE, ierr)
    do i = 1, nx
      ! The bar's two ends are held at 0 (Dirichlet).
      if ((rank == 0 .and. i == 1) .or. (rank == nranks - 1 .and. i == nx)) cycle
      u_new(i) = u(i) + cfl * (u(i - 1) - 2.0_real64 * u(i) + u(i + 1))
    end do
    local(1) = maxval(abs(u_new(1:nx) - u(1:nx)))
    local(2) = sum(u_new(1:nx)) * dx
    u(1:nx) = u_new(1:nx)

    call MPI_Allreduce(local(1), global(1), 1, MPI_DOUBLE_PRECISION, MPI_MAX, MPI_COMM_WORLD, ierr)
    call MPI_Allreduce(local(2), global(2), 1, MPI_DOUBLE_PRECISION, MPI_SUM, MPI_COMM_WORLD, ierr)
    t0 = MPI_Wtime()
    call run%log('residual', global(1), step=it)
    call run%log('energy', global(2), step=it)
    t_track = t_track + (MPI_Wtime() - t0)

    if (mod(it, check_abort_every) == 0) then
      stop_now = run%abort_requested()
      call MPI_Bcast(stop_now, 1, MPI_LOGICAL, 0, MPI_COMM_WORLD, ierr)
      if (stop_now) then
        call run%event('abort requested: stopping at step ' // itoa(it))
        call run%set_status('terminated')
        exit
      end if
    end if
  end do

  t0 = MPI_Wtime()
  call run%finish()
  t_track = t_track + (MPI_Wtime() - t0)
  call MPI_Reduce(merge(0.0_real64, t_track, rank == 0), t_others, 1, MPI_DOUBLE_PRECISION, &
                  MPI_MAX, 0, MPI_COMM_WORLD, ierr)
  if (rank == 0) then
    write (*, '(a,i0,a,i0,a,es10.3,a,es10.3)') 'heat_mpi: ', nranks, ' ranks, ', &
      min(it, nsteps), ' steps, residual ', global(1), ', energy ', global(2)
    write (*, '(a,f9.6,a,f9.6,a)') 'heat_mpi: time in simtrack calls: rank 0 ', t_track, &
      ' s, other ranks at most ', t_others, ' s'
  end if
  call MPI_Finalize(ierr)

contains

  function itoa(n) result(s)
    integer, intent(in) :: n
    character(len=:), allocatable :: s
    character(len=16) :: buf

    write (buf, '(i0)') n
    s = trim(buf)
  end function itoa

end program heat_mpi
