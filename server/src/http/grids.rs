//! `/api/grids` and a run's array (grid) metrics, as the Simvue 2.6 client
//! uses them: create/get/list/delete grids, attach a run's metric to a grid
//! (`PUT /api/runs/{run}/grids/{grid}`), ingest arrays
//! (`POST /api/runs/{run}/metrics/`, msgpack or JSON list of
//! `{metric, grid, step, time, timestamp, array}`), list a run's array
//! metrics, and read one step (`…/metrics/{name}/values?step=N`), the span
//! (`…/span`) and the steps (`…/steps`, simtrack's own, for the UI).
//!
//! `array` is either nested lists of numbers (what the Simvue client sends)
//! or, from simtrack's library, a msgpack `bin` of f64 little-endian values
//! with the item's `shape` beside it (eight bytes per element instead of
//! nine, and no per-element decoding). `values?step=N&format=f64` answers
//! the raw values the same way (shape in `X-Simtrack-Shape`).

use std::fmt;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::Value;

use super::{
    ApiError, ApiResult, AppState, Caller, JsonObject, Params, Reply, idem, read, write_once,
    write_once_run,
};
use crate::domain::grids::{self, ArrayValue};
use crate::util::{now_us, parse_ts};

/// `POST /api/grids` `{name, grid: [[ticks]], labels, units?}` → `{"id"}`.
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let def = grids::parse_def(&body)?;
    let user = caller.0.user.clone();
    write_once(&st, &caller, idem, move |tx| {
        grids::create(tx, &def, &user, now_us())
    })
    .await
}

/// `GET /api/grids?start&count` → `{data, count}`.
pub async fn list(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let start = q.usize("start")?.unwrap_or(0);
    let count = q.usize("count")?.unwrap_or(usize::MAX);
    read(&st, &caller, move |tx| grids::list(tx, start, count))
        .await
        .map(Reply::ok)
}

/// `GET /api/grids/{id}`.
pub async fn get_one(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    read(&st, &caller, move |tx| grids::load(tx, &id))
        .await
        .map(Reply::ok)
}

/// `PUT /api/grids/{id}`: a grid's axes never change once values lie on
/// it; the offline sender re-sends a grid it already created, which
/// answers the stored grid.
pub async fn update(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    read(&st, &caller, move |tx| grids::load(tx, &id))
        .await
        .map(Reply::ok)
}

/// `DELETE /api/grids/{id}` → `{}`.
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    write_once(&st, &caller, idem, move |tx| grids::delete(tx, &id)).await
}

/// `PUT /api/runs/{run}/grids/{grid}` `{"metric"}`.
pub async fn attach(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((run, grid)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let Some(Value::String(metric)) = body.get("metric").cloned() else {
        return Err(ApiError::unprocessable("'metric' must be a string"));
    };
    write_once(&st, &caller, idem, move |tx| {
        grids::attach(tx, &run, &grid, &metric)
    })
    .await
}

/// An `array` as sent: its shape (outermost first) and values.
#[derive(Debug, Default)]
struct ArrayData {
    shape: Vec<usize>,
    values: Vec<f64>,
    raw: bool,
}

/// Reads one level of nested lists at `depth`, appending leaves.
struct Level<'a> {
    out: &'a mut ArrayData,
    depth: usize,
    leaf_depth: &'a mut Option<usize>,
}

impl<'de> DeserializeSeed<'de> for Level<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Level<'_> {
    fn leaf<E: de::Error>(self, v: f64) -> Result<(), E> {
        match *self.leaf_depth {
            None => *self.leaf_depth = Some(self.depth),
            Some(d) if d != self.depth => return Err(E::custom("'array' is ragged")),
            Some(_) => {}
        }
        if self.out.values.len() >= grids::MAX_ELEMENTS {
            return Err(E::custom("'array' has too many elements"));
        }
        self.out.values.push(v);
        Ok(())
    }
}

impl<'de> Visitor<'de> for Level<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or a list")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.leaf(v)
    }
    fn visit_f32<E: de::Error>(self, v: f32) -> Result<(), E> {
        self.leaf(v as f64)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.leaf(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.leaf(v as f64)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.leaf(if v { 1.0 } else { 0.0 })
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf(f64::NAN)
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<(), E> {
        if self.depth != 0 || !v.len().is_multiple_of(8) {
            return Err(E::custom(
                "binary 'array' must be f64 little-endian values (a multiple of 8 bytes)",
            ));
        }
        if v.len() / 8 > grids::MAX_ELEMENTS {
            return Err(E::custom("'array' has too many elements"));
        }
        self.out.raw = true;
        self.out.values = v
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        Ok(())
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<(), E> {
        self.visit_bytes(&v)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= grids::MAX_AXES {
            return Err(de::Error::custom("'array' is nested too deeply"));
        }
        let mut n = 0usize;
        loop {
            let seed = Level {
                out: &mut *self.out,
                depth: self.depth + 1,
                leaf_depth: &mut *self.leaf_depth,
            };
            if seq.next_element_seed(seed)?.is_none() {
                break;
            }
            n += 1;
        }
        // Inner lists finish first: a depth's length is recorded by the
        // first list of that depth to end, and every other must match it.
        let shape = &mut self.out.shape;
        if shape.len() <= self.depth {
            shape.resize(self.depth + 1, usize::MAX);
        }
        if shape[self.depth] == usize::MAX {
            shape[self.depth] = n;
        } else if shape[self.depth] != n {
            return Err(de::Error::custom("'array' is ragged"));
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for ArrayData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = ArrayData::default();
        let mut leaf_depth = None;
        Level {
            out: &mut out,
            depth: 0,
            leaf_depth: &mut leaf_depth,
        }
        .deserialize(d)?;
        Ok(out)
    }
}

#[derive(Debug, Deserialize)]
struct Item {
    metric: String,
    grid: String,
    step: i64,
    #[serde(default)]
    time: Option<f64>,
    #[serde(default)]
    timestamp: Option<String>,
    array: ArrayData,
    #[serde(default)]
    shape: Option<Vec<usize>>,
}

fn decode(headers: &HeaderMap, body: &[u8], now: i64) -> Result<Vec<ArrayValue>, ApiError> {
    let items: Vec<Item> = super::events::decode_body(headers, body)?;
    items
        .into_iter()
        .map(|it| {
            let ts = match it.timestamp.as_deref() {
                None | Some("") => now,
                Some(s) => parse_ts(s).ok_or_else(|| {
                    ApiError::unprocessable(format!("'timestamp' {s:?} is not a timestamp"))
                })?,
            };
            let shape = if it.array.raw {
                it.shape.unwrap_or_else(|| vec![it.array.values.len()])
            } else {
                it.array.shape
            };
            Ok(ArrayValue {
                metric: it.metric,
                grid: it.grid,
                step: it.step,
                time: it.time.unwrap_or(0.0),
                ts,
                shape,
                values: it.array.values,
            })
        })
        .collect()
}

/// `POST /api/runs/{run}/metrics/` (msgpack or JSON list of arrays) → `{}`.
pub async fn ingest(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(run): Path<String>,
    super::Bytes(body): super::Bytes,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let now = now_us();
    let batch = tokio::task::spawn_blocking(move || decode(&headers, &body, now))
        .await
        .map_err(|e| ApiError::bad_request(format!("could not decode arrays: {e}")))??;
    write_once_run(&st, &caller, run.clone(), idem, move |tx| {
        grids::ingest(tx, &run, &batch, now)?;
        Ok(serde_json::json!({}))
    })
    .await
}

/// `GET /api/runs/{run}/grids` → `[{id, name, grid, labels, ..., metrics}]`:
/// the grids the run's array metrics are on.
pub async fn of_run_grids(
    State(st): State<AppState>,
    caller: Caller,
    Path(run): Path<String>,
) -> ApiResult {
    read(&st, &caller, move |tx| grids::grids_of_run(tx, &run))
        .await
        .map(Reply::ok)
}

/// `GET /api/runs/{run}/metrics/` → `{data: [{metric, grid, ...}], count}`.
pub async fn of_run(
    State(st): State<AppState>,
    caller: Caller,
    Path(run): Path<String>,
) -> ApiResult {
    read(&st, &caller, move |tx| grids::of_run(tx, &run))
        .await
        .map(Reply::ok)
}

/// `GET /api/runs/{run}/metrics/{name}/{values|span|steps}` (the client
/// also sends `metrics//{name}/…`, hence the catch-all).
pub async fn metric_read(
    State(st): State<AppState>,
    caller: Caller,
    Path((run, rest)): Path<(String, String)>,
    q: Params,
) -> Result<Response, ApiError> {
    let rest = rest.trim_start_matches('/');
    let Some((name, what)) = rest.rsplit_once('/') else {
        return Err(ApiError::not_found("Not Found"));
    };
    let name = name.trim_end_matches('/').to_owned();
    let json = |v: String| -> Response {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            v,
        )
            .into_response()
    };
    match what {
        "values" => {
            let step = q
                .get("step")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ApiError::unprocessable("query parameter 'step' is required"))?;
            let step: i64 = step.parse().map_err(|_| {
                ApiError::unprocessable("query parameter 'step' must be an integer")
            })?;
            if q.get("format") == Some("f64") {
                let (_, _, shape, values) = read(&st, &caller, move |tx| {
                    grids::step_values(tx, &run, &name, step)
                })
                .await?;
                let mut bytes = Vec::with_capacity(values.len() * 8);
                for v in &values {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
                let shape = shape
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                return Ok((
                    StatusCode::OK,
                    [
                        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                        (header::HeaderName::from_static("x-simtrack-shape"), shape),
                    ],
                    Body::from(bytes),
                )
                    .into_response());
            }
            Ok(json(
                read(&st, &caller, move |tx| {
                    grids::values_json(tx, &run, &name, step)
                })
                .await?,
            ))
        }
        "span" => Ok(json(
            read(&st, &caller, move |tx| grids::span(tx, &run, &name))
                .await?
                .to_string(),
        )),
        "steps" => Ok(json(
            read(&st, &caller, move |tx| grids::steps(tx, &run, &name))
                .await?
                .to_string(),
        )),
        _ => Err(ApiError::not_found("Not Found")),
    }
}
