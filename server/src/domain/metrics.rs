//! Metrics: one stored chunk per (run, metric, ingest batch slice), never
//! one record per point; the one downsampler; window aggregates for alerts.
//!
//! A chunk holds up to [`CHUNK_POINTS`] points (the *packed* format below;
//! chunks written before it hold little-endian `(step i64, time f64,
//! timestamp_us i64, value f64)` records, still read), and beside it (so
//! reading it never touches the points) its ranges, min/max/sum, and a *block summary*: for every
//! [`BLOCK_POINTS`] consecutive points, the point holding the block's
//! minimum and the one holding its maximum. A downsampled read of a long
//! series only reads block summaries, so a 10M-point series costs ~80k
//! candidate points, and every spike survives because it is its block's
//! extreme.

use super::Result;
pub use crate::storage::Axis;
use crate::storage::{ChunkInfo, NewChunk, ReadTx, WriteTx};

/// Points per stored chunk (a larger batch is split).
pub const CHUNK_POINTS: usize = 65_536;
/// Points per block summary entry.
pub const BLOCK_POINTS: usize = 256;
const POINT_BYTES: usize = 32;

/// One metric sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The step (x axis `step`).
    pub step: i64,
    /// Seconds since the run started (x axis `time`).
    pub time: f64,
    /// Microseconds since the epoch (x axis `timestamp`).
    pub ts: i64,
    /// The value; NaN and infinities are kept.
    pub value: f64,
}

impl Axis {
    /// Parses the `xaxis` query value.
    pub fn parse(s: &str) -> Option<Axis> {
        match s {
            "step" => Some(Axis::Step),
            "time" => Some(Axis::Time),
            "timestamp" => Some(Axis::Timestamp),
            _ => None,
        }
    }

    /// The x coordinate of `p` on this axis.
    pub fn x(self, p: &Point) -> f64 {
        match self {
            Axis::Step => p.step as f64,
            Axis::Time => p.time,
            Axis::Timestamp => p.ts as f64,
        }
    }
}

#[cfg(test)]
fn encode(points: &[Point], out: &mut Vec<u8>) {
    out.reserve(points.len() * POINT_BYTES);
    for p in points {
        out.extend_from_slice(&p.step.to_le_bytes());
        out.extend_from_slice(&p.time.to_le_bytes());
        out.extend_from_slice(&p.ts.to_le_bytes());
        out.extend_from_slice(&p.value.to_le_bytes());
    }
}

/// The first bytes of a packed chunk.
const PACKED: [u8; 4] = *b"STP1";

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Bytes needed for `x` without its high zero bytes (0..=8).
fn sig_bytes(x: u64) -> usize {
    (64 - x.leading_zeros() as usize).div_ceil(8)
}

/// The packed format of a chunk's points, about half the bytes of the
/// fixed 32 per point (so SQLite's WAL and checkpoint, PostgreSQL's TOAST,
/// copy half as much): `STP1`, the count (u32 LE), then per point the step
/// and the timestamp as zigzag varints of the difference to the previous
/// point's, one byte holding how many low bytes of `time` and of `value`
/// XORed with the previous point's bits follow (high nibble: time), and
/// those bytes (LE). Exact for every value (NaN payloads included). A zero
/// byte is appended when needed so the length is never a multiple of 32:
/// that is how [`decode`] tells it from the older fixed-size records.
fn encode_packed(points: &[Point], out: &mut Vec<u8>) {
    let start = out.len();
    out.reserve(8 + points.len() * 16);
    out.extend_from_slice(&PACKED);
    out.extend_from_slice(&(points.len() as u32).to_le_bytes());
    let (mut step, mut ts, mut time, mut value) = (0i64, 0i64, 0u64, 0u64);
    for p in points {
        put_varint(out, zigzag(p.step.wrapping_sub(step)));
        put_varint(out, zigzag(p.ts.wrapping_sub(ts)));
        let t = p.time.to_bits() ^ time;
        let v = p.value.to_bits() ^ value;
        let (nt, nv) = (sig_bytes(t), sig_bytes(v));
        out.push(((nt as u8) << 4) | nv as u8);
        out.extend_from_slice(&t.to_le_bytes()[..nt]);
        out.extend_from_slice(&v.to_le_bytes()[..nv]);
        (step, ts, time, value) = (p.step, p.ts, p.time.to_bits(), p.value.to_bits());
    }
    if (out.len() - start).is_multiple_of(POINT_BYTES) {
        out.push(0);
    }
}

/// A read position in a packed chunk.
struct Cur<'a>(&'a [u8], usize);

impl Cur<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.0.get(self.1)?;
        self.1 += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn low(&mut self, n: usize) -> Option<u64> {
        let s = self.0.get(self.1..self.1 + n)?;
        self.1 += n;
        let mut w = [0u8; 8];
        w[..n].copy_from_slice(s);
        Some(u64::from_le_bytes(w))
    }

    /// The next point, from the previous one `prev` (step, ts, time and
    /// value bits), which it updates.
    fn point(&mut self, prev: &mut (i64, i64, u64, u64)) -> Option<Point> {
        prev.0 = prev.0.wrapping_add(unzigzag(self.varint()?));
        prev.1 = prev.1.wrapping_add(unzigzag(self.varint()?));
        let n = self.byte()?;
        let (nt, nv) = (usize::from(n >> 4), usize::from(n & 0xf));
        if nt > 8 || nv > 8 {
            return None;
        }
        prev.2 ^= self.low(nt)?;
        prev.3 ^= self.low(nv)?;
        Some(Point {
            step: prev.0,
            time: f64::from_bits(prev.2),
            ts: prev.1,
            value: f64::from_bits(prev.3),
        })
    }
}

/// Reads a packed chunk; a damaged one yields the points before the damage.
fn decode_packed(bytes: &[u8], out: &mut Vec<Point>) {
    let Some(count) = bytes.get(4..8).and_then(|c| c.try_into().ok()) else {
        return;
    };
    let count = u32::from_le_bytes(count) as usize;
    out.reserve(count.min(bytes.len() / 4));
    let mut c = Cur(bytes, 8);
    let mut prev = (0i64, 0i64, 0u64, 0u64);
    for _ in 0..count {
        match c.point(&mut prev) {
            Some(p) => out.push(p),
            None => return,
        }
    }
}

fn decode(bytes: &[u8], out: &mut Vec<Point>) {
    if !bytes.len().is_multiple_of(POINT_BYTES) {
        if bytes.starts_with(&PACKED) {
            decode_packed(bytes, out);
        }
        return;
    }
    out.reserve(bytes.len() / POINT_BYTES);
    for c in bytes.chunks_exact(POINT_BYTES) {
        let w = |i: usize| -> [u8; 8] { c[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]) };
        out.push(Point {
            step: i64::from_le_bytes(w(0)),
            time: f64::from_le_bytes(w(1)),
            ts: i64::from_le_bytes(w(2)),
            value: f64::from_le_bytes(w(3)),
        });
    }
}

/// Index of the minimum and maximum value (NaN ignored unless all are NaN).
fn extremes(points: &[Point]) -> (usize, usize) {
    let (mut lo, mut hi) = (0, 0);
    for (i, p) in points.iter().enumerate() {
        let (l, h) = (points[lo].value, points[hi].value);
        if l.is_nan() || p.value < l {
            lo = i;
        }
        if h.is_nan() || p.value > h {
            hi = i;
        }
    }
    (lo, hi)
}

fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() {
        b
    } else if b.is_nan() {
        a
    } else {
        a.min(b)
    }
}
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() {
        b
    } else if b.is_nan() {
        a
    } else {
        a.max(b)
    }
}

/// The block summary of a chunk's points: per [`BLOCK_POINTS`] block its
/// minimum and maximum point and, when the block holds a NaN among other
/// values, its first NaN (so a downsampled read shows where a series went
/// NaN). Packed (as chunk points are), which is how a read tells it from
/// the summaries written before NaNs were kept (fixed 32-byte records of
/// the minimum and the maximum only; see [`nan_kept`]).
fn summarise(chunk: &[Point], out: &mut Vec<u8>) {
    let mut keep = Vec::with_capacity(chunk.len().div_ceil(BLOCK_POINTS) * 2);
    for block in chunk.chunks(BLOCK_POINTS) {
        let (lo, hi) = extremes(block);
        keep.extend([block[lo], block[hi]]);
        if !block[lo].value.is_nan()
            && let Some(nan) = block.iter().find(|p| p.value.is_nan())
        {
            keep.push(*nan);
        }
    }
    encode_packed(&keep, out);
}

/// Whether a chunk's block summary keeps its NaNs ([`summarise`]).
fn nan_kept(blocks: &[u8]) -> bool {
    !blocks.len().is_multiple_of(POINT_BYTES) && blocks.starts_with(&PACKED)
}

/// Appends `points` of metric `name` of `run_id` (a batch, in arrival
/// order); returns the series id.
pub fn append(tx: &dyn WriteTx, run_id: &str, name: &str, points: &[Point]) -> Result<i64> {
    let series = tx.series_ensure(run_id, name)?;
    let mut pbuf = Vec::new();
    let mut bbuf = Vec::new();
    let (mut smin, mut smax) = (f64::NAN, f64::NAN);
    let opt = |v: f64| if v.is_nan() { None } else { Some(v) };
    for chunk in points.chunks(CHUNK_POINTS) {
        pbuf.clear();
        bbuf.clear();
        encode_packed(chunk, &mut pbuf);
        summarise(chunk, &mut bbuf);
        let mut step = (i64::MAX, i64::MIN);
        let mut time = (f64::INFINITY, f64::NEG_INFINITY);
        let mut ts = (i64::MAX, i64::MIN);
        let (mut vmin, mut vmax, mut vsum) = (f64::NAN, f64::NAN, 0.0);
        for p in chunk {
            step = (step.0.min(p.step), step.1.max(p.step));
            time = (time.0.min(p.time), time.1.max(p.time));
            ts = (ts.0.min(p.ts), ts.1.max(p.ts));
            vmin = nan_min(vmin, p.value);
            vmax = nan_max(vmax, p.value);
            if !p.value.is_nan() {
                vsum += p.value;
            }
        }
        smin = nan_min(smin, vmin);
        smax = nan_max(smax, vmax);
        tx.chunk_insert(
            series,
            &NewChunk {
                count: chunk.len() as i64,
                step,
                time,
                ts,
                vmin: opt(vmin),
                vmax: opt(vmax),
                vsum: opt(vsum),
                blocks: &bbuf,
                points: &pbuf,
            },
        )?;
    }
    let last = points.last().map(|p| (opt(p.value), p.step));
    tx.series_extend(series, points.len() as i64, opt(smin), opt(smax), last)?;
    Ok(series)
}

/// Stores a decoded batch of `run` (points grouped per metric) received
/// at `now`: the run is alive, and its alerts on those metrics are
/// re-evaluated in the same transaction. A batch that would give the run
/// more than `max_names` metric names is refused whole (invalid, 422).
pub fn ingest(
    tx: &dyn WriteTx,
    run: &str,
    series: &[(String, Vec<Point>)],
    now: i64,
    max_names: u64,
) -> Result<()> {
    super::runs::batch_run_status(tx, run)?;
    let mut new_names = 0u64;
    for (name, _) in series {
        if tx.series_id(run, name)?.is_none() {
            new_names += 1;
        }
    }
    if new_names > 0 {
        let have = tx.series_count(run)?;
        if have + new_names > max_names {
            return Err(super::Error::invalid(format!(
                "run {run} has {have} metric names and this batch adds {new_names}: \
                 at most {max_names} metric names per run (server option --max-metric-names)"
            )));
        }
    }
    for (name, points) in series {
        append(tx, run, name, points)?;
    }
    super::runs::touch(tx, run, now)?;
    super::alerts::on_metrics(tx, run, series)
}

/// Appends the points of stored chunk `chunk` to `out`.
pub fn chunk_points(tx: &dyn ReadTx, chunk: i64, out: &mut Vec<Point>) -> Result<()> {
    decode(&tx.chunk_points(chunk)?, out);
    Ok(())
}

/// Reads a series ordered by `axis`; with `max_points`, downsampled to at
/// most that many points keeping each bucket's minimum, maximum and first
/// NaN ([`Buckets`]).
///
/// A downsampled read decodes no point when it need not: a chunk whose
/// block summary keeps NaNs ([`summarise`]) gives its summary's points as
/// candidates as soon as a block spans at most two buckets (so the
/// envelope is drawn at two buckets' resolution at worst, every spike and
/// NaN in it); an older chunk's summary, which lacks NaNs, is used only
/// from two blocks per bucket on, as before. Other chunks are decoded one
/// at a time into the buckets, never the whole series at once.
pub fn read(
    tx: &dyn ReadTx,
    series: i64,
    axis: Axis,
    max_points: Option<usize>,
) -> Result<Vec<Point>> {
    let chunks: Vec<ChunkInfo> = tx.chunks(series, axis, max_points.is_some())?;
    let total: i64 = chunks.iter().map(|c| c.count).sum();
    let limit = match max_points {
        Some(m) if (total as usize) > m.max(3) => m.max(3),
        _ => {
            let mut pts = Vec::with_capacity(total as usize);
            for c in &chunks {
                chunk_points(tx, c.id, &mut pts)?;
            }
            sort_by_axis(&mut pts, axis);
            return Ok(pts);
        }
    };
    let xmin = chunks.iter().map(|c| c.xmin).fold(f64::INFINITY, f64::min);
    let xmax = chunks
        .iter()
        .map(|c| c.xmax)
        .fold(f64::NEG_INFINITY, f64::max);
    let per_bucket = total as usize / (limit / 2);
    let mut acc = Buckets::new(axis, xmin, xmax, limit / 2);
    let mut buf = Vec::new();
    for c in &chunks {
        buf.clear();
        let summary = if nan_kept(&c.blocks) {
            2 * per_bucket >= BLOCK_POINTS
        } else {
            per_bucket >= 2 * BLOCK_POINTS
        };
        if summary {
            decode(&c.blocks, &mut buf);
        } else {
            chunk_points(tx, c.id, &mut buf)?;
        }
        acc.add(&buf);
    }
    Ok(acc.finish(limit))
}

/// The exact order of points on `axis` as an integer (steps and timestamps
/// as they are, times by their IEEE total order), so steps above 2^53 keep
/// their order.
fn sort_key(axis: Axis, p: &Point) -> i64 {
    match axis {
        Axis::Step => p.step,
        Axis::Timestamp => p.ts,
        Axis::Time => {
            let b = p.time.to_bits() as i64;
            b ^ ((((b >> 63) as u64) >> 1) as i64)
        }
    }
}

/// Calls `emit` with every point of a series in `axis` order (as
/// [`read`] without `max_points` returns them) without holding the series
/// in memory: chunks are loaded in the order of their lowest x and merged,
/// so only chunks whose ranges overlap the current position are held (one
/// or two for a series logged in order, each at most [`CHUNK_POINTS`]).
/// `emit` returns `false` to stop early (the reader went away).
pub fn for_each_point(
    tx: &dyn ReadTx,
    series: i64,
    axis: Axis,
    mut emit: impl FnMut(&Point) -> Result<bool>,
) -> Result<()> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let chunks: Vec<ChunkInfo> = tx.chunks(series, axis, false)?;
    let mut order: Vec<usize> = (0..chunks.len()).collect();
    order.sort_by(|a, b| chunks[*a].xmin.total_cmp(&chunks[*b].xmin).then(a.cmp(b)));
    let mut next = 0;
    // Loaded chunks, each sorted (stably) by key, with a cursor; the heap
    // holds each loaded chunk's head as (key, chunk index).
    let mut loaded: Vec<Option<(Vec<Point>, usize)>> = vec![None; chunks.len()];
    let mut heads: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    loop {
        // Load every chunk that may hold a point at or before the head.
        while next < order.len() {
            let lower = chunks[order[next]].xmin;
            let must = match heads.peek() {
                None => true,
                Some(Reverse((_, c))) => {
                    let (pts, at) = loaded[*c].as_ref().expect("a head's chunk is loaded");
                    axis.x(&pts[*at]) >= lower
                }
            };
            if !must {
                break;
            }
            let c = order[next];
            next += 1;
            let mut pts = Vec::new();
            chunk_points(tx, chunks[c].id, &mut pts)?;
            if pts.is_empty() {
                continue;
            }
            pts.sort_by_key(|p| sort_key(axis, p));
            heads.push(Reverse((sort_key(axis, &pts[0]), c)));
            loaded[c] = Some((pts, 0));
        }
        let Some(Reverse((_, c))) = heads.pop() else {
            return Ok(());
        };
        let slot = loaded[c].as_mut().expect("a head's chunk is loaded");
        if !emit(&slot.0[slot.1])? {
            return Ok(());
        }
        slot.1 += 1;
        if slot.1 < slot.0.len() {
            heads.push(Reverse((sort_key(axis, &slot.0[slot.1]), c)));
        } else {
            loaded[c] = None;
        }
    }
}

/// Reads the chunks of a series whose `axis` range overlaps `[min, max]`,
/// ordered by `axis`: every point in the range and the chunk-mates around
/// it (so a caller can draw a line into the range from its neighbours).
/// Decodes only those chunks: a zoomed chart of a long series reads a few
/// chunks, not all of them.
pub fn read_range(
    tx: &dyn ReadTx,
    series: i64,
    axis: Axis,
    min: f64,
    max: f64,
) -> Result<Vec<Point>> {
    let mut pts = Vec::new();
    for c in tx.chunks_overlapping(series, axis, min, max)? {
        chunk_points(tx, c, &mut pts)?;
    }
    sort_by_axis(&mut pts, axis);
    Ok(pts)
}

/// One series of `run` between `min` and `max` on `axis`, with one point
/// either side so a line reaches the edges, downsampled by [`bucket`] to
/// at most `max_points`: what a zoomed chart shows. Not found for an
/// unknown run; empty for an unknown metric.
pub fn range(
    tx: &dyn ReadTx,
    run: &str,
    metric: &str,
    axis: Axis,
    (min, max): (f64, f64),
    max_points: usize,
) -> Result<Vec<Point>> {
    super::runs::status_of(tx, run)?;
    let pts = match tx.series_id(run, metric)? {
        Some(series) => read_range(tx, series, axis, min, max)?,
        None => Vec::new(),
    };
    let lo = pts.partition_point(|p| axis.x(p) < min).saturating_sub(1);
    let hi = (pts.partition_point(|p| axis.x(p) <= max) + 1).min(pts.len());
    let slice = if lo < hi { &pts[lo..hi] } else { &[][..] };
    match (slice.first(), slice.last()) {
        (Some(first), Some(last)) if slice.len() > max_points => Ok(bucket(
            slice,
            axis,
            axis.x(first),
            axis.x(last),
            (max_points / 2).max(1),
        )),
        _ => Ok(slice.to_vec()),
    }
}

fn sort_by_axis(pts: &mut [Point], axis: Axis) {
    pts.sort_by_key(|p| sort_key(axis, p));
}

/// Min/max-per-bucket downsampling of `candidates` into `buckets` equal
/// x ranges over `[xmin, xmax]` ([`Buckets`]).
fn bucket(candidates: &[Point], axis: Axis, xmin: f64, xmax: f64, buckets: usize) -> Vec<Point> {
    let mut acc = Buckets::new(axis, xmin, xmax, buckets);
    acc.add(candidates);
    acc.finish(2 * buckets)
}

/// Downsampling into equal x ranges (buckets): each keeps its minimum and
/// maximum point and its first NaN, so no spike and no NaN is lost.
struct Buckets {
    axis: Axis,
    xmin: f64,
    scale: f64,
    /// Per bucket: the minimum, the maximum, the first NaN.
    keep: Vec<[Option<Point>; 3]>,
}

impl Buckets {
    fn new(axis: Axis, xmin: f64, xmax: f64, buckets: usize) -> Buckets {
        let n = buckets.max(1);
        let span = xmax - xmin;
        Buckets {
            axis,
            xmin,
            scale: if span > 0.0 { n as f64 / span } else { 0.0 },
            keep: vec![[None; 3]; n],
        }
    }

    fn add(&mut self, points: &[Point]) {
        let last = self.keep.len() - 1;
        for p in points {
            // `as` saturates: below xmin (or NaN) lands in the first bucket.
            let b = (((self.axis.x(p) - self.xmin) * self.scale) as usize).min(last);
            let [lo, hi, nan] = &mut self.keep[b];
            if p.value.is_nan() {
                if nan.is_none() {
                    *nan = Some(*p);
                }
                continue;
            }
            if lo.is_none_or(|q| p.value < q.value) {
                *lo = Some(*p);
            }
            if hi.is_none_or(|q| p.value > q.value) {
                *hi = Some(*p);
            }
        }
    }

    /// The kept points in x order, at most `limit` (>= 2 per bucket): were
    /// NaNs to push them past it, buckets are merged pairwise until not.
    fn finish(mut self, limit: usize) -> Vec<Point> {
        loop {
            let n: usize = self.keep.iter().map(Self::kept).sum();
            if n <= limit || self.keep.len() == 1 {
                break;
            }
            self.keep = self
                .keep
                .chunks(2)
                .map(|pair| {
                    let mut m = Buckets {
                        axis: self.axis,
                        xmin: 0.0,
                        scale: 0.0,
                        keep: vec![[None; 3]],
                    };
                    for k in pair {
                        let pts: Vec<Point> = k.iter().flatten().copied().collect();
                        m.add(&pts);
                    }
                    m.keep[0]
                })
                .collect();
        }
        let mut out = Vec::with_capacity(limit.min(self.keep.len() * 3));
        for k in &self.keep {
            let mut pts: Vec<Point> = Vec::with_capacity(3);
            for p in k.iter().flatten() {
                if !pts.contains(p) {
                    pts.push(*p);
                }
            }
            pts.sort_by_key(|p| sort_key(self.axis, p));
            out.extend(pts);
        }
        out
    }

    fn kept(k: &[Option<Point>; 3]) -> usize {
        match k {
            [Some(l), Some(h), nan] => 1 + usize::from(l != h) + usize::from(nan.is_some()),
            [_, _, nan] => usize::from(nan.is_some()),
        }
    }
}

/// Aggregate of a series over the points whose timestamp lies within
/// `window_us` of the newest point: (count, sum, min, max, points if needed).
#[derive(Debug, Default)]
pub struct Window {
    /// Points in the window.
    pub count: i64,
    /// Sum of the non-NaN values.
    pub sum: f64,
    /// Minimum value.
    pub min: f64,
    /// Maximum value.
    pub max: f64,
    /// Every value in the window, when asked for.
    pub values: Vec<f64>,
}

/// Summarises the last `window_us` of a series (by timestamp), reading whole
/// chunks from their summaries and decoding only the chunk that straddles
/// the window start (or all of them when `want_values`).
pub fn window(tx: &dyn ReadTx, series: i64, window_us: i64, want_values: bool) -> Result<Window> {
    let Some(newest) = tx.series_newest_ts(series)? else {
        return Ok(Window::default());
    };
    let cutoff = newest.saturating_sub(window_us.max(0));
    let rows = tx.chunks_since(series, cutoff)?;
    let mut w = Window {
        min: f64::NAN,
        max: f64::NAN,
        ..Window::default()
    };
    let mut pts = Vec::new();
    for c in rows {
        if c.ts_min >= cutoff && !want_values {
            w.count += c.count;
            w.sum += c.vsum.unwrap_or(0.0);
            w.min = nan_min(w.min, c.vmin.unwrap_or(f64::NAN));
            w.max = nan_max(w.max, c.vmax.unwrap_or(f64::NAN));
            continue;
        }
        pts.clear();
        chunk_points(tx, c.id, &mut pts)?;
        for p in pts.iter().filter(|p| p.ts >= cutoff) {
            w.count += 1;
            if !p.value.is_nan() {
                w.sum += p.value;
            }
            w.min = nan_min(w.min, p.value);
            w.max = nan_max(w.max, p.value);
            if want_values {
                w.values.push(p.value);
            }
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::SqliteStore;

    fn series(n: usize, spike_at: usize) -> Vec<Point> {
        (0..n)
            .map(|i| Point {
                step: i as i64,
                time: i as f64 * 0.01,
                ts: 1_700_000_000_000_000 + i as i64,
                value: if i == spike_at { 1e9 } else { (i as f64).sin() },
            })
            .collect()
    }

    struct Db(
        #[expect(dead_code, reason = "kept alive: removed on drop")] tempfile::TempDir,
        SqliteStore,
    );

    fn db() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        Db(dir, store)
    }

    #[test]
    fn packed_chunks_round_trip_exactly_and_are_told_from_fixed_records() {
        let mut pts = series(3000, 17);
        pts[5].value = f64::NAN;
        pts[6].value = f64::from_bits(0x7ff8_dead_beef_0001);
        pts[7].value = f64::INFINITY;
        pts[8].step = i64::MAX;
        pts[9].step = 0;
        pts[10].ts = i64::MIN;
        pts[11].time = -0.0;
        for n in 0..200 {
            let mut buf = Vec::new();
            encode_packed(&pts[..n], &mut buf);
            assert!(!buf.len().is_multiple_of(POINT_BYTES), "{n} points");
            let mut back = Vec::new();
            decode(&buf, &mut back);
            assert_eq!(back.len(), n);
            for (a, b) in pts.iter().zip(&back) {
                assert_eq!(
                    (a.step, a.ts, a.time.to_bits(), a.value.to_bits()),
                    (b.step, b.ts, b.time.to_bits(), b.value.to_bits())
                );
            }
        }
        let mut packed = Vec::new();
        encode_packed(&pts, &mut packed);
        let mut fixed = Vec::new();
        encode(&pts, &mut fixed);
        // Steps and timestamps shrink to a byte or two, time and value to
        // their changing bytes: here 16.4 bytes a point instead of 32.
        assert!(
            packed.len() * 5 < fixed.len() * 3,
            "{} vs {}",
            packed.len(),
            fixed.len()
        );
        // Chunks stored before the packed format still read.
        let mut back = Vec::new();
        decode(&fixed, &mut back);
        assert_eq!(back.len(), pts.len());
        assert_eq!(back[1000], pts[1000]);
        // A damaged chunk yields what precedes the damage, never a panic.
        for cut in [0, 3, 7, 8, 9, 100, packed.len() - 1] {
            let mut back = Vec::new();
            decode_packed(&packed[..cut], &mut back);
            assert!(back.len() < pts.len());
            assert!(back.iter().zip(&pts).all(|(a, b)| a.step == b.step));
        }
    }

    fn ap(c: &Db, run: &str, name: &str, pts: &[Point]) -> i64 {
        crate::domain::write(&c.1, |tx| append(tx, run, name, pts)).unwrap()
    }

    fn rd<T>(c: &Db, f: impl FnOnce(&dyn ReadTx) -> Result<T>) -> T {
        crate::domain::read(&c.1, f).unwrap()
    }

    #[test]
    fn raw_read_returns_every_point_in_order() {
        let c = db();
        let pts = series(70_000, 5);
        let id = ap(&c, "r", "m", &pts[..40_000]);
        ap(&c, "r", "m", &pts[40_000..]);
        assert_eq!(rd(&c, |tx| read(tx, id, Axis::Step, None)), pts);
    }

    #[test]
    fn streamed_read_equals_the_whole_read_even_with_overlapping_chunks() {
        let c = db();
        // In order, then out of order (overlapping chunks), with ties.
        let mut pts = series(150_000, 5);
        let id = ap(&c, "r", "m", &pts);
        let mut back: Vec<Point> = series(70_000, 9)
            .into_iter()
            .rev()
            .map(|mut p| {
                p.step = p.step * 2 + 1;
                p.ts += 3;
                p
            })
            .collect();
        back.extend(series(1000, 1));
        ap(&c, "r", "m", &back);
        pts.extend(back);
        for axis in [Axis::Step, Axis::Time, Axis::Timestamp] {
            let whole = rd(&c, |tx| read(tx, id, axis, None));
            assert_eq!(whole.len(), pts.len());
            let mut streamed = Vec::new();
            rd(&c, |tx| {
                for_each_point(tx, id, axis, |p| {
                    streamed.push(*p);
                    Ok(true)
                })
            });
            assert_eq!(streamed, whole, "{axis:?}");
        }
        let mut n = 0;
        rd(&c, |tx| {
            for_each_point(tx, id, Axis::Step, |_| {
                n += 1;
                Ok(n < 10)
            })
        });
        assert_eq!(n, 10, "stops when asked");
    }

    #[test]
    fn downsampled_read_is_bounded_and_keeps_spikes() {
        let c = db();
        let pts = series(300_000, 123_457);
        let id = ap(&c, "r", "m", &pts);
        for axis in [Axis::Step, Axis::Time, Axis::Timestamp] {
            let out = rd(&c, |tx| read(tx, id, axis, Some(1000)));
            assert!(out.len() <= 1000 && out.len() > 400, "{}", out.len());
            assert!(out.iter().any(|p| p.value == 1e9));
            assert!(out.windows(2).all(|w| axis.x(&w[0]) <= axis.x(&w[1])));
        }
        let fine = rd(&c, |tx| read(tx, id, Axis::Step, Some(200_000)));
        assert!(fine.len() <= 200_000 && fine.iter().any(|p| p.value == 1e9));
    }

    /// The summaries of `pts` as written before NaNs were kept: fixed
    /// records of each block's minimum and maximum.
    fn old_summary(pts: &[Point]) -> Vec<u8> {
        let mut out = Vec::new();
        for block in pts.chunks(BLOCK_POINTS) {
            let (lo, hi) = extremes(block);
            encode(&[block[lo], block[hi]], &mut out);
        }
        out
    }

    #[test]
    fn downsampled_read_keeps_a_lone_spike_and_a_lone_nan_at_any_resolution() {
        let c = db();
        // 100,000 points in chunks of 1,500 (as the library's batches
        // arrive), one spike and one NaN, both alone in their block.
        let mut pts = series(100_000, 61_234);
        pts[80_017].value = f64::NAN;
        pts[30_000].value = f64::NEG_INFINITY;
        let mut id = 0;
        for part in pts.chunks(1500) {
            id = ap(&c, "r", "m", part);
        }
        // 400 points: two blocks a bucket; 1000: a block spans two buckets
        // (summaries only); 4000: finer than blocks (every point decoded).
        for max in [400, 1000, 4000] {
            for axis in [Axis::Step, Axis::Time, Axis::Timestamp] {
                let out = rd(&c, |tx| read(tx, id, axis, Some(max)));
                assert!(
                    out.len() <= max && out.len() > max / 4,
                    "{max}: {}",
                    out.len()
                );
                assert!(out.windows(2).all(|w| axis.x(&w[0]) <= axis.x(&w[1])));
                assert!(out.iter().any(|p| p.value == 1e9), "{max} {axis:?}: spike");
                let nan: Vec<i64> = out
                    .iter()
                    .filter(|p| p.value.is_nan())
                    .map(|p| p.step)
                    .collect();
                assert_eq!(nan, [80_017], "{max} {axis:?}: the NaN");
                assert!(
                    out.iter()
                        .any(|p| p.value == f64::NEG_INFINITY && p.step == 30_000)
                );
            }
        }
        // Summaries keep the NaN; the points still give every value back.
        assert_eq!(rd(&c, |tx| read(tx, id, Axis::Step, None)).len(), 100_000);
    }

    #[test]
    fn a_downsampled_read_of_many_nans_stays_within_max_points() {
        let c = db();
        let pts: Vec<Point> = series(20_000, 5)
            .into_iter()
            .map(|mut p| {
                if p.step % 3 == 0 {
                    p.value = f64::NAN;
                }
                p
            })
            .collect();
        let id = ap(&c, "r", "m", &pts);
        for max in [3, 10, 101, 1000, 6000] {
            let out = rd(&c, |tx| read(tx, id, Axis::Step, Some(max)));
            assert!(out.len() <= max, "{max}: {}", out.len());
            assert!(out.iter().any(|p| p.value.is_nan()), "{max}");
            assert!(out.iter().any(|p| p.value == 1e9), "{max}");
            assert!(out.windows(2).all(|w| w[0].step <= w[1].step));
        }
        // Nothing but NaN: NaNs come back, bounded.
        let all_nan: Vec<Point> = pts
            .iter()
            .map(|p| Point {
                value: f64::NAN,
                ..*p
            })
            .collect();
        let id = ap(&c, "r", "n", &all_nan);
        let out = rd(&c, |tx| read(tx, id, Axis::Step, Some(100)));
        assert!(!out.is_empty() && out.len() <= 100 && out.iter().all(|p| p.value.is_nan()));
    }

    #[test]
    fn summaries_written_before_nans_were_kept_still_read() {
        let c = db();
        let pts = series(300_000, 123_457);
        let id = ap(&c, "r", "m", &pts[..1]);
        crate::domain::write(&c.1, |tx| {
            for chunk in pts[1..].chunks(CHUNK_POINTS) {
                let mut points = Vec::new();
                encode_packed(chunk, &mut points);
                let first = chunk[0];
                let last = chunk[chunk.len() - 1];
                tx.chunk_insert(
                    id,
                    &NewChunk {
                        count: chunk.len() as i64,
                        step: (first.step, last.step),
                        time: (first.time, last.time),
                        ts: (first.ts, last.ts),
                        vmin: None,
                        vmax: None,
                        vsum: None,
                        blocks: &old_summary(chunk),
                        points: &points,
                    },
                )?;
            }
            Ok(())
        })
        .unwrap();
        assert!(!nan_kept(&old_summary(&pts[..1000])));
        for max in [200, 1000, 3000] {
            let out = rd(&c, |tx| read(tx, id, Axis::Step, Some(max)));
            assert!(
                out.len() <= max && out.len() > max / 4,
                "{max}: {}",
                out.len()
            );
            assert!(out.iter().any(|p| p.value == 1e9));
            assert!(out.windows(2).all(|w| w[0].step <= w[1].step));
            let bucket = 300_000 / (max as i64 / 2);
            assert!(out[0].step < bucket && out[out.len() - 1].step >= 300_000 - bucket);
        }
    }

    #[test]
    fn range_read_equals_filtering_the_whole_series() {
        let c = db();
        let pts = series(200_000, 10);
        let id = ap(&c, "r", "m", &pts);
        for axis in [Axis::Step, Axis::Time, Axis::Timestamp] {
            let all = rd(&c, |tx| read(tx, id, axis, None));
            let (lo, hi) = (axis.x(&all[70_000]), axis.x(&all[110_123]));
            let want: Vec<Point> = all
                .iter()
                .copied()
                .filter(|p| (lo..=hi).contains(&axis.x(p)))
                .collect();
            let got = rd(&c, |tx| read_range(tx, id, axis, lo, hi));
            assert!(
                got.len() < all.len(),
                "only the overlapping chunks are read"
            );
            assert!(got.windows(2).all(|w| axis.x(&w[0]) <= axis.x(&w[1])));
            let in_range: Vec<Point> = got
                .into_iter()
                .filter(|p| (lo..=hi).contains(&axis.x(p)))
                .collect();
            assert_eq!(in_range, want);
        }
        let everything = rd(&c, |tx| {
            read_range(tx, id, Axis::Step, f64::NEG_INFINITY, f64::INFINITY)
        });
        assert_eq!(everything.len(), 200_000);
    }

    #[test]
    fn window_summaries_match_the_points() {
        let c = db();
        let pts = series(200_000, 10);
        let id = ap(&c, "r", "m", &pts);
        let w = rd(&c, |tx| window(tx, id, 1000, false));
        let v = rd(&c, |tx| window(tx, id, 1000, true));
        assert_eq!(w.count, 1001);
        assert_eq!(v.values.len(), 1001);
        assert!((w.sum - v.values.iter().sum::<f64>()).abs() < 1e-6);
    }
}
