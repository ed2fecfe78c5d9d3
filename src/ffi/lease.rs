//! Which threads are inside a call on which handle, cheaply enough for
//! `simtrack_log`.
//!
//! `simtrack_finish` must not take a run away while another thread's call is
//! still using it. The obvious guard, a count of calls in progress that each
//! call increments and decrements, costs two atomic read-modify-writes per
//! call: ~10 ns on a ~20 ns `simtrack_log`. Instead each thread owns a
//! *slot* that holds the handle it is calling on: a call writes its slot and
//! then checks the handle's `FINISHED` bit with plain loads and stores.
//! `simtrack_finish` sets the bit, then makes every thread of the process
//! execute a memory barrier (the `membarrier` system call, Linux ≥ 4.14), and
//! then waits until no slot holds the handle. After that barrier, a call has
//! either published its slot (and finish waits for it) or will see the bit
//! (and touch nothing): the asymmetric-fence pattern, which moves the cost of
//! the fence from every call to the rare finish.
//!
//! Where `membarrier` is unavailable (another OS, an old kernel, a seccomp
//! filter), when a thread is already inside a call (a signal handler), or
//! while its thread-local slot is being torn down, a call falls back to the
//! handle's count; `finish` always waits for both.
//!
//! Slots are never freed: a thread that ends leaves its slot for the next
//! thread to claim, and the list keeps the slots reachable for leak checkers.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering, compiler_fence};

use super::handle::Handle;

/// One thread's record of the handle it is calling on. Written twice per
/// call, so each slot has a cache line of its own (no false sharing between
/// threads that log at once).
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct Slot {
    /// The handle, or null between calls.
    handle: AtomicPtr<Handle>,
    /// Whether a live thread owns the slot.
    owned: AtomicBool,
    /// The next slot of the list (set once, before the slot is published).
    next: AtomicPtr<Slot>,
}

static SLOTS: AtomicPtr<Slot> = AtomicPtr::new(ptr::null_mut());

/// This thread's slot; given back when the thread ends.
struct Owner(&'static Slot);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.handle.store(ptr::null_mut(), Ordering::Release);
        self.0.owned.store(false, Ordering::Release);
    }
}

thread_local! {
    static MINE: Owner = Owner(claim());
}

/// A free slot, or a new one added to the list.
fn claim() -> &'static Slot {
    let mut p = SLOTS.load(Ordering::Acquire);
    // SAFETY: slots are leaked boxes, never freed.
    while let Some(slot) = unsafe { p.as_ref() } {
        if slot
            .owned
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return slot;
        }
        p = slot.next.load(Ordering::Acquire);
    }
    let slot: &'static Slot = Box::leak(Box::new(Slot {
        handle: AtomicPtr::new(ptr::null_mut()),
        owned: AtomicBool::new(true),
        next: AtomicPtr::new(ptr::null_mut()),
    }));
    let me = ptr::from_ref(slot).cast_mut();
    let mut head = SLOTS.load(Ordering::Relaxed);
    loop {
        slot.next.store(head, Ordering::Relaxed);
        match SLOTS.compare_exchange_weak(head, me, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return slot,
            Err(now) => head = now,
        }
    }
}

/// Whether `membarrier` works here: unknown until [`setup`], then only ever
/// changes in a freshly forked child (which has no call in progress).
static BARRIER: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const AVAILABLE: u8 = 1;
const UNAVAILABLE: u8 = 2;

#[cfg(target_os = "linux")]
mod sys {
    use std::ffi::{c_int, c_long};

    unsafe extern "C" {
        fn syscall(number: c_long, ...) -> c_long;
    }

    #[cfg(target_arch = "x86_64")]
    const SYS_MEMBARRIER: Option<c_long> = Some(324);
    #[cfg(any(target_arch = "aarch64", target_arch = "riscv64"))]
    const SYS_MEMBARRIER: Option<c_long> = Some(283);
    #[cfg(target_arch = "powerpc64")]
    const SYS_MEMBARRIER: Option<c_long> = Some(365);
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "powerpc64"
    )))]
    const SYS_MEMBARRIER: Option<c_long> = None;

    pub const PRIVATE_EXPEDITED: c_int = 1 << 3;
    pub const REGISTER_PRIVATE_EXPEDITED: c_int = 1 << 4;

    /// `membarrier(cmd, 0, 0)`; true on success.
    pub fn membarrier(cmd: c_int) -> bool {
        let Some(number) = SYS_MEMBARRIER else {
            return false;
        };
        // SAFETY: membarrier takes (int cmd, unsigned int flags, int cpu_id)
        // and touches no memory of ours; an unknown command fails with EINVAL.
        unsafe { syscall(number, cmd, 0 as c_int, 0 as c_int) == 0 }
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    pub const PRIVATE_EXPEDITED: i32 = 0;
    pub const REGISTER_PRIVATE_EXPEDITED: i32 = 0;
    pub fn membarrier(_cmd: i32) -> bool {
        false
    }
}

static HOOKED: AtomicBool = AtomicBool::new(false);

unsafe extern "C" {
    fn pthread_atfork(
        prepare: Option<extern "C" fn()>,
        parent: Option<extern "C" fn()>,
        child: Option<extern "C" fn()>,
    ) -> std::ffi::c_int;
}

/// Finds out, once per process, whether calls may use slots; before the
/// first handle.
pub(crate) fn setup() {
    if BARRIER.load(Ordering::Acquire) != UNKNOWN {
        return;
    }
    if !HOOKED.swap(true, Ordering::AcqRel) {
        // SAFETY: `register` is a plain extern "C" fn that never unwinds.
        unsafe { pthread_atfork(None, None, Some(register)) };
    }
    register();
}

/// Registers for `membarrier`; again in each child of `fork()` (there the
/// only thread is in `fork`, so no call is in progress), as older kernels
/// do not carry the registration over.
extern "C" fn register() {
    let state = if sys::membarrier(sys::REGISTER_PRIVATE_EXPEDITED) {
        AVAILABLE
    } else {
        UNAVAILABLE
    };
    BARRIER.store(state, Ordering::Release);
}

/// How a call holds its handle.
#[derive(Debug)]
pub(crate) enum Hold {
    /// Through this thread's slot.
    Slot(&'static Slot),
    /// Through the handle's count.
    Count,
}

/// Marks this thread as calling on `handle`, unless `finished(handle)`
/// already holds. `count` is the fallback: it increments the handle's count
/// and reports whether the handle was finished (undoing the increment then).
#[inline]
pub(crate) fn enter(
    handle: &Handle,
    finished: impl Fn() -> bool,
    count: impl FnOnce() -> bool,
) -> Option<Hold> {
    if BARRIER.load(Ordering::Relaxed) == AVAILABLE {
        let me = ptr::from_ref(handle).cast_mut();
        let slot = MINE.try_with(|owner| {
            let slot = owner.0;
            if !slot.handle.load(Ordering::Relaxed).is_null() {
                return None; // a call inside a call: use the count
            }
            slot.handle.store(me, Ordering::Relaxed);
            Some(slot)
        });
        if let Ok(Some(slot)) = slot {
            // The barrier `finish` sends stands in for a fence here.
            compiler_fence(Ordering::SeqCst);
            if finished() {
                slot.handle.store(ptr::null_mut(), Ordering::Release);
                return None;
            }
            return Some(Hold::Slot(slot));
        }
    }
    if count() { None } else { Some(Hold::Count) }
}

/// Ends a call's hold on its handle (the count is the handle's to undo).
#[inline]
pub(crate) fn leave_slot(slot: &Slot) {
    compiler_fence(Ordering::SeqCst);
    slot.handle.store(ptr::null_mut(), Ordering::Release);
}

/// For `finish`, after it set the `FINISHED` bit: returns once no thread's
/// slot holds `handle`. Calls that start afterwards see the bit.
pub(crate) fn wait_for_slots(handle: &Handle) {
    if BARRIER.load(Ordering::Acquire) != AVAILABLE {
        return; // no call used a slot
    }
    if !sys::membarrier(sys::PRIVATE_EXPEDITED) {
        // Registered but refused (cannot happen on Linux): give every
        // thread's store buffer ample time to drain instead.
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let me = ptr::from_ref(handle).cast_mut();
    let mut waited = 0u32;
    loop {
        let mut busy = false;
        let mut p = SLOTS.load(Ordering::Acquire);
        // SAFETY: slots are leaked boxes, never freed.
        while let Some(slot) = unsafe { p.as_ref() } {
            busy |= slot.handle.load(Ordering::Acquire) == me;
            p = slot.next.load(Ordering::Acquire);
        }
        if !busy {
            return;
        }
        pause(&mut waited);
    }
}

/// Spins briefly, then sleeps: calls in progress are usually nanoseconds
/// from their end, but one may be a `simtrack_flush` waiting for a server.
pub(crate) fn pause(waited: &mut u32) {
    if *waited < 100 {
        std::hint::spin_loop();
    } else {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    *waited = waited.saturating_add(1);
}
