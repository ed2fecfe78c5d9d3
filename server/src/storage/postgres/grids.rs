//! Grids and array metrics in PostgreSQL (same tables as the SQLite store;
//! `user` is `owner` here).

use tokio_postgres::Row;

use super::tx::{Tx, at};
use crate::storage::{GridMetricRow, GridRow, GridValueRow, Result};

fn grid_row(r: &Row) -> Result<GridRow> {
    Ok(GridRow {
        id: at(r, 0)?,
        name: at(r, 1)?,
        doc: at(r, 2)?,
        created: at(r, 3)?,
        user: at(r, 4)?,
    })
}

pub(super) fn get(t: &Tx<'_>, id: &str) -> Result<Option<GridRow>> {
    t.row(
        "SELECT id, name, doc, created, owner FROM grids WHERE id = $1",
        &[&id],
    )?
    .as_ref()
    .map(grid_row)
    .transpose()
}

pub(super) fn list(t: &Tx<'_>) -> Result<Vec<GridRow>> {
    t.rows(
        "SELECT id, name, doc, created, owner FROM grids ORDER BY created, id",
        &[],
    )?
    .iter()
    .map(grid_row)
    .collect()
}

pub(super) fn metrics(t: &Tx<'_>, run: &str) -> Result<Vec<GridMetricRow>> {
    t.rows(
        "SELECT g.metric, g.grid_id, count(v.step), min(v.step), max(v.step), min(v.time),
                max(v.time), min(v.ts), max(v.ts), min(v.vmin), max(v.vmax)
         FROM run_grids g LEFT JOIN grid_values v ON v.run_id = g.run_id AND v.metric = g.metric
         WHERE g.run_id = $1 GROUP BY g.metric, g.grid_id ORDER BY g.metric",
        &[&run],
    )?
    .iter()
    .map(|r| {
        Ok(GridMetricRow {
            metric: at(r, 0)?,
            grid: at(r, 1)?,
            steps: at(r, 2)?,
            step_min: at(r, 3)?,
            step_max: at(r, 4)?,
            time_min: at(r, 5)?,
            time_max: at(r, 6)?,
            ts_min: at(r, 7)?,
            ts_max: at(r, 8)?,
            vmin: at(r, 9)?,
            vmax: at(r, 10)?,
        })
    })
    .collect()
}

fn value_row(r: &Row, data: bool) -> Result<GridValueRow> {
    Ok(GridValueRow {
        step: at(r, 0)?,
        time: at(r, 1)?,
        ts: at(r, 2)?,
        count: at(r, 3)?,
        vmin: at(r, 4)?,
        vmax: at(r, 5)?,
        data: if data { at(r, 6)? } else { Vec::new() },
    })
}

pub(super) fn value(
    t: &Tx<'_>,
    run: &str,
    metric: &str,
    step: i64,
) -> Result<Option<GridValueRow>> {
    t.row(
        "SELECT step, time, ts, count, vmin, vmax, data FROM grid_values
         WHERE run_id = $1 AND metric = $2 AND step = $3",
        &[&run, &metric, &step],
    )?
    .as_ref()
    .map(|r| value_row(r, true))
    .transpose()
}

pub(super) fn steps(t: &Tx<'_>, run: &str, metric: &str) -> Result<Vec<GridValueRow>> {
    t.rows(
        "SELECT step, time, ts, count, vmin, vmax FROM grid_values
         WHERE run_id = $1 AND metric = $2 ORDER BY step",
        &[&run, &metric],
    )?
    .iter()
    .map(|r| value_row(r, false))
    .collect()
}

pub(super) fn insert(t: &Tx<'_>, g: &GridRow) -> Result<()> {
    t.exec(
        "INSERT INTO grids (id, name, doc, created, owner) VALUES ($1,$2,$3,$4,$5)",
        &[&g.id, &g.name, &g.doc, &g.created, &g.user],
    )?;
    Ok(())
}

pub(super) fn delete(t: &Tx<'_>, id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM grid_values v USING run_grids g WHERE g.grid_id = $1
           AND g.run_id = v.run_id AND g.metric = v.metric",
        "DELETE FROM run_grids WHERE grid_id = $1",
        "DELETE FROM grids WHERE id = $1",
    ] {
        t.exec(sql, &[&id])?;
    }
    Ok(())
}

pub(super) fn attach(t: &Tx<'_>, run: &str, metric: &str, grid: &str) -> Result<()> {
    t.exec(
        "INSERT INTO run_grids (run_id, metric, grid_id) VALUES ($1, $2, $3)
         ON CONFLICT (run_id, metric) DO UPDATE SET grid_id = excluded.grid_id",
        &[&run, &metric, &grid],
    )?;
    Ok(())
}

pub(super) fn value_put(t: &Tx<'_>, run: &str, metric: &str, v: &GridValueRow) -> Result<()> {
    t.exec(
        "INSERT INTO grid_values (run_id, metric, step, time, ts, count, vmin, vmax, data)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)
         ON CONFLICT (run_id, metric, step) DO UPDATE SET time = excluded.time,
           ts = excluded.ts, count = excluded.count, vmin = excluded.vmin,
           vmax = excluded.vmax, data = excluded.data",
        &[
            &run, &metric, &v.step, &v.time, &v.ts, &v.count, &v.vmin, &v.vmax, &v.data,
        ],
    )?;
    Ok(())
}
