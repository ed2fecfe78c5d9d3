//! The library's one error type and the stable status codes it maps to.
//!
//! `Status` is the C ABI's `simtrack_status`. Its numbers are part of the ABI:
//! they are grouped by cause, only ever appended, and a retired number stays
//! reserved as a comment. The Fortran module's copies are checked against the
//! generated header by the test suite.

use std::ffi::CStr;
use std::fmt;

/// Result code of every fallible `simtrack_*` call. `SIMTRACK_STATUS_OK` (0)
/// is success; every failure is non-zero. Call `simtrack_status_str` for a
/// fixed description and `simtrack_last_error` for the message of this thread's
/// last failure.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Success.
    Ok = 0,

    // 1..99: the caller passed something the call cannot use.
    /// The `simtrack_run *` handle was NULL.
    NullRun = 1,
    /// A required pointer argument (other than the run) was NULL.
    NullArgument = 2,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 3,
    /// An argument is out of its documented domain (empty name, negative
    /// timeout, count too large, ...).
    InvalidArgument = 4,
    /// `metadata_json` was not a JSON object.
    InvalidJson = 5,
    /// `simtrack_save` category is not `code`, `input` or `output`.
    InvalidCategory = 6,
    /// Alert rule is not one the call accepts.
    InvalidRule = 7,
    /// `simtrack_set_status` got something other than `completed`, `failed`
    /// or `terminated`.
    InvalidStatus = 8,
    /// The handle was already given to `simtrack_finish` (by this thread or
    /// another): a caller bug that the library detects. The call did nothing.
    RunFinished = 9,
    /// `simtrack_init` was called in a child of `fork()` of a process that
    /// had used simtrack: a run there could wait forever on a lock a thread
    /// of the parent held at the fork, so none is started. Call `exec`
    /// first, or start the run before forking (or in the parent).
    InForkedChild = 10,

    // 100..199: configuration.
    /// The configuration (environment or `simtrack.ini`) is malformed.
    Config = 100,

    // 200..299: the local machine.
    /// A file could not be read or the spool could not be written.
    Io = 200,
    /// `simtrack_save` was given a path that does not exist or is not a
    /// regular file.
    FileNotFound = 201,

    // 300..399: delivery.
    /// `simtrack_flush` or `simtrack_finish` reached its deadline before the
    /// server acknowledged everything. Nothing is lost: what was not delivered
    /// stays in the on-disk spool and `simtrack sync` uploads it later.
    Undelivered = 300,
    /// The server refused part of the run's data for good (a 4xx answer
    /// other than 401/403/429, e.g. from a proxy). Nothing is lost: the
    /// refused records stay in the spool, the run is marked on the server
    /// (an `error` event, `simtrack.refused_records` metadata), and
    /// `simtrack sync` lists them, tries them again and exits non-zero while
    /// any is still refused. `simtrack_last_error` gives the reason.
    Refused = 301,

    // 900..999: the library itself.
    /// An internal error (a caught panic). The call had no effect; data logged
    /// before it is kept.
    Internal = 900,
}

impl Status {
    /// A fixed, human-readable description.
    pub fn description(self) -> &'static str {
        self.description_c().to_str().unwrap_or("")
    }

    /// [`Status::description`] as a C string with static storage.
    pub fn description_c(self) -> &'static CStr {
        match self {
            Status::Ok => c"ok",
            Status::NullRun => c"the run handle is NULL",
            Status::NullArgument => c"a required argument is NULL",
            Status::InvalidUtf8 => c"a string argument is not valid UTF-8",
            Status::InvalidArgument => c"an argument is invalid",
            Status::InvalidJson => c"metadata is not a JSON object",
            Status::InvalidCategory => c"file category must be code, input or output",
            Status::InvalidRule => c"unknown alert rule",
            Status::InvalidStatus => c"status must be completed, failed or terminated",
            Status::RunFinished => c"the run handle was already finished",
            Status::InForkedChild => {
                c"no run can start in a child of fork() of a process that used simtrack"
            }
            Status::Config => c"configuration error",
            Status::Io => c"input/output error",
            Status::FileNotFound => c"file not found",
            Status::Undelivered => {
                c"deadline reached before the server acknowledged everything; the rest is spooled on disk"
            }
            Status::Refused => {
                c"the server refused part of the run's data; it is kept in the spool"
            }
            Status::Internal => c"internal error in simtrack",
        }
    }

    /// Every status, in numeric order (for tests and generated bindings).
    /// cbindgen:ignore
    pub const ALL: [Status; 17] = [
        Status::Ok,
        Status::NullRun,
        Status::NullArgument,
        Status::InvalidUtf8,
        Status::InvalidArgument,
        Status::InvalidJson,
        Status::InvalidCategory,
        Status::InvalidRule,
        Status::InvalidStatus,
        Status::RunFinished,
        Status::InForkedChild,
        Status::Config,
        Status::Io,
        Status::FileNotFound,
        Status::Undelivered,
        Status::Refused,
        Status::Internal,
    ];
}

/// An error with the status it maps to and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: Status,
    pub message: String,
}

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Error {
            status,
            message: message.into(),
        }
    }

    pub fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        let status = if err.kind() == std::io::ErrorKind::NotFound {
            Status::FileNotFound
        } else {
            Status::Io
        };
        Error::new(status, format!("{context}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
