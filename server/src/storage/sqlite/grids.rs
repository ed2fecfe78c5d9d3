//! Grids and array metrics in SQLite: `grids`, `run_grids` (which grid a
//! run's metric is on) and `grid_values` (one row per run, metric and step;
//! the array is an opaque, compressed blob).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::db;
use crate::storage::{GridMetricRow, GridRow, GridValueRow, Result};

fn grid_row(r: &Row) -> rusqlite::Result<GridRow> {
    Ok(GridRow {
        id: r.get(0)?,
        name: r.get(1)?,
        doc: r.get(2)?,
        created: r.get(3)?,
        user: r.get(4)?,
    })
}

pub(super) fn get(c: &Connection, id: &str) -> Result<Option<GridRow>> {
    c.prepare_cached("SELECT id, name, doc, created, user FROM grids WHERE id = ?1")
        .and_then(|mut s| s.query_row(params![id], grid_row).optional())
        .map_err(db)
}

pub(super) fn list(c: &Connection) -> Result<Vec<GridRow>> {
    c.prepare_cached("SELECT id, name, doc, created, user FROM grids ORDER BY created, id")
        .and_then(|mut s| s.query_map([], grid_row)?.collect())
        .map_err(db)
}

pub(super) fn metrics(c: &Connection, run: &str) -> Result<Vec<GridMetricRow>> {
    c.prepare_cached(
        "SELECT g.metric, g.grid_id, count(v.step), min(v.step), max(v.step), min(v.time),
                max(v.time), min(v.ts), max(v.ts), min(v.vmin), max(v.vmax)
         FROM run_grids g LEFT JOIN grid_values v ON v.run_id = g.run_id AND v.metric = g.metric
         WHERE g.run_id = ?1 GROUP BY g.metric, g.grid_id ORDER BY g.metric",
    )
    .and_then(|mut s| {
        s.query_map(params![run], |r| {
            Ok(GridMetricRow {
                metric: r.get(0)?,
                grid: r.get(1)?,
                steps: r.get(2)?,
                step_min: r.get(3)?,
                step_max: r.get(4)?,
                time_min: r.get(5)?,
                time_max: r.get(6)?,
                ts_min: r.get(7)?,
                ts_max: r.get(8)?,
                vmin: r.get(9)?,
                vmax: r.get(10)?,
            })
        })?
        .collect()
    })
    .map_err(db)
}

fn value_row(r: &Row, data: bool) -> rusqlite::Result<GridValueRow> {
    Ok(GridValueRow {
        step: r.get(0)?,
        time: r.get(1)?,
        ts: r.get(2)?,
        count: r.get(3)?,
        vmin: r.get(4)?,
        vmax: r.get(5)?,
        data: if data { r.get(6)? } else { Vec::new() },
    })
}

pub(super) fn value(
    c: &Connection,
    run: &str,
    metric: &str,
    step: i64,
) -> Result<Option<GridValueRow>> {
    c.prepare_cached(
        "SELECT step, time, ts, count, vmin, vmax, data FROM grid_values
         WHERE run_id = ?1 AND metric = ?2 AND step = ?3",
    )
    .and_then(|mut s| {
        s.query_row(params![run, metric, step], |r| value_row(r, true))
            .optional()
    })
    .map_err(db)
}

pub(super) fn steps(c: &Connection, run: &str, metric: &str) -> Result<Vec<GridValueRow>> {
    c.prepare_cached(
        "SELECT step, time, ts, count, vmin, vmax FROM grid_values
         WHERE run_id = ?1 AND metric = ?2 ORDER BY step",
    )
    .and_then(|mut s| {
        s.query_map(params![run, metric], |r| value_row(r, false))?
            .collect()
    })
    .map_err(db)
}

pub(super) fn insert(c: &Connection, g: &GridRow) -> Result<()> {
    c.prepare_cached("INSERT INTO grids (id, name, doc, created, user) VALUES (?1,?2,?3,?4,?5)")
        .and_then(|mut s| s.execute(params![g.id, g.name, g.doc, g.created, g.user]))
        .map_err(db)?;
    Ok(())
}

pub(super) fn delete(c: &Connection, id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM grid_values WHERE EXISTS (SELECT 1 FROM run_grids g WHERE g.grid_id = ?1
           AND g.run_id = grid_values.run_id AND g.metric = grid_values.metric)",
        "DELETE FROM run_grids WHERE grid_id = ?1",
        "DELETE FROM grids WHERE id = ?1",
    ] {
        c.execute(sql, params![id]).map_err(db)?;
    }
    Ok(())
}

pub(super) fn attach(c: &Connection, run: &str, metric: &str, grid: &str) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO run_grids (run_id, metric, grid_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (run_id, metric) DO UPDATE SET grid_id = excluded.grid_id",
    )
    .and_then(|mut s| s.execute(params![run, metric, grid]))
    .map_err(db)?;
    Ok(())
}

pub(super) fn value_put(c: &Connection, run: &str, metric: &str, v: &GridValueRow) -> Result<()> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO grid_values (run_id, metric, step, time, ts, count, vmin, vmax, data)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            run, metric, v.step, v.time, v.ts, v.count, v.vmin, v.vmax, v.data
        ])
    })
    .map_err(db)?;
    Ok(())
}
