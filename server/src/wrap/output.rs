//! The child's stdout and stderr: passed through to ours unchanged, and
//! recorded line by line as events and metrics.
//!
//! One reader thread per stream copies each chunk to the terminal as soon as
//! it is read (so the wrapper adds no buffering to what the user sees), then
//! hands the chunk to one parser thread, which splits lines, applies the
//! rules and records events: a stdout line at the level it announces
//! (`info` unless it starts like `WARNING:`), a stderr line at `error` (or
//! the level it announces), unchanged, so the message is the line. The
//! events of one chunk are recorded with one call (one time, one lock).
//! The hand-over queue holds at most
//! [`QUEUE_CHUNKS`] chunks (up to 64 KiB each): if the parser ever falls that
//! far behind, the child waits for it rather than output being lost.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use simtrack::Run;
use simtrack::model::{EventLevel, MAX_EVENT_BYTES};

use super::rules::{Matcher, Stream};

const CHUNK: usize = 64 * 1024;
const QUEUE_CHUNKS: usize = 1024;

/// Pipe capacity asked for the child's stdout and stderr: a program writing
/// in a burst runs ahead of the reader by this much instead of 64 KiB before
/// it waits (Linux allows up to /proc/sys/fs/pipe-max-size, 1 MiB by default;
/// a smaller limit leaves the default).
const PIPE_BYTES: libc::c_int = 1 << 20;

/// Asks for a [`PIPE_BYTES`] pipe behind `fd` (best effort).
pub fn widen_pipe(fd: &impl std::os::fd::AsRawFd) {
    // SAFETY: F_SETPIPE_SZ on a descriptor we own; failure changes nothing.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES) };
}

/// Spawns a reader copying `src` to `sink` and queueing its chunks.
pub fn spawn_reader(
    mut src: impl Read + Send + 'static,
    mut sink: impl Write + Send + 'static,
    stream: Stream,
    tx: SyncSender<Chunk>,
) -> std::io::Result<JoinHandle<()>> {
    let name = match stream {
        Stream::Stdout => "simtrack-stdout",
        Stream::Stderr => "simtrack-stderr",
    };
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut pass = true;
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                buf.truncate(n);
                // A closed terminal (`simtrack run ... | head`) stops the
                // copy, not the recording.
                if pass && sink.write_all(&buf).and_then(|()| sink.flush()).is_err() {
                    pass = false;
                }
                if tx.send((stream, buf)).is_err() {
                    break;
                }
            }
        })
}

/// A chunk of one stream, as read.
pub type Chunk = (Stream, Vec<u8>);

/// The queue between the readers and the parser.
pub fn queue() -> (SyncSender<Chunk>, Receiver<Chunk>) {
    sync_channel(QUEUE_CHUNKS)
}

/// Counts of what the parser recorded.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub lines: u64,
    pub events: u64,
    pub event_errors: u64,
}

/// Reads chunks until every sender is gone (or `give_up` is set and nothing
/// is queued); records lines of both streams in the order the chunks arrived.
pub fn parse(
    rx: Receiver<Chunk>,
    give_up: &AtomicBool,
    run: &Run,
    matcher: &mut Matcher,
) -> Counts {
    let mut counts = Counts::default();
    let mut carry = [Vec::new(), Vec::new()];
    let mut batch = Vec::new();
    loop {
        let (stream, chunk) = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(x) => x,
            Err(RecvTimeoutError::Timeout) if give_up.load(Ordering::Acquire) => break,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let idx = stream as usize;
        let mut rest = &chunk[..];
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let c = &mut carry[idx];
            let line: &[u8] = if c.is_empty() {
                &rest[..pos]
            } else {
                c.extend_from_slice(&rest[..pos]);
                c
            };
            record_line(line, stream, &mut batch, run, matcher, &mut counts);
            carry[idx].clear();
            rest = &rest[pos + 1..];
        }
        carry[idx].extend_from_slice(rest);
        // A line with no end in sight is recorded in event-sized pieces
        // rather than held without bound.
        if carry[idx].len() > MAX_EVENT_BYTES * 4 {
            let line = std::mem::take(&mut carry[idx]);
            record_line(&line, stream, &mut batch, run, matcher, &mut counts);
        }
        record_batch(&mut batch, run, &mut counts);
    }
    for (idx, c) in carry.iter().enumerate() {
        if !c.is_empty() {
            let stream = if idx == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            record_line(c, stream, &mut batch, run, matcher, &mut counts);
        }
    }
    record_batch(&mut batch, run, &mut counts);
    counts
}

/// Records the events of `batch` with one call.
fn record_batch(batch: &mut Vec<(String, Option<EventLevel>)>, run: &Run, counts: &mut Counts) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len() as u64;
    match run.events(std::mem::take(batch)) {
        Ok(()) => counts.events += n,
        Err(_) => counts.event_errors += n,
    }
}

/// The level of a line's event: stderr is `error` unless the line names a
/// level itself (`WARNING: ...`); stdout is left to the server (`info`, or
/// the level the line names).
pub fn level_for(line: &str, stream: Stream) -> Option<EventLevel> {
    match stream {
        Stream::Stdout => None,
        Stream::Stderr => Some(
            simtrack_server::domain::events::level_of(line)
                .and_then(EventLevel::from_name)
                .unwrap_or(EventLevel::Error),
        ),
    }
}

fn record_line(
    raw: &[u8],
    stream: Stream,
    batch: &mut Vec<(String, Option<EventLevel>)>,
    run: &Run,
    matcher: &mut Matcher,
    counts: &mut Counts,
) {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let line = String::from_utf8_lossy(raw);
    counts.lines += 1;
    matcher.line(&line, stream, |name, value, step| {
        let _ = run.log(name, value, step);
    });
    let level = level_for(&line, stream);
    if line.len() <= MAX_EVENT_BYTES {
        batch.push((line.into_owned(), level));
    } else {
        batch.extend(pieces(&line, MAX_EVENT_BYTES).map(|p| (p.to_owned(), level)));
    }
}

/// Splits `s` into pieces of at most `max` (>= 4) bytes at character
/// boundaries; an empty line is one empty piece.
pub fn pieces(s: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        let mut end = max.min(r.len());
        while !r.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = r.split_at(end);
        rest = (!tail.is_empty()).then_some(tail);
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_split_at_character_boundaries_and_lose_nothing() {
        let s = "é".repeat(10);
        let p: Vec<&str> = pieces(&s, 5).collect();
        assert!(p.iter().all(|x| x.len() <= 5));
        assert_eq!(p.concat(), s);
        assert_eq!(pieces("", 5).collect::<Vec<_>>(), vec![""]);
        assert_eq!(pieces("abcd", 4).collect::<Vec<_>>(), vec!["abcd"]);
    }

    #[test]
    fn stderr_lines_are_errors_unless_they_name_their_level() {
        assert_eq!(level_for("x", Stream::Stdout), None);
        assert_eq!(level_for("oops", Stream::Stderr), Some(EventLevel::Error));
        assert_eq!(
            level_for("WARNING: cfl", Stream::Stderr),
            Some(EventLevel::Warning)
        );
    }
}
