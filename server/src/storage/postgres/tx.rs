//! The typed operations of a PostgreSQL transaction: every SQL statement
//! of the PostgreSQL store is here, one per method, as in
//! `storage/sqlite/tx.rs` (the reference for what each one must do).

use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

use super::{PgStore, db};
use crate::storage::run_query::{Dialect, Sql as RunSql, SqlArg};
use crate::storage::{Acknowledgement, ChannelRow, EventPred, OutboxRow, RunPage, RunPageAnswer};
use crate::storage::{
    AlertPatch, AlertRow, ArtifactRow, Attached, AuditRow, Axis, Cell, ChunkInfo, ChunkStats,
    EventRow, FolderPatch, FolderRow, GridMetricRow, GridRow, GridValueRow, JsonColumn, NewChunk,
    ReadTx, Recorded, Result, RunPatch, RunProjection, RunRow, RunScanRow, RunScope, SeriesRow,
    StorageError, TagRow, TenantRow, TokenRow, UserRow, WriteTx,
};
use crate::storage::{kept_count, kept_count_answers};

mod notify;

/// A transaction (read or write) on one pooled connection.
pub(super) struct Tx<'a> {
    pub t: &'a Transaction<'a>,
    pub store: &'a PgStore,
    /// For a write holding only one run's lock ([`PgStore::write_run`]),
    /// what it may change; every change outside it is refused, since
    /// writes on other runs run at the same time.
    pub scope: Option<RunScope<'a>>,
}

pub(super) type Param<'a> = &'a (dyn ToSql + Sync);
type Boxed = Box<dyn ToSql + Sync + Send>;

/// [`SqlArg`]s as PostgreSQL binds them.
fn pg_args(args: Vec<SqlArg>) -> Vec<Boxed> {
    args.into_iter()
        .map(|a| -> Boxed {
            match a {
                SqlArg::Text(t) => Box::new(t),
                SqlArg::Int(i) => Box::new(i),
                SqlArg::Keys(k) => Box::new(k),
            }
        })
        .collect()
}

fn get<'r, T: FromSql<'r>>(r: &'r Row, col: &str) -> Result<T> {
    r.try_get(col).map_err(db)
}

pub(super) fn at<'r, T: FromSql<'r>>(r: &'r Row, i: usize) -> Result<T> {
    r.try_get(i).map_err(db)
}

fn axis_columns(axis: Axis) -> (&'static str, &'static str) {
    match axis {
        Axis::Step => ("step_min", "step_max"),
        Axis::Time => ("time_min", "time_max"),
        Axis::Timestamp => ("ts_min", "ts_max"),
    }
}

const RUN_COLUMNS: &str = "id, name, folder, status, description, tags, metadata, system, created,
    started, endtime, modified, ttl, heartbeat_timeout, notifications, visibility, owner,
    last_seen, abort_requested, abort_reason, starred";

fn run_row(r: &Row) -> Result<RunRow> {
    Ok(RunRow {
        id: get(r, "id")?,
        name: get(r, "name")?,
        folder: get(r, "folder")?,
        status: get(r, "status")?,
        description: get(r, "description")?,
        tags: get(r, "tags")?,
        metadata: get(r, "metadata")?,
        system: get(r, "system")?,
        created: get(r, "created")?,
        started: get(r, "started")?,
        endtime: get(r, "endtime")?,
        modified: get(r, "modified")?,
        ttl: get(r, "ttl")?,
        heartbeat_timeout: get(r, "heartbeat_timeout")?,
        notifications: get(r, "notifications")?,
        visibility: get(r, "visibility")?,
        user: get(r, "owner")?,
        last_seen: get(r, "last_seen")?,
        abort_requested: get(r, "abort_requested")?,
        abort_reason: get(r, "abort_reason")?,
        starred: get(r, "starred")?,
    })
}

fn folder_row(r: &Row) -> Result<FolderRow> {
    Ok(FolderRow {
        id: get(r, "id")?,
        path: get(r, "path")?,
        description: get(r, "description")?,
        tags: get(r, "tags")?,
        metadata: get(r, "metadata")?,
        created: get(r, "created")?,
        modified: get(r, "modified")?,
        starred: get(r, "starred")?,
        owner: get(r, "owner")?,
    })
}

const ALERT_COLUMNS: &str = "a.id, a.name, a.source, a.description, a.notification, a.enabled, a.abort, a.alert, a.created, a.owner, a.options";

fn alert_row(r: &Row) -> Result<AlertRow> {
    Ok(AlertRow {
        id: get(r, "id")?,
        name: get(r, "name")?,
        source: get(r, "source")?,
        description: get(r, "description")?,
        notification: get(r, "notification")?,
        enabled: get(r, "enabled")?,
        abort: get(r, "abort")?,
        alert: get(r, "alert")?,
        options: get(r, "options")?,
        created: get(r, "created")?,
        user: get(r, "owner")?,
    })
}

const ARTIFACT_COLUMNS: &str = "a.id, a.name, a.original_path, a.size, a.mime_type, a.checksum,
    a.metadata, a.created, a.uploaded, a.owner";

fn artifact_row(r: &Row) -> Result<ArtifactRow> {
    Ok(ArtifactRow {
        id: get(r, "id")?,
        name: get(r, "name")?,
        original_path: get(r, "original_path")?,
        size: get::<i64>(r, "size")? as u64,
        mime_type: get(r, "mime_type")?,
        checksum: get(r, "checksum")?,
        metadata: get(r, "metadata")?,
        created: get(r, "created")?,
        uploaded: get(r, "uploaded")?,
        user: get(r, "owner")?,
    })
}

fn token_row(r: &Row) -> Result<TokenRow> {
    Ok(TokenRow {
        id: get(r, "id")?,
        name: get(r, "name")?,
        hash: get(r, "hash")?,
        exp: get(r, "exp")?,
        created: get(r, "created")?,
        label: get(r, "label")?,
        read_only: get(r, "read_only")?,
        last_used: get(r, "last_used")?,
        csrf: get(r, "csrf")?,
    })
}

const TOKEN_COLUMNS: &str = "id, name, hash, exp, created, label, read_only, last_used, csrf";
const USER_COLUMNS: &str = "name, email, grp, admin, disabled, password, created";

fn user_row(r: &Row) -> Result<UserRow> {
    Ok(UserRow {
        name: get(r, "name")?,
        email: get(r, "email")?,
        group: get(r, "grp")?,
        admin: get(r, "admin")?,
        disabled: get(r, "disabled")?,
        password: get(r, "password")?,
        created: get(r, "created")?,
    })
}

fn tenant_row(r: &Row) -> Result<TenantRow> {
    Ok(TenantRow {
        name: get(r, "name")?,
        doc: get(r, "doc")?,
        created: get(r, "created")?,
    })
}

fn tag_row(r: &Row) -> Result<TagRow> {
    Ok(TagRow {
        id: get(r, "id")?,
        name: get(r, "name")?,
        colour: get(r, "colour")?,
        description: get(r, "description")?,
        created: get(r, "created")?,
        user: get(r, "owner")?,
    })
}

impl Tx<'_> {
    /// Refuses a change to `what` in a write scoped to one run.
    fn unscoped(&self, what: &str) -> Result<()> {
        match &self.scope {
            Some(s) => Err(StorageError(format!(
                "a write transaction scoped to run {} cannot change {what}",
                s.run
            ))),
            None => Ok(()),
        }
    }

    /// [`ReadTx::events_visit_where`], read in pages.
    fn visit_events(
        &self,
        run: &str,
        exclude_prefix: Option<&str>,
        filter: &EventPred,
        skip: u64,
        visit: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<()> {
        // In pages, each continuing after the last row of the one before
        // (the index on run, time and sequence serves both the offset of the
        // first and the start of the others).
        const PAGE: i64 = 5000;
        let mut f = RunSql::after(Dialect::Postgres, 2);
        let events_of_run = format!(
            "SELECT ts, log_level, message, seq FROM events WHERE run_id = $1 \
             AND ($2::text IS NULL OR left(message, char_length($2)) <> $2) AND {}",
            f.event_pred(filter)
        );
        let extra = pg_args(f.args);
        let n = extra.len();
        let query = |sql: &str, more: &[Param<'_>]| {
            let mut args: Vec<Param<'_>> = vec![&run, &exclude_prefix];
            args.extend(extra.iter().map(|a| &**a as Param<'_>));
            args.extend_from_slice(more);
            // A filter's text follows what the client asked.
            if *filter == EventPred::True {
                self.rows(sql, &args)
            } else {
                self.rows_once(sql, &args)
            }
        };
        let skip = i64::try_from(skip).unwrap_or(i64::MAX);
        let mut rows = query(
            &format!(
                "{events_of_run} ORDER BY ts, seq LIMIT ${} OFFSET ${}",
                n + 3,
                n + 4
            ),
            &[&PAGE, &skip],
        )?;
        loop {
            let mut last: Option<(i64, i64)> = None;
            let full = rows.len() as i64 == PAGE;
            for r in &rows {
                last = Some((at(r, 0)?, at(r, 3)?));
                let row = EventRow {
                    ts: at(r, 0)?,
                    log_level: at(r, 1)?,
                    message: at(r, 2)?,
                };
                if !visit(row) {
                    return Ok(());
                }
            }
            let (Some((ts, seq)), true) = (last, full) else {
                return Ok(());
            };
            rows = query(
                &format!(
                    "{events_of_run} AND (ts, seq) > (${}, ${}) ORDER BY ts, seq LIMIT ${}",
                    n + 3,
                    n + 4,
                    n + 5
                ),
                &[&ts, &seq, &PAGE],
            )?;
        }
    }

    /// Runs `sql` (statements without parameters) as it is.
    fn batch(&self, sql: &str) -> Result<()> {
        self.store
            .block(async { self.t.batch_execute(sql).await.map_err(db) })
    }

    /// Refuses a change to run `run` in a write scoped to another run.
    fn in_scope(&self, run: &str) -> Result<()> {
        match &self.scope {
            Some(s) if s.run != run => Err(StorageError(format!(
                "a write transaction scoped to run {} cannot change run {run}",
                s.run
            ))),
            _ => Ok(()),
        }
    }

    /// Refuses to record an idempotency key other than the scope's own.
    fn idem_in_scope(&self, scope: &str, key: &str) -> Result<()> {
        match &self.scope {
            Some(s) if s.idem != Some((scope, key)) => Err(StorageError(format!(
                "a write transaction scoped to run {} cannot record another idempotency key",
                s.run
            ))),
            _ => Ok(()),
        }
    }

    /// Every row of `sql`.
    pub(super) fn rows(&self, sql: &str, args: &[Param<'_>]) -> Result<Vec<Row>> {
        self.store.block(async {
            let st = self.t.prepare_cached(sql).await.map_err(db)?;
            self.t.query(&st, args).await.map_err(db)
        })
    }

    /// Every row of `sql`, prepared for this call alone: for statements
    /// whose text follows what a client asked (run list filters), which
    /// would otherwise fill each connection's statement cache without end.
    fn rows_once(&self, sql: &str, args: &[Param<'_>]) -> Result<Vec<Row>> {
        self.store
            .block(async { self.t.query(sql, args).await.map_err(db) })
    }

    /// At most one row of `sql`.
    pub(super) fn row(&self, sql: &str, args: &[Param<'_>]) -> Result<Option<Row>> {
        self.store.block(async {
            let st = self.t.prepare_cached(sql).await.map_err(db)?;
            self.t.query_opt(&st, args).await.map_err(db)
        })
    }

    /// Runs `sql`; how many rows it changed.
    pub(super) fn exec(&self, sql: &str, args: &[Param<'_>]) -> Result<u64> {
        self.store.block(async {
            let st = self.t.prepare_cached(sql).await.map_err(db)?;
            self.t.execute(&st, args).await.map_err(db)
        })
    }

    /// The first column of each row.
    fn column<T: for<'r> FromSql<'r>>(&self, sql: &str, args: &[Param<'_>]) -> Result<Vec<T>> {
        self.rows(sql, args)?.iter().map(|r| at(r, 0)).collect()
    }

    /// The first column of the row, if there is one.
    fn value<T: for<'r> FromSql<'r>>(&self, sql: &str, args: &[Param<'_>]) -> Result<Option<T>> {
        self.row(sql, args)?.map(|r| at(&r, 0)).transpose()
    }

    /// `UPDATE table SET col = $2, ... WHERE id = $1` for the columns given.
    fn update(&self, table: &str, id: &str, sets: Vec<(&str, Boxed)>) -> Result<()> {
        if sets.is_empty() {
            return Ok(());
        }
        let cols: Vec<String> = sets
            .iter()
            .enumerate()
            .map(|(i, (col, _))| format!("{col} = ${}", i + 2))
            .collect();
        let sql = format!("UPDATE {table} SET {} WHERE id = $1", cols.join(", "));
        let id = id.to_owned();
        let mut args: Vec<Param<'_>> = vec![&id];
        args.extend(sets.iter().map(|(_, v)| &**v as Param<'_>));
        self.exec(&sql, &args)?;
        Ok(())
    }
}

/// A patch's cells as PostgreSQL parameters.
fn pg_cells(cells: Vec<(&'static str, Cell)>) -> Vec<(&'static str, Boxed)> {
    cells
        .into_iter()
        .map(|(col, v)| {
            let v = match v {
                Cell::Text(t) => boxed(t),
                Cell::Int(i) => boxed(i),
                Cell::Real(r) => boxed(r),
                Cell::Bool(b) => boxed(b),
            };
            (col, v)
        })
        .collect()
}

fn boxed<T: ToSql + Sync + Send + 'static>(v: T) -> Boxed {
    Box::new(v)
}

impl ReadTx for Tx<'_> {
    fn run_status(&self, id: &str) -> Result<Option<String>> {
        self.value("SELECT status FROM runs WHERE id = $1", &[&id])
    }

    fn run_get(&self, id: &str) -> Result<Option<RunRow>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        self.row(&sql, &[&id])?.as_ref().map(run_row).transpose()
    }

    fn run_access(&self, id: &str) -> Result<Option<(String, String)>> {
        self.row("SELECT owner, visibility FROM runs WHERE id = $1", &[&id])?
            .as_ref()
            .map(|r| Ok((at(r, 0)?, at(r, 1)?)))
            .transpose()
    }

    fn run_scan(&self, p: &RunProjection) -> Result<Vec<RunScanRow>> {
        // Values come from the stored jsonb twins with `#>`, so a large
        // metadata document is never parsed for a scan.
        let mut sql = String::from(
            "SELECT id, name, folder, status, description, created, started, endtime, modified,
             owner, starred, CASE WHEN $1 THEN tags END, visibility",
        );
        let mut paths: Vec<Vec<String>> = Vec::new();
        for path in &p.json_paths {
            // The keys are bound as a text[] parameter: any key a client
            // stored (quotes, backslashes, dots inside a key) is addressed
            // exactly.
            let column = match path.column {
                JsonColumn::Metadata => "metadata_j",
                JsonColumn::System => "system_j",
            };
            paths.push(path.keys.clone());
            sql.push_str(&format!(
                ", ({column} #> ${}::text[])::text",
                paths.len() + 1
            ));
        }
        sql.push_str(" FROM runs");
        let mut filter = RunSql::after(Dialect::Postgres, paths.len() + 1);
        if let Some(f) = &p.filter {
            sql.push_str(" WHERE ");
            sql.push_str(&filter.pred(f));
        }
        sql.push_str(" ORDER BY seq");
        let extra = pg_args(filter.args);
        let mut args: Vec<Param<'_>> = vec![&p.tags];
        args.extend(paths.iter().map(|a| a as Param<'_>));
        args.extend(extra.iter().map(|a| &**a as Param<'_>));
        let n = paths.len();
        let rows = if p.filter.is_some() {
            self.rows_once(&sql, &args)?
        } else {
            self.rows(&sql, &args)?
        };
        rows.iter()
            .map(|r| {
                Ok(RunScanRow {
                    id: at(r, 0)?,
                    name: at(r, 1)?,
                    folder: at(r, 2)?,
                    status: at(r, 3)?,
                    description: at(r, 4)?,
                    created: at(r, 5)?,
                    started: at(r, 6)?,
                    endtime: at(r, 7)?,
                    modified: at(r, 8)?,
                    user: at(r, 9)?,
                    starred: at(r, 10)?,
                    tags: at(r, 11)?,
                    visibility: at(r, 12)?,
                    values: (0..n).map(|i| at(r, 13 + i)).collect::<Result<_>>()?,
                })
            })
            .collect()
    }

    fn run_page(&self, q: &RunPage) -> Result<RunPageAnswer> {
        let [count, page, composite] = RunSql::page(Dialect::Postgres, q);
        let one = |(sql, args): (String, Vec<SqlArg>)| -> Result<i64> {
            let args = pg_args(args);
            let bound: Vec<Param<'_>> = args.iter().map(|a| &**a as Param<'_>).collect();
            match self.rows_once(&sql, &bound)?.first() {
                Some(r) => at(r, 0),
                None => Err(StorageError("a count of runs answered no row".into())),
            }
        };
        let total = one(count)?;
        let (sql, args) = page;
        let args = pg_args(args);
        let bound: Vec<Param<'_>> = args.iter().map(|a| &**a as Param<'_>).collect();
        let rows = self
            .rows_once(&sql, &bound)?
            .iter()
            .map(|r| Ok((at::<String>(r, 0)?, at::<i64>(r, 1)?)))
            .collect::<Result<Vec<_>>>()?;
        if rows.iter().any(|(_, c)| *c != 0) && one(composite)? > 1 {
            return Ok(RunPageAnswer::Unordered);
        }
        Ok(RunPageAnswer::Page {
            ids: rows.into_iter().map(|(id, _)| id).collect(),
            total: total.max(0) as u64,
        })
    }

    fn runs_in_folder(&self, path: &str) -> Result<Vec<String>> {
        self.column(
            "SELECT id FROM runs WHERE folder = $1 ORDER BY seq",
            &[&path],
        )
    }

    fn runs_silent(&self, since: i64, now: i64) -> Result<Vec<String>> {
        self.column(
            "SELECT id FROM runs WHERE status = 'running' AND heartbeat_timeout IS NOT NULL
             AND GREATEST(last_seen, $1) + trunc(heartbeat_timeout * 1000000)::bigint < $2
             ORDER BY seq",
            &[&since, &now],
        )
    }

    fn folder_get(&self, id: &str) -> Result<Option<FolderRow>> {
        self.row("SELECT * FROM folders WHERE id = $1", &[&id])?
            .as_ref()
            .map(folder_row)
            .transpose()
    }

    fn folder_by_path(&self, path: &str) -> Result<Option<String>> {
        self.value("SELECT id FROM folders WHERE path = $1", &[&path])
    }

    fn folder_list(&self) -> Result<Vec<FolderRow>> {
        self.rows("SELECT * FROM folders ORDER BY created, path", &[])?
            .iter()
            .map(folder_row)
            .collect()
    }

    fn folders_under(&self, path: &str) -> Result<Vec<(String, String)>> {
        let prefix = if path == "/" {
            "/".to_owned()
        } else {
            format!("{path}/")
        };
        self.rows(
            "SELECT id, path FROM folders WHERE path = $1 OR starts_with(path, $2)",
            &[&path, &prefix],
        )?
        .iter()
        .map(|r| Ok((at(r, 0)?, at(r, 1)?)))
        .collect()
    }

    fn alert_get(&self, id: &str) -> Result<Option<AlertRow>> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts a WHERE a.id = $1");
        self.row(&sql, &[&id])?.as_ref().map(alert_row).transpose()
    }

    fn alert_list(&self) -> Result<Vec<AlertRow>> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts a ORDER BY a.created");
        self.rows(&sql, &[])?.iter().map(alert_row).collect()
    }

    fn alert_by_name(&self, name: &str) -> Result<Option<String>> {
        self.value(
            "SELECT id FROM alerts WHERE name = $1 ORDER BY created LIMIT 1",
            &[&name],
        )
    }

    fn run_alert_status(&self, run: &str, alert: &str) -> Result<Option<String>> {
        self.value(
            "SELECT status FROM run_alerts WHERE run_id = $1 AND alert_id = $2",
            &[&run, &alert],
        )
    }

    fn attached(&self, run: Option<&str>) -> Result<Vec<Attached>> {
        let sql = format!(
            "SELECT ra.run_id AS run_id, ra.status AS run_alert_status,
             k.by_user AS ack_by, k.at AS ack_at, {ALERT_COLUMNS}
             FROM run_alerts ra JOIN alerts a ON a.id = ra.alert_id
             LEFT JOIN alert_acks k ON k.run_id = ra.run_id AND k.alert_id = ra.alert_id
             WHERE $1::text IS NULL OR ra.run_id = $1 ORDER BY a.created"
        );
        self.rows(&sql, &[&run])?
            .iter()
            .map(|r| {
                Ok(Attached {
                    run_id: get(r, "run_id")?,
                    status: get(r, "run_alert_status")?,
                    acknowledged: match get::<Option<String>>(r, "ack_by")? {
                        Some(by) => Some(Acknowledgement {
                            by,
                            at: get(r, "ack_at")?,
                        }),
                        None => None,
                    },
                    alert: alert_row(r)?,
                })
            })
            .collect()
    }

    fn attached_enabled(&self, run: &str, source: &str) -> Result<Vec<AlertRow>> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM run_alerts ra JOIN alerts a ON a.id = ra.alert_id
             WHERE ra.run_id = $1 AND a.source = $2 AND a.enabled"
        );
        self.rows(&sql, &[&run, &source])?
            .iter()
            .map(alert_row)
            .collect()
    }

    fn events_visit_where(
        &self,
        run: &str,
        exclude_prefix: Option<&str>,
        filter: &EventPred,
        skip: u64,
        visit: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<()> {
        // The pages must be read along the index, stopping at the page's
        // end; sorting the run's rows instead reads them all (300 ms for
        // 300,000 events). The planner chooses the sort when it expects few
        // rows: a run much larger than the average, or a table not yet
        // analysed. Sorting is made its last resort for these queries alone.
        self.batch("SET LOCAL enable_sort = off")?;
        let visited = self.visit_events(run, exclude_prefix, filter, skip, visit);
        let reset = self.batch("SET LOCAL enable_sort = on");
        visited.and(reset)
    }

    fn events_count_where(
        &self,
        run: &str,
        exclude_prefix: Option<&str>,
        filter: &EventPred,
    ) -> Result<u64> {
        // All of a run's events, or all but the server's own: counted as
        // they were stored (`event_totals`, kept by a trigger: migration 17).
        if let Some(exclude_system) = kept_count_answers(exclude_prefix, filter) {
            let counts = match self.row(
                "SELECT total, system FROM event_totals WHERE run_id = $1",
                &[&run],
            )? {
                Some(r) => Some((at(&r, 0)?, at(&r, 1)?)),
                None => None,
            };
            return Ok(kept_count(counts, exclude_system));
        }
        let mut f = RunSql::after(Dialect::Postgres, 2);
        let sql = format!(
            "SELECT COUNT(*) FROM events WHERE run_id = $1 \
             AND ($2::text IS NULL OR left(message, char_length($2)) <> $2) AND {}",
            f.event_pred(filter)
        );
        let extra = pg_args(f.args);
        let mut args: Vec<Param<'_>> = vec![&run, &exclude_prefix];
        args.extend(extra.iter().map(|a| &**a as Param<'_>));
        let rows = if *filter == EventPred::True {
            self.rows(&sql, &args)?
        } else {
            self.rows_once(&sql, &args)?
        };
        let n: i64 = match rows.first() {
            Some(r) => at(r, 0)?,
            None => 0,
        };
        Ok(n.max(0) as u64)
    }

    fn events_after(
        &self,
        run: &str,
        after_seq: i64,
        visit: &mut dyn FnMut(i64, i64, &str),
    ) -> Result<()> {
        for r in self.rows(
            "SELECT seq, ts, message FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq",
            &[&run, &after_seq],
        )? {
            let message: &str = at(&r, 2)?;
            visit(at(&r, 0)?, at(&r, 1)?, message);
        }
        Ok(())
    }

    fn series_id(&self, run: &str, name: &str) -> Result<Option<i64>> {
        self.value(
            "SELECT id FROM metric_series WHERE run_id = $1 AND name = $2",
            &[&run, &name],
        )
    }

    fn series_of(&self, run: &str) -> Result<Vec<SeriesRow>> {
        self.rows(
            "SELECT name, count, vmin, vmax, last, last_step FROM metric_series
             WHERE run_id = $1 ORDER BY name",
            &[&run],
        )?
        .iter()
        .map(|r| {
            Ok(SeriesRow {
                name: at(r, 0)?,
                count: at(r, 1)?,
                min: at(r, 2)?,
                max: at(r, 3)?,
                last: at(r, 4)?,
                last_step: at(r, 5)?,
            })
        })
        .collect()
    }

    fn chunks(&self, series: i64, axis: Axis, blocks: bool) -> Result<Vec<ChunkInfo>> {
        let (lo, hi) = axis_columns(axis);
        let sql = format!(
            "SELECT id, count, {lo}::float8, {hi}::float8, {} FROM metric_chunks
             WHERE series_id = $1 ORDER BY id",
            if blocks { "blocks" } else { "''::bytea" }
        );
        self.rows(&sql, &[&series])?
            .iter()
            .map(|r| {
                Ok(ChunkInfo {
                    id: at(r, 0)?,
                    count: at(r, 1)?,
                    xmin: at(r, 2)?,
                    xmax: at(r, 3)?,
                    blocks: at(r, 4)?,
                })
            })
            .collect()
    }

    fn chunks_overlapping(&self, series: i64, axis: Axis, min: f64, max: f64) -> Result<Vec<i64>> {
        let (lo, hi) = axis_columns(axis);
        let sql = format!(
            "SELECT id FROM metric_chunks WHERE series_id = $1
             AND {hi}::float8 >= $2 AND {lo}::float8 <= $3 ORDER BY id"
        );
        self.column(&sql, &[&series, &min, &max])
    }

    fn chunk_points(&self, chunk: i64) -> Result<Vec<u8>> {
        self.value(
            "SELECT points FROM metric_points WHERE chunk_id = $1",
            &[&chunk],
        )?
        .ok_or_else(|| StorageError(format!("metric chunk {chunk} has no points")))
    }

    fn series_newest_ts(&self, series: i64) -> Result<Option<i64>> {
        Ok(self
            .value::<Option<i64>>(
                "SELECT max(ts_max) FROM metric_chunks WHERE series_id = $1",
                &[&series],
            )?
            .flatten())
    }

    fn chunks_since(&self, series: i64, ts: i64) -> Result<Vec<ChunkStats>> {
        self.rows(
            "SELECT id, count, ts_min, vmin, vmax, vsum FROM metric_chunks
             WHERE series_id = $1 AND ts_max >= $2 ORDER BY id",
            &[&series, &ts],
        )?
        .iter()
        .map(|r| {
            Ok(ChunkStats {
                id: at(r, 0)?,
                count: at(r, 1)?,
                ts_min: at(r, 2)?,
                vmin: at(r, 3)?,
                vmax: at(r, 4)?,
                vsum: at(r, 5)?,
            })
        })
        .collect()
    }

    fn artifact_get(&self, id: &str) -> Result<Option<ArtifactRow>> {
        let sql = format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts a WHERE a.id = $1");
        self.row(&sql, &[&id])?
            .as_ref()
            .map(artifact_row)
            .transpose()
    }

    fn artifact_list(&self) -> Result<Vec<ArtifactRow>> {
        let sql = format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts a ORDER BY a.created");
        self.rows(&sql, &[])?.iter().map(artifact_row).collect()
    }

    fn artifacts_of(
        &self,
        run: &str,
        name: Option<&str>,
        category: Option<&str>,
    ) -> Result<Vec<(ArtifactRow, String)>> {
        let sql = format!(
            "SELECT {ARTIFACT_COLUMNS}, ra.category FROM artifacts a
             JOIN run_artifacts ra ON ra.artifact_id = a.id
             WHERE ra.run_id = $1 AND ($2::text IS NULL OR a.name = $2)
             AND ($3::text IS NULL OR ra.category = $3) ORDER BY a.created"
        );
        self.rows(&sql, &[&run, &name, &category])?
            .iter()
            .map(|r| Ok((artifact_row(r)?, get(r, "category")?)))
            .collect()
    }

    fn artifact_runs(&self, artifact: &str) -> Result<Vec<String>> {
        self.column(
            "SELECT run_id FROM run_artifacts WHERE artifact_id = $1",
            &[&artifact],
        )
    }

    fn artifact_category(&self, run: &str, artifact: &str) -> Result<Option<String>> {
        self.value(
            "SELECT category FROM run_artifacts WHERE run_id = $1 AND artifact_id = $2",
            &[&run, &artifact],
        )
    }

    fn series_some(
        &self,
        run: &str,
        names: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<SeriesRow>> {
        let rows = match names {
            Some(names) => {
                let names: Vec<String> = names.to_vec();
                self.rows(
                    "SELECT name, count, vmin, vmax, last, last_step FROM metric_series
                     WHERE run_id = $1 AND name = ANY($2) ORDER BY name",
                    &[&run, &names],
                )?
            }
            None => {
                let limit = limit.min(i64::MAX as usize) as i64;
                self.rows(
                    "SELECT name, count, vmin, vmax, last, last_step FROM metric_series
                     WHERE run_id = $1 ORDER BY name LIMIT $2",
                    &[&run, &limit],
                )?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(SeriesRow {
                    name: at(r, 0)?,
                    count: at(r, 1)?,
                    min: at(r, 2)?,
                    max: at(r, 3)?,
                    last: at(r, 4)?,
                    last_step: at(r, 5)?,
                })
            })
            .collect()
    }

    fn series_named(&self, name: &str) -> Result<Vec<(String, SeriesRow)>> {
        self.rows(
            "SELECT run_id, name, count, vmin, vmax, last, last_step FROM metric_series
             WHERE name = $1",
            &[&name],
        )?
        .iter()
        .map(|r| {
            Ok((
                at(r, 0)?,
                SeriesRow {
                    name: at(r, 1)?,
                    count: at(r, 2)?,
                    min: at(r, 3)?,
                    max: at(r, 4)?,
                    last: at(r, 5)?,
                    last_step: at(r, 6)?,
                },
            ))
        })
        .collect()
    }

    fn series_count(&self, run: &str) -> Result<u64> {
        let n: Option<i64> = self.value(
            "SELECT COUNT(*) FROM metric_series WHERE run_id = $1",
            &[&run],
        )?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    fn series_points(&self, series: i64) -> Result<i64> {
        let n: Option<i64> =
            self.value("SELECT count FROM metric_series WHERE id = $1", &[&series])?;
        Ok(n.unwrap_or(0))
    }

    fn series_max_span(&self, series: i64) -> Result<i64> {
        let n: Option<Option<i64>> = self.value(
            "SELECT max(ts_max - ts_min) FROM metric_chunks WHERE series_id = $1",
            &[&series],
        )?;
        Ok(n.flatten().unwrap_or(0).max(0))
    }

    fn chunks_ts_between(&self, series: i64, lo: i64, hi: i64, max_span: i64) -> Result<Vec<i64>> {
        // A chunk holding a point in [lo, hi) has ts_max >= lo and
        // ts_max - max_span <= ts_min < hi: a range of the
        // (series_id, ts_max) index.
        let upper = hi.saturating_add(max_span.max(0));
        self.column(
            "SELECT id FROM metric_chunks
             WHERE series_id = $1 AND ts_max >= $2 AND ts_max < $3 AND ts_min < $4
             ORDER BY ts_max",
            &[&series, &lo, &upper, &hi],
        )
    }

    fn alert_window(&self, run: &str, alert: &str) -> Result<Option<String>> {
        self.value(
            "SELECT state FROM alert_windows WHERE run_id = $1 AND alert_id = $2",
            &[&run, &alert],
        )
    }

    fn tokens(&self, name: Option<&str>) -> Result<Vec<TokenRow>> {
        self.rows(
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens
                 WHERE $1::text IS NULL OR name = $1 ORDER BY created, id"
            ),
            &[&name],
        )?
        .iter()
        .map(token_row)
        .collect()
    }

    fn tokens_live(&self, name: &str, now: i64) -> Result<u64> {
        let n: Option<i64> = self.value(
            "SELECT COUNT(*) FROM tokens WHERE name = $1 AND exp > $2",
            &[&name, &now],
        )?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    fn tag_list(&self) -> Result<Vec<TagRow>> {
        self.rows("SELECT * FROM tags ORDER BY created, name", &[])?
            .iter()
            .map(tag_row)
            .collect()
    }

    fn tag_get(&self, id: &str) -> Result<Option<TagRow>> {
        self.row("SELECT * FROM tags WHERE id = $1", &[&id])?
            .as_ref()
            .map(tag_row)
            .transpose()
    }

    fn tag_by_name(&self, name: &str) -> Result<Option<String>> {
        self.value("SELECT id FROM tags WHERE name = $1", &[&name])
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        self.row(
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1"),
            &[&hash],
        )?
        .as_ref()
        .map(token_row)
        .transpose()
    }

    fn user_get(&self, name: &str) -> Result<Option<UserRow>> {
        self.row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"),
            &[&name],
        )?
        .as_ref()
        .map(user_row)
        .transpose()
    }

    fn users(&self) -> Result<Vec<UserRow>> {
        self.rows(
            &format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"),
            &[],
        )?
        .iter()
        .map(user_row)
        .collect()
    }

    fn user_profile(&self, name: &str) -> Result<Option<String>> {
        self.value("SELECT doc FROM user_profiles WHERE name = $1", &[&name])
    }

    fn tenant_get(&self, name: &str) -> Result<Option<TenantRow>> {
        self.row(
            "SELECT name, doc, created FROM tenants WHERE name = $1",
            &[&name],
        )?
        .as_ref()
        .map(tenant_row)
        .transpose()
    }

    fn tenants(&self) -> Result<Vec<TenantRow>> {
        self.rows("SELECT name, doc, created FROM tenants ORDER BY name", &[])?
            .iter()
            .map(tenant_row)
            .collect()
    }

    fn audit(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRow>> {
        let limit = limit.min(i64::MAX as usize) as i64;
        self.rows(
            "SELECT seq, ts, actor, action, target, detail, ip FROM audit
             WHERE $1::bigint IS NULL OR seq < $1 ORDER BY seq DESC LIMIT $2",
            &[&before, &limit],
        )?
        .iter()
        .map(|r| {
            Ok(AuditRow {
                seq: at(r, 0)?,
                ts: at(r, 1)?,
                actor: at(r, 2)?,
                action: at(r, 3)?,
                target: at(r, 4)?,
                detail: at(r, 5)?,
                ip: at(r, 6)?,
            })
        })
        .collect()
    }

    fn folder_views(&self, user: &str) -> Result<Vec<(String, String)>> {
        self.rows(
            "SELECT folder_id, doc FROM folder_views WHERE owner = $1",
            &[&user],
        )?
        .iter()
        .map(|r| Ok((at(r, 0)?, at(r, 1)?)))
        .collect()
    }

    fn signin_failures(&self, key: &str) -> Result<Option<(i64, i64)>> {
        self.row(
            "SELECT count, since FROM signin_failures WHERE key = $1",
            &[&key],
        )?
        .map(|r| Ok((at(&r, 0)?, at(&r, 1)?)))
        .transpose()
    }

    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.value("SELECT value FROM settings WHERE key = $1", &[&key])
    }

    fn idempotency_get(&self, scope: &str, key: &str) -> Result<Option<Recorded>> {
        self.row(
            "SELECT status, body FROM idempotency WHERE scope = $1 AND key = $2",
            &[&scope, &key],
        )?
        .map(|r| {
            Ok(Recorded {
                status: at::<i32>(&r, 0)? as u16,
                body: at(&r, 1)?,
            })
        })
        .transpose()
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
        super::grids::get(self, id)
    }
    fn grid_list(&self) -> Result<Vec<GridRow>> {
        super::grids::list(self)
    }
    fn grid_metrics(&self, run: &str) -> Result<Vec<GridMetricRow>> {
        super::grids::metrics(self, run)
    }
    fn grid_value(&self, run: &str, metric: &str, step: i64) -> Result<Option<GridValueRow>> {
        super::grids::value(self, run, metric, step)
    }
    fn grid_steps(&self, run: &str, metric: &str) -> Result<Vec<GridValueRow>> {
        super::grids::steps(self, run, metric)
    }
}

impl WriteTx for Tx<'_> {
    fn run_insert(&self, r: &RunRow) -> Result<()> {
        self.unscoped("a run")?;
        self.exec(
            "INSERT INTO runs (id, name, folder, status, description, tags, metadata, system, created,
             started, endtime, modified, ttl, heartbeat_timeout, notifications, visibility, owner,
             last_seen, abort_requested, abort_reason, starred)
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21)",
            &[
                &r.id,
                &r.name,
                &r.folder,
                &r.status,
                &r.description,
                &r.tags,
                &r.metadata,
                &r.system,
                &r.created,
                &r.started,
                &r.endtime,
                &r.modified,
                &r.ttl,
                &r.heartbeat_timeout,
                &r.notifications,
                &r.visibility,
                &r.user,
                &r.last_seen,
                &r.abort_requested,
                &r.abort_reason,
                &r.starred,
            ],
        )?;
        Ok(())
    }

    fn run_update(&self, id: &str, p: &RunPatch) -> Result<()> {
        self.in_scope(id)?;
        self.update("runs", id, pg_cells(p.columns()))
    }

    fn run_delete(&self, id: &str) -> Result<()> {
        self.unscoped("a run")?;
        for sql in [
            "DELETE FROM metric_points WHERE chunk_id IN (SELECT c.id FROM metric_chunks c
             JOIN metric_series s ON s.id = c.series_id WHERE s.run_id = $1)",
            "DELETE FROM metric_chunks WHERE series_id IN (SELECT id FROM metric_series WHERE run_id = $1)",
            "DELETE FROM metric_series WHERE run_id = $1",
            "DELETE FROM events WHERE run_id = $1",
            "DELETE FROM event_totals WHERE run_id = $1",
            "DELETE FROM run_alerts WHERE run_id = $1",
            "DELETE FROM alert_acks WHERE run_id = $1",
            "DELETE FROM alert_windows WHERE run_id = $1",
            "DELETE FROM run_artifacts WHERE run_id = $1",
            "DELETE FROM grid_values WHERE run_id = $1",
            "DELETE FROM run_grids WHERE run_id = $1",
            "DELETE FROM runs WHERE id = $1",
        ] {
            self.exec(sql, &[&id])?;
        }
        Ok(())
    }

    fn folder_insert(&self, id: &str, path: &str, now: i64) -> Result<()> {
        self.unscoped("folders")?;
        self.exec(
            "INSERT INTO folders (id, path, created, modified) VALUES ($1, $2, $3, $3)",
            &[&id, &path, &now],
        )?;
        Ok(())
    }

    fn folder_set_owner(&self, id: &str, owner: &str) -> Result<()> {
        self.unscoped("folders")?;
        self.exec(
            "UPDATE folders SET owner = $2 WHERE id = $1",
            &[&id, &owner],
        )?;
        Ok(())
    }

    fn folder_update(&self, id: &str, p: &FolderPatch) -> Result<()> {
        self.unscoped("folders")?;
        self.update("folders", id, pg_cells(p.columns()))
    }

    fn folder_delete(&self, id: &str) -> Result<()> {
        self.unscoped("folders")?;
        self.exec("DELETE FROM folders WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn alert_insert(&self, a: &AlertRow) -> Result<()> {
        self.unscoped("alerts")?;
        self.exec(
            "INSERT INTO alerts (id, name, source, description, notification, enabled, abort, alert,
             created, owner, options) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
            &[
                &a.id,
                &a.name,
                &a.source,
                &a.description,
                &a.notification,
                &a.enabled,
                &a.abort,
                &a.alert,
                &a.created,
                &a.user,
                &a.options,
            ],
        )?;
        Ok(())
    }

    fn alert_update(&self, id: &str, p: &AlertPatch) -> Result<()> {
        self.unscoped("alerts")?;
        self.update("alerts", id, pg_cells(p.columns()))
    }

    fn alert_delete(&self, id: &str) -> Result<()> {
        self.unscoped("alerts")?;
        self.exec("DELETE FROM run_alerts WHERE alert_id = $1", &[&id])?;
        self.exec("DELETE FROM alert_acks WHERE alert_id = $1", &[&id])?;
        self.exec("DELETE FROM alert_windows WHERE alert_id = $1", &[&id])?;
        self.exec("DELETE FROM alerts WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn attach_alert(&self, run: &str, alert: &str) -> Result<()> {
        self.in_scope(run)?;
        self.exec(
            "INSERT INTO run_alerts (run_id, alert_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&run, &alert],
        )?;
        Ok(())
    }

    fn detach_alerts_except(&self, run: &str, keep: &[String]) -> Result<()> {
        self.in_scope(run)?;
        self.exec(
            "DELETE FROM run_alerts WHERE run_id = $1 AND alert_id <> ALL($2::text[])",
            &[&run, &keep],
        )?;
        self.exec(
            "DELETE FROM alert_acks WHERE run_id = $1 AND alert_id <> ALL($2::text[])",
            &[&run, &keep],
        )?;
        Ok(())
    }

    fn set_alert_state(&self, run: &str, alert: &str, status: &str, at: i64) -> Result<()> {
        self.in_scope(run)?;
        self.exec(
            "UPDATE run_alerts SET status = $3, changed = $4 WHERE run_id = $1 AND alert_id = $2",
            &[&run, &alert, &status, &at],
        )?;
        self.exec(
            "DELETE FROM alert_acks WHERE run_id = $1 AND alert_id = $2",
            &[&run, &alert],
        )?;
        Ok(())
    }

    fn acknowledge_alert(&self, run: &str, alert: &str, by: &str, at: i64) -> Result<()> {
        self.in_scope(run)?;
        self.exec(
            "INSERT INTO alert_acks (run_id, alert_id, by_user, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (run_id, alert_id) DO UPDATE SET by_user = $3, at = $4",
            &[&run, &alert, &by, &at],
        )?;
        Ok(())
    }

    fn event_insert(&self, run: &str, ts: i64, level: &str, message: &str) -> Result<()> {
        self.in_scope(run)?;
        self.exec(
            "INSERT INTO events (run_id, ts, log_level, message) VALUES ($1, $2, $3, $4)",
            &[&run, &ts, &level, &message],
        )?;
        Ok(())
    }

    fn events_insert(&self, run: &str, rows: &[(i64, String, String)]) -> Result<()> {
        self.in_scope(run)?;
        match rows {
            [] => return Ok(()),
            [(ts, level, message)] => return self.event_insert(run, *ts, level, message),
            _ => {}
        }
        // One statement for the batch: the columns as arrays, unnested in
        // their order (sequence numbers follow it).
        let ts: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let levels: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        let messages: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
        self.exec(
            "INSERT INTO events (run_id, ts, log_level, message)
             SELECT $1, e.ts, e.level, e.message
             FROM unnest($2::bigint[], $3::text[], $4::text[]) WITH ORDINALITY
                  AS e(ts, level, message, n)
             ORDER BY e.n",
            &[&run, &ts, &levels, &messages],
        )?;
        Ok(())
    }

    fn series_ensure(&self, run: &str, name: &str) -> Result<i64> {
        self.in_scope(run)?;
        if let Some(id) = self.series_id(run, name)? {
            return Ok(id);
        }
        self.value(
            "INSERT INTO metric_series (run_id, name) VALUES ($1, $2) RETURNING id",
            &[&run, &name],
        )?
        .ok_or_else(|| StorageError("the new metric series has no id".into()))
    }

    fn chunk_insert(&self, series: i64, c: &NewChunk<'_>) -> Result<()> {
        // Both rows in one statement: one round trip per chunk.
        self.exec(
            "WITH c AS (INSERT INTO metric_chunks (series_id, count, step_min, step_max, time_min,
               time_max, ts_min, ts_max, vmin, vmax, vsum, blocks)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) RETURNING id)
             INSERT INTO metric_points (chunk_id, points) SELECT id, $13 FROM c",
            &[
                &series, &c.count, &c.step.0, &c.step.1, &c.time.0, &c.time.1, &c.ts.0, &c.ts.1,
                &c.vmin, &c.vmax, &c.vsum, &c.blocks, &c.points,
            ],
        )?;
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
        // LEAST and GREATEST skip NULLs: an all-NaN batch leaves the range.
        self.exec(
            "UPDATE metric_series SET count = count + $2,
               vmin = LEAST(vmin, $3), vmax = GREATEST(vmax, $4),
               last = $5, last_step = $6 WHERE id = $1",
            &[
                &series,
                &count,
                &min,
                &max,
                &last.and_then(|l| l.0),
                &last.map(|l| l.1),
            ],
        )?;
        Ok(())
    }

    fn artifact_insert(&self, a: &ArtifactRow) -> Result<()> {
        self.unscoped("artifacts")?;
        self.exec(
            "INSERT INTO artifacts (id, name, original_path, size, mime_type, checksum, metadata,
             created, uploaded, owner) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
            &[
                &a.id,
                &a.name,
                &a.original_path,
                &(a.size as i64),
                &a.mime_type,
                &a.checksum,
                &a.metadata,
                &a.created,
                &a.uploaded,
                &a.user,
            ],
        )?;
        Ok(())
    }

    fn artifact_set_uploaded(&self, id: &str, uploaded: bool) -> Result<()> {
        self.unscoped("artifacts")?;
        self.exec(
            "UPDATE artifacts SET uploaded = $2 WHERE id = $1",
            &[&id, &uploaded],
        )?;
        Ok(())
    }

    fn artifact_set_size(&self, id: &str, size: u64) -> Result<()> {
        self.unscoped("artifacts")?;
        self.exec(
            "UPDATE artifacts SET size = $2 WHERE id = $1",
            &[&id, &(size as i64)],
        )?;
        Ok(())
    }

    fn artifact_attach(&self, run: &str, artifact: &str, category: &str) -> Result<()> {
        self.unscoped("artifacts")?;
        self.exec(
            "INSERT INTO run_artifacts (run_id, artifact_id, category) VALUES ($1, $2, $3)
             ON CONFLICT (run_id, artifact_id) DO UPDATE SET category = excluded.category",
            &[&run, &artifact, &category],
        )?;
        Ok(())
    }

    fn artifact_delete(&self, id: &str) -> Result<()> {
        self.unscoped("artifacts")?;
        self.exec("DELETE FROM run_artifacts WHERE artifact_id = $1", &[&id])?;
        self.exec("DELETE FROM artifacts WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn tag_insert(&self, t: &TagRow) -> Result<bool> {
        self.unscoped("tags")?;
        let n = self.exec(
            "INSERT INTO tags (id, name, colour, description, created, owner)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
            &[
                &t.id,
                &t.name,
                &t.colour,
                &t.description,
                &t.created,
                &t.user,
            ],
        )?;
        Ok(n > 0)
    }

    fn tag_update(&self, t: &TagRow) -> Result<bool> {
        self.unscoped("tags")?;
        let n = self.exec(
            "UPDATE tags SET name = $2, colour = $3, description = $4 WHERE id = $1
             AND NOT EXISTS (SELECT 1 FROM tags o WHERE o.name = $2 AND o.id <> $1)",
            &[&t.id, &t.name, &t.colour, &t.description],
        )?;
        Ok(n > 0)
    }

    fn tag_delete(&self, id: &str) -> Result<()> {
        self.unscoped("tags")?;
        self.exec("DELETE FROM tags WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn token_insert(&self, t: &TokenRow) -> Result<()> {
        self.unscoped("tokens")?;
        self.exec(
            "INSERT INTO tokens (id, name, hash, exp, created, label, read_only, csrf)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &t.id,
                &t.name,
                &t.hash,
                &t.exp,
                &t.created,
                &t.label,
                &t.read_only,
                &t.csrf,
            ],
        )?;
        Ok(())
    }

    fn token_delete(&self, id: &str) -> Result<bool> {
        self.unscoped("tokens")?;
        Ok(self.exec("DELETE FROM tokens WHERE id = $1", &[&id])? > 0)
    }

    fn alert_window_put(&self, run: &str, alert: &str, state: &str) -> Result<()> {
        self.in_scope(run)?;
        self.exec(
            "INSERT INTO alert_windows (run_id, alert_id, state) VALUES ($1, $2, $3)
             ON CONFLICT (run_id, alert_id) DO UPDATE SET state = excluded.state",
            &[&run, &alert, &state],
        )?;
        Ok(())
    }

    fn token_touch(&self, id: &str, at: i64) -> Result<()> {
        self.unscoped("tokens")?;
        self.exec(
            "UPDATE tokens SET last_used = $2 WHERE id = $1",
            &[&id, &at],
        )?;
        Ok(())
    }

    fn user_put(&self, u: &UserRow) -> Result<()> {
        self.unscoped("users")?;
        self.exec(
            &format!(
                "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (name) DO UPDATE SET email = excluded.email, grp = excluded.grp,
                 admin = excluded.admin, disabled = excluded.disabled,
                 password = excluded.password"
            ),
            &[
                &u.name,
                &u.email,
                &u.group,
                &u.admin,
                &u.disabled,
                &u.password,
                &u.created,
            ],
        )?;
        Ok(())
    }

    fn user_profile_put(&self, name: &str, doc: &str) -> Result<()> {
        self.unscoped("users")?;
        self.exec(
            "INSERT INTO user_profiles (name, doc) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
            &[&name, &doc],
        )?;
        Ok(())
    }

    fn tenant_put(&self, t: &TenantRow) -> Result<()> {
        self.unscoped("tenants")?;
        self.exec(
            "INSERT INTO tenants (name, doc, created) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
            &[&t.name, &t.doc, &t.created],
        )?;
        Ok(())
    }

    fn tenant_delete(&self, name: &str) -> Result<bool> {
        self.unscoped("tenants")?;
        Ok(self.exec("DELETE FROM tenants WHERE name = $1", &[&name])? > 0)
    }

    fn audit_insert(&self, a: &AuditRow) -> Result<()> {
        self.unscoped("the audit trail")?;
        self.exec(
            "INSERT INTO audit (ts, actor, action, target, detail, ip)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&a.ts, &a.actor, &a.action, &a.target, &a.detail, &a.ip],
        )?;
        Ok(())
    }

    fn folder_view_put(&self, folder: &str, user: &str, doc: &str) -> Result<()> {
        self.unscoped("folders")?;
        self.exec(
            "INSERT INTO folder_views (folder_id, owner, doc) VALUES ($1, $2, $3)
             ON CONFLICT (folder_id, owner) DO UPDATE SET doc = excluded.doc",
            &[&folder, &user, &doc],
        )?;
        Ok(())
    }

    fn folder_view_delete(&self, folder: &str, user: Option<&str>) -> Result<()> {
        self.unscoped("folders")?;
        self.exec(
            "DELETE FROM folder_views WHERE folder_id = $1 AND ($2::TEXT IS NULL OR owner = $2)",
            &[&folder, &user],
        )?;
        Ok(())
    }

    fn signin_failures_put(&self, key: &str, count: i64, since: i64) -> Result<()> {
        self.unscoped("sign-in failures")?;
        self.exec(
            "INSERT INTO signin_failures (key, count, since) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET count = excluded.count, since = excluded.since",
            &[&key, &count, &since],
        )?;
        Ok(())
    }

    fn signin_failures_delete(&self, key: &str) -> Result<()> {
        self.unscoped("sign-in failures")?;
        self.exec("DELETE FROM signin_failures WHERE key = $1", &[&key])?;
        Ok(())
    }

    fn signin_failures_purge(&self, before: i64) -> Result<usize> {
        self.unscoped("sign-in failures")?;
        Ok(self.exec("DELETE FROM signin_failures WHERE since < $1", &[&before])? as usize)
    }

    fn setting_put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.unscoped("settings")?;
        self.exec(
            "INSERT INTO settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn idempotency_put(&self, scope: &str, key: &str, r: &Recorded, at: i64) -> Result<()> {
        self.idem_in_scope(scope, key)?;
        self.exec(
            "INSERT INTO idempotency (scope, key, status, body, created) VALUES ($1, $2, $3, $4, $5)",
            &[&scope, &key, &i32::from(r.status), &r.body, &at],
        )?;
        Ok(())
    }

    fn idempotency_purge(&self, before: i64) -> Result<usize> {
        self.unscoped("idempotency records")?;
        Ok(self.exec("DELETE FROM idempotency WHERE created < $1", &[&before])? as usize)
    }

    fn notify_channel_insert(&self, c: &ChannelRow) -> Result<()> {
        self.unscoped("notification channels")?;
        self.channel_insert(c)
    }

    fn notify_channel_delete(&self, id: &str) -> Result<bool> {
        self.unscoped("notification channels")?;
        self.channel_delete(id)
    }

    fn outbox_insert(&self, o: &OutboxRow) -> Result<()> {
        self.in_scope(&o.run_id)?;
        self.outbox_add(o)
    }

    fn outbox_claim(&self, now: i64, until: i64, limit: usize) -> Result<Vec<OutboxRow>> {
        self.unscoped("the outbox")?;
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
        self.unscoped("the outbox")?;
        self.finish(id, status, attempts, next_at, error, sent_at)
    }

    fn outbox_purge(&self, before: i64) -> Result<usize> {
        self.unscoped("the outbox")?;
        self.purge(before)
    }

    fn grid_insert(&self, g: &GridRow) -> Result<()> {
        self.unscoped("grids")?;
        super::grids::insert(self, g)
    }
    fn grid_delete(&self, id: &str) -> Result<()> {
        self.unscoped("grids")?;
        super::grids::delete(self, id)
    }
    fn grid_attach(&self, run: &str, metric: &str, grid: &str) -> Result<()> {
        self.in_scope(run)?;
        super::grids::attach(self, run, metric, grid)
    }
    fn grid_value_put(&self, run: &str, metric: &str, v: &GridValueRow) -> Result<()> {
        self.in_scope(run)?;
        super::grids::value_put(self, run, metric, v)
    }
}
