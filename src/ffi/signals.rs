//! `simtrack_handle_signals`: the C face of `crate::signals`.

use std::ffi::c_char;
use std::time::Duration;

use super::boundary::guard;
use super::strings::req_str;
use crate::error::{Error, Status};

/// Opts in to scheduler signals (what `SIMTRACK_SIGNALS` does, as a call).
///
/// `signals` is a comma-separated list such as `"TERM,INT,USR1"` (names
/// with or without `SIG`, or numbers; SIGKILL, SIGSTOP and the crash signals
/// are refused). On one of them, for every unfinished run of the process,
/// the library records the signal as an event, marks the run `terminated`
/// and waits up to `timeout_seconds` (`<= 0`: 10 s) for its data to reach
/// the spool and the server; then it restores the handler the signal had
/// when this function was called and raises the signal again, so the
/// solver's own handler (or the default action) runs as before. A run
/// marked this way records nothing more: list only signals that end the job.
///
/// Call it after installing the solver's own handlers (a handler installed
/// later replaces ours). Once per process: calling it again with the same
/// list returns OK and does nothing; with another list it returns
/// `SIMTRACK_STATUS_INVALID_ARGUMENT`. A bad list returns
/// `SIMTRACK_STATUS_CONFIG`. May be called before or after `simtrack_init`,
/// from any thread.
///
/// # Safety
/// `signals` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simtrack_handle_signals(
    signals: *const c_char,
    timeout_seconds: f64,
) -> Status {
    guard(|| {
        // SAFETY: per the contract.
        let list = unsafe { req_str(signals, "signals") }?;
        let timeout = if timeout_seconds.is_finite() && timeout_seconds > 0.0 {
            Duration::try_from_secs_f64(timeout_seconds.min(86_400.0))
                .map_err(|e| Error::new(Status::InvalidArgument, format!("timeout_seconds: {e}")))?
        } else {
            crate::signals::DEFAULT_TIMEOUT
        };
        crate::signals::install(&crate::signals::parse(list)?, timeout)
    })
}
