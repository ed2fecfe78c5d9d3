//! The opaque `simtrack_run` handle.

use crate::error::{Error, Status};
use crate::run::Run;

/// An opaque run handle. Created by `simtrack_init`, released by
/// `simtrack_finish`; C code only ever holds a pointer to it.
pub struct Handle {
    pub(crate) run: Run,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("run", &self.run.id())
            .finish()
    }
}

/// Borrows the run behind a handle.
///
/// # Safety
/// `ptr` is NULL or a pointer returned by `simtrack_init` and not yet passed
/// to `simtrack_finish`.
pub(crate) unsafe fn borrow<'a>(ptr: *const Handle) -> Result<&'a Run, Error> {
    // SAFETY: per this function's contract a non-NULL ptr is a live Box.
    unsafe { ptr.as_ref() }
        .map(|h| &h.run)
        .ok_or_else(|| Error::new(Status::NullRun, "the run handle is NULL"))
}
