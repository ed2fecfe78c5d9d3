//! The hot path's buffer: one *lane* per logging thread, each a ring of
//! fixed-size slots in a memory-mapped file of the run's spool.
//!
//! * A thread appends to its own lane only: no lock, no atomic
//!   read-modify-write, no allocation and no system call once it has its lane
//!   and knows the metric. The first call of a thread on a run takes a lane
//!   (a file `lanes/<n>` preallocated with `posix_fallocate`, so a full disk
//!   is an error at that moment and never a `SIGBUS` later); the first use of
//!   a metric name interns it (and appends it to `lanes/names`).
//! * The pages are the file's: when the process dies (`SIGKILL`, the OOM
//!   killer, a segfault) the kernel keeps every store that was made. A point
//!   whose `log` call returned is in the file, and [`recover`] (run by
//!   `simtrack sync`) moves it into `records.log`.
//! * Each slot ends with a *seal*: the metric id and a 32-bit hash of the
//!   slot's position and contents, stored last. A slot whose seal does not
//!   match (half written when the process died, or left from an earlier lap
//!   of the ring) ends the lane's data: it is never delivered.
//! * The writer thread drains lanes into `records.log` frames, one lane per
//!   frame. Before it writes a frame it records a *claim* in the lane's
//!   header (where the frame starts and which slot it covers up to), and
//!   after the write it moves the lane's tail and clears the claim. A process
//!   that dies between the two leaves a claim that recovery settles by
//!   looking at `records.log`: the frame is there (tail moves) or it is not
//!   (the torn frame is cut off and the slots are drained again). So every
//!   point reaches `records.log` exactly once.
//!
//! Layout of a lane file: a 4 KiB header (see [`Header`]) and `capacity`
//! slots of 32 bytes (`value f64 | step i64 | ticks u64 | seal u64`, little
//! endian; `seal = metric id | check << 32`). Points carry raw clock ticks;
//! the header keeps the run's clock calibration so recovery can turn them
//! into seconds.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::error::{Error, Status};
use crate::spool::RunDir;

/// Bytes of a slot.
pub(crate) const SLOT: usize = 32;
/// Bytes of a lane's header (one page, so slots start page-aligned).
const HEADER: usize = 4096;
const LANE_MAGIC: u64 = u64::from_le_bytes(*b"STLANE01");

/// The header at the start of a lane file. Logger- and writer-written words
/// live on different cache lines.
#[repr(C)]
struct Header {
    magic: AtomicU64,
    /// Slots in the ring (a power of two).
    capacity: AtomicU64,
    /// The run's clock calibration (kept up to date by the writer).
    start_ticks: AtomicU64,
    seconds_per_tick: AtomicU64,
    _pad0: [u64; 4],
    /// Slots `0..tail` are in `records.log`.
    tail: AtomicU64,
    /// While `claim_active` is 1: a frame holding slots `tail..claim_end` is
    /// being appended at `claim_offset` of `records.log`.
    claim_end: AtomicU64,
    claim_offset: AtomicU64,
    claim_active: AtomicU64,
    _pad1: [u64; 4],
    /// Slots `0..head` are written (the owner's count, published for the
    /// writer; recovery trusts seals instead).
    head: AtomicU64,
}

/// A metric as a lane knows it: its run-wide id and its step counter.
#[derive(Debug, Clone, Copy)]
struct Metric {
    id: u32,
    step: *const StepCounter,
}

/// One entry of a lane's direct-mapped cache of name pointers.
#[derive(Debug, Clone, Copy)]
struct CacheEntry {
    ptr: *const u8,
    len: usize,
    name: *const u8,
    metric: Metric,
}

const CACHE: usize = 64;

/// What only the lane's owner touches.
#[derive(Debug)]
struct Local {
    head: u64,
    /// The tail last read from the header (refreshed when the ring looks full).
    tail_seen: u64,
    /// Inside a push (a signal handler calling in would find it set).
    busy: bool,
    /// Two ways per set: a call logging a few dozen names rarely has three
    /// whose addresses fall in one set (a direct-mapped cache of 64 lost a
    /// handful of 30 names to collisions, on every call).
    cache: [[Option<CacheEntry>; 2]; CACHE],
    index: FxHashMap<Box<[u8]>, Metric>,
    /// The last two C name arrays of `push_many_c` calls, resolved.
    memos: [Memo; 2],
    /// The memo used last (the other is replaced on a miss).
    memo_last: usize,
}

/// Most names a [`Memo`] holds.
const MEMO_LEN: usize = 32;

/// A `push_many_c` call's names as the lane resolved them: a later call
/// with the same array (same address and count), whose entries still point
/// to the same names with the same bytes, skips the per-name cache lookup.
#[derive(Debug, Clone, Copy)]
struct Memo {
    names: *const *const std::ffi::c_char,
    count: usize,
    entries: [MemoEntry; MEMO_LEN],
}

const EMPTY_MEMO: Memo = Memo {
    names: std::ptr::null(),
    count: 0,
    entries: [MemoEntry {
        ptr: std::ptr::null(),
        check: NameCheck::Bytes {
            name: std::ptr::null(),
            len: 0,
        },
        metric: Metric {
            id: 0,
            step: std::ptr::null(),
        },
    }; MEMO_LEN],
};

#[derive(Debug, Clone, Copy)]
struct MemoEntry {
    /// The name's address.
    ptr: *const u8,
    check: NameCheck,
    metric: Metric,
}

/// How a memo entry checks that the name at its address is still the same.
#[derive(Debug, Clone, Copy)]
enum NameCheck {
    /// The name and its terminator lie within the two aligned words from
    /// the one holding its first byte: those words, masked to the name's
    /// bytes, equal `want`. The second is read only when the first matched,
    /// so (its bytes being the name's, none NUL) the name goes on into it.
    Words { want: [u64; 2], mask: [u64; 2] },
    /// Compared byte by byte with the interned name (`len` bytes).
    Bytes { name: *const u8, len: usize },
}

impl NameCheck {
    /// The check for the name `bytes` (interned at `name`) at address `ptr`.
    fn new(ptr: *const u8, name: *const u8, bytes: &[u8]) -> NameCheck {
        let at = ptr as usize & 7;
        if WORD_LOADS && at + bytes.len() < 16 {
            let (mut want, mut mask) = ([0u8; 16], [0u8; 16]);
            want[at..at + bytes.len()].copy_from_slice(bytes);
            mask[at..=at + bytes.len()].fill(0xff);
            let word = |b: &[u8; 16], i: usize| {
                u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default())
            };
            return NameCheck::Words {
                want: [word(&want, 0), word(&want, 1)],
                mask: [word(&mask, 0), word(&mask, 1)],
            };
        }
        NameCheck::Bytes {
            name,
            len: bytes.len(),
        }
    }

    /// Whether the NUL-terminated string at `p` is the name.
    ///
    /// # Safety
    /// `p` is NUL-terminated and is the address this check was made for.
    #[inline(always)]
    unsafe fn matches(&self, p: *const u8) -> bool {
        match *self {
            NameCheck::Words { want, mask } => {
                let at = (p as usize & !7) as *const u64;
                // SAFETY: an aligned word holding the first byte of the
                // string lies in a mapped page; the second word is read only
                // once the first held no NUL of the string, which therefore
                // goes on into it (see `load_word`).
                unsafe {
                    (load_word(at) ^ want[0]) & mask[0] == 0
                        && (mask[1] == 0 || (load_word(at.add(1)) ^ want[1]) & mask[1] == 0)
                }
            }
            // SAFETY: name holds len bytes; p is NUL-terminated.
            NameCheck::Bytes { name, len } => unsafe { c_name_is(name, len, p) },
        }
    }
}

/// Whether [`load_word`] is available on this target.
const WORD_LOADS: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// Reads the aligned word at `at` with one machine load. An aligned word
/// never straddles a page, so it can be read whenever one of its bytes can,
/// even where the others lie past the end of the caller's string (as
/// `strlen` implementations do); done in assembly because such a read is
/// outside what Rust code may read.
///
/// # Safety
/// `at` is 8-byte aligned and one of its 8 bytes is readable.
#[inline(always)]
#[allow(unused_variables)]
unsafe fn load_word(at: *const u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let w: u64;
        // SAFETY: per the contract.
        unsafe {
            std::arch::asm!("mov {w}, qword ptr [{at}]", at = in(reg) at, w = lateout(reg) w,
                options(nostack, preserves_flags, readonly, pure))
        };
        w
    }
    #[cfg(target_arch = "aarch64")]
    {
        let w: u64;
        // SAFETY: per the contract.
        unsafe {
            std::arch::asm!("ldr {w}, [{at}]", at = in(reg) at, w = lateout(reg) w,
                options(nostack, preserves_flags, readonly, pure))
        };
        w
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    unreachable!("WORD_LOADS is false here")
}

impl Local {
    /// The memo for this call's `names` whose every name is unchanged.
    #[inline(always)]
    fn memo_for(&self, names: &[*const std::ffi::c_char]) -> Option<usize> {
        for (i, m) in self.memos.iter().enumerate() {
            if m.names == names.as_ptr() && m.count == names.len() {
                for (e, &p) in m.entries[..names.len()].iter().zip(names) {
                    // SAFETY: p == e.ptr, the non-NULL NUL-terminated name
                    // the check was made for (push_many_c's contract).
                    if e.ptr != p.cast() || !unsafe { e.check.matches(p.cast()) } {
                        return None;
                    }
                }
                return Some(i);
            }
        }
        None
    }

    /// Remembers `names` (just pushed, so each is in the cache) for the next
    /// call with the same array.
    fn remember(&mut self, names: &[*const std::ffi::c_char]) {
        if names.len() > MEMO_LEN {
            return;
        }
        let slot = self
            .memos
            .iter()
            .position(|m| m.names == names.as_ptr())
            .unwrap_or(1 - self.memo_last);
        self.memo_last = slot;
        let memo = &mut self.memos[slot];
        memo.names = std::ptr::null();
        for (i, &p) in names.iter().enumerate() {
            let p = p.cast::<u8>();
            let Some(e) = self.cache[cache_key(p)]
                .iter()
                .flatten()
                .find(|e| e.ptr == p)
            else {
                return;
            };
            // SAFETY: the cache holds e.len bytes at e.name for the run.
            let bytes = unsafe { std::slice::from_raw_parts(e.name, e.len) };
            memo.entries[i] = MemoEntry {
                ptr: p,
                check: NameCheck::new(p, e.name, bytes),
                metric: e.metric,
            };
        }
        memo.names = names.as_ptr();
        memo.count = names.len();
    }
}

/// A memory mapping of a lane.
#[derive(Debug)]
struct Map {
    ptr: *mut u8,
    len: usize,
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap and are unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// One lane: a ring of slots in a mapped file (or, where no file could be
/// made, anonymous memory that is not durable).
#[derive(Debug)]
pub(crate) struct Lane {
    map: Map,
    capacity: u64,
    /// The lane's file; `None` for an anonymous lane (kept for debugging).
    #[allow(dead_code)]
    path: Option<PathBuf>,
    owned: AtomicBool,
    /// Unique among the process's lanes (never 0, below [`SHARED`]).
    key: u64,
    /// Set while the owner is in a `push_many` write loop that advances the
    /// steps of metrics it owns with plain loads and stores.
    active: Padded<AtomicBool>,
    local: UnsafeCell<Local>,
}

#[repr(align(64))]
#[derive(Debug, Default)]
struct Padded<T>(T);

static LANE_KEY: AtomicU64 = AtomicU64::new(1);

// SAFETY: the mapping is shared memory accessed through atomics (header) or
// under the head/tail protocol (slots); `local` is only touched by the
// thread that owns the lane (`owned`, taken with Acquire, given back with
// Release).
unsafe impl Send for Lane {}
// SAFETY: as above.
unsafe impl Sync for Lane {}

fn seal(pos: u64, id: u32, value: u64, step: i64, ticks: u64) -> u64 {
    let mut h = pos ^ 0x9E37_79B9_7F4A_7C15;
    h = (h ^ value).wrapping_mul(0xff51_afd7_ed55_8ccd);
    h = (h ^ step as u64 ^ (u64::from(id) << 17)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= ticks;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    u64::from(id) | ((h >> 32) << 32)
}

/// A point read back from a lane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LanePoint {
    pub name: u32,
    pub value: f64,
    pub step: i64,
    pub ticks: u64,
}

impl Lane {
    /// Maps a new lane file of `capacity` slots at `path`, preallocated.
    fn create_file(path: &Path, capacity: u64) -> std::io::Result<Lane> {
        use std::os::fd::AsRawFd;
        let len = HEADER + capacity as usize * SLOT;
        let file = crate::spool::private_file()
            .create_new(true)
            .read(true)
            .write(true)
            .open(path)?;
        // SAFETY: a valid fd; posix_fallocate returns an errno value.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
        if rc != 0 {
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        let lane = Self::map_file(&file, len, capacity, Some(path.to_path_buf()));
        if lane.is_err() {
            let _ = std::fs::remove_file(path);
        }
        let lane = lane?;
        lane.header().capacity.store(capacity, Ordering::Relaxed);
        lane.header().magic.store(LANE_MAGIC, Ordering::Release);
        Ok(lane)
    }

    fn map_file(
        file: &File,
        len: usize,
        capacity: u64,
        path: Option<PathBuf>,
    ) -> std::io::Result<Lane> {
        use std::os::fd::AsRawFd;
        // SAFETY: mapping a file we opened read-write, of at least len bytes.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                // Populated now: the hot path never takes a page fault.
                libc::MAP_SHARED | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self::from_map(ptr.cast(), len, capacity, path))
    }

    /// An anonymous lane (memory only): when no lane file can be made.
    fn anonymous(capacity: u64) -> std::io::Result<Lane> {
        let len = HEADER + capacity as usize * SLOT;
        // SAFETY: an anonymous private mapping.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let lane = Self::from_map(ptr.cast(), len, capacity, None);
        lane.header().capacity.store(capacity, Ordering::Relaxed);
        lane.header().magic.store(LANE_MAGIC, Ordering::Release);
        Ok(lane)
    }

    fn from_map(ptr: *mut u8, len: usize, capacity: u64, path: Option<PathBuf>) -> Lane {
        // A child of fork() does not get the mapping: its handles record
        // nothing, and nothing of it may write into the parent's buffers.
        // SAFETY: advice on a mapping we own; failure is harmless.
        unsafe { libc::madvise(ptr.cast(), len, libc::MADV_DONTFORK) };
        let head = {
            // SAFETY: the mapping starts with a Header (all-zero is valid).
            let h = unsafe { &*ptr.cast::<Header>() };
            h.head.load(Ordering::Relaxed)
        };
        Lane {
            map: Map { ptr, len },
            capacity,
            path,
            owned: AtomicBool::new(false),
            key: LANE_KEY.fetch_add(1, Ordering::Relaxed),
            active: Padded(AtomicBool::new(false)),
            local: UnsafeCell::new(Local {
                head,
                tail_seen: 0,
                busy: false,
                cache: [[None; 2]; CACHE],
                index: FxHashMap::default(),
                memos: [EMPTY_MEMO; 2],
                memo_last: 0,
            }),
        }
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a Header and outlives self.
        unsafe { &*self.map.ptr.cast::<Header>() }
    }

    #[inline]
    fn slot(&self, pos: u64) -> *mut u64 {
        let i = (pos & (self.capacity - 1)) as usize;
        // SAFETY: i < capacity, so the slot lies inside the mapping.
        unsafe { self.map.ptr.add(HEADER + i * SLOT).cast::<u64>() }
    }

    /// Slots written and not yet drained (for the writer).
    pub fn backlog(&self) -> u64 {
        let h = self.header();
        h.head
            .load(Ordering::Acquire)
            .saturating_sub(h.tail.load(Ordering::Acquire))
    }

    pub fn set_clock(&self, start_ticks: u64, seconds_per_tick: f64) {
        let h = self.header();
        h.start_ticks.store(start_ticks, Ordering::Relaxed);
        h.seconds_per_tick
            .store(seconds_per_tick.to_bits(), Ordering::Relaxed);
    }

    fn clock(&self) -> (u64, f64) {
        let h = self.header();
        (
            h.start_ticks.load(Ordering::Relaxed),
            f64::from_bits(h.seconds_per_tick.load(Ordering::Relaxed)),
        )
    }

    /// Slots published so far.
    pub fn published(&self) -> u64 {
        self.header().head.load(Ordering::Acquire)
    }

    /// Reads the points from the tail to `upto` (at most `max`) into `out`;
    /// for the writer, `upto` a head it read. Returns the end position.
    pub fn read_published(&self, max: usize, upto: u64, out: &mut Vec<LanePoint>) -> u64 {
        let tail = self.header().tail.load(Ordering::Acquire);
        let end = upto.max(tail).min(tail + max as u64);
        for pos in tail..end {
            out.push(self.read(pos));
        }
        end
    }

    /// Reads the sealed points from the tail on (at most `max`): recovery,
    /// where the head of a dead process is not trusted.
    fn read_sealed(&self, max: usize, out: &mut Vec<LanePoint>) -> u64 {
        let tail = self.header().tail.load(Ordering::Acquire);
        let mut pos = tail;
        while pos < tail + self.capacity && out.len() < max {
            let s = self.slot(pos);
            // SAFETY: the slot is inside the mapping; recovery owns the file.
            let (value, step, ticks, sealed) = unsafe {
                (
                    s.read_volatile(),
                    s.add(1).read_volatile() as i64,
                    s.add(2).read_volatile(),
                    s.add(3).read_volatile(),
                )
            };
            let id = sealed as u32;
            if seal(pos, id, value, step, ticks) != sealed {
                break;
            }
            out.push(LanePoint {
                name: id,
                value: f64::from_bits(value),
                step,
                ticks,
            });
            pos += 1;
        }
        pos
    }

    fn read(&self, pos: u64) -> LanePoint {
        let s = self.slot(pos);
        // SAFETY: pos < head (published with Release after the slot was
        // written), so the slot is complete and the owner does not write it
        // again before the tail passes it.
        unsafe {
            LanePoint {
                value: f64::from_bits(s.read()),
                step: s.add(1).read() as i64,
                ticks: s.add(2).read(),
                name: s.add(3).read() as u32,
            }
        }
    }

    /// Announces that a frame holding slots up to `end` is about to be
    /// appended at `offset` of `records.log`.
    pub fn claim(&self, end: u64, offset: u64) {
        let h = self.header();
        h.claim_end.store(end, Ordering::Relaxed);
        h.claim_offset.store(offset, Ordering::Relaxed);
        h.claim_active.store(1, Ordering::Release);
    }

    /// The frame of the claim is in `records.log` (`written`) or is not.
    pub fn settle(&self, written: bool) {
        let h = self.header();
        if written {
            h.tail
                .store(h.claim_end.load(Ordering::Relaxed), Ordering::Release);
        }
        h.claim_active.store(0, Ordering::Release);
    }
}

/// Run-wide metric names: id -> name, and each metric's step counter.
#[derive(Debug, Default)]
struct Names {
    index: FxHashMap<Box<[u8]>, u32>,
    list: Vec<Box<str>>,
    /// One cache line each, so threads logging different metrics share none.
    /// Boxed: lanes keep pointers to them while the list grows.
    #[allow(clippy::vec_box)]
    steps: Vec<Box<StepCounter>>,
    /// `lanes/names`: `u32 len | u32 crc | bytes` per name, in id order.
    file: Option<File>,
}

/// A metric's next automatic step, and which lane may advance it without
/// an atomic read-modify-write.
///
/// A metric used by one lane only (the usual case: one thread logs it) is
/// *owned* by that lane, which advances `next` with a plain load and store
/// inside a `push_many` (no `lock` prefix per point, no store-buffer drain).
/// The first time another lane uses the metric it marks it [`SHARED`] and
/// waits until the owner is outside its write loop (see [`Lane::active`]);
/// from then on everyone uses `fetch_add`. So steps stay unique per metric.
/// The mark keeps the former owner's key: a third lane that comes while the
/// second still waits must wait for that owner too (it once went ahead at
/// once, and its `fetch_add`s could meet the owner's last plain stores).
#[repr(align(64))]
#[derive(Debug, Default)]
struct StepCounter {
    next: AtomicI64,
    /// 0: no lane yet; the owning lane's `key`; or [`SHARED`] with the
    /// former owner's key.
    owner: AtomicU64,
}

/// The bit of a shared counter's `owner` (lane keys stay far below it).
const SHARED: u64 = 1 << 63;

/// The lanes of one run.
#[derive(Debug)]
pub(crate) struct Lanes {
    serial: u64,
    dir: PathBuf,
    capacity: u64,
    all: Mutex<Vec<Arc<Lane>>>,
    names: Mutex<Names>,
    clock: Mutex<(u64, f64)>,
    /// A lane file could not be made: later lanes are anonymous.
    file_error: Mutex<Option<String>>,
}

static SERIAL: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The lane this thread used last, with its run's serial.
    static CURRENT: Cell<(u64, *const Lane)> = const { Cell::new((0, std::ptr::null())) };
    /// Every lane this thread holds; given back when the thread ends.
    static HELD: RefCell<Held> = const { RefCell::new(Held(Vec::new())) };
}

struct Held(Vec<(u64, Weak<()>, Arc<Lane>)>);

impl Drop for Held {
    fn drop(&mut self) {
        for (_, _, lane) in self.0.drain(..) {
            lane.owned.store(false, Ordering::Release);
        }
        let _ = CURRENT.try_with(|c| c.set((0, std::ptr::null())));
    }
}

/// Slots per lane for a memory cap of `cap_bytes`: an eighth of it, a power
/// of two, at least 4096.
pub(crate) fn lane_capacity(cap_bytes: usize) -> u64 {
    let slots = (cap_bytes / 8 / SLOT).max(4096) as u64;
    1u64 << (63 - slots.leading_zeros())
}

/// What a push needs from the caller besides the point.
pub(crate) trait Room {
    /// Called when the lane has no room for `need` more slots: waits for the
    /// writer (or fails).
    fn wait(&self, lane: &Lane, need: u64) -> Result<(), Error>;
}

impl Lanes {
    /// The lanes of the run in `dir` (`<run>/lanes/`, created 0700).
    pub fn new(dir: &RunDir, capacity: u64) -> Result<Lanes, Error> {
        // Registered before the run's first lane exists.
        asymmetric_barriers();
        let lanes = dir.root.join("lanes");
        crate::spool::create_private_dir_all(&lanes)
            .map_err(|e| Error::io(format!("cannot create {}", lanes.display()), e))?;
        let file = crate::spool::private_file()
            .create(true)
            .append(true)
            .open(lanes.join("names"))
            .map_err(|e| Error::io(format!("cannot create {}/names", lanes.display()), e))?;
        Ok(Lanes {
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            dir: lanes,
            capacity,
            all: Mutex::new(Vec::new()),
            names: Mutex::new(Names {
                file: Some(file),
                ..Names::default()
            }),
            clock: Mutex::new((0, 0.0)),
            file_error: Mutex::new(None),
        })
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Every lane (for the writer).
    pub fn snapshot(&self, out: &mut Vec<Arc<Lane>>) {
        out.clear();
        out.extend(self.all.lock().iter().cloned());
    }

    /// How many names the run has.
    pub fn name_count(&self) -> usize {
        self.names.lock().list.len()
    }

    /// Names `from..` (for the writer's copy).
    pub fn names_from(&self, from: usize, out: &mut Vec<String>) {
        let n = self.names.lock();
        out.extend(
            n.list[from.min(n.list.len())..]
                .iter()
                .map(|s| s.to_string()),
        );
    }

    /// Records the clock calibration in every lane (for recovery).
    pub fn set_clock(&self, start_ticks: u64, seconds_per_tick: f64) {
        *self.clock.lock() = (start_ticks, seconds_per_tick);
        for lane in self.all.lock().iter() {
            lane.set_clock(start_ticks, seconds_per_tick);
        }
    }

    /// Removes the lane files (every lane drained: the run is finished).
    pub fn remove_files(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// This thread's lane for this run.
    #[inline]
    fn lane(&self, keep: &Weak<()>) -> Result<&Lane, Error> {
        let (serial, lane) = CURRENT.try_with(Cell::get).unwrap_or((0, std::ptr::null()));
        if serial == self.serial && !lane.is_null() {
            // SAFETY: HELD keeps the lane alive while CURRENT points to it.
            return Ok(unsafe { &*lane });
        }
        self.lane_slow(keep)
    }

    #[cold]
    fn lane_slow(&self, keep: &Weak<()>) -> Result<&Lane, Error> {
        let found = HELD.try_with(|held| {
            let mut held = held.try_borrow_mut().ok()?;
            // Lanes of runs that ended are let go.
            held.0.retain(|(_, alive, lane)| {
                let live = alive.strong_count() > 0;
                if !live {
                    lane.owned.store(false, Ordering::Release);
                }
                live
            });
            held.0
                .iter()
                .find(|(s, _, _)| *s == self.serial)
                .map(|(_, _, l)| Arc::as_ptr(l))
        });
        let lane = match found {
            Ok(Some(lane)) => lane,
            Ok(None) => {
                let lane = self.take_lane()?;
                let ptr = Arc::as_ptr(&lane);
                let stored = HELD.try_with(|held| {
                    held.try_borrow_mut()
                        .map(|mut h| h.0.push((self.serial, keep.clone(), lane.clone())))
                        .is_ok()
                });
                if stored != Ok(true) {
                    lane.owned.store(false, Ordering::Release);
                    return Err(no_thread_state());
                }
                ptr
            }
            Err(_) => return Err(no_thread_state()),
        };
        let _ = CURRENT.try_with(|c| c.set((self.serial, lane)));
        // SAFETY: HELD (or the run's list) keeps the lane alive.
        Ok(unsafe { &*lane })
    }

    /// A lane no thread owns, or a new one.
    fn take_lane(&self) -> Result<Arc<Lane>, Error> {
        let mut all = self.all.lock();
        for lane in all.iter() {
            if lane
                .owned
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(lane.clone());
            }
        }
        let path = self.dir.join(all.len().to_string());
        let lane = if self.file_error.lock().is_none() {
            match Lane::create_file(&path, self.capacity) {
                Ok(l) => Some(l),
                Err(e) => {
                    crate::warn::warn(&format!(
                        "simtrack: cannot create the lane file {} ({e}); points are buffered in memory only, \
                         so those not yet written to the spool are lost if the process dies",
                        path.display()
                    ));
                    *self.file_error.lock() = Some(format!("{}: {e}", path.display()));
                    None
                }
            }
        } else {
            None
        };
        let lane = match lane {
            Some(l) => l,
            None => Lane::anonymous(self.capacity)
                .map_err(|e| Error::io("cannot allocate a logging buffer", e))?,
        };
        let (t, s) = *self.clock.lock();
        lane.set_clock(t, s);
        lane.owned.store(true, Ordering::Relaxed);
        let lane = Arc::new(lane);
        all.push(lane.clone());
        Ok(lane)
    }

    /// Looks a name up in the lane's cache; on a miss, in the run's table.
    #[inline]
    fn metric(&self, lane: &Lane, local: &mut Local, name: &[u8]) -> Result<Metric, Error> {
        let key = cache_key(name.as_ptr());
        for e in local.cache[key].iter().flatten() {
            if e.ptr == name.as_ptr()
                && e.len == name.len()
                // SAFETY: e.name points to the interned name (len bytes), kept
                // alive by the lane's index for the life of the run.
                && unsafe { same_bytes(e.name, name) }
            {
                return Ok(e.metric);
            }
        }
        self.metric_slow(lane, local, name, key)
    }

    /// As [`Lanes::metric`] for a NUL-terminated name: a hit is checked
    /// against the cached name byte by byte up to its terminator, so the name
    /// is never measured with `strlen` first.
    ///
    /// # Safety
    /// `name` is non-NULL and NUL-terminated.
    #[inline]
    unsafe fn metric_c(
        &self,
        lane: &Lane,
        local: &mut Local,
        name: *const u8,
    ) -> Result<Metric, Error> {
        let key = cache_key(name);
        for e in local.cache[key].iter().flatten() {
            // SAFETY: e.name holds e.len bytes; name is NUL-terminated.
            if e.ptr == name && unsafe { c_name_is(e.name, e.len, name) } {
                return Ok(e.metric);
            }
        }
        // SAFETY: NUL-terminated per the contract.
        let bytes = unsafe { std::ffi::CStr::from_ptr(name.cast()) }.to_bytes();
        self.metric_slow(lane, local, bytes, key)
    }

    #[cold]
    fn metric_slow(
        &self,
        lane: &Lane,
        local: &mut Local,
        name: &[u8],
        key: usize,
    ) -> Result<Metric, Error> {
        let (metric, interned) = match local.index.get_key_value(name) {
            Some((k, m)) => (*m, k.as_ptr()),
            None => {
                let metric = self.intern(name)?;
                // The lane's first use of this metric (never inside a write
                // loop: see `push_lots`).
                self.adopt(lane, metric);
                let k: Box<[u8]> = name.into();
                let p = k.as_ptr();
                local.index.insert(k, metric);
                (metric, p)
            }
        };
        let set = &mut local.cache[key];
        set[1] = set[0].take();
        set[0] = Some(CacheEntry {
            ptr: name.as_ptr(),
            len: name.len(),
            name: interned,
            metric,
        });
        Ok(metric)
    }

    /// Takes ownership of a metric's step counter for `lane`, or, if another
    /// lane owns it, makes it shared (see [`StepCounter`]).
    fn adopt(&self, lane: &Lane, metric: Metric) {
        // SAFETY: the counter lives in the run's names table for the run.
        let counter = unsafe { &*metric.step };
        let owner =
            match counter
                .owner
                .compare_exchange(0, lane.key, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(o) if o == lane.key || o == SHARED | lane.key => return,
                Err(o) => o & !SHARED,
            };
        // Several lanes may store this at once: all the same value.
        counter.owner.store(SHARED | owner, Ordering::Relaxed);
        // Pairs with the barrier in `with_steps`: either the owner's next
        // write loop sees SHARED, or we see it active and wait it out.
        heavy_barrier();
        let owner_lane = self.all.lock().iter().find(|l| l.key == owner).cloned();
        if let Some(l) = owner_lane {
            // A write loop is a few stores per point: no lock, no wait.
            while l.active.0.load(Ordering::Acquire) {
                std::hint::spin_loop();
                std::thread::yield_now();
            }
        }
    }

    fn intern(&self, name: &[u8]) -> Result<Metric, Error> {
        let mut n = self.names.lock();
        if let Some(&id) = n.index.get(name) {
            return Ok(Metric {
                id,
                step: &*n.steps[id as usize],
            });
        }
        let text = std::str::from_utf8(name).map_err(|e| {
            Error::new(
                Status::InvalidUtf8,
                format!("metric name is not valid UTF-8: {e}"),
            )
        })?;
        crate::record::check_metric_name(text)?;
        let id = u32::try_from(n.list.len())
            .map_err(|_| Error::new(Status::InvalidArgument, "too many metrics"))?;
        let mut frame = Vec::with_capacity(8 + name.len());
        frame.extend_from_slice(&(name.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(name).to_le_bytes());
        frame.extend_from_slice(name);
        if let Some(f) = &mut n.file
            && f.write_all(&frame).is_err()
        {
            // Without its name a recovered point could not be delivered:
            // later names are kept in memory only (the writer still has them).
            n.file = None;
        }
        n.list.push(text.into());
        n.index.insert(name.into(), id);
        n.steps.push(Box::default());
        Ok(Metric {
            id,
            step: &*n.steps[id as usize],
        })
    }

    /// Appends one point to this thread's lane. `keep` is a token that lives
    /// as long as the run (the thread lets its lane go when it dies).
    #[inline]
    pub fn push(
        &self,
        keep: &Weak<()>,
        room: &impl Room,
        name: &[u8],
        value: f64,
        step: i64,
        ticks: u64,
    ) -> Result<(), Error> {
        self.on_lane(keep, |lane, local| {
            self.metric(lane, local, name)
                .and_then(|m| self.push_in(lane, local, room, m, value, step, ticks))
        })
    }

    /// Runs `f` on this thread's lane and its thread-local state, refusing
    /// a call that interrupts another on the same thread (a signal handler
    /// logging while the thread was inside a push).
    #[inline(always)]
    fn on_lane<R>(
        &self,
        keep: &Weak<()>,
        f: impl FnOnce(&Lane, &mut Local) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let lane = self.lane(keep)?;
        // SAFETY: this thread owns the lane; `busy` catches a reentrant call.
        let local = unsafe { &mut *lane.local.get() };
        if local.busy {
            return Err(reentered());
        }
        local.busy = true;
        let r = f(lane, &mut *local);
        local.busy = false;
        r
    }

    /// As [`Lanes::push`] with a NUL-terminated name (never measured when
    /// the lane has seen it at that address).
    ///
    /// # Safety
    /// `name` is non-NULL and NUL-terminated.
    #[inline]
    pub unsafe fn push_c(
        &self,
        keep: &Weak<()>,
        room: &impl Room,
        name: *const std::ffi::c_char,
        value: f64,
        step: i64,
        ticks: u64,
    ) -> Result<(), Error> {
        self.on_lane(keep, |lane, local| {
            // SAFETY: forwarded contract.
            unsafe { self.metric_c(lane, local, name.cast()) }
                .and_then(|m| self.push_in(lane, local, room, m, value, step, ticks))
        })
    }

    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn push_in(
        &self,
        lane: &Lane,
        local: &mut Local,
        room: &impl Room,
        m: Metric,
        value: f64,
        step: i64,
        ticks: u64,
    ) -> Result<(), Error> {
        if local.head - local.tail_seen >= lane.capacity {
            self.make_room(lane, local, room, 1)?;
        }
        let head = local.head;
        with_steps(lane, step, |key| {
            write_slot(lane, head, m.id, value, next_step(m, step, key), ticks);
            Ok(())
        })?;
        local.head += 1;
        lane.header().head.store(local.head, Ordering::Release);
        Ok(())
    }

    #[cold]
    fn make_room(
        &self,
        lane: &Lane,
        local: &mut Local,
        room: &impl Room,
        need: u64,
    ) -> Result<(), Error> {
        if need > lane.capacity {
            return Err(Error::new(
                Status::InvalidArgument,
                format!(
                    "{need} values in one call; at most {} fit the buffer (SIMTRACK_MEMORY_CAP_MB)",
                    lane.capacity
                ),
            ));
        }
        local.tail_seen = lane.header().tail.load(Ordering::Acquire);
        if local.head + need - local.tail_seen <= lane.capacity {
            return Ok(());
        }
        room.wait(lane, need)?;
        local.tail_seen = lane.header().tail.load(Ordering::Acquire);
        Ok(())
    }

    /// Appends `count` points at one step and time: all, or none if a name
    /// is invalid or there is no room.
    pub fn push_many<'a>(
        &self,
        keep: &Weak<()>,
        room: &impl Room,
        count: usize,
        item: impl Fn(usize) -> Result<(&'a [u8], f64), Error>,
        step: i64,
        ticks: u64,
    ) -> Result<(), Error> {
        let items = ByBytes(item);
        self.push_items(keep, room, count, &items, step, ticks)
    }

    /// As [`Lanes::push_many`] with NUL-terminated names: `names[i]` names
    /// `values[i]` (a NULL name refuses the call).
    ///
    /// # Safety
    /// Every non-NULL `names[i]` is NUL-terminated.
    pub unsafe fn push_many_c(
        &self,
        keep: &Weak<()>,
        room: &impl Room,
        names: &[*const std::ffi::c_char],
        values: &[f64],
        step: i64,
        ticks: u64,
    ) -> Result<(), Error> {
        let count = names.len().min(values.len());
        let (names, values) = (&names[..count], &values[..count]);
        self.on_lane(keep, |lane, local| {
            if count > MEMO_LEN {
                let items = ByCStr { names, values };
                return self.push_lots(lane, local, room, count, &items, step, ticks);
            }
            if let Some(memo) = local.memo_for(names) {
                return self.push_memo(lane, local, room, memo, values, step, ticks);
            }
            let items = ByCStr { names, values };
            self.push_few(lane, local, room, count, &items, step, ticks)?;
            local.remember(names);
            Ok(())
        })
    }

    /// `push_many_c` of names a memo resolved.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn push_memo(
        &self,
        lane: &Lane,
        local: &mut Local,
        room: &impl Room,
        memo: usize,
        values: &[f64],
        step: i64,
        ticks: u64,
    ) -> Result<(), Error> {
        let need = values.len() as u64;
        if local.head + need - local.tail_seen > lane.capacity {
            self.make_room(lane, local, room, need)?;
        }
        let start = local.head;
        let entries = &local.memos[memo].entries[..values.len()];
        let ring = Ring::of(lane);
        let head = with_steps(lane, step, |key| {
            let mut head = start;
            for (e, &value) in entries.iter().zip(values) {
                ring.write(
                    head,
                    e.metric.id,
                    value,
                    next_step(e.metric, step, key),
                    ticks,
                );
                head += 1;
            }
            Ok(head)
        })?;
        local.head = head;
        lane.header().head.store(head, Ordering::Release);
        Ok(())
    }

    fn push_items(
        &self,
        keep: &Weak<()>,
        room: &impl Room,
        count: usize,
        items: &impl Items,
        step: i64,
        ticks: u64,
    ) -> Result<(), Error> {
        self.on_lane(keep, |lane, local| {
            if count <= MANY_ON_STACK {
                self.push_few(lane, local, room, count, items, step, ticks)
            } else {
                self.push_lots(lane, local, room, count, items, step, ticks)
            }
        })
    }
}

/// Item `i` of a `push_many`: its metric (looked up in the lane) and value.
trait Items {
    fn get(
        &self,
        lanes: &Lanes,
        lane: &Lane,
        local: &mut Local,
        i: usize,
    ) -> Result<(Metric, f64), Error>;
}

struct ByBytes<F>(F);

impl<'a, F: Fn(usize) -> Result<(&'a [u8], f64), Error>> Items for ByBytes<F> {
    #[inline(always)]
    fn get(
        &self,
        lanes: &Lanes,
        lane: &Lane,
        local: &mut Local,
        i: usize,
    ) -> Result<(Metric, f64), Error> {
        let (name, value) = (self.0)(i)?;
        Ok((lanes.metric(lane, local, name)?, value))
    }
}

struct ByCStr<'a> {
    names: &'a [*const std::ffi::c_char],
    values: &'a [f64],
}

impl Items for ByCStr<'_> {
    #[inline(always)]
    fn get(
        &self,
        lanes: &Lanes,
        lane: &Lane,
        local: &mut Local,
        i: usize,
    ) -> Result<(Metric, f64), Error> {
        let name = self.names[i];
        if name.is_null() {
            return Err(Error::new(
                Status::NullArgument,
                format!("metrics[{i}] is NULL"),
            ));
        }
        // SAFETY: non-NULL names are NUL-terminated (push_many_c's contract).
        let m = unsafe { lanes.metric_c(lane, local, name.cast()) }?;
        Ok((m, self.values[i]))
    }
}

/// The slot of a name's address in a lane's cache of names.
#[inline(always)]
fn cache_key(ptr: *const u8) -> usize {
    ((ptr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
}

/// Whether the NUL-terminated string at `p` is the `n` bytes at `a`. A
/// short name is compared byte by byte, reading `p` only up to its first byte
/// that differs or is NUL; a longer one is measured (`strlen` reads words)
/// and compared a word at a time, which is faster from 8 bytes on.
///
/// # Safety
/// `a` is valid for `n` bytes; `p` is NUL-terminated.
#[inline(always)]
unsafe fn c_name_is(a: *const u8, n: usize, p: *const u8) -> bool {
    if n >= 8 {
        // SAFETY: forwarded contract.
        return unsafe { long_c_name_is(a, n, p) };
    }
    // SAFETY: every read of p is at or before its terminator (the loop stops
    // at a NUL), every read of a is below n.
    unsafe {
        for i in 0..n {
            let c = *p.add(i);
            if c == 0 || c != *a.add(i) {
                return false;
            }
        }
        *p.add(n) == 0
    }
}

/// [`c_name_is`] for names of 8 bytes or more, kept out of line so the
/// short names' loop stays small where it is inlined.
///
/// # Safety
/// As [`c_name_is`].
#[inline(never)]
unsafe fn long_c_name_is(a: *const u8, n: usize, p: *const u8) -> bool {
    // SAFETY: p is NUL-terminated.
    let b = unsafe { std::ffi::CStr::from_ptr(p.cast()) }.to_bytes();
    // SAFETY: a is valid for n bytes, which is b's length here.
    b.len() == n && unsafe { same_bytes(a, b) }
}

/// Whether the `b.len()` bytes at `a` equal `b`; short names without a
/// call to `memcmp` (two overlapping word compares).
///
/// # Safety
/// `a` is valid for `b.len()` bytes.
#[inline(always)]
unsafe fn same_bytes(a: *const u8, b: &[u8]) -> bool {
    let n = b.len();
    let p = b.as_ptr();
    // SAFETY: every read lies within the n bytes of a and of b.
    unsafe {
        if (8..=16).contains(&n) {
            let w = |x: *const u8, at: usize| x.add(at).cast::<u64>().read_unaligned();
            w(a, 0) == w(p, 0) && w(a, n - 8) == w(p, n - 8)
        } else if (4..8).contains(&n) {
            let w = |x: *const u8, at: usize| x.add(at).cast::<u32>().read_unaligned();
            w(a, 0) == w(p, 0) && w(a, n - 4) == w(p, n - 4)
        } else {
            std::slice::from_raw_parts(a, n) == b
        }
    }
}

const MANY_ON_STACK: usize = 32;

impl Lanes {
    /// `push_many` of a few points: each item is looked at once, its metric
    /// kept on the stack until all are known to be valid.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn push_few(
        &self,
        lane: &Lane,
        local: &mut Local,
        room: &impl Room,
        count: usize,
        items: &impl Items,
        step: i64,
        ticks: u64,
    ) -> Result<(), Error> {
        let mut found = [std::mem::MaybeUninit::<(Metric, f64)>::uninit(); MANY_ON_STACK];
        for (i, slot) in found.iter_mut().enumerate().take(count) {
            slot.write(items.get(self, lane, local, i)?);
        }
        let need = count as u64;
        if local.head + need - local.tail_seen > lane.capacity {
            self.make_room(lane, local, room, need)?;
        }
        let head = with_steps(lane, step, |key| {
            let mut head = local.head;
            for slot in &found[..count] {
                // SAFETY: the first `count` entries were written above.
                let (m, value) = unsafe { slot.assume_init() };
                write_slot(lane, head, m.id, value, next_step(m, step, key), ticks);
                head += 1;
            }
            Ok(head)
        })?;
        local.head = head;
        lane.header().head.store(head, Ordering::Release);
        Ok(())
    }

    /// `push_many` of many points: validates every item, then pushes.
    #[allow(clippy::too_many_arguments)]
    fn push_lots(
        &self,
        lane: &Lane,
        local: &mut Local,
        room: &impl Room,
        count: usize,
        items: &impl Items,
        step: i64,
        ticks: u64,
    ) -> Result<(), Error> {
        for i in 0..count {
            items.get(self, lane, local, i)?;
        }
        let need = count as u64;
        if local.head + need - local.tail_seen > lane.capacity {
            self.make_room(lane, local, room, need)?;
        }
        // Every metric was looked up above, so the lookups below find it in
        // the lane's own index at worst and never `adopt` inside the loop.
        let start = local.head;
        let head = with_steps(lane, step, |key| {
            let mut head = start;
            for i in 0..count {
                let (m, value) = items.get(self, lane, local, i)?;
                write_slot(lane, head, m.id, value, next_step(m, step, key), ticks);
                head += 1;
            }
            Ok(head)
        })?;
        local.head = head;
        lane.header().head.store(head, Ordering::Release);
        Ok(())
    }
}

/// Runs a write loop; with automatic steps (`step < 0`) the lane is marked
/// active around it so that `f` may advance the steps of the metrics it owns
/// without atomic read-modify-writes: `f` gets the lane's key (0 otherwise).
/// One fence per call instead of a locked add per point.
#[inline(always)]
fn with_steps<T>(
    lane: &Lane,
    step: i64,
    f: impl FnOnce(u64) -> Result<T, Error>,
) -> Result<T, Error> {
    if step >= 0 {
        return f(0);
    }
    lane.active.0.store(true, Ordering::Relaxed);
    // Pairs with the one in `Lanes::adopt`.
    light_barrier();
    let r = f(lane.key);
    lane.active.0.store(false, Ordering::Release);
    r
}

/// Whether `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` works in this
/// process (Linux 4.14 and later, unless a seccomp filter forbids it):
/// registered once, by the first run (`Run::init_with`, else
/// [`Lanes::new`]). Registering is quick while the process has one thread;
/// once it has several the kernel synchronises every CPU first, which took
/// 15 ms on a 2-core VM.
pub(crate) fn asymmetric_barriers() -> bool {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(|| {
        const QUERY: libc::c_long = 0;
        const PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
        const REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;
        // SAFETY: membarrier with these commands has no memory arguments.
        unsafe {
            let mask = libc::syscall(libc::SYS_membarrier, QUERY, 0);
            mask >= 0
                && mask & PRIVATE_EXPEDITED != 0
                && libc::syscall(libc::SYS_membarrier, REGISTER_PRIVATE_EXPEDITED, 0) == 0
        }
    })
}

/// The owner's side of the step-ownership handshake, once per call: with
/// membarrier only a compiler barrier (the other side makes every running
/// thread execute a full barrier), else a full fence.
#[inline(always)]
fn light_barrier() {
    if asymmetric_barriers() {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        std::sync::atomic::fence(Ordering::SeqCst);
    }
}

/// The other side, on the cold path (a lane's first use of a metric another
/// lane owns).
fn heavy_barrier() {
    std::sync::atomic::fence(Ordering::SeqCst);
    if asymmetric_barriers() {
        const PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
        // SAFETY: as in `asymmetric_barriers`; registered there.
        let rc = unsafe { libc::syscall(libc::SYS_membarrier, PRIVATE_EXPEDITED, 0) };
        // Registered, so it does not fail (EPERM only when unregistered).
        // Should it ever, a pause lets the owners' threads pass a context
        // switch (a full barrier) in all likelihood.
        if rc != 0 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// The step of a point: `step`, or the metric's next one when negative.
/// `key` is the lane's key inside [`with_steps`] (plain load and store on a
/// counter the lane owns), else 0 (`fetch_add`).
#[inline(always)]
fn next_step(m: Metric, step: i64, key: u64) -> i64 {
    // SAFETY: the counter points into the run's names table, alive for the run.
    let counter = unsafe { &*m.step };
    if step < 0 {
        if key != 0 && counter.owner.load(Ordering::Relaxed) == key {
            let s = counter.next.load(Ordering::Relaxed);
            counter.next.store(s.wrapping_add(1), Ordering::Relaxed);
            s
        } else {
            counter.next.fetch_add(1, Ordering::Relaxed)
        }
    } else {
        counter
            .next
            .store(step.saturating_add(1), Ordering::Relaxed);
        step
    }
}

#[inline(always)]
fn write_slot(lane: &Lane, pos: u64, id: u32, value: f64, step: i64, ticks: u64) {
    Ring::of(lane).write(pos, id, value, step, ticks)
}

/// A lane's slots, read once before a write loop (the compiler cannot keep
/// them in registers across the loop's stores on its own).
#[derive(Clone, Copy)]
struct Ring {
    slots: *mut u8,
    mask: u64,
}

impl Ring {
    #[inline(always)]
    fn of(lane: &Lane) -> Ring {
        Ring {
            // SAFETY: HEADER < the mapping's length.
            slots: unsafe { lane.map.ptr.add(HEADER) },
            mask: lane.capacity - 1,
        }
    }

    #[inline(always)]
    fn write(self, pos: u64, id: u32, value: f64, step: i64, ticks: u64) {
        // SAFETY: (pos & mask) < capacity: the slot lies inside the mapping.
        let s = unsafe { self.slots.add((pos & self.mask) as usize * SLOT) }.cast::<u64>();
        write_sealed(s, pos, id, value, step, ticks)
    }
}

#[inline(always)]
fn write_sealed(s: *mut u64, pos: u64, id: u32, value: f64, step: i64, ticks: u64) {
    let v = value.to_bits();
    let sealed = seal(pos, id, v, step, ticks);
    // SAFETY: the owner writes only slots in head..tail+capacity, which the
    // writer does not read until head passes them. The seal goes last: a
    // slot cut short by the death of the process fails its check.
    unsafe {
        s.write(v);
        s.add(1).write(step as u64);
        s.add(2).write(ticks);
        std::sync::atomic::compiler_fence(Ordering::Release);
        (*s.add(3).cast::<AtomicU64>()).store(sealed, Ordering::Relaxed);
    }
}

fn reentered() -> Error {
    Error::new(
        Status::Internal,
        "simtrack_log called from a signal handler that interrupted a simtrack_log on the same thread: not recorded",
    )
}

fn no_thread_state() -> Error {
    Error::new(
        Status::Internal,
        "this thread is ending: its logging buffer is gone, the value is not recorded",
    )
}

/// The points recovered from a dead process's lanes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub points: u64,
    /// Points whose metric name was not on disk (not delivered).
    pub nameless: u64,
}

/// Moves what a process that died left in its lanes into `records.log`
/// (exactly once; see the module docs), then removes the lane files. The
/// caller holds the run's lock.
pub fn recover(dir: &RunDir) -> Result<Recovered, Error> {
    let lanes_dir = dir.root.join("lanes");
    if !lanes_dir.is_dir() {
        return Ok(Recovered::default());
    }
    let names = read_names(&lanes_dir.join("names"));
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&lanes_dir)
        .map_err(|e| Error::io(format!("cannot list {}", lanes_dir.display()), e))?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse::<u64>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    files.sort();
    let mut lanes = Vec::new();
    for (_, path) in &files {
        if let Some(lane) = open_lane(path)? {
            lanes.push(lane);
        }
    }
    // A claim left active: the frame is in the log, or it is cut off.
    for lane in &lanes {
        let h = lane.header();
        if h.claim_active.load(Ordering::Acquire) == 1 {
            let offset = h.claim_offset.load(Ordering::Relaxed);
            let written = crate::spool::SpoolReader::open(dir, 0, offset)
                .and_then(|mut r| r.next_entry())
                .is_ok_and(|e| e.is_some_and(|e| e.offset == offset));
            if !written {
                crate::spool::cut(dir, offset)?;
            }
            lane.settle(written);
        }
    }
    let mut spool = crate::spool::SpoolWriter::reopen(dir)?;
    let mut out = Recovered::default();
    let mut buf = Vec::new();
    for lane in &lanes {
        let (start, spt) = lane.clock();
        loop {
            buf.clear();
            let end = lane.read_sealed(crate::worker::BATCH_POINTS, &mut buf);
            if buf.is_empty() {
                break;
            }
            let mut batch = crate::record::MetricBatch {
                names: Vec::new(),
                points: Vec::with_capacity(buf.len()),
            };
            let mut local: FxHashMap<u32, u32> = FxHashMap::default();
            for p in &buf {
                let Some(name) = names.get(p.name as usize) else {
                    out.nameless += 1;
                    continue;
                };
                let i = *local.entry(p.name).or_insert_with(|| {
                    batch.names.push(name.clone());
                    (batch.names.len() - 1) as u32
                });
                batch.points.push(crate::record::Point {
                    name: i,
                    value: p.value,
                    step: p.step,
                    time: p.ticks.saturating_sub(start) as f64 * spt,
                });
            }
            let n = batch.points.len() as u64;
            lane.claim(end, spool.len());
            let r = if n > 0 {
                spool
                    .append(&crate::record::Record::Metrics(batch))
                    .map(drop)
            } else {
                Ok(())
            };
            lane.settle(r.is_ok());
            r?;
            out.points += n;
        }
    }
    spool.sync()?;
    drop(lanes);
    let _ = std::fs::remove_dir_all(&lanes_dir);
    Ok(out)
}

fn open_lane(path: &Path) -> Result<Option<Lane>, Error> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let len = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    if len < HEADER {
        return Ok(None);
    }
    let mut head = [0u8; 16];
    use std::os::unix::fs::FileExt;
    if file.read_exact_at(&mut head, 0).is_err() {
        return Ok(None);
    }
    let magic = u64::from_le_bytes(head[0..8].try_into().unwrap_or_default());
    let capacity = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
    if magic != LANE_MAGIC
        || !capacity.is_power_of_two()
        || (capacity as usize).checked_mul(SLOT).map(|b| b + HEADER) != Some(len)
    {
        return Ok(None);
    }
    Lane::map_file(&file, len, capacity, Some(path.to_path_buf()))
        .map(Some)
        .map_err(|e| Error::io(format!("cannot map {}", path.display()), e))
}

/// The names in `lanes/names`, up to the first damaged one.
fn read_names(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap_or_default());
        let Some(name) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        if crc32fast::hash(name) != crc {
            break;
        }
        let Ok(s) = std::str::from_utf8(name) else {
            break;
        };
        out.push(s.to_owned());
        at += 8 + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoWait;
    impl Room for NoWait {
        fn wait(&self, _: &Lane, _: u64) -> Result<(), Error> {
            Err(Error::new(Status::Io, "full"))
        }
    }

    #[test]
    fn a_torn_slot_ends_the_lane_and_earlier_points_are_recovered() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        let mut spool = crate::spool::SpoolWriter::create(&dir).unwrap();
        spool
            .append(&crate::record::Record::Events(vec![]))
            .unwrap();
        drop(spool);
        let lanes = Lanes::new(&dir, 4096).unwrap();
        let alive = Arc::new(());
        let keep = Arc::downgrade(&alive);
        for i in 0..10 {
            lanes.push(&keep, &NoWait, b"x", i as f64, i, 0).unwrap();
        }
        let lane = lanes.all.lock()[0].clone();
        // Tear slot 7: its value changes after it was sealed.
        // SAFETY: test-only write inside the mapping.
        unsafe { lane.slot(7).write(12345) };
        let got = recover(&dir).unwrap();
        assert_eq!(got.points, 7);
        let entries = crate::spool::SpoolReader::open(&dir, 0, 0)
            .unwrap()
            .read_all()
            .unwrap();
        let crate::record::Record::Metrics(b) = &entries[1].record else {
            panic!("{:?}", entries[1].record)
        };
        assert_eq!(b.names, ["x"]);
        let steps: Vec<i64> = b.points.iter().map(|p| p.step).collect();
        assert_eq!(steps, (0..7).collect::<Vec<_>>());
        assert!(!dir.root.join("lanes").exists());
    }

    /// Threads that start logging the same metrics at once (one of them
    /// first owns each metric, the others make it shared) get every
    /// automatic step exactly once, through `push`, `push_many` and
    /// `push_many_c` alike.
    #[test]
    fn threads_sharing_metrics_get_unique_automatic_steps() {
        const THREADS: usize = 4;
        const CALLS: i64 = 2000;
        for round in 0..20 {
            let tmp = tempfile::tempdir().unwrap();
            let dir = RunDir::new(tmp.path().join("r"));
            crate::spool::SpoolWriter::create(&dir).unwrap();
            let lanes = Arc::new(Lanes::new(&dir, 1 << 15).unwrap());
            let alive = Arc::new(());
            let start = Arc::new(std::sync::Barrier::new(THREADS));
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (lanes, keep, start) =
                        (lanes.clone(), Arc::downgrade(&alive), start.clone());
                    std::thread::spawn(move || {
                        let names: [*const std::ffi::c_char; 2] = [c"a".as_ptr(), c"b".as_ptr()];
                        start.wait();
                        for i in 0..CALLS {
                            match (t + round) % 3 {
                                0 => lanes.push(&keep, &NoWait, b"a", 0.0, -1, 0).unwrap(),
                                1 => lanes
                                    .push_many(&keep, &NoWait, 1, |_| Ok((&b"a"[..], 0.0)), -1, 0)
                                    .unwrap(),
                                // SAFETY: both names are C string literals.
                                _ => unsafe {
                                    lanes.push_many_c(&keep, &NoWait, &names[..1], &[0.0], -1, 0)
                                }
                                .unwrap(),
                            }
                            // SAFETY: as above.
                            unsafe {
                                lanes.push_many_c(
                                    &keep,
                                    &NoWait,
                                    &names,
                                    &[t as f64, i as f64],
                                    -1,
                                    0,
                                )
                            }
                            .unwrap();
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(
                recover(&dir).unwrap().points,
                THREADS as u64 * CALLS as u64 * 3
            );
            let mut steps: FxHashMap<String, Vec<i64>> = FxHashMap::default();
            for e in crate::spool::SpoolReader::open(&dir, 0, 0)
                .unwrap()
                .read_all()
                .unwrap()
            {
                if let crate::record::Record::Metrics(b) = &e.record {
                    for p in &b.points {
                        steps
                            .entry(b.names[p.name as usize].clone())
                            .or_default()
                            .push(p.step);
                    }
                }
            }
            for (name, n) in [("a", 2), ("b", 1)] {
                let s = steps.get_mut(name).unwrap();
                s.sort_unstable();
                let want: Vec<i64> = (0..n * THREADS as i64 * CALLS).collect();
                assert!(*s == want, "round {round}: steps of {name} not unique");
            }
        }
    }

    /// A name check made for a name at any alignment accepts exactly that
    /// name there, and reads nothing past a string that ends at the last
    /// byte of a page followed by an unmapped one.
    #[test]
    fn memo_name_checks_match_only_the_same_name_and_stay_in_the_page() {
        // SAFETY: two fresh anonymous pages; the second made inaccessible.
        let page = unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            assert_eq!(
                libc::mprotect(p.cast::<u8>().add(4096).cast(), 4096, libc::PROT_NONE),
                0
            );
            p.cast::<u8>()
        };
        let put = |at: usize, s: &[u8]| {
            // SAFETY: at + s.len() < 4096, inside the first page.
            unsafe {
                std::ptr::copy_nonoverlapping(s.as_ptr(), page.add(at), s.len());
                *page.add(at + s.len()) = 0;
            }
        };
        let names: Vec<Vec<u8>> = (1..20)
            .map(|n| (0..n).map(|i| b'a' + (i % 26) as u8).collect())
            .collect();
        for name in &names {
            for end in [4095usize, 4000] {
                for shift in 0..8 {
                    // The name (and its NUL) ends `shift` bytes before `end`.
                    let at = end - shift - name.len();
                    let check = NameCheck::new(
                        // SAFETY: inside the first page.
                        unsafe { page.add(at) },
                        name.as_ptr(),
                        name,
                    );
                    let is = |s: &[u8]| {
                        put(at, s);
                        // SAFETY: put left a NUL-terminated string at page+at.
                        unsafe { check.matches(page.add(at)) }
                    };
                    assert!(is(name), "{name:?} at {at}");
                    let mut longer = name.clone();
                    longer.push(b'z');
                    if at + longer.len() < 4096 {
                        assert!(!is(&longer), "{longer:?} at {at}");
                    }
                    assert!(!is(&name[..name.len() - 1]), "prefix of {name:?} at {at}");
                    for i in 0..name.len() {
                        let mut other = name.clone();
                        other[i] ^= 1;
                        assert!(!is(&other), "{other:?} at {at}");
                    }
                    assert!(is(name));
                }
            }
        }
        // SAFETY: the mapping made above.
        unsafe { libc::munmap(page.cast(), 8192) };
    }

    /// `push_many_c` with the same name array again and again: names whose
    /// bytes change at the same address, an entry replaced, a NULL entry,
    /// two arrays in turn and a shorter count all log under the right names.
    #[test]
    fn memoised_name_arrays_follow_changes_of_the_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        crate::spool::SpoolWriter::create(&dir).unwrap();
        let lanes = Lanes::new(&dir, 1 << 12).unwrap();
        let alive = Arc::new(());
        let keep = Arc::downgrade(&alive);
        let mut buf = *b"temp_a\0\0\0";
        let other = c"pressure";
        let mut names: [*const std::ffi::c_char; 3] =
            [c"x".as_ptr(), buf.as_ptr().cast(), c"y".as_ptr()];
        let second: [*const std::ffi::c_char; 2] = [c"y".as_ptr(), c"x".as_ptr()];
        let mut want: Vec<(String, f64)> = Vec::new();
        let push =
            |names: &[*const std::ffi::c_char], values: &[f64], want: &mut Vec<(String, f64)>| {
                // SAFETY: every name is NUL-terminated (or NULL).
                let r = unsafe { lanes.push_many_c(&keep, &NoWait, names, values, -1, 0) };
                if r.is_ok() {
                    for (n, v) in names.iter().zip(values) {
                        // SAFETY: as above, and non-NULL since the call succeeded.
                        let n = unsafe { std::ffi::CStr::from_ptr(*n) };
                        want.push((n.to_str().unwrap().to_owned(), *v));
                    }
                }
                r
            };
        let mut v = 0.0;
        let mut next = || {
            v += 1.0;
            [v, v + 0.25, v + 0.5]
        };
        for round in 0..4 {
            push(&names, &next(), &mut want).unwrap();
            push(&names, &next(), &mut want).unwrap();
            // Same address, other bytes: longer, shorter, same length.
            buf[..9].copy_from_slice(match round % 3 {
                0 => b"temp_bb\0\0",
                1 => b"temp\0\0\0\0\0",
                _ => b"temp_c\0\0\0",
            });
            push(&names, &next(), &mut want).unwrap();
            push(&second, &next()[..2], &mut want).unwrap();
            push(&names, &next(), &mut want).unwrap();
            names[1] = other.as_ptr();
            push(&names, &next(), &mut want).unwrap();
            push(&names[..2], &next()[..2], &mut want).unwrap();
            names[1] = std::ptr::null();
            assert_eq!(
                push(&names, &next(), &mut want).unwrap_err().status,
                Status::NullArgument
            );
            names[1] = buf.as_ptr().cast();
            push(&names, &next(), &mut want).unwrap();
        }
        recover(&dir).unwrap();
        let mut got = Vec::new();
        for e in crate::spool::SpoolReader::open(&dir, 0, 0)
            .unwrap()
            .read_all()
            .unwrap()
        {
            if let crate::record::Record::Metrics(b) = &e.record {
                got.extend(
                    b.points
                        .iter()
                        .map(|p| (b.names[p.name as usize].clone(), p.value)),
                );
            }
        }
        assert_eq!(got, want);
    }

    #[test]
    fn c_names_match_only_the_same_bytes_and_length() {
        let names: Vec<Vec<u8>> = (0..20)
            .map(|n| (0..n).map(|i| b'a' + i as u8).collect())
            .collect();
        for a in &names {
            for b in &names {
                let c = std::ffi::CString::new(b.clone()).unwrap();
                // SAFETY: a is valid for its length; c is NUL-terminated.
                let same = unsafe { c_name_is(a.as_ptr(), a.len(), c.as_ptr().cast()) };
                assert_eq!(same, a == b, "{a:?} vs {b:?}");
                if !b.is_empty() {
                    let mut d = b.clone();
                    *d.last_mut().unwrap() ^= 1;
                    let d = std::ffi::CString::new(d).unwrap();
                    // SAFETY: as above.
                    assert!(!unsafe { c_name_is(a.as_ptr(), a.len(), d.as_ptr().cast()) });
                }
            }
        }
    }

    #[test]
    fn short_names_compare_byte_for_byte() {
        let names: Vec<Vec<u8>> = (0..24)
            .map(|n| (0..n).map(|i| b'a' + i as u8).collect())
            .collect();
        for a in &names {
            for b in &names {
                if a.len() != b.len() {
                    continue;
                }
                // SAFETY: a is valid for its length, which equals b's.
                assert_eq!(unsafe { same_bytes(a.as_ptr(), b) }, a == b);
                let mut c = b.clone();
                for i in 0..c.len() {
                    c[i] ^= 1;
                    // SAFETY: as above.
                    assert!(!unsafe { same_bytes(a.as_ptr(), &c) });
                    c[i] ^= 1;
                }
            }
        }
    }

    #[test]
    fn lane_files_are_private_to_their_owner() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        crate::spool::SpoolWriter::create(&dir).unwrap();
        let lanes = Lanes::new(&dir, 4096).unwrap();
        let alive = Arc::new(());
        lanes
            .push(&Arc::downgrade(&alive), &NoWait, b"x", 1.0, 0, 0)
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let root = dir.root.join("lanes");
        assert_eq!(mode(&root), 0o700);
        for f in ["0", "names"] {
            assert_eq!(mode(&root.join(f)), 0o600, "{f}");
        }
    }

    #[test]
    fn a_full_lane_refuses_without_overwriting() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        crate::spool::SpoolWriter::create(&dir).unwrap();
        let lanes = Lanes::new(&dir, 4096).unwrap();
        let alive = Arc::new(());
        let keep = Arc::downgrade(&alive);
        for i in 0..4096 {
            lanes.push(&keep, &NoWait, b"x", 0.0, i, 0).unwrap();
        }
        assert_eq!(
            lanes
                .push(&keep, &NoWait, b"x", 0.0, 9, 0)
                .unwrap_err()
                .status,
            Status::Io
        );
        assert_eq!(recover(&dir).unwrap().points, 4096);
    }

    #[test]
    fn a_claim_settles_by_what_the_log_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        let mut spool = crate::spool::SpoolWriter::create(&dir).unwrap();
        let lanes = Lanes::new(&dir, 4096).unwrap();
        let alive = Arc::new(());
        let keep = Arc::downgrade(&alive);
        for i in 0..5 {
            lanes.push(&keep, &NoWait, b"y", 1.0, i, 0).unwrap();
        }
        let lane = lanes.all.lock()[0].clone();
        // The writer wrote the frame for slots 0..3 and died before moving
        // the tail: recovery must not deliver them again.
        let batch = crate::record::MetricBatch {
            names: vec!["y".into()],
            points: (0..3)
                .map(|i| crate::record::Point {
                    name: 0,
                    value: 1.0,
                    step: i,
                    time: 0.0,
                })
                .collect(),
        };
        lane.claim(3, spool.len());
        spool
            .append(&crate::record::Record::Metrics(batch))
            .unwrap();
        drop(spool);
        assert_eq!(recover(&dir).unwrap().points, 2);
        let steps: Vec<i64> = crate::spool::SpoolReader::open(&dir, 0, 0)
            .unwrap()
            .read_all()
            .unwrap()
            .iter()
            .flat_map(|e| match &e.record {
                crate::record::Record::Metrics(b) => b.points.iter().map(|p| p.step).collect(),
                _ => vec![],
            })
            .collect();
        assert_eq!(steps, [0, 1, 2, 3, 4]);
    }
}
