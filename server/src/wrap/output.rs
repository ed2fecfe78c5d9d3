//! The child's stdout and stderr: passed through to ours unchanged, and
//! recorded line by line as events and metrics. (A stream the program
//! writes to a file itself, with `--direct`, is only read back,
//! [`super::direct`]: the same reader, parser and spool, with nothing to
//! pass through.)
//!
//! One reader thread per stream reads as much as the pipe holds (up to
//! [`CHUNK`]) and queues the buffer for a pass-through thread, which writes
//! it straight to our own stdout or stderr descriptor (no buffer, no flush:
//! the wrapper adds no delay to what the user sees) and hands it on to one
//! parser thread. The parser splits lines with `memchr`,
//! applies the rules (only when there are any; see [`Matcher`]) and records
//! events: a stdout line at the level it announces (`info` unless it starts
//! like `WARNING:`), a stderr line at `error` (or the level it announces),
//! unchanged, so the message is the line. The complete lines of one read
//! arrived at the same time (so did those of reads waiting together in the
//! queue): they are recorded as one [`LineBlock`] (one spool record: their
//! text end to end, the length of each, one time; the sender makes one event
//! of each line), and the blocks of one turn of the parser are queued for
//! the spool with one lock. Per line that is finding its end,
//! copying it and one byte of length: no allocation, no encoding, and the
//! UTF-8 check runs over the whole read at once. Buffers go back to their
//! reader, so a burst allocates nothing per read either.
//! Each queue holds at most [`QUEUE_CHUNKS`] buffers: only if the terminal
//! or the parser ever falls that far behind (64 MiB) does a reader wait, so
//! output is never lost.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError, channel, sync_channel,
};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use simtrack::Run;
use simtrack::model::{EventLevel, MAX_EVENT_BYTES};
use simtrack::record::LineBlock;

use super::rules::{Matcher, Stream};

/// Bytes one read may return.
const CHUNK: usize = 256 * 1024;
/// A read this large (a full stdio buffer, 4 KiB for a pipe) is taken as
/// part of a burst; see the reader loop.
const BURST_READ: usize = 4096;
/// How long a reader lets a burst accumulate in the pipe before reading
/// again: at most this much later on the terminal, during a burst only
/// (and none once the program has ended). 1 ms rather than 200 us cuts
/// the wrapper's context switches for a million-line burst from about 1,240
/// to 290 and its CPU from 0.9 to 0.7 of the program's
/// (`perf stat -e context-switches`; `bench/run-wrapper.sh`).
const BURST_PAUSE: Duration = Duration::from_millis(1);
/// Buffers each queue holds (readers → copy thread → parser).
const QUEUE_CHUNKS: usize = 256;

/// Pipe capacity asked for the child's stdout and stderr: a program writing
/// in a burst runs ahead of the reader by this much instead of 64 KiB before
/// it waits (Linux allows up to /proc/sys/fs/pipe-max-size, 1 MiB by default;
/// a smaller limit leaves the default).
const PIPE_BYTES: libc::c_int = 1 << 20;

/// Asks for a [`PIPE_BYTES`] pipe behind `fd` (best effort).
fn widen_pipe(fd: &impl std::os::fd::AsRawFd) {
    // SAFETY: F_SETPIPE_SZ on a descriptor we own; failure changes nothing.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES) };
}

/// Our own stdout or stderr as a plain file (a duplicate descriptor): writes
/// go straight to the kernel, with none of `std::io::Stdout`'s line buffer.
fn terminal(stream: Stream) -> std::io::Result<File> {
    use std::os::fd::AsFd;
    let fd = match stream {
        Stream::Stdout => std::io::stdout().as_fd().try_clone_to_owned()?,
        Stream::Stderr => std::io::stderr().as_fd().try_clone_to_owned()?,
    };
    Ok(File::from(fd))
}

/// Copies `data` to our own stdout or stderr (`f`); stderr may be the file
/// the program's stdout goes to, where the wrapper notes its writes.
fn copy(f: &mut File, stream: Stream, data: &[u8]) -> std::io::Result<()> {
    match stream {
        Stream::Stdout => f.write_all(data),
        Stream::Stderr => super::direct::write_stderr(f, data),
    }
}

/// A buffer of one stream, of which `len` bytes were read.
pub struct Chunk {
    stream: Stream,
    buf: Vec<u8>,
    len: usize,
    /// When it was read: the time of its lines, however late they are
    /// parsed.
    read_at: Instant,
}

/// The parser's way back to a reader: emptied buffers.
pub type Returns = Sender<Vec<u8>>;

/// Spawns a reader of `src` queueing what it read for the pass-through
/// thread; returns the thread and where the parser hands its buffers back.
/// The thread drops `ended` when it ends (at the end of `src`), so whoever
/// holds its receiver learns that at once.
fn spawn_reader(
    mut src: Source,
    stream: Stream,
    tx: SyncSender<Chunk>,
    ended: Sender<()>,
    pausing: Receiver<()>,
) -> std::io::Result<(JoinHandle<()>, Returns)> {
    let name = match stream {
        Stream::Stdout => "simtrack-stdout",
        Stream::Stderr => "simtrack-stderr",
    };
    let (back, spare) = channel::<Vec<u8>>();
    let thread = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ended = ended;
            loop {
                let mut buf = spare.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
                let len = match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    // A terminal's end reads EIO once the program's end is
                    // closed everywhere: the end of the output.
                    Err(_) => break,
                };
                let read_at = Instant::now();
                if tx
                    .send(Chunk {
                        stream,
                        buf,
                        len,
                        read_at,
                    })
                    .is_err()
                {
                    break;
                }
                // A read of a whole stdio buffer or more means a burst: the
                // program is writing as fast as it can. Waiting a moment
                // lets the pipe fill, so the next read takes many of its
                // writes at once instead of waking this thread (and the
                // parser, and the spool writer) for each 4 KiB. A program
                // on a terminal writes line by line: any read may be part
                // of a burst there. Lines written one at a time never wait,
                // nor does a read that filled its buffer: more is waiting
                // (a pause then would cap the reading at a buffer per pause
                // and hold a faster program up).
                if (len >= BURST_READ || src.is_terminal()) && len < CHUNK {
                    src.pause(BURST_PAUSE, &pausing);
                }
            }
        })?;
    Ok((thread, back))
}

/// Spawns the thread that copies what the readers read to our stdout and
/// stderr (`sinks`, in that order), then hands it on to the parser (`tx`).
/// The copy is off the readers' threads: a terminal or file that is slow to
/// take the output (a busy parallel file system, a paused pager) holds up
/// this thread, not the reading of the program's pipes, so the program goes
/// on writing while up to [`QUEUE_CHUNKS`] buffers wait here. A sink that
/// fails (`simtrack run ... | head`) stops its copy, not the recording.
fn spawn_pass_through(
    rx: Receiver<Chunk>,
    mut sinks: [Option<File>; 2],
    tx: SyncSender<Chunk>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("simtrack-output".to_owned())
        .spawn(move || {
            for chunk in rx {
                let sink = &mut sinks[chunk.stream as usize];
                if let Some(f) = sink
                    && copy(f, chunk.stream, &chunk.buf[..chunk.len]).is_err()
                {
                    *sink = None;
                }
                if tx.send(chunk).is_err() {
                    break;
                }
            }
        })
}

/// What a reader reads: a pipe; the wrapper's end of a pseudo-terminal
/// ([`super::pty`]), which is read without blocking until it is empty (one
/// read of a terminal returns at most 4 KiB); or the file the program writes
/// its stdout to itself ([`super::direct`]), which is not passed through.
pub struct Source {
    kind: Kind,
}

enum Kind {
    Pipe(File),
    Terminal(File),
    File(super::direct::Tail),
}

impl Source {
    /// Our end of the program's stdout or stderr pipe, widened to
    /// [`PIPE_BYTES`].
    pub fn pipe(fd: OwnedFd) -> Source {
        widen_pipe(&fd);
        Source {
            kind: Kind::Pipe(File::from(fd)),
        }
    }

    /// Our end of the program's pseudo-terminal, read without blocking.
    pub fn terminal(fd: OwnedFd) -> Source {
        // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
        unsafe {
            let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        Source {
            kind: Kind::Terminal(File::from(fd)),
        }
    }

    /// The program's output file, read back.
    pub fn file(tail: super::direct::Tail) -> Source {
        Source {
            kind: Kind::File(tail),
        }
    }

    fn is_terminal(&self) -> bool {
        matches!(self.kind, Kind::Terminal(_))
    }

    /// Whether what is read must be copied to our own stdout or stderr (not
    /// when the program wrote it there itself).
    fn passes_through(&self) -> bool {
        !matches!(self.kind, Kind::File(_))
    }

    /// Waits `d` for more output to gather, less if there can be no more:
    /// a pipe or terminal that every writer has closed (the program and
    /// whatever it started have ended: what is left is read at once), a
    /// file once the program has ended (`pausing` disconnected).
    fn pause(&self, d: Duration, pausing: &Receiver<()>) {
        let file = match &self.kind {
            Kind::Pipe(f) | Kind::Terminal(f) => f,
            Kind::File(_) => {
                let _ = pausing.recv_timeout(d);
                return;
            }
        };
        // No events asked: poll reports only the hang-up (or an error).
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: 0,
            revents: 0,
        };
        let ms = d.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd; returns at the hang-up, a signal or
        // the timeout, all of which end the pause.
        unsafe { libc::poll(&mut pfd, 1, ms) };
    }

    /// Reads what there is into `buf` (waiting for something first): `Ok(0)`
    /// at the end.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let file = match &mut self.kind {
            Kind::Pipe(f) => return f.read(buf),
            Kind::File(t) => return t.read(buf),
            Kind::Terminal(f) => f,
        };
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; no timeout.
        if unsafe { libc::poll(&mut pfd, 1, -1) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut len = 0;
        while len < buf.len() {
            match file.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // The end (EIO): what was read first is returned first.
                Err(_) if len > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(len)
    }
}

/// A queue between threads of the output: readers → copy → parser.
fn queue() -> (SyncSender<Chunk>, Receiver<Chunk>) {
    sync_channel(QUEUE_CHUNKS)
}

/// The threads reading the program's output, started.
pub struct Started {
    /// What the parser reads.
    pub rx: Receiver<Chunk>,
    /// Where the parser hands the stdout and stderr readers' buffers back.
    pub returns: [Option<Returns>; 2],
    pub readers: Vec<JoinHandle<()>>,
    /// Disconnected once every reader has ended.
    pub readers_ended: Receiver<()>,
    /// Dropped once the program has ended: readers of files stop pausing
    /// (those of pipes and terminals see the end themselves).
    pub pausing: Vec<Sender<()>>,
}

/// Starts a reader for the program's stdout and stderr (`sources`, in that
/// order; a stream that cannot be read says why and is not recorded) and the
/// thread copying what they read to our own stdout and stderr.
pub fn start(sources: [Option<Source>; 2]) -> Started {
    let (tx, rx) = queue();
    let (pass_tx, pass_rx) = queue();
    let (ended, readers_ended) = channel::<()>();
    let copied = |s: &Option<Source>| s.as_ref().is_some_and(Source::passes_through);
    let copies = [copied(&sources[0]), copied(&sources[1])];
    let sinks = [Stream::Stdout, Stream::Stderr].map(|stream| {
        copies[stream as usize]
            .then(|| terminal(stream))?
            .map_err(|e| super::say(&format!("cannot copy the program's output: {e}")))
            .ok()
    });
    if let Err(e) = spawn_pass_through(pass_rx, sinks, tx) {
        super::say(&format!("cannot read the program's output: {e}"));
    }
    let mut readers = Vec::new();
    let mut returns = [None, None];
    let mut pausing = Vec::new();
    for (stream, source) in [Stream::Stdout, Stream::Stderr].into_iter().zip(sources) {
        let Some(source) = source else { continue };
        let (pause_tx, pause_rx) = channel();
        match spawn_reader(source, stream, pass_tx.clone(), ended.clone(), pause_rx) {
            Ok((thread, back)) => {
                readers.push(thread);
                returns[stream as usize] = Some(back);
                pausing.push(pause_tx);
            }
            Err(e) => super::say(&format!("cannot read the program's output: {e}")),
        }
    }
    Started {
        rx,
        returns,
        readers,
        readers_ended,
        pausing,
    }
}

/// Waits for every reader to reach the end of its stream, the program
/// having ended. Grandchildren may hold the pipes open after the child is
/// gone: they get a little time, then the wrapper stops waiting (says so and
/// returns false; their readers end with them).
pub fn await_readers(readers: Vec<JoinHandle<()>>, readers_ended: &Receiver<()>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    // Every reader has ended once the channel is disconnected.
    let all_read = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match readers_ended.recv_timeout(left) {
            Ok(()) => {}
            Err(RecvTimeoutError::Disconnected) => break true,
            Err(RecvTimeoutError::Timeout) => break false,
        }
    };
    for r in readers {
        if all_read || r.is_finished() {
            let _ = r.join();
        }
    }
    if !all_read {
        super::say(
            "the program's output is still open (a background process?); not waiting for it",
        );
    }
    all_read
}

/// Takes what the readers read and records nothing (the output was passed
/// through already): for a program whose run could not be set up.
pub fn discard(rx: Receiver<Chunk>, returns: [Option<Returns>; 2]) {
    for chunk in rx {
        if let Some(back) = &returns[chunk.stream as usize] {
            let _ = back.send(chunk.buf);
        }
    }
}

/// Counts of what the parser recorded.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub lines: u64,
    pub events: u64,
    pub event_errors: u64,
}

/// Bytes of text after which a block of lines takes no further chunk (one
/// spool record holds at most this plus one [`CHUNK`]). Small enough that a
/// record is written quickly: a wrapper killed while writing one (SIGKILL,
/// the OOM killer) loses at most that record's lines from the spool (its
/// frame fails its checksum and is skipped), not megabytes of them.
const BLOCK_BYTES: usize = 256 << 10;

/// The parser's state: the unfinished line of each stream, the blocks of
/// lines not queued for the spool yet.
struct Parser<'a> {
    run: &'a Run,
    matcher: &'a mut Matcher,
    carry: [Vec<u8>; 2],
    /// The block the stream's next lines go to; with `ready`, queued in one
    /// go when the parser has caught up.
    block: Option<(Stream, LineBlock)>,
    ready: Vec<LineBlock>,
    counts: Counts,
}

impl Parser<'_> {
    /// Adds the complete lines of `data` (and the line carried over from the
    /// stream's last chunk that it ends) to the stream's block of lines:
    /// they arrived at the same time (as did those of chunks that were
    /// waiting together in the queue).
    fn chunk(&mut self, stream: Stream, data: &[u8], read_at: Instant) {
        let idx = stream as usize;
        let mut block = match self.block.take() {
            Some((s, b)) if s == stream && b.bytes() < BLOCK_BYTES => b,
            other => {
                if let Some((_, b)) = other {
                    self.ready.push(b);
                }
                self.block(stream, data.len() + self.carry[idx].len(), read_at)
            }
        };
        let mut start = 0;
        let mut ends = memchr::memchr_iter(b'\n', data);
        if !self.carry[idx].is_empty()
            && let Some(end) = ends.next()
        {
            let mut c = std::mem::take(&mut self.carry[idx]);
            c.extend_from_slice(&data[..end]);
            self.raw_line(&mut block, &c, stream);
            c.clear();
            self.carry[idx] = c;
            start = end + 1;
        }
        // The rest of the complete lines are checked for UTF-8 at once (the
        // fast path: nearly always valid), line by line only if not.
        let complete = memchr::memrchr(b'\n', &data[start..]).map_or(start, |i| start + i + 1);
        let valid = std::str::from_utf8(&data[start..complete]).is_ok();
        // Stdout with no rules: a line is an event at the block's level
        // (the server reads any level it names), so a short one is only
        // copied; the rest takes the general way.
        let plain = stream == Stream::Stdout && !self.matcher.has_rules();
        for end in ends {
            let piece = &data[start..end];
            start = end + 1;
            if valid {
                let piece = piece.strip_suffix(b"\r").unwrap_or(piece);
                // SAFETY: within a valid UTF-8 range, between newlines (which
                // are never part of a longer character).
                let line = unsafe { std::str::from_utf8_unchecked(piece) };
                if plain && block.push_short(line) {
                    self.counts.lines += 1;
                    self.counts.events += 1;
                    continue;
                }
                self.line(&mut block, line, stream);
            } else {
                self.raw_line(&mut block, piece, stream);
            }
        }
        self.carry[idx].extend_from_slice(&data[start..]);
        // A line with no end in sight is recorded in event-sized pieces
        // rather than held without bound.
        if self.carry[idx].len() > MAX_EVENT_BYTES * 4 {
            let c = std::mem::take(&mut self.carry[idx]);
            self.raw_line(&mut block, &c, stream);
        }
        self.block = Some((stream, block));
    }

    /// Queues the blocks of lines for the spool (one lock, one wake-up).
    fn record(&mut self) {
        if let Some((_, b)) = self.block.take() {
            self.ready.push(b);
        }
        self.run.line_blocks(self.ready.drain(..));
    }

    /// An empty block of lines of `stream`, read at `read_at`.
    fn block(&self, stream: Stream, bytes: usize, read_at: Instant) -> LineBlock {
        let level = match stream {
            Stream::Stdout => None,
            Stream::Stderr => Some(EventLevel::Error),
        };
        let time = self.run.event_time() - read_at.elapsed().as_secs_f64();
        LineBlock::new(time, level, bytes)
    }

    /// A line as read (without its newline): any `\r` before the newline
    /// dropped, invalid UTF-8 replaced.
    fn raw_line(&mut self, block: &mut LineBlock, raw: &[u8], stream: Stream) {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = String::from_utf8_lossy(raw);
        self.line(block, &line, stream);
    }

    fn line(&mut self, block: &mut LineBlock, line: &str, stream: Stream) {
        if self.matcher.has_rules() {
            let run = self.run;
            self.matcher.line(line, stream, |name, value, step| {
                let _ = run.log(name, value, step);
            });
        }
        let level = level_for(line, stream);
        for piece in pieces(line, MAX_EVENT_BYTES) {
            match block.push(piece, level) {
                Ok(()) => self.counts.events += 1,
                Err(_) => self.counts.event_errors += 1,
            }
        }
        self.counts.lines += 1;
    }
}

/// Reads chunks until every sender is gone (or `give_up` is set and nothing
/// is queued); records lines of both streams in the order the chunks arrived.
/// `returns` hands buffers back to the stdout and stderr readers.
pub fn parse(
    rx: Receiver<Chunk>,
    returns: [Option<Returns>; 2],
    give_up: &AtomicBool,
    run: &Run,
    matcher: &mut Matcher,
) -> Counts {
    yield_to_the_program();
    let mut p = Parser {
        run,
        matcher,
        carry: [Vec::new(), Vec::new()],
        block: None,
        ready: Vec::new(),
        counts: Counts::default(),
    };
    'outer: loop {
        let mut chunk = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(x) => x,
            Err(RecvTimeoutError::Timeout) if give_up.load(Ordering::Acquire) => break,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // Everything queued now, then to the spool in one go.
        loop {
            p.chunk(chunk.stream, &chunk.buf[..chunk.len], chunk.read_at);
            if let Some(back) = &returns[chunk.stream as usize] {
                let _ = back.send(chunk.buf);
            }
            chunk = match rx.try_recv() {
                Ok(x) => x,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => break 'outer,
            };
        }
        p.record();
    }
    p.record();
    for (idx, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
        let c = std::mem::take(&mut p.carry[idx]);
        if !c.is_empty() {
            let mut block = p.block(stream, c.len(), Instant::now());
            p.raw_line(&mut block, &c, stream);
            p.ready.push(block);
        }
    }
    p.record();
    p.counts
}

/// Lowers the calling thread's priority (nice 10): where it shares a core
/// with the program, the program gets most of it, and the parsing catches up
/// when the program waits. The readers keep the program's priority, so its
/// pipes are emptied as fast as before.
fn yield_to_the_program() {
    // SAFETY: gettid and setpriority on our own thread; lowering a
    // priority needs no privilege, and failing changes nothing.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
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
