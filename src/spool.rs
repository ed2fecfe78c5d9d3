//! The durable spool: one directory per run holding an append-only,
//! checksummed log of its [`Record`]s, the files it saved, and how far a
//! server has acknowledged it.
//!
//! Every run goes through the spool, online or not: the worker writes records
//! here first and the sender ships them from here, so a server that is down,
//! slow or restarted costs memory nothing and loses nothing. `simtrack sync`
//! replays the same directories later with the same code.
//!
//! Layout of `<offline dir>/runs/<run id>/`:
//!
//! | file          | what                                                         |
//! |---------------|--------------------------------------------------------------|
//! | `records.log` | frames: `u32 LE length`, `u32 LE CRC-32 of payload`, payload (msgpack [`Record`]) |
//! | `files/`      | captured copies of saved files, named by SHA-256             |
//! | `state.json`  | [`DeliveryState`]: server ids and the acknowledged position  |
//! | `lock`        | locked (`flock`) by the process writing or uploading the run |
//! | `lanes/`      | the logging threads' buffers, memory-mapped (see `lanes`); removed when the run finishes, recovered by `simtrack sync` if its process died |
//!
//! A frame is `magic (4 bytes) | u32 LE payload length | u32 LE CRC-32 of the
//! payload | u32 LE CRC-32 of the twelve header bytes before it | payload`.
//! The writer rolls a failed append back (cuts the file to the last good
//! frame), so the log it leaves holds only whole frames; a crash can still
//! leave a partial last frame, and a damaged disk anything. [`SpoolReader`]
//! reports a torn tail and, for damage in the middle, scans forward to the
//! next offset where magic, header checksum and payload checksum all hold:
//! every intact frame is recovered, the skipped stretches are reported.
//! Logs written before frames had a magic (`u32 length | u32 CRC | payload`)
//! are still read, without resynchronisation.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::record::Record;

/// Every frame starts with these bytes (`0xC1` is never a msgpack type byte).
const FRAME_MAGIC: [u8; 4] = [0xC1, b'S', b'T', 0x01];
/// Magic, payload length, payload CRC-32, CRC-32 of the twelve bytes before.
const FRAME_HEADER: usize = 16;
/// The header of logs written before frames had a magic: length, CRC.
const LEGACY_HEADER: usize = 8;
/// No single record is larger than this; a length field above it is corruption.
const MAX_FRAME: u32 = 256 * 1024 * 1024;

/// The directory holding all spooled runs under an offline dir.
pub fn runs_dir(offline_dir: &Path) -> PathBuf {
    offline_dir.join("runs")
}

/// Creates `path` and any missing parents as directories only their owner
/// may enter (0700): a spool holds everything a run logged, and it often
/// lives on a login node other users share.
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Open options that create a file only its owner may read (0600).
pub fn private_file() -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = OpenOptions::new();
    o.mode(0o600);
    o
}

/// Whether group or other users may access `path` (for a start-up warning).
pub fn shared_with_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

/// Paths of one run's spool directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }
    pub fn log(&self) -> PathBuf {
        self.root.join("records.log")
    }
    pub fn files(&self) -> PathBuf {
        self.root.join("files")
    }
    pub fn state(&self) -> PathBuf {
        self.root.join("state.json")
    }
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// Takes the run's lock without waiting: `Ok(None)` if another process
    /// (or handle) holds it. The lock is released when the file is dropped,
    /// or by the kernel if the process dies, so a stale lock cannot exist.
    pub fn try_lock(&self) -> Result<Option<File>, Error> {
        let f = private_file()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock_path())
            .map_err(|e| Error::io(format!("cannot open {}", self.lock_path().display()), e))?;
        match f.try_lock() {
            Ok(()) => Ok(Some(f)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(Error::io(
                format!("cannot lock {}", self.lock_path().display()),
                e,
            )),
        }
    }

    pub fn read_state(&self) -> DeliveryState {
        fs::read(self.state())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Replaces `state.json` atomically (write to a temporary file, rename).
    pub fn write_state(&self, state: &DeliveryState) -> Result<(), Error> {
        let tmp = self.root.join("state.json.tmp");
        let body = serde_json::to_vec_pretty(state)
            .map_err(|e| Error::new(crate::Status::Internal, e.to_string()))?;
        private_file()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&body))
            .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
        fs::rename(&tmp, self.state())
            .map_err(|e| Error::io(format!("cannot replace {}", self.state().display()), e))
    }
}

/// What a server has acknowledged of a run, kept in `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryState {
    /// The server the ids below belong to.
    pub server_url: Option<String>,
    /// The run's id on that server, once created there.
    pub server_run_id: Option<String>,
    /// Records `0..acked` are acknowledged.
    pub acked: u64,
    /// Byte offset in `records.log` of record `acked`.
    pub acked_offset: u64,
    /// Every refusal for good (4xx) the server gave, with its message: the
    /// history, for reports. What is still refused is in `refused`.
    #[serde(default)]
    pub rejected: Vec<String>,
    /// Records the server refused for good and that have not been accepted
    /// since. They stay in `records.log` (delivery moves past them so the
    /// rest of the run arrives); `simtrack sync` tries them again and
    /// reports those still refused.
    #[serde(default)]
    pub refused: Vec<RefusedRecord>,
    /// Alert ids created on the server, kept so the run's alert list can be
    /// sent whole, as the API expects.
    #[serde(default)]
    pub alert_ids: Vec<String>,
    /// True once a `Finish` record has been acknowledged.
    #[serde(default)]
    pub finished: bool,
    /// Grid ids created on the server, by the run's grid name.
    #[serde(default)]
    pub grid_ids: std::collections::BTreeMap<String, String>,
}

/// A record the server refused for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusedRecord {
    pub seq: u64,
    /// Where its frame starts in `records.log`.
    pub offset: u64,
    /// What it holds, e.g. "metrics batch of 16000 points".
    pub what: String,
    /// The server's answer.
    pub reason: String,
    /// Whether the run on the server has been told (an `error` event and
    /// `simtrack.refused_records` metadata).
    #[serde(default)]
    pub marked: bool,
}

/// Appends records to a run's `records.log`.
///
/// An append is all or nothing: if the write fails (a full disk, a quota),
/// the file is cut back to the end of the last good frame, so the log never
/// holds a torn frame the writer knows of, and the caller may retry the
/// same record later.
#[derive(Debug)]
pub struct SpoolWriter {
    file: File,
    next_seq: u64,
    len: u64,
    buf: Vec<u8>,
    /// Where the writeback of what was appended has been started up to.
    written_back: u64,
}

/// Bytes appended after which their writeback to the disk is started (see
/// [`SpoolWriter::start_writeback`]). The final sync waits for about this
/// much: for 12 MB written in a burst, 0.66 ms with 1 MiB against 2.94 ms
/// with 4 MiB and 7.46 ms with none (`bench/writeback.c`, medians of 5).
const WRITEBACK_BYTES: u64 = 1 << 20;

impl SpoolWriter {
    /// Creates the run directory and an empty log. If the log cannot be
    /// created, the directory is removed again (it would otherwise be a run
    /// without a record that every later sync trips over).
    pub fn create(dir: &RunDir) -> Result<Self, Error> {
        let existed = dir.root.exists();
        let made = create_private_dir_all(&dir.files())
            .map_err(|e| {
                Error::io(
                    format!("cannot create spool directory {}", dir.root.display()),
                    e,
                )
            })
            .and_then(|()| {
                private_file()
                    .create_new(true)
                    .append(true)
                    .open(dir.log())
                    .map_err(|e| Error::io(format!("cannot create {}", dir.log().display()), e))
            });
        match made {
            Ok(file) => Ok(SpoolWriter {
                file,
                next_seq: 0,
                len: 0,
                buf: Vec::with_capacity(64 * 1024),
                written_back: 0,
            }),
            Err(e) => {
                if !existed {
                    let _ = fs::remove_dir_all(&dir.root);
                }
                Err(e)
            }
        }
    }

    /// Opens an existing run's log to append more records (recovery of a
    /// dead process's buffers): counts its records as readers do and cuts a
    /// torn tail off first.
    pub fn reopen(dir: &RunDir) -> Result<Self, Error> {
        let mut reader = SpoolReader::open(dir, 0, 0)?;
        let mut records = 0u64;
        let mut end = 0u64;
        while let Some(e) = reader.next_entry()? {
            records += 1;
            end = e.end;
        }
        if let Some(t) = reader.torn_tail() {
            end = t.offset;
        }
        cut(dir, end)?;
        let file = OpenOptions::new()
            .append(true)
            .open(dir.log())
            .map_err(|e| Error::io(format!("cannot open {}", dir.log().display()), e))?;
        Ok(SpoolWriter {
            file,
            next_seq: records,
            len: end,
            buf: Vec::with_capacity(64 * 1024),
            written_back: end,
        })
    }

    /// Appends one record (one `write` call) and returns its sequence number.
    /// Once this returns, the record survives the death of the process; call
    /// [`SpoolWriter::sync`] to make it survive the machine's too. On failure
    /// nothing of the record stays in the log.
    pub fn append(&mut self, record: &Record) -> Result<u64, Error> {
        self.buf.clear();
        self.buf.extend_from_slice(&[0; FRAME_HEADER]);
        let encoded = match record {
            // The bulk of every spool, encoded by hand: the same bytes as
            // rmp_serde writes (a test checks), several times faster.
            Record::Metrics(batch) => encode_metrics(&mut self.buf, batch),
            Record::Events(events) => encode_events(&mut self.buf, events),
            _ => rmp_serde::encode::write_named(&mut self.buf, record).map_err(|e| e.to_string()),
        };
        encoded.map_err(|e| {
            Error::new(
                crate::Status::Internal,
                format!("cannot encode record: {e}"),
            )
        })?;
        self.write_frame()
    }

    /// Appends the events of `block` as one `Record::Events` (read back as
    /// such) and returns its sequence number; as [`SpoolWriter::append`].
    pub fn append_block(&mut self, block: &crate::record::EventBlock) -> Result<u64, Error> {
        self.buf.clear();
        self.buf.extend_from_slice(&[0; FRAME_HEADER]);
        events_header(&mut self.buf, block.count)
            .map_err(|e| Error::new(crate::Status::Internal, e))?;
        self.buf.extend_from_slice(&block.buf);
        self.write_frame()
    }

    /// Appends the record `encode` writes (a [`Record`] in msgpack, as
    /// [`SpoolWriter::append`] would write it) and returns its sequence
    /// number; as [`SpoolWriter::append`].
    pub(crate) fn append_with(&mut self, encode: impl FnOnce(&mut Vec<u8>)) -> Result<u64, Error> {
        self.buf.clear();
        self.buf.extend_from_slice(&[0; FRAME_HEADER]);
        encode(&mut self.buf);
        self.write_frame()
    }

    /// Writes the payload in `buf` (after room for the header) as a frame.
    fn write_frame(&mut self) -> Result<u64, Error> {
        let payload_len = self.buf.len() - FRAME_HEADER;
        let len = u32::try_from(payload_len)
            .ok()
            .filter(|l| *l <= MAX_FRAME)
            .ok_or_else(|| {
                Error::new(
                    crate::Status::InvalidArgument,
                    "record too large for the spool",
                )
            })?;
        let crc = crc32fast::hash(&self.buf[FRAME_HEADER..]);
        let header = frame_header(len, crc);
        self.buf[..FRAME_HEADER].copy_from_slice(&header);
        if let Err(e) = self.file.write_all(&self.buf) {
            self.roll_back();
            return Err(Error::io("cannot write to the spool", e));
        }
        self.len += self.buf.len() as u64;
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.len - self.written_back >= WRITEBACK_BYTES {
            self.start_writeback();
        }
        Ok(seq)
    }

    /// Starts writing what was appended since the last call to the disk,
    /// without waiting for it. A spool written in bulk (a burst of output
    /// under `simtrack run`, millions of points) would otherwise sit in the
    /// page cache until [`SpoolWriter::sync`] at the end, and that one call
    /// would wait for all of it: 60 ms for 124 MB here, added to the exit of
    /// every such run. Errors are left to `sync`, which reports them.
    fn start_writeback(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a plain system call on our own descriptor and a range
            // within the file; it only schedules writeback.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.written_back as libc::off64_t,
                    (self.len - self.written_back) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.written_back = self.len;
    }

    /// Cuts the log back to the last complete frame after a failed write.
    fn roll_back(&mut self) {
        if self.file.set_len(self.len).is_err() {
            // Cannot cut (rare: truncation frees space). Whatever the failed
            // write left stays; readers resynchronise past it. Later frames
            // start after it, so count it.
            if let Ok(m) = self.file.metadata() {
                self.len = m.len();
            }
        }
    }

    /// Forces what was appended to stable storage.
    pub fn sync(&mut self) -> Result<(), Error> {
        self.file
            .sync_data()
            .map_err(|e| Error::io("cannot sync the spool", e))
    }

    /// How many records have been appended.
    pub fn records(&self) -> u64 {
        self.next_seq
    }

    /// Bytes in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Appends `Record::Metrics(batch)` to `buf` as `rmp_serde::encode::write_named`
/// does: `{"Metrics": {"names": [..], "points": [[name, value, step, time], ..]}}`.
fn encode_metrics(buf: &mut Vec<u8>, batch: &crate::record::MetricBatch) -> Result<(), String> {
    use rmp::encode as m;
    let e = |e: rmp::encode::ValueWriteError| e.to_string();
    m::write_map_len(buf, 1).map_err(e)?;
    m::write_str(buf, "Metrics").map_err(e)?;
    m::write_map_len(buf, 2).map_err(e)?;
    m::write_str(buf, "names").map_err(e)?;
    m::write_array_len(buf, batch.names.len() as u32).map_err(e)?;
    for n in &batch.names {
        m::write_str(buf, n).map_err(e)?;
    }
    m::write_str(buf, "points").map_err(e)?;
    m::write_array_len(buf, batch.points.len() as u32).map_err(e)?;
    buf.reserve(batch.points.len() * 32);
    for p in &batch.points {
        buf.push(0x94); // fixarray of 4
        m::write_uint(buf, u64::from(p.name)).map_err(e)?;
        m::write_f64(buf, p.value).map_err(|e| e.to_string())?;
        m::write_sint(buf, p.step).map_err(e)?;
        m::write_f64(buf, p.time).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Appends `Record::Events(events)` to `buf` as `rmp_serde::encode::write_named`
/// does: `{"Events": [{"message": .., "timestamp": .., "level": ..}, ..]}`
/// (`level` left out when `None`). `simtrack run` records a million lines
/// in a burst: this is the writer's share of each.
fn encode_events(buf: &mut Vec<u8>, events: &[crate::record::Event]) -> Result<(), String> {
    events_header(buf, events.len() as u32)?;
    for ev in events {
        encode_event(buf, &ev.message, ev.timestamp, ev.level);
    }
    Ok(())
}

/// `{"Events": [` and the length of the list, in msgpack.
fn events_header(buf: &mut Vec<u8>, count: u32) -> Result<(), String> {
    use rmp::encode as m;
    let e = |e: rmp::encode::ValueWriteError| e.to_string();
    m::write_map_len(buf, 1).map_err(e)?;
    m::write_str(buf, "Events").map_err(e)?;
    m::write_array_len(buf, count).map_err(e)?;
    Ok(())
}

/// Appends one [`crate::record::Event`] as rmp_serde writes it (a map of
/// its named fields).
pub(crate) fn encode_event(
    buf: &mut Vec<u8>,
    message: &str,
    timestamp: f64,
    level: Option<crate::model::EventLevel>,
) {
    use rmp::encode as m;
    buf.reserve(message.len() + 40);
    buf.push(if level.is_some() { 0x83 } else { 0x82 }); // fixmap
    buf.extend_from_slice(b"\xa7message");
    // Writes to a Vec cannot fail.
    let _ = m::write_str(buf, message);
    buf.extend_from_slice(b"\xa9timestamp");
    let _ = m::write_f64(buf, timestamp);
    if let Some(level) = level {
        buf.extend_from_slice(b"\xa5level");
        let _ = m::write_str(buf, level.as_str());
    }
}

/// Cuts `records.log` back to `len` bytes if it is longer (a frame cut short
/// by the death of the writing process).
pub fn cut(dir: &RunDir, len: u64) -> Result<(), Error> {
    let f = OpenOptions::new()
        .write(true)
        .open(dir.log())
        .map_err(|e| Error::io(format!("cannot open {}", dir.log().display()), e))?;
    let now = f
        .metadata()
        .map_err(|e| Error::io(format!("cannot read {}", dir.log().display()), e))?
        .len();
    if now > len {
        f.set_len(len)
            .map_err(|e| Error::io(format!("cannot cut {}", dir.log().display()), e))?;
    }
    Ok(())
}

/// The 16-byte header of a frame holding `len` payload bytes with CRC `crc`.
fn frame_header(len: u32, crc: u32) -> [u8; FRAME_HEADER] {
    let mut h = [0u8; FRAME_HEADER];
    h[0..4].copy_from_slice(&FRAME_MAGIC);
    h[4..8].copy_from_slice(&len.to_le_bytes());
    h[8..12].copy_from_slice(&crc.to_le_bytes());
    let hcrc = crc32fast::hash(&h[0..12]);
    h[12..16].copy_from_slice(&hcrc.to_le_bytes());
    h
}

/// A stretch of the log that is not a good frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Offset of the first byte not trusted.
    pub offset: u64,
    /// Bytes from there to the end of the file (for a tail), or to the next
    /// good frame (for a damaged stretch that was skipped).
    pub bytes: u64,
    pub reason: String,
}

/// One record read back, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: u64,
    /// Offset of this record's frame.
    pub offset: u64,
    /// Offset just past it: where the next record starts.
    pub end: u64,
    pub record: Record,
}

/// What the bytes at one offset are.
enum Frame {
    /// A good frame: payload at `[at + header, end)`.
    Good { payload: (usize, usize), end: u64 },
    /// Not a frame.
    Bad(&'static str),
    /// The file ends before a frame here could be complete: maybe a write in
    /// progress (a good header, or fewer bytes than a header).
    Short(&'static str),
    /// Nothing at all: the clean end of the file.
    End,
}

/// Reads a run's `records.log` from a known position.
///
/// The reader may follow a log that is still being written: at the current
/// end of file, [`SpoolReader::next_entry`] returns `Ok(None)`, and a later
/// call sees records appended since. A frame that is incomplete *and* at the
/// end of the file may be a write in progress; [`SpoolReader::torn_tail`]
/// tells whether what stopped the reader looks torn.
///
/// Damage in the middle of the log (a torn frame followed by good ones, a
/// flipped bit) does not stop it: it scans forward for the next frame whose
/// magic, header checksum and payload checksum all hold, returns the
/// records from there, and lists the stretch it skipped in
/// [`SpoolReader::skipped`].
#[derive(Debug)]
pub struct SpoolReader {
    file: File,
    /// Bytes of the file from `buf_off`.
    buf: Vec<u8>,
    buf_off: u64,
    offset: u64,
    seq: u64,
    torn: Option<TornTail>,
    skipped: Vec<TornTail>,
    /// The log predates framed headers (`len`, `crc`, payload): read without
    /// resynchronisation, as it was written.
    legacy: bool,
    /// Bytes of the file the reader may read (see [`SpoolReader::set_limit`]).
    limit: u64,
}

/// Bytes read from the file at a time.
const READ_CHUNK: usize = 256 * 1024;

impl SpoolReader {
    /// Opens `dir`'s log at record `seq`, which starts at byte `offset`
    /// (`0, 0` for the beginning).
    pub fn open(dir: &RunDir, seq: u64, offset: u64) -> Result<Self, Error> {
        let file = File::open(dir.log())
            .map_err(|e| Error::io(format!("cannot open {}", dir.log().display()), e))?;
        Ok(Self::from_file(file, seq, offset))
    }

    /// A reader over an open log file (any `File`; tests use temporary ones).
    pub fn from_file(file: File, seq: u64, offset: u64) -> Self {
        let legacy = is_legacy(&file);
        SpoolReader {
            file,
            buf: Vec::new(),
            buf_off: offset,
            offset,
            seq,
            torn: None,
            skipped: Vec::new(),
            legacy,
            limit: u64::MAX,
        }
    }

    /// Where the next record would start.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The sequence number of the next record.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// What stopped the last read short of a clean end of file, if anything.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn.as_ref()
    }

    /// Damaged stretches skipped so far, in file order.
    pub fn skipped(&self) -> &[TornTail] {
        &self.skipped
    }

    /// Reads no further than byte `limit` of the file. A reader following a
    /// live writer sets the length the writer has completed, so it never
    /// sees a frame being written, nor one a failed write leaves before it
    /// is cut back.
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
        // Forget anything read past it.
        let keep = limit
            .saturating_sub(self.buf_off)
            .min(self.buf.len() as u64);
        self.buf.truncate(keep as usize);
    }

    /// Carries over what an earlier reader of the same log skipped.
    pub fn keep_skipped(&mut self, skipped: Vec<TornTail>) {
        self.skipped = skipped;
    }

    /// Makes `buf` hold the file's bytes `[at, at + n)` as far as the file
    /// has them; returns how many it holds. Always reads again past what it
    /// holds, so a reader following a writer sees what was appended since.
    fn have(&mut self, at: u64, n: usize) -> io::Result<usize> {
        if at < self.buf_off || at > self.buf_off + self.buf.len() as u64 {
            self.buf.clear();
            self.buf_off = at;
        } else if at - self.buf_off >= READ_CHUNK as u64 {
            self.buf.drain(..(at - self.buf_off) as usize);
            self.buf_off = at;
        }
        let start = (at - self.buf_off) as usize;
        let want = start + n;
        let limit = self
            .limit
            .saturating_sub(self.buf_off)
            .min(usize::MAX as u64) as usize;
        if self.buf.len() < want && self.buf.len() < limit {
            let old = self.buf.len();
            let grow = (want - old).max(READ_CHUNK).min(limit - old);
            self.buf.resize(old + grow, 0);
            match read_at(&self.file, &mut self.buf[old..], self.buf_off + old as u64) {
                Ok(k) => self.buf.truncate(old + k),
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        }
        Ok(self.buf.len().saturating_sub(start).min(n))
    }

    /// Classifies the bytes at `at`.
    fn frame_at(&mut self, at: u64) -> io::Result<Frame> {
        let header_len = if self.legacy {
            LEGACY_HEADER
        } else {
            FRAME_HEADER
        };
        let got = self.have(at, header_len)?;
        if got == 0 {
            return Ok(Frame::End);
        }
        let s = (at - self.buf_off) as usize;
        if !self.legacy {
            // A prefix of the magic at the end of the file may be a frame
            // still being written; anything else cannot become one.
            let m = got.min(4);
            if self.buf[s..s + m] != FRAME_MAGIC[..m] {
                return Ok(Frame::Bad("no frame marker"));
            }
        }
        if got < header_len {
            return Ok(Frame::Short("incomplete frame header"));
        }
        let h = &self.buf[s..s + header_len];
        let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let (len, crc) = if self.legacy {
            (word(0), word(4))
        } else {
            if crc32fast::hash(&h[0..12]) != word(12) {
                return Ok(Frame::Bad("frame header checksum mismatch"));
            }
            (word(4), word(8))
        };
        if len > MAX_FRAME {
            return Ok(Frame::Bad("frame length out of range"));
        }
        let total = header_len + len as usize;
        if self.have(at, total)? < total {
            return Ok(Frame::Short("incomplete frame payload"));
        }
        let s = (at - self.buf_off) as usize;
        let payload = (s + header_len, s + total);
        if crc32fast::hash(&self.buf[payload.0..payload.1]) != crc {
            return Ok(Frame::Bad("checksum mismatch"));
        }
        Ok(Frame::Good {
            payload,
            end: at + total as u64,
        })
    }

    /// The next record, or `Ok(None)` at the end of the trusted data.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        self.torn = None;
        let io_err = |e| Error::io("cannot read the spool", e);
        loop {
            let start = self.offset;
            match self.frame_at(start).map_err(io_err)? {
                Frame::End => return Ok(None),
                Frame::Good { payload, end } => {
                    match rmp_serde::from_slice::<Record>(&self.buf[payload.0..payload.1]) {
                        Ok(record) => {
                            let entry = Entry {
                                seq: self.seq,
                                offset: start,
                                end,
                                record,
                            };
                            self.offset = end;
                            self.seq += 1;
                            return Ok(Some(entry));
                        }
                        Err(e) => {
                            self.skip(start, end, format!("undecodable record: {e}"));
                        }
                    }
                }
                Frame::Short(reason) | Frame::Bad(reason) if self.legacy => {
                    return self.stop(start, reason);
                }
                // A frame cut short is a write in progress only if nothing
                // good follows it: the writer only ever appends.
                Frame::Short(reason) | Frame::Bad(reason) => {
                    match self.resync(start + 1).map_err(io_err)? {
                        Some(next) => self.skip(start, next, reason.to_owned()),
                        None => return self.stop(start, reason),
                    }
                }
            }
        }
    }

    /// Finds the first offset from `from` where a good frame starts; `None`
    /// if the file ends first.
    fn resync(&mut self, mut from: u64) -> io::Result<Option<u64>> {
        loop {
            // Search what is buffered; read more only at its end.
            if self.have(from, FRAME_HEADER)? == 0 {
                return Ok(None);
            }
            let s = (from - self.buf_off) as usize;
            let hit = self.buf[s..].iter().position(|b| *b == FRAME_MAGIC[0]);
            let Some(i) = hit else {
                from += (self.buf.len() - s) as u64;
                continue;
            };
            let at = from + i as u64;
            match self.frame_at(at)? {
                Frame::Good { .. } => return Ok(Some(at)),
                Frame::End => return Ok(None),
                // Cut short, or not a frame: only a good frame further on
                // proves the damage is over.
                Frame::Short(_) | Frame::Bad(_) => from = at + 1,
            }
        }
    }

    fn skip(&mut self, start: u64, next: u64, reason: String) {
        self.offset = next;
        if self.skipped.iter().any(|t| t.offset == start) {
            return;
        }
        self.skipped.push(TornTail {
            offset: start,
            bytes: next - start,
            reason,
        });
        self.offset = next;
    }

    /// Stops at `start` (a later call retries there: the writer may still
    /// be completing the frame) and reports what was seen.
    fn stop(&mut self, start: u64, reason: &str) -> Result<Option<Entry>, Error> {
        // Read it again next time: it may have been completed, or cut back
        // and written anew.
        let keep = start
            .saturating_sub(self.buf_off)
            .min(self.buf.len() as u64);
        self.buf.truncate(keep as usize);
        let file_len = self.file.metadata().map(|m| m.len()).unwrap_or(start);
        self.torn = Some(TornTail {
            offset: start,
            bytes: file_len.saturating_sub(start),
            reason: reason.to_owned(),
        });
        Ok(None)
    }

    /// Reads every trusted record from the current position to the end.
    pub fn read_all(&mut self) -> Result<Vec<Entry>, Error> {
        let mut out = Vec::new();
        while let Some(e) = self.next_entry()? {
            out.push(e);
        }
        Ok(out)
    }
}

/// Whether the log predates framed headers: it does not start with the
/// magic and its first frame checks under the old rules (a log whose first
/// frame is damaged is read as a current one, with resynchronisation).
fn is_legacy(file: &File) -> bool {
    let mut h = [0u8; LEGACY_HEADER];
    if !matches!(read_at(file, &mut h, 0), Ok(LEGACY_HEADER)) || h[0..4] == FRAME_MAGIC {
        return false;
    }
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    // The first record is the run's description: never this large.
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > 16 * 1024 * 1024 || u64::from(len) + LEGACY_HEADER as u64 > file_len {
        return false;
    }
    let mut payload = vec![0u8; len as usize];
    matches!(read_at(file, &mut payload, LEGACY_HEADER as u64), Ok(n) if n == len as usize)
        && crc32fast::hash(&payload) == crc
}

/// Reads into `buf` from `offset`; returns the bytes read (fewer at the end).
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A spooled run found under an offline dir, for listing and sync.
#[derive(Debug, Clone)]
pub struct SpooledRun {
    pub id: String,
    pub dir: RunDir,
}

/// Lists the run directories under `offline_dir`, oldest first.
pub fn list_runs(offline_dir: &Path) -> Result<Vec<SpooledRun>, Error> {
    let dir = runs_dir(offline_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot list {}", dir.display()), e)),
    };
    let mut runs: Vec<(std::time::SystemTime, SpooledRun)> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.join("records.log").is_file() {
            continue;
        }
        let modified = fs::metadata(path.join("records.log"))
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        let id = entry.file_name().to_string_lossy().into_owned();
        runs.push((
            modified,
            SpooledRun {
                id,
                dir: RunDir::new(path),
            },
        ));
    }
    runs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    Ok(runs.into_iter().map(|(_, r)| r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Event, FinishRecord, RunStatus};

    fn event(i: usize) -> Record {
        Record::Events(vec![Event {
            message: format!("event {i}"),
            timestamp: i as f64,
            level: None,
        }])
    }

    #[test]
    fn records_read_back_in_order_with_their_positions() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        let mut w = SpoolWriter::create(&dir).unwrap();
        for i in 0..100 {
            assert_eq!(w.append(&event(i)).unwrap(), i as u64);
        }
        w.append(&Record::Finish(FinishRecord {
            status: RunStatus::Completed,
            endtime: 1.0,
        }))
        .unwrap();
        let all = SpoolReader::open(&dir, 0, 0).unwrap().read_all().unwrap();
        assert_eq!(all.len(), 101);
        assert_eq!(all[42].record, event(42));
        assert_eq!(all[42].seq, 42);
        // Resuming from a recorded position yields exactly the rest.
        let rest = SpoolReader::open(&dir, 50, all[50].offset)
            .unwrap()
            .read_all()
            .unwrap();
        assert_eq!(rest.len(), 51);
        assert_eq!(rest[0].record, event(50));
        assert_eq!(rest[0].seq, 50);
    }

    #[test]
    fn torn_tail_is_reported_and_skipped_and_earlier_records_survive() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        let mut w = SpoolWriter::create(&dir).unwrap();
        for i in 0..10 {
            w.append(&event(i)).unwrap();
        }
        let good_len = w.len();
        drop(w);
        // A crash in the middle of the next frame leaves half of it.
        let mut f = OpenOptions::new().append(true).open(dir.log()).unwrap();
        f.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 9, 9]).unwrap();
        drop(f);
        let mut r = SpoolReader::open(&dir, 0, 0).unwrap();
        let all = r.read_all().unwrap();
        assert_eq!(all.len(), 10);
        let torn = r.torn_tail().expect("torn tail reported");
        assert_eq!(torn.offset, good_len);
        assert_eq!(torn.bytes, 10);
    }

    #[test]
    fn a_corrupted_frame_is_skipped_and_every_later_frame_recovered() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        let mut w = SpoolWriter::create(&dir).unwrap();
        for i in 0..5 {
            w.append(&event(i)).unwrap();
        }
        drop(w);
        let mut bytes = fs::read(dir.log()).unwrap();
        let all = SpoolReader::open(&dir, 0, 0).unwrap().read_all().unwrap();
        let third = all[3].offset as usize + FRAME_HEADER + 2;
        bytes[third] ^= 0xff;
        fs::write(dir.log(), &bytes).unwrap();
        let mut r = SpoolReader::open(&dir, 0, 0).unwrap();
        let got = r.read_all().unwrap();
        let records: Vec<_> = got.iter().map(|e| e.record.clone()).collect();
        assert_eq!(records, [event(0), event(1), event(2), event(4)]);
        assert!(r.torn_tail().is_none());
        assert_eq!(r.skipped().len(), 1);
        assert_eq!(r.skipped()[0].reason, "checksum mismatch");
        assert_eq!(r.skipped()[0].offset, all[3].offset);
        assert_eq!(r.skipped()[0].bytes, all[3].end - all[3].offset);
    }

    #[test]
    fn a_torn_frame_in_the_middle_does_not_hide_what_follows() {
        // What a failed write left before writes were rolled back: half a
        // frame, then more frames once the disk had room again.
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        let mut w = SpoolWriter::create(&dir).unwrap();
        for i in 0..3 {
            w.append(&event(i)).unwrap();
        }
        let cut = w.len();
        w.append(&event(99)).unwrap();
        let half = (cut + (w.len() - cut) / 2) as usize;
        for i in 3..6 {
            w.append(&event(i)).unwrap();
        }
        drop(w);
        let mut bytes = fs::read(dir.log()).unwrap();
        // Keep the first half of event 99's frame only.
        let next = SpoolReader::open(&dir, 0, 0).unwrap().read_all().unwrap()[4].offset as usize;
        bytes.drain(half..next);
        fs::write(dir.log(), &bytes).unwrap();
        let mut r = SpoolReader::open(&dir, 0, 0).unwrap();
        let records: Vec<_> = r
            .read_all()
            .unwrap()
            .into_iter()
            .map(|e| e.record)
            .collect();
        assert_eq!(records, (0..6).map(event).collect::<Vec<_>>());
        assert_eq!(r.skipped().len(), 1);
        assert_eq!(r.skipped()[0].offset, cut);
    }

    #[test]
    fn logs_written_before_frames_had_a_marker_still_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        fs::create_dir_all(&dir.root).unwrap();
        let mut bytes = Vec::new();
        for i in 0..3 {
            let payload = rmp_serde::to_vec_named(&event(i)).unwrap();
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
        }
        bytes.extend_from_slice(&[9, 0, 0]);
        fs::write(dir.log(), &bytes).unwrap();
        let mut r = SpoolReader::open(&dir, 0, 0).unwrap();
        assert_eq!(r.read_all().unwrap().len(), 3);
        assert_eq!(r.torn_tail().unwrap().bytes, 3);
    }

    #[test]
    fn reader_follows_a_log_that_is_still_growing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        let mut w = SpoolWriter::create(&dir).unwrap();
        w.append(&event(0)).unwrap();
        let mut r = SpoolReader::open(&dir, 0, 0).unwrap();
        assert!(r.next_entry().unwrap().is_some());
        assert!(r.next_entry().unwrap().is_none());
        w.append(&event(1)).unwrap();
        assert_eq!(r.next_entry().unwrap().unwrap().record, event(1));
    }

    #[test]
    fn metrics_are_encoded_as_rmp_serde_encodes_them() {
        use crate::record::{MetricBatch, Point};
        let values = [0.0, -1.5, f64::NAN, f64::INFINITY, 1e300, -0.0];
        let steps = [0, 1, 127, 128, -1, -33, 255, 65_536, i64::MIN, i64::MAX];
        let names = [0u32, 1, 127, 128, 300, 70_000, u32::MAX];
        let mut points = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            for (j, v) in values.iter().enumerate() {
                points.push(Point {
                    name: names[(i + j) % names.len()],
                    value: *v,
                    step: *s,
                    time: i as f64 * 0.25,
                });
            }
        }
        for batch in [
            MetricBatch {
                names: vec!["residual".into(), "é/ü".into(), "x".repeat(300)],
                points,
            },
            MetricBatch {
                names: vec![],
                points: vec![],
            },
        ] {
            let record = Record::Metrics(batch);
            let mut ours = Vec::new();
            match &record {
                Record::Metrics(b) => encode_metrics(&mut ours, b).unwrap(),
                _ => unreachable!(),
            }
            let theirs = rmp_serde::to_vec_named(&record).unwrap();
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn events_are_encoded_as_rmp_serde_encodes_them() {
        use crate::model::EVENT_LEVELS;
        use crate::record::Event;
        let mut events = Vec::new();
        for (i, m) in [
            "",
            "line 1",
            "é ü",
            &"x".repeat(40),
            &"y".repeat(300),
            &"z".repeat(70_000),
        ]
        .into_iter()
        .enumerate()
        {
            for level in std::iter::once(None).chain(EVENT_LEVELS.map(Some)) {
                events.push(Event {
                    message: m.to_owned(),
                    timestamp: 1.7e9 + i as f64 * 0.125,
                    level,
                });
            }
        }
        for list in [events, vec![]] {
            let record = Record::Events(list);
            let mut ours = Vec::new();
            match &record {
                Record::Events(l) => encode_events(&mut ours, l).unwrap(),
                _ => unreachable!(),
            }
            assert_eq!(ours, rmp_serde::to_vec_named(&record).unwrap());
        }
    }

    #[test]
    fn an_event_block_reads_back_as_the_events_it_holds() {
        use crate::record::{Event, EventBlock, EventLevel};
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        let mut w = SpoolWriter::create(&dir).unwrap();
        let mut block = EventBlock::default();
        let mut want = Vec::new();
        for (i, level) in [None, Some(EventLevel::Error), None]
            .into_iter()
            .enumerate()
        {
            let message = format!("line {i} é");
            block.push(&message, 10.5 + i as f64, level).unwrap();
            want.push(Event {
                message,
                timestamp: 10.5 + i as f64,
                level,
            });
        }
        let long = "x".repeat(crate::model::MAX_EVENT_BYTES + 1);
        assert!(block.push(&long, 0.0, None).is_err());
        assert_eq!(block.len(), 3);
        w.append_block(&block).unwrap();
        w.append(&event(7)).unwrap();
        let mut r = SpoolReader::open(&dir, 0, 0).unwrap();
        assert_eq!(
            r.next_entry().unwrap().unwrap().record,
            Record::Events(want)
        );
        assert_eq!(r.next_entry().unwrap().unwrap().record, event(7));
    }

    #[test]
    fn a_line_block_reads_back_as_lines_between_older_records() {
        use crate::record::{LineBatch, LineBlock};
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        let mut w = SpoolWriter::create(&dir).unwrap();
        let mut block = LineBlock::new(3.5, None, 0);
        block.push("one", None).unwrap();
        block.push("two", None).unwrap();
        w.append(&event(1)).unwrap();
        w.append_with(|buf| block.encode(buf)).unwrap();
        w.append(&event(2)).unwrap();
        let mut r = SpoolReader::open(&dir, 0, 0).unwrap();
        assert_eq!(r.next_entry().unwrap().unwrap().record, event(1));
        assert_eq!(
            r.next_entry().unwrap().unwrap().record,
            Record::Lines(LineBatch {
                timestamp: 3.5,
                level: None,
                text: "onetwo".to_owned(),
                lens: vec![3, 3],
                levels: Vec::new(),
            })
        );
        assert_eq!(r.next_entry().unwrap().unwrap().record, event(2));
    }

    #[test]
    fn lock_is_exclusive_between_handles() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("r"));
        SpoolWriter::create(&dir).unwrap();
        let held = dir.try_lock().unwrap();
        assert!(held.is_some());
        assert!(dir.try_lock().unwrap().is_none());
        drop(held);
        assert!(dir.try_lock().unwrap().is_some());
    }
}
