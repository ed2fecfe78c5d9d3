//! Delivery: drives a [`Transport`] through one run's spool, from the
//! acknowledged position onward, persisting progress in `state.json`.
//!
//! Both the live sender thread of an online run and `simtrack sync` use a
//! [`Courier`], so a run uploaded later goes through exactly the code a live
//! run does.

use std::time::{Duration, Instant};

use crate::error::{Error, Status};
use crate::record::{Record, RunSpec};
use crate::spool::{DeliveryState, RefusedRecord, RunDir, SpoolReader, TornTail};
use crate::transport::{RefusalNote, RunContext, SendError, Transport};

/// A short description of what a record holds, for reports.
pub fn describe(record: &Record) -> String {
    match record {
        Record::Create(_) => "the run itself".to_owned(),
        Record::Metrics(b) => format!("metrics batch of {} points", b.points.len()),
        Record::Events(e) => format!("{} events", e.len()),
        Record::Metadata(m) => format!("{} metadata keys", m.len()),
        Record::Folder(f) => format!("details of folder {}", f.path),
        Record::File(f) => format!("file {}", f.name),
        Record::Alert(a) => format!("alert {}", a.name),
        Record::Finish(f) => format!("final status {}", f.status.as_str()),
        Record::Grid(g) => format!("grid {}", g.name),
        Record::Array(a) => format!("array {} step {}", a.metric, a.step),
        Record::Lines(l) => format!("{} lines", l.lens.len()),
    }
}

/// How a [`Courier::pump`] call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pumped {
    /// Everything currently in the spool is acknowledged.
    CaughtUp,
    /// A transient failure: call again after `retry_in`.
    Backoff { retry_in: Duration, message: String },
    /// The token was refused: nothing more can be sent with this configuration.
    Unauthorized { message: String },
    /// The deadline passed or the caller asked to stop.
    Interrupted,
}

/// Exponential backoff with jitter, honouring a server's `Retry-After`.
#[derive(Debug)]
struct Backoff {
    attempt: u32,
    seed: u64,
}

impl Backoff {
    const BASE: Duration = Duration::from_millis(250);
    const CAP: Duration = Duration::from_secs(30);

    fn next(&mut self, server_hint: Option<Duration>) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        // xorshift: jitter needs no quality, only spread between clients.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let exp = Self::BASE
            .saturating_mul(1 << self.attempt.min(8))
            .min(Self::CAP);
        let jitter = 0.5 + (self.seed % 1000) as f64 / 1000.0; // 0.5 .. 1.5
        let d = exp.mul_f64(jitter).min(Self::CAP);
        server_hint.map_or(d, |h| h.max(d.min(Self::BASE)))
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Delivers one run's spooled records through a transport.
pub struct Courier<T: Transport> {
    dir: RunDir,
    reader: SpoolReader,
    state: DeliveryState,
    spec: RunSpec,
    transport: T,
    backoff: Backoff,
    /// How much of `records.log` may be read (set by a live sender).
    read_limit: u64,
    /// Records acknowledged since `state.json` was last written.
    unsaved: u64,
    last_save: Instant,
}

impl<T: Transport> std::fmt::Debug for Courier<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Courier")
            .field("dir", &self.dir)
            .field("state", &self.state)
            .finish()
    }
}

impl<T: Transport> Courier<T> {
    /// Opens `dir` for delivery to the server at `server_url`. If the run's
    /// state belongs to another server, delivery starts over for this one.
    pub fn open(dir: RunDir, transport: T, server_url: &str) -> Result<Self, Error> {
        let mut state = dir.read_state();
        if state.server_url.as_deref() != Some(server_url) {
            state = DeliveryState {
                server_url: Some(server_url.to_owned()),
                ..DeliveryState::default()
            };
        }
        let mut head = SpoolReader::open(&dir, 0, 0)?;
        let spec = match head.next_entry()? {
            Some(e) => match e.record {
                Record::Create(spec) => spec,
                _ => {
                    return Err(Error::new(
                        Status::Io,
                        format!("{}: first record is not the run", dir.root.display()),
                    ));
                }
            },
            None => {
                let size = std::fs::metadata(dir.log()).map_or(0, |m| m.len());
                let why = if size == 0 {
                    "the spool holds no run yet".to_owned()
                } else {
                    format!(
                        "the spool's {size} bytes hold no complete run record (its start is damaged or still being written)"
                    )
                };
                return Err(Error::new(
                    Status::Io,
                    format!("{}: {why}", dir.root.display()),
                ));
            }
        };
        let reader = SpoolReader::open(&dir, state.acked, state.acked_offset)?;
        let seed = u64::from(std::process::id()) << 32
            | (crate::record::now_unix().fract() * 1e9) as u64
            | 1;
        Ok(Courier {
            dir,
            reader,
            state,
            spec,
            transport,
            backoff: Backoff { attempt: 0, seed },
            read_limit: u64::MAX,
            unsaved: 0,
            last_save: Instant::now(),
        })
    }

    pub fn state(&self) -> &DeliveryState {
        &self.state
    }

    pub fn spec(&self) -> &RunSpec {
        &self.spec
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Reads the spool no further than byte `limit`: what a live writer has
    /// completed.
    pub fn set_read_limit(&mut self, limit: u64) {
        self.read_limit = limit;
        self.reader.set_limit(limit);
    }

    /// A torn tail seen where reading last stopped, if any.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.reader.torn_tail()
    }

    /// Delivers records until the spool is drained, a failure needs a pause,
    /// `deadline` passes, or `stop()` says so. Progress is saved on return.
    pub fn pump(
        &mut self,
        deadline: Option<Instant>,
        stop: &dyn Fn() -> bool,
    ) -> Result<Pumped, Error> {
        let outcome = self.pump_inner(deadline, stop);
        self.save()?;
        outcome
    }

    fn pump_inner(
        &mut self,
        deadline: Option<Instant>,
        stop: &dyn Fn() -> bool,
    ) -> Result<Pumped, Error> {
        loop {
            if stop() || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Pumped::Interrupted);
            }
            let position = (self.reader.seq(), self.reader.offset());
            let Some(entry) = self.reader.next_entry()? else {
                // Caught up: the run must also say what the server refused.
                if self.unmarked() > 0 {
                    self.mark_refused();
                    if self.unmarked() > 0 {
                        return Ok(Pumped::Backoff {
                            retry_in: self.backoff.next(None),
                            message: "cannot yet mark the run's refused records on the server"
                                .to_owned(),
                        });
                    }
                }
                return Ok(Pumped::CaughtUp);
            };
            let key = format!("{}-{}", self.spec.id, entry.seq);
            let mut ctx = RunContext {
                spec: &self.spec,
                state: &mut self.state,
                files_dir: &self.dir.files(),
            };
            match self
                .transport
                .deliver(&mut ctx, entry.seq, &key, &entry.record)
            {
                Ok(()) => self.backoff.reset(),
                Err(SendError::Rejected { message }) => {
                    self.backoff.reset();
                    self.state
                        .rejected
                        .push(format!("record {}: {message}", entry.seq));
                    if matches!(entry.record, Record::Create(_)) {
                        // Nothing after the run can land without it: keep it all.
                        self.rewind(position)?;
                        return Ok(Pumped::Unauthorized { message });
                    }
                    // Kept in the spool and listed; delivery moves on so the
                    // rest of the run arrives, and the run is marked.
                    self.state.refused.retain(|r| r.seq != entry.seq);
                    self.state.refused.push(RefusedRecord {
                        seq: entry.seq,
                        offset: entry.offset,
                        what: describe(&entry.record),
                        reason: message,
                        marked: false,
                    });
                    self.mark_refused();
                }
                Err(SendError::Retry { after, message }) => {
                    self.rewind(position)?;
                    if self.transport.partly_delivered() {
                        self.backoff.reset();
                    }
                    return Ok(Pumped::Backoff {
                        retry_in: self.backoff.next(after),
                        message,
                    });
                }
                Err(SendError::Unauthorized { message }) => {
                    self.rewind(position)?;
                    return Ok(Pumped::Unauthorized { message });
                }
            }
            if matches!(entry.record, Record::Finish(_)) {
                self.state.finished = true;
            }
            self.state.acked = entry.seq + 1;
            self.state.acked_offset = entry.end;
            self.unsaved += 1;
            if self.unsaved >= 256 || self.last_save.elapsed() >= Duration::from_secs(1) {
                self.save()?;
            }
        }
    }

    /// Refused records the server has not been told about yet.
    pub fn unmarked(&self) -> usize {
        self.state.refused.iter().filter(|r| !r.marked).count()
    }

    /// Tells the server about refused records it has not been told about
    /// yet (best effort: a failure leaves them for the next call).
    fn mark_refused(&mut self) {
        let count = self.state.refused.len();
        for i in 0..count {
            if self.state.refused[i].marked || self.state.server_run_id.is_none() {
                continue;
            }
            let r = self.state.refused[i].clone();
            let key = format!("{}-{}-refused", self.spec.id, r.seq);
            let note = RefusalNote {
                seq: r.seq,
                what: &r.what,
                reason: &r.reason,
                refused_records: count,
            };
            let mut ctx = RunContext {
                spec: &self.spec,
                state: &mut self.state,
                files_dir: &self.dir.files(),
            };
            match self.transport.mark_refused(&mut ctx, &key, &note) {
                // A server that refuses the note too cannot be told better.
                Ok(()) | Err(SendError::Rejected { .. }) => {
                    self.state.refused[i].marked = true;
                    // Progress: a later transient failure starts the
                    // backoff over, as after a delivered record.
                    self.backoff.reset();
                }
                Err(_) => return,
            }
            self.unsaved += 1;
        }
    }

    /// Sends the records the server refused before once more (the reason may
    /// be gone: a proxy limit raised, a server upgraded). Those accepted
    /// leave the refused list; the others stay, with the latest reason.
    /// Stops at the first transient failure.
    pub fn retry_refused(&mut self) -> Result<(), Error> {
        let refused = self.state.refused.clone();
        for r in refused {
            let Some(entry) = SpoolReader::open(&self.dir, r.seq, r.offset)?.next_entry()? else {
                continue;
            };
            let key = format!("{}-{}", self.spec.id, entry.seq);
            let mut ctx = RunContext {
                spec: &self.spec,
                state: &mut self.state,
                files_dir: &self.dir.files(),
            };
            match self
                .transport
                .deliver(&mut ctx, entry.seq, &key, &entry.record)
            {
                Ok(()) => self.state.refused.retain(|x| x.seq != r.seq),
                Err(SendError::Rejected { message }) => {
                    if let Some(x) = self.state.refused.iter_mut().find(|x| x.seq == r.seq) {
                        x.reason = message;
                    }
                }
                Err(_) => break,
            }
            self.unsaved += 1;
        }
        self.mark_refused();
        self.save()
    }

    /// Damaged stretches of the spool skipped while reading, this session.
    pub fn skipped(&self) -> &[TornTail] {
        self.reader.skipped()
    }

    fn rewind(&mut self, (seq, offset): (u64, u64)) -> Result<(), Error> {
        let skipped = self.reader.skipped().to_vec();
        self.reader = SpoolReader::open(&self.dir, seq, offset)?;
        self.reader.set_limit(self.read_limit);
        self.reader.keep_skipped(skipped);
        Ok(())
    }

    fn save(&mut self) -> Result<(), Error> {
        if self.unsaved > 0 || !self.dir.state().exists() {
            self.dir.write_state(&self.state)?;
            self.unsaved = 0;
            self.last_save = Instant::now();
        }
        Ok(())
    }

    /// Sends the run's final status now, ahead of records not yet delivered
    /// (they keep their place and arrive later; the spooled finish record
    /// sets the same status again). For a process that leaves the rest of
    /// its delivery to `simtrack sync`: the server shows how the run ended
    /// at once instead of `running`, then `lost`. False if the run is not
    /// on the server yet (its status then arrives with the rest).
    pub fn send_finish_early(
        &mut self,
        finish: &crate::record::FinishRecord,
    ) -> Result<bool, Error> {
        if self.state.server_run_id.is_none() {
            return Ok(false);
        }
        let key = format!("{}-finish-early", self.spec.id);
        let mut ctx = RunContext {
            spec: &self.spec,
            state: &mut self.state,
            files_dir: &self.dir.files(),
        };
        match self
            .transport
            .deliver(&mut ctx, u64::MAX, &key, &Record::Finish(finish.clone()))
        {
            Ok(()) => Ok(true),
            Err(e) => Err(Error::new(Status::Undelivered, e.message().to_owned())),
        }
    }

    /// Sends a heartbeat and polls for an abort request, once the run exists
    /// on the server. Returns the abort flag, or `None` if the server could
    /// not be asked.
    pub fn heartbeat_and_poll(&mut self, heartbeat: bool) -> Option<bool> {
        let id = self.state.server_run_id.clone()?;
        if heartbeat {
            let _ = self.transport.heartbeat(&id);
        }
        self.transport.abort_requested(&id).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Event, FinishRecord, RunStatus};
    use crate::spool::SpoolWriter;
    use crate::transport::memory::MemoryTransport;

    fn spooled_run(tmp: &std::path::Path, events: usize) -> RunDir {
        let dir = RunDir::new(tmp.join("run-1"));
        let mut w = SpoolWriter::create(&dir).unwrap();
        w.append(&Record::Create(RunSpec {
            id: "run-1".into(),
            name: "r".into(),
            folder: "/".into(),
            tags: vec![],
            description: None,
            metadata: Default::default(),
            system: serde_json::Value::Null,
            heartbeat_timeout: 180,
            created: 0.0,
        }))
        .unwrap();
        for i in 0..events {
            w.append(&Record::Events(vec![Event {
                message: format!("e{i}"),
                timestamp: 0.0,
                level: None,
            }]))
            .unwrap();
        }
        w.append(&Record::Finish(FinishRecord {
            status: RunStatus::Completed,
            endtime: 1.0,
        }))
        .unwrap();
        dir
    }

    #[test]
    fn a_spool_without_its_run_record_says_whether_it_is_empty_or_damaged() {
        let tmp = tempfile::tempdir().unwrap();
        let whole = spooled_run(tmp.path(), 2);
        let bytes = std::fs::read(whole.log()).unwrap();
        let dir = RunDir::new(tmp.path().join("run-2"));
        SpoolWriter::create(&dir).unwrap();
        let said = |dir: &RunDir| {
            Courier::open(dir.clone(), MemoryTransport::default(), "mem://")
                .map(|_| ())
                .expect_err("no run to deliver")
                .message
        };
        assert!(said(&dir).ends_with("the spool holds no run yet"));
        // The first record cut short, then bytes that are no record at all.
        for (content, size) in [(&bytes[..20], 20), (&[0xa5u8; 300][..], 300)] {
            std::fs::write(dir.log(), content).unwrap();
            let m = said(&dir);
            assert!(
                m.contains(&format!(
                    "the spool's {size} bytes hold no complete run record"
                )),
                "{m}"
            );
        }
    }

    #[test]
    fn transient_failures_are_retried_and_nothing_is_sent_twice() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = spooled_run(tmp.path(), 5);
        let t = MemoryTransport::default();
        {
            let mut log = t.log.lock();
            for _ in 0..3 {
                log.failures.push_back(SendError::Retry {
                    after: None,
                    message: "503".into(),
                });
            }
        }
        let mut c = Courier::open(dir.clone(), t.clone(), "mem://").unwrap();
        let mut backoffs = 0;
        loop {
            match c.pump(None, &|| false).unwrap() {
                Pumped::CaughtUp => break,
                Pumped::Backoff { retry_in, .. } => {
                    assert!(retry_in <= Duration::from_secs(30));
                    backoffs += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(backoffs, 3);
        assert_eq!(t.log.lock().delivered.len(), 7);
        assert!(c.state().finished);
        // The saved state says everything is delivered: a new courier sends nothing.
        let mut again = Courier::open(dir, t.clone(), "mem://").unwrap();
        assert_eq!(again.pump(None, &|| false).unwrap(), Pumped::CaughtUp);
        assert_eq!(t.log.lock().delivered.len(), 7);
    }

    /// Retry delays until caught up, each failure coming after part of the
    /// record was delivered or not.
    fn retry_delays(partly: bool) -> Vec<Duration> {
        let tmp = tempfile::tempdir().unwrap();
        let dir = spooled_run(tmp.path(), 1);
        let t = MemoryTransport::default();
        {
            let mut log = t.log.lock();
            log.partly = partly;
            for _ in 0..8 {
                log.failures.push_back(SendError::Retry {
                    after: None,
                    message: "503".into(),
                });
            }
        }
        let mut c = Courier::open(dir, t, "mem://").unwrap();
        let mut delays = vec![];
        loop {
            match c.pump(None, &|| false).unwrap() {
                Pumped::CaughtUp => return delays,
                Pumped::Backoff { retry_in, .. } => delays.push(retry_in),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn a_record_partly_delivered_is_retried_soon_however_often_it_fails() {
        let soon = Backoff::BASE * 3;
        let partly = retry_delays(true);
        assert_eq!(partly.len(), 8);
        assert!(partly.iter().all(|d| *d <= soon), "{partly:?}");
        // Failures with no progress back off further and further.
        let none = retry_delays(false);
        assert_eq!(none.len(), 8);
        assert!(none[7] > Duration::from_secs(15), "{none:?}");
    }

    #[test]
    fn unauthorized_stops_and_keeps_the_position() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = spooled_run(tmp.path(), 2);
        let t = MemoryTransport::default();
        t.log.lock().failures.push_back(SendError::Unauthorized {
            message: "401".into(),
        });
        let mut c = Courier::open(dir.clone(), t.clone(), "mem://").unwrap();
        assert!(matches!(
            c.pump(None, &|| false).unwrap(),
            Pumped::Unauthorized { .. }
        ));
        assert_eq!(dir.read_state().acked, 0);
        assert_eq!(c.pump(None, &|| false).unwrap(), Pumped::CaughtUp);
        assert_eq!(t.log.lock().delivered.len(), 4);
    }

    #[test]
    fn a_refused_record_is_skipped_and_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = spooled_run(tmp.path(), 3);
        let t = MemoryTransport::default();
        t.log.lock().refuse.push(2);
        let mut c = Courier::open(dir.clone(), t.clone(), "mem://").unwrap();
        assert_eq!(c.pump(None, &|| false).unwrap(), Pumped::CaughtUp);
        let state = dir.read_state();
        assert_eq!(state.acked, 5);
        assert_eq!(state.rejected.len(), 1);
        assert!(state.rejected[0].starts_with("record 2:"));
        assert_eq!(t.log.lock().delivered.len(), 4);
    }

    #[test]
    fn a_refused_run_keeps_everything_for_later() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = spooled_run(tmp.path(), 3);
        let t = MemoryTransport::default();
        t.log.lock().refuse.push(0);
        let mut c = Courier::open(dir.clone(), t.clone(), "mem://").unwrap();
        assert!(matches!(
            c.pump(None, &|| false).unwrap(),
            Pumped::Unauthorized { .. }
        ));
        assert_eq!(dir.read_state().acked, 0);
        assert!(t.log.lock().delivered.is_empty());
    }

    #[test]
    fn switching_servers_starts_delivery_over() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = spooled_run(tmp.path(), 1);
        let t = MemoryTransport::default();
        Courier::open(dir.clone(), t.clone(), "http://a")
            .unwrap()
            .pump(None, &|| false)
            .unwrap();
        assert_eq!(dir.read_state().acked, 3);
        let t2 = MemoryTransport::default();
        Courier::open(dir.clone(), t2.clone(), "http://b")
            .unwrap()
            .pump(None, &|| false)
            .unwrap();
        assert_eq!(t2.log.lock().delivered.len(), 3);
    }
}
