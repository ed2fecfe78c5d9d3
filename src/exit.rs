//! The process-exit safety net.
//!
//! A solver that ends without `simtrack_finish` (a Fortran `stop`, an early
//! `exit`, a forgotten call) would otherwise lose what its runs buffered in
//! the last fraction of a second. The first run registers an `atexit`
//! handler (through `fork::install`); at exit it asks every unfinished run's
//! writer to put its buffer into the spool, and gives online runs a moment to
//! deliver it. The run gets no final status: the server marks it `lost` when
//! its heartbeats stop, and `simtrack sync` uploads whatever did not get
//! through.
//!
//! Only the runs of the exiting process are flushed: a child of `fork()` that
//! calls `exit()` leaves its parent's runs alone (their threads are not in the
//! child; see `fork`), so it neither waits for them nor writes to their spool.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::worker::Shared;

/// How long the exit handler waits, in all, for the disk and the server.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// A live run and the fork generation of the process that started it.
struct Tracked {
    generation: u64,
    shared: Weak<Shared>,
}

static LIVE: Mutex<Vec<Tracked>> = Mutex::new(Vec::new());

thread_local! {
    /// `LIVE`, held by the forking thread from just before `fork()` until
    /// just after, in parent and child alike.
    static HELD: RefCell<Option<MutexGuard<'static, Vec<Tracked>>>> = const { RefCell::new(None) };
}

fn live() -> MutexGuard<'static, Vec<Tracked>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Remembers a live run so the exit handler can flush it.
pub(crate) fn track(shared: &Arc<Shared>) {
    crate::fork::install();
    let mut live = live();
    live.retain(|t| t.shared.strong_count() > 0);
    live.push(Tracked {
        generation: crate::fork::generation(),
        shared: Arc::downgrade(shared),
    });
}

/// The unfinished runs of this process (not those a `fork()` parent left).
pub(crate) fn live_runs() -> Vec<Arc<Shared>> {
    let generation = crate::fork::generation();
    live()
        .iter()
        .filter(|t| t.generation == generation)
        .filter_map(|t| t.shared.upgrade())
        .collect()
}

/// The `atexit` handler.
pub(crate) extern "C" fn flush_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let runs = live_runs();
        let deadline = Instant::now() + EXIT_GRACE;
        for shared in &runs {
            shared.flush_at_exit(deadline);
        }
    });
}

/// Takes `LIVE` for the duration of a `fork()`, so that the child does not
/// inherit it locked by a thread it does not have. Idempotent.
pub(crate) fn hold_for_fork() {
    let _ = HELD.try_with(|held| {
        if let Ok(mut held) = held.try_borrow_mut()
            && held.is_none()
        {
            *held = Some(live());
        }
    });
}

/// Releases what [`hold_for_fork`] took (in the parent and in the child).
pub(crate) fn release_after_fork() {
    let _ = HELD.try_with(|held| {
        if let Ok(mut held) = held.try_borrow_mut() {
            held.take();
        }
    });
}
