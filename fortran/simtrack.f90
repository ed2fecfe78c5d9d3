! simtrack: track a simulation run from Fortran.
!
!   use simtrack
!   type(simtrack_run) :: run
!   call run%init(name='heat', folder='/demo', metadata='{"nx": 128}')
!   call run%log('residual', res, step=it)
!   call run%finish()
!
! Conventions, for every procedure of type(simtrack_run):
! - `stat` (optional, intent(out)) is 0 on success, else one of the
!   SIMTRACK_STATUS_* values (the `simtrack_status` codes of simtrack.h).
! - `errmsg` (optional, intent(inout)) receives the message of a failure and is
!   left unchanged on success, like the intrinsic `allocate`.
! - Without `stat`, a failure writes one line to `error_unit` and execution
!   continues: telemetry never stops a simulation.
! - Character arguments lose their trailing blanks (Fortran padding).
! - `step` is optional: absent (or negative) means "the next step of this
!   metric", counting 0, 1, 2, ...
! - A run is a handle: do not copy a `simtrack_run` (both copies would share
!   one handle; once one is finished, the other's calls fail with
!   SIMTRACK_STATUS_RUN_FINISHED). `finish` releases it; the finalizer
!   finishes a run that goes out of scope unfinished, and is safe to run again.
! - After fork(), a run inherited from the parent does nothing in the child
!   (every call succeeds); the parent's run is not affected.
!
! The hot path (`log`) passes the name's storage and length straight to the C
! library: no allocation, no copy. The raw interfaces live in `simtrack_c`.
module simtrack
  use, intrinsic :: iso_c_binding, only: c_ptr, c_null_ptr, c_associated, c_loc, &
                                         c_f_pointer, c_char, c_null_char, c_int, &
                                         c_int32_t, c_int64_t, c_size_t, c_double
  use, intrinsic :: iso_fortran_env, only: real32, real64, int32, int64, error_unit
  use simtrack_c
  implicit none
  private

  public :: simtrack_run, simtrack_version, simtrack_status_string, simtrack_handle_signals
  public :: SIMTRACK_STATUS_OK, SIMTRACK_STATUS_NULL_RUN, SIMTRACK_STATUS_NULL_ARGUMENT
  public :: SIMTRACK_STATUS_INVALID_UTF8, SIMTRACK_STATUS_INVALID_ARGUMENT
  public :: SIMTRACK_STATUS_INVALID_JSON, SIMTRACK_STATUS_INVALID_CATEGORY
  public :: SIMTRACK_STATUS_INVALID_RULE, SIMTRACK_STATUS_INVALID_STATUS
  public :: SIMTRACK_STATUS_RUN_FINISHED, SIMTRACK_STATUS_IN_FORKED_CHILD
  public :: SIMTRACK_STATUS_CONFIG, SIMTRACK_STATUS_IO, SIMTRACK_STATUS_FILE_NOT_FOUND
  public :: SIMTRACK_STATUS_UNDELIVERED, SIMTRACK_STATUS_REFUSED, SIMTRACK_STATUS_INTERNAL
  public :: SIMTRACK_MAX_NAME_BYTES, SIMTRACK_MAX_EVENT_BYTES
  public :: SIMTRACK_ORDER_C, SIMTRACK_ORDER_FORTRAN

  !> Default deadline of `flush`, in seconds.
  real(real64), parameter :: default_flush_timeout = 10.0_real64

  !> One tracked run. Holds only the C handle (null until `init`).
  type :: simtrack_run
    private
    type(c_ptr) :: handle = c_null_ptr
  contains
    procedure :: init => run_init
    procedure, private :: log_real64, log_real32, log_int32, log_int64
    generic :: log => log_real64, log_real32, log_int32, log_int64
    procedure :: log_many => run_log_many
    procedure :: event => run_event
    procedure, private :: set_metadata_real64, set_metadata_int32, set_metadata_int64, &
                          set_metadata_char, set_metadata_logical
    generic :: set_metadata => set_metadata_real64, set_metadata_int32, set_metadata_int64, &
                               set_metadata_char, set_metadata_logical
    procedure :: metric_unit => run_metric_unit
    procedure :: save => run_save
    procedure :: grid => run_grid
    procedure, private :: log_array_r64_1, log_array_r64_2, log_array_r64_3
    procedure, private :: log_array_r32_1, log_array_r32_2, log_array_r32_3
    generic :: log_array => log_array_r64_1, log_array_r64_2, log_array_r64_3, &
                            log_array_r32_1, log_array_r32_2, log_array_r32_3
    procedure :: alert => run_alert
    procedure :: alert_range => run_alert_range
    procedure :: set_folder_details => run_set_folder_details
    procedure :: set_status => run_set_status
    procedure :: abort_requested => run_abort_requested
    procedure :: flush => run_flush
    procedure :: finish => run_finish
    procedure :: id => run_id
    procedure :: is_active => run_is_active
    final :: run_final
  end type simtrack_run

contains

  !> Starts the run. Every argument is optional: `name` defaults to a generated
  !> name, `folder` to '/'; `metadata` is a JSON object ('{"nx": 128}'), `tags`
  !> comma-separated ('cfd,test'). Never waits on the network.
  subroutine run_init(this, name, metadata, tags, description, folder, stat, errmsg)
    class(simtrack_run), intent(inout) :: this
    character(len=*), intent(in), optional :: name, metadata, tags, description, folder
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_name(:), c_meta(:), c_tags(:), &
                                                   c_desc(:), c_folder(:)
    integer(c_int32_t) :: status

    if (c_associated(this%handle)) then
      call fail_with(SIMTRACK_STATUS_INVALID_ARGUMENT, 'run%init', &
                     'run is already initialised; call finish first', stat, errmsg)
      return
    end if
    call to_c(name, c_name)
    call to_c(metadata, c_meta)
    call to_c(tags, c_tags)
    call to_c(description, c_desc)
    call to_c(folder, c_folder)
    status = c_simtrack_init(ptr(c_name), ptr(c_meta), ptr(c_tags), ptr(c_desc), &
                             ptr(c_folder), this%handle)
    call check(status, 'run%init', stat, errmsg)
  end subroutine run_init

  !> Logs `value` of metric `name` (real64).
  subroutine log_real64(this, name, value, step, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name
    real(real64), intent(in) :: value
    integer, intent(in), optional :: step
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    integer(c_int32_t) :: status

    status = c_simtrack_log_n(this%handle, name, len(name, kind=c_size_t), &
                              real(value, c_double), step64(step))
    if (present(stat)) stat = status
    if (status /= SIMTRACK_STATUS_OK) call report(status, 'run%log', present(stat), errmsg)
  end subroutine log_real64

  !> Logs `value` of metric `name` (real32, widened to real64).
  subroutine log_real32(this, name, value, step, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name
    real(real32), intent(in) :: value
    integer, intent(in), optional :: step
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    integer(c_int32_t) :: status

    status = c_simtrack_log_n(this%handle, name, len(name, kind=c_size_t), &
                              real(value, c_double), step64(step))
    if (present(stat)) stat = status
    if (status /= SIMTRACK_STATUS_OK) call report(status, 'run%log', present(stat), errmsg)
  end subroutine log_real32

  !> Logs `value` of metric `name` (int32, stored as a real64).
  subroutine log_int32(this, name, value, step, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name
    integer(int32), intent(in) :: value
    integer, intent(in), optional :: step
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    integer(c_int32_t) :: status

    status = c_simtrack_log_n(this%handle, name, len(name, kind=c_size_t), &
                              real(value, c_double), step64(step))
    if (present(stat)) stat = status
    if (status /= SIMTRACK_STATUS_OK) call report(status, 'run%log', present(stat), errmsg)
  end subroutine log_int32

  !> Logs `value` of metric `name` (int64, stored as a real64: exact up to 2**53).
  subroutine log_int64(this, name, value, step, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name
    integer(int64), intent(in) :: value
    integer, intent(in), optional :: step
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    integer(c_int32_t) :: status

    status = c_simtrack_log_n(this%handle, name, len(name, kind=c_size_t), &
                              real(value, c_double), step64(step))
    if (present(stat)) stat = status
    if (status /= SIMTRACK_STATUS_OK) call report(status, 'run%log', present(stat), errmsg)
  end subroutine log_int64

  !> Logs `values(i)` of metric `names(i)` for every i, all at the same step.
  !> Either all are logged or, on a bad argument, none.
  subroutine run_log_many(this, names, values, step, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in), contiguous :: names(:)
    real(real64), intent(in), contiguous :: values(:)
    integer, intent(in), optional :: step
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    integer(c_int32_t) :: status

    if (size(names) /= size(values)) then
      call fail_with(SIMTRACK_STATUS_INVALID_ARGUMENT, 'run%log_many', &
                     'names and values differ in size', stat, errmsg)
      return
    end if
    status = c_simtrack_log_many_fixed(this%handle, size(values, kind=c_size_t), names, &
                                       len(names, kind=c_size_t), values, step64(step))
    call check(status, 'run%log_many', stat, errmsg)
  end subroutine run_log_many

  !> Records an event: a timestamped line in the run's event log, at
  !> `level` ('debug', 'info', 'warning', 'error' or 'critical') when given.
  subroutine run_event(this, message, stat, errmsg, level)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: message
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(len=*), intent(in), optional :: level
    character(kind=c_char), allocatable, target :: c_message(:), c_level(:)

    call to_c(message, c_message)
    if (present(level)) then
      call to_c(level, c_level)
      call check(c_simtrack_event_level(this%handle, ptr(c_level), ptr(c_message)), &
                 'run%event', stat, errmsg)
    else
      call check(c_simtrack_event(this%handle, ptr(c_message)), 'run%event', stat, errmsg)
    end if
  end subroutine run_event

  subroutine set_metadata_real64(this, key, value, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: key
    real(real64), intent(in) :: value
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_key(:)

    call to_c(key, c_key)
    call check(c_simtrack_set_metadata_f64(this%handle, ptr(c_key), real(value, c_double)), &
               'run%set_metadata', stat, errmsg)
  end subroutine set_metadata_real64

  subroutine set_metadata_int32(this, key, value, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: key
    integer(int32), intent(in) :: value
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_key(:)

    call to_c(key, c_key)
    call check(c_simtrack_set_metadata_i64(this%handle, ptr(c_key), int(value, c_int64_t)), &
               'run%set_metadata', stat, errmsg)
  end subroutine set_metadata_int32

  subroutine set_metadata_int64(this, key, value, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: key
    integer(int64), intent(in) :: value
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_key(:)

    call to_c(key, c_key)
    call check(c_simtrack_set_metadata_i64(this%handle, ptr(c_key), int(value, c_int64_t)), &
               'run%set_metadata', stat, errmsg)
  end subroutine set_metadata_int64

  subroutine set_metadata_char(this, key, value, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: key
    character(len=*), intent(in) :: value
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_key(:), c_value(:)

    call to_c(key, c_key)
    call to_c(value, c_value)
    call check(c_simtrack_set_metadata_str(this%handle, ptr(c_key), ptr(c_value)), &
               'run%set_metadata', stat, errmsg)
  end subroutine set_metadata_char

  subroutine set_metadata_logical(this, key, value, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: key
    logical, intent(in) :: value
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_key(:)

    call to_c(key, c_key)
    call check(c_simtrack_set_metadata_bool(this%handle, ptr(c_key), &
                                            merge(1_c_int, 0_c_int, value)), &
               'run%set_metadata', stat, errmsg)
  end subroutine set_metadata_logical

  !> Records the unit of metric `name` ('m/s', 'K', ...; '' removes it),
  !> shown on the web UI's chart axes and tables.
  subroutine run_metric_unit(this, name, unit, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name, unit
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_name(:), c_unit(:)

    call to_c(name, c_name)
    call to_c(unit, c_unit)
    call check(c_simtrack_metric_unit(this%handle, ptr(c_name), ptr(c_unit)), &
               'run%metric_unit', stat, errmsg)
  end subroutine run_metric_unit

  !> Saves the file at `path` with the run; `category` is 'code', 'input' or
  !> 'output'. The file is captured during the call.
  subroutine run_save(this, path, category, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: path, category
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_path(:), c_category(:)

    call to_c(path, c_path)
    call to_c(category, c_category)
    call check(c_simtrack_save(this%handle, ptr(c_path), ptr(c_category)), 'run%save', stat, errmsg)
  end subroutine run_save

  !> Defines grid `name` with one to three axes: `x` (required), `y`, `z`
  !> are the coordinates (ordered), each with an optional label and units.
  !> Array metrics are then logged on it with `log_array`.
  subroutine run_grid(this, name, x, xlabel, xunits, y, ylabel, yunits, z, zlabel, zunits, &
                      stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name
    real(real64), intent(in), target, contiguous :: x(:)
    real(real64), intent(in), target, contiguous, optional :: y(:), z(:)
    character(len=*), intent(in), optional :: xlabel, xunits, ylabel, yunits, zlabel, zunits
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_name(:), lx(:), ux(:), ly(:), uy(:), &
                                                   lz(:), uz(:)
    type(c_simtrack_axis) :: axes(3)
    integer(c_int32_t) :: ndim

    call to_c(name, c_name)
    call to_c(xlabel, lx)
    call to_c(xunits, ux)
    axes(1) = c_simtrack_axis(ptr(lx), ptr(ux), c_loc(x), size(x, kind=c_size_t))
    ndim = 1
    if (present(y)) then
      call to_c(ylabel, ly)
      call to_c(yunits, uy)
      axes(2) = c_simtrack_axis(ptr(ly), ptr(uy), c_loc(y), size(y, kind=c_size_t))
      ndim = 2
      if (present(z)) then
        call to_c(zlabel, lz)
        call to_c(zunits, uz)
        axes(3) = c_simtrack_axis(ptr(lz), ptr(uz), c_loc(z), size(z, kind=c_size_t))
        ndim = 3
      end if
    end if
    call check(c_simtrack_grid(this%handle, ptr(c_name), ndim, axes), 'run%grid', stat, errmsg)
  end subroutine run_grid

  !> Logs a whole array as step `step` (>= 0) of array metric `name` on grid
  !> `grid`: dimension 1 of the array runs along the grid's x axis, 2 along
  !> y, 3 along z (Fortran order, passed to the library without a copy when
  !> contiguous). The values go to the run's spool on disk before the call
  !> returns; the network is never waited on.
  subroutine log_array_r64(this, name, grid, values, n, step, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name, grid
    real(real64), intent(in) :: values(*)
    integer(c_size_t), intent(in) :: n
    integer, intent(in) :: step
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_name(:), c_grid(:)

    call to_c(name, c_name)
    call to_c(grid, c_grid)
    call check(c_simtrack_log_array(this%handle, ptr(c_name), ptr(c_grid), values, n, &
                                    int(SIMTRACK_ORDER_FORTRAN, c_int32_t), &
                                    int(step, c_int64_t)), 'run%log_array', stat, errmsg)
  end subroutine log_array_r64

  subroutine log_array_r32(this, name, grid, values, n, step, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name, grid
    real(real32), intent(in) :: values(*)
    integer(c_size_t), intent(in) :: n
    integer, intent(in) :: step
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_name(:), c_grid(:)

    call to_c(name, c_name)
    call to_c(grid, c_grid)
    call check(c_simtrack_log_array_f32(this%handle, ptr(c_name), ptr(c_grid), values, n, &
                                        int(SIMTRACK_ORDER_FORTRAN, c_int32_t), &
                                        int(step, c_int64_t)), 'run%log_array', stat, errmsg)
  end subroutine log_array_r32

  subroutine log_array_r64_1(this, name, grid, values, step, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name, grid
    real(real64), intent(in) :: values(:)
    integer, intent(in) :: step
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg

    call log_array_r64(this, name, grid, values, size(values, kind=c_size_t), step, stat, errmsg)
  end subroutine log_array_r64_1

  subroutine log_array_r64_2(this, name, grid, values, step, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name, grid
    real(real64), intent(in) :: values(:,:)
    integer, intent(in) :: step
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg

    call log_array_r64(this, name, grid, values, size(values, kind=c_size_t), step, stat, errmsg)
  end subroutine log_array_r64_2

  subroutine log_array_r64_3(this, name, grid, values, step, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name, grid
    real(real64), intent(in) :: values(:,:,:)
    integer, intent(in) :: step
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg

    call log_array_r64(this, name, grid, values, size(values, kind=c_size_t), step, stat, errmsg)
  end subroutine log_array_r64_3

  subroutine log_array_r32_1(this, name, grid, values, step, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name, grid
    real(real32), intent(in) :: values(:)
    integer, intent(in) :: step
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg

    call log_array_r32(this, name, grid, values, size(values, kind=c_size_t), step, stat, errmsg)
  end subroutine log_array_r32_1

  subroutine log_array_r32_2(this, name, grid, values, step, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name, grid
    real(real32), intent(in) :: values(:,:)
    integer, intent(in) :: step
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg

    call log_array_r32(this, name, grid, values, size(values, kind=c_size_t), step, stat, errmsg)
  end subroutine log_array_r32_2

  subroutine log_array_r32_3(this, name, grid, values, step, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name, grid
    real(real32), intent(in) :: values(:,:,:)
    integer, intent(in) :: step
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg

    call log_array_r32(this, name, grid, values, size(values, kind=c_size_t), step, stat, errmsg)
  end subroutine log_array_r32_3

  !> Defines a threshold alert: `rule` is 'is above' or 'is below';
  !> `frequency` and `window` are in minutes.
  subroutine run_alert(this, name, rule, metric, frequency, window, threshold, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name, rule, metric
    real(real64), intent(in) :: frequency, window, threshold
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_name(:), c_rule(:), c_metric(:)

    call to_c(name, c_name)
    call to_c(rule, c_rule)
    call to_c(metric, c_metric)
    call check(c_simtrack_alert(this%handle, ptr(c_name), ptr(c_rule), ptr(c_metric), &
                                frequency, window, threshold), 'run%alert', stat, errmsg)
  end subroutine run_alert

  !> Defines a range alert: `rule` is 'is inside range' or 'is outside range'
  !> of [low, high]; `frequency` and `window` are in minutes.
  subroutine run_alert_range(this, name, rule, metric, frequency, window, low, high, &
                             stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: name, rule, metric
    real(real64), intent(in) :: frequency, window, low, high
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_name(:), c_rule(:), c_metric(:)

    call to_c(name, c_name)
    call to_c(rule, c_rule)
    call to_c(metric, c_metric)
    call check(c_simtrack_alert_range(this%handle, ptr(c_name), ptr(c_rule), ptr(c_metric), &
                                      frequency, window, low, high), &
               'run%alert_range', stat, errmsg)
  end subroutine run_alert_range

  !> Sets the description, tags and metadata of `folder` (created if needed);
  !> absent arguments are left unchanged.
  subroutine run_set_folder_details(this, folder, metadata, tags, description, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: folder
    character(len=*), intent(in), optional :: metadata, tags, description
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_folder(:), c_meta(:), c_tags(:), c_desc(:)

    call to_c(folder, c_folder)
    call to_c(metadata, c_meta)
    call to_c(tags, c_tags)
    call to_c(description, c_desc)
    call check(c_simtrack_set_folder_details(this%handle, ptr(c_folder), ptr(c_meta), &
                                             ptr(c_tags), ptr(c_desc)), &
               'run%set_folder_details', stat, errmsg)
  end subroutine run_set_folder_details

  !> Sets the final status ('completed', 'failed' or 'terminated') that
  !> `finish` will keep.
  subroutine run_set_status(this, status, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    character(len=*), intent(in) :: status
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_status(:)

    call to_c(status, c_status)
    call check(c_simtrack_set_status(this%handle, ptr(c_status)), 'run%set_status', stat, errmsg)
  end subroutine run_set_status

  !> True once the server asked this run to stop. Costs nanoseconds; the solver
  !> decides how to stop.
  logical function run_abort_requested(this)
    class(simtrack_run), intent(in) :: this

    run_abort_requested = c_simtrack_abort_requested(this%handle) /= 0
  end function run_abort_requested

  !> Waits up to `timeout` seconds (default 10) until everything logged so far
  !> is on disk and, with a server, acknowledged. SIMTRACK_STATUS_UNDELIVERED
  !> if the deadline passed first (the data stays safe in the spool).
  subroutine run_flush(this, timeout, stat, errmsg)
    class(simtrack_run), intent(in) :: this
    real(real64), intent(in), optional :: timeout
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    real(c_double) :: seconds

    seconds = default_flush_timeout
    if (present(timeout)) seconds = timeout
    call check(c_simtrack_flush(this%handle, seconds), 'run%flush', stat, errmsg)
  end subroutine run_flush

  !> Ends the run (completed, unless set_status chose otherwise) and releases
  !> the handle whatever the outcome. Finishing a finished or never-started
  !> run does nothing.
  subroutine run_finish(this, stat, errmsg)
    class(simtrack_run), intent(inout) :: this
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    integer(c_int32_t) :: status

    status = c_simtrack_finish(this%handle)
    this%handle = c_null_ptr
    call check(status, 'run%finish', stat, errmsg)
  end subroutine run_finish

  !> The run's id ('' before init and after finish).
  function run_id(this) result(id)
    class(simtrack_run), intent(in) :: this
    character(len=:), allocatable :: id
    character(kind=c_char), allocatable, target :: buf(:)
    integer(c_size_t) :: n

    n = c_simtrack_run_id(this%handle, c_null_ptr, 0_c_size_t)
    allocate (buf(n + 1))
    n = c_simtrack_run_id(this%handle, c_loc(buf), size(buf, kind=c_size_t))
    id = from_c(buf, n)
  end function run_id

  !> True between a successful init and finish.
  logical function run_is_active(this)
    class(simtrack_run), intent(in) :: this

    run_is_active = c_associated(this%handle)
  end function run_is_active

  !> Safety net for a run that goes out of scope unfinished. Safe to run twice.
  subroutine run_final(this)
    type(simtrack_run), intent(inout) :: this
    integer(c_int32_t) :: status

    if (.not. c_associated(this%handle)) return
    status = c_simtrack_finish(this%handle)
    this%handle = c_null_ptr
    if (status /= SIMTRACK_STATUS_OK) call report(status, 'simtrack_run finalizer', .false.)
  end subroutine run_final

  !> Opts in to scheduler signals, as SIMTRACK_SIGNALS does: `signals` is a
  !> comma-separated list such as 'TERM,USR1' (names with or without SIG, or
  !> numbers). On one of them every unfinished run of the process records the
  !> signal as an event, is marked 'terminated' and is given up to `timeout`
  !> seconds (absent or <= 0: 10) to reach the spool and the server; then the
  !> signal's previous handler is put back and the signal raised again, so the
  !> program ends (or handles it) exactly as it would have without simtrack.
  !> Call it after the program's own signal handlers are installed, once per
  !> process (again with the same list: nothing happens; with another list:
  !> SIMTRACK_STATUS_INVALID_ARGUMENT). A list that is not understood gives
  !> SIMTRACK_STATUS_CONFIG. See docs/run.md for why this is opt-in.
  subroutine simtrack_handle_signals(signals, timeout, stat, errmsg)
    character(len=*), intent(in) :: signals
    real(real64), intent(in), optional :: timeout
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg
    character(kind=c_char), allocatable, target :: c_signals(:)
    real(c_double) :: seconds
    integer(c_int32_t) :: status

    seconds = 0.0_c_double
    if (present(timeout)) seconds = real(timeout, c_double)
    call to_c(signals, c_signals)
    status = c_simtrack_handle_signals(ptr(c_signals), seconds)
    call check(status, 'simtrack_handle_signals', stat, errmsg)
  end subroutine simtrack_handle_signals

  !> The library version, e.g. '0.1.0'.
  function simtrack_version() result(version)
    character(len=:), allocatable :: version

    version = static_string(c_simtrack_version())
  end function simtrack_version

  !> A fixed description of a status value.
  function simtrack_status_string(status) result(text)
    integer, intent(in) :: status
    character(len=:), allocatable :: text

    text = static_string(c_simtrack_status_str(int(status, c_int32_t)))
  end function simtrack_status_string

  ! --- helpers ---------------------------------------------------------------

  !> `step` as the C library takes it: absent means -1, "the next step".
  pure integer(c_int64_t) function step64(step)
    integer, intent(in), optional :: step

    step64 = -1_c_int64_t
    if (present(step)) step64 = int(step, c_int64_t)
  end function step64

  !> Copies `s` without its trailing blanks into a NUL-terminated buffer; an
  !> absent `s` leaves `buf` unallocated (a NULL pointer for C).
  pure subroutine to_c(s, buf)
    character(len=*), intent(in), optional :: s
    character(kind=c_char), allocatable, intent(out) :: buf(:)
    integer :: i, n

    if (.not. present(s)) return
    n = len_trim(s)
    allocate (buf(n + 1))
    do i = 1, n
      buf(i) = s(i:i)
    end do
    buf(n + 1) = c_null_char
  end subroutine to_c

  !> The C address of a buffer from `to_c`, or NULL if it is not allocated.
  function ptr(buf) result(p)
    character(kind=c_char), allocatable, target, intent(in) :: buf(:)
    type(c_ptr) :: p

    p = c_null_ptr
    if (allocated(buf)) p = c_loc(buf)
  end function ptr

  !> The first `n` characters of a C buffer as a Fortran string.
  pure function from_c(buf, n) result(s)
    character(kind=c_char), intent(in) :: buf(:)
    integer(c_size_t), intent(in) :: n
    character(len=:), allocatable :: s
    integer :: i, m

    m = int(min(n, size(buf, kind=c_size_t)))
    allocate (character(len=m) :: s)
    do i = 1, m
      s(i:i) = buf(i)
    end do
  end function from_c

  !> A NUL-terminated string in static storage, copied into a Fortran string.
  function static_string(p) result(s)
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable :: s
    character(kind=c_char), pointer :: chars(:)
    integer(c_size_t) :: n

    s = ''
    if (.not. c_associated(p)) return
    n = c_strlen(p)
    call c_f_pointer(p, chars, [n])
    s = from_c(chars, n)
  end function static_string

  !> This thread's last failure message from the library.
  function last_error_message(status) result(message)
    integer(c_int32_t), intent(in) :: status
    character(len=:), allocatable :: message
    character(kind=c_char), allocatable, target :: buf(:)
    integer(c_size_t) :: n

    n = c_simtrack_last_error(c_null_ptr, 0_c_size_t)
    if (n == 0) then
      message = static_string(c_simtrack_status_str(status))
      return
    end if
    allocate (buf(n + 1))
    n = c_simtrack_last_error(c_loc(buf), size(buf, kind=c_size_t))
    message = from_c(buf, n)
  end function last_error_message

  !> Sets `stat` and, on failure, reports it.
  subroutine check(status, where, stat, errmsg)
    integer(c_int32_t), intent(in) :: status
    character(len=*), intent(in) :: where
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg

    if (present(stat)) stat = status
    if (status /= SIMTRACK_STATUS_OK) call report(status, where, present(stat), errmsg)
  end subroutine check

  !> Reports a failed library call: the message goes to `errmsg` if present,
  !> and to one line on error_unit unless the caller asked for `stat`.
  subroutine report(status, where, has_stat, errmsg)
    integer(c_int32_t), intent(in) :: status
    character(len=*), intent(in) :: where
    logical, intent(in) :: has_stat
    character(len=*), intent(inout), optional :: errmsg

    if (status == SIMTRACK_STATUS_NULL_RUN) then
      call emit(int(status), where, 'the run is not active: call init first (or it was finished)', &
                has_stat, errmsg)
    else
      call emit(int(status), where, last_error_message(status), has_stat, errmsg)
    end if
  end subroutine report

  !> Reports a failure detected here, before calling the library.
  subroutine fail_with(status, where, message, stat, errmsg)
    integer, intent(in) :: status
    character(len=*), intent(in) :: where, message
    integer, intent(out), optional :: stat
    character(len=*), intent(inout), optional :: errmsg

    if (present(stat)) stat = status
    call emit(status, where, message, present(stat), errmsg)
  end subroutine fail_with

  subroutine emit(status, where, message, has_stat, errmsg)
    integer, intent(in) :: status
    character(len=*), intent(in) :: where, message
    logical, intent(in) :: has_stat
    character(len=*), intent(inout), optional :: errmsg

    if (present(errmsg)) errmsg = message
    if (.not. has_stat) then
      write (error_unit, '(a,i0,a)') 'simtrack: ' // where // ': ' // message // ' (status ', &
        status, ')'
    end if
  end subroutine emit

end module simtrack
