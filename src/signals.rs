//! Scheduler signals (opt-in): a batch system ends a job with a signal
//! (SLURM: SIGTERM at the time limit or on `scancel`, then SIGKILL after a
//! grace period). With `SIMTRACK_SIGNALS=TERM,INT,USR1` (or
//! `simtrack_handle_signals`), the library catches those signals and, for
//! every live run of the process: records the signal as an event, marks the
//! run `terminated`, and delivers what it holds within a deadline; then it
//! puts the solver's previous handler back and raises the signal again, so
//! the solver behaves exactly as it would have without simtrack (dies, or
//! runs its own handler).
//!
//! Why opt-in: signal dispositions belong to the program. A library that
//! takes SIGTERM by default would change what a solver (or its MPI runtime,
//! which often installs handlers of its own) does on it, and a handler
//! installed later by the solver would silently replace ours anyway. So the
//! user who knows the job's signals asks for this, once.
//!
//! Async-signal safety: the handler only `write(2)`s the signal number to a
//! pipe (and, in a child of `fork()`, where the thread below does not exist,
//! restores the previous disposition and re-raises). A named thread reads
//! the pipe and does everything else.

use std::ffi::c_int;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Status};
use crate::record::{Event, FinishRecord, Record, RunStatus, now_unix};

/// How long the signal thread waits, by default, for a run's data to reach
/// the spool and the server before it lets the signal through.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

const NSIG: usize = 65;

/// The write end of the self-pipe; -1 until installed.
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
/// The pid that installed the handlers (the only process with the thread).
static OWNER_PID: AtomicI32 = AtomicI32::new(0);
/// The previous disposition of each signal we took (read by the handler in
/// a forked child, so it is written once before any handler is installed).
static PREVIOUS: OnceLock<Box<[libc::sigaction; NSIG]>> = OnceLock::new();
/// What was installed, and with which deadline (one installation per process).
static INSTALLED: Mutex<Option<(Vec<c_int>, Duration)>> = Mutex::new(None);

/// Parses `TERM,INT,USR1` (also `SIGTERM`, numbers, any case, blanks).
pub fn parse(list: &str) -> Result<Vec<c_int>, Error> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let upper = item.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        let sig = match name {
            "TERM" => libc::SIGTERM,
            "INT" => libc::SIGINT,
            "HUP" => libc::SIGHUP,
            "USR1" => libc::SIGUSR1,
            "USR2" => libc::SIGUSR2,
            "QUIT" => libc::SIGQUIT,
            "XCPU" => libc::SIGXCPU,
            "ALRM" => libc::SIGALRM,
            n => match n.parse::<c_int>() {
                Ok(v)
                    if v > 0
                        && (v as usize) < NSIG
                        && v != libc::SIGKILL
                        && v != libc::SIGSTOP
                        && v != libc::SIGSEGV
                        && v != libc::SIGBUS
                        && v != libc::SIGFPE
                        && v != libc::SIGILL =>
                {
                    v
                }
                _ => {
                    return Err(Error::new(
                        Status::Config,
                        format!(
                            "SIMTRACK_SIGNALS: {item:?} is not a signal simtrack can handle (use TERM, INT, HUP, USR1, USR2, QUIT, XCPU, ALRM)"
                        ),
                    ));
                }
            },
        };
        if !out.contains(&sig) {
            out.push(sig);
        }
    }
    Ok(out)
}

/// Installs the handlers named by `SIMTRACK_SIGNALS`, if set (first run of
/// the process; later calls do nothing).
pub(crate) fn install_from_env() -> Result<(), Error> {
    match std::env::var("SIMTRACK_SIGNALS") {
        Ok(v) if !v.trim().is_empty() => install(&parse(&v)?, DEFAULT_TIMEOUT),
        _ => Ok(()),
    }
}

extern "C" fn on_signal(sig: c_int) {
    // SAFETY: getpid, write, sigaction and raise are async-signal-safe; errno
    // is saved and restored so the interrupted code does not see ours.
    unsafe {
        let errno = *libc::__errno_location();
        if libc::getpid() == OWNER_PID.load(Ordering::Relaxed) {
            let byte = sig as u8;
            libc::write(PIPE_W.load(Ordering::Relaxed), (&raw const byte).cast(), 1);
        } else if let Some(prev) = PREVIOUS.get() {
            // A child of fork(): no thread to do the work; behave as before.
            libc::sigaction(sig, &prev[sig as usize], std::ptr::null_mut());
            libc::raise(sig);
        }
        *libc::__errno_location() = errno;
    }
}

/// Takes `signals` for every live run of the process, with `timeout` for
/// delivery on a signal. Once per process: a second call with the same
/// signals does nothing; with other signals it fails.
pub fn install(signals: &[c_int], timeout: Duration) -> Result<(), Error> {
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((sigs, _)) = installed.as_ref() {
        if sigs == signals {
            return Ok(());
        }
        return Err(Error::new(
            Status::InvalidArgument,
            format!(
                "scheduler signals are already handled ({sigs:?}); they are set once per process"
            ),
        ));
    }
    if signals.is_empty() {
        return Ok(());
    }
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::io(
            "cannot create the signal pipe",
            std::io::Error::last_os_error(),
        ));
    }
    // The handler must never block: a full pipe drops the byte (the signal
    // is already queued there many times over).
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK) };
    let mut previous: Box<[libc::sigaction; NSIG]> =
        // SAFETY: an all-zero sigaction is a valid value (SIG_DFL, empty mask).
        Box::new(unsafe { std::mem::zeroed() });
    for &sig in signals {
        // SAFETY: reading the current disposition into our own storage.
        unsafe { libc::sigaction(sig, std::ptr::null(), &mut previous[sig as usize]) };
    }
    if PREVIOUS.set(previous).is_err() {
        return Err(Error::new(Status::Internal, "signal state set twice"));
    }
    PIPE_W.store(fds[1], Ordering::Relaxed);
    OWNER_PID.store(std::process::id() as i32, Ordering::Relaxed);
    let read_fd = fds[0];
    std::thread::Builder::new()
        .name("simtrack-signals".into())
        .spawn(move || signal_thread(read_fd, timeout))
        .map_err(|e| Error::io("cannot start the simtrack signal thread", e))?;
    for &sig in signals {
        // SAFETY: a zeroed sigaction with our handler; the handler is
        // async-signal-safe (see on_signal).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    *installed = Some((signals.to_vec(), timeout));
    Ok(())
}

fn signal_name(sig: c_int) -> String {
    match sig {
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGUSR1 => "SIGUSR1".into(),
        libc::SIGUSR2 => "SIGUSR2".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGXCPU => "SIGXCPU".into(),
        libc::SIGALRM => "SIGALRM".into(),
        n => format!("signal {n}"),
    }
}

fn signal_thread(fd: c_int, timeout: Duration) {
    let mut restored = [false; NSIG];
    loop {
        let mut byte = 0u8;
        // SAFETY: reading one byte into our own buffer from our pipe.
        let n = unsafe { libc::read(fd, (&raw mut byte).cast(), 1) };
        if n != 1 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        let sig = c_int::from(byte);
        if (sig as usize) >= NSIG {
            continue;
        }
        if !restored[sig as usize] {
            let _ = std::panic::catch_unwind(|| terminate_runs(sig, timeout));
            if let Some(prev) = PREVIOUS.get() {
                // SAFETY: putting back the disposition saved at install.
                unsafe { libc::sigaction(sig, &prev[sig as usize], std::ptr::null_mut()) };
            }
            restored[sig as usize] = true;
        }
        // Process-directed, so the solver's handler (or the default action)
        // runs as if we had never been there.
        // SAFETY: plain system call.
        unsafe { libc::kill(libc::getpid(), sig) };
    }
}

/// Records the signal, marks every live run of this process `terminated`
/// and waits (up to `timeout` in all) for their data to be delivered.
fn terminate_runs(sig: c_int, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let runs = crate::exit::live_runs();
    let message = format!(
        "received {} (scheduler signal); run marked terminated",
        signal_name(sig)
    );
    for shared in &runs {
        let mut p = shared.pending.lock();
        p.records.push(
            Record::Events(vec![Event {
                message: message.clone(),
                timestamp: now_unix(),
                level: None,
            }])
            .into(),
        );
        if p.finish.is_none() {
            p.finish = Some(FinishRecord {
                status: RunStatus::Terminated,
                endtime: now_unix(),
            });
        }
        drop(p);
        shared.wake_writer.notify_one();
    }
    for shared in &runs {
        shared.flush_at_exit(deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_lists_parse_names_and_refuse_what_cannot_be_handled() {
        assert_eq!(
            parse("TERM, sigint,USR1,TERM").unwrap(),
            vec![libc::SIGTERM, libc::SIGINT, libc::SIGUSR1]
        );
        assert_eq!(parse("").unwrap(), Vec::<c_int>::new());
        assert_eq!(parse("15").unwrap(), vec![15]);
        for bad in ["KILL", "9", "SEGV", "11", "nope", "0", "99"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.status, Status::Config, "{bad}");
        }
    }
}
