//! Grids and array (grid) metrics: a grid is a set of named axes with
//! their coordinates (and, from simtrack's own library, units); an array
//! metric of a run is, at each step, one whole array on such a grid.
//!
//! Layout. An array's shape is its grid's axis lengths *reversed*, as the
//! Simvue client sends it (a numpy array of shape `(ny, nx)` lies on a grid
//! whose axis 0 is x with `nx` ticks): axis 0 varies fastest in memory,
//! which is also a Fortran array `a(nx, ny)` as it lies in memory.
//!
//! Storage. One row per (run, metric, step), never a row per element. The
//! values are packed as f64 little-endian, *byte-shuffled* (all first
//! bytes, then all second bytes, ...: neighbouring values of a smooth field
//! share sign, exponent and leading mantissa bytes, so the planes become
//! long runs) and compressed with zstd at level 1 (compresses at several
//! hundred MB/s and decompresses at over 1 GB/s; it beats LZ4 clearly on the
//! shuffled planes and is cheap enough that reading a 1M-element step stays
//! well under the 50 ms target). Blob: `b"SG1"`, `ndim: u8`, `ndim × u32`
//! dimensions (outermost first), then the compressed planes.

use serde_json::{Map, Value, json};

use super::{Error, Result};
use crate::storage::{GridRow, GridValueRow, ReadTx, WriteTx};
use crate::util::{fmt_ts, new_id};

/// Most axes a grid may have (the Simvue client sends 1 or 2; simtrack's
/// library also logs 3-D fields).
pub const MAX_AXES: usize = 3;
/// Most ticks on one axis.
pub const MAX_TICKS: usize = 1 << 24;
/// Most elements in one array.
pub const MAX_ELEMENTS: usize = 1 << 27;
const MAGIC: &[u8; 3] = b"SG1";
const ZSTD_LEVEL: i32 = 1;

/// A grid's definition as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct GridDef {
    /// Name (not unique: the client creates one per `assign_metric_to_grid`).
    pub name: String,
    /// Coordinates of each axis, monotonic.
    pub axes: Vec<Vec<f64>>,
    /// One label per axis.
    pub labels: Vec<String>,
    /// One unit per axis (empty string: none given).
    pub units: Vec<String>,
}

impl GridDef {
    /// The array shape a value on this grid has (axis lengths reversed).
    pub fn shape(&self) -> Vec<usize> {
        self.axes.iter().rev().map(Vec::len).collect()
    }
}

fn invalid(s: impl Into<String>) -> Error {
    Error::invalid(s)
}

/// Validates a grid body `{name, grid: [[ticks]], labels: [..], units?: [..]}`.
pub fn parse_def(body: &Map<String, Value>) -> Result<GridDef> {
    let name = match body.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(invalid("'name' must be a string")),
    };
    super::check_name("grid name", &name, 256)?;
    let Some(Value::Array(grid)) = body.get("grid") else {
        return Err(invalid(
            "'grid' must be a list of axes, each a list of numbers",
        ));
    };
    if grid.is_empty() || grid.len() > MAX_AXES {
        return Err(invalid(format!("a grid has 1 to {MAX_AXES} axes")));
    }
    let mut axes = Vec::with_capacity(grid.len());
    for (i, a) in grid.iter().enumerate() {
        let Value::Array(ticks) = a else {
            return Err(invalid(format!("axis {i} must be a list of numbers")));
        };
        if ticks.is_empty() || ticks.len() > MAX_TICKS {
            return Err(invalid(format!("axis {i} has 1 to {MAX_TICKS} ticks")));
        }
        let t: Vec<f64> = ticks
            .iter()
            .map(|v| v.as_f64().filter(|x| x.is_finite()))
            .collect::<Option<_>>()
            .ok_or_else(|| invalid(format!("axis {i} must hold finite numbers only")))?;
        let up = t.windows(2).all(|w| w[0] <= w[1]);
        let down = t.windows(2).all(|w| w[0] >= w[1]);
        if !up && !down {
            return Err(invalid(format!("axis {i} has unordered values")));
        }
        axes.push(t);
    }
    let strings = |key: &str| -> Result<Option<Vec<String>>> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| invalid(format!("'{key}' must be a list of strings"))),
            _ => Err(invalid(format!("'{key}' must be a list of strings"))),
        }
    };
    let labels = strings("labels")?.ok_or_else(|| invalid("'labels' is required"))?;
    if labels.len() != axes.len() {
        return Err(invalid(format!(
            "'labels' has {} entries for {} axes",
            labels.len(),
            axes.len()
        )));
    }
    let units = strings("units")?.unwrap_or_else(|| vec![String::new(); axes.len()]);
    if units.len() != axes.len() {
        return Err(invalid(format!(
            "'units' has {} entries for {} axes",
            units.len(),
            axes.len()
        )));
    }
    let total: usize = axes.iter().map(Vec::len).product();
    if total > MAX_ELEMENTS {
        return Err(invalid(format!(
            "the grid has {total} points; at most {MAX_ELEMENTS}"
        )));
    }
    Ok(GridDef {
        name,
        axes,
        labels,
        units,
    })
}

fn def_of(row: &GridRow) -> Result<GridDef> {
    let doc: Value = serde_json::from_str(&row.doc)
        .map_err(|e| Error::internal(format!("grid {} is stored damaged: {e}", row.id)))?;
    let mut m = doc.as_object().cloned().unwrap_or_default();
    m.insert("name".into(), Value::String(row.name.clone()));
    parse_def(&m)
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("grid {id} not found"))
}

/// Loads a grid's definition.
pub fn def(tx: &dyn ReadTx, id: &str) -> Result<GridDef> {
    def_of(&tx.grid_get(id)?.ok_or_else(|| not_found(id))?)
}

fn to_json(row: &GridRow) -> Result<Value> {
    let d = def_of(row)?;
    Ok(json!({
        "id": row.id,
        "name": d.name,
        "grid": d.axes,
        "labels": d.labels,
        "units": d.units,
        "shape": d.shape(),
        "created": fmt_ts(row.created),
        "user": row.user,
    }))
}

/// Stores a new grid; answers `{"id"}`.
pub fn create(tx: &dyn WriteTx, d: &GridDef, user: &str, now: i64) -> Result<Value> {
    let id = new_id();
    tx.grid_insert(&GridRow {
        id: id.clone(),
        name: d.name.clone(),
        doc: json!({ "grid": d.axes, "labels": d.labels, "units": d.units }).to_string(),
        created: now,
        user: user.to_owned(),
    })?;
    Ok(json!({ "id": id }))
}

/// One grid as JSON.
pub fn load(tx: &dyn ReadTx, id: &str) -> Result<Value> {
    to_json(&tx.grid_get(id)?.ok_or_else(|| not_found(id))?)
}

/// Every grid, as a page.
pub fn list(tx: &dyn ReadTx, start: usize, count: usize) -> Result<Value> {
    let all = tx
        .grid_list()?
        .iter()
        .map(to_json)
        .collect::<Result<Vec<_>>>()?;
    Ok(super::page(all, start, count))
}

/// Deletes a grid with its attachments and their values.
pub fn delete(tx: &dyn WriteTx, id: &str) -> Result<Value> {
    tx.grid_get(id)?.ok_or_else(|| not_found(id))?;
    tx.grid_delete(id)?;
    Ok(json!({}))
}

/// Puts metric `metric` of run `run` on grid `grid`.
pub fn attach(tx: &dyn WriteTx, run: &str, grid: &str, metric: &str) -> Result<Value> {
    super::runs::status_of(tx, run)?;
    tx.grid_get(grid)?.ok_or_else(|| not_found(grid))?;
    super::check_name("metric name", metric, 1024)?;
    tx.grid_attach(run, metric, grid)?;
    Ok(json!({ "id": grid, "run": run, "metric": metric }))
}

/// One array of an ingest batch, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayValue {
    /// Metric name.
    pub metric: String,
    /// Grid id.
    pub grid: String,
    /// Step.
    pub step: i64,
    /// Seconds since the run started.
    pub time: f64,
    /// Microseconds since the epoch.
    pub ts: i64,
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Values, innermost (grid axis 0) fastest.
    pub values: Vec<f64>,
}

/// Encodes values of `shape` as the stored blob.
pub fn encode(shape: &[usize], values: &[f64]) -> Result<Vec<u8>> {
    let n = values.len();
    let mut planes = vec![0u8; n * 8];
    for (i, v) in values.iter().enumerate() {
        for (b, byte) in v.to_le_bytes().into_iter().enumerate() {
            planes[b * n + i] = byte;
        }
    }
    let mut out = Vec::with_capacity(4 + shape.len() * 4 + n);
    out.extend_from_slice(MAGIC);
    out.push(shape.len() as u8);
    for d in shape {
        out.extend_from_slice(&(*d as u32).to_le_bytes());
    }
    let z = zstd::bulk::compress(&planes, ZSTD_LEVEL)
        .map_err(|e| Error::internal(format!("compressing an array: {e}")))?;
    out.extend_from_slice(&z);
    Ok(out)
}

/// Decodes a stored blob into (shape, values).
pub fn decode(blob: &[u8]) -> Result<(Vec<usize>, Vec<f64>)> {
    let damaged = || Error::internal("a stored array is damaged");
    if blob.len() < 4 || &blob[..3] != MAGIC {
        return Err(damaged());
    }
    let ndim = blob[3] as usize;
    let head = 4 + ndim * 4;
    if blob.len() < head {
        return Err(damaged());
    }
    let shape: Vec<usize> = blob[4..head]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let n: usize = shape.iter().product();
    if n > MAX_ELEMENTS {
        return Err(damaged());
    }
    let planes = zstd::bulk::decompress(&blob[head..], n * 8).map_err(|_| damaged())?;
    if planes.len() != n * 8 {
        return Err(damaged());
    }
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        let mut b = [0u8; 8];
        for (k, byte) in b.iter_mut().enumerate() {
            *byte = planes[k * n + i];
        }
        values.push(f64::from_le_bytes(b));
    }
    Ok((shape, values))
}

fn range(values: &[f64]) -> (Option<f64>, Option<f64>) {
    let mut lo: Option<f64> = None;
    let mut hi: Option<f64> = None;
    for &v in values.iter().filter(|v| v.is_finite()) {
        lo = Some(lo.map_or(v, |l| l.min(v)));
        hi = Some(hi.map_or(v, |h| h.max(v)));
    }
    (lo, hi)
}

/// Stores a batch of arrays of `run`, received at `now`: each on its grid
/// (the metric is attached to it if it was not), shape checked against
/// the grid; one row per step (a step sent again replaces the earlier).
pub fn ingest(tx: &dyn WriteTx, run: &str, batch: &[ArrayValue], now: i64) -> Result<()> {
    super::runs::status_of(tx, run)?;
    let mut defs: Vec<(String, GridDef)> = Vec::new();
    for a in batch {
        super::check_name("metric name", &a.metric, 1024)?;
        if !defs.iter().any(|(id, _)| *id == a.grid) {
            defs.push((a.grid.clone(), def(tx, &a.grid)?));
        }
        let d = defs
            .iter()
            .find(|(id, _)| *id == a.grid)
            .map(|(_, d)| d)
            .ok_or_else(|| not_found(&a.grid))?;
        let want = d.shape();
        if a.shape != want {
            return Err(invalid(format!(
                "metric '{}' step {}: array shape {:?} does not match grid {} (shape {:?})",
                a.metric, a.step, a.shape, a.grid, want
            )));
        }
        if a.values.len() != want.iter().product::<usize>() {
            return Err(invalid(format!(
                "metric '{}' step {}: {} values for shape {:?}",
                a.metric,
                a.step,
                a.values.len(),
                want
            )));
        }
        if a.step < 0 {
            return Err(invalid("'step' must be a non-negative integer"));
        }
    }
    for a in batch {
        tx.grid_attach(run, &a.metric, &a.grid)?;
        let (vmin, vmax) = range(&a.values);
        tx.grid_value_put(
            run,
            &a.metric,
            &GridValueRow {
                step: a.step,
                time: a.time,
                ts: a.ts,
                count: a.values.len() as i64,
                vmin,
                vmax,
                data: encode(&a.shape, &a.values)?,
            },
        )?;
    }
    super::runs::touch(tx, run, now)
}

fn grid_of(tx: &dyn ReadTx, run: &str, metric: &str) -> Result<String> {
    tx.grid_metrics(run)?
        .into_iter()
        .find(|m| m.metric == metric)
        .map(|m| m.grid)
        .ok_or_else(|| Error::not_found(format!("run {run} has no array metric '{metric}'")))
}

/// One step of an array metric, decoded: its row's facts, the grid id, the
/// shape and values.
pub fn step_values(
    tx: &dyn ReadTx,
    run: &str,
    metric: &str,
    step: i64,
) -> Result<(GridValueRow, String, Vec<usize>, Vec<f64>)> {
    super::runs::status_of(tx, run)?;
    let grid = grid_of(tx, run, metric)?;
    let mut row = tx.grid_value(run, metric, step)?.ok_or_else(|| {
        Error::not_found(format!(
            "run {run} has no step {step} of array metric '{metric}'"
        ))
    })?;
    let (shape, values) = decode(&std::mem::take(&mut row.data))?;
    Ok((row, grid, shape, values))
}

/// Writes `values` of `shape` as nested JSON lists into `out`.
pub fn push_nested(out: &mut String, shape: &[usize], values: &[f64]) {
    fn rec(out: &mut String, shape: &[usize], values: &[f64], buf: &mut jsonnum::Buf) {
        out.push('[');
        if shape.len() <= 1 {
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                buf.push(out, *v);
            }
        } else {
            let inner: usize = shape[1..].iter().product();
            for i in 0..shape[0] {
                if i > 0 {
                    out.push(',');
                }
                rec(out, &shape[1..], &values[i * inner..(i + 1) * inner], buf);
            }
        }
        out.push(']');
    }
    rec(out, shape, values, &mut jsonnum::Buf);
}

mod jsonnum {
    /// Formats finite floats as JSON numbers (shortest round-trip form),
    /// NaN and infinities as `null` (JSON has no token for them).
    #[derive(Debug)]
    pub struct Buf;
    impl Buf {
        pub fn push(&mut self, out: &mut String, v: f64) {
            if v.is_finite() {
                out.push_str(ryu::Buffer::new().format_finite(v));
            } else {
                out.push_str("null");
            }
        }
    }
}

/// `values?step=N` as the Simvue client reads it: one object whose `array`
/// is the nested list.
pub fn values_json(tx: &dyn ReadTx, run: &str, metric: &str, step: i64) -> Result<String> {
    let (row, grid, shape, values) = step_values(tx, run, metric, step)?;
    let mut out = String::with_capacity(values.len() * 20 + 256);
    out.push_str("{\"array\":");
    push_nested(&mut out, &shape, &values);
    let head = json!({
        "step": row.step,
        "time": row.time,
        "timestamp": fmt_ts(row.ts),
        "grid": grid,
        "metric": metric,
        "shape": shape,
        "min": row.vmin,
        "max": row.vmax,
    });
    // Append the remaining fields of `head` after the array.
    let h = head.to_string();
    out.push(',');
    out.push_str(&h[1..]);
    Ok(out)
}

/// `span`: a one-element list with the ranges of steps, time, timestamps
/// and values of an array metric.
pub fn span(tx: &dyn ReadTx, run: &str, metric: &str) -> Result<Value> {
    super::runs::status_of(tx, run)?;
    let m = tx
        .grid_metrics(run)?
        .into_iter()
        .find(|m| m.metric == metric)
        .ok_or_else(|| Error::not_found(format!("run {run} has no array metric '{metric}'")))?;
    if m.steps == 0 {
        return Ok(json!([]));
    }
    Ok(json!([{
        "metric": m.metric,
        "grid": m.grid,
        "count": m.steps,
        "min_step": m.step_min,
        "max_step": m.step_max,
        "min_time": m.time_min,
        "max_time": m.time_max,
        "min_timestamp": m.ts_min.map(fmt_ts),
        "max_timestamp": m.ts_max.map(fmt_ts),
        "min_value": m.vmin,
        "max_value": m.vmax,
    }]))
}

/// The array metrics of a run, each with its grid and step span.
pub fn of_run(tx: &dyn ReadTx, run: &str) -> Result<Value> {
    super::runs::status_of(tx, run)?;
    let mut all = Vec::new();
    for m in tx.grid_metrics(run)? {
        let grid = match tx.grid_get(&m.grid)? {
            Some(g) => to_json(&g)?,
            None => Value::Null,
        };
        all.push(json!({
            "metric": m.metric,
            "name": m.metric,
            "grid": m.grid,
            "grid_def": grid,
            "count": m.steps,
            "min_step": m.step_min,
            "max_step": m.step_max,
            "max_timestamp": m.ts_max.map(fmt_ts),
            "min_value": m.vmin,
            "max_value": m.vmax,
        }));
    }
    let n = all.len();
    Ok(super::page(all, 0, n))
}

/// The grids a run's array metrics are on, each once, with the names of
/// those metrics: `[{id, name, grid, labels, ..., metrics: [..]}]`.
pub fn grids_of_run(tx: &dyn ReadTx, run: &str) -> Result<Value> {
    super::runs::status_of(tx, run)?;
    let mut out: Vec<(String, Value)> = Vec::new();
    for m in tx.grid_metrics(run)? {
        if let Some((_, g)) = out.iter_mut().find(|(id, _)| *id == m.grid) {
            if let Some(a) = g["metrics"].as_array_mut() {
                a.push(Value::String(m.metric));
            }
            continue;
        }
        let Some(row) = tx.grid_get(&m.grid)? else {
            continue;
        };
        let mut g = to_json(&row)?;
        g["metrics"] = json!([m.metric]);
        out.push((m.grid, g));
    }
    Ok(Value::Array(out.into_iter().map(|(_, g)| g).collect()))
}

/// Every step of an array metric: `[{step, time, timestamp, min, max}]`.
pub fn steps(tx: &dyn ReadTx, run: &str, metric: &str) -> Result<Value> {
    super::runs::status_of(tx, run)?;
    grid_of(tx, run, metric)?;
    Ok(Value::Array(
        tx.grid_steps(run, metric)?
            .into_iter()
            .map(|r| {
                json!({
                    "step": r.step, "time": r.time, "timestamp": fmt_ts(r.ts),
                    "min": r.vmin, "max": r.vmax,
                })
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_round_trips_every_bit() {
        let vals: Vec<f64> = (0..1000)
            .map(|i| (i as f64 * 0.01).sin())
            .chain([f64::NAN, f64::INFINITY, -0.0, f64::MIN_POSITIVE])
            .collect();
        let shape = vec![4, 251];
        let blob = encode(&shape, &vals).unwrap();
        let (s, v) = decode(&blob).unwrap();
        assert_eq!(s, shape);
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            vals.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert!(blob.len() < vals.len() * 8, "a smooth field compresses");
    }

    #[test]
    fn damaged_blob_is_an_error_not_a_panic() {
        assert!(decode(b"SG1").is_err());
        assert!(decode(b"XX1\x01\x02\x00\x00\x00abc").is_err());
        assert!(decode(b"SG1\x01\xff\xff\xff\x7fabc").is_err());
    }

    #[test]
    fn nested_json_follows_the_shape() {
        let mut s = String::new();
        push_nested(&mut s, &[2, 3], &[1.0, 2.5, 3.0, 4.0, f64::NAN, 6.0]);
        assert_eq!(s, "[[1.0,2.5,3.0],[4.0,null,6.0]]");
    }

    #[test]
    fn grid_definitions_are_checked() {
        let ok = |v: Value| parse_def(v.as_object().unwrap());
        assert!(ok(json!({"name": "g", "grid": [[0, 1, 2]], "labels": ["x"]})).is_ok());
        assert!(ok(json!({"name": "g", "grid": [[0, 2, 1]], "labels": ["x"]})).is_err());
        assert!(ok(json!({"name": "g", "grid": [[0, 1]], "labels": ["x", "y"]})).is_err());
        assert!(ok(json!({"name": "g", "grid": [], "labels": []})).is_err());
        let d = ok(
            json!({"name": "g", "grid": [[0, 1, 2], [5, 6]], "labels": ["x", "y"],
                          "units": ["m", "s"]}),
        )
        .unwrap();
        assert_eq!(d.shape(), vec![2, 3]);
    }
}
