//! What `fork()` does to the library, and the process-wide hooks.
//!
//! A child of `fork()` has one thread: a run's writer and sender threads do
//! not exist there, and any lock they (or the parent's other threads) held at
//! that instant stays held forever in the child's copy of memory. So a run
//! inherited through `fork()` must never be touched in the child: not to log
//! (the lock may be held, and past the memory cap nobody would drain the
//! buffer), not to finish (nobody would write the finish record), not at
//! exit. The parent's run goes on untouched: the child shares no memory with
//! it, and its inherited copies of the spool's file descriptors are never
//! written through.
//!
//! This module counts forks: a `pthread_atfork` child handler bumps a
//! process-wide *generation* in every child. Each C handle remembers the
//! generation it was created in (`ffi::handle`), and the exit handler's list
//! of live runs (`exit`) does too; anything from an earlier generation belongs
//! to an ancestor process and is left alone. The one lock the library's own
//! process hooks share, the exit handler's list, is held across `fork()` by
//! the forking thread, so the child gets it unlocked.
//!
//! A child cannot start a run of its own (`simtrack_init` refuses with
//! `SIMTRACK_STATUS_IN_FORKED_CHILD`): locks of the library's own are
//! released across the fork (above), but not the lock table inside
//! `parking_lot`, which a new run's buffer and worker use; a fork at the
//! very instant another thread of the parent parks or wakes a thread could
//! leave a bucket of it locked in the child. (A sanitized CI run once saw
//! such a child hang.) After `exec` the process starts clean.
//!
//! [`install`] registers the handlers (and the exit handler) once per
//! process, at the first handle or recording run, whichever comes first.

use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Whether the hooks are registered: `INSTALLED`, or `pid << 2 | INSTALLING`
/// while process `pid` registers them (a child forked in that moment
/// inherits the mark but not the thread: it sees another pid and takes
/// over), or 0.
static INSTALL: AtomicU64 = AtomicU64::new(0);
const INSTALLING: u64 = 1;
const INSTALLED: u64 = 2;

unsafe extern "C" {
    fn pthread_atfork(
        prepare: Option<extern "C" fn()>,
        parent: Option<extern "C" fn()>,
        child: Option<extern "C" fn()>,
    ) -> c_int;
    fn atexit(callback: extern "C" fn()) -> c_int;
}

/// The number of `fork()`s between the first process and this one: 0 in a
/// process that did not come from a fork after [`install`], 1 in its child,
/// 2 in a grandchild. One relaxed load: cheap enough for every C call.
#[inline]
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// Registers the fork handlers and the exit handler, once per process
/// (handlers registered before a fork stay registered in the child).
/// Never blocks on a thread that a fork left behind.
pub(crate) fn install() {
    let mut seen = INSTALL.load(Ordering::Acquire);
    if seen == INSTALLED {
        return;
    }
    let mine = (u64::from(std::process::id()) << 2) | INSTALLING;
    loop {
        if seen == INSTALLED {
            return;
        }
        if seen == mine {
            // Another thread of this process is registering them.
            std::thread::yield_now();
            seen = INSTALL.load(Ordering::Acquire);
            continue;
        }
        // Not registered, or left half-registered by a thread that a fork
        // did not copy into this process. (Registering twice is harmless:
        // the handlers are idempotent.)
        match INSTALL.compare_exchange(seen, mine, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(now) => seen = now,
        }
    }
    // SAFETY: the callbacks are plain extern "C" functions that never unwind
    // and stay valid for the life of the process.
    unsafe {
        pthread_atfork(
            Some(before_fork),
            Some(after_fork_parent),
            Some(after_fork_child),
        );
        atexit(crate::exit::flush_at_exit);
    }
    INSTALL.store(INSTALLED, Ordering::Release);
}

extern "C" fn before_fork() {
    crate::exit::hold_for_fork();
}

extern "C" fn after_fork_parent() {
    crate::exit::release_after_fork();
}

extern "C" fn after_fork_child() {
    // The child is single-threaded here: program order suffices.
    GENERATION.fetch_add(1, Ordering::Relaxed);
    crate::exit::release_after_fork();
}
