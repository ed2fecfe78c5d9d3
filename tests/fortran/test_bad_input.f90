! Bad input gives the documented non-zero stat and a message in errmsg, and
! never stops the program; calls on a run that was never initialised give
! SIMTRACK_STATUS_NULL_RUN, and calls on a copy of a finished run
! SIMTRACK_STATUS_RUN_FINISHED.
program test_bad_input
  use, intrinsic :: iso_fortran_env, only: real64
  use simtrack
  use checks, only: check, checks_done
  implicit none

  type(simtrack_run) :: run, never, copy
  integer :: ierr
  character(len=256) :: msg
  character(len=4) :: names(2)

  msg = ''
  call never%log('residual', 1.0_real64, stat=ierr, errmsg=msg)
  call check(ierr == SIMTRACK_STATUS_NULL_RUN, 'log on an uninitialised run: NULL_RUN')
  call check(len_trim(msg) > 0, 'log on an uninitialised run: errmsg set')
  call never%event('x', stat=ierr)
  call check(ierr == SIMTRACK_STATUS_NULL_RUN, 'event on an uninitialised run: NULL_RUN')
  call never%finish(stat=ierr)
  call check(ierr == 0, 'finish on an uninitialised run is OK')
  call check(.not. never%abort_requested(), 'abort_requested on an uninitialised run')

  msg = ''
  call run%init(name='bad-json', metadata='{not json', stat=ierr, errmsg=msg)
  call check(ierr == SIMTRACK_STATUS_INVALID_JSON, 'init with bad metadata: INVALID_JSON')
  call check(len_trim(msg) > 0, 'init with bad metadata: errmsg set')
  call check(.not. run%is_active(), 'a failed init leaves the run inactive')

  call run%init(name='fortran-bad-input', folder='/tests/fortran', stat=ierr)
  call check(ierr == 0, 'init')
  call run%init(name='again', stat=ierr)
  call check(ierr == SIMTRACK_STATUS_INVALID_ARGUMENT, 'init twice: INVALID_ARGUMENT')

  msg = ''
  call run%save('bad-input.nml', 'bogus', stat=ierr, errmsg=msg)
  call check(ierr == SIMTRACK_STATUS_INVALID_CATEGORY, 'save with a bad category: INVALID_CATEGORY')
  call check(len_trim(msg) > 0, 'save with a bad category: errmsg set')
  call run%save('no-such-file.nml', 'input', stat=ierr)
  call check(ierr == SIMTRACK_STATUS_FILE_NOT_FOUND, 'save of a missing file: FILE_NOT_FOUND')

  call run%alert('a', 'is sideways', 'residual', 1.0_real64, 1.0_real64, 1.0_real64, stat=ierr)
  call check(ierr == SIMTRACK_STATUS_INVALID_RULE, 'alert with a bad rule: INVALID_RULE')
  call run%alert_range('b', 'is above', 'residual', 1.0_real64, 1.0_real64, 0.0_real64, &
                       1.0_real64, stat=ierr)
  call check(ierr == SIMTRACK_STATUS_INVALID_RULE, 'alert_range with a threshold rule: INVALID_RULE')
  call run%set_status('exploded', stat=ierr)
  call check(ierr == SIMTRACK_STATUS_INVALID_STATUS, 'set_status with a bad status: INVALID_STATUS')
  call run%set_folder_details('/tests/fortran', metadata='[1, 2]', stat=ierr)
  call check(ierr == SIMTRACK_STATUS_INVALID_JSON, 'set_folder_details with a non-object: INVALID_JSON')
  call run%flush(timeout=-1.0_real64, stat=ierr)
  call check(ierr == SIMTRACK_STATUS_INVALID_ARGUMENT, 'flush with a negative timeout: INVALID_ARGUMENT')
  call run%log('', 1.0_real64, stat=ierr)
  call check(ierr == SIMTRACK_STATUS_INVALID_ARGUMENT, 'log with an empty name: INVALID_ARGUMENT')
  call run%log('    ', 1.0_real64, stat=ierr)
  call check(ierr == SIMTRACK_STATUS_INVALID_ARGUMENT, 'log with a blank name: INVALID_ARGUMENT')
  names = [character(len=4) :: 'a', 'b']
  call run%log_many(names, [1.0_real64], stat=ierr)
  call check(ierr == SIMTRACK_STATUS_INVALID_ARGUMENT, 'log_many with sizes that differ: INVALID_ARGUMENT')

  call run%log('residual', 1.0_real64, stat=ierr)
  call check(ierr == 0, 'the run still works after failures')
  ! A copy shares the handle (a caller bug the library catches).
  copy = run
  call run%finish(stat=ierr)
  call check(ierr == 0, 'finish')
  msg = ''
  call copy%log('residual', 2.0_real64, stat=ierr, errmsg=msg)
  call check(ierr == SIMTRACK_STATUS_RUN_FINISHED, 'log on a copy of a finished run: RUN_FINISHED')
  call check(index(msg, 'finished') > 0, 'log on a copy of a finished run: errmsg says so')
  call copy%finish(stat=ierr)
  call check(ierr == SIMTRACK_STATUS_RUN_FINISHED, 'finish of a copy of a finished run: RUN_FINISHED')
  call checks_done()
end program test_bad_input
