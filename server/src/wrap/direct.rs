//! A batch job's output files: the program writes them itself, the wrapper
//! reads them back.
//!
//! With `--direct`, when the wrapper's stdout or stderr is a regular file
//! (a batch job's output file, `simtrack run --direct -- prog > out.txt`),
//! the program is given that same file, as it would have without the
//! wrapper, and the wrapper reads the file from where the program starts
//! writing, through a descriptor of its own. The program's writes then cost what they cost
//! without the wrapper: no pipe, no wait for a reader, nothing copied twice.
//! And the program's output does not depend on the wrapper being alive (a
//! wrapper killed by the OOM killer takes no pipe with it, so no SIGPIPE).
//! Not the default: for a program printing as fast as it can, the file
//! costs it more than a pipe, and the wrapper, reading behind it, ends
//! later (`docs/run.md`).
//!
//! When both go to one file (`2>&1`, SLURM's default), stdout is read back
//! and stderr stays a pipe, so its lines are still known as stderr. The
//! wrapper's own writes into a file it reads back (the program's stderr
//! passed through, its own messages) are noted as byte ranges ([`Written`])
//! and skipped when the file is read, so each line is recorded once, as what
//! it is. stderr then reaches the file a moment after the program wrote it
//! (as it did through the pipes before): in a burst of block-buffered stdout
//! it may land between two blocks, within a line, as it may without the
//! wrapper; the recorded lines are whole.
//!
//! A file the program would write into the middle of (`1<>file`, opened
//! without truncating or appending) is not read back: what follows the
//! program's text is old text. Such a stream gets a pipe.
//!
//! The reader waits at the file's end with a growing pause (up to
//! [`MAX_PAUSE`]), woken at once when the program ends; the lines written
//! until then are all read. Output a background process writes after the
//! program has ended is not recorded. A file cut short while being read
//! (truncated by someone else) is read again from its start.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The longest pause of a reader waiting at the file's end: how late a
/// line of a quiet program may be recorded.
pub const MAX_PAUSE: Duration = Duration::from_millis(50);
/// The first pause at the file's end (doubling while nothing comes).
const MIN_PAUSE: Duration = Duration::from_micros(200);

/// Where the wrapper's writes into the program's output file went: byte
/// ranges the file's reader skips (shared by every writer and the reader,
/// under one lock, so a range is known before its bytes can be read).
pub struct Written {
    ranges: Mutex<Vec<(u64, u64)>>,
    /// The file opened for reading (our stderr may be write-only): where
    /// our bytes are looked for when the program wrote at the same time.
    reader: Option<File>,
}

/// The wrapper's own stderr while it goes into the output file being read
/// back (set once, when the program starts): [`write_stderr`] notes there.
static SHARED_STDERR: OnceLock<Arc<Written>> = OnceLock::new();

fn offset(f: &impl AsRawFd) -> Option<u64> {
    // SAFETY: lseek with SEEK_CUR and 0 only reads the offset.
    let at = unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_CUR) };
    u64::try_from(at).ok()
}

fn appends(f: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
    flags >= 0 && flags & libc::O_APPEND != 0
}

impl Written {
    /// Writes `data` to `f` (a descriptor of the output file) and notes
    /// where it went. The program may write between the offset read before
    /// and the one read after: then the bytes are looked for in between.
    fn write(&self, f: &mut File, data: &[u8]) -> std::io::Result<()> {
        let mut ranges = self.ranges.lock().unwrap_or_else(|e| e.into_inner());
        let before = if appends(f) {
            f.metadata().map(|m| m.len()).ok()
        } else {
            offset(f)
        };
        f.write_all(data)?;
        let (Some(before), Some(after)) = (before, offset(f)) else {
            return Ok(());
        };
        let len = data.len() as u64;
        if after.saturating_sub(before) == len {
            ranges.push((before, after));
        } else if after > before && after - before <= 64 * len.max(4096) {
            let mut seen = vec![0u8; (after - before) as usize];
            if let Some(reader) = &self.reader
                && reader.read_exact_at(&mut seen, before).is_ok()
                && let Some(i) = memchr::memmem::find(&seen, data)
            {
                ranges.push((before + i as u64, before + i as u64 + len));
            }
        }
        Ok(())
    }

    /// Removes the noted bytes from `buf`, read at `at` in the file;
    /// returns the length left. Forgets ranges wholly read.
    fn strip(ranges: &mut Vec<(u64, u64)>, buf: &mut [u8], at: u64) -> usize {
        let end = at + buf.len() as u64;
        let mut keep = 0usize;
        let mut from = at;
        for &(s, e) in ranges.iter() {
            if e <= from || s >= end {
                continue;
            }
            let s = s.max(from);
            let len = (s - from) as usize;
            let src = (from - at) as usize;
            buf.copy_within(src..src + len, keep);
            keep += len;
            from = e.min(end);
        }
        let src = (from - at) as usize;
        let len = buf.len() - src;
        buf.copy_within(src..src + len, keep);
        keep += len;
        ranges.retain(|&(_, e)| e > end);
        keep
    }
}

/// Writes to the wrapper's stderr (`f`, a descriptor of it), noting the
/// bytes when stderr is the output file being read back.
pub fn write_stderr(f: &mut File, data: &[u8]) -> std::io::Result<()> {
    match SHARED_STDERR.get() {
        Some(w) => w.write(f, data),
        None => f.write_all(data),
    }
}

/// The program's stdout or stderr, read back from its file.
pub struct Tail {
    file: File,
    at: u64,
    written: Option<Arc<Written>>,
    ended: Receiver<()>,
    program_ended: bool,
    pause: Duration,
}

/// One of the wrapper's own descriptors (1 or 2), if it is a regular file
/// the wrapper can read back from where the program will write: the file's
/// identity, a descriptor of our own (its own offset) for reading, and
/// where to start.
fn readable_file(fd: std::os::fd::BorrowedFd<'_>) -> Option<((u64, u64), File, u64)> {
    let meta = File::from(fd.try_clone_to_owned().ok()?).metadata().ok()?;
    if !meta.file_type().is_file() {
        return None;
    }
    let file = File::open(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let at = if appends(&fd) {
        meta.len()
    } else {
        let at = offset(&fd)?;
        // Writing into the middle of a file (`1<>file`): what follows is
        // old text, not the program's; a pipe then.
        if at != meta.len() {
            return None;
        }
        at
    };
    Some(((meta.dev(), meta.ino()), file, at))
}

/// The program's stdout and stderr that go to files it writes itself, read
/// back ([`Tail`]); `None` for a stream that needs a pipe. Both into one
/// file (`2>&1`): stdout is read back, stderr is a pipe (so its lines stay
/// apart) whose copy into the file is noted. `ended` (one per stream) is
/// disconnected when the program has ended; from then on, reading ends at
/// the file's end. `stdout_too` is false when the program's stdout is
/// something else already (a pseudo-terminal).
pub fn tails(ended: [Receiver<()>; 2], stdout_too: bool) -> [Option<Tail>; 2] {
    let out = stdout_too
        .then(|| readable_file(std::io::stdout().as_fd()))
        .flatten();
    let err = readable_file(std::io::stderr().as_fd());
    let same = matches!((&out, &err), (Some((a, ..)), Some((b, ..))) if a == b);
    let err = if same { None } else { err };
    // The reader of the file our own stderr goes to skips what we write.
    let written = (same || err.is_some()).then(|| {
        SHARED_STDERR
            .get_or_init(|| {
                let err = std::io::stderr();
                let reader = File::open(format!("/proc/self/fd/{}", err.as_fd().as_raw_fd()));
                Arc::new(Written {
                    ranges: Mutex::default(),
                    reader: reader.ok(),
                })
            })
            .clone()
    });
    let [out_ended, err_ended] = ended;
    let tail = |found: Option<(_, File, u64)>, ended, written| {
        found.map(|(_, file, at)| Tail {
            file,
            at,
            written,
            ended,
            program_ended: false,
            pause: MIN_PAUSE,
        })
    };
    [
        tail(out, out_ended, written.clone().filter(|_| same)),
        tail(err, err_ended, written),
    ]
}

impl Tail {
    /// Reads what the program wrote since the last read into `buf`, waiting
    /// for something first: `Ok(0)` once the program has ended and all it
    /// wrote was read.
    pub fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            // Whether the program had ended before this read: then a read
            // at the file's end is the end.
            let ended = self.program_ended;
            let (kept, read) = {
                let mut ranges = self
                    .written
                    .as_ref()
                    .map(|w| w.ranges.lock().unwrap_or_else(|e| e.into_inner()));
                let at = self.at;
                let n = match self.file.read_at(buf, at) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                self.at += n as u64;
                let kept = match ranges.as_deref_mut() {
                    Some(r) if n > 0 => Written::strip(r, &mut buf[..n], at),
                    _ => n,
                };
                (kept, n)
            };
            if kept > 0 {
                self.pause = MIN_PAUSE;
                return Ok(kept);
            }
            if read > 0 {
                // All of it was the wrapper's own: read on.
                continue;
            }
            if ended {
                return Ok(0);
            }
            if self.file.metadata().is_ok_and(|m| m.len() < self.at) {
                self.at = 0;
            }
            match self.ended.recv_timeout(self.pause) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.program_ended = true,
            }
            self.pause = (self.pause * 2).min(MAX_PAUSE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noted_ranges_are_removed_from_what_is_read_back() {
        let mut ranges = vec![(3, 5), (8, 10), (11, 14)];
        let mut buf = *b"0123456789ab";
        let n = Written::strip(&mut ranges, &mut buf, 0);
        assert_eq!(&buf[..n], b"012567a");
        // The range running past this read is kept for the next one.
        assert_eq!(ranges, vec![(11, 14)]);
        let mut next = *b"cdef";
        let n = Written::strip(&mut ranges, &mut next, 12);
        assert_eq!(&next[..n], b"ef");
        assert!(ranges.is_empty());
        // Nothing noted: everything is kept.
        let mut plain = *b"xyz";
        assert_eq!(Written::strip(&mut ranges, &mut plain, 100), 3);
    }

    /// The program writing into the same file (the same offset) while the
    /// wrapper writes: every write of ours is found, in between too, and
    /// what is left is exactly the program's text.
    #[test]
    fn our_writes_are_found_while_the_program_writes_too() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("job.out");
        // Write-only, as a shell's `>` opens it; one offset for both.
        let ours = File::create(&path).expect("create");
        let mut program = ours.try_clone().expect("dup");
        let written = Written {
            ranges: Mutex::default(),
            reader: Some(File::open(&path).expect("open")),
        };
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    program.write_all(b"program line\n").expect("write");
                }
            });
            for i in 0..3000 {
                let mut f = ours.try_clone().expect("dup");
                written
                    .write(&mut f, format!("ours {i}\n").as_bytes())
                    .expect("write");
            }
            stop.store(true, Ordering::Relaxed);
        });
        let mut all = std::fs::read(&path).expect("read");
        let text = String::from_utf8_lossy(&all).into_owned();
        assert!((0..3000).all(|i| text.contains(&format!("ours {i}\n"))));
        let mut ranges = written.ranges.lock().expect("lock").clone();
        assert_eq!(ranges.len(), 3000, "every write noted");
        let n = Written::strip(&mut ranges, &mut all, 0);
        let left = &all[..n];
        assert!(!left.is_empty() && left.len().is_multiple_of(13));
        assert!(left.chunks(13).all(|c| c == b"program line\n"));
    }
}
