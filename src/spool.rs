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
//!
//! A crash can only leave a partial last frame. [`SpoolReader`] reports such a
//! torn tail (or any frame whose checksum fails) and stops there: everything
//! before it is returned, nothing after it is trusted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::record::Record;

const FRAME_HEADER: usize = 8;
/// No single record is larger than this; a length field above it is corruption.
const MAX_FRAME: u32 = 256 * 1024 * 1024;

/// The directory holding all spooled runs under an offline dir.
pub fn runs_dir(offline_dir: &Path) -> PathBuf {
    offline_dir.join("runs")
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
        let f = OpenOptions::new()
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
        fs::write(&tmp, body)
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
    /// Records the server refused for good (4xx), with its message.
    #[serde(default)]
    pub rejected: Vec<String>,
    /// Alert ids created on the server, kept so the run's alert list can be
    /// sent whole, as the API expects.
    #[serde(default)]
    pub alert_ids: Vec<String>,
    /// True once a `Finish` record has been acknowledged.
    #[serde(default)]
    pub finished: bool,
}

/// Appends records to a run's `records.log`.
#[derive(Debug)]
pub struct SpoolWriter {
    file: File,
    next_seq: u64,
    len: u64,
    buf: Vec<u8>,
}

impl SpoolWriter {
    /// Creates the run directory and an empty log.
    pub fn create(dir: &RunDir) -> Result<Self, Error> {
        fs::create_dir_all(dir.files()).map_err(|e| {
            Error::io(
                format!("cannot create spool directory {}", dir.root.display()),
                e,
            )
        })?;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(dir.log())
            .map_err(|e| Error::io(format!("cannot create {}", dir.log().display()), e))?;
        Ok(SpoolWriter {
            file,
            next_seq: 0,
            len: 0,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Appends one record (one `write` call) and returns its sequence number.
    /// Once this returns, the record survives the death of the process; call
    /// [`SpoolWriter::sync`] to make it survive the machine's too.
    pub fn append(&mut self, record: &Record) -> Result<u64, Error> {
        self.buf.clear();
        self.buf.extend_from_slice(&[0; FRAME_HEADER]);
        rmp_serde::encode::write_named(&mut self.buf, record).map_err(|e| {
            Error::new(
                crate::Status::Internal,
                format!("cannot encode record: {e}"),
            )
        })?;
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
        self.buf[0..4].copy_from_slice(&len.to_le_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        self.file
            .write_all(&self.buf)
            .map_err(|e| Error::io("cannot write to the spool", e))?;
        self.len += self.buf.len() as u64;
        let seq = self.next_seq;
        self.next_seq += 1;
        Ok(seq)
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

/// Why reading stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Offset of the first byte not trusted.
    pub offset: u64,
    /// Bytes from there to the end of the file.
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

/// Reads a run's `records.log` from a known position.
///
/// The reader may follow a log that is still being written: at the current
/// end of file, [`SpoolReader::next`] returns `Ok(None)`, and a later call
/// sees records appended since. A frame that is incomplete *and* at the end
/// of the file may be a write in progress; [`SpoolReader::torn_tail`] tells
/// whether what stopped the reader looks torn.
#[derive(Debug)]
pub struct SpoolReader {
    reader: BufReader<File>,
    offset: u64,
    seq: u64,
    torn: Option<TornTail>,
    payload: Vec<u8>,
}

impl SpoolReader {
    /// Opens `dir`'s log at record `seq`, which starts at byte `offset`
    /// (`0, 0` for the beginning).
    pub fn open(dir: &RunDir, seq: u64, offset: u64) -> Result<Self, Error> {
        let mut file = File::open(dir.log())
            .map_err(|e| Error::io(format!("cannot open {}", dir.log().display()), e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(format!("cannot seek in {}", dir.log().display()), e))?;
        Ok(SpoolReader {
            reader: BufReader::with_capacity(256 * 1024, file),
            offset,
            seq,
            torn: None,
            payload: Vec::new(),
        })
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

    /// The next record, or `Ok(None)` at the end of the trusted data.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        self.torn = None;
        let start = self.offset;
        let mut header = [0u8; FRAME_HEADER];
        let got = read_up_to(&mut self.reader, &mut header)
            .map_err(|e| Error::io("cannot read the spool", e))?;
        if got == 0 {
            return Ok(None);
        }
        if got < FRAME_HEADER {
            return self.stop(start, got as u64, "incomplete frame header");
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_FRAME {
            return self.stop(start, got as u64, "frame length out of range");
        }
        self.payload.resize(len as usize, 0);
        let got_payload = read_up_to(&mut self.reader, &mut self.payload)
            .map_err(|e| Error::io("cannot read the spool", e))?;
        if got_payload < len as usize {
            return self.stop(
                start,
                (FRAME_HEADER + got_payload) as u64,
                "incomplete frame payload",
            );
        }
        if crc32fast::hash(&self.payload) != crc {
            return self.stop(
                start,
                (FRAME_HEADER + got_payload) as u64,
                "checksum mismatch",
            );
        }
        let record: Record = match rmp_serde::from_slice(&self.payload) {
            Ok(r) => r,
            Err(e) => {
                return self.stop(
                    start,
                    (FRAME_HEADER + got_payload) as u64,
                    &format!("undecodable record: {e}"),
                );
            }
        };
        let end = start + (FRAME_HEADER + len as usize) as u64;
        let entry = Entry {
            seq: self.seq,
            offset: start,
            end,
            record,
        };
        self.offset = end;
        self.seq += 1;
        Ok(Some(entry))
    }

    /// Stops at `start`: rewinds so a later call retries there (the writer
    /// may still be completing the frame) and reports what was seen.
    fn stop(&mut self, start: u64, read: u64, reason: &str) -> Result<Option<Entry>, Error> {
        let file_len = self
            .reader
            .get_ref()
            .metadata()
            .map(|m| m.len())
            .unwrap_or(start + read);
        self.reader
            .seek(SeekFrom::Start(start))
            .map_err(|e| Error::io("cannot seek in the spool", e))?;
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

/// Reads until `buf` is full or the end of file; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
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
    fn corrupted_byte_stops_reading_at_that_frame() {
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
        assert_eq!(r.read_all().unwrap().len(), 3);
        assert_eq!(r.torn_tail().unwrap().reason, "checksum mismatch");
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
