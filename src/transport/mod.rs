//! How records reach a server: the [`Transport`] trait, the Simvue REST
//! implementation ([`http::HttpTransport`]) and an in-memory twin for tests
//! ([`memory::MemoryTransport`]).
//!
//! A transport delivers one spooled record at a time and says whether a
//! failure is worth retrying; the retry schedule itself belongs to the caller
//! (`delivery`), so every transport gets the same one.

use std::path::Path;
use std::time::Duration;

use crate::record::{Record, RunSpec};
use crate::spool::DeliveryState;

pub mod http;
pub mod memory;

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Transient (connection refused or reset, timeout, 429, 502, 503, 504):
    /// try the same record again, no sooner than `after` if the server said.
    Retry {
        after: Option<Duration>,
        message: String,
    },
    /// The server refused this record for good (a 4xx other than 401, 403,
    /// 429): skip it and report.
    Rejected { message: String },
    /// The token was refused (401/403): stop sending and keep everything in
    /// the spool until the configuration is fixed.
    Unauthorized { message: String },
}

impl SendError {
    pub fn message(&self) -> &str {
        match self {
            SendError::Retry { message, .. }
            | SendError::Rejected { message }
            | SendError::Unauthorized { message } => message,
        }
    }
}

/// Everything a transport may need about the run a record belongs to.
#[derive(Debug)]
pub struct RunContext<'a> {
    /// The run's first record.
    pub spec: &'a RunSpec,
    /// Server-side ids learned so far; a transport updates it as it learns
    /// more (the run's id on creation, alert ids, ...).
    pub state: &'a mut DeliveryState,
    /// Where the run's captured files are.
    pub files_dir: &'a Path,
}

/// What [`Transport::mark_refused`] reports.
#[derive(Debug, Clone, Copy)]
pub struct RefusalNote<'a> {
    /// The refused record.
    pub seq: u64,
    /// What it held ("metrics batch of 16000 points").
    pub what: &'a str,
    /// The server's answer.
    pub reason: &'a str,
    /// Records of the run refused so far, this one included.
    pub refused_records: usize,
}

/// A way to deliver a run's records to a server.
pub trait Transport: Send {
    /// Delivers record number `seq`. `key` is unique to the record and stays
    /// the same when the record is sent again; the server uses it to apply a
    /// resent record only once.
    fn deliver(
        &mut self,
        run: &mut RunContext<'_>,
        seq: u64,
        key: &str,
        record: &Record,
    ) -> Result<(), SendError>;

    /// Whether, since the last call, some of the record last given to
    /// [`Transport::deliver`] reached the server although the whole did not
    /// (a record sent as several requests). The caller's retry schedule then
    /// starts over, as after a delivered record; a transport that resends a
    /// record whole says `false`.
    fn partly_delivered(&mut self) -> bool {
        false
    }

    /// Marks the run on the server as missing data: the server refused
    /// record `note.seq` for good. `key` is unique to this note. The Simvue
    /// REST transport posts an `error`-level event and sets the run's
    /// metadata `simtrack.refused_records` (how many records are refused)
    /// and `simtrack.refused_reason` (the latest reason).
    fn mark_refused(
        &mut self,
        run: &mut RunContext<'_>,
        key: &str,
        note: &RefusalNote<'_>,
    ) -> Result<(), SendError>;

    /// Tells the server the run is alive.
    fn heartbeat(&mut self, server_run_id: &str) -> Result<(), SendError>;

    /// Asks whether the server wants the run to stop.
    fn abort_requested(&mut self, server_run_id: &str) -> Result<bool, SendError>;
}
