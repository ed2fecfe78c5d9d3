//! Grids and array metrics: a whole field (a temperature profile along a
//! rod, a 2-D slice of a velocity field) logged at each step.
//!
//! A grid is defined once per run ([`Run::grid`]): up to three axes, each
//! with a label, units and its coordinates. [`Run::log_array`] logs one
//! array on a grid for a step.
//!
//! Bounded memory, never lost: the calling thread copies the values into
//! a file of the run's spool directory (`files/array-<uuid>.f64`: f64
//! little-endian, grid axis 0 fastest — the order a Fortran array
//! `a(nx, ny)` has in memory) and queues a small [`Record::Array`] naming
//! it. The file was made ready beforehand by the run's array thread
//! (preallocated, mapped, its pages faulted in: see [`Region`]), so the
//! call is one copy, one `memcpy` for f64 in Fortran order, with no page
//! fault and no system call on the way; the first array of a size, or one
//! when none is ready, is written with `write` instead. Either way the
//! values are in the file when the call returns and survive the death of
//! the process (they are in the OS's page cache); they are not fsynced per
//! call (8 MB per call would cost far more than the call itself), so a
//! power loss can take the last seconds, as it can for scalar values
//! between flushes. The record then travels like every other one (spool,
//! sender or `simtrack sync`, idempotency key `<run>-<seq>`).

use std::io::Write;
use std::path::Path;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Status};
use crate::record::{Record, check_metric_name, check_name, format_timestamp, now_unix};
use crate::run::Run;
use crate::transport::http::HttpTransport;
use crate::transport::{RunContext, SendError};

/// Most axes of a grid.
pub const MAX_AXES: usize = 3;

/// A grid as recorded in the spool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridSpec {
    pub name: String,
    pub labels: Vec<String>,
    pub units: Vec<String>,
    pub axes: Vec<Vec<f64>>,
}

/// One step of an array metric as recorded in the spool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrayRecord {
    pub metric: String,
    /// The grid's name (its server id is learnt when the grid is delivered).
    pub grid: String,
    pub step: i64,
    /// Seconds since the run started.
    pub time: f64,
    /// UTC, seconds since the epoch.
    pub timestamp: f64,
    /// Shape, outermost first (the grid's axis lengths reversed).
    pub shape: Vec<u64>,
    /// The values' file, in the run's files directory.
    pub stored: String,
}

/// The layout of an array in memory, relative to the grid's axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Grid axis 0 varies fastest (Fortran `a(n0, n1, n2)`).
    Fortran,
    /// The last grid axis varies fastest (C `a[n0][n1][n2]`).
    C,
}

/// Values as passed in.
#[derive(Debug, Clone, Copy)]
pub enum Values<'a> {
    F64(&'a [f64]),
    F32(&'a [f32]),
}

impl Values<'_> {
    fn len(&self) -> usize {
        match self {
            Values::F64(v) => v.len(),
            Values::F32(v) => v.len(),
        }
    }
    fn get(&self, i: usize) -> f64 {
        match self {
            Values::F64(v) => v[i],
            Values::F32(v) => v[i] as f64,
        }
    }
}

/// Most bytes of spool files kept ready for arrays (see [`Preparer`]); an
/// array larger than this is always written by the calling thread.
const MAX_READY: usize = 64 << 20;

/// Bytes after an array's values in its file: the array's record (magic,
/// length, CRC-32, JSON), so that an array whose call returned is delivered
/// even when the process died before the record reached `records.log`
/// ([`recover`]). Delivery sends the values only.
const TRAILER: usize = 4096;
const TRAILER_MAGIC: &[u8; 8] = b"STARRAY1";

/// The trailer of `record`'s file (all zero if the record does not fit).
fn trailer(record: &ArrayRecord) -> Vec<u8> {
    let mut t = vec![0u8; TRAILER];
    if let Ok(body) = serde_json::to_vec(record)
        && body.len() <= TRAILER - 16
    {
        t[16..16 + body.len()].copy_from_slice(&body);
        t[8..12].copy_from_slice(&(body.len() as u32).to_le_bytes());
        t[12..16].copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
        t[..8].copy_from_slice(TRAILER_MAGIC);
    }
    t
}

/// The record in a trailer, if it is whole.
fn read_trailer(t: &[u8]) -> Option<ArrayRecord> {
    if t.len() != TRAILER || &t[..8] != TRAILER_MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(t[8..12].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(t[12..16].try_into().ok()?);
    let body = t.get(16..16 + len)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    serde_json::from_slice(body).ok()
}

/// Most distinct array sizes files are kept ready for.
const MAX_SIZES: usize = 4;

/// The grids a run has defined (name → axis lengths) and its preparer of
/// array files.
#[derive(Debug, Default)]
pub struct Registry {
    grids: Mutex<Vec<(String, Vec<usize>)>>,
    preparer: Mutex<Option<Preparer>>,
}

/// A new file of the run's spool made ready for one array: preallocated
/// (so a full disk shows when it is made, never as a `SIGBUS` later), mapped
/// shared and its pages already faulted in writable, so that the calling
/// thread's copy into it takes no page fault and no system call. Once the
/// copy is done the values are in the file's pages, which the kernel keeps
/// when the process dies.
#[derive(Debug)]
struct Region {
    name: String,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is owned by the Region alone (moved between the
// calling thread and the preparer, never shared).
unsafe impl Send for Region {}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap, unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

impl Region {
    /// Makes `files/<name>` of `len` bytes and maps it (on the preparer).
    fn make(files: &Path, len: usize) -> std::io::Result<Region> {
        use std::os::fd::AsRawFd;
        let name = format!("array-{}.f64", uuid::Uuid::new_v4().simple());
        let path = files.join(&name);
        let made = (|| {
            let file = crate::spool::private_file()
                .create_new(true)
                .read(true)
                .write(true)
                .open(&path)?;
            // SAFETY: a valid fd; posix_fallocate returns an errno value.
            let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
            if rc != 0 {
                return Err(std::io::Error::from_raw_os_error(rc));
            }
            // SAFETY: mapping a file we opened read-write, of len bytes.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            let region = Region {
                name: name.clone(),
                ptr: ptr.cast(),
                len,
            };
            // A child of fork() does not get the mapping.
            // SAFETY: advice on our mapping; failure is harmless.
            unsafe { libc::madvise(ptr, len, libc::MADV_DONTFORK) };
            region.fault_in();
            Ok(region)
        })();
        if made.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        made
    }

    /// Faults every page in writable (`MADV_POPULATE_WRITE`, Linux 5.14;
    /// else a store of the zero each page holds).
    fn fault_in(&self) {
        const MADV_POPULATE_WRITE: libc::c_int = 23;
        // SAFETY: advice on our mapping.
        if unsafe { libc::madvise(self.ptr.cast(), self.len, MADV_POPULATE_WRITE) } == 0 {
            return;
        }
        for at in (0..self.len).step_by(4096) {
            // SAFETY: inside the mapping; the fallocated file reads zero there.
            unsafe { self.ptr.add(at).write_volatile(0) };
        }
    }
}

#[derive(Debug, Default)]
struct Stock {
    ready: Vec<Region>,
    /// Array sizes in bytes asked for, the latest first.
    sizes: Vec<usize>,
    /// Regions filled by callers, to unmap off their threads.
    used: Vec<Region>,
    /// Preparing failed (a full disk): nothing more until a caller asks.
    failed: bool,
    stop: bool,
}

impl Stock {
    /// The next size to prepare a region for: each size asked for gets up
    /// to two ready regions, all within [`MAX_READY`].
    fn next_size(&self) -> Option<usize> {
        let total: usize = self.ready.iter().map(|r| r.len).sum();
        for &size in &self.sizes {
            let have = self.ready.iter().filter(|r| r.len == size).count();
            if have < 2 && total + size <= MAX_READY {
                return Some(size);
            }
        }
        None
    }
}

#[derive(Debug, Default)]
struct PShared {
    stock: Mutex<Stock>,
    work: parking_lot::Condvar,
}

/// A thread that keeps spool files ready for the next arrays (one or two
/// per array size in use) and unmaps the filled ones: the calling thread's
/// cost is one copy into memory that is already the file's.
#[derive(Debug)]
struct Preparer {
    shared: std::sync::Arc<PShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Preparer {
    fn spawn(files: std::path::PathBuf) -> std::io::Result<Preparer> {
        let shared = std::sync::Arc::new(PShared::default());
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("simtrack-arrays".into())
            .spawn(move || prepare_loop(&s, &files))?;
        Ok(Preparer {
            shared,
            thread: Some(thread),
        })
    }

    /// Stops the thread and removes the files made ready and not used.
    fn stop(mut self, files: &Path) {
        self.shared.stock.lock().stop = true;
        self.shared.work.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut stock = self.shared.stock.lock();
        for r in stock.ready.drain(..) {
            let _ = std::fs::remove_file(files.join(&r.name));
        }
        stock.used.clear();
    }
}

fn prepare_loop(s: &PShared, files: &Path) {
    let mut stock = s.stock.lock();
    loop {
        if !stock.used.is_empty() {
            let used = std::mem::take(&mut stock.used);
            drop(stock);
            drop(used);
            stock = s.stock.lock();
            continue;
        }
        if stock.stop {
            return;
        }
        let size = if stock.failed {
            None
        } else {
            stock.next_size()
        };
        let Some(size) = size else {
            s.work.wait(&mut stock);
            continue;
        };
        drop(stock);
        let made = Region::make(files, size);
        stock = s.stock.lock();
        match made {
            Ok(r) => stock.ready.push(r),
            Err(_) => stock.failed = true,
        }
    }
}

impl Registry {
    fn lengths(&self, name: &str) -> Option<Vec<usize>> {
        self.grids
            .lock()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l.clone())
    }

    /// A region ready for an array of `bytes` bytes, if there is one; asks
    /// the preparer for the next.
    fn take_region(&self, files: &Path, bytes: usize) -> Option<Region> {
        self.ask(files, bytes, true)
    }

    /// Asks the preparer (started on first use) to keep regions of `bytes`
    /// ready, taking one that is if `take`.
    fn ask(&self, files: &Path, bytes: usize, take: bool) -> Option<Region> {
        if bytes == 0 || bytes > MAX_READY {
            return None;
        }
        let bytes = bytes + TRAILER;
        let mut p = self.preparer.lock();
        if p.is_none() {
            *p = Preparer::spawn(files.to_path_buf()).ok();
        }
        let shared = p.as_ref()?.shared.clone();
        drop(p);
        let mut stock = shared.stock.lock();
        stock.failed = false;
        match stock.sizes.iter().position(|&s| s == bytes) {
            Some(0) => {}
            Some(i) => {
                stock.sizes.remove(i);
                stock.sizes.insert(0, bytes);
            }
            None => {
                stock.sizes.insert(0, bytes);
                stock.sizes.truncate(MAX_SIZES);
            }
        }
        let region = if take {
            stock
                .ready
                .iter()
                .position(|r| r.len == bytes)
                .map(|i| stock.ready.swap_remove(i))
        } else {
            None
        };
        drop(stock);
        shared.work.notify_one();
        region
    }

    /// Gives a filled region to the preparer to unmap.
    fn give_back(&self, region: Region) {
        let shared = match &*self.preparer.lock() {
            Some(p) => p.shared.clone(),
            None => return,
        };
        shared.stock.lock().used.push(region);
        shared.work.notify_one();
    }

    /// Stops the preparer and removes the files it made ready that no
    /// array used (at the end of the run).
    pub(crate) fn close(&self, files: &Path) {
        if let Some(p) = self.preparer.lock().take() {
            p.stop(files);
        }
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        self.shared.stock.lock().stop = true;
        self.shared.work.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One axis of a grid as given.
#[derive(Debug, Clone, Copy)]
pub struct AxisDef<'a> {
    pub label: &'a str,
    pub units: &'a str,
    pub coords: &'a [f64],
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(Status::InvalidArgument, msg)
}

impl Run {
    /// Defines grid `name` with up to three axes. Defining the same name
    /// again with the same axes is a no-op; with other axes, an error.
    pub fn grid(&self, name: &str, axes: &[AxisDef<'_>]) -> Result<(), Error> {
        check_name("grid name", name)?;
        if axes.is_empty() || axes.len() > MAX_AXES {
            return Err(invalid(format!(
                "grid '{name}': a grid has 1 to {MAX_AXES} axes, not {}",
                axes.len()
            )));
        }
        for (i, a) in axes.iter().enumerate() {
            if a.coords.is_empty() {
                return Err(invalid(format!(
                    "grid '{name}': axis {i} has no coordinates"
                )));
            }
            if a.coords.iter().any(|c| !c.is_finite()) {
                return Err(invalid(format!(
                    "grid '{name}': axis {i} has a coordinate that is not finite"
                )));
            }
            let up = a.coords.windows(2).all(|w| w[0] <= w[1]);
            let down = a.coords.windows(2).all(|w| w[0] >= w[1]);
            if !up && !down {
                return Err(invalid(format!(
                    "grid '{name}': axis {i} coordinates are not ordered"
                )));
            }
        }
        let lengths: Vec<usize> = axes.iter().map(|a| a.coords.len()).collect();
        let Some((reg, dir, _, _)) = self.grid_parts() else {
            return Ok(());
        };
        {
            let mut g = reg.grids.lock();
            if let Some((_, have)) = g.iter().find(|(n, _)| n == name) {
                if *have == lengths {
                    return Ok(());
                }
                return Err(invalid(format!(
                    "grid '{name}' is already defined with axis lengths {have:?}"
                )));
            }
            // Files for arrays on this grid are made ready from now on,
            // so that even the first one costs a copy only.
            if let Some(bytes) = lengths.iter().try_fold(8usize, |b, &l| b.checked_mul(l)) {
                reg.ask(&dir.files(), bytes, false);
            }
            g.push((name.to_owned(), lengths));
        }
        self.push_record(Record::Grid(GridSpec {
            name: name.to_owned(),
            labels: axes.iter().map(|a| a.label.to_owned()).collect(),
            units: axes.iter().map(|a| a.units.to_owned()).collect(),
            axes: axes.iter().map(|a| a.coords.to_vec()).collect(),
        }));
        Ok(())
    }

    /// Logs `values` (laid out in `order` over the axes of grid `grid`) as
    /// step `step` of array metric `metric`.
    pub fn log_array(
        &self,
        metric: &str,
        grid: &str,
        values: Values<'_>,
        order: Order,
        step: i64,
    ) -> Result<(), Error> {
        check_metric_name(metric)?;
        if step < 0 {
            return Err(invalid("step must not be negative"));
        }
        let Some((reg, dir, start, worker)) = self.grid_parts() else {
            return Ok(());
        };
        let lengths = reg.lengths(grid).ok_or_else(|| {
            invalid(format!(
                "grid '{grid}' is not defined in this run (simtrack_grid first)"
            ))
        })?;
        let want: usize = lengths.iter().product();
        if values.len() != want {
            return Err(invalid(format!(
                "array '{metric}': {} values given, grid '{grid}' has {want} points {lengths:?}",
                values.len()
            )));
        }
        let files = dir.files();
        let mut record = ArrayRecord {
            metric: metric.to_owned(),
            grid: grid.to_owned(),
            step,
            time: start.elapsed().as_secs_f64(),
            timestamp: now_unix(),
            shape: lengths.iter().rev().map(|l| *l as u64).collect(),
            stored: String::new(),
        };
        // Fast path: one copy into a spool file made ready beforehand.
        if let Some(region) = reg.take_region(&files, want * 8) {
            // SAFETY: the region maps want * 8 + TRAILER writable bytes,
            // its own.
            let out = unsafe { std::slice::from_raw_parts_mut(region.ptr, region.len) };
            let (data, tail) = out.split_at_mut(want * 8);
            fill(data, values, order, &lengths);
            record.stored = region.name.clone();
            tail.copy_from_slice(&trailer(&record));
            worker.push_record(Record::Array(record));
            reg.give_back(region);
            return Ok(());
        }
        record.stored = format!("array-{}.f64", uuid::Uuid::new_v4().simple());
        let path = files.join(&record.stored);
        write_values(&path, values, order, &lengths, &trailer(&record))
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        self.push_record(Record::Array(record));
        Ok(())
    }
}

/// Writes `values` into `out` (8 bytes each) as f64 little-endian, axis 0
/// fastest.
fn fill(out: &mut [u8], values: Values<'_>, order: Order, lengths: &[usize]) {
    match (values, order == Order::Fortran || lengths.len() == 1) {
        #[cfg(target_endian = "little")]
        (Values::F64(v), true) => {
            // SAFETY: an f64 slice is valid as bytes of 8x its length; on a
            // little-endian target they are the stored format.
            let bytes = unsafe {
                std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v))
            };
            out.copy_from_slice(bytes);
        }
        (Values::F32(v), true) => {
            for (o, x) in out.chunks_exact_mut(8).zip(v) {
                o.copy_from_slice(&f64::from(*x).to_le_bytes());
            }
        }
        (_, natural) => {
            for (i, o) in out.chunks_exact_mut(8).enumerate() {
                let src = if natural { i } else { c_index(i, lengths) };
                o.copy_from_slice(&values.get(src).to_le_bytes());
            }
        }
    }
}

/// Writes `values` as f64 little-endian, axis 0 fastest.
fn write_values(
    path: &Path,
    values: Values<'_>,
    order: Order,
    lengths: &[usize],
    trailer: &[u8],
) -> std::io::Result<()> {
    let mut f = crate::spool::private_file()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    let r = (|| {
        match (values, order == Order::Fortran || lengths.len() == 1) {
            #[cfg(target_endian = "little")]
            (Values::F64(v), true) => {
                // SAFETY: an f64 slice is valid as bytes of 8x its length;
                // on a little-endian target they are the stored format.
                let bytes = unsafe {
                    std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v))
                };
                f.write_all(bytes)?;
            }
            (_, natural) => {
                let n = values.len();
                let mut buf = Vec::with_capacity(64 * 1024);
                let dims: Vec<usize> = lengths.to_vec();
                for i in 0..n {
                    let src = if natural { i } else { c_index(i, &dims) };
                    buf.extend_from_slice(&values.get(src).to_le_bytes());
                    if buf.len() >= 64 * 1024 {
                        f.write_all(&buf)?;
                        buf.clear();
                    }
                }
                f.write_all(&buf)?;
            }
        }
        f.write_all(trailer)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// For the `i`-th element in axis-0-fastest order, its index in C order
/// (last axis fastest).
fn c_index(i: usize, dims: &[usize]) -> usize {
    let mut rem = i;
    let mut idx = [0usize; MAX_AXES];
    for (k, d) in dims.iter().enumerate() {
        idx[k] = rem % d;
        rem /= d;
    }
    let mut c = 0;
    for (k, d) in dims.iter().enumerate() {
        c = c * d + idx[k];
    }
    c
}

/// Queues the records of arrays whose call returned but whose record never
/// reached `records.log` (the process died first), from their files'
/// trailers; removes array files that no record names and that hold none
/// (made ready and never used, or cut short by the death). Exactly once:
/// a file a record names is left alone. The caller holds the run's lock.
/// Returns how many arrays it recovered.
pub fn recover(dir: &crate::spool::RunDir) -> Result<u64, Error> {
    let files = dir.files();
    let Ok(list) = std::fs::read_dir(&files) else {
        return Ok(0);
    };
    let arrays: Vec<String> = list
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("array-") && n.ends_with(".f64"))
        .collect();
    if arrays.is_empty() {
        return Ok(0);
    }
    let mut named = std::collections::HashSet::new();
    let mut reader = crate::spool::SpoolReader::open(dir, 0, 0)?;
    while let Some(e) = reader.next_entry()? {
        if let Record::Array(a) = e.record {
            named.insert(a.stored);
        }
    }
    let mut spool = None;
    let mut recovered = 0;
    for name in arrays.iter().filter(|n| !named.contains(*n)) {
        let path = files.join(name);
        let record = read_tail(&path).and_then(|t| read_trailer(&t));
        match record {
            Some(r) if r.stored == *name => {
                if spool.is_none() {
                    spool = Some(crate::spool::SpoolWriter::reopen(dir)?);
                }
                if let Some(s) = &mut spool {
                    s.append(&Record::Array(r))?;
                }
                recovered += 1;
            }
            _ => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    if let Some(s) = &mut spool {
        s.sync()?;
    }
    Ok(recovered)
}

/// The last [`TRAILER`] bytes of a file.
fn read_tail(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let at = len.checked_sub(TRAILER as u64)?;
    let mut t = vec![0u8; TRAILER];
    f.read_exact_at(&mut t, at).ok()?;
    Some(t)
}

/// Delivers a grid: creates it on the server and remembers its id.
pub(crate) fn deliver_grid(
    t: &HttpTransport,
    run: &mut RunContext<'_>,
    key: &str,
    g: &GridSpec,
) -> Result<(), SendError> {
    let v = t.json(
        reqwest::Method::POST,
        "grids",
        Some(key),
        &json!({ "name": g.name, "grid": g.axes, "labels": g.labels, "units": g.units }),
    )?;
    let id = v
        .get("id")
        .and_then(|i| i.as_str())
        .ok_or_else(|| SendError::Rejected {
            message: format!("the server answered no id for grid {}", g.name),
        })?;
    run.state.grid_ids.insert(g.name.clone(), id.to_owned());
    Ok(())
}

/// Delivers one array: attaches its metric to the grid, then posts the
/// values (msgpack, `array` as raw f64 little-endian bytes).
pub(crate) fn deliver_array(
    t: &HttpTransport,
    run: &mut RunContext<'_>,
    key: &str,
    a: &ArrayRecord,
) -> Result<(), SendError> {
    let run_id = HttpTransport::server_id(run)?.to_owned();
    let Some(grid_id) = run.state.grid_ids.get(&a.grid).cloned() else {
        return Err(SendError::Rejected {
            message: format!("array {}: grid {} was never delivered", a.metric, a.grid),
        });
    };
    let path = run.files_dir.join(&a.stored);
    let mut data = std::fs::read(&path).map_err(|e| SendError::Rejected {
        message: format!("array {}: cannot read {}: {e}", a.metric, path.display()),
    })?;
    // The values, without the trailer (files of earlier versions have none).
    let n = a
        .shape
        .iter()
        .try_fold(8u64, |b, &l| b.checked_mul(l))
        .and_then(|b| usize::try_from(b).ok())
        .filter(|&b| b <= data.len())
        .ok_or_else(|| SendError::Rejected {
            message: format!(
                "array {}: {} holds {} bytes, fewer than its shape {:?} needs",
                a.metric,
                path.display(),
                data.len(),
                a.shape
            ),
        })?;
    data.truncate(n);
    t.json(
        reqwest::Method::PUT,
        &format!("runs/{run_id}/grids/{grid_id}"),
        Some(&format!("{key}-attach")),
        &json!({ "metric": a.metric }),
    )?;
    let mut body = Vec::with_capacity(data.len() + 256);
    encode_array(&mut body, a, &grid_id, &data);
    t.post_msgpack(&format!("runs/{run_id}/metrics/"), key, body)
}

fn encode_array(buf: &mut Vec<u8>, a: &ArrayRecord, grid_id: &str, data: &[u8]) {
    use rmp::encode::{
        write_array_len, write_bin, write_f64, write_map_len, write_sint, write_str, write_uint,
    };
    // Writes to a Vec cannot fail.
    let _ = write_array_len(buf, 1);
    let _ = write_map_len(buf, 7);
    let _ = write_str(buf, "metric");
    let _ = write_str(buf, &a.metric);
    let _ = write_str(buf, "grid");
    let _ = write_str(buf, grid_id);
    let _ = write_str(buf, "step");
    let _ = write_sint(buf, a.step);
    let _ = write_str(buf, "time");
    let _ = write_f64(buf, a.time);
    let _ = write_str(buf, "timestamp");
    let _ = write_str(buf, &format_timestamp(a.timestamp));
    let _ = write_str(buf, "shape");
    let _ = write_array_len(buf, a.shape.len() as u32);
    for d in &a.shape {
        let _ = write_uint(buf, *d);
    }
    let _ = write_str(buf, "array");
    let _ = write_bin(buf, data);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The preparer keeps files of the size asked for ready (preallocated,
    /// mapped), a filled one keeps its values, and closing removes the
    /// ready files no array used.
    #[test]
    fn regions_are_made_ready_and_unused_ones_removed_at_close() {
        let tmp = tempfile::tempdir().unwrap();
        let files = tmp.path();
        let reg = Registry::default();
        assert!(reg.ask(files, 0, false).is_none());
        assert!(reg.ask(files, MAX_READY + 1, true).is_none());
        let size = 3 * 4096 + 8;
        reg.ask(files, size, false);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let region = loop {
            if let Some(r) = reg.take_region(files, size) {
                break r;
            }
            assert!(std::time::Instant::now() < deadline, "no region made ready");
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(region.len, size + TRAILER);
        let path = files.join(&region.name);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            (size + TRAILER) as u64
        );
        let values: Vec<f64> = (0..size / 8).map(|i| i as f64 * 0.5).collect();
        // SAFETY: the region maps size + TRAILER writable bytes.
        let out = unsafe { std::slice::from_raw_parts_mut(region.ptr, region.len) };
        fill(
            &mut out[..size],
            Values::F64(&values),
            Order::Fortran,
            &[size / 8],
        );
        let name = region.name.clone();
        reg.give_back(region);
        // The next ones are prepared meanwhile (two per size).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::fs::read_dir(files).unwrap().count() < 3 {
            assert!(std::time::Instant::now() < deadline, "no next region");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        reg.close(files);
        let left: Vec<String> = std::fs::read_dir(files)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, std::slice::from_ref(&name));
        let bytes = std::fs::read(files.join(&name)).unwrap();
        let back: Vec<f64> = bytes[..size]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(back, values);
    }

    /// Arrays a dead process wrote and never recorded are recovered from
    /// their trailers, once; a file a record names is left alone (with a
    /// trailer or without, as earlier versions wrote them); a file with no
    /// whole trailer and no record is removed.
    #[test]
    fn recovery_records_written_arrays_once_and_removes_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = crate::spool::RunDir::new(tmp.path().join("r"));
        let mut spool = crate::spool::SpoolWriter::create(&dir).unwrap();
        let files = dir.files();
        std::fs::create_dir_all(&files).unwrap();
        let record = |step: i64, stored: &str| ArrayRecord {
            metric: "u".into(),
            grid: "g".into(),
            step,
            time: 1.5,
            timestamp: 2.5,
            shape: vec![2],
            stored: stored.into(),
        };
        let write = |name: &str, t: &[u8]| {
            write_values(
                &files.join(name),
                Values::F64(&[1.0, 2.0]),
                Order::Fortran,
                &[2],
                t,
            )
            .unwrap()
        };
        // Recorded: with a trailer, and an earlier version's file without.
        write("array-a.f64", &trailer(&record(0, "array-a.f64")));
        write("array-b.f64", &[]);
        spool
            .append(&Record::Array(record(0, "array-a.f64")))
            .unwrap();
        spool
            .append(&Record::Array(record(1, "array-b.f64")))
            .unwrap();
        drop(spool);
        // Not recorded: whole (recovered), torn, made ready and unused.
        write("array-c.f64", &trailer(&record(2, "array-c.f64")));
        let mut torn = trailer(&record(3, "array-d.f64"));
        torn[40] ^= 1;
        write("array-d.f64", &torn);
        write("array-e.f64", &[0u8; TRAILER]);
        // A trailer naming another file is not this file's.
        write("array-f.f64", &trailer(&record(4, "array-x.f64")));
        assert_eq!(recover(&dir).unwrap(), 1);
        assert_eq!(recover(&dir).unwrap(), 0);
        let arrays: Vec<ArrayRecord> = crate::spool::SpoolReader::open(&dir, 0, 0)
            .unwrap()
            .read_all()
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.record {
                Record::Array(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!(
            arrays,
            [
                record(0, "array-a.f64"),
                record(1, "array-b.f64"),
                record(2, "array-c.f64")
            ]
        );
        let mut left: Vec<String> = std::fs::read_dir(&files)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["array-a.f64", "array-b.f64", "array-c.f64"]);
    }

    #[test]
    fn c_order_maps_to_axis0_fastest() {
        // Grid axes (n0=3, n1=2); C array a[3][2] = index i0*2 + i1.
        let dims = [3, 2];
        // Axis-0-fastest element k = i0 + 3*i1.
        let got: Vec<usize> = (0..6).map(|k| c_index(k, &dims)).collect();
        assert_eq!(got, vec![0, 2, 4, 1, 3, 5]);
    }
}
