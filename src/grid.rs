//! Grids and array metrics: a whole field (a temperature profile along a
//! rod, a 2-D slice of a velocity field) logged at each step.
//!
//! A grid is defined once per run ([`Run::grid`]): up to three axes, each
//! with a label, units and its coordinates. [`Run::log_array`] logs one
//! array on a grid for a step.
//!
//! Bounded memory, never lost: the calling thread copies the values into a
//! reused buffer (one `memcpy` for f64 in Fortran order) and hands it to the
//! run's array writer thread, which writes it into the run's spool
//! directory (`files/array-<uuid>.f64`: f64 little-endian, grid axis 0
//! fastest — the order a Fortran array `a(nx, ny)` has in memory) and then
//! queues a small [`Record::Array`] naming it. At most 64 MB of arrays wait
//! for the writer; beyond that the calling thread writes the file itself
//! (waiting on the local disk only, never on the network). Flush and finish
//! wait for the writer first. The record then travels like every other one (spool,
//! sender or `simtrack sync`, idempotency key `<run>-<seq>`). Durability is
//! that of scalar values: once the call returns the values survive a crash
//! of the process (they are in the OS's page cache); they are not fsynced
//! per call (8 MB per call would cost far more than the call itself), so
//! a power loss can take the last seconds, as it can for scalar values
//! between flushes.

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

/// Most bytes of arrays copied and waiting for the array writer; beyond
/// it, `log_array` writes the values itself (bounded memory, nothing lost).
const MAX_IN_FLIGHT: usize = 64 << 20;

/// The grids a run has defined (name → axis lengths) and its array writer.
#[derive(Debug, Default)]
pub struct Registry {
    grids: Mutex<Vec<(String, Vec<usize>)>>,
    writer: Mutex<Option<Writer>>,
}

#[derive(Debug)]
struct Job {
    path: std::path::PathBuf,
    bytes: Vec<u8>,
    record: ArrayRecord,
}

#[derive(Debug, Default)]
struct Queue {
    jobs: std::collections::VecDeque<Job>,
    in_flight: usize,
    busy: bool,
    stop: bool,
    spare: Vec<Vec<u8>>,
}

#[derive(Debug, Default)]
struct WShared {
    q: Mutex<Queue>,
    work: parking_lot::Condvar,
    idle: parking_lot::Condvar,
}

/// A thread that writes copied arrays to the spool and then queues their
/// records: the caller's cost is one copy into a reused buffer.
#[derive(Debug)]
struct Writer {
    shared: std::sync::Arc<WShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn spawn(sink: crate::worker::RecordSink) -> std::io::Result<Writer> {
        let shared = std::sync::Arc::new(WShared::default());
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("simtrack-arrays".into())
            .spawn(move || writer_loop(&s, &sink))?;
        Ok(Writer {
            shared,
            thread: Some(thread),
        })
    }
}

fn writer_loop(s: &WShared, sink: &crate::worker::RecordSink) {
    loop {
        let job = {
            let mut q = s.q.lock();
            loop {
                if let Some(j) = q.jobs.pop_front() {
                    q.busy = true;
                    break j;
                }
                q.busy = false;
                s.idle.notify_all();
                if q.stop {
                    return;
                }
                s.work.wait(&mut q);
            }
        };
        // A failed write is retried (100 ms, up to 1 s apart) while the
        // run lives: the values stay in this buffer, nothing is dropped.
        let mut wait = std::time::Duration::from_millis(100);
        while write_bytes(&job.path, &job.bytes).is_err() {
            if s.q.lock().stop {
                break;
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(std::time::Duration::from_secs(1));
        }
        sink.push(Record::Array(job.record));
        let mut q = s.q.lock();
        q.in_flight -= job.bytes.len();
        // Keep the buffer for reuse while spares and arrays in flight stay
        // under the cap together.
        let spare: usize = q.spare.iter().map(Vec::capacity).sum();
        if q.in_flight + spare + job.bytes.capacity() <= MAX_IN_FLIGHT {
            let mut b = job.bytes;
            b.clear();
            q.spare.push(b);
        }
    }
}

fn write_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let r = crate::spool::private_file()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(bytes));
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

impl Registry {
    fn lengths(&self, name: &str) -> Option<Vec<usize>> {
        self.grids
            .lock()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l.clone())
    }

    /// Waits until every array handed to the writer is in the spool and
    /// its record queued (flush and finish call this first).
    pub(crate) fn drain(&self) {
        let shared = match &*self.writer.lock() {
            Some(w) => w.shared.clone(),
            None => return,
        };
        let mut q = shared.q.lock();
        while !q.jobs.is_empty() || q.busy {
            shared.idle.wait(&mut q);
        }
    }

    /// Copies the values into a buffer for the writer thread, if there is
    /// room under [`MAX_IN_FLIGHT`]; gives them back otherwise.
    fn hand_over(
        &self,
        worker: &crate::worker::Worker,
        job: impl FnOnce(Vec<u8>) -> Job,
        bytes: usize,
    ) -> Result<(), ()> {
        let mut w = self.writer.lock();
        if w.is_none() {
            *w = Some(Writer::spawn(worker.record_sink()).map_err(drop)?);
        }
        let shared = w.as_ref().map(|w| w.shared.clone()).ok_or(())?;
        drop(w);
        let buf = {
            let mut q = shared.q.lock();
            let spare: usize = q.spare.iter().map(Vec::capacity).sum();
            if q.in_flight + bytes > MAX_IN_FLIGHT {
                return Err(());
            }
            if q.in_flight + bytes + spare > MAX_IN_FLIGHT {
                q.spare.clear();
            }
            q.in_flight += bytes;
            // A reused buffer costs no page faults (a fresh 8 MB one does).
            match q.spare.iter().position(|b| b.capacity() >= bytes) {
                Some(i) => q.spare.swap_remove(i),
                None => {
                    q.spare.pop();
                    Vec::new()
                }
            }
        };
        let job = job(buf);
        let mut q = shared.q.lock();
        q.jobs.push_back(job);
        shared.work.notify_one();
        Ok(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut w) = self.writer.get_mut().take() {
            w.shared.q.lock().stop = true;
            w.shared.work.notify_all();
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
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
        let Some((reg, _, _, _)) = self.grid_parts() else {
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
        let name = format!("array-{}.f64", uuid::Uuid::new_v4().simple());
        let path = dir.files().join(&name);
        let record = ArrayRecord {
            metric: metric.to_owned(),
            grid: grid.to_owned(),
            step,
            time: start.elapsed().as_secs_f64(),
            timestamp: now_unix(),
            shape: lengths.iter().rev().map(|l| *l as u64).collect(),
            stored: name,
        };
        // Fast path: one copy into a reused buffer, written by the array
        // writer thread. At the in-flight cap, written here instead.
        let handed = reg.hand_over(
            worker,
            |mut buf| {
                fill(&mut buf, values, order, &lengths);
                Job {
                    path: path.clone(),
                    bytes: buf,
                    record: record.clone(),
                }
            },
            want * 8,
        );
        if handed.is_ok() {
            return Ok(());
        }
        write_values(&path, values, order, &lengths)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        self.push_record(Record::Array(record));
        Ok(())
    }
}

/// Appends `values` to `buf` as f64 little-endian, axis 0 fastest.
fn fill(buf: &mut Vec<u8>, values: Values<'_>, order: Order, lengths: &[usize]) {
    buf.clear();
    let n = values.len();
    buf.reserve(n * 8);
    match (values, order == Order::Fortran || lengths.len() == 1) {
        #[cfg(target_endian = "little")]
        (Values::F64(v), true) => {
            // SAFETY: an f64 slice is valid as bytes of 8x its length; on a
            // little-endian target they are the stored format.
            let bytes = unsafe {
                std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v))
            };
            buf.extend_from_slice(bytes);
        }
        (_, natural) => {
            for i in 0..n {
                let src = if natural { i } else { c_index(i, lengths) };
                buf.extend_from_slice(&values.get(src).to_le_bytes());
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
        Ok(())
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
    let data = std::fs::read(&path).map_err(|e| SendError::Rejected {
        message: format!("array {}: cannot read {}: {e}", a.metric, path.display()),
    })?;
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

    #[test]
    fn c_order_maps_to_axis0_fastest() {
        // Grid axes (n0=3, n1=2); C array a[3][2] = index i0*2 + i1.
        let dims = [3, 2];
        // Axis-0-fastest element k = i0 + 3*i1.
        let got: Vec<usize> = (0..6).map(|k| c_index(k, &dims)).collect();
        assert_eq!(got, vec![0, 2, 4, 1, 3, 5]);
    }
}
