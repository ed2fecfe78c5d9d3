//! The child process: signal forwarding and the resources of its process tree.
//!
//! The wrapper's handler for SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2
//! does only async-signal-safe work: `kill(2)` to the child and an atomic
//! bit set. The main loop turns the bits into events.
//!
//! Where the child runs: in batch use (stdin is not a terminal) it gets its
//! own process group and signals go to that whole group, so an abort stops
//! the programs a job script started too. Interactively it stays in the
//! terminal's group (so it may read the terminal); the terminal already
//! sends Ctrl-C to it, so signals the kernel generated are not forwarded
//! again, only those another process sent with `kill`.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

/// The signals forwarded to the child.
pub const FORWARDED: [libc::c_int; 5] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// `kill` target: the child's pid, or minus its process group; 0 before the
/// child exists.
static TARGET: AtomicI32 = AtomicI32::new(0);
/// Whether the child shares the terminal's process group.
static SAME_GROUP: AtomicBool = AtomicBool::new(false);
/// Bit N: signal N arrived (taken by the main loop).
static RECEIVED: AtomicU64 = AtomicU64::new(0);
/// Bit N: signal N arrived before the child existed (forwarded once it does).
static EARLY: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let bit = 1u64 << (sig as u32 & 63);
    // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO handler;
    // a null pointer is checked first anyway.
    let from_kernel = !info.is_null() && unsafe { (*info).si_code } > 0;
    let target = TARGET.load(Ordering::Acquire);
    if target == 0 {
        EARLY.fetch_or(bit, Ordering::AcqRel);
    } else if !(from_kernel && SAME_GROUP.load(Ordering::Relaxed)) {
        // SAFETY: kill is async-signal-safe; target names our child or its group.
        unsafe { libc::kill(target, sig) };
    }
    RECEIVED.fetch_or(bit, Ordering::AcqRel);
}

/// Installs the forwarding handler for [`FORWARDED`].
pub fn install_handlers() {
    for sig in FORWARDED {
        // SAFETY: a zeroed sigaction is a valid starting point; the handler
        // only calls async-signal-safe functions and touches atomics.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Records where signals go from now on and forwards those that came early.
pub fn set_target(pid: u32, own_group: bool) {
    let pid = pid as i32;
    SAME_GROUP.store(!own_group, Ordering::Relaxed);
    let target = if own_group { -pid } else { pid };
    TARGET.store(target, Ordering::Release);
    let early = EARLY.swap(0, Ordering::AcqRel);
    for sig in FORWARDED {
        if early & (1 << sig) != 0 {
            send(sig);
        }
    }
}

/// Sends `sig` to the child (or its group).
pub fn send(sig: libc::c_int) {
    let target = TARGET.load(Ordering::Acquire);
    if target != 0 {
        // SAFETY: plain system call on our own child / process group.
        unsafe { libc::kill(target, sig) };
    }
}

/// The signals received since the last call.
pub fn take_received() -> Vec<libc::c_int> {
    let bits = RECEIVED.swap(0, Ordering::AcqRel);
    FORWARDED
        .into_iter()
        .filter(|s| bits & (1 << s) != 0)
        .collect()
}

/// Waits for the child's exit with a timeout: on a pidfd (Linux 5.3 and
/// later), which wakes the wait the moment the child ends; elsewhere in 5 ms
/// steps, so the wrapper's exit follows the program's by at most that.
pub struct ExitWait {
    pidfd: Option<std::os::fd::OwnedFd>,
}

impl ExitWait {
    pub fn new(pid: u32) -> Self {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open takes a pid and flags and returns a new
        // descriptor (owned from here on) or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        let pidfd = (fd >= 0).then(|| {
            // SAFETY: a descriptor we were just given and nobody else owns.
            unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as libc::c_int) }
        });
        ExitWait { pidfd }
    }

    /// Returns when the child may have ended, a signal arrived, or `until`
    /// came (whichever is first; early returns are harmless).
    pub fn wait_until(&self, until: std::time::Instant) {
        use std::os::fd::AsRawFd;
        let left = until.saturating_duration_since(std::time::Instant::now());
        let Some(fd) = &self.pidfd else {
            std::thread::sleep(left.min(std::time::Duration::from_millis(5)));
            return;
        };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // Rounded up, so a wait never ends just before `until`.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd; a signal ends the wait early (EINTR),
        // which is what we want.
        unsafe { libc::poll(&mut pfd, 1, ms) };
    }
}

/// Whether the wrapper's stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(0) == 1 }
}

/// `SIGSEGV` for 11, etc.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        _ => return format!("signal {sig}"),
    };
    name.to_owned()
}

/// Whether a death by `sig` is the program failing (a crash) rather than
/// being stopped from outside.
pub fn is_crash(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGABRT | libc::SIGTRAP
    )
}

/// Whether `sig`, received by the wrapper, asks the job to stop (what a
/// scheduler, a terminal or `kill` sends), as opposed to SIGUSR1/2.
pub fn is_stop(sig: i32) -> bool {
    matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGHUP)
}

/// CPU seconds (own and reaped children), resident bytes and threads of a
/// process tree.
#[derive(Debug, Default, Clone, Copy)]
pub struct TreeUsage {
    pub cpu_secs: f64,
    pub rss_bytes: u64,
    pub threads: u64,
    pub processes: u64,
}

struct Stat {
    pid: i32,
    ppid: i32,
    ticks: u64,
    threads: u64,
    rss_pages: u64,
}

fn read_stat(pid: &str) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    // Fields from the 3rd (state) on.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        pid: pid.parse().ok()?,
        ppid: f.get(1)?.parse().ok()?,
        ticks: n(14)? + n(15)? + n(16)? + n(17)?,
        threads: n(20)?,
        rss_pages: n(24)?,
    })
}

/// Sums the usage of `root` and all its descendants (Linux `/proc`).
pub fn tree_usage(root: u32) -> Option<TreeUsage> {
    let stats: Vec<Stat> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            name.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| read_stat(name))?
        })
        .collect();
    let mut members = vec![root as i32];
    let mut i = 0;
    while i < members.len() {
        let p = members[i];
        members.extend(stats.iter().filter(|s| s.ppid == p).map(|s| s.pid));
        i += 1;
    }
    // SAFETY: sysconf has no preconditions.
    let (hz, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let mut u = TreeUsage::default();
    for s in stats.iter().filter(|s| members.contains(&s.pid)) {
        u.cpu_secs += s.ticks as f64 / hz.max(1) as f64;
        u.rss_bytes += s.rss_pages * page.max(1) as u64;
        u.threads += s.threads;
        u.processes += 1;
    }
    (u.processes > 0).then_some(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_usage_counts_a_child_and_its_grandchild() {
        use std::os::unix::process::CommandExt;
        let mut c = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & sleep 5; wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let u = tree_usage(c.id()).unwrap();
        assert!(u.processes >= 3, "{u:?}");
        assert!(u.rss_bytes > 0 && u.threads >= 3);
        // SAFETY: the group is the one this test just created.
        unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
        let _ = c.wait();
    }

    #[test]
    fn crashes_are_told_from_stops() {
        assert!(is_crash(libc::SIGSEGV));
        assert!(!is_crash(libc::SIGTERM));
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(64), "signal 64");
    }
}
