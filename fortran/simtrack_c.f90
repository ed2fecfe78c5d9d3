! simtrack_c: the raw bind(C) interfaces to include/simtrack.h.
!
! Internal to the `simtrack` module; solver code never uses this module. Every
! C string argument is a type(c_ptr) (c_null_ptr for "absent", else the address
! of a NUL-terminated c_char buffer), except the hot-path entry points that take
! a pointer plus a length, which receive the Fortran character storage directly.
!
! The SIMTRACK_* constants below are copies of include/simtrack.h (the
! `simtrack_status` enum and the limits), which cbindgen generates from the
! Rust source. Two tests keep them equal: `cargo test --test header`
! (`fortran_constants_equal_the_header`: every constant, parsed from both
! files, and the public list of `simtrack`) and the CTest test
! `fortran_status_constants_match_header` (the values as compiled). They are
! default integers, the kind of every `stat` argument (so they also match
! when the solver is built with -fdefault-integer-8).
module simtrack_c
  use, intrinsic :: iso_c_binding, only: c_ptr, c_char, c_int, c_int32_t, c_int64_t, &
                                         c_size_t, c_double, c_float
  implicit none
  private

  integer, parameter, public :: SIMTRACK_STATUS_OK = 0
  integer, parameter, public :: SIMTRACK_STATUS_NULL_RUN = 1
  integer, parameter, public :: SIMTRACK_STATUS_NULL_ARGUMENT = 2
  integer, parameter, public :: SIMTRACK_STATUS_INVALID_UTF8 = 3
  integer, parameter, public :: SIMTRACK_STATUS_INVALID_ARGUMENT = 4
  integer, parameter, public :: SIMTRACK_STATUS_INVALID_JSON = 5
  integer, parameter, public :: SIMTRACK_STATUS_INVALID_CATEGORY = 6
  integer, parameter, public :: SIMTRACK_STATUS_INVALID_RULE = 7
  integer, parameter, public :: SIMTRACK_STATUS_INVALID_STATUS = 8
  integer, parameter, public :: SIMTRACK_STATUS_RUN_FINISHED = 9
  integer, parameter, public :: SIMTRACK_STATUS_IN_FORKED_CHILD = 10
  integer, parameter, public :: SIMTRACK_STATUS_CONFIG = 100
  integer, parameter, public :: SIMTRACK_STATUS_IO = 200
  integer, parameter, public :: SIMTRACK_STATUS_FILE_NOT_FOUND = 201
  integer, parameter, public :: SIMTRACK_STATUS_UNDELIVERED = 300
  integer, parameter, public :: SIMTRACK_STATUS_REFUSED = 301
  integer, parameter, public :: SIMTRACK_STATUS_INTERNAL = 900

  integer, parameter, public :: SIMTRACK_MAX_NAME_BYTES = 255
  integer, parameter, public :: SIMTRACK_MAX_EVENT_BYTES = 64 * 1024

  integer, parameter, public :: SIMTRACK_ORDER_C = 0
  integer, parameter, public :: SIMTRACK_ORDER_FORTRAN = 1

  !> One axis of a grid (`simtrack_axis` of simtrack.h).
  type, bind(C), public :: c_simtrack_axis
    type(c_ptr) :: label, units, coords
    integer(c_size_t) :: n
  end type c_simtrack_axis

  public :: c_simtrack_init, c_simtrack_log_n, c_simtrack_log_many_fixed, c_simtrack_event
  public :: c_simtrack_event_level
  public :: c_simtrack_set_metadata_f64, c_simtrack_set_metadata_i64
  public :: c_simtrack_set_metadata_str, c_simtrack_set_metadata_bool
  public :: c_simtrack_metric_unit
  public :: c_simtrack_save, c_simtrack_alert, c_simtrack_alert_range
  public :: c_simtrack_set_folder_details, c_simtrack_set_status
  public :: c_simtrack_abort_requested, c_simtrack_flush, c_simtrack_finish
  public :: c_simtrack_run_id, c_simtrack_last_error, c_simtrack_status_str
  public :: c_simtrack_version, c_simtrack_handle_signals, c_strlen
  public :: c_simtrack_grid, c_simtrack_log_array, c_simtrack_log_array_f32

  interface
    function c_simtrack_init(name, metadata_json, tags, description, folder, run_out) &
        bind(C, name='simtrack_init') result(status)
      import :: c_ptr, c_int32_t
      type(c_ptr), value, intent(in) :: name, metadata_json, tags, description, folder
      type(c_ptr), intent(out) :: run_out
      integer(c_int32_t) :: status
    end function c_simtrack_init

    function c_simtrack_log_n(run, metric, metric_len, value, step) &
        bind(C, name='simtrack_log_n') result(status)
      import :: c_ptr, c_char, c_size_t, c_double, c_int64_t, c_int32_t
      type(c_ptr), value, intent(in) :: run
      character(kind=c_char), intent(in) :: metric(*)
      integer(c_size_t), value, intent(in) :: metric_len
      real(c_double), value, intent(in) :: value
      integer(c_int64_t), value, intent(in) :: step
      integer(c_int32_t) :: status
    end function c_simtrack_log_n

    function c_simtrack_log_many_fixed(run, count, names, name_len, values, step) &
        bind(C, name='simtrack_log_many_fixed') result(status)
      import :: c_ptr, c_char, c_size_t, c_double, c_int64_t, c_int32_t
      type(c_ptr), value, intent(in) :: run
      integer(c_size_t), value, intent(in) :: count
      character(kind=c_char), intent(in) :: names(*)
      integer(c_size_t), value, intent(in) :: name_len
      real(c_double), intent(in) :: values(*)
      integer(c_int64_t), value, intent(in) :: step
      integer(c_int32_t) :: status
    end function c_simtrack_log_many_fixed

    function c_simtrack_event(run, message) bind(C, name='simtrack_event') result(status)
      import :: c_ptr, c_int32_t
      type(c_ptr), value, intent(in) :: run, message
      integer(c_int32_t) :: status
    end function c_simtrack_event

    function c_simtrack_event_level(run, level, message) bind(C, name='simtrack_event_level') &
        result(status)
      import :: c_ptr, c_int32_t
      type(c_ptr), value, intent(in) :: run, level, message
      integer(c_int32_t) :: status
    end function c_simtrack_event_level

    function c_simtrack_set_metadata_f64(run, key, value) &
        bind(C, name='simtrack_set_metadata_f64') result(status)
      import :: c_ptr, c_double, c_int32_t
      type(c_ptr), value, intent(in) :: run, key
      real(c_double), value, intent(in) :: value
      integer(c_int32_t) :: status
    end function c_simtrack_set_metadata_f64

    function c_simtrack_set_metadata_i64(run, key, value) &
        bind(C, name='simtrack_set_metadata_i64') result(status)
      import :: c_ptr, c_int64_t, c_int32_t
      type(c_ptr), value, intent(in) :: run, key
      integer(c_int64_t), value, intent(in) :: value
      integer(c_int32_t) :: status
    end function c_simtrack_set_metadata_i64

    function c_simtrack_set_metadata_str(run, key, value) &
        bind(C, name='simtrack_set_metadata_str') result(status)
      import :: c_ptr, c_int32_t
      type(c_ptr), value, intent(in) :: run, key, value
      integer(c_int32_t) :: status
    end function c_simtrack_set_metadata_str

    function c_simtrack_metric_unit(run, name, unit) &
        bind(C, name='simtrack_metric_unit') result(status)
      import :: c_ptr, c_int32_t
      type(c_ptr), value, intent(in) :: run, name, unit
      integer(c_int32_t) :: status
    end function c_simtrack_metric_unit

    function c_simtrack_set_metadata_bool(run, key, value) &
        bind(C, name='simtrack_set_metadata_bool') result(status)
      import :: c_ptr, c_int, c_int32_t
      type(c_ptr), value, intent(in) :: run, key
      integer(c_int), value, intent(in) :: value
      integer(c_int32_t) :: status
    end function c_simtrack_set_metadata_bool

    function c_simtrack_save(run, path, category) bind(C, name='simtrack_save') result(status)
      import :: c_ptr, c_int32_t
      type(c_ptr), value, intent(in) :: run, path, category
      integer(c_int32_t) :: status
    end function c_simtrack_save

    function c_simtrack_alert(run, name, rule, metric, frequency, window, threshold) &
        bind(C, name='simtrack_alert') result(status)
      import :: c_ptr, c_double, c_int32_t
      type(c_ptr), value, intent(in) :: run, name, rule, metric
      real(c_double), value, intent(in) :: frequency, window, threshold
      integer(c_int32_t) :: status
    end function c_simtrack_alert

    function c_simtrack_alert_range(run, name, rule, metric, frequency, window, low, high) &
        bind(C, name='simtrack_alert_range') result(status)
      import :: c_ptr, c_double, c_int32_t
      type(c_ptr), value, intent(in) :: run, name, rule, metric
      real(c_double), value, intent(in) :: frequency, window, low, high
      integer(c_int32_t) :: status
    end function c_simtrack_alert_range

    function c_simtrack_set_folder_details(run, folder, metadata_json, tags, description) &
        bind(C, name='simtrack_set_folder_details') result(status)
      import :: c_ptr, c_int32_t
      type(c_ptr), value, intent(in) :: run, folder, metadata_json, tags, description
      integer(c_int32_t) :: status
    end function c_simtrack_set_folder_details

    function c_simtrack_set_status(run, status_name) &
        bind(C, name='simtrack_set_status') result(status)
      import :: c_ptr, c_int32_t
      type(c_ptr), value, intent(in) :: run, status_name
      integer(c_int32_t) :: status
    end function c_simtrack_set_status

    function c_simtrack_abort_requested(run) bind(C, name='simtrack_abort_requested') result(flag)
      import :: c_ptr, c_int
      type(c_ptr), value, intent(in) :: run
      integer(c_int) :: flag
    end function c_simtrack_abort_requested

    function c_simtrack_flush(run, timeout_seconds) bind(C, name='simtrack_flush') result(status)
      import :: c_ptr, c_double, c_int32_t
      type(c_ptr), value, intent(in) :: run
      real(c_double), value, intent(in) :: timeout_seconds
      integer(c_int32_t) :: status
    end function c_simtrack_flush

    function c_simtrack_finish(run) bind(C, name='simtrack_finish') result(status)
      import :: c_ptr, c_int32_t
      type(c_ptr), value, intent(in) :: run
      integer(c_int32_t) :: status
    end function c_simtrack_finish

    function c_simtrack_run_id(run, buf, len) bind(C, name='simtrack_run_id') result(full_len)
      import :: c_ptr, c_size_t
      type(c_ptr), value, intent(in) :: run, buf
      integer(c_size_t), value, intent(in) :: len
      integer(c_size_t) :: full_len
    end function c_simtrack_run_id

    function c_simtrack_last_error(buf, len) bind(C, name='simtrack_last_error') result(full_len)
      import :: c_ptr, c_size_t
      type(c_ptr), value, intent(in) :: buf
      integer(c_size_t), value, intent(in) :: len
      integer(c_size_t) :: full_len
    end function c_simtrack_last_error

    function c_simtrack_status_str(status) bind(C, name='simtrack_status_str') result(text)
      import :: c_ptr, c_int32_t
      integer(c_int32_t), value, intent(in) :: status
      type(c_ptr) :: text
    end function c_simtrack_status_str

    function c_simtrack_version() bind(C, name='simtrack_version') result(text)
      import :: c_ptr
      type(c_ptr) :: text
    end function c_simtrack_version

    function c_simtrack_handle_signals(signals, timeout_seconds) &
        bind(C, name='simtrack_handle_signals') result(status)
      import :: c_ptr, c_double, c_int32_t
      type(c_ptr), value, intent(in) :: signals
      real(c_double), value, intent(in) :: timeout_seconds
      integer(c_int32_t) :: status
    end function c_simtrack_handle_signals

    function c_strlen(s) bind(C, name='strlen') result(n)
      import :: c_ptr, c_size_t
      type(c_ptr), value, intent(in) :: s
      integer(c_size_t) :: n
    end function c_strlen

    function c_simtrack_grid(run, name, ndim, axes) bind(C, name='simtrack_grid') result(status)
      import :: c_ptr, c_int32_t, c_simtrack_axis
      type(c_ptr), value, intent(in) :: run, name
      integer(c_int32_t), value, intent(in) :: ndim
      type(c_simtrack_axis), intent(in) :: axes(*)
      integer(c_int32_t) :: status
    end function c_simtrack_grid

    function c_simtrack_log_array(run, metric, grid, data, n, order, step) &
        bind(C, name='simtrack_log_array') result(status)
      import :: c_ptr, c_double, c_size_t, c_int32_t, c_int64_t
      type(c_ptr), value, intent(in) :: run, metric, grid
      real(c_double), intent(in) :: data(*)
      integer(c_size_t), value, intent(in) :: n
      integer(c_int32_t), value, intent(in) :: order
      integer(c_int64_t), value, intent(in) :: step
      integer(c_int32_t) :: status
    end function c_simtrack_log_array

    function c_simtrack_log_array_f32(run, metric, grid, data, n, order, step) &
        bind(C, name='simtrack_log_array_f32') result(status)
      import :: c_ptr, c_float, c_size_t, c_int32_t, c_int64_t
      type(c_ptr), value, intent(in) :: run, metric, grid
      real(c_float), intent(in) :: data(*)
      integer(c_size_t), value, intent(in) :: n
      integer(c_int32_t), value, intent(in) :: order
      integer(c_int64_t), value, intent(in) :: step
      integer(c_int32_t) :: status
    end function c_simtrack_log_array_f32
  end interface
end module simtrack_c
