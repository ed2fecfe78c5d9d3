//! `simtrack migrate --data DIR --to-database URL [--to-blobs URL]`: copies
//! an embedded deployment (SQLite + blob directory) into the scale-out
//! backend, through the storage traits on both sides.
//!
//! Resumable and idempotent: each run moves in one write transaction with
//! everything recorded for it (events, metric chunks, alert states,
//! artifact attachments), and a run already in the target is skipped, so
//! an interrupted migration is finished by running it again. Folders
//! (and users' own views of them), alerts, artifact records, tokens,
//! settings, notification channels and their deliveries, grids, tags,
//! groups' (tenants') records and users' Simvue profiles are copied when
//! absent; array metrics move with their run (the target's own settings, such as its token-signing key, win). Deliveries still pending or
//! retrying are sent by the new server, once: a claim the stopped server
//! held on one is dropped, and one already in the target is not copied
//! again; finished ones keep showing their channel's last delivery.
//! Artifact bytes are copied when the target lacks them. At the end the
//! counts of both sides are printed and compared.
//!
//! Idempotency keys are not copied: clients resend within minutes, and a
//! migration is done with the server stopped.

use std::path::Path;

use crate::storage::{
    Axis, Backend, FolderPatch, NewChunk, OutboxRow, Outcome, ReadTx, Result as StoreResult,
    StateStore, StorageError, TokenRow, WriteTx,
};

/// What the migration counts on each side.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub runs: usize,
    pub folders: usize,
    pub alerts: usize,
    pub events: usize,
    pub points: i64,
    pub artifacts: usize,
    pub blobs: usize,
    pub tokens: usize,
    /// Grids, steps of array metrics, tags and groups' (tenants') records.
    pub grids: usize,
    pub arrays: usize,
    pub tags: usize,
    pub tenants: usize,
    /// Notification deliveries, and those of them not yet finished.
    pub deliveries: usize,
    pub undelivered: usize,
}

/// Every delivery in the outbox.
const ALL: usize = i64::MAX as usize;

fn unfinished(o: &OutboxRow) -> bool {
    o.status == "pending" || o.status == "retrying"
}

fn read<T>(store: &dyn StateStore, f: impl Fn(&dyn ReadTx) -> StoreResult<T>) -> Result<T, String> {
    let mut out = None;
    store
        .read(&mut |tx| {
            out = Some(f(tx)?);
            Ok(())
        })
        .map_err(|e| e.0)?;
    out.ok_or_else(|| "the read did not run".into())
}

fn write(
    store: &dyn StateStore,
    f: impl Fn(&dyn WriteTx) -> StoreResult<()>,
) -> Result<(), String> {
    store
        .write(&mut |tx| {
            f(tx)?;
            Ok(Outcome::Commit)
        })
        .map_err(|e| e.0)
}

/// Counts what `store` (and `tokens`, counted by the caller) holds.
fn count(store: &dyn StateStore, blobs: usize, tokens: usize) -> Result<Counts, String> {
    read(store, |tx| {
        let runs = tx.run_scan(&Default::default())?;
        let outbox = tx.outbox_list(None, None, ALL)?;
        let mut events = 0;
        let mut points = 0;
        let mut arrays = 0;
        for r in &runs {
            events += tx.events_count(&r.id, None)? as usize;
            points += tx.series_of(&r.id)?.iter().map(|s| s.count).sum::<i64>();
            arrays += tx
                .grid_metrics(&r.id)?
                .iter()
                .map(|m| m.steps as usize)
                .sum::<usize>();
        }
        Ok(Counts {
            runs: runs.len(),
            folders: tx.folder_list()?.len(),
            alerts: tx.alert_list()?.len(),
            events,
            points,
            artifacts: tx.artifact_list()?.len(),
            blobs,
            tokens,
            grids: tx.grid_list()?.len(),
            arrays,
            tags: tx.tag_list()?.len(),
            tenants: tx.tenants()?.len(),
            deliveries: outbox.len(),
            undelivered: outbox.iter().filter(|o| unfinished(o)).count(),
        })
    })
}

/// Copies one run and everything recorded for it, in the target's
/// transaction `to`.
fn copy_run(from: &dyn ReadTx, to: &dyn WriteTx, id: &str) -> StoreResult<()> {
    let Some(run) = from.run_get(id)? else {
        return Ok(());
    };
    to.run_insert(&run)?;
    // In batches as read: a run's events need not fit in memory at once.
    let mut batch: Vec<(i64, String, String)> = Vec::with_capacity(4096);
    let mut failed = None;
    from.events_visit(id, None, 0, &mut |e| {
        batch.push((e.ts, e.log_level, e.message));
        if batch.len() == 4096 {
            if let Err(err) = to.events_insert(id, &batch) {
                failed = Some(err);
                return false;
            }
            batch.clear();
        }
        true
    })?;
    if let Some(err) = failed {
        return Err(err);
    }
    if !batch.is_empty() {
        to.events_insert(id, &batch)?;
    }
    for s in from.series_of(id)? {
        let Some(src) = from.series_id(id, &s.name)? else {
            continue;
        };
        let dst = to.series_ensure(id, &s.name)?;
        let steps = from.chunks(src, Axis::Step, true)?;
        let times = from.chunks(src, Axis::Time, false)?;
        let stamps = from.chunks(src, Axis::Timestamp, false)?;
        let stats = from.chunks_since(src, i64::MIN)?;
        for (i, c) in steps.iter().enumerate() {
            let (Some(t), Some(ts)) = (times.get(i), stamps.get(i)) else {
                return Err(StorageError(format!(
                    "series {} of run {id}: chunk ranges disagree",
                    s.name
                )));
            };
            let st = stats.iter().find(|x| x.id == c.id);
            let points = from.chunk_points(c.id)?;
            to.chunk_insert(
                dst,
                &NewChunk {
                    count: c.count,
                    step: (c.xmin as i64, c.xmax as i64),
                    time: (t.xmin, t.xmax),
                    ts: (ts.xmin as i64, ts.xmax as i64),
                    vmin: st.and_then(|x| x.vmin),
                    vmax: st.and_then(|x| x.vmax),
                    vsum: st.and_then(|x| x.vsum),
                    blocks: &c.blocks,
                    points: &points,
                },
            )?;
        }
        to.series_extend(
            dst,
            s.count,
            s.min,
            s.max,
            s.last_step.map(|st| (s.last, st)),
        )?;
    }
    for a in from.attached(Some(id))? {
        to.attach_alert(id, &a.alert.id)?;
        if a.status != "ok" {
            to.set_alert_state(id, &a.alert.id, &a.status, run.modified)?;
        }
        if let Some(k) = &a.acknowledged {
            to.acknowledge_alert(id, &a.alert.id, &k.by, k.at)?;
        }
    }
    for (art, category) in from.artifacts_of(id, None, None)? {
        to.artifact_attach(id, &art.id, &category)?;
    }
    // Array metrics: the grid each is on (copied before the runs), then
    // every step with its data.
    for m in from.grid_metrics(id)? {
        to.grid_attach(id, &m.metric, &m.grid)?;
        for s in from.grid_steps(id, &m.metric)? {
            let v = from.grid_value(id, &m.metric, s.step)?.ok_or_else(|| {
                StorageError(format!(
                    "array metric {} of run {id}: step {} vanished",
                    m.metric, s.step
                ))
            })?;
            to.grid_value_put(id, &m.metric, &v)?;
        }
    }
    Ok(())
}

/// Copies `from` (an embedded data directory's stores, and its tokens and
/// settings as read by the caller) into `to`; prints progress and counts.
pub async fn run(
    from: &Backend,
    tokens: Vec<TokenRow>,
    settings: Vec<(String, Vec<u8>)>,
    to: &Backend,
) -> Result<(), String> {
    let src = from.state.clone();
    let dst = to.state.clone();
    let token_hashes: Vec<String> = tokens.iter().map(|t| t.hash.clone()).collect();
    let blocking = |f: Box<dyn FnOnce() -> Result<(), String> + Send>| async move {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| e.to_string())?
    };
    // Folders, alerts, artifact records, tokens, settings: when absent.
    {
        let (src, dst) = (src.clone(), dst.clone());
        blocking(Box::new(move || {
            let folders = read(&*src, |tx| tx.folder_list())?;
            let alerts = read(&*src, |tx| tx.alert_list())?;
            let artifacts = read(&*src, |tx| tx.artifact_list())?;
            let channels = read(&*src, |tx| tx.notify_channels(None))?;
            let outbox = read(&*src, |tx| tx.outbox_list(None, None, ALL))?;
            let users = read(&*src, |tx| tx.users())?;
            let grids = read(&*src, |tx| tx.grid_list())?;
            let tags = read(&*src, |tx| tx.tag_list())?;
            let tenants = read(&*src, |tx| tx.tenants())?;
            let mut profiles = Vec::new();
            for u in &users {
                if let Some(doc) = read(&*src, |tx| tx.user_profile(&u.name))? {
                    profiles.push((u.name.clone(), doc));
                }
            }
            let mut views = Vec::new();
            for u in &users {
                for (folder, doc) in read(&*src, |tx| tx.folder_views(&u.name))? {
                    views.push((folder, u.name.clone(), doc));
                }
            }
            write(&*dst, |tx| {
                for u in &users {
                    if tx.user_get(&u.name)?.is_none() {
                        tx.user_put(u)?;
                    }
                }
                for (name, doc) in &profiles {
                    if tx.user_profile(name)?.is_none() {
                        tx.user_profile_put(name, doc)?;
                    }
                }
                for t in &tenants {
                    if tx.tenant_get(&t.name)?.is_none() {
                        tx.tenant_put(t)?;
                    }
                }
                for g in &grids {
                    if tx.grid_get(&g.id)?.is_none() {
                        tx.grid_insert(g)?;
                    }
                }
                // A name already there (the same tag, from an earlier
                // attempt) is left as it is.
                for t in &tags {
                    tx.tag_insert(t)?;
                }
                let there = tx.notify_channels(None)?;
                for c in &channels {
                    if !there.iter().any(|t| t.id == c.id) {
                        tx.notify_channel_insert(c)?;
                    }
                }
                let there: std::collections::HashSet<String> = tx
                    .outbox_list(None, None, ALL)?
                    .into_iter()
                    .map(|o| o.id)
                    .collect();
                for o in outbox.iter().filter(|o| !there.contains(&o.id)) {
                    let mut o = o.clone();
                    o.claimed_until = 0;
                    tx.outbox_insert(&o)?;
                }
                for f in &folders {
                    if tx.folder_get(&f.id)?.is_none() {
                        tx.folder_insert(&f.id, &f.path, f.created)?;
                        tx.folder_set_owner(&f.id, &f.owner)?;
                        tx.folder_update(
                            &f.id,
                            &FolderPatch {
                                description: Some(f.description.clone()),
                                tags: Some(f.tags.clone()),
                                metadata: Some(f.metadata.clone()),
                                starred: Some(f.starred),
                                modified: Some(f.modified),
                            },
                        )?;
                    }
                }
                for (folder, user, doc) in &views {
                    if !tx.folder_views(user)?.iter().any(|(f, _)| f == folder) {
                        tx.folder_view_put(folder, user, doc)?;
                    }
                }
                for a in &alerts {
                    if tx.alert_get(&a.id)?.is_none() {
                        tx.alert_insert(a)?;
                    }
                }
                for a in &artifacts {
                    if tx.artifact_get(&a.id)?.is_none() {
                        tx.artifact_insert(a)?;
                    }
                }
                for t in &tokens {
                    if tx.token_by_hash(&t.hash)?.is_none() {
                        tx.token_insert(t)?;
                    }
                }
                for (k, v) in &settings {
                    if tx.setting(k)?.is_none() {
                        tx.setting_put(k, v)?;
                    }
                }
                Ok(())
            })
        }))
        .await?;
    }
    // Runs, one transaction each.
    let ids: Vec<String> = {
        let src = src.clone();
        tokio::task::spawn_blocking(move || {
            read(&*src, |tx| {
                Ok(tx
                    .run_scan(&Default::default())?
                    .into_iter()
                    .map(|r| r.id)
                    .collect())
            })
        })
        .await
        .map_err(|e| e.to_string())??
    };
    let (mut copied, mut skipped) = (0usize, 0usize);
    for id in &ids {
        let (src, dst, id2) = (src.clone(), dst.clone(), id.clone());
        let done = tokio::task::spawn_blocking(move || -> Result<bool, String> {
            if read(&*dst, |tx| tx.run_status(&id2))?.is_some() {
                return Ok(false);
            }
            let mut out = Ok(());
            src.read(&mut |from| {
                out = write(&*dst, |to| copy_run(from, to, &id2));
                Ok(())
            })
            .map_err(|e| e.0)?;
            out.map(|()| true)
        })
        .await
        .map_err(|e| e.to_string())??;
        if done {
            copied += 1;
        } else {
            skipped += 1;
        }
        if (copied + skipped) % 100 == 0 {
            eprintln!(
                "simtrack migrate: {} of {} runs",
                copied + skipped,
                ids.len()
            );
        }
    }
    eprintln!("simtrack migrate: runs copied {copied}, already there {skipped}");
    // Artifact bytes the target lacks.
    let shas: Vec<String> = {
        let src = src.clone();
        tokio::task::spawn_blocking(move || {
            read(&*src, |tx| {
                Ok(tx
                    .artifact_list()?
                    .into_iter()
                    .filter(|a| a.uploaded)
                    .map(|a| a.checksum)
                    .collect())
            })
        })
        .await
        .map_err(|e| e.to_string())??
    };
    let mut shas = shas;
    shas.sort();
    shas.dedup();
    let mut blobs = 0;
    for sha in &shas {
        if !to.blobs.has(sha).await.map_err(|e| e.0)? {
            let (len, body) = from.blobs.get(sha).await.map_err(|e| e.0)?.ok_or_else(|| {
                format!("artifact bytes {sha} are missing from the data directory")
            })?;
            to.blobs
                .put(body, sha, len, u64::MAX)
                .await
                .map_err(|e| format!("copying {sha}: {e:?}"))?;
        }
        blobs += 1;
    }
    // Verify.
    let (a, b) = {
        let (src, dst) = (src.clone(), dst.clone());
        tokio::task::spawn_blocking(move || -> Result<(Counts, Counts), String> {
            let tokens_there = read(&*dst, |tx| {
                let mut n = 0;
                for h in &token_hashes {
                    n += usize::from(tx.token_by_hash(h)?.is_some());
                }
                Ok(n)
            })?;
            Ok((
                count(&*src, blobs, token_hashes.len())?,
                count(&*dst, 0, tokens_there)?,
            ))
        })
        .await
        .map_err(|e| e.to_string())??
    };
    let mut target_blobs = 0;
    for sha in &shas {
        if to.blobs.has(sha).await.map_err(|e| e.0)? {
            target_blobs += 1;
        }
    }
    let b = Counts {
        blobs: target_blobs,
        ..b
    };
    println!("{:<10} {:>12} {:>12}", "", "embedded", "target");
    for (name, x, y) in [
        ("runs", a.runs as i64, b.runs as i64),
        ("folders", a.folders as i64, b.folders as i64),
        ("alerts", a.alerts as i64, b.alerts as i64),
        ("events", a.events as i64, b.events as i64),
        ("points", a.points, b.points),
        ("artifacts", a.artifacts as i64, b.artifacts as i64),
        ("files", a.blobs as i64, b.blobs as i64),
        ("tokens", a.tokens as i64, b.tokens as i64),
        ("deliveries", a.deliveries as i64, b.deliveries as i64),
        ("grids", a.grids as i64, b.grids as i64),
        ("arrays", a.arrays as i64, b.arrays as i64),
        ("tags", a.tags as i64, b.tags as i64),
        ("tenants", a.tenants as i64, b.tenants as i64),
    ] {
        println!("{name:<10} {x:>12} {y:>12}");
    }
    // The target may hold more (it may have been in use already), never less.
    let short = a.runs > b.runs
        || a.folders > b.folders
        || a.alerts > b.alerts
        || a.events > b.events
        || a.points > b.points
        || a.artifacts > b.artifacts
        || a.blobs > b.blobs
        || a.tokens > b.tokens
        || a.deliveries > b.deliveries
        || a.grids > b.grids
        || a.arrays > b.arrays
        || a.tags > b.tags
        || a.tenants > b.tenants;
    println!(
        "{:<10} {:>12} {:>12}",
        "(unsent)", a.undelivered, b.undelivered
    );
    if short {
        return Err("the target holds less than the source: run the migration again".into());
    }
    println!("verified: everything in the data directory is in the target");
    Ok(())
}

/// Opens the source data directory's stores, for `run`.
pub fn open_source(dir: &Path) -> Result<Backend, String> {
    if !dir.join("simtrack.db").is_file() {
        return Err(format!("{} holds no simtrack.db", dir.display()));
    }
    crate::storage::open_embedded(dir)
}
