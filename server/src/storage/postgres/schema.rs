//! The schema, as numbered migrations applied once each.
//!
//! A replica applies the missing ones at start while it holds a session
//! advisory lock ([`super::MIGRATE_LOCK`]); others starting at the same
//! moment wait for it, then find nothing left to do. Each migration and
//! its row in `schema_migrations` commit together. Migrations are
//! append-only: never edit one that has shipped.
//!
//! Layout follows the SQLite store (`storage/sqlite/mod.rs`) with
//! PostgreSQL types. `metadata` and `system` stay text (the documents the
//! clients sent, byte for byte) with a generated `jsonb` twin, so a run
//! scan extracts values with `#>` without parsing each document again.
//! Metric points live in chunks (`metric_chunks` holds ranges, statistics
//! and block summaries; `metric_points` the packed points), never a row
//! per point. `user` is a reserved word here, so the column is `owner`.

use deadpool_postgres::Object;

/// `(version, SQL)`, in order.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
    exp BIGINT NOT NULL, created BIGINT NOT NULL);
CREATE TABLE folders (
    id TEXT PRIMARY KEY, path TEXT NOT NULL UNIQUE, description TEXT,
    tags TEXT NOT NULL DEFAULT '[]', metadata TEXT NOT NULL DEFAULT '{}',
    created BIGINT NOT NULL, modified BIGINT NOT NULL, starred BOOLEAN NOT NULL DEFAULT false);
CREATE TABLE runs (
    seq BIGSERIAL UNIQUE,
    id TEXT PRIMARY KEY, name TEXT NOT NULL, folder TEXT NOT NULL, status TEXT NOT NULL,
    description TEXT, tags TEXT NOT NULL DEFAULT '[]', metadata TEXT NOT NULL DEFAULT '{}',
    system TEXT NOT NULL DEFAULT '{}',
    metadata_j JSONB GENERATED ALWAYS AS (metadata::jsonb) STORED,
    system_j JSONB GENERATED ALWAYS AS (system::jsonb) STORED,
    created BIGINT NOT NULL, started BIGINT,
    endtime BIGINT, modified BIGINT NOT NULL, ttl BIGINT, heartbeat_timeout DOUBLE PRECISION,
    notifications TEXT NOT NULL DEFAULT '{"state":"none"}',
    visibility TEXT NOT NULL DEFAULT '{"tenant":false,"public":false,"users":[]}',
    owner TEXT NOT NULL DEFAULT '', last_seen BIGINT NOT NULL,
    abort_requested BOOLEAN NOT NULL DEFAULT false, abort_reason TEXT,
    starred BOOLEAN NOT NULL DEFAULT false);
CREATE INDEX runs_status ON runs(status);
CREATE INDEX runs_folder ON runs(folder);
CREATE TABLE alerts (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, source TEXT NOT NULL, description TEXT,
    notification TEXT NOT NULL DEFAULT 'none', enabled BOOLEAN NOT NULL DEFAULT true,
    abort BOOLEAN NOT NULL DEFAULT false, alert TEXT, created BIGINT NOT NULL,
    owner TEXT NOT NULL DEFAULT '');
CREATE INDEX alerts_name ON alerts(name);
CREATE TABLE run_alerts (
    run_id TEXT NOT NULL, alert_id TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'ok',
    changed BIGINT, PRIMARY KEY (run_id, alert_id));
CREATE INDEX run_alerts_alert ON run_alerts(alert_id);
CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL, ts BIGINT NOT NULL,
    log_level TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX events_run ON events(run_id, ts);
CREATE TABLE metric_series (
    id BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL, name TEXT NOT NULL,
    count BIGINT NOT NULL DEFAULT 0, vmin DOUBLE PRECISION, vmax DOUBLE PRECISION,
    last DOUBLE PRECISION, last_step BIGINT,
    UNIQUE (run_id, name));
CREATE TABLE metric_chunks (
    id BIGSERIAL PRIMARY KEY, series_id BIGINT NOT NULL, count BIGINT NOT NULL,
    step_min BIGINT NOT NULL, step_max BIGINT NOT NULL, time_min DOUBLE PRECISION NOT NULL,
    time_max DOUBLE PRECISION NOT NULL, ts_min BIGINT NOT NULL, ts_max BIGINT NOT NULL,
    vmin DOUBLE PRECISION, vmax DOUBLE PRECISION, vsum DOUBLE PRECISION, blocks BYTEA NOT NULL);
CREATE INDEX metric_chunks_series ON metric_chunks(series_id, ts_max);
CREATE TABLE metric_points (chunk_id BIGINT PRIMARY KEY, points BYTEA NOT NULL);
CREATE TABLE artifacts (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, original_path TEXT NOT NULL DEFAULT '',
    size BIGINT NOT NULL, mime_type TEXT NOT NULL, checksum TEXT NOT NULL,
    metadata TEXT, created BIGINT NOT NULL, uploaded BOOLEAN NOT NULL DEFAULT false,
    owner TEXT NOT NULL DEFAULT '');
CREATE TABLE run_artifacts (
    run_id TEXT NOT NULL, artifact_id TEXT NOT NULL, category TEXT NOT NULL,
    PRIMARY KEY (run_id, artifact_id));
CREATE INDEX run_artifacts_artifact ON run_artifacts(artifact_id);
CREATE TABLE idempotency (
    scope TEXT NOT NULL, key TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL,
    created BIGINT NOT NULL, PRIMARY KEY (scope, key));
CREATE INDEX idempotency_created ON idempotency(created);
CREATE TABLE settings (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
"#,
    ),
    (
        2,
        // Packed points and block summaries are dense binary: PostgreSQL's
        // pglz compression costs CPU on every insert and saves nothing.
        // Measured with bench/server_ingest.sh (10M points, one solver):
        // 595k -> 1.1M points/s end to end.
        r#"
ALTER TABLE metric_points ALTER COLUMN points SET STORAGE EXTERNAL;
ALTER TABLE metric_chunks ALTER COLUMN blocks SET STORAGE EXTERNAL;
"#,
    ),
    (
        3,
        // Running window aggregates of metric alerts, kept between batches
        // (opaque to storage: the domain owns their format).
        r#"
CREATE TABLE alert_windows (
    run_id TEXT NOT NULL, alert_id TEXT NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (run_id, alert_id));
"#,
    ),
    (
        4,
        // Event alerts read only the events stored since they last looked.
        "CREATE INDEX events_run_seq ON events(run_id, seq);",
    ),
    (
        5,
        // Run lists sorted by a metric read that metric's series of every run.
        "CREATE INDEX metric_series_name ON metric_series(name);",
    ),
    (
        6,
        // Notification channels of users, and the outbox of deliveries
        // (written in the transaction of the change that causes them).
        r#"
CREATE TABLE notify_channels (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}', created BIGINT NOT NULL);
CREATE INDEX notify_channels_owner ON notify_channels(owner);
CREATE TABLE notify_outbox (
    id TEXT PRIMARY KEY, channel_id TEXT NOT NULL, owner TEXT NOT NULL, run_id TEXT NOT NULL,
    event TEXT NOT NULL, payload TEXT NOT NULL, created BIGINT NOT NULL, status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0, next_at BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL DEFAULT 0, last_error TEXT, sent_at BIGINT);
CREATE INDEX notify_outbox_due ON notify_outbox(status, next_at);
CREATE INDEX notify_outbox_run ON notify_outbox(run_id, created);
CREATE INDEX notify_outbox_owner ON notify_outbox(owner, created);
"#,
    ),
    (
        7,
        // Users, groups and the token lifecycle (as SQLite's migration 1):
        // every name that held a token or owns a run becomes an
        // administrator, so an upgrade locks nobody out.
        r#"
ALTER TABLE tokens ADD COLUMN label TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN read_only BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE tokens ADD COLUMN last_used BIGINT;
ALTER TABLE tokens ADD COLUMN csrf TEXT;
ALTER TABLE folders ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX tokens_name ON tokens(name);
CREATE TABLE users (
    name TEXT PRIMARY KEY, email TEXT, grp TEXT, admin BOOLEAN NOT NULL DEFAULT false,
    disabled BOOLEAN NOT NULL DEFAULT false, password TEXT, created BIGINT NOT NULL);
INSERT INTO users (name, admin, created)
    SELECT name, true, extract(epoch FROM now())::bigint FROM tokens
    UNION SELECT owner, true, extract(epoch FROM now())::bigint FROM runs WHERE owner <> ''
    ON CONFLICT DO NOTHING;
CREATE TABLE audit (
    seq BIGSERIAL PRIMARY KEY, ts BIGINT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL, ip TEXT NOT NULL);
"#,
    ),
    (
        8,
        // Grids and array metrics: one row per (run, metric, step), the
        // array encoded and compressed by the domain (opaque here).
        r#"
CREATE TABLE grids (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, doc TEXT NOT NULL, created BIGINT NOT NULL,
    owner TEXT NOT NULL DEFAULT '');
CREATE TABLE run_grids (
    run_id TEXT NOT NULL, metric TEXT NOT NULL, grid_id TEXT NOT NULL,
    PRIMARY KEY (run_id, metric));
CREATE INDEX run_grids_grid ON run_grids(grid_id);
CREATE TABLE grid_values (
    run_id TEXT NOT NULL, metric TEXT NOT NULL, step BIGINT NOT NULL,
    time DOUBLE PRECISION NOT NULL, ts BIGINT NOT NULL, count BIGINT NOT NULL,
    vmin DOUBLE PRECISION, vmax DOUBLE PRECISION, data BYTEA NOT NULL,
    PRIMARY KEY (run_id, metric, step));
ALTER TABLE grid_values ALTER COLUMN data SET STORAGE EXTERNAL;
"#,
    ),
    (
        9,
        // Tags as objects (runs keep carrying tag names).
        r#"
CREATE TABLE tags (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, colour TEXT NOT NULL,
    description TEXT, created BIGINT NOT NULL, owner TEXT NOT NULL DEFAULT '');
"#,
    ),
    (
        10,
        // Acknowledgements of alerts critical on a run (withdrawn when the
        // state changes).
        r#"
CREATE TABLE alert_acks (
    run_id TEXT NOT NULL, alert_id TEXT NOT NULL, by_user TEXT NOT NULL, at BIGINT NOT NULL,
    PRIMARY KEY (run_id, alert_id));
"#,
    ),
    (
        11,
        // Failed sign-ins per user name and per address, counted by every
        // replica together.
        r#"
CREATE TABLE signin_failures (
    key TEXT PRIMARY KEY, count BIGINT NOT NULL, since BIGINT NOT NULL);
CREATE INDEX signin_failures_since ON signin_failures(since);
-- A user's own view of a folder it asked for by path but could not see.
CREATE TABLE folder_views (
    folder_id TEXT NOT NULL, owner TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (folder_id, owner));
CREATE INDEX folder_views_owner ON folder_views(owner);
"#,
    ),
    (
        12,
        // Groups as records (Simvue's tenants) and users' Simvue profiles;
        // alert options besides the rule (auto, run_tags, delay).
        r#"
CREATE TABLE tenants (name TEXT PRIMARY KEY, doc TEXT NOT NULL, created BIGINT NOT NULL);
CREATE TABLE user_profiles (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
ALTER TABLE alerts ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
"#,
    ),
    (
        13,
        // The runs table's default order (newest first): a page of it
        // reads the newest runs, not every run.
        "CREATE INDEX runs_created ON runs(created);",
    ),
    (
        14,
        // Event pages by time then arrival: the index serves the order.
        "CREATE INDEX events_run_ts_seq ON events(run_id, ts, seq); DROP INDEX events_run;",
    ),
    (
        15,
        // Event pages of one level other than info (`log_level == error`),
        // in order: they read the matching events, not the run's. Info
        // events, most of them, are left out: ingest stays as fast.
        "CREATE INDEX events_run_level ON events(run_id, log_level, ts, seq) \
         WHERE log_level <> 'info';",
    ),
    (
        16,
        // Each run's events counted as they are stored, the server's own
        // (`[simtrack] ...`, `storage::SYSTEM_EVENT_PREFIX`) apart: a page
        // of a run's events, and `/api/stats`, read the count instead of
        // counting the run's rows.
        "CREATE TABLE event_counts (
             run_id TEXT PRIMARY KEY, total BIGINT NOT NULL, system BIGINT NOT NULL);
         INSERT INTO event_counts (run_id, total, system)
             SELECT run_id, COUNT(*), COUNT(*) FILTER (WHERE left(message, 10) = '[simtrack]')
             FROM events GROUP BY run_id;",
    ),
    (
        17,
        // The counts of migration 16 kept by the database itself: a trigger
        // on every statement that inserts events, whoever runs it. A replica
        // of a build from before migration 16, still running during a
        // rolling upgrade, stores events without counting them; the trigger
        // counts those too. The new table leaves `event_counts` to the
        // builds of migration 16, which add to it themselves (so no event is
        // counted twice); it is no longer read. Events are deleted only with
        // their run, which deletes its count (`run_delete`): a trigger on
        // deletes would double the time to delete a run of 1M events. Creating
        // the trigger first holds off inserts until the commit, so the counts
        // made below miss no event.
        "CREATE TABLE event_totals (
             run_id TEXT PRIMARY KEY, total BIGINT NOT NULL, system BIGINT NOT NULL);
         CREATE FUNCTION event_totals_add() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             INSERT INTO event_totals (run_id, total, system)
                 SELECT run_id, COUNT(*), COUNT(*) FILTER (WHERE left(message, 10) = '[simtrack]')
                 FROM added GROUP BY run_id
             ON CONFLICT (run_id) DO UPDATE
                 SET total = event_totals.total + excluded.total,
                     system = event_totals.system + excluded.system;
             RETURN NULL;
         END $$;
         CREATE TRIGGER events_counted AFTER INSERT ON events
             REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION event_totals_add();
         INSERT INTO event_totals (run_id, total, system)
             SELECT run_id, COUNT(*), COUNT(*) FILTER (WHERE left(message, 10) = '[simtrack]')
             FROM events GROUP BY run_id;",
    ),
];

/// Applies every migration the database lacks.
pub async fn migrate(client: &mut Object) -> Result<(), tokio_postgres::Error> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&super::MIGRATE_LOCK])
        .await?;
    let result = apply_missing(client).await;
    // Released even when a migration failed; the connection closing
    // would release it too.
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&super::MIGRATE_LOCK])
        .await;
    result?;
    unlock.map(|_| ())
}

async fn apply_missing(client: &mut Object) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INTEGER PRIMARY KEY, applied TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
    let done: i32 = client
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > done) {
        let t = client.transaction().await?;
        t.batch_execute(sql).await?;
        t.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        t.commit().await?;
    }
    Ok(())
}
