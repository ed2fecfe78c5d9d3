//! The opaque `simtrack_run` handle: how a call gets at its run, and how
//! `simtrack_finish` takes the run away without pulling it from under a call
//! that is still using it.
//!
//! Every call on a handle holds a [`Lease`] for its duration (see `lease`
//! for how that stays cheap). `simtrack_finish` sets the handle's `FINISHED`
//! bit (only one caller can), waits for the calls in progress to return, and
//! only then takes the run out and finishes it. A call that finds `FINISHED`
//! set touches nothing and returns `SIMTRACK_STATUS_RUN_FINISHED`.
//!
//! So that a late call (a second `simtrack_finish` racing the first, a
//! `simtrack_log` on a finished handle) reads valid memory, the handle's own
//! small allocation is never freed: `finish` releases everything the run owns
//! and leaves this shell, a tombstone, on a process-wide list (which also keeps
//! leak checkers from reporting it).
//!
//! A handle used in a child of `fork()` (see `crate::fork`) never touches its
//! run: each call acts as on a no-op handle.

use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use super::lease::{self, Hold};
use crate::error::{Error, Status};
use crate::run::Run;

/// Set in `Handle::state` once `simtrack_finish` has claimed the handle; the
/// other bits count the calls in progress that hold it by count (see
/// `lease`).
const FINISHED: usize = 1 << (usize::BITS - 1);

/// An opaque run handle. Created by `simtrack_init`, finished by
/// `simtrack_finish`; C code only ever holds a pointer to it.
pub struct Handle {
    state: AtomicUsize,
    /// The fork generation of the process that created the handle.
    generation: u64,
    /// Taken out by `finish` once `FINISHED` is set and no lease is left.
    run: UnsafeCell<ManuallyDrop<Run>>,
    /// The next tombstone (finished handles form a list that is never freed).
    next: AtomicPtr<Handle>,
}

// SAFETY: `run` is only read through a `Lease` (and `Run` is `Sync`), and is
// taken out by `finish` only when `state` guarantees no lease exists and none
// can be created; everything else is atomic or immutable.
unsafe impl Sync for Handle {}

/// The newest tombstone.
static TOMBSTONES: AtomicPtr<Handle> = AtomicPtr::new(ptr::null_mut());

/// What a handle in a forked child stands for: a run that records nothing.
static NO_OP: Run = Run::detached();

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("state", &self.state.load(Ordering::Relaxed))
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// A new handle for `run`, to give to C.
    pub(crate) fn into_raw(run: Run) -> *mut Handle {
        prepare();
        Box::into_raw(Box::new(Handle {
            state: AtomicUsize::new(0),
            generation: crate::fork::generation(),
            run: UnsafeCell::new(ManuallyDrop::new(run)),
            next: AtomicPtr::new(ptr::null_mut()),
        }))
    }

    fn forked(&self) -> bool {
        self.generation != crate::fork::generation()
    }

    /// Claims the handle and finishes its run, once; a second call gets
    /// `RunFinished`. Waits for calls in progress on other threads to return
    /// first (each has a deadline of its own). In a forked child it only marks
    /// the handle finished: the run belongs to the parent.
    pub(crate) fn finish(&'static self) -> Result<(), Error> {
        if self.state.fetch_or(FINISHED, Ordering::SeqCst) & FINISHED != 0 {
            return Err(finished());
        }
        if self.forked() {
            return Ok(());
        }
        lease::wait_for_slots(self);
        let mut waited = 0u32;
        while self.state.load(Ordering::Acquire) != FINISHED {
            lease::pause(&mut waited);
        }
        // SAFETY: FINISHED is set (by this call alone) and no lease is left:
        // no other thread can reach `run`, and it is taken exactly once.
        let run = unsafe { ManuallyDrop::take(&mut *self.run.get()) };
        self.bury();
        run.finish()
    }

    /// Puts this finished handle on the tombstone list.
    fn bury(&'static self) {
        let me = ptr::from_ref(self).cast_mut();
        let mut head = TOMBSTONES.load(Ordering::Relaxed);
        loop {
            self.next.store(head, Ordering::Relaxed);
            match TOMBSTONES.compare_exchange_weak(head, me, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    fn lease(&self) -> Result<Lease<'_>, Error> {
        if self.forked() {
            // Other threads' holds were copied into the child but their
            // threads were not: only FINISHED means anything here.
            if self.state.load(Ordering::Acquire) & FINISHED != 0 {
                return Err(finished());
            }
            return Ok(Lease { held: None });
        }
        let is_finished = || self.state.load(Ordering::Relaxed) & FINISHED != 0;
        let count = || {
            if self.state.fetch_add(1, Ordering::Acquire) & FINISHED != 0 {
                self.state.fetch_sub(1, Ordering::Release);
                return true;
            }
            false
        };
        match lease::enter(self, is_finished, count) {
            Some(hold) => Ok(Lease {
                held: Some((self, hold)),
            }),
            None => Err(finished()),
        }
    }
}

/// Sets up what handles rely on, once per process: the fork handlers (for
/// no-op runs too: a child must not wait for calls that threads it does not
/// have were making in the parent) and `membarrier`. Call it before the
/// library starts threads of its own: registering for `membarrier` costs a
/// scheduler grace period (~15 ms) once a process has several threads.
pub(crate) fn prepare() {
    crate::fork::install();
    lease::setup();
}

fn finished() -> Error {
    Error::new(
        Status::RunFinished,
        "the run handle was already finished (simtrack_finish was called on it)",
    )
}

/// A call's hold on a handle's run; see the module docs.
pub(crate) struct Lease<'a> {
    /// `None`: a handle inherited through fork, standing for [`NO_OP`].
    held: Option<(&'a Handle, Hold)>,
}

impl std::ops::Deref for Lease<'_> {
    type Target = Run;

    #[inline]
    fn deref(&self) -> &Run {
        match &self.held {
            // SAFETY: while this lease exists finish cannot have taken the
            // run out (it waits for every lease).
            Some((h, _)) => unsafe { &*h.run.get() },
            None => &NO_OP,
        }
    }
}

impl Drop for Lease<'_> {
    #[inline]
    fn drop(&mut self) {
        match &self.held {
            Some((_, Hold::Slot(slot))) => lease::leave_slot(slot),
            Some((h, Hold::Count)) => {
                h.state.fetch_sub(1, Ordering::Release);
            }
            None => {}
        }
    }
}

/// Leases the run behind a handle for the duration of a call.
///
/// # Safety
/// `ptr` is NULL or a pointer returned by `simtrack_init` (finished or not:
/// handles are never freed).
#[inline]
pub(crate) unsafe fn borrow<'a>(ptr: *const Handle) -> Result<Lease<'a>, Error> {
    // SAFETY: per this function's contract a non-NULL ptr is a live Box.
    unsafe { ptr.as_ref() }
        .ok_or_else(|| Error::new(Status::NullRun, "the run handle is NULL"))?
        .lease()
}

/// The handle behind `ptr`, for `simtrack_finish`.
///
/// # Safety
/// As [`borrow`].
pub(crate) unsafe fn handle(ptr: *const Handle) -> Option<&'static Handle> {
    // SAFETY: per this function's contract a non-NULL ptr is a handle, and
    // handles are never freed.
    unsafe { ptr.as_ref() }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn leaked() -> &'static Handle {
        // SAFETY: into_raw returns a valid handle, never freed.
        unsafe { &*Handle::into_raw(Run::detached()) }
    }

    #[test]
    fn finish_waits_for_calls_holding_the_handle_by_slot_or_by_count() {
        let (a, b) = (leaked(), leaked());
        let on_a = a.lease().unwrap();
        // A call inside a call holds its handle by count, not by slot.
        let on_b = b.lease().unwrap();
        let finish_a = std::thread::spawn(move || a.finish());
        let finish_b = std::thread::spawn(move || b.finish());
        std::thread::sleep(Duration::from_millis(100));
        assert!(!finish_a.is_finished() && !finish_b.is_finished());
        // Both are claimed: new calls are refused at once.
        let refused = |h: &Handle| h.lease().err().map(|e| e.status);
        assert_eq!(refused(a), Some(Status::RunFinished));
        assert_eq!(refused(b), Some(Status::RunFinished));
        drop(on_b);
        assert_eq!(finish_b.join().unwrap(), Ok(()));
        assert!(!finish_a.is_finished());
        drop(on_a);
        assert_eq!(finish_a.join().unwrap(), Ok(()));
        let again = a.finish().unwrap_err();
        assert_eq!(again.status, Status::RunFinished);
        assert!(
            again.message.contains("already finished"),
            "{}",
            again.message
        );
    }

    #[test]
    fn a_finished_handle_leaves_a_small_tombstone() {
        // simtrack_finish's doc promises under 1 KiB per finished handle.
        let size = std::mem::size_of::<Handle>();
        assert!(size < 1024, "a handle takes {size} bytes");
    }
}
