//! Metric storage: one row per (run, metric, ingest chunk), never one per
//! point.
//!
//! A chunk holds up to [`CHUNK_POINTS`] points packed as little-endian
//! `(step i64, time f64, timestamp_us i64, value f64)` in `metric_points`,
//! and beside it (in `metric_chunks`, so reading it never touches the points)
//! its ranges, min/max/sum, and a *block summary*: for every
//! [`BLOCK_POINTS`] consecutive points, the point holding the block's
//! minimum and the one holding its maximum. A downsampled read of a long
//! series only reads block summaries, so a 10M-point series costs ~80k
//! candidate points, and every spike survives because it is its block's
//! extreme.

use rusqlite::{Connection, OptionalExtension, params};

use crate::http::ApiError;

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

/// Which x axis a read orders and buckets by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// `step`
    Step,
    /// `time`
    Time,
    /// `timestamp`
    Timestamp,
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

fn encode(points: &[Point], out: &mut Vec<u8>) {
    out.reserve(points.len() * POINT_BYTES);
    for p in points {
        out.extend_from_slice(&p.step.to_le_bytes());
        out.extend_from_slice(&p.time.to_le_bytes());
        out.extend_from_slice(&p.ts.to_le_bytes());
        out.extend_from_slice(&p.value.to_le_bytes());
    }
}

fn decode(bytes: &[u8], out: &mut Vec<Point>) {
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

/// Appends `points` of metric `name` of `run_id` (a batch, in arrival order).
pub fn append(
    tx: &Connection,
    run_id: &str,
    name: &str,
    points: &[Point],
) -> Result<i64, ApiError> {
    tx.prepare_cached(
        "INSERT INTO metric_series (run_id, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )
    .and_then(|mut s| s.execute(params![run_id, name]))
    .map_err(ApiError::db)?;
    let series: i64 = tx
        .prepare_cached("SELECT id FROM metric_series WHERE run_id = ?1 AND name = ?2")
        .and_then(|mut s| s.query_row(params![run_id, name], |r| r.get(0)))
        .map_err(ApiError::db)?;
    let mut pbuf = Vec::new();
    let mut bbuf = Vec::new();
    let (mut smin, mut smax) = (f64::NAN, f64::NAN);
    for chunk in points.chunks(CHUNK_POINTS) {
        pbuf.clear();
        bbuf.clear();
        encode(chunk, &mut pbuf);
        for block in chunk.chunks(BLOCK_POINTS) {
            let (lo, hi) = extremes(block);
            encode(&[block[lo], block[hi]], &mut bbuf);
        }
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
        let opt = |v: f64| if v.is_nan() { None } else { Some(v) };
        tx.prepare_cached(
            "INSERT INTO metric_chunks (series_id, count, step_min, step_max, time_min, time_max,
             ts_min, ts_max, vmin, vmax, vsum, blocks) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
        )
        .and_then(|mut s| {
            s.execute(params![
                series,
                chunk.len() as i64,
                step.0,
                step.1,
                time.0,
                time.1,
                ts.0,
                ts.1,
                opt(vmin),
                opt(vmax),
                opt(vsum),
                bbuf
            ])
        })
        .map_err(ApiError::db)?;
        let chunk_id = tx.last_insert_rowid();
        tx.prepare_cached("INSERT INTO metric_points (chunk_id, points) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![chunk_id, pbuf]))
            .map_err(ApiError::db)?;
    }
    let last = points.last().map(|p| (p.value, p.step));
    let opt = |v: f64| if v.is_nan() { None } else { Some(v) };
    tx.prepare_cached(
        "UPDATE metric_series SET count = count + ?2,
           vmin = CASE WHEN ?3 IS NULL THEN vmin WHEN vmin IS NULL OR ?3 < vmin THEN ?3 ELSE vmin END,
           vmax = CASE WHEN ?4 IS NULL THEN vmax WHEN vmax IS NULL OR ?4 > vmax THEN ?4 ELSE vmax END,
           last = ?5, last_step = ?6 WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            series,
            points.len() as i64,
            opt(smin),
            opt(smax),
            last.and_then(|l| opt(l.0)),
            last.map(|l| l.1)
        ])
    })
    .map_err(ApiError::db)?;
    Ok(series)
}

struct ChunkInfo {
    id: i64,
    count: i64,
    xmin: f64,
    xmax: f64,
    blocks: Vec<u8>,
}

/// The series id of metric `name` of `run_id`, if it has any points.
pub fn series_id(conn: &Connection, run_id: &str, name: &str) -> Result<Option<i64>, ApiError> {
    conn.prepare_cached("SELECT id FROM metric_series WHERE run_id = ?1 AND name = ?2")
        .and_then(|mut s| s.query_row(params![run_id, name], |r| r.get(0)).optional())
        .map_err(ApiError::db)
}

fn chunk_points(conn: &Connection, chunk: i64, out: &mut Vec<Point>) -> Result<(), ApiError> {
    let blob: Vec<u8> = conn
        .prepare_cached("SELECT points FROM metric_points WHERE chunk_id = ?1")
        .and_then(|mut s| s.query_row(params![chunk], |r| r.get(0)))
        .map_err(ApiError::db)?;
    decode(&blob, out);
    Ok(())
}

/// Reads a series ordered by `axis`; with `max_points`, downsampled to at
/// most that many points keeping each bucket's minimum and maximum.
pub fn read(
    conn: &Connection,
    series: i64,
    axis: Axis,
    max_points: Option<usize>,
) -> Result<Vec<Point>, ApiError> {
    let (xmin_col, xmax_col) = match axis {
        Axis::Step => ("step_min", "step_max"),
        Axis::Time => ("time_min", "time_max"),
        Axis::Timestamp => ("ts_min", "ts_max"),
    };
    let want_blocks = max_points.is_some();
    let sql = format!(
        "SELECT id, count, {xmin_col}, {xmax_col}, {} FROM metric_chunks WHERE series_id = ?1 ORDER BY id",
        if want_blocks { "blocks" } else { "x''" }
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(ApiError::db)?;
    let chunks: Vec<ChunkInfo> = stmt
        .query_map(params![series], |r| {
            Ok(ChunkInfo {
                id: r.get(0)?,
                count: r.get(1)?,
                xmin: r.get::<_, f64>(2)?,
                xmax: r.get::<_, f64>(3)?,
                blocks: r.get(4)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(ApiError::db)?;
    let total: i64 = chunks.iter().map(|c| c.count).sum();
    let limit = match max_points {
        Some(m) if (total as usize) > m.max(2) => m.max(2),
        _ => {
            let mut pts = Vec::with_capacity(total as usize);
            for c in &chunks {
                chunk_points(conn, c.id, &mut pts)?;
            }
            sort_by_axis(&mut pts, axis);
            return Ok(pts);
        }
    };
    let buckets = limit / 2;
    let per_bucket = total as usize / buckets;
    let mut candidates = Vec::new();
    if per_bucket >= 2 * BLOCK_POINTS {
        for c in &chunks {
            decode(&c.blocks, &mut candidates);
        }
    } else {
        for c in &chunks {
            chunk_points(conn, c.id, &mut candidates)?;
        }
    }
    let xmin = chunks.iter().map(|c| c.xmin).fold(f64::INFINITY, f64::min);
    let xmax = chunks
        .iter()
        .map(|c| c.xmax)
        .fold(f64::NEG_INFINITY, f64::max);
    Ok(bucket(&candidates, axis, xmin, xmax, buckets))
}

/// Reads the chunks of a series whose `axis` range overlaps `[min, max]`,
/// ordered by `axis`: every point in the range and the chunk-mates around
/// it (so a caller can draw a line into the range from its neighbours).
/// Decodes only those chunks: a zoomed chart of a long series reads a few
/// chunks, not all of them.
pub fn read_range(
    conn: &Connection,
    series: i64,
    axis: Axis,
    min: f64,
    max: f64,
) -> Result<Vec<Point>, ApiError> {
    let (xmin_col, xmax_col) = match axis {
        Axis::Step => ("step_min", "step_max"),
        Axis::Time => ("time_min", "time_max"),
        Axis::Timestamp => ("ts_min", "ts_max"),
    };
    let sql = format!(
        "SELECT id FROM metric_chunks WHERE series_id = ?1 AND {xmax_col} >= ?2 AND {xmin_col} <= ?3 ORDER BY id"
    );
    let chunks: Vec<i64> = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![series, min, max], |r| r.get(0))?
                .collect()
        })
        .map_err(ApiError::db)?;
    let mut pts = Vec::new();
    for c in chunks {
        chunk_points(conn, c, &mut pts)?;
    }
    sort_by_axis(&mut pts, axis);
    Ok(pts)
}

fn sort_by_axis(pts: &mut [Point], axis: Axis) {
    pts.sort_by(|a, b| axis.x(a).total_cmp(&axis.x(b)));
}

/// Min/max-per-bucket downsampling of `candidates` into `buckets` equal
/// x ranges over `[xmin, xmax]`; at most two points per bucket.
fn bucket(candidates: &[Point], axis: Axis, xmin: f64, xmax: f64, buckets: usize) -> Vec<Point> {
    let span = xmax - xmin;
    let mut lo: Vec<Option<Point>> = vec![None; buckets];
    let mut hi: Vec<Option<Point>> = vec![None; buckets];
    for p in candidates {
        let b = if span > 0.0 {
            (((axis.x(p) - xmin) / span) * buckets as f64) as usize
        } else {
            0
        }
        .min(buckets - 1);
        match lo[b] {
            Some(q) if !(p.value < q.value || q.value.is_nan()) => {}
            _ => lo[b] = Some(*p),
        }
        match hi[b] {
            Some(q) if !(p.value > q.value || q.value.is_nan()) => {}
            _ => hi[b] = Some(*p),
        }
    }
    let mut out = Vec::with_capacity(buckets * 2);
    for (l, h) in lo.into_iter().zip(hi) {
        match (l, h) {
            (Some(l), Some(h)) if l == h => out.push(l),
            (Some(l), Some(h)) => {
                if axis.x(&l) <= axis.x(&h) {
                    out.extend([l, h]);
                } else {
                    out.extend([h, l]);
                }
            }
            _ => {}
        }
    }
    out
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
pub fn window(
    conn: &Connection,
    series: i64,
    window_us: i64,
    want_values: bool,
) -> Result<Window, ApiError> {
    let newest: Option<i64> = conn
        .prepare_cached("SELECT max(ts_max) FROM metric_chunks WHERE series_id = ?1")
        .and_then(|mut s| s.query_row(params![series], |r| r.get(0)))
        .map_err(ApiError::db)?;
    let Some(newest) = newest else {
        return Ok(Window::default());
    };
    let cutoff = newest.saturating_sub(window_us.max(0));
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, count, ts_min, vmin, vmax, vsum FROM metric_chunks
             WHERE series_id = ?1 AND ts_max >= ?2",
        )
        .map_err(ApiError::db)?;
    type Row = (i64, i64, i64, Option<f64>, Option<f64>, Option<f64>);
    let rows: Vec<Row> = stmt
        .query_map(params![series, cutoff], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(ApiError::db)?;
    let mut w = Window {
        min: f64::NAN,
        max: f64::NAN,
        ..Window::default()
    };
    let mut pts = Vec::new();
    for (id, count, ts_min, vmin, vmax, vsum) in rows {
        if ts_min >= cutoff && !want_values {
            w.count += count;
            w.sum += vsum.unwrap_or(0.0);
            w.min = nan_min(w.min, vmin.unwrap_or(f64::NAN));
            w.max = nan_max(w.max, vmax.unwrap_or(f64::NAN));
            continue;
        }
        pts.clear();
        chunk_points(conn, id, &mut pts)?;
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

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(crate::storage::sqlite::SCHEMA).unwrap();
        c
    }

    #[test]
    fn raw_read_returns_every_point_in_order() {
        let c = db();
        let pts = series(70_000, 5);
        let id = append(&c, "r", "m", &pts[..40_000]).unwrap();
        append(&c, "r", "m", &pts[40_000..]).unwrap();
        assert_eq!(read(&c, id, Axis::Step, None).unwrap(), pts);
    }

    #[test]
    fn downsampled_read_is_bounded_and_keeps_spikes() {
        let c = db();
        let pts = series(300_000, 123_457);
        let id = append(&c, "r", "m", &pts).unwrap();
        for axis in [Axis::Step, Axis::Time, Axis::Timestamp] {
            let out = read(&c, id, axis, Some(1000)).unwrap();
            assert!(out.len() <= 1000 && out.len() > 400, "{}", out.len());
            assert!(out.iter().any(|p| p.value == 1e9));
            assert!(out.windows(2).all(|w| axis.x(&w[0]) <= axis.x(&w[1])));
        }
        let fine = read(&c, id, Axis::Step, Some(200_000)).unwrap();
        assert!(fine.len() <= 200_000 && fine.iter().any(|p| p.value == 1e9));
    }

    #[test]
    fn range_read_equals_filtering_the_whole_series() {
        let c = db();
        let pts = series(200_000, 10);
        let id = append(&c, "r", "m", &pts).unwrap();
        for axis in [Axis::Step, Axis::Time, Axis::Timestamp] {
            let all = read(&c, id, axis, None).unwrap();
            let (lo, hi) = (axis.x(&all[70_000]), axis.x(&all[110_123]));
            let want: Vec<Point> = all
                .iter()
                .copied()
                .filter(|p| (lo..=hi).contains(&axis.x(p)))
                .collect();
            let got = read_range(&c, id, axis, lo, hi).unwrap();
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
        let everything = read_range(&c, id, Axis::Step, f64::NEG_INFINITY, f64::INFINITY).unwrap();
        assert_eq!(everything.len(), 200_000);
    }

    #[test]
    fn window_summaries_match_the_points() {
        let c = db();
        let pts = series(200_000, 10);
        let id = append(&c, "r", "m", &pts).unwrap();
        let w = window(&c, id, 1000, false).unwrap();
        let v = window(&c, id, 1000, true).unwrap();
        assert_eq!(w.count, 1001);
        assert_eq!(v.values.len(), 1001);
        assert!((w.sum - v.values.iter().sum::<f64>()).abs() < 1e-6);
    }
}
