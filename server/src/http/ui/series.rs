//! `GET /api/ui/metrics/series`: downsampled series for the charts, as
//! columns of numbers (what uPlot draws) instead of an object per point.

use std::fmt::Write;

use axum::extract::State;

use crate::domain::metrics::{self, Axis, Point};
use crate::http::{ApiError, ApiResult, AppState, Caller, Params, Reply, read};
use crate::util::{push_f64, push_json_str};

/// Points per series when `max_points` is not given.
const DEFAULT_POINTS: usize = 1000;

/// `GET /api/ui/metrics/series?runs=[..]&metrics=[..]&xaxis&max_points` →
/// `{"METRIC": {"RUN": {"x": [..], "y": [..]}}}`: each series of the
/// asked runs and metrics (those that exist), ordered by `xaxis` and
/// downsampled to at most `max_points` (default 1000, at most the server's
/// `--max-read-points`) keeping each bucket's minimum, maximum and first
/// NaN ([`metrics::read`]). `x` is the step, the seconds since the run
/// started, or (`timestamp`) the seconds since the epoch; a NaN or
/// infinite `y` is the string `"NaN"`, `"Infinity"` or `"-Infinity"`.
pub async fn series(State(st): State<AppState>, caller: Caller, q: Params) -> ApiResult {
    let runs = q.list("runs")?;
    let names = q.list("metrics")?;
    let axis = Axis::parse(q.get("xaxis").unwrap_or("step"))
        .ok_or_else(|| ApiError::unprocessable("'xaxis' must be step, time or timestamp"))?;
    let max_points = q
        .usize("max_points")?
        .filter(|m| *m > 0)
        .unwrap_or(DEFAULT_POINTS)
        .min(st.cfg.max_read_points);
    read(&st, &caller, move |tx| {
        let mut out = String::from("{");
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(&mut out, name);
            out.push_str(":{");
            let mut first = true;
            for run in &runs {
                let Some(id) = tx.series_id(run, name)? else {
                    continue;
                };
                if !first {
                    out.push(',');
                }
                first = false;
                push_json_str(&mut out, run);
                columns(
                    &mut out,
                    axis,
                    &metrics::read(tx, id, axis, Some(max_points))?,
                );
            }
            out.push('}');
        }
        out.push('}');
        Ok(Reply {
            status: 200,
            body: out,
        })
    })
    .await
}

/// `:{"x":[..],"y":[..]}` for `points`.
fn columns(out: &mut String, axis: Axis, points: &[Point]) {
    out.push_str(":{\"x\":[");
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match axis {
            Axis::Step => {
                let _ = write!(out, "{}", p.step);
            }
            Axis::Time => push_f64(out, p.time),
            Axis::Timestamp => push_f64(out, p.ts as f64 / 1e6),
        }
    }
    out.push_str("],\"y\":[");
    for (i, p) in points.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if p.value.is_finite() {
            push_f64(out, p.value);
        } else {
            out.push('"');
            push_f64(out, p.value);
            out.push('"');
        }
    }
    out.push_str("]}");
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::http::ui::test_support::{body, create_run, params, setup};

    #[tokio::test]
    async fn columns_of_downsampled_series_keep_spikes_and_non_finite_values() {
        let (_d, st, me) = setup();
        let (a, b) = (
            create_run(&st, &me, "a").await,
            create_run(&st, &me, "b").await,
        );
        let pts: Vec<Point> = (0..100_000)
            .map(|i| Point {
                step: i,
                time: i as f64 * 0.5,
                ts: 1_700_000_000_000_000 + i * 250_000,
                value: match i {
                    61_234 => 1e9,
                    80_017 => f64::NAN,
                    90_000 => f64::INFINITY,
                    _ => (i % 100) as f64 * 0.25,
                },
            })
            .collect();
        crate::domain::write(&*st.backend.state, |tx| {
            for part in pts.chunks(1500) {
                metrics::append(tx, &a, "m", part)?;
            }
            metrics::append(tx, &b, "m", &pts[..3])
        })
        .unwrap();
        let ask = |kv: &[(&str, &str)]| {
            let runs = json!([a, b, "no-such-run"]).to_string();
            let mut all: Vec<(&str, &str)> = vec![("runs", &runs), ("metrics", r#"["m","none"]"#)];
            all.extend_from_slice(kv);
            series(State(st.clone()), me.clone(), params(&all))
        };
        let r = body(ask(&[("max_points", "1000")]).await);
        // Unknown metrics answer empty; runs without the metric are left out.
        assert_eq!(r["none"], json!({}));
        assert_eq!(r["m"].as_object().unwrap().len(), 2);
        assert_eq!(r["m"][&b], json!({"x": [0, 1, 2], "y": [0.0, 0.25, 0.5]}));
        let x: Vec<f64> = serde_json::from_value(r["m"][&a]["x"].clone()).unwrap();
        let y = r["m"][&a]["y"].as_array().unwrap();
        assert!(
            x.len() == y.len() && x.len() <= 1000 && x.len() > 500,
            "{}",
            x.len()
        );
        assert!(x.windows(2).all(|w| w[0] <= w[1]));
        let at = |v: Value| x[y.iter().position(|w| *w == v).unwrap()];
        assert_eq!(at(json!(1e9)), 61_234.0);
        assert_eq!(at(json!("NaN")), 80_017.0);
        assert_eq!(at(json!("Infinity")), 90_000.0);
        assert!(y.contains(&json!(0.0)) && y.contains(&json!(24.75)));
        // Time in seconds since the start; timestamps in seconds since the epoch.
        let r = body(ask(&[("xaxis", "time")]).await);
        assert_eq!(r["m"][&b]["x"], json!([0.0, 0.5, 1.0]));
        let r = body(ask(&[("xaxis", "timestamp")]).await);
        assert_eq!(
            r["m"][&b]["x"],
            json!([1_700_000_000.0, 1_700_000_000.25, 1_700_000_000.5])
        );
        // Bad input is refused, never a 500.
        for bad in [("xaxis", "steps"), ("max_points", "-1")] {
            let e = ask(&[bad]).await.unwrap_err();
            assert!(e.status.is_client_error(), "{bad:?}: {}", e.status);
        }
    }
}
