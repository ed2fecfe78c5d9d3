//! `/api/metrics`: msgpack batches in (grouped per metric into stored
//! chunks), series out, downsampled on the server when `max_points` asks.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::json;

use super::events::decode_body;
use super::wire::Exact;
use super::{
    ApiError, ApiResult, AppState, Bytes, Caller, Params, Reply, idem, read, stream_read,
    write_once_run,
};
use crate::domain::check_name;
use crate::domain::metrics::{self, Axis, Point};
use crate::util::{TsParser, fmt_ts, now_us, push_f64, push_json_str};

// Strings borrow from the request body: no allocation per point.
#[derive(Deserialize)]
struct Batch<'a> {
    run: String,
    #[serde(borrow)]
    metrics: Vec<Item<'a>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(default, deserialize_with = "number_opt")]
    time: Option<f64>,
    #[serde(default, borrow)]
    timestamp: Option<&'a str>,
    #[serde(default, deserialize_with = "exact_opt")]
    step: Option<Exact>,
    #[serde(borrow)]
    values: Values<'a>,
}

/// A number as the Simvue client encodes it: int, float or bool.
struct Num(f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Num, E> {
                Ok(Num(v))
            }
            fn visit_f32<E>(self, v: f32) -> Result<Num, E> {
                Ok(Num(f64::from(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Num, E> {
                Ok(Num(if v { 1.0 } else { 0.0 }))
            }
        }
        d.deserialize_any(V)
    }
}

/// A number kept exact ([`Exact`]): JSON integers are not read as `f64`.
struct ExactDe(Exact);

impl<'de> Deserialize<'de> for ExactDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ExactDe;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<ExactDe, E> {
                Ok(ExactDe(Exact::Float(v)))
            }
            fn visit_f32<E>(self, v: f32) -> Result<ExactDe, E> {
                Ok(ExactDe(Exact::Float(f64::from(v))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<ExactDe, E> {
                Ok(ExactDe(Exact::Int(i128::from(v))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<ExactDe, E> {
                Ok(ExactDe(Exact::Int(i128::from(v))))
            }
            fn visit_bool<E>(self, v: bool) -> Result<ExactDe, E> {
                Ok(ExactDe(Exact::Int(i128::from(v))))
            }
        }
        d.deserialize_any(V)
    }
}

fn exact_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Exact>, D::Error> {
    Option::<ExactDe>::deserialize(d).map(|o| o.map(|n| n.0))
}

fn number_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<Num>::deserialize(d).map(|o| o.map(|n| n.0))
}

/// `values`: metric name → number, kept as a flat list (no hashing).
struct Values<'a>(Vec<(&'a str, f64)>);

impl<'de: 'a, 'a> Deserialize<'de> for Values<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Values<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of metric name to number")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Values<'a>, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(1).min(1024));
                while let Some((k, Num(v))) = m.next_entry::<&'de str, Num>()? {
                    out.push((k, v));
                }
                Ok(Values(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
            .map_err(de::Error::custom)
    }
}

/// Points of one batch grouped per metric, in arrival order.
type Grouped = Vec<(String, Vec<Point>)>;

/// Groups points by metric, validating names, steps and timestamps.
struct Grouper<'a> {
    index: HashMap<&'a [u8], usize>,
    series: Grouped,
    last_ts: Option<(&'a [u8], i64)>,
    ts_parser: TsParser,
    last_slot: Option<(&'a [u8], usize)>,
    capacity: usize,
    now: i64,
}

impl<'a> Grouper<'a> {
    fn new(capacity: usize, now: i64) -> Self {
        Grouper {
            index: HashMap::new(),
            series: Vec::new(),
            last_ts: None,
            ts_parser: TsParser::default(),
            last_slot: None,
            capacity,
            now,
        }
    }

    fn item(
        &mut self,
        i: usize,
        time: Option<f64>,
        timestamp: Option<&'a [u8]>,
        step: Option<Exact>,
        values: &[(&'a [u8], f64)],
    ) -> Result<(), ApiError> {
        let ts = match timestamp {
            None => self.now,
            Some(t) => match self.last_ts {
                Some((s, v)) if s == t => v,
                _ => {
                    let v = self.ts_parser.parse(t).ok_or_else(|| {
                        ApiError::unprocessable(format!(
                            "metrics[{i}].timestamp must look like 2024-01-02T03:04:05.000000"
                        ))
                    })?;
                    self.last_ts = Some((t, v));
                    v
                }
            },
        };
        let step = match step {
            None => 0,
            Some(s) => s.step().ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "metrics[{i}].step must be a non-negative integer below 2^63"
                ))
            })?,
        };
        let time = time.unwrap_or(0.0);
        for &(name, value) in values {
            let slot = match self.last_slot {
                Some((n, s)) if n == name => s,
                _ => match self.index.get(name) {
                    Some(s) => *s,
                    None => {
                        let text = std::str::from_utf8(name).map_err(|_| {
                            ApiError::unprocessable(format!(
                                "metrics[{i}]: a metric name is not UTF-8"
                            ))
                        })?;
                        check_name("metric name", text, simtrack::model::MAX_NAME_BYTES)?;
                        let cap = if self.series.is_empty() {
                            self.capacity
                        } else {
                            0
                        };
                        self.index.insert(name, self.series.len());
                        self.series.push((text.to_owned(), Vec::with_capacity(cap)));
                        self.series.len() - 1
                    }
                },
            };
            self.last_slot = Some((name, slot));
            self.series[slot].1.push(Point {
                step,
                time,
                ts,
                value,
            });
        }
        Ok(())
    }
}

/// Decodes a metrics batch (msgpack, or JSON with a JSON content type).
fn decode(headers: &HeaderMap, body: &[u8], now: i64) -> Result<(String, Grouped), ApiError> {
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        let batch: Batch = decode_body(headers, body)?;
        let mut g = Grouper::new(batch.metrics.len(), now);
        for (i, item) in batch.metrics.iter().enumerate() {
            let values: Vec<(&[u8], f64)> = item
                .values
                .0
                .iter()
                .map(|(k, v)| (k.as_bytes(), *v))
                .collect();
            g.item(
                i,
                item.time,
                item.timestamp.map(str::as_bytes),
                item.step,
                &values,
            )?;
        }
        return Ok((batch.run, g.series));
    }
    let mut g = Grouper::new(0, now);
    let run = super::wire::metrics_batch(body, |i, it, values| {
        g.item(i, it.time, it.timestamp, it.step, values)
    })?;
    Ok((run, g.series))
}

/// `POST /api/metrics` msgpack `{"run", "metrics": [{time, timestamp, step, values}]}`.
pub async fn ingest(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Bytes(body): Bytes,
) -> ApiResult {
    let idem = idem(&caller, &headers)?;
    let now = now_us();
    let max_names = st.cfg.max_metric_names;
    let (run, series) = tokio::task::spawn_blocking(move || decode(&headers, &body, now))
        .await
        .map_err(|e| ApiError::bad_request(format!("could not decode metrics: {e}")))??;
    write_once_run(&st, &caller, run.clone(), idem, move |tx| {
        metrics::ingest(tx, &run, &series, now, max_names)?;
        Ok(json!({}))
    })
    .await
}

fn push_x(out: &mut String, axis: Axis, p: &Point) {
    match axis {
        Axis::Step => out.push_str(&p.step.to_string()),
        Axis::Time => push_f64(out, p.time),
        Axis::Timestamp => push_json_str(out, &fmt_ts(p.ts)),
    }
}

/// `GET /api/metrics?runs=[..]&metrics=[..]&xaxis=step|time|timestamp&aggregate&max_points`.
///
/// Without `max_points`, every point (what the Simvue client asks for): the
/// answer is streamed as it is read, chunk by chunk, so a long series never
/// sits in server memory. With `max_points`, downsampled to at most that
/// many points per series, and never more than the server's
/// `max_read_points` (a larger request is lowered to it and the response
/// says so in `X-Simtrack-Max-Points`). An aggregated read is always
/// bounded by `max_read_points` per series.
pub async fn query(
    State(st): State<AppState>,
    caller: Caller,
    q: Params,
) -> Result<Response, ApiError> {
    let runs = q.list("runs")?;
    let names = q.list("metrics")?;
    let axis_s = q.get("xaxis").unwrap_or("step");
    let axis = Axis::parse(axis_s)
        .ok_or_else(|| ApiError::unprocessable("'xaxis' must be step, time or timestamp"))?;
    let aggregate = q.bool("aggregate");
    if aggregate && axis == Axis::Timestamp {
        return Err(ApiError::unprocessable(
            "cannot aggregate with xaxis=timestamp",
        ));
    }
    let limit = st.cfg.max_read_points;
    let asked = q.usize("max_points")?.filter(|m| *m > 0);
    let lowered = asked.filter(|m| *m > limit).map(|_| limit);
    let max_points = asked.map(|m| m.min(limit));
    let header = lowered.map(|l| ("x-simtrack-max-points", l.to_string()));
    let axis_key = axis_s.to_owned();
    if !aggregate {
        return stream_read(&st, &caller, header, move |c, sink| {
            sink.buf().push('{');
            let mut first_run = true;
            for run in &runs {
                let mut series = Vec::new();
                for name in &names {
                    if let Some(id) = c.series_id(run, name)? {
                        series.push((name, id));
                    }
                }
                if series.is_empty() {
                    continue;
                }
                if !first_run {
                    sink.buf().push(',');
                }
                first_run = false;
                push_json_str(sink.buf(), run);
                sink.buf().push_str(":{");
                for (i, (name, id)) in series.into_iter().enumerate() {
                    if i > 0 {
                        sink.buf().push(',');
                    }
                    push_json_str(sink.buf(), name);
                    sink.buf().push_str(":[");
                    let mut first = true;
                    let mut write = |p: &Point| -> crate::domain::Result<bool> {
                        let out = sink.buf();
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        out.push_str("{\"");
                        out.push_str(&axis_key);
                        out.push_str("\":");
                        push_x(out, axis, p);
                        out.push_str(",\"value\":");
                        push_f64(out, p.value);
                        out.push('}');
                        sink.flush_if_full()?;
                        Ok(true)
                    };
                    match max_points {
                        Some(m) => {
                            for p in metrics::read(c, id, axis, Some(m))? {
                                write(&p)?;
                            }
                        }
                        None => metrics::for_each_point(c, id, axis, write)?,
                    }
                    sink.buf().push(']');
                }
                sink.buf().push('}');
            }
            sink.buf().push('}');
            Ok(())
        })
        .await;
    }
    let max_points = Some(max_points.unwrap_or(limit));
    let resp = read(&st, &caller, move |c| {
        let mut out = String::from("{");
        let mut first_metric = true;
        for name in &names {
            let mut acc: BTreeMap<i64, (f64, f64, f64, f64, u64, Point)> = BTreeMap::new();
            for run in &runs {
                let Some(series) = c.series_id(run, name)? else {
                    continue;
                };
                for p in metrics::read(c, series, axis, max_points)? {
                    let x = axis.x(&p);
                    let key = if axis == Axis::Step {
                        p.step
                    } else {
                        (x * 1e6) as i64
                    };
                    let e =
                        acc.entry(key)
                            .or_insert((x, f64::INFINITY, f64::NEG_INFINITY, 0.0, 0, p));
                    e.1 = e.1.min(p.value);
                    e.2 = e.2.max(p.value);
                    e.3 += p.value;
                    e.4 += 1;
                }
            }
            if acc.is_empty() {
                continue;
            }
            if !first_metric {
                out.push(',');
            }
            first_metric = false;
            push_json_str(&mut out, name);
            out.push_str(":[");
            for (i, (_, (_, min, max, sum, n, p))) in acc.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"");
                out.push_str(&axis_key);
                out.push_str("\":");
                push_x(&mut out, axis, p);
                out.push_str(",\"min\":");
                push_f64(&mut out, *min);
                out.push_str(",\"max\":");
                push_f64(&mut out, *max);
                out.push_str(",\"average\":");
                push_f64(&mut out, sum / *n as f64);
                out.push('}');
            }
            out.push(']');
        }
        out.push('}');
        Ok(Reply {
            status: 200,
            body: out,
        })
    })
    .await?;
    let mut r = resp.into_response();
    if let Some((k, v)) = header
        && let Ok(v) = axum::http::HeaderValue::from_str(&v)
    {
        r.headers_mut().insert(k, v);
    }
    Ok(r)
}

/// `GET /api/metrics/names?runs=[..]&start&count` → a JSON array of the
/// names (sorted), paged when `start`/`count` are given (each run has at
/// most `max_metric_names`).
pub async fn names(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let runs = q.list("runs")?;
    let start = q.usize("start")?.unwrap_or(0);
    let count = q.usize("count")?.filter(|c| *c > 0).unwrap_or(usize::MAX);
    read(&st, &caller, move |tx| {
        let mut names = std::collections::BTreeSet::new();
        for r in &runs {
            names.extend(tx.series_of(r)?.into_iter().map(|s| s.name));
        }
        let page: Vec<String> = names.into_iter().skip(start).take(count).collect();
        Ok(Reply::ok(json!(page)))
    })
    .await
}
