//! The typed operations of a SQLite transaction: every SQL statement of
//! the server is here.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

use super::db;
use crate::storage::run_query::{Dialect, Sql as RunSql, SqlArg};
use crate::storage::{Acknowledgement, ChannelRow, EventPred, OutboxRow, RunPage, RunPageAnswer};
use crate::storage::{
    AlertPatch, AlertRow, ArtifactRow, Attached, AuditRow, Axis, Cell, ChunkInfo, ChunkStats,
    EventRow, FolderPatch, FolderRow, GridMetricRow, GridRow, GridValueRow, JsonColumn, NewChunk,
    ReadTx, Recorded, Result, RunPatch, RunProjection, RunRow, RunScanRow, SYSTEM_EVENT_PREFIX,
    SeriesRow, TagRow, TenantRow, TokenRow, UserRow, WriteTx,
};
use crate::storage::{kept_count, kept_count_answers};

mod notify;

fn tenant_row(r: &Row) -> rusqlite::Result<TenantRow> {
    Ok(TenantRow {
        name: r.get(0)?,
        doc: r.get(1)?,
        created: r.get(2)?,
    })
}

fn tag_row(r: &Row) -> rusqlite::Result<TagRow> {
    Ok(TagRow {
        id: r.get("id")?,
        name: r.get("name")?,
        colour: r.get("colour")?,
        description: r.get("description")?,
        created: r.get("created")?,
        user: r.get("user")?,
    })
}

/// A transaction (read or write) on one connection.
pub(super) struct Tx<'a>(pub &'a Connection);

fn axis_columns(axis: Axis) -> (&'static str, &'static str) {
    match axis {
        Axis::Step => ("step_min", "step_max"),
        Axis::Time => ("time_min", "time_max"),
        Axis::Timestamp => ("ts_min", "ts_max"),
    }
}

fn token_row(r: &Row) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        name: r.get(1)?,
        hash: r.get(2)?,
        exp: r.get(3)?,
        created: r.get(4)?,
        label: r.get(5)?,
        read_only: r.get::<_, i64>(6)? != 0,
        last_used: r.get(7)?,
        csrf: r.get(8)?,
    })
}

fn user_row(r: &Row) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        name: r.get(0)?,
        email: r.get(1)?,
        group: r.get(2)?,
        admin: r.get::<_, i64>(3)? != 0,
        disabled: r.get::<_, i64>(4)? != 0,
        password: r.get(5)?,
        created: r.get(6)?,
    })
}

const USER_COLUMNS: &str = "name, email, grp, admin, disabled, password, created";

fn run_row(r: &Row) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get("id")?,
        name: r.get("name")?,
        folder: r.get("folder")?,
        status: r.get("status")?,
        description: r.get("description")?,
        tags: r.get("tags")?,
        metadata: r.get("metadata")?,
        system: r.get("system")?,
        created: r.get("created")?,
        started: r.get("started")?,
        endtime: r.get("endtime")?,
        modified: r.get("modified")?,
        ttl: r.get("ttl")?,
        heartbeat_timeout: r.get("heartbeat_timeout")?,
        notifications: r.get("notifications")?,
        visibility: r.get("visibility")?,
        user: r.get("user")?,
        last_seen: r.get("last_seen")?,
        abort_requested: r.get::<_, i64>("abort_requested")? != 0,
        abort_reason: r.get("abort_reason")?,
        starred: r.get::<_, i64>("starred")? != 0,
    })
}

fn folder_row(r: &Row) -> rusqlite::Result<FolderRow> {
    Ok(FolderRow {
        id: r.get("id")?,
        path: r.get("path")?,
        description: r.get("description")?,
        tags: r.get("tags")?,
        metadata: r.get("metadata")?,
        created: r.get("created")?,
        modified: r.get("modified")?,
        starred: r.get::<_, i64>("starred")? != 0,
        owner: r.get("owner")?,
    })
}

fn alert_row(r: &Row) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get("id")?,
        name: r.get("name")?,
        source: r.get("source")?,
        description: r.get("description")?,
        notification: r.get("notification")?,
        enabled: r.get::<_, i64>("enabled")? != 0,
        abort: r.get::<_, i64>("abort")? != 0,
        alert: r.get("alert")?,
        created: r.get("created")?,
        user: r.get("user")?,
        options: r.get("options")?,
    })
}

fn artifact_row(r: &Row) -> rusqlite::Result<ArtifactRow> {
    Ok(ArtifactRow {
        id: r.get("id")?,
        name: r.get("name")?,
        original_path: r.get("original_path")?,
        size: r.get::<_, i64>("size")? as u64,
        mime_type: r.get("mime_type")?,
        checksum: r.get("checksum")?,
        metadata: r.get("metadata")?,
        created: r.get("created")?,
        uploaded: r.get::<_, i64>("uploaded")? != 0,
        user: r.get("user")?,
    })
}

/// `UPDATE table SET col = ?, ... WHERE id = ?` for the columns given.
fn update(c: &Connection, table: &str, id: &str, sets: Vec<(&str, Sql)>) -> Result<()> {
    if sets.is_empty() {
        return Ok(());
    }
    let cols: Vec<String> = sets
        .iter()
        .enumerate()
        .map(|(i, (col, _))| format!("{col} = ?{}", i + 2))
        .collect();
    let sql = format!("UPDATE {table} SET {} WHERE id = ?1", cols.join(", "));
    let mut args: Vec<Sql> = vec![Sql::Text(id.to_owned())];
    args.extend(sets.into_iter().map(|(_, v)| v));
    c.prepare_cached(&sql)
        .and_then(|mut s| s.execute(rusqlite::params_from_iter(args)))
        .map_err(db)?;
    Ok(())
}

/// A patch's cells as SQLite values (booleans are 0/1).
fn sql_cells(cells: Vec<(&'static str, Cell)>) -> Vec<(&'static str, Sql)> {
    cells
        .into_iter()
        .map(|(col, v)| {
            let v = match v {
                Cell::Text(t) => t.map_or(Sql::Null, Sql::Text),
                Cell::Int(i) => i.map_or(Sql::Null, Sql::Integer),
                Cell::Real(r) => r.map_or(Sql::Null, Sql::Real),
                Cell::Bool(b) => Sql::Integer(i64::from(b)),
            };
            (col, v)
        })
        .collect()
}

/// SQLite's JSON path for a list of object keys: `$."k1"."k2"`. SQLite ends
/// a quoted label at the first `"` whatever precedes it, and decodes JSON
/// escapes inside it, so every key is written as a JSON string body with
/// `"` as `\u0022` (never `\"`), `\` as `\\` and control characters as
/// `\uXXXX`: any stored key, a trailing backslash or a quote included, is
/// addressed exactly.
fn sqlite_json_path(keys: &[String]) -> String {
    let mut out = String::from("$");
    for key in keys {
        out.push_str(".\"");
        for c in key.chars() {
            match c {
                '"' => out.push_str("\\u0022"),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

/// [`SqlArg`]s as SQLite binds them.
fn sqlite_args(args: Vec<SqlArg>) -> Vec<rusqlite::types::Value> {
    args.into_iter()
        .map(|a| match a {
            SqlArg::Text(t) => rusqlite::types::Value::Text(t),
            SqlArg::Int(i) => rusqlite::types::Value::Integer(i),
            SqlArg::Keys(k) => rusqlite::types::Value::Text(sqlite_json_path(&k)),
        })
        .collect()
}

impl ReadTx for Tx<'_> {
    fn run_status(&self, id: &str) -> Result<Option<String>> {
        self.0
            .prepare_cached("SELECT status FROM runs WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![id], |r| r.get(0)).optional())
            .map_err(db)
    }

    fn run_get(&self, id: &str) -> Result<Option<RunRow>> {
        self.0
            .prepare_cached("SELECT * FROM runs WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![id], run_row).optional())
            .map_err(db)
    }

    fn run_access(&self, id: &str) -> Result<Option<(String, String)>> {
        self.0
            .prepare_cached("SELECT user, visibility FROM runs WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(db)
    }

    fn run_scan(&self, p: &RunProjection) -> Result<Vec<RunScanRow>> {
        // JSON values are extracted by SQLite (`->`), so a large metadata
        // document is never parsed whole for a scan.
        let mut sql = String::from(
            "SELECT id, name, folder, status, description, created, started, endtime, modified, user,
             starred, CASE WHEN ?1 THEN tags END, visibility",
        );
        let mut args: Vec<String> = Vec::new();
        for path in &p.json_paths {
            let column = match path.column {
                JsonColumn::Metadata => "metadata",
                JsonColumn::System => "system",
            };
            args.push(sqlite_json_path(&path.keys));
            sql.push_str(&format!(", {column} -> ?{}", args.len() + 1));
        }
        sql.push_str(" FROM runs");
        let mut filter = RunSql::after(Dialect::Sqlite, args.len() + 1);
        if let Some(f) = &p.filter {
            sql.push_str(" WHERE ");
            sql.push_str(&filter.pred(f));
        }
        sql.push_str(" ORDER BY rowid");
        let extra = sqlite_args(filter.args);
        let mut s = self.0.prepare(&sql).map_err(db)?;
        let mut bind: Vec<&dyn ToSql> = vec![&p.tags];
        bind.extend(args.iter().map(|a| a as &dyn ToSql));
        bind.extend(extra.iter().map(|a| a as &dyn ToSql));
        let n = args.len();
        s.query_map(bind.as_slice(), |r| {
            Ok(RunScanRow {
                id: r.get(0)?,
                name: r.get(1)?,
                folder: r.get(2)?,
                status: r.get(3)?,
                description: r.get(4)?,
                created: r.get(5)?,
                started: r.get(6)?,
                endtime: r.get(7)?,
                modified: r.get(8)?,
                user: r.get(9)?,
                starred: r.get::<_, i64>(10)? != 0,
                tags: r.get(11)?,
                visibility: r.get(12)?,
                values: (0..n)
                    .map(|i| r.get(13 + i))
                    .collect::<rusqlite::Result<_>>()?,
            })
        })
        .and_then(|r| r.collect())
        .map_err(db)
    }

    fn run_page(&self, q: &RunPage) -> Result<RunPageAnswer> {
        let [count, page, composite] = RunSql::page(Dialect::Sqlite, q);
        let one = |(sql, args): (String, Vec<SqlArg>)| -> Result<i64> {
            let args = sqlite_args(args);
            self.0
                .prepare(&sql)
                .and_then(|mut s| {
                    s.query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))
                })
                .map_err(db)
        };
        let total = one(count)?;
        let (sql, args) = page;
        let args = sqlite_args(args);
        let rows: Vec<(String, i64)> = self
            .0
            .prepare(&sql)
            .and_then(|mut s| {
                s.query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            })
            .map_err(db)?;
        if rows.iter().any(|(_, c)| *c != 0) && one(composite)? > 1 {
            return Ok(RunPageAnswer::Unordered);
        }
        Ok(RunPageAnswer::Page {
            ids: rows.into_iter().map(|(id, _)| id).collect(),
            total: total.max(0) as u64,
        })
    }

    fn runs_in_folder(&self, path: &str) -> Result<Vec<String>> {
        self.0
            .prepare_cached("SELECT id FROM runs WHERE folder = ?1")
            .and_then(|mut s| s.query_map(params![path], |r| r.get(0))?.collect())
            .map_err(db)
    }

    fn runs_silent(&self, since: i64, now: i64) -> Result<Vec<String>> {
        self.0
            .prepare_cached(
                "SELECT id FROM runs WHERE status = 'running' AND heartbeat_timeout IS NOT NULL
                 AND max(last_seen, ?1) + CAST(heartbeat_timeout * 1000000 AS INTEGER) < ?2",
            )
            .and_then(|mut s| s.query_map(params![since, now], |r| r.get(0))?.collect())
            .map_err(db)
    }

    fn folder_get(&self, id: &str) -> Result<Option<FolderRow>> {
        self.0
            .prepare_cached("SELECT * FROM folders WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![id], folder_row).optional())
            .map_err(db)
    }

    fn folder_views(&self, user: &str) -> Result<Vec<(String, String)>> {
        self.0
            .prepare_cached("SELECT folder_id, doc FROM folder_views WHERE user = ?1")
            .and_then(|mut s| {
                s.query_map(params![user], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(db)
    }

    fn folder_by_path(&self, path: &str) -> Result<Option<String>> {
        self.0
            .prepare_cached("SELECT id FROM folders WHERE path = ?1")
            .and_then(|mut s| s.query_row(params![path], |r| r.get(0)).optional())
            .map_err(db)
    }

    fn folder_list(&self) -> Result<Vec<FolderRow>> {
        self.0
            .prepare_cached("SELECT * FROM folders ORDER BY created, path")
            .and_then(|mut s| s.query_map([], folder_row)?.collect())
            .map_err(db)
    }

    fn folders_under(&self, path: &str) -> Result<Vec<(String, String)>> {
        let prefix = if path == "/" {
            "/".to_owned()
        } else {
            format!("{path}/")
        };
        self.0
            .prepare_cached(
                "SELECT id, path FROM folders WHERE path = ?1 OR substr(path, 1, length(?2)) = ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![path, prefix], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(db)
    }

    fn alert_get(&self, id: &str) -> Result<Option<AlertRow>> {
        self.0
            .prepare_cached("SELECT * FROM alerts WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![id], alert_row).optional())
            .map_err(db)
    }

    fn alert_list(&self) -> Result<Vec<AlertRow>> {
        self.0
            .prepare_cached("SELECT * FROM alerts ORDER BY created")
            .and_then(|mut s| s.query_map([], alert_row)?.collect())
            .map_err(db)
    }

    fn alert_by_name(&self, name: &str) -> Result<Option<String>> {
        self.0
            .prepare_cached("SELECT id FROM alerts WHERE name = ?1 ORDER BY created LIMIT 1")
            .and_then(|mut s| s.query_row(params![name], |r| r.get(0)).optional())
            .map_err(db)
    }

    fn run_alert_status(&self, run: &str, alert: &str) -> Result<Option<String>> {
        self.0
            .prepare_cached("SELECT status FROM run_alerts WHERE run_id = ?1 AND alert_id = ?2")
            .and_then(|mut s| s.query_row(params![run, alert], |r| r.get(0)).optional())
            .map_err(db)
    }

    fn attached(&self, run: Option<&str>) -> Result<Vec<Attached>> {
        self.0
            .prepare_cached(
                "SELECT ra.run_id AS run_id, ra.status AS run_alert_status,
                 k.by_user AS ack_by, k.at AS ack_at, a.* FROM run_alerts ra
                 JOIN alerts a ON a.id = ra.alert_id
                 LEFT JOIN alert_acks k ON k.run_id = ra.run_id AND k.alert_id = ra.alert_id
                 WHERE ?1 IS NULL OR ra.run_id = ?1 ORDER BY a.created",
            )
            .and_then(|mut s| {
                s.query_map(params![run], |r| {
                    Ok(Attached {
                        run_id: r.get("run_id")?,
                        status: r.get("run_alert_status")?,
                        acknowledged: match r.get::<_, Option<String>>("ack_by")? {
                            Some(by) => Some(Acknowledgement {
                                by,
                                at: r.get("ack_at")?,
                            }),
                            None => None,
                        },
                        alert: alert_row(r)?,
                    })
                })?
                .collect()
            })
            .map_err(db)
    }

    fn attached_enabled(&self, run: &str, source: &str) -> Result<Vec<AlertRow>> {
        self.0
            .prepare_cached(
                "SELECT a.* FROM run_alerts ra JOIN alerts a ON a.id = ra.alert_id
                 WHERE ra.run_id = ?1 AND a.source = ?2 AND a.enabled = 1",
            )
            .and_then(|mut s| s.query_map(params![run, source], alert_row)?.collect())
            .map_err(db)
    }

    fn events_visit_where(
        &self,
        run: &str,
        exclude_prefix: Option<&str>,
        filter: &EventPred,
        skip: u64,
        visit: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<()> {
        let mut f = RunSql::after(Dialect::Sqlite, 3);
        let sql = format!(
            "SELECT ts, log_level, message FROM events WHERE run_id = ?1 \
             AND (?2 IS NULL OR substr(message, 1, length(?2)) <> ?2) AND {} \
             ORDER BY ts, seq LIMIT -1 OFFSET ?3",
            f.event_pred(filter)
        );
        let extra = sqlite_args(f.args);
        let skip = i64::try_from(skip).unwrap_or(i64::MAX);
        let mut bind: Vec<&dyn ToSql> = vec![&run, &exclude_prefix, &skip];
        bind.extend(extra.iter().map(|a| a as &dyn ToSql));
        let (mut cached, mut once);
        let s: &mut rusqlite::Statement = if *filter == EventPred::True {
            cached = self.0.prepare_cached(&sql).map_err(db)?;
            &mut cached
        } else {
            // A filter's text follows what the client asked: kept out of
            // the statement cache.
            once = self.0.prepare(&sql).map_err(db)?;
            &mut once
        };
        let mut rows = s.query(bind.as_slice()).map_err(db)?;
        while let Some(r) = rows.next().map_err(db)? {
            let row = EventRow {
                ts: r.get(0).map_err(db)?,
                log_level: r.get(1).map_err(db)?,
                message: r.get(2).map_err(db)?,
            };
            if !visit(row) {
                break;
            }
        }
        Ok(())
    }

    fn events_count_where(
        &self,
        run: &str,
        exclude_prefix: Option<&str>,
        filter: &EventPred,
    ) -> Result<u64> {
        // All of a run's events, or all but the server's own: counted as
        // they were stored (`event_counts`, migration 3).
        if let Some(exclude_system) = kept_count_answers(exclude_prefix, filter) {
            let counts = self
                .0
                .prepare_cached("SELECT total, system FROM event_counts WHERE run_id = ?1")
                .and_then(|mut s| {
                    s.query_row(params![run], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(db)?;
            return Ok(kept_count(counts, exclude_system));
        }
        let mut f = RunSql::after(Dialect::Sqlite, 2);
        let sql = format!(
            "SELECT COUNT(*) FROM events WHERE run_id = ?1 \
             AND (?2 IS NULL OR substr(message, 1, length(?2)) <> ?2) AND {}",
            f.event_pred(filter)
        );
        let extra = sqlite_args(f.args);
        let mut bind: Vec<&dyn ToSql> = vec![&run, &exclude_prefix];
        bind.extend(extra.iter().map(|a| a as &dyn ToSql));
        let count = |s: &mut rusqlite::Statement| s.query_row(bind.as_slice(), |r| r.get(0));
        let n: i64 = if *filter == EventPred::True {
            self.0.prepare_cached(&sql).and_then(|mut s| count(&mut s))
        } else {
            self.0.prepare(&sql).and_then(|mut s| count(&mut s))
        }
        .map_err(db)?;
        Ok(n.max(0) as u64)
    }

    fn events_after(
        &self,
        run: &str,
        after_seq: i64,
        visit: &mut dyn FnMut(i64, i64, &str),
    ) -> Result<()> {
        let mut s = self
            .0
            .prepare_cached(
                "SELECT seq, ts, message FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(db)?;
        let mut rows = s.query(params![run, after_seq]).map_err(db)?;
        while let Some(r) = rows.next().map_err(db)? {
            let message = r
                .get_ref(2)
                .map_err(db)?
                .as_str()
                .map_err(|e| db(e.into()))?;
            visit(r.get(0).map_err(db)?, r.get(1).map_err(db)?, message);
        }
        Ok(())
    }

    fn series_id(&self, run: &str, name: &str) -> Result<Option<i64>> {
        self.0
            .prepare_cached("SELECT id FROM metric_series WHERE run_id = ?1 AND name = ?2")
            .and_then(|mut s| s.query_row(params![run, name], |r| r.get(0)).optional())
            .map_err(db)
    }

    fn series_some(
        &self,
        run: &str,
        names: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<SeriesRow>> {
        let row = |r: &Row| {
            Ok(SeriesRow {
                name: r.get(0)?,
                count: r.get(1)?,
                min: r.get(2)?,
                max: r.get(3)?,
                last: r.get(4)?,
                last_step: r.get(5)?,
            })
        };
        match names {
            Some(names) => {
                let mut s = self
                    .0
                    .prepare_cached(
                        "SELECT name, count, vmin, vmax, last, last_step FROM metric_series
                         WHERE run_id = ?1 AND name = ?2",
                    )
                    .map_err(db)?;
                let mut out = Vec::new();
                for n in names {
                    if let Some(r) = s.query_row(params![run, n], row).optional().map_err(db)? {
                        out.push(r);
                    }
                }
                Ok(out)
            }
            None => self
                .0
                .prepare_cached(
                    "SELECT name, count, vmin, vmax, last, last_step FROM metric_series
                     WHERE run_id = ?1 ORDER BY name LIMIT ?2",
                )
                .and_then(|mut s| {
                    s.query_map(params![run, limit.min(i64::MAX as usize) as i64], row)?
                        .collect()
                })
                .map_err(db),
        }
    }

    fn series_named(&self, name: &str) -> Result<Vec<(String, SeriesRow)>> {
        let mut s = self
            .0
            .prepare_cached(
                "SELECT run_id, name, count, vmin, vmax, last, last_step FROM metric_series
                 WHERE name = ?1",
            )
            .map_err(db)?;
        s.query_map(params![name], |r| {
            Ok((
                r.get(0)?,
                SeriesRow {
                    name: r.get(1)?,
                    count: r.get(2)?,
                    min: r.get(3)?,
                    max: r.get(4)?,
                    last: r.get(5)?,
                    last_step: r.get(6)?,
                },
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(db)
    }

    fn series_count(&self, run: &str) -> Result<u64> {
        self.0
            .prepare_cached("SELECT COUNT(*) FROM metric_series WHERE run_id = ?1")
            .and_then(|mut s| s.query_row(params![run], |r| r.get::<_, i64>(0)))
            .map(|n| n.max(0) as u64)
            .map_err(db)
    }

    fn series_points(&self, series: i64) -> Result<i64> {
        self.0
            .prepare_cached("SELECT count FROM metric_series WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![series], |r| r.get(0)).optional())
            .map(|n| n.unwrap_or(0))
            .map_err(db)
    }

    fn series_max_span(&self, series: i64) -> Result<i64> {
        self.0
            .prepare_cached("SELECT max(ts_max - ts_min) FROM metric_chunks WHERE series_id = ?1")
            .and_then(|mut s| s.query_row(params![series], |r| r.get::<_, Option<i64>>(0)))
            .map(|n| n.unwrap_or(0).max(0))
            .map_err(db)
    }

    fn chunks_ts_between(&self, series: i64, lo: i64, hi: i64, max_span: i64) -> Result<Vec<i64>> {
        // A chunk holding a point in [lo, hi) has ts_max >= lo and
        // ts_max - max_span <= ts_min < hi: a range of the
        // (series_id, ts_max) index.
        self.0
            .prepare_cached(
                "SELECT id FROM metric_chunks
                 WHERE series_id = ?1 AND ts_max >= ?2 AND ts_max < ?3 AND ts_min < ?4
                 ORDER BY ts_max",
            )
            .and_then(|mut s| {
                s.query_map(
                    params![series, lo, hi.saturating_add(max_span.max(0)), hi],
                    |r| r.get(0),
                )?
                .collect()
            })
            .map_err(db)
    }

    fn alert_window(&self, run: &str, alert: &str) -> Result<Option<String>> {
        self.0
            .prepare_cached("SELECT state FROM alert_windows WHERE run_id = ?1 AND alert_id = ?2")
            .and_then(|mut s| s.query_row(params![run, alert], |r| r.get(0)).optional())
            .map_err(db)
    }

    fn series_of(&self, run: &str) -> Result<Vec<SeriesRow>> {
        self.0
            .prepare_cached(
                "SELECT name, count, vmin, vmax, last, last_step FROM metric_series
                 WHERE run_id = ?1 ORDER BY name",
            )
            .and_then(|mut s| {
                s.query_map(params![run], |r| {
                    Ok(SeriesRow {
                        name: r.get(0)?,
                        count: r.get(1)?,
                        min: r.get(2)?,
                        max: r.get(3)?,
                        last: r.get(4)?,
                        last_step: r.get(5)?,
                    })
                })?
                .collect()
            })
            .map_err(db)
    }

    fn chunks(&self, series: i64, axis: Axis, blocks: bool) -> Result<Vec<ChunkInfo>> {
        let (lo, hi) = axis_columns(axis);
        let sql = format!(
            "SELECT id, count, {lo}, {hi}, {} FROM metric_chunks WHERE series_id = ?1 ORDER BY id",
            if blocks { "blocks" } else { "x''" }
        );
        self.0
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(params![series], |r| {
                    Ok(ChunkInfo {
                        id: r.get(0)?,
                        count: r.get(1)?,
                        xmin: r.get::<_, f64>(2)?,
                        xmax: r.get::<_, f64>(3)?,
                        blocks: r.get(4)?,
                    })
                })?
                .collect()
            })
            .map_err(db)
    }

    fn chunks_overlapping(&self, series: i64, axis: Axis, min: f64, max: f64) -> Result<Vec<i64>> {
        let (lo, hi) = axis_columns(axis);
        let sql = format!(
            "SELECT id FROM metric_chunks WHERE series_id = ?1 AND {hi} >= ?2 AND {lo} <= ?3 ORDER BY id"
        );
        self.0
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(params![series, min, max], |r| r.get(0))?
                    .collect()
            })
            .map_err(db)
    }

    fn chunk_points(&self, chunk: i64) -> Result<Vec<u8>> {
        self.0
            .prepare_cached("SELECT points FROM metric_points WHERE chunk_id = ?1")
            .and_then(|mut s| s.query_row(params![chunk], |r| r.get(0)))
            .map_err(db)
    }

    fn series_newest_ts(&self, series: i64) -> Result<Option<i64>> {
        self.0
            .prepare_cached("SELECT max(ts_max) FROM metric_chunks WHERE series_id = ?1")
            .and_then(|mut s| s.query_row(params![series], |r| r.get(0)))
            .map_err(db)
    }

    fn chunks_since(&self, series: i64, ts: i64) -> Result<Vec<ChunkStats>> {
        self.0
            .prepare_cached(
                "SELECT id, count, ts_min, vmin, vmax, vsum FROM metric_chunks
                 WHERE series_id = ?1 AND ts_max >= ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![series, ts], |r| {
                    Ok(ChunkStats {
                        id: r.get(0)?,
                        count: r.get(1)?,
                        ts_min: r.get(2)?,
                        vmin: r.get(3)?,
                        vmax: r.get(4)?,
                        vsum: r.get(5)?,
                    })
                })?
                .collect()
            })
            .map_err(db)
    }

    fn artifact_get(&self, id: &str) -> Result<Option<ArtifactRow>> {
        self.0
            .prepare_cached("SELECT * FROM artifacts WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![id], artifact_row).optional())
            .map_err(db)
    }

    fn artifact_list(&self) -> Result<Vec<ArtifactRow>> {
        self.0
            .prepare_cached("SELECT * FROM artifacts ORDER BY created")
            .and_then(|mut s| s.query_map([], artifact_row)?.collect())
            .map_err(db)
    }

    fn artifacts_of(
        &self,
        run: &str,
        name: Option<&str>,
        category: Option<&str>,
    ) -> Result<Vec<(ArtifactRow, String)>> {
        self.0
            .prepare_cached(
                "SELECT a.*, ra.category FROM artifacts a JOIN run_artifacts ra ON ra.artifact_id = a.id
                 WHERE ra.run_id = ?1 AND (?2 IS NULL OR a.name = ?2) AND (?3 IS NULL OR ra.category = ?3)
                 ORDER BY a.created",
            )
            .and_then(|mut s| {
                s.query_map(params![run, name, category], |r| {
                    Ok((artifact_row(r)?, r.get("category")?))
                })?
                .collect()
            })
            .map_err(db)
    }

    fn artifact_runs(&self, artifact: &str) -> Result<Vec<String>> {
        self.0
            .prepare_cached("SELECT run_id FROM run_artifacts WHERE artifact_id = ?1")
            .and_then(|mut s| s.query_map(params![artifact], |r| r.get(0))?.collect())
            .map_err(db)
    }

    fn artifact_category(&self, run: &str, artifact: &str) -> Result<Option<String>> {
        self.0
            .prepare_cached(
                "SELECT category FROM run_artifacts WHERE run_id = ?1 AND artifact_id = ?2",
            )
            .and_then(|mut s| s.query_row(params![run, artifact], |r| r.get(0)).optional())
            .map_err(db)
    }

    fn tokens(&self, name: Option<&str>) -> Result<Vec<TokenRow>> {
        self.0
            .prepare_cached(
                "SELECT id, name, hash, exp, created, label, read_only, last_used, csrf FROM tokens
                 WHERE ?1 IS NULL OR name = ?1 ORDER BY created, id",
            )
            .and_then(|mut s| s.query_map(params![name], token_row)?.collect())
            .map_err(db)
    }

    fn tokens_live(&self, name: &str, now: i64) -> Result<u64> {
        self.0
            .prepare_cached("SELECT COUNT(*) FROM tokens WHERE name = ?1 AND exp > ?2")
            .and_then(|mut s| s.query_row(params![name, now], |r| r.get::<_, i64>(0)))
            .map(|n| n.max(0) as u64)
            .map_err(db)
    }

    fn tag_list(&self) -> Result<Vec<TagRow>> {
        self.0
            .prepare_cached("SELECT * FROM tags ORDER BY created, name")
            .and_then(|mut s| s.query_map([], tag_row)?.collect())
            .map_err(db)
    }

    fn tag_get(&self, id: &str) -> Result<Option<TagRow>> {
        self.0
            .prepare_cached("SELECT * FROM tags WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![id], tag_row).optional())
            .map_err(db)
    }

    fn tag_by_name(&self, name: &str) -> Result<Option<String>> {
        self.0
            .prepare_cached("SELECT id FROM tags WHERE name = ?1")
            .and_then(|mut s| s.query_row(params![name], |r| r.get(0)).optional())
            .map_err(db)
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        self.0
            .prepare_cached(
                "SELECT id, name, hash, exp, created, label, read_only, last_used, csrf
                 FROM tokens WHERE hash = ?1",
            )
            .and_then(|mut s| s.query_row(params![hash], token_row).optional())
            .map_err(db)
    }

    fn user_get(&self, name: &str) -> Result<Option<UserRow>> {
        self.0
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"))
            .and_then(|mut s| s.query_row(params![name], user_row).optional())
            .map_err(db)
    }

    fn users(&self) -> Result<Vec<UserRow>> {
        self.0
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
            .and_then(|mut s| s.query_map([], user_row)?.collect())
            .map_err(db)
    }

    fn user_profile(&self, name: &str) -> Result<Option<String>> {
        self.0
            .prepare_cached("SELECT doc FROM user_profiles WHERE name = ?1")
            .and_then(|mut s| s.query_row(params![name], |r| r.get(0)).optional())
            .map_err(db)
    }

    fn tenant_get(&self, name: &str) -> Result<Option<TenantRow>> {
        self.0
            .prepare_cached("SELECT name, doc, created FROM tenants WHERE name = ?1")
            .and_then(|mut s| s.query_row(params![name], tenant_row).optional())
            .map_err(db)
    }

    fn tenants(&self) -> Result<Vec<TenantRow>> {
        self.0
            .prepare_cached("SELECT name, doc, created FROM tenants ORDER BY name")
            .and_then(|mut s| s.query_map([], tenant_row)?.collect())
            .map_err(db)
    }

    fn audit(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRow>> {
        self.0
            .prepare_cached(
                "SELECT seq, ts, actor, action, target, detail, ip FROM audit
                 WHERE ?1 IS NULL OR seq < ?1 ORDER BY seq DESC LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![before, limit.min(i64::MAX as usize) as i64], |r| {
                    Ok(AuditRow {
                        seq: r.get(0)?,
                        ts: r.get(1)?,
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        target: r.get(4)?,
                        detail: r.get(5)?,
                        ip: r.get(6)?,
                    })
                })?
                .collect()
            })
            .map_err(db)
    }

    fn signin_failures(&self, key: &str) -> Result<Option<(i64, i64)>> {
        self.0
            .prepare_cached("SELECT count, since FROM signin_failures WHERE key = ?1")
            .and_then(|mut s| {
                s.query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(db)
    }

    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.0
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")
            .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
            .map_err(db)
    }

    fn idempotency_get(&self, scope: &str, key: &str) -> Result<Option<Recorded>> {
        self.0
            .prepare_cached("SELECT status, body FROM idempotency WHERE scope = ?1 AND key = ?2")
            .and_then(|mut s| {
                s.query_row(params![scope, key], |r| {
                    Ok(Recorded {
                        status: r.get::<_, i64>(0)? as u16,
                        body: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(db)
    }

    fn notify_channels(&self, owner: Option<&str>) -> Result<Vec<ChannelRow>> {
        self.channels(owner)
    }

    fn outbox_list(
        &self,
        owner: Option<&str>,
        run: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>> {
        self.outbox(owner, run, limit)
    }

    fn outbox_due(&self, now: i64) -> Result<u64> {
        self.due(now)
    }

    fn grid_get(&self, id: &str) -> Result<Option<GridRow>> {
        super::grids::get(self.0, id)
    }
    fn grid_list(&self) -> Result<Vec<GridRow>> {
        super::grids::list(self.0)
    }
    fn grid_metrics(&self, run: &str) -> Result<Vec<GridMetricRow>> {
        super::grids::metrics(self.0, run)
    }
    fn grid_value(&self, run: &str, metric: &str, step: i64) -> Result<Option<GridValueRow>> {
        super::grids::value(self.0, run, metric, step)
    }
    fn grid_steps(&self, run: &str, metric: &str) -> Result<Vec<GridValueRow>> {
        super::grids::steps(self.0, run, metric)
    }
}

/// Adds `total` events just inserted, `system` of them the server's own,
/// to run `run`'s counts (migration 3), and records the last of them as
/// counted.
fn count_events(c: &Connection, run: &str, total: i64, system: i64) -> Result<()> {
    if total == 0 {
        return Ok(());
    }
    let last = c.last_insert_rowid();
    c.prepare_cached(
        "INSERT INTO event_counts (run_id, total, system) VALUES (?1, ?2, ?3)
         ON CONFLICT (run_id) DO UPDATE
         SET total = total + excluded.total, system = system + excluded.system",
    )
    .and_then(|mut s| s.execute(params![run, total, system]))
    .and_then(|_| {
        c.prepare_cached(
            "INSERT INTO event_counts_seq (one, seq) VALUES (1, ?1)
             ON CONFLICT (one) DO UPDATE SET seq = excluded.seq",
        )
    })
    .and_then(|mut s| s.execute(params![last]))
    .map_err(db)?;
    Ok(())
}

/// Events per multi-row INSERT (3 parameters each, plus the run).
const EVENT_ROWS: usize = 64;

/// `INSERT INTO events ... VALUES (?1, ?2, ?3, ?4), (?1, ?5, ?6, ?7), ...`
/// for [`EVENT_ROWS`] rows.
fn events_sql() -> String {
    let mut sql = String::from("INSERT INTO events (run_id, ts, log_level, message) VALUES ");
    for i in 0..EVENT_ROWS {
        let p = 2 + 3 * i;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(?1, ?{}, ?{}, ?{})", p, p + 1, p + 2));
    }
    sql
}

impl WriteTx for Tx<'_> {
    fn run_insert(&self, r: &RunRow) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO runs (id, name, folder, status, description, tags, metadata, system, created,
                 started, endtime, modified, ttl, heartbeat_timeout, notifications, visibility, user,
                 last_seen, abort_requested, abort_reason, starred)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    r.id,
                    r.name,
                    r.folder,
                    r.status,
                    r.description,
                    r.tags,
                    r.metadata,
                    r.system,
                    r.created,
                    r.started,
                    r.endtime,
                    r.modified,
                    r.ttl,
                    r.heartbeat_timeout,
                    r.notifications,
                    r.visibility,
                    r.user,
                    r.last_seen,
                    r.abort_requested,
                    r.abort_reason,
                    r.starred
                ])
            })
            .map_err(db)?;
        Ok(())
    }

    fn run_update(&self, id: &str, p: &RunPatch) -> Result<()> {
        update(self.0, "runs", id, sql_cells(p.columns()))
    }

    fn run_delete(&self, id: &str) -> Result<()> {
        for sql in [
            "DELETE FROM metric_points WHERE chunk_id IN (SELECT c.id FROM metric_chunks c JOIN metric_series s ON s.id = c.series_id WHERE s.run_id = ?1)",
            "DELETE FROM metric_chunks WHERE series_id IN (SELECT id FROM metric_series WHERE run_id = ?1)",
            "DELETE FROM metric_series WHERE run_id = ?1",
            "DELETE FROM events WHERE run_id = ?1",
            "DELETE FROM event_counts WHERE run_id = ?1",
            "DELETE FROM run_alerts WHERE run_id = ?1",
            "DELETE FROM alert_acks WHERE run_id = ?1",
            "DELETE FROM alert_windows WHERE run_id = ?1",
            "DELETE FROM run_artifacts WHERE run_id = ?1",
            "DELETE FROM grid_values WHERE run_id = ?1",
            "DELETE FROM run_grids WHERE run_id = ?1",
            "DELETE FROM runs WHERE id = ?1",
        ] {
            self.0.execute(sql, params![id]).map_err(db)?;
        }
        Ok(())
    }

    fn folder_view_put(&self, folder: &str, user: &str, doc: &str) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO folder_views (folder_id, user, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT (folder_id, user) DO UPDATE SET doc = excluded.doc",
            )
            .and_then(|mut s| s.execute(params![folder, user, doc]))
            .map_err(db)?;
        Ok(())
    }

    fn folder_view_delete(&self, folder: &str, user: Option<&str>) -> Result<()> {
        self.0
            .execute(
                "DELETE FROM folder_views WHERE folder_id = ?1 AND (?2 IS NULL OR user = ?2)",
                params![folder, user],
            )
            .map_err(db)?;
        Ok(())
    }

    fn folder_insert(&self, id: &str, path: &str, now: i64) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO folders (id, path, created, modified) VALUES (?1, ?2, ?3, ?3)",
            )
            .and_then(|mut s| s.execute(params![id, path, now]))
            .map_err(db)?;
        Ok(())
    }

    fn folder_set_owner(&self, id: &str, owner: &str) -> Result<()> {
        self.0
            .prepare_cached("UPDATE folders SET owner = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, owner]))
            .map_err(db)?;
        Ok(())
    }

    fn folder_update(&self, id: &str, p: &FolderPatch) -> Result<()> {
        update(self.0, "folders", id, sql_cells(p.columns()))
    }

    fn folder_delete(&self, id: &str) -> Result<()> {
        self.0
            .execute("DELETE FROM folders WHERE id = ?1", params![id])
            .map_err(db)?;
        Ok(())
    }

    fn alert_insert(&self, a: &AlertRow) -> Result<()> {
        self.0
            .execute(
                "INSERT INTO alerts (id, name, source, description, notification, enabled, abort, alert, created, user, options)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
                params![
                    a.id,
                    a.name,
                    a.source,
                    a.description,
                    a.notification,
                    a.enabled,
                    a.abort,
                    a.alert,
                    a.created,
                    a.user,
                    a.options
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    fn alert_update(&self, id: &str, p: &AlertPatch) -> Result<()> {
        update(self.0, "alerts", id, sql_cells(p.columns()))
    }

    fn alert_delete(&self, id: &str) -> Result<()> {
        self.0
            .execute("DELETE FROM run_alerts WHERE alert_id = ?1", params![id])
            .map_err(db)?;
        self.0
            .execute("DELETE FROM alert_acks WHERE alert_id = ?1", params![id])
            .map_err(db)?;
        self.0
            .execute("DELETE FROM alert_windows WHERE alert_id = ?1", params![id])
            .map_err(db)?;
        self.0
            .execute("DELETE FROM alerts WHERE id = ?1", params![id])
            .map_err(db)?;
        Ok(())
    }

    fn attach_alert(&self, run: &str, alert: &str) -> Result<()> {
        self.0
            .prepare_cached("INSERT OR IGNORE INTO run_alerts (run_id, alert_id) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![run, alert]))
            .map_err(db)?;
        Ok(())
    }

    fn detach_alerts_except(&self, run: &str, keep: &[String]) -> Result<()> {
        let keep = serde_json::Value::from(keep.to_vec()).to_string();
        for table in ["run_alerts", "alert_acks"] {
            self.0
                .prepare_cached(&format!(
                    "DELETE FROM {table} WHERE run_id = ?1
                     AND alert_id NOT IN (SELECT value FROM json_each(?2))"
                ))
                .and_then(|mut s| s.execute(params![run, keep]))
                .map_err(db)?;
        }
        Ok(())
    }

    fn set_alert_state(&self, run: &str, alert: &str, status: &str, at: i64) -> Result<()> {
        self.0
            .prepare_cached(
                "UPDATE run_alerts SET status = ?3, changed = ?4 WHERE run_id = ?1 AND alert_id = ?2",
            )
            .and_then(|mut s| s.execute(params![run, alert, status, at]))
            .map_err(db)?;
        self.0
            .prepare_cached("DELETE FROM alert_acks WHERE run_id = ?1 AND alert_id = ?2")
            .and_then(|mut s| s.execute(params![run, alert]))
            .map_err(db)?;
        Ok(())
    }

    fn acknowledge_alert(&self, run: &str, alert: &str, by: &str, at: i64) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT OR REPLACE INTO alert_acks (run_id, alert_id, by_user, at)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![run, alert, by, at]))
            .map_err(db)?;
        Ok(())
    }

    fn event_insert(&self, run: &str, ts: i64, level: &str, message: &str) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO events (run_id, ts, log_level, message) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![run, ts, level, message]))
            .map_err(db)?;
        count_events(
            self.0,
            run,
            1,
            i64::from(message.starts_with(SYSTEM_EVENT_PREFIX)),
        )
    }

    fn events_insert(&self, run: &str, rows: &[(i64, String, String)]) -> Result<()> {
        // Full groups with one cached multi-row statement (rows get their
        // sequence numbers in VALUES order), the rest one by one.
        let mut groups = rows.chunks_exact(EVENT_ROWS);
        if groups.len() > 0 {
            let mut st = self.0.prepare_cached(&events_sql()).map_err(db)?;
            for g in &mut groups {
                let mut args: Vec<&dyn ToSql> = Vec::with_capacity(1 + 3 * EVENT_ROWS);
                args.push(&run);
                for (ts, level, message) in g {
                    args.extend([ts as &dyn ToSql, level, message]);
                }
                st.execute(args.as_slice()).map_err(db)?;
            }
        }
        let mut rest = self
            .0
            .prepare_cached(
                "INSERT INTO events (run_id, ts, log_level, message) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(db)?;
        for (ts, level, message) in groups.remainder() {
            rest.execute(params![run, ts, level, message]).map_err(db)?;
        }
        let system = rows
            .iter()
            .filter(|r| r.2.starts_with(SYSTEM_EVENT_PREFIX))
            .count();
        count_events(self.0, run, rows.len() as i64, system as i64)
    }

    fn series_ensure(&self, run: &str, name: &str) -> Result<i64> {
        self.0
            .prepare_cached(
                "INSERT INTO metric_series (run_id, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![run, name]))
            .map_err(db)?;
        self.0
            .prepare_cached("SELECT id FROM metric_series WHERE run_id = ?1 AND name = ?2")
            .and_then(|mut s| s.query_row(params![run, name], |r| r.get(0)))
            .map_err(db)
    }

    fn chunk_insert(&self, series: i64, c: &NewChunk<'_>) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO metric_chunks (series_id, count, step_min, step_max, time_min, time_max,
                 ts_min, ts_max, vmin, vmax, vsum, blocks) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    series, c.count, c.step.0, c.step.1, c.time.0, c.time.1, c.ts.0, c.ts.1,
                    c.vmin, c.vmax, c.vsum, c.blocks
                ])
            })
            .map_err(db)?;
        let chunk = self.0.last_insert_rowid();
        self.0
            .prepare_cached("INSERT INTO metric_points (chunk_id, points) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![chunk, c.points]))
            .map_err(db)?;
        Ok(())
    }

    fn series_extend(
        &self,
        series: i64,
        count: i64,
        min: Option<f64>,
        max: Option<f64>,
        last: Option<(Option<f64>, i64)>,
    ) -> Result<()> {
        self.0
            .prepare_cached(
                "UPDATE metric_series SET count = count + ?2,
                   vmin = CASE WHEN ?3 IS NULL THEN vmin WHEN vmin IS NULL OR ?3 < vmin THEN ?3 ELSE vmin END,
                   vmax = CASE WHEN ?4 IS NULL THEN vmax WHEN vmax IS NULL OR ?4 > vmax THEN ?4 ELSE vmax END,
                   last = ?5, last_step = ?6 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    series,
                    count,
                    min,
                    max,
                    last.and_then(|l| l.0),
                    last.map(|l| l.1)
                ])
            })
            .map_err(db)?;
        Ok(())
    }

    fn artifact_insert(&self, a: &ArtifactRow) -> Result<()> {
        self.0
            .execute(
                "INSERT INTO artifacts (id, name, original_path, size, mime_type, checksum, metadata, created, uploaded, user)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                params![
                    a.id,
                    a.name,
                    a.original_path,
                    a.size as i64,
                    a.mime_type,
                    a.checksum,
                    a.metadata,
                    a.created,
                    a.uploaded,
                    a.user
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    fn artifact_set_uploaded(&self, id: &str, uploaded: bool) -> Result<()> {
        self.0
            .execute(
                "UPDATE artifacts SET uploaded = ?2 WHERE id = ?1",
                params![id, uploaded],
            )
            .map_err(db)?;
        Ok(())
    }

    fn artifact_set_size(&self, id: &str, size: u64) -> Result<()> {
        self.0
            .execute(
                "UPDATE artifacts SET size = ?2 WHERE id = ?1",
                params![id, size as i64],
            )
            .map_err(db)?;
        Ok(())
    }

    fn artifact_attach(&self, run: &str, artifact: &str, category: &str) -> Result<()> {
        self.0
            .execute(
                "INSERT INTO run_artifacts (run_id, artifact_id, category) VALUES (?1, ?2, ?3)
                 ON CONFLICT (run_id, artifact_id) DO UPDATE SET category = excluded.category",
                params![run, artifact, category],
            )
            .map_err(db)?;
        Ok(())
    }

    fn artifact_delete(&self, id: &str) -> Result<()> {
        self.0
            .execute(
                "DELETE FROM run_artifacts WHERE artifact_id = ?1",
                params![id],
            )
            .map_err(db)?;
        self.0
            .execute("DELETE FROM artifacts WHERE id = ?1", params![id])
            .map_err(db)?;
        Ok(())
    }

    fn tag_insert(&self, t: &TagRow) -> Result<bool> {
        self.0
            .execute(
                "INSERT INTO tags (id, name, colour, description, created, user)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO NOTHING",
                params![t.id, t.name, t.colour, t.description, t.created, t.user],
            )
            .map(|n| n > 0)
            .map_err(db)
    }

    fn tag_update(&self, t: &TagRow) -> Result<bool> {
        self.0
            .execute(
                "UPDATE tags SET name = ?2, colour = ?3, description = ?4 WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM tags o WHERE o.name = ?2 AND o.id <> ?1)",
                params![t.id, t.name, t.colour, t.description],
            )
            .map(|n| n > 0)
            .map_err(db)
    }

    fn tag_delete(&self, id: &str) -> Result<()> {
        self.0
            .execute("DELETE FROM tags WHERE id = ?1", params![id])
            .map_err(db)?;
        Ok(())
    }

    fn token_insert(&self, t: &TokenRow) -> Result<()> {
        self.0
            .execute(
                "INSERT INTO tokens (id, name, hash, exp, created, label, read_only, csrf)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    t.id,
                    t.name,
                    t.hash,
                    t.exp,
                    t.created,
                    t.label,
                    t.read_only,
                    t.csrf
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    fn alert_window_put(&self, run: &str, alert: &str, state: &str) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO alert_windows (run_id, alert_id, state) VALUES (?1, ?2, ?3)
                 ON CONFLICT (run_id, alert_id) DO UPDATE SET state = excluded.state",
            )
            .and_then(|mut s| s.execute(params![run, alert, state]))
            .map_err(db)?;
        Ok(())
    }

    fn token_delete(&self, id: &str) -> Result<bool> {
        self.0
            .execute("DELETE FROM tokens WHERE id = ?1", params![id])
            .map(|n| n > 0)
            .map_err(db)
    }

    fn token_touch(&self, id: &str, at: i64) -> Result<()> {
        self.0
            .prepare_cached("UPDATE tokens SET last_used = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, at]))
            .map_err(db)?;
        Ok(())
    }

    fn user_put(&self, u: &UserRow) -> Result<()> {
        self.0
            .execute(
                &format!(
                    "INSERT OR REPLACE INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    u.name, u.email, u.group, u.admin, u.disabled, u.password, u.created
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    fn user_profile_put(&self, name: &str, doc: &str) -> Result<()> {
        self.0
            .execute(
                "INSERT INTO user_profiles (name, doc) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
                params![name, doc],
            )
            .map_err(db)?;
        Ok(())
    }

    fn tenant_put(&self, t: &TenantRow) -> Result<()> {
        self.0
            .execute(
                "INSERT INTO tenants (name, doc, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
                params![t.name, t.doc, t.created],
            )
            .map_err(db)?;
        Ok(())
    }

    fn tenant_delete(&self, name: &str) -> Result<bool> {
        self.0
            .execute("DELETE FROM tenants WHERE name = ?1", params![name])
            .map(|n| n > 0)
            .map_err(db)
    }

    fn audit_insert(&self, a: &AuditRow) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO audit (ts, actor, action, target, detail, ip)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| s.execute(params![a.ts, a.actor, a.action, a.target, a.detail, a.ip]))
            .map_err(db)?;
        Ok(())
    }

    fn signin_failures_put(&self, key: &str, count: i64, since: i64) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO signin_failures (key, count, since) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET count = excluded.count, since = excluded.since",
            )
            .and_then(|mut s| s.execute(params![key, count, since]))
            .map_err(db)?;
        Ok(())
    }

    fn signin_failures_delete(&self, key: &str) -> Result<()> {
        self.0
            .execute("DELETE FROM signin_failures WHERE key = ?1", params![key])
            .map_err(db)?;
        Ok(())
    }

    fn signin_failures_purge(&self, before: i64) -> Result<usize> {
        self.0
            .execute(
                "DELETE FROM signin_failures WHERE since < ?1",
                params![before],
            )
            .map_err(db)
    }

    fn setting_put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.0
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(db)?;
        Ok(())
    }

    fn idempotency_put(&self, scope: &str, key: &str, r: &Recorded, at: i64) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO idempotency (scope, key, status, body, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![scope, key, r.status, r.body, at]))
            .map_err(db)?;
        Ok(())
    }

    fn idempotency_purge(&self, before: i64) -> Result<usize> {
        self.0
            .execute(
                "DELETE FROM idempotency WHERE created < ?1",
                params![before],
            )
            .map_err(db)
    }

    fn notify_channel_insert(&self, c: &ChannelRow) -> Result<()> {
        self.channel_insert(c)
    }

    fn notify_channel_delete(&self, id: &str) -> Result<bool> {
        self.channel_delete(id)
    }

    fn outbox_insert(&self, o: &OutboxRow) -> Result<()> {
        self.outbox_add(o)
    }

    fn outbox_claim(&self, now: i64, until: i64, limit: usize) -> Result<Vec<OutboxRow>> {
        self.claim(now, until, limit)
    }

    fn outbox_finish(
        &self,
        id: &str,
        status: &str,
        attempts: i64,
        next_at: i64,
        error: Option<&str>,
        sent_at: Option<i64>,
    ) -> Result<()> {
        self.finish(id, status, attempts, next_at, error, sent_at)
    }

    fn outbox_purge(&self, before: i64) -> Result<usize> {
        self.purge(before)
    }

    fn grid_insert(&self, g: &GridRow) -> Result<()> {
        super::grids::insert(self.0, g)
    }
    fn grid_delete(&self, id: &str) -> Result<()> {
        super::grids::delete(self.0, id)
    }
    fn grid_attach(&self, run: &str, metric: &str, grid: &str) -> Result<()> {
        super::grids::attach(self.0, run, metric, grid)
    }
    fn grid_value_put(&self, run: &str, metric: &str, v: &GridValueRow) -> Result<()> {
        super::grids::value_put(self.0, run, metric, v)
    }
}
