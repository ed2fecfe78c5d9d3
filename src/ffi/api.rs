//! The exported `simtrack_*` functions. Each one converts its arguments,
//! calls [`crate::Run`], and lets `boundary` turn the outcome into a status.
//!
//! The doc comments here are the documentation C readers see in
//! `include/simtrack.h`; the conventions shared by all functions (ownership,
//! strings, threads, errors) are stated once in the header's preamble.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use super::boundary::{guard, guard_value, last_error};
use super::handle::{Handle, borrow, handle};
use super::strings::{copy_out, opt_str, req_str, sized_bytes};
use crate::error::{Error, Status};
use crate::model::EventLevel;
use crate::record::{AlertDef, AlertRule, Category, FolderSpec, MetaValue, RunStatus};
use crate::run::{InitOptions, Run};

/// A status as received from C: any `int32_t`, not only the listed values.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct StatusArg(pub i32);

fn write_out<T>(out: *mut *mut T, value: *mut T) {
    if !out.is_null() {
        // SAFETY: out is non-NULL and, per the caller's contract, valid for a
        // pointer-sized write.
        unsafe { *out = value };
    }
}

/// Starts a run and returns its handle in `*run_out`.
///
/// Every string may be NULL: `name` defaults to a generated name, `folder` to
/// `"/"`. `metadata_json` is a JSON object (`{"nx": 128}`); `tags` is
/// comma-separated (`"cfd,test"`). Strings are copied; the caller keeps
/// ownership.
///
/// Never waits on the network: if the server is down the run is recorded on
/// disk and delivered later. With `SIMTRACK_MODE=disabled`, or on an MPI rank
/// other than 0 (unless `SIMTRACK_RANKS=all`), the handle is a no-op handle
/// whose calls all succeed and record nothing.
///
/// On success `*run_out` holds a handle to release with `simtrack_finish`.
/// On failure `*run_out` is set to NULL (if `run_out` is not NULL).
///
/// In a child of `fork()` this starts a new run of the child's own (best
/// effort: see the README); the handles the child inherited are no-op
/// handles there.
///
/// # Safety
/// Each string is NULL or NUL-terminated; `run_out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_init(
    name: *const c_char,
    metadata_json: *const c_char,
    tags: *const c_char,
    description: *const c_char,
    folder: *const c_char,
    run_out: *mut *mut Handle,
) -> Status {
    write_out(run_out, std::ptr::null_mut());
    guard(|| {
        if run_out.is_null() {
            return Err(Error::new(Status::NullArgument, "run_out is NULL"));
        }
        if crate::fork::generation() > 0 {
            return Err(Error::new(
                Status::InForkedChild,
                "simtrack_init in a child of fork(): a process that used simtrack cannot start a \
                 run in a forked child (a lock held by a parent thread at the fork could block it \
                 forever); exec first, or start the run before forking",
            ));
        }
        super::handle::prepare();
        // SAFETY: each pointer is NULL or NUL-terminated per the contract.
        let opts = unsafe {
            InitOptions {
                name: opt_str(name, "name")?.map(str::to_owned),
                metadata_json: opt_str(metadata_json, "metadata_json")?.map(str::to_owned),
                tags: opt_str(tags, "tags")?.map(str::to_owned),
                description: opt_str(description, "description")?.map(str::to_owned),
                folder: opt_str(folder, "folder")?.map(str::to_owned),
            }
        };
        let run = Run::init(opts)?;
        write_out(run_out, Handle::into_raw(run));
        Ok(())
    })
}

/// Logs one value of metric `metric` at `step` (`step < 0`: the next step for
/// this metric, counting 0, 1, 2, ...). The time since init and a UTC
/// timestamp are taken automatically. NaN and ±Inf are valid values.
///
/// Costs about ten nanoseconds and never waits on the network: the value is
/// appended to this thread's buffer (no lock shared with other threads), a
/// memory-mapped file in the run's spool directory. Once the call has
/// returned, the value survives the death of the process (SIGKILL, the OOM
/// killer, a segfault): the library's worker thread moves it into the spool,
/// or, if the process died first, the next online run on the same spool and
/// server (in the background) or the next `simtrack sync` does.
/// Only when a thread's buffer (an eighth of `SIMTRACK_MEMORY_CAP_MB`) is
/// full because the disk is slower than the solver, or full, does the call
/// wait, at most `SIMTRACK_LOG_WAIT` seconds (default 1). If there is still
/// no room it returns `SIMTRACK_STATUS_IO` and the value is not recorded;
/// until the disk takes data again, further calls on a full buffer fail at
/// once instead of waiting. Values accepted before are kept and written when
/// space returns: an accepted value is never dropped.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; `metric` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_log(
    run: *mut Handle,
    metric: *const c_char,
    value: f64,
    step: i64,
) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let run = unsafe { borrow(run)? };
        if metric.is_null() {
            return Err(Error::new(Status::NullArgument, "metric is NULL"));
        }
        // SAFETY: non-NULL and NUL-terminated per the contract.
        unsafe { run.log_c(metric, value, step) }
    })
}

/// As `simtrack_log`, with the metric name given as `metric_len` bytes
/// (no NUL needed; trailing blanks are ignored). Made for Fortran, whose
/// `character` variables carry a length instead of a terminator.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; `metric` is valid for `metric_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_log_n(
    run: *mut Handle,
    metric: *const c_char,
    metric_len: usize,
    value: f64,
    step: i64,
) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let (run, metric) = unsafe { (borrow(run)?, sized_bytes(metric, metric_len, "metric")?) };
        run.log_bytes(metric, value, step)
    })
}

/// Logs `count` metrics at once, all at the same `step` (`step < 0`: each
/// metric's next step). `metrics[i]` names `values[i]`. Either every value is
/// logged or, on a bad argument or no room at the memory cap (see
/// `simtrack_log`), none is.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; `metrics` and `values` are NULL or valid
/// for `count` elements; each `metrics[i]` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_log_many(
    run: *mut Handle,
    count: usize,
    metrics: *const *const c_char,
    values: *const f64,
    step: i64,
) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let run = unsafe { borrow(run)? };
        if count == 0 {
            return Ok(());
        }
        if metrics.is_null() || values.is_null() {
            return Err(Error::new(
                Status::NullArgument,
                "metrics or values is NULL",
            ));
        }
        // SAFETY: both arrays are valid for count elements per the contract.
        let (names, values) = unsafe {
            (
                std::slice::from_raw_parts(metrics, count),
                std::slice::from_raw_parts(values, count),
            )
        };
        // SAFETY: each non-NULL names[i] is NUL-terminated per the contract.
        unsafe { run.log_many_c(names, values, step) }
    })
}

/// As `simtrack_log_many`, with the names packed in one buffer of `count`
/// fixed-width fields of `name_len` bytes each, blank-padded: the layout of a
/// Fortran `character(len=name_len) :: names(count)` array.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; `names` is valid for `count * name_len`
/// bytes and `values` for `count` elements.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_log_many_fixed(
    run: *mut Handle,
    count: usize,
    names: *const c_char,
    name_len: usize,
    values: *const f64,
    step: i64,
) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let run = unsafe { borrow(run)? };
        if count == 0 {
            return Ok(());
        }
        if names.is_null() || values.is_null() {
            return Err(Error::new(Status::NullArgument, "names or values is NULL"));
        }
        let total = count
            .checked_mul(name_len)
            .ok_or_else(|| Error::new(Status::InvalidArgument, "count * name_len overflows"))?;
        // SAFETY: names is valid for total bytes and values for count elements.
        let (buf, values) = unsafe {
            (
                std::slice::from_raw_parts(names.cast::<u8>(), total),
                std::slice::from_raw_parts(values, count),
            )
        };
        let item = |i: usize| {
            let field = &buf[i * name_len..(i + 1) * name_len];
            // SAFETY: field is a valid slice of name_len bytes.
            unsafe { sized_bytes(field.as_ptr().cast(), field.len(), "name") }
                .map(|n| (n, values[i]))
        };
        run.log_many_by(count, item, step)
    })
}

/// Records an event: a timestamped line of text in the run's event log.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; `message` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_event(run: *mut Handle, message: *const c_char) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let (run, message) = unsafe { (borrow(run)?, req_str(message, "message")?) };
        run.event(message)
    })
}

/// Records an event at a level: `"debug"`, `"info"`, `"warning"`,
/// `"error"` or `"critical"`. A NULL or empty `level` is the same as
/// [`simtrack_event`] (the server reads a level from a prefix such as
/// `ERROR:`); any other spelling is `SIMTRACK_STATUS_INVALID_ARGUMENT` and
/// records nothing.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; `level` and `message`
/// are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_event_level(
    run: *mut Handle,
    level: *const c_char,
    message: *const c_char,
) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let (run, level, message) = unsafe {
            (
                borrow(run)?,
                opt_str(level, "level")?,
                req_str(message, "message")?,
            )
        };
        let level = match level.map(str::trim).filter(|l| !l.is_empty()) {
            None => None,
            Some(l) => Some(
                EventLevel::from_name(&l.to_ascii_lowercase()).ok_or_else(|| {
                    Error::new(
                        Status::InvalidArgument,
                        format!(
                            "event level {l:?} is not one of debug, info, warning, error, critical"
                        ),
                    )
                })?,
            ),
        };
        run.event_at(message, level)
    })
}

fn set_meta(
    run: *mut Handle,
    key: *const c_char,
    value: impl FnOnce() -> Result<MetaValue, Error>,
) -> Status {
    guard(|| {
        // SAFETY: the exported callers pass their own contract through.
        let (run, key) = unsafe { (borrow(run)?, req_str(key, "key")?) };
        run.set_metadata(key, value()?)
    })
}

/// Sets metadata `key` to a floating-point value (replacing any previous
/// value of that key).
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; `key` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_set_metadata_f64(
    run: *mut Handle,
    key: *const c_char,
    value: f64,
) -> Status {
    set_meta(run, key, || Ok(MetaValue::Float(value)))
}

/// Sets metadata `key` to an integer value.
///
/// # Safety
/// As `simtrack_set_metadata_f64`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_set_metadata_i64(
    run: *mut Handle,
    key: *const c_char,
    value: i64,
) -> Status {
    set_meta(run, key, || Ok(MetaValue::Int(value)))
}

/// Sets metadata `key` to a string value (copied).
///
/// # Safety
/// As `simtrack_set_metadata_f64`; `value` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_set_metadata_str(
    run: *mut Handle,
    key: *const c_char,
    value: *const c_char,
) -> Status {
    set_meta(run, key, || {
        Ok(MetaValue::Str(
            // SAFETY: value is NULL or NUL-terminated per the contract.
            unsafe { req_str(value, "value")? }.to_owned(),
        ))
    })
}

/// Sets metadata `key` to a boolean value (`value` non-zero is true).
///
/// # Safety
/// As `simtrack_set_metadata_f64`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_set_metadata_bool(
    run: *mut Handle,
    key: *const c_char,
    value: c_int,
) -> Status {
    set_meta(run, key, || Ok(MetaValue::Bool(value != 0)))
}

/// Records the unit of metric `name`, shown on the web UI's chart axes and
/// tables: any short text, such as `"m/s"`, `"K"` or `"1"`; NULL or `""`
/// removes it. Call it once per metric, at any time (the simvue client's
/// `set_metric_units` records the same).
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; `name` and `unit` are
/// NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_metric_unit(
    run: *mut Handle,
    name: *const c_char,
    unit: *const c_char,
) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let (run, name, unit) = unsafe {
            (
                borrow(run)?,
                req_str(name, "name")?,
                opt_str(unit, "unit")?.unwrap_or(""),
            )
        };
        run.set_metric_unit(name, unit)
    })
}

/// Saves the file at `path` with the run, as `category` `"code"`, `"input"` or
/// `"output"`. The file is captured (copied and its SHA-256 taken) during the
/// call, so later changes to it do not change what was saved; the upload
/// happens in the background.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; `path` and `category` are NULL or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_save(
    run: *mut Handle,
    path: *const c_char,
    category: *const c_char,
) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let (run, path, category) = unsafe {
            (
                borrow(run)?,
                req_str(path, "path")?,
                req_str(category, "category")?,
            )
        };
        run.save(path.as_ref(), Category::parse(category)?)
    })
}

/// Defines a threshold alert on `metric`: `rule` is `"is above"` or
/// `"is below"`. `frequency` (how often the server checks) and `window` (the
/// span averaged) are in minutes. Defining the same alert twice is not an
/// error.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; the strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_alert(
    run: *mut Handle,
    name: *const c_char,
    rule: *const c_char,
    metric: *const c_char,
    frequency: f64,
    window: f64,
    threshold: f64,
) -> Status {
    // SAFETY: forwarded contract.
    unsafe {
        define_alert(
            run,
            name,
            rule,
            metric,
            frequency,
            window,
            (threshold, threshold),
            false,
        )
    }
}

/// The shared body of `simtrack_alert` (threshold rules) and
/// `simtrack_alert_range` (range rules).
///
/// # Safety
/// As `simtrack_alert`.
#[expect(
    clippy::too_many_arguments,
    reason = "mirrors the C signatures it serves"
)]
unsafe fn define_alert(
    run: *mut Handle,
    name: *const c_char,
    rule: *const c_char,
    metric: *const c_char,
    frequency: f64,
    window: f64,
    (low, high): (f64, f64),
    range: bool,
) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let (run, name, rule, metric) = unsafe {
            (
                borrow(run)?,
                req_str(name, "name")?,
                req_str(rule, "rule")?,
                req_str(metric, "metric")?,
            )
        };
        let rule = AlertRule::parse(rule)?;
        if rule.is_threshold() == range {
            let (call, rules) = if range {
                (
                    "simtrack_alert_range",
                    "\"is inside range\" or \"is outside range\"",
                )
            } else {
                ("simtrack_alert", "\"is above\" or \"is below\"")
            };
            return Err(Error::new(
                Status::InvalidRule,
                format!("{call} takes {rules}, not {:?}", rule.as_str()),
            ));
        }
        run.alert(AlertDef::new(
            name, rule, metric, frequency, window, low, high,
        )?)
    })
}

/// Defines a range alert on `metric`: `rule` is `"is inside range"` or
/// `"is outside range"` of `[low, high]`. Otherwise as `simtrack_alert`.
///
/// # Safety
/// As `simtrack_alert`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_alert_range(
    run: *mut Handle,
    name: *const c_char,
    rule: *const c_char,
    metric: *const c_char,
    frequency: f64,
    window: f64,
    low: f64,
    high: f64,
) -> Status {
    // SAFETY: forwarded contract.
    unsafe {
        define_alert(
            run,
            name,
            rule,
            metric,
            frequency,
            window,
            (low, high),
            true,
        )
    }
}

/// Sets the description, tags and metadata of `folder` (created if needed).
/// Each of `metadata_json`, `tags` and `description` may be NULL to leave it
/// unchanged.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; the strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_set_folder_details(
    run: *mut Handle,
    folder: *const c_char,
    metadata_json: *const c_char,
    tags: *const c_char,
    description: *const c_char,
) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let (run, details) = unsafe {
            (
                borrow(run)?,
                FolderSpec::parse(
                    req_str(folder, "folder")?,
                    opt_str(metadata_json, "metadata_json")?,
                    opt_str(tags, "tags")?,
                    opt_str(description, "description")?,
                )?,
            )
        };
        run.set_folder_details(details)
    })
}

/// Sets the run's final status: `"completed"`, `"failed"` or `"terminated"`.
/// `simtrack_finish` then keeps it instead of marking the run completed.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; `status` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_set_status(run: *mut Handle, status: *const c_char) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let (run, status) = unsafe { (borrow(run)?, req_str(status, "status")?) };
        run.set_status(RunStatus::parse_final(status)?)
    })
}

/// Returns 1 once the server has asked this run to stop (a user pressed
/// Abort, or an alert with abort fired), else 0 (also for NULL or a finished handle). Reads a flag
/// that the worker thread updates; costs nanoseconds. The library never stops
/// the process itself: the solver decides how to end.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_abort_requested(run: *const Handle) -> c_int {
    // SAFETY: per the contract.
    guard_value(0, || {
        // SAFETY: run is NULL or a handle from simtrack_init per the contract.
        unsafe { borrow(run) }.map_or(0, |r| c_int::from(r.abort_requested()))
    })
}

/// Waits up to `timeout_seconds` until everything logged so far is written
/// to the spool and, when a server is configured, acknowledged by it.
/// Returns `SIMTRACK_STATUS_UNDELIVERED` if the deadline passed first (the
/// data is safe on disk); `SIMTRACK_STATUS_IO` if the spool cannot be
/// written (a full disk: the data stays in memory and is written when space
/// returns); `SIMTRACK_STATUS_REFUSED` if the server refused records for
/// good (they stay in the spool; `simtrack_last_error` says why).
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_flush(run: *mut Handle, timeout_seconds: f64) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let run = unsafe { borrow(run)? };
        run.flush(timeout_from_secs(timeout_seconds)?)
    })
}

fn timeout_from_secs(secs: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(secs).map_err(|_| {
        Error::new(
            Status::InvalidArgument,
            format!("timeout must be >= 0 seconds, got {secs}"),
        )
    })
}

/// Ends the run: marks it `completed` unless `simtrack_set_status` set a final
/// status, then delivers what remains, waiting at most the configured finish
/// deadline (`SIMTRACK_FINISH_TIMEOUT`, default 30 s). Returns
/// `SIMTRACK_STATUS_UNDELIVERED` if the deadline passed (the rest then stays
/// in the spool for `simtrack sync`); `SIMTRACK_STATUS_REFUSED` if the server
/// refused records of the run for good (they stay in the spool, the run is
/// marked on the server, `simtrack sync` lists and retries them);
/// `SIMTRACK_STATUS_IO` if the disk stayed full (what could not be written
/// is still in memory; the library keeps trying until the process exits).
///
/// Releases everything the run holds (threads, buffers, files), whatever it
/// returns (like `fclose`): `run` must not be used again.
/// `simtrack_finish(NULL)` does nothing and returns `SIMTRACK_STATUS_OK`.
///
/// Threads: calls already in progress on the handle in other threads when
/// finish begins end first (finish waits for them; each has its own deadline,
/// so a concurrent `simtrack_flush` with a long timeout delays finish as
/// much); what they logged is delivered. Misuse is detected, never undefined:
/// a second `simtrack_finish` on the handle, concurrent or later, and any
/// other call that starts after finish began, returns
/// `SIMTRACK_STATUS_RUN_FINISHED` and does nothing (`simtrack_abort_requested`
/// and `simtrack_run_id` return 0). For that, the handle's own memory (under
/// 1 KiB) is never freed.
///
/// In a child of `fork()`, for a handle created before the fork: returns
/// `SIMTRACK_STATUS_OK` and does nothing; the run belongs to the parent.
///
/// # Safety
/// `run` is NULL or a handle returned by `simtrack_init`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_finish(run: *mut Handle) -> Status {
    if run.is_null() {
        return Status::Ok;
    }
    guard(|| {
        // SAFETY: run is a handle from simtrack_init per the contract.
        match unsafe { handle(run) } {
            Some(h) => h.finish(),
            None => Ok(()),
        }
    })
}

/// Copies the run's id (NUL-terminated, truncated to fit) into `buf` of
/// `len` bytes and returns the id's full length. Pass `buf = NULL` to ask
/// the length. Returns 0 for a NULL run.
///
/// This is the library's id: the name of the run's spool directory. A
/// server gives the run an id of its own and keeps this one as
/// `system.simtrack.run_id`. Returns 0 for a finished handle, and in a child
/// of `fork()` for a handle created before the fork.
///
/// # Safety
/// `run` is NULL or a handle from `simtrack_init`; `buf` is NULL or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_run_id(
    run: *const Handle,
    buf: *mut c_char,
    len: usize,
) -> usize {
    guard_value(0, || {
        // SAFETY: per the contract.
        match unsafe { borrow(run) } {
            // SAFETY: buf is NULL or valid for len bytes.
            Ok(r) => unsafe { copy_out(r.id(), buf, len) },
            Err(_) => 0,
        }
    })
}

/// Copies this thread's last failure message (NUL-terminated, truncated to
/// fit) into `buf` of `len` bytes and returns the message's full length, 0 if
/// there is none. Pass `buf = NULL` to ask the length. Each thread has its
/// own last error; a successful call does not clear it.
///
/// # Safety
/// `buf` is NULL or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_last_error(buf: *mut c_char, len: usize) -> usize {
    // SAFETY: buf is NULL or valid for len bytes per the contract.
    guard_value(0, || unsafe { copy_out(&last_error(), buf, len) })
}

/// A fixed description of `status` (static storage; do not free). Unknown
/// values give `"unknown status"`.
#[unsafe(no_mangle)]
pub extern "C" fn simtrack_status_str(status: StatusArg) -> *const c_char {
    guard_value(c"internal error".as_ptr(), || {
        let found = Status::ALL.iter().find(|s| **s as i32 == status.0);
        match found {
            Some(s) => s.description_c().as_ptr(),
            None => c"unknown status".as_ptr(),
        }
    })
}

/// The library version, e.g. `"0.1.0"` (static storage; do not free).
#[unsafe(no_mangle)]
pub extern "C" fn simtrack_version() -> *const c_char {
    crate::VERSION_C.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stands in for any exported function whose body panics.
    extern "C" fn panicking_export() -> Status {
        guard(|| panic!("injected panic"))
    }

    #[test]
    fn a_panic_inside_an_exported_function_becomes_a_status_and_a_message() {
        // Were the panic to reach the `extern "C"` boundary, the test
        // process would abort instead of failing.
        assert_eq!(panicking_export(), Status::Internal);
        let mut buf = [0 as c_char; 128];
        // SAFETY: buf is valid for its length.
        let n = unsafe { simtrack_last_error(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: simtrack_last_error NUL-terminates within buf.
        let msg = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_str()
            .unwrap();
        assert_eq!(n, msg.len());
        assert!(msg.contains("injected panic"), "{msg}");
        assert_eq!(guard_value(7, || -> i32 { panic!("again") }), 7);
    }
}
