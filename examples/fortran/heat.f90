! heat: a 1-D explicit (FTCS) heat solver that reports to simtrack.
!
! What it shows: the Fortran API a solver needs — init with metadata, the
! input deck saved as 'input', residual and energy logged every step, an alert
! that fires if the solver diverges, abort_requested checked every step (a
! user can stop the run from the browser), the result saved as 'output',
! finish. No `stat` arguments: a telemetry failure prints one line and the
! simulation carries on.
!
! Build and run (after installing simtrack into <prefix>, with the same
! Fortran compiler that built it):
!   gfortran heat.f90 $(pkg-config --cflags --libs simtrack-fortran) -o heat && ./heat
! or, in this repository: cmake -S . -B build && cmake --build build &&
!   (cd build/examples/fortran && ./heat)
! Without SIMTRACK_URL / simtrack.ini the run is recorded offline under
! SIMTRACK_OFFLINE_DIR (default ~/.cache/simtrack); `simtrack sync` uploads it.
! Parameters come from heat.nml, written with defaults if absent.
program heat
  use, intrinsic :: iso_fortran_env, only: real64
  use simtrack
  implicit none

  integer :: nx = 200, nsteps = 5000, report_every = 1
  real(real64) :: alpha = 1.0_real64, length = 1.0_real64, cfl = 0.4_real64
  real(real64) :: tolerance = 1.0e-8_real64
  namelist /heat_params/ nx, nsteps, report_every, alpha, length, cfl, tolerance

  type(simtrack_run) :: run
  real(real64), allocatable :: u(:), u_new(:)
  real(real64) :: dx, dt, residual, energy
  integer :: i, it, unit
  logical :: exists
  character(len=256) :: metadata

  inquire (file='heat.nml', exist=exists)
  if (.not. exists) then
    open (newunit=unit, file='heat.nml', status='new', action='write')
    write (unit, nml=heat_params)
    close (unit)
  end if
  open (newunit=unit, file='heat.nml', status='old', action='read')
  read (unit, nml=heat_params)
  close (unit)

  ! residual = max |u_new - u| per step: below cfl = 0.4 while stable, above
  ! 1 only when the scheme diverges (cfl > 0.5), which the alert catches.
  dx = length / (nx - 1)
  dt = cfl * dx**2 / alpha
  write (metadata, '(a,i0,a,es12.5,a,es12.5,a)') '{"nx": ', nx, ', "dx": ', dx, ', "dt": ', dt, '}'

  call run%init(name='heat-1d', folder='/examples/fortran', tags='heat,ftcs,example', &
                description='1-D explicit heat equation, hot spot in a cold bar', &
                metadata=trim(metadata))
  call run%set_metadata('alpha', alpha)
  call run%set_metadata('nsteps', nsteps)
  call run%set_metadata('scheme', 'ftcs')
  call run%set_metadata('stable', cfl <= 0.5_real64)
  call run%save('heat.nml', 'input')
  call run%alert('heat-diverging', 'is above', 'residual', frequency=1.0_real64, &
                 window=1.0_real64, threshold=1.0_real64)

  allocate (u(nx), u_new(nx))
  u = 0.0_real64
  u(nx / 2 - nx / 10:nx / 2 + nx / 10) = 1.0_real64
  u_new = u

  do it = 1, nsteps
    do i = 2, nx - 1
      u_new(i) = u(i) + cfl * (u(i - 1) - 2.0_real64 * u(i) + u(i + 1))
    end do
    residual = maxval(abs(u_new - u))
    energy = sum(u_new) * dx
    u = u_new

    if (mod(it, report_every) == 0) then
      call run%log('residual', residual, step=it)
      call run%log('energy', energy, step=it)
    end if
    if (run%abort_requested()) then
      call run%event('abort requested: stopping at step ' // itoa(it))
      call run%set_status('terminated')
      exit
    end if
    if (residual < tolerance) then
      call run%event('converged at step ' // itoa(it))
      exit
    end if
  end do

  open (newunit=unit, file='heat-output.dat', status='replace', action='write')
  do i = 1, nx
    write (unit, '(2es16.8)') (i - 1) * dx, u(i)
  end do
  close (unit)
  call run%save('heat-output.dat', 'output')
  call run%finish()
  write (*, '(a,i0,a,es10.3,a,es10.3)') 'heat: ', min(it, nsteps), ' steps, residual ', &
    residual, ', energy ', energy

contains

  function itoa(n) result(s)
    integer, intent(in) :: n
    character(len=:), allocatable :: s
    character(len=16) :: buf

    write (buf, '(i0)') n
    s = trim(buf)
  end function itoa

end program heat
