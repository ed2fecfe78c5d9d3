//! The process-exit safety net.
//!
//! A solver that ends without `simtrack_finish` (a Fortran `stop`, an early
//! `exit`, a forgotten call) would otherwise lose what its runs buffered in
//! the last fraction of a second. The first run registers an `atexit`
//! handler; at exit it asks every unfinished run's writer to put its buffer
//! into the spool, and gives online runs a moment to deliver it. The run gets
//! no final status: the server marks it `lost` when its heartbeats stop, and
//! `simtrack sync` uploads whatever did not get through.

use std::sync::{Arc, Mutex, Once, Weak};
use std::time::{Duration, Instant};

use crate::worker::Shared;

/// How long the exit handler waits, in all, for the disk and the server.
const EXIT_GRACE: Duration = Duration::from_secs(2);

static LIVE: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());
static REGISTER: Once = Once::new();

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// Remembers a live run so the exit handler can flush it.
pub(crate) fn track(shared: &Arc<Shared>) {
    REGISTER.call_once(|| {
        // SAFETY: `flush_at_exit` is a plain extern "C" fn that never unwinds.
        unsafe { atexit(flush_at_exit) };
    });
    if let Ok(mut live) = LIVE.lock() {
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(shared));
    }
}

extern "C" fn flush_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let runs: Vec<Arc<Shared>> = match LIVE.lock() {
            Ok(live) => live.iter().filter_map(Weak::upgrade).collect(),
            Err(_) => return,
        };
        let deadline = Instant::now() + EXIT_GRACE;
        for shared in &runs {
            shared.flush_at_exit(deadline);
        }
    });
}
