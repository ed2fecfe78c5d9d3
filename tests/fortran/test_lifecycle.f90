! A whole run through every procedure of type(simtrack_run), every `log` kind
! and every `set_metadata` kind, each with stat = 0 expected; then finish,
! finish again, and the finalizer of a run that was never finished.
program test_lifecycle
  use, intrinsic :: iso_fortran_env, only: real32, real64, int32, int64
  use simtrack
  use checks, only: check, checks_done
  implicit none

  type(simtrack_run) :: run
  integer :: ierr, unit, i
  character(len=8) :: names(3)
  real(real64) :: values(3)
  character(len=200) :: msg

  call check(.not. run%is_active(), 'a new run is not active')
  call check(run%id() == '', 'a new run has no id')
  call check(len(simtrack_version()) > 0, 'simtrack_version is not empty')

  call run%init(name='fortran-lifecycle', metadata='{"nx": 128, "scheme": "ftcs"}', &
                tags='fortran,test', description='lifecycle test of the Fortran module', &
                folder='/tests/fortran', stat=ierr)
  call check(ierr == SIMTRACK_STATUS_OK, 'init with every argument')
  call check(run%is_active(), 'an initialised run is active')
  call check(len(run%id()) > 0, 'an initialised run has an id')

  call run%set_metadata('dt', 1.0e-3_real64, stat=ierr)
  call check(ierr == 0, 'set_metadata real64')
  call run%set_metadata('nx', 128_int32, stat=ierr)
  call check(ierr == 0, 'set_metadata int32')
  call run%set_metadata('cells', 10000000000_int64, stat=ierr)
  call check(ierr == 0, 'set_metadata int64')
  call run%set_metadata('scheme', 'ftcs', stat=ierr)
  call check(ierr == 0, 'set_metadata character')
  call run%set_metadata('restart', .false., stat=ierr)
  call check(ierr == 0, 'set_metadata logical')

  do i = 0, 9
    call run%log('residual', 1.0_real64 / (i + 1), step=i, stat=ierr)
    if (ierr /= 0) exit
  end do
  call check(ierr == 0, 'log real64 with step')
  call run%log('energy', 2.5_real32, stat=ierr)
  call check(ierr == 0, 'log real32 without step')
  call run%log('iterations', 42_int32, step=0, stat=ierr)
  call check(ierr == 0, 'log int32')
  call run%log('bytes', 123456789012_int64, stat=ierr)
  call check(ierr == 0, 'log int64')
  call run%log('nan', ieee_nan(), stat=ierr)
  call check(ierr == 0, 'log NaN')
  call run%log('name with trailing blanks   ', 1.0_real64, stat=ierr)
  call check(ierr == 0, 'log with a blank-padded name')

  names = [character(len=8) :: 'mass', 'momentum', 'ke']
  values = [1.0_real64, 0.0_real64, 0.5_real64]
  call run%log_many(names, values, step=3, stat=ierr)
  call check(ierr == 0, 'log_many with step')
  call run%log_many(names, values, stat=ierr)
  call check(ierr == 0, 'log_many without step')

  call run%event('started time loop', stat=ierr)
  call check(ierr == 0, 'event')
  call run%event('residual stalled', stat=ierr, level='warning')
  call check(ierr == 0, 'event at a level')
  call run%event('refused', stat=ierr, level='loud')
  call check(ierr == SIMTRACK_STATUS_INVALID_ARGUMENT, 'an unknown event level is refused')

  open (newunit=unit, file='lifecycle-input.nml', status='replace', action='write')
  write (unit, '(a)') '&heat nx=128 /'
  close (unit)
  call run%save('lifecycle-input.nml', 'input', stat=ierr)
  call check(ierr == 0, 'save input')
  call run%save('lifecycle-input.nml', 'code', stat=ierr)
  call check(ierr == 0, 'save code')

  call run%alert('residual-high', 'is above', 'residual', frequency=1.0_real64, &
                 window=1.0_real64, threshold=10.0_real64, stat=ierr)
  call check(ierr == 0, 'alert is above')
  call run%alert('residual-high', 'is above', 'residual', 1.0_real64, 1.0_real64, &
                 10.0_real64, stat=ierr)
  call check(ierr == 0, 'defining the same alert twice is not an error')
  call run%alert_range('energy-range', 'is outside range', 'energy', frequency=1.0_real64, &
                       window=2.0_real64, low=0.0_real64, high=5.0_real64, stat=ierr)
  call check(ierr == 0, 'alert_range is outside range')

  call run%set_folder_details('/tests/fortran', metadata='{"owner": "ci"}', tags='ci', &
                              description='Fortran module tests', stat=ierr)
  call check(ierr == 0, 'set_folder_details')
  call run%set_folder_details('/tests/fortran', stat=ierr)
  call check(ierr == 0, 'set_folder_details with only the folder')

  call check(.not. run%abort_requested(), 'abort_requested is false offline')

  call run%flush(stat=ierr)
  call check(ierr == 0, 'flush with the default timeout')
  call run%flush(timeout=5.0_real64, stat=ierr)
  call check(ierr == 0, 'flush with a timeout')

  call run%set_status('completed', stat=ierr)
  call check(ierr == 0, 'set_status completed')

  msg = 'untouched'
  call run%finish(stat=ierr, errmsg=msg)
  call check(ierr == 0, 'finish')
  call check(msg == 'untouched', 'errmsg is left unchanged on success')
  call check(.not. run%is_active(), 'a finished run is not active')
  call run%finish(stat=ierr)
  call check(ierr == 0, 'finish twice is harmless')

  call scoped_run(ierr)
  call check(ierr == 0, 'a run left unfinished is finished by the finalizer')

  call check(len(simtrack_status_string(SIMTRACK_STATUS_INVALID_JSON)) > 0, &
             'simtrack_status_string')
  call checks_done()

contains

  function ieee_nan() result(x)
    use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan
    real(real64) :: x

    x = ieee_value(x, ieee_quiet_nan)
  end function ieee_nan

  subroutine scoped_run(ierr)
    integer, intent(out) :: ierr
    type(simtrack_run) :: local

    call local%init(name='fortran-scoped', folder='/tests/fortran', stat=ierr)
    if (ierr == 0) call local%log('x', 1.0_real64, stat=ierr)
  end subroutine scoped_run

end program test_lifecycle
