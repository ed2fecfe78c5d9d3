//! An in-memory [`Transport`] that records what it is given and fails on
//! demand; the test twin of [`super::http::HttpTransport`].

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{RefusalNote, RunContext, SendError, Transport};
use crate::record::Record;

/// What the twin has received, shared with the test that inspects it.
#[derive(Debug, Default)]
pub struct MemoryLog {
    /// Records accepted, with their keys, in order.
    pub delivered: Vec<(String, Record)>,
    pub heartbeats: usize,
    /// Answer to abort polls.
    pub abort: bool,
    /// Failures to return, one per call, before succeeding again.
    pub failures: VecDeque<SendError>,
    /// Each failure comes after part of the record reached the server
    /// (`Transport::partly_delivered` says so).
    pub partly: bool,
    /// Records (by sequence number) to refuse for good.
    pub refuse: Vec<u64>,
    /// Refusal notes received (`Transport::mark_refused`): key, record, count.
    pub marks: Vec<(String, u64, usize)>,
}

/// The in-memory transport. Clones share one [`MemoryLog`].
#[derive(Debug, Clone, Default)]
pub struct MemoryTransport {
    pub log: Arc<Mutex<MemoryLog>>,
    partial: bool,
}

impl Transport for MemoryTransport {
    fn deliver(
        &mut self,
        run: &mut RunContext<'_>,
        seq: u64,
        key: &str,
        record: &Record,
    ) -> Result<(), SendError> {
        let mut log = self.log.lock();
        if let Some(e) = log.failures.pop_front() {
            self.partial = log.partly;
            return Err(e);
        }
        if log.refuse.contains(&seq) {
            return Err(SendError::Rejected {
                message: format!("422: record {seq} refused"),
            });
        }
        if matches!(record, Record::Create(_)) {
            run.state.server_run_id = Some(format!("mem-{}", run.spec.id));
        }
        if log.delivered.iter().all(|(k, _)| k != key) {
            log.delivered.push((key.to_owned(), record.clone()));
        }
        Ok(())
    }

    fn partly_delivered(&mut self) -> bool {
        std::mem::take(&mut self.partial)
    }

    fn mark_refused(
        &mut self,
        _run: &mut RunContext<'_>,
        key: &str,
        note: &RefusalNote<'_>,
    ) -> Result<(), SendError> {
        let mut log = self.log.lock();
        if log.marks.iter().all(|(k, _, _)| k != key) {
            log.marks
                .push((key.to_owned(), note.seq, note.refused_records));
        }
        Ok(())
    }

    fn heartbeat(&mut self, _server_run_id: &str) -> Result<(), SendError> {
        self.log.lock().heartbeats += 1;
        Ok(())
    }

    fn abort_requested(&mut self, _server_run_id: &str) -> Result<bool, SendError> {
        Ok(self.log.lock().abort)
    }
}
