//! The background threads of a run and the buffer the solver's threads
//! append to.
//!
//! * The calling thread only appends a [`Point`] to [`Pending`] under a
//!   short, uncontended lock: no I/O, no allocation once the buffer has grown
//!   to its working size.
//! * `simtrack-writer` wakes every 100 ms (or when a batch fills), swaps the
//!   buffer for an empty one and appends the contents to the spool as records.
//! * `simtrack-sender` (online runs only) ships the spool to the server
//!   through a [`Courier`], sends heartbeats and polls for abort requests.
//!
//! The handle's side of all this is [`Worker`]: push, flush with a deadline,
//! shut down; the transport the sender uses is injected at spawn.
//!
//! Memory is bounded: at the cap, `log` waits for the writer (which only
//! waits on the local disk, never on the network) at most `log_wait`; then
//! the call fails with `Io` and the point is not taken. A spool write that
//! fails puts what it could not write back at the front of the buffer and is
//! retried (100 ms, doubling to 1 s), so nothing accepted is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::clock::Calibration;
use crate::delivery::{Courier, Pumped};
use crate::error::{Error, Status};
use crate::lanes::{Lane, LanePoint, Lanes, Room};
use crate::record::{FinishRecord, MetricBatch, Point, Record};
use crate::spool::{RunDir, SpoolWriter};
use crate::transport::Transport;

/// Points per metrics record (and per HTTP request).
pub(crate) const BATCH_POINTS: usize = 16_000;
/// How often the writer drains the buffer when it does not fill.
const WRITE_INTERVAL: Duration = Duration::from_millis(100);

/// A point as the writer takes it from a lane: time still in raw ticks.
pub(crate) type RawPoint = LanePoint;

/// What the solver's threads hand the writer besides points (which go to
/// their lanes, see `lanes`).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub records: Vec<Queued>,
    /// Bumped by each flush request.
    pub flush_requested: u64,
    pub finish: Option<FinishRecord>,
    /// A logger waited for room in its lane in vain: until the writer makes
    /// progress, calls on a full lane fail at once instead of waiting again.
    pub refusing: bool,
}

/// A record waiting for the spool: built, or events already encoded.
#[derive(Debug)]
pub(crate) enum Queued {
    Record(Record),
    Block(crate::record::EventBlock),
    Lines(crate::record::LineBlock),
}

impl From<Record> for Queued {
    fn from(r: Record) -> Queued {
        Queued::Record(r)
    }
}

/// What the threads report back.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Records in the spool.
    pub written: u64,
    /// Bytes of `records.log` holding them (whole frames only).
    pub written_bytes: u64,
    /// The last flush request the writer has completed.
    pub flushed: u64,
    /// The last flush request the writer tried and could not complete (the
    /// spool write failed; what it held is kept in memory and retried).
    pub flush_failed: u64,
    /// Records the server has acknowledged.
    pub acked: u64,
    /// Bytes of `records.log` holding them.
    pub acked_bytes: u64,
    pub writer_done: bool,
    pub sender_done: bool,
    /// Why the last spool write failed; cleared by the next one that works.
    pub spool_error: Option<String>,
    /// The last delivery failure, cleared on success.
    pub send_error: Option<String>,
    /// The server refused the token: waiting for acknowledgement is futile.
    pub send_blocked: bool,
    /// Records the server refused for good, with its reasons (kept in the
    /// spool; see `delivery`).
    pub refused: Vec<String>,
    /// Refused records the run on the server has not been told about yet.
    pub unmarked: usize,
}

/// State shared by a run's handle and its threads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub pending: Mutex<Pending>,
    /// The logging threads' buffers.
    pub lanes: Lanes,
    /// Lives as long as the run: a thread lets its lane go once it is gone.
    _alive: Arc<()>,
    keep: Weak<()>,
    /// Wakes the writer (paired with `pending`).
    pub wake_writer: Condvar,
    /// The writer has taken points (paired with `pending`).
    pub drained: Condvar,
    pub progress: Mutex<Progress>,
    pub progress_cv: Condvar,
    pub abort: AtomicBool,
    pub stop_sender: AtomicBool,
    /// How long `log` may wait for room once its lane is full.
    pub log_wait: Duration,
    /// Whether a sender ships the spool (online runs).
    pub online: bool,
    /// The run's spool directory, for messages.
    pub dir: RunDir,
    /// The spool's `flock`, held while the handle or a thread of the run is
    /// alive (a sender left to finish a request keeps `simtrack sync` off).
    _lock: Option<std::fs::File>,
}

impl Shared {
    pub fn new(
        cap_bytes: usize,
        log_wait: Duration,
        online: bool,
        dir: RunDir,
        lock: Option<std::fs::File>,
    ) -> Result<Self, Error> {
        let lanes = Lanes::new(&dir, crate::lanes::lane_capacity(cap_bytes))?;
        let alive = Arc::new(());
        let keep = Arc::downgrade(&alive);
        Ok(Shared {
            pending: Mutex::new(Pending::default()),
            lanes,
            _alive: alive,
            keep,
            wake_writer: Condvar::new(),
            drained: Condvar::new(),
            progress: Mutex::new(Progress::default()),
            progress_cv: Condvar::new(),
            abort: AtomicBool::new(false),
            stop_sender: AtomicBool::new(false),
            log_wait,
            online,
            dir,
            _lock: lock,
        })
    }

    fn no_room(&self, buffered: u64, writer_done: bool) -> Error {
        let why = if writer_done {
            "the run has finished".to_owned()
        } else {
            match &self.progress.lock().spool_error {
                Some(e) => format!("the spool cannot be written: {e}"),
                None => "the spool is not keeping up".to_owned(),
            }
        };
        Error::new(
            Status::Io,
            format!(
                "value not recorded: this thread's buffer ({} points, an eighth of SIMTRACK_MEMORY_CAP_MB) is full with {buffered} points waiting and {why}; \
                 what was recorded before is kept and written to {} when the disk has room",
                self.lanes.capacity(),
                self.dir.root.display()
            ),
        )
    }

    /// Asks the writer to spool and sync everything buffered so far; returns
    /// the request's generation, which `Progress::flushed` reaches when done.
    pub fn request_flush(&self) -> u64 {
        let generation = {
            let mut p = self.pending.lock();
            p.flush_requested += 1;
            p.flush_requested
        };
        self.wake_writer.notify_one();
        generation
    }

    /// Waits, holding `p` between wake-ups, until the writer has spooled
    /// flush request `generation` (or written the run's last record); false
    /// if `deadline` came first.
    fn wait_spooled(
        &self,
        p: &mut parking_lot::MutexGuard<'_, Progress>,
        generation: u64,
        deadline: Instant,
    ) -> bool {
        let written = |p: &Progress| p.writer_done || p.flushed >= generation;
        while !written(p) {
            if self.progress_cv.wait_until(p, deadline).timed_out() {
                return written(p);
            }
        }
        true
    }

    /// The one "wait until delivered" routine: waits until the writer has
    /// spooled and synced what flush request `generation` covered (or has
    /// written the run's last record), then, for an online run, until the
    /// server acknowledged the spool up to there; at most until `deadline`.
    ///
    /// Errors: `Io` if the spool could not be written until the deadline
    /// (the data stays in memory and is retried), `Refused` if the server refused records for good (they
    /// stay in the spool), `Undelivered` if the deadline came first.
    pub fn wait_delivered(&self, generation: u64, deadline: Instant) -> Result<(), Error> {
        let mut p = self.progress.lock();
        if !self.wait_spooled(&mut p, generation, deadline) {
            if p.flush_failed >= generation {
                let e = p.spool_error.clone().unwrap_or_default();
                return Err(Error::new(
                    Status::Io,
                    format!(
                        "cannot write the spool {}: {e}; what was logged is kept in memory and written when the disk has room",
                        self.dir.root.display()
                    ),
                ));
            }
            return Err(Error::new(
                Status::Undelivered,
                format!(
                    "the spool writer did not finish in time; the spool is {}",
                    self.dir.root.display()
                ),
            ));
        }
        if !self.online {
            return Ok(());
        }
        let target = p.written;
        // A sender told to stop (the run finished or was dropped) sends
        // nothing more than the request it is in: waiting is futile.
        let stopped = || self.stop_sender.load(Ordering::Acquire);
        while (p.acked < target || p.unmarked > 0)
            && !p.send_blocked
            && !p.sender_done
            && !stopped()
        {
            if self.progress_cv.wait_until(&mut p, deadline).timed_out() {
                break;
            }
        }
        if p.acked >= target {
            if p.refused.is_empty() {
                return Ok(());
            }
            return Err(Error::new(
                Status::Refused,
                format!(
                    "the server refused {} record(s) of this run for good (first: {}); they are kept in {} and `simtrack sync` shows and retries them",
                    p.refused.len(),
                    p.refused[0],
                    self.dir.root.display()
                ),
            ));
        }
        let why = p.send_error.clone().unwrap_or_else(|| {
            if stopped() {
                "delivery stopped".to_owned()
            } else {
                "deadline reached".to_owned()
            }
        });
        Err(Error::new(
            Status::Undelivered,
            format!(
                "{} of {} records not yet acknowledged by the server ({why}); they are kept in {} and `simtrack sync` uploads them",
                target - p.acked,
                target,
                self.dir.root.display()
            ),
        ))
    }

    /// For the exit handler: spools what is buffered and gives an online run
    /// until `deadline` to deliver it. A finished run returns at once.
    pub fn flush_at_exit(&self, deadline: Instant) {
        let generation = self.request_flush();
        let _ = self.wait_delivered(generation, deadline);
    }

    fn set_progress(&self, f: impl FnOnce(&mut Progress)) {
        let mut p = self.progress.lock();
        f(&mut p);
        drop(p);
        self.progress_cv.notify_all();
    }
}

impl Room for Shared {
    /// A lane is full: wakes the writer and waits for it to make room, at
    /// most `log_wait`. If there is still no room the call fails (the points
    /// are not taken) and, until the writer makes progress again, later calls
    /// on a full lane fail at once instead of waiting again.
    #[cold]
    fn wait(&self, lane: &Lane, need: u64) -> Result<(), Error> {
        let fits = || lane.backlog() + need <= self.lanes.capacity();
        let mut p = self.pending.lock();
        self.wake_writer.notify_one();
        let deadline = Instant::now() + self.log_wait;
        while !fits() {
            let writer_done = self.progress.lock().writer_done;
            if p.refusing || writer_done {
                return Err(self.no_room(lane.backlog(), writer_done));
            }
            if self.drained.wait_until(&mut p, deadline).timed_out() && !fits() {
                p.refusing = true;
                return Err(self.no_room(lane.backlog(), false));
            }
        }
        Ok(())
    }
}

/// For the writer's own points (resources): it cannot wait for itself.
struct NoWait;

impl Room for NoWait {
    fn wait(&self, _: &Lane, _: u64) -> Result<(), Error> {
        Err(Error::new(Status::Io, "the writer's buffer is full"))
    }
}

/// Settings of the threads.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub heartbeat_interval: Duration,
    pub abort_poll: Duration,
    pub resources_interval: Option<Duration>,
    /// Bytes of buffered points at which `log` waits for the writer.
    pub memory_cap_bytes: usize,
    /// How long `log` may wait there.
    pub log_wait: Duration,
}

/// How long past its deadline `shutdown` waits for a stopped sender to end.
const SENDER_GRACE: Duration = Duration::from_millis(200);

/// A run's background threads, as its handle sees them: push data in, flush
/// with a deadline, shut down. Nothing outside this module touches the
/// threads themselves.
#[derive(Debug)]
pub(crate) struct Worker {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    sender: Option<JoinHandle<()>>,
}

/// What `Worker::spawn` needs to start a sender (online runs).
#[derive(Debug)]
pub(crate) struct SenderSetup<T> {
    pub transport: T,
    pub server_url: String,
}

impl Worker {
    /// Starts the writer (which owns `spool`) and, with `sender`, the sender
    /// thread, delivering through the given transport.
    pub fn spawn<T: Transport + 'static>(
        dir: RunDir,
        spool: SpoolWriter,
        clock: Calibration,
        timing: Timing,
        sender: Option<SenderSetup<T>>,
        lock: Option<std::fs::File>,
    ) -> Result<Worker, Error> {
        let shared = Arc::new(Shared::new(
            timing.memory_cap_bytes,
            timing.log_wait,
            sender.is_some(),
            dir,
            lock,
        )?);
        let spawn_err = |e: std::io::Error| Error::io("cannot start the simtrack worker thread", e);
        let writer =
            spawn_writer(shared.clone(), spool, clock, timing.clone()).map_err(spawn_err)?;
        let mut worker = Worker {
            shared,
            writer: Some(writer),
            sender: None,
        };
        if let Some(s) = sender {
            let dir = worker.shared.dir.clone();
            match spawn_sender(
                worker.shared.clone(),
                dir,
                s.transport,
                s.server_url,
                timing,
            ) {
                Ok(h) => worker.sender = Some(h),
                Err(e) => {
                    // The run is safe in the spool; stop the writer cleanly.
                    worker.abandon(crate::record::RunStatus::Failed);
                    return Err(spawn_err(e));
                }
            }
        }
        crate::exit::track(&worker.shared);
        Ok(worker)
    }

    /// Logs one point to this thread's lane (see [`Room`] for a full one).
    #[inline]
    pub fn push(&self, metric: &[u8], value: f64, step: i64, ticks: u64) -> Result<(), Error> {
        let s = &*self.shared;
        s.lanes.push(&s.keep, s, metric, value, step, ticks)
    }

    /// Logs `count` points at one step and time: all, or none.
    pub fn push_many<'a>(
        &self,
        count: usize,
        item: impl Fn(usize) -> Result<(&'a [u8], f64), Error>,
        step: i64,
        ticks: u64,
    ) -> Result<(), Error> {
        let s = &*self.shared;
        s.lanes.push_many(&s.keep, s, count, item, step, ticks)
    }

    /// As [`Worker::push`] with a NUL-terminated name.
    ///
    /// # Safety
    /// `metric` is non-NULL and NUL-terminated.
    #[inline]
    pub unsafe fn push_c(
        &self,
        metric: *const std::ffi::c_char,
        value: f64,
        step: i64,
        ticks: u64,
    ) -> Result<(), Error> {
        let s = &*self.shared;
        // SAFETY: forwarded contract.
        unsafe { s.lanes.push_c(&s.keep, s, metric, value, step, ticks) }
    }

    /// As [`Worker::push_many`] with NUL-terminated names.
    ///
    /// # Safety
    /// Every non-NULL `names[i]` is NUL-terminated.
    #[inline]
    pub unsafe fn push_many_c(
        &self,
        names: &[*const std::ffi::c_char],
        values: &[f64],
        step: i64,
        ticks: u64,
    ) -> Result<(), Error> {
        let s = &*self.shared;
        // SAFETY: forwarded contract.
        unsafe { s.lanes.push_many_c(&s.keep, s, names, values, step, ticks) }
    }

    /// Queues a record for the spool.
    pub fn push_record(&self, record: Record) {
        self.shared.pending.lock().records.push(record.into());
    }

    /// Queues an event; consecutive events share one record.
    pub fn push_event(&self, event: crate::record::Event) {
        let mut p = self.shared.pending.lock();
        match p.records.last_mut() {
            Some(Queued::Record(Record::Events(list))) if list.len() < BATCH_POINTS => {
                list.push(event)
            }
            _ => p.records.push(Record::Events(vec![event]).into()),
        }
    }

    /// Queues many events under one lock (filling the last events record
    /// first, then records of at most [`BATCH_POINTS`]); wakes the writer
    /// when a record is full.
    pub fn push_events(&self, mut events: Vec<crate::record::Event>) {
        let mut p = self.shared.pending.lock();
        if let Some(Queued::Record(Record::Events(list))) = p.records.last_mut() {
            let n = BATCH_POINTS.saturating_sub(list.len()).min(events.len());
            list.extend(events.drain(..n));
        }
        let full = !events.is_empty();
        while !events.is_empty() {
            let rest = events.split_off(events.len().min(BATCH_POINTS));
            p.records.push(Record::Events(events).into());
            events = rest;
        }
        drop(p);
        if full {
            self.shared.wake_writer.notify_one();
        }
    }

    /// Queues a block of encoded events; wakes the writer.
    pub fn push_block(&self, block: crate::record::EventBlock) {
        self.shared
            .pending
            .lock()
            .records
            .push(Queued::Block(block));
        self.shared.wake_writer.notify_one();
    }

    /// Queues blocks of lines; wakes the writer (if there were any).
    pub fn push_lines(&self, blocks: impl Iterator<Item = crate::record::LineBlock>) {
        let mut p = self.shared.pending.lock();
        let before = p.records.len();
        p.records.extend(blocks.map(Queued::Lines));
        let any = p.records.len() > before;
        drop(p);
        if any {
            self.shared.wake_writer.notify_one();
        }
    }

    pub fn abort_requested(&self) -> bool {
        self.shared.abort.load(Ordering::Acquire)
    }

    /// Waits until what was pushed so far is in the spool and, online,
    /// acknowledged, or until `deadline`.
    pub fn flush(&self, deadline: Instant) -> Result<(), Error> {
        let generation = self.shared.request_flush();
        self.shared.wait_delivered(generation, deadline)
    }

    /// Writes `finish` as the run's last record, waits for delivery until
    /// `deadline`, and stops the threads. A sender stuck in a request to a
    /// hung server is left to end on its own (its request has a timeout);
    /// a writer that cannot write (a full disk) keeps trying until the
    /// process exits.
    ///
    /// With `leave_over`: when, once the spool holds everything, more than
    /// that many bytes of it are still to be acknowledged, it does not wait
    /// for the server. The sender is told to stop and left to end with the
    /// process (a request it has in flight is resent by whoever delivers the
    /// rest, under the same idempotency key). Returns the bytes left
    /// undelivered then, `None` otherwise.
    pub fn shutdown_leaving(
        mut self,
        finish: FinishRecord,
        deadline: Instant,
        leave_over: Option<u64>,
    ) -> Result<Option<u64>, Error> {
        let generation = {
            let mut p = self.shared.pending.lock();
            p.finish = Some(finish);
            p.flush_requested += 1;
            p.flush_requested
        };
        self.shared.wake_writer.notify_one();
        if let Some(limit) = leave_over
            && let Some(backlog) = self.backlog_once_spooled(generation, deadline)
            && backlog > limit
        {
            self.shared.stop_sender.store(true, Ordering::Release);
            self.shared.progress_cv.notify_all();
            if let Some(t) = self.writer.take()
                && self.wait_thread_end(&t, deadline, |p| p.writer_done)
            {
                let _ = t.join();
            }
            return Ok(Some(backlog));
        }
        let outcome = self.shared.wait_delivered(generation, deadline);
        self.shared.stop_sender.store(true, Ordering::Release);
        self.shared.progress_cv.notify_all();
        let writer_stuck = outcome.as_ref().is_err_and(|e| e.status == Status::Io);
        // The sender stops after the request it is in; one waiting for its
        // next try stops at once. It is given a moment past the deadline to
        // do so, since it holds the spool's lock (a `simtrack sync` right
        // after this finish would find the run in use); one still in a
        // request after that is left to end on its own.
        let writer_done: fn(&Progress) -> bool = |p| p.writer_done;
        let sender_done: fn(&Progress) -> bool = |p| p.sender_done;
        let sender_end = deadline.max(Instant::now() + SENDER_GRACE);
        for (t, end, done) in [
            (self.writer.take(), deadline, writer_done),
            (self.sender.take(), sender_end, sender_done),
        ] {
            let Some(t) = t else { continue };
            if t.is_finished() || (!writer_stuck && self.wait_thread_end(&t, end, done)) {
                let _ = t.join();
            }
        }
        outcome.map(|()| None)
    }

    /// Waits (until `deadline`) for the writer to spool flush request
    /// `generation`, then returns the bytes of the spool the server has not
    /// acknowledged; `None` if the spool was not written in time, or for a
    /// run with no sender or one the server refuses.
    fn backlog_once_spooled(&self, generation: u64, deadline: Instant) -> Option<u64> {
        self.sender.as_ref()?;
        let mut p = self.shared.progress.lock();
        if !self.shared.wait_spooled(&mut p, generation, deadline) {
            return None;
        }
        if p.send_blocked || p.sender_done {
            return None;
        }
        Some(p.written_bytes.saturating_sub(p.acked_bytes))
    }

    /// For a handle dropped without `shutdown`: the writer still spools
    /// everything, ending with `status`; nothing is waited for.
    pub fn abandon(&mut self, status: crate::record::RunStatus) {
        let mut p = self.shared.pending.lock();
        if p.finish.is_none() {
            p.finish = Some(FinishRecord {
                status,
                endtime: crate::record::now_unix(),
            });
        }
        drop(p);
        self.shared.wake_writer.notify_one();
        self.shared.stop_sender.store(true, Ordering::Release);
    }

    /// Waits until thread `t` has ended or said it is `done` (all it does
    /// then is return: joining it does not wait), or until `deadline`.
    fn wait_thread_end(
        &self,
        t: &JoinHandle<()>,
        deadline: Instant,
        done: fn(&Progress) -> bool,
    ) -> bool {
        let mut p = self.shared.progress.lock();
        while !t.is_finished() && !done(&p) {
            if Instant::now() >= deadline {
                return false;
            }
            self.shared
                .progress_cv
                .wait_for(&mut p, Duration::from_millis(20));
        }
        true
    }
}

/// Starts the writer thread; it owns the spool writer.
fn spawn_writer(
    shared: Arc<Shared>,
    mut spool: SpoolWriter,
    clock: Calibration,
    timing: Timing,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("simtrack-writer".into())
        .spawn(move || {
            let mut writer = Writer {
                names: Vec::new(),
                local: Vec::new(),
                used: Vec::new(),
                lanes: Vec::new(),
                buf: Vec::with_capacity(BATCH_POINTS),
                busy: false,
                records: Vec::new(),
                finish: None,
                resources: timing.resources_interval.map(Resources::new),
                clock,
                retry: None,
            };
            let (written, bytes) = (spool.records(), spool.len());
            shared.set_progress(|p| {
                p.written = written;
                p.written_bytes = bytes;
            });
            writer.clock.update();
            let (t, spt) = writer.clock.parts();
            shared.lanes.set_clock(t, spt);
            loop {
                let done = writer.round(&shared, &mut spool);
                if done {
                    break;
                }
            }
            shared.set_progress(|p| p.writer_done = true);
            // Let any logger waiting on the cap see that the writer is gone.
            shared.drained.notify_all();
        })
}

struct Writer {
    /// Copy of the run's metric names, by id.
    names: Vec<String>,
    /// Global name id -> index in the batch being built (u32::MAX: unused).
    local: Vec<u32>,
    used: Vec<u32>,
    /// The lanes, as of this round.
    lanes: Vec<Arc<Lane>>,
    /// Points read from a lane for one frame.
    buf: Vec<RawPoint>,
    /// The last round had a full batch: look again soon.
    busy: bool,
    /// Records taken and not yet in the spool.
    records: Vec<Queued>,
    finish: Option<FinishRecord>,
    resources: Option<Resources>,
    clock: Calibration,
    /// After a failed spool write: the pause before the next attempt
    /// (doubling up to a second), and when that is.
    retry: Option<(Duration, Instant)>,
}

impl Writer {
    /// Takes what is pending, writes it, reports progress. True when the
    /// run's last record has been written. What cannot be written (a full
    /// disk) stays in the lanes (or, for records, with the writer) and is
    /// tried again after a pause; later data queues behind it.
    fn round(&mut self, shared: &Shared, spool: &mut SpoolWriter) -> bool {
        let flush = {
            let mut p = shared.pending.lock();
            let flushed = shared.progress.lock().flushed;
            if let Some((_, at)) = self.retry {
                // Loggers at the cap wake the writer on every call: sleep
                // through them; only a flush or finish cuts the pause short.
                let asked = (p.flush_requested, p.finish.is_some());
                while Instant::now() < at && (p.flush_requested, p.finish.is_some()) == asked {
                    shared.wake_writer.wait_until(&mut p, at);
                }
            } else if p.records.is_empty() && p.flush_requested == flushed && p.finish.is_none() {
                let pause = if self.busy {
                    Duration::from_millis(1)
                } else {
                    WRITE_INTERVAL
                };
                shared.wake_writer.wait_for(&mut p, pause);
            }
            if self.records.is_empty() {
                self.records = std::mem::take(&mut p.records);
            } else {
                self.records.append(&mut p.records);
            }
            if self.finish.is_none() {
                self.finish = p.finish.take();
            }
            p.flush_requested
        };
        if let Some(r) = &mut self.resources {
            r.sample_into(shared);
        }
        self.clock.update();
        let (t, spt) = self.clock.parts();
        shared.lanes.set_clock(t, spt);

        let mut result = Ok(());
        let mut drained = 0usize;
        shared.lanes.snapshot(&mut self.lanes);
        let lanes = std::mem::take(&mut self.lanes);
        'lanes: for lane in &lanes {
            // What was published when the round began: a logger faster than
            // the disk does not keep the writer on one lane forever.
            let upto = lane.published();
            loop {
                self.buf.clear();
                let end = lane.read_published(BATCH_POINTS, upto, &mut self.buf);
                if self.buf.is_empty() {
                    break;
                }
                if self.names.len() < shared.lanes.name_count() {
                    shared.lanes.names_from(self.names.len(), &mut self.names);
                }
                let points = std::mem::take(&mut self.buf);
                let batch = Record::Metrics(self.batch(&points));
                self.buf = points;
                lane.claim(end, spool.len());
                result = spool.append(&batch).map(drop);
                lane.settle(result.is_ok());
                if result.is_err() {
                    break 'lanes;
                }
                drained += self.buf.len();
                // Let loggers waiting for room go on while the rest is written.
                drop(shared.pending.lock());
                shared.drained.notify_all();
            }
        }
        self.lanes = lanes;
        self.busy = drained >= BATCH_POINTS;
        let mut records_done = 0;
        if result.is_ok() {
            for r in &self.records {
                result = match r {
                    Queued::Record(r) => spool.append(r),
                    Queued::Block(b) => spool.append_block(b),
                    Queued::Lines(b) => spool.append_with(|buf| b.encode(buf)),
                }
                .map(drop);
                if result.is_err() {
                    break;
                }
                records_done += 1;
            }
        }
        self.records.drain(..records_done);
        let mut last = false;
        if result.is_ok()
            && let Some(f) = &self.finish
        {
            result = spool.append(&Record::Finish(f.clone())).map(drop);
            last = result.is_ok();
        }
        let flush_now = {
            let p = shared.progress.lock();
            flush != p.flushed || last
        };
        if result.is_ok() && flush_now {
            result = spool.sync();
        }
        if result.is_ok() {
            self.retry = None;
            if last {
                // Every lane is in the spool: their files are not needed.
                shared.lanes.remove_files();
            }
        } else {
            let pause = self
                .retry
                .map_or(WRITE_INTERVAL, |(d, _)| (d * 2).min(Duration::from_secs(1)));
            self.retry = Some((pause, Instant::now() + pause));
        }
        {
            let mut p = shared.pending.lock();
            if result.is_ok() {
                p.refusing = false;
            }
        }
        shared.drained.notify_all();
        let (written, bytes) = (spool.records(), spool.len());
        shared.set_progress(|p| {
            p.written = written;
            p.written_bytes = bytes;
            match result {
                Ok(()) => {
                    p.flushed = flush;
                    p.spool_error = None;
                }
                Err(e) => {
                    p.flush_failed = flush;
                    p.spool_error = Some(e.message);
                }
            }
        });
        last
    }

    /// Builds a self-contained batch: only the names its points use.
    fn batch(&mut self, points: &[RawPoint]) -> MetricBatch {
        self.local.resize(self.names.len(), u32::MAX);
        let mut names = Vec::new();
        let mut out = Vec::with_capacity(points.len());
        for p in points {
            let g = p.name as usize;
            if self.local[g] == u32::MAX {
                self.local[g] = names.len() as u32;
                names.push(self.names[g].clone());
                self.used.push(p.name);
            }
            out.push(Point {
                name: self.local[g],
                value: p.value,
                step: p.step,
                time: self.clock.seconds(p.ticks),
            });
        }
        for g in self.used.drain(..) {
            self.local[g as usize] = u32::MAX;
        }
        MetricBatch { names, points: out }
    }
}

/// Samples the process's CPU and memory use into `resources/` metrics.
struct Resources {
    every: Duration,
    next: Instant,
    last: Option<(Instant, f64)>,
}

impl Resources {
    fn new(every: Duration) -> Self {
        Resources {
            every,
            next: Instant::now(),
            last: None,
        }
    }

    fn sample_into(&mut self, shared: &Shared) {
        let push = |name: &[u8], value: f64, time: u64| {
            let _ = shared
                .lanes
                .push(&shared.keep, &NoWait, name, value, -1, time);
        };
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + self.every;
        let time = crate::clock::ticks();
        if let Some(cpu) = process_cpu_seconds() {
            if let Some((t0, c0)) = self.last {
                let wall = now.duration_since(t0).as_secs_f64();
                if wall > 0.0 {
                    push(
                        b"resources/cpu.usage.percentage",
                        100.0 * (cpu - c0) / wall,
                        time,
                    );
                }
            }
            self.last = Some((now, cpu));
        }
        if let Some(mb) = process_rss_mb() {
            push(b"resources/cpu.usage.memory", mb, time);
        }
    }
}

/// User + system CPU time of this process, from /proc (Linux).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, in clock ticks (USER_HZ, 100 on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: f64 = f.next()?.parse().ok()?;
    let stime: f64 = f.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Resident memory of this process in MiB, from /proc (Linux).
pub(crate) fn process_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Starts the sender thread of an online run.
fn spawn_sender<T: Transport + 'static>(
    shared: Arc<Shared>,
    dir: RunDir,
    transport: T,
    server_url: String,
    timing: Timing,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("simtrack-sender".into())
        .spawn(move || {
            let mut courier = match Courier::open(dir, transport, &server_url) {
                Ok(c) => c,
                Err(e) => {
                    shared.set_progress(|p| {
                        p.send_error = Some(e.message);
                        p.send_blocked = true;
                        p.sender_done = true;
                    });
                    return;
                }
            };
            send_loop(&shared, &mut courier, &timing);
            shared.set_progress(|p| p.sender_done = true);
        })
}

fn send_loop<T: Transport>(shared: &Shared, courier: &mut Courier<T>, timing: &Timing) {
    let mut next_heartbeat = Instant::now();
    let mut next_poll = Instant::now();
    let mut retry_at: Option<Instant> = None;
    let mut warned = false;
    let mut reported = courier.state().rejected.len();
    let mut stalled = false;
    loop {
        if shared.stop_sender.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        if retry_at.is_none_or(|t| now >= t) {
            retry_at = None;
            let before = courier.state().acked;
            let limit = shared.progress.lock().written_bytes;
            courier.set_read_limit(limit);
            let outcome = courier.pump(Some(now + Duration::from_millis(250)), &|| {
                shared.stop_sender.load(Ordering::Acquire)
            });
            let acked = courier.state().acked;
            let acked_bytes = courier.state().acked_offset;
            stalled = acked == before;
            // Records the server refused for good are skipped; say so once each.
            for refused in &courier.state().rejected[reported..] {
                crate::warn::warn(&format!(
                    "simtrack: the server refused part of run {}: {refused}",
                    courier.spec().id
                ));
            }
            reported = courier.state().rejected.len();
            if !courier.state().refused.is_empty() || !shared.progress.lock().refused.is_empty() {
                let refused: Vec<String> = courier
                    .state()
                    .refused
                    .iter()
                    .map(|r| r.reason.clone())
                    .collect();
                shared.set_progress(|p| p.refused = refused);
            }
            // Refused records the run has not been marked with yet: finish
            // waits for them as for unacknowledged ones.
            let unmarked = courier.unmarked();
            match outcome {
                Ok(Pumped::CaughtUp | Pumped::Interrupted) => shared.set_progress(|p| {
                    p.acked = acked;
                    p.acked_bytes = acked_bytes;
                    p.unmarked = unmarked;
                    p.send_error = None;
                    p.send_blocked = false;
                }),
                Ok(Pumped::Backoff { retry_in, message }) => {
                    retry_at = Some(Instant::now() + retry_in);
                    shared.set_progress(|p| {
                        p.acked = acked;
                        p.acked_bytes = acked_bytes;
                        p.unmarked = unmarked;
                        p.send_error = Some(message);
                    });
                }
                Ok(Pumped::Unauthorized { message }) => {
                    if !warned {
                        crate::warn::warn(&format!(
                            "simtrack: the server refused this run's data ({message}); it stays in the spool for `simtrack sync`"
                        ));
                        warned = true;
                    }
                    retry_at = Some(Instant::now() + Duration::from_secs(30));
                    shared.set_progress(|p| {
                        p.acked = acked;
                        p.acked_bytes = acked_bytes;
                        p.unmarked = unmarked;
                        p.send_error = Some(message);
                        p.send_blocked = true;
                    });
                }
                Err(e) => {
                    retry_at = Some(Instant::now() + Duration::from_secs(1));
                    shared.set_progress(|p| p.send_error = Some(e.message));
                }
            }
        }
        let now = Instant::now();
        // Heartbeats and abort polls start once the run exists on the server.
        let created = courier.state().server_run_id.is_some();
        if created && (now >= next_poll || now >= next_heartbeat) {
            let beat = now >= next_heartbeat;
            if courier.heartbeat_and_poll(beat) == Some(true) {
                shared.abort.store(true, Ordering::Release);
            }
            if beat {
                next_heartbeat = now + timing.heartbeat_interval;
            }
            next_poll = now + timing.abort_poll;
        }
        // Sleep until there is something to send or a timer is due.
        let mut p = shared.progress.lock();
        let caught_up = p.acked >= p.written && p.unmarked == 0;
        if p.writer_done && caught_up {
            return;
        }
        let mut wake = if created {
            next_poll.min(next_heartbeat)
        } else {
            now + Duration::from_millis(500)
        };
        if let Some(t) = retry_at {
            wake = wake.min(t);
        } else if !caught_up && !stalled {
            continue;
        } else if !caught_up {
            // The spool ends in a frame still being written: look again soon.
            wake = wake.min(now + Duration::from_millis(20));
        }
        let timeout = wake
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(500));
        shared.progress_cv.wait_for(&mut p, timeout);
    }
}
