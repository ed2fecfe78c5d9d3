//! The child's stdout and stderr: passed through to ours unchanged, and
//! recorded line by line as events and metrics.
//!
//! One reader thread per stream copies each chunk to the terminal as soon as
//! it is read (so the wrapper adds no buffering to what the user sees), then
//! hands the chunk to one parser thread, which splits lines, applies the
//! rules and records events. The hand-over queue holds at most
//! [`QUEUE_CHUNKS`] chunks (up to 64 KiB each): if the parser ever falls that
//! far behind, the child waits for it rather than output being lost.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use simtrack::Run;
use simtrack::model::MAX_EVENT_BYTES;

use super::rules::{Matcher, Stream};

const CHUNK: usize = 64 * 1024;
const QUEUE_CHUNKS: usize = 1024;
/// What marks a stderr line in its event.
pub const STDERR_MARK: &str = "[stderr] ";

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
            record_line(line, stream, run, matcher, &mut counts);
            carry[idx].clear();
            rest = &rest[pos + 1..];
        }
        carry[idx].extend_from_slice(rest);
        // A line with no end in sight is recorded in event-sized pieces
        // rather than held without bound.
        if carry[idx].len() > MAX_EVENT_BYTES * 4 {
            let line = std::mem::take(&mut carry[idx]);
            record_line(&line, stream, run, matcher, &mut counts);
        }
    }
    for (idx, c) in carry.iter().enumerate() {
        if !c.is_empty() {
            let stream = if idx == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            record_line(c, stream, run, matcher, &mut counts);
        }
    }
    counts
}

fn record_line(raw: &[u8], stream: Stream, run: &Run, matcher: &mut Matcher, counts: &mut Counts) {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let line = String::from_utf8_lossy(raw);
    counts.lines += 1;
    matcher.line(&line, stream, |name, value, step| {
        let _ = run.log(name, value, step);
    });
    let mark = if stream == Stream::Stderr {
        STDERR_MARK
    } else {
        ""
    };
    for piece in pieces(&line, MAX_EVENT_BYTES - mark.len()) {
        let r = if mark.is_empty() {
            run.event(piece)
        } else {
            run.event(&format!("{mark}{piece}"))
        };
        match r {
            Ok(()) => counts.events += 1,
            Err(_) => counts.event_errors += 1,
        }
    }
}

/// Splits `s` into pieces of at most `max` bytes at character boundaries;
/// an empty line is one empty piece.
pub fn pieces(s: &str, max: usize) -> Vec<&str> {
    if s.len() <= max {
        return vec![s];
    }
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let mut end = max.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_split_at_character_boundaries_and_lose_nothing() {
        let s = "é".repeat(10);
        let p = pieces(&s, 5);
        assert!(p.iter().all(|x| x.len() <= 5));
        assert_eq!(p.concat(), s);
        assert_eq!(pieces("", 5), vec![""]);
    }
}
