//! Who may see and change what: the visibility rule of runs, and the
//! transaction views ([`Scoped`]) through which every request reads and
//! writes, so the rule is applied in one place for every endpoint.
//!
//! The rule ([`can_see`]): a run belongs to the user whose token created
//! it. Its owner and administrators see it; so does everyone when its
//! visibility is `public`, the owner's group when it is `tenant`, and the
//! users listed in `users`. Changing a run (logging to it, aborting,
//! editing, deleting, attaching) needs its owner or an administrator.
//! Everything recorded for a run (metrics, events, alert states, artifact
//! attachments) follows the run. Folders are seen when they hold a run
//! one sees or were created by the caller; alert definitions when they
//! were created by the caller or are attached to a run one sees; artifacts
//! when they were registered by the caller or are attached to a run one
//! sees. Users and groups (Simvue's tenants): a user sees their own
//! record and those of their group's members, and their group; only
//! administrators see the others and change any of them.
//!
//! A request never sees past the rule: [`Scoped`] wraps the storage
//! transaction and answers as if what the caller may not see did not
//! exist (so an invisible run is a 404, never a 403), and refuses a change
//! to something the caller sees but does not own (403).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::Error;
use super::auth::Identity;
use crate::storage::{
    AlertPatch, AlertRow, ArtifactRow, Attached, AuditRow, Axis, ChannelRow, ChunkInfo, ChunkStats,
    EventPred, EventRow, FolderPatch, FolderRow, GridMetricRow, GridRow, GridValueRow, NewChunk,
    OutboxRow, ReadTx, Recorded, Result, RunPage, RunPageAnswer, RunPatch, RunProjection, RunRow,
    RunScanRow, RunsVisibleTo, SeriesRow, StorageError, TagRow, TenantRow, TokenRow, UserRow,
    WriteTx,
};

/// Who besides its owner sees a run (Simvue's `visibility`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Visibility {
    /// Everyone with an account.
    pub public: bool,
    /// The owner's group (Simvue's tenant).
    pub tenant: bool,
    /// These users.
    pub users: Vec<String>,
}

impl Visibility {
    /// Reads a stored or sent `visibility` document (anything missing is
    /// `false` / empty).
    pub fn parse(v: &Value) -> Visibility {
        Visibility {
            public: v.get("public").and_then(Value::as_bool).unwrap_or(false),
            tenant: v.get("tenant").and_then(Value::as_bool).unwrap_or(false),
            users: v
                .get("users")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The document stored for it.
    pub fn doc(&self) -> Value {
        serde_json::json!({"public": self.public, "tenant": self.tenant, "users": self.users})
    }
}

/// The server's default for runs created without a `visibility`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultVisibility {
    /// Only the owner (and administrators).
    #[default]
    Private,
    /// The owner's group too.
    Group,
}

impl DefaultVisibility {
    /// `private` or `group`.
    pub fn parse(s: &str) -> Option<DefaultVisibility> {
        match s {
            "private" => Some(DefaultVisibility::Private),
            "group" | "tenant" => Some(DefaultVisibility::Group),
            _ => None,
        }
    }

    /// The visibility a new run gets.
    pub fn visibility(self) -> Visibility {
        Visibility {
            tenant: self == DefaultVisibility::Group,
            ..Visibility::default()
        }
    }
}

/// Whether `who` may see a run owned by `owner` (in group `owner_group`)
/// with visibility `vis`: the rule, in one place.
pub fn can_see(who: &Identity, owner: &str, owner_group: Option<&str>, vis: &Visibility) -> bool {
    who.admin
        || who.user == owner
        || vis.public
        || (vis.tenant && owner_group.is_some() && owner_group == who.group.as_deref())
        || vis.users.contains(&who.user)
}

/// Whether `who` may change what `owner` owns.
pub fn can_change(who: &Identity, owner: &str) -> bool {
    who.admin || who.user == owner
}

/// A storage transaction seen through the eyes of one caller: reads
/// answer only what the caller may see, writes refuse what the caller may
/// not change. The refusal is remembered ([`Scoped::finish`] turns it into
/// the request's answer: 404 or 403).
pub struct Scoped<'a, T: ?Sized> {
    tx: &'a T,
    who: &'a Identity,
    /// Per run: `None` when it does not exist or is invisible, else
    /// whether the caller may change it.
    runs: RefCell<HashMap<String, Option<bool>>>,
    groups: RefCell<HashMap<String, Option<String>>>,
    denied: RefCell<Option<Error>>,
}

const DENIED: &str = "access denied";

impl<T: ?Sized> std::fmt::Debug for Scoped<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoped")
            .field("who", &self.who.user)
            .finish()
    }
}

impl<'a, T: ?Sized + ReadTx> Scoped<'a, T> {
    /// `tx` as `who` sees it.
    pub fn new(tx: &'a T, who: &'a Identity) -> Self {
        Scoped {
            tx,
            who,
            runs: RefCell::new(HashMap::new()),
            groups: RefCell::new(HashMap::new()),
            denied: RefCell::new(None),
        }
    }

    /// The operation's result, or the refusal that stopped it.
    pub fn finish<V>(&self, r: super::Result<V>) -> super::Result<V> {
        match self.denied.borrow_mut().take() {
            Some(e) if r.is_err() => Err(e),
            _ => r,
        }
    }

    fn deny(&self, e: Error) -> StorageError {
        *self.denied.borrow_mut() = Some(e);
        StorageError(DENIED.into())
    }

    fn group_of(&self, user: &str) -> Result<Option<String>> {
        if let Some(g) = self.groups.borrow().get(user) {
            return Ok(g.clone());
        }
        let g = self.tx.user_get(user)?.and_then(|u| u.group);
        self.groups.borrow_mut().insert(user.to_owned(), g.clone());
        Ok(g)
    }

    fn sees(&self, owner: &str, vis: &str) -> Result<bool> {
        if self.who.admin || self.who.user == owner {
            return Ok(true);
        }
        let vis = Visibility::parse(&super::parse_json(vis, Value::Null));
        let group = if vis.tenant {
            self.group_of(owner)?
        } else {
            None
        };
        Ok(can_see(self.who, owner, group.as_deref(), &vis))
    }

    /// `None`: run `id` does not exist for the caller; else whether the
    /// caller may change it.
    fn run(&self, id: &str) -> Result<Option<bool>> {
        if let Some(a) = self.runs.borrow().get(id) {
            return Ok(*a);
        }
        let a = match self.tx.run_access(id)? {
            Some((owner, vis)) if self.sees(&owner, &vis)? => Some(can_change(self.who, &owner)),
            _ => None,
        };
        self.runs.borrow_mut().insert(id.to_owned(), a);
        Ok(a)
    }

    fn visible(&self, run: &str) -> Result<bool> {
        Ok(self.run(run)?.is_some())
    }

    fn writable(&self, run: &str) -> Result<()> {
        match self.run(run)? {
            Some(true) => Ok(()),
            Some(false) => Err(self.deny(Error::forbidden(format!(
                "run {run} belongs to another user"
            )))),
            None => Err(self.deny(Error::not_found(format!("run {run} not found")))),
        }
    }

    fn artifact_visible(&self, a: &ArtifactRow) -> Result<bool> {
        if self.who.admin || a.user == self.who.user {
            return Ok(true);
        }
        for r in self.tx.artifact_runs(&a.id)? {
            if self.visible(&r)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn alert_visible(&self, a: &AlertRow) -> Result<bool> {
        if self.who.admin || a.user == self.who.user {
            return Ok(true);
        }
        Ok(self
            .tx
            .attached(None)?
            .iter()
            .filter(|x| x.alert.id == a.id)
            .any(|x| self.visible(&x.run_id).unwrap_or(false)))
    }

    /// Tag names carried by a run the caller sees.
    fn visible_tag_names(&self) -> Result<HashSet<String>> {
        let p = RunProjection {
            tags: true,
            ..Default::default()
        };
        let mut out = HashSet::new();
        for r in self.run_scan(&p)? {
            if let Some(t) = r.tags
                && let Ok(list) = serde_json::from_str::<Vec<String>>(&t)
            {
                out.extend(list);
            }
        }
        Ok(out)
    }

    fn tag_visible(&self, t: &TagRow) -> Result<bool> {
        Ok(
            self.who.admin
                || t.user == self.who.user
                || self.visible_tag_names()?.contains(&t.name),
        )
    }

    fn owns_tag(&self, id: &str) -> Result<()> {
        match self.tx.tag_get(id)? {
            Some(t) if self.who.admin || t.user == self.who.user => Ok(()),
            Some(t) if self.tag_visible(&t)? => Err(self.deny(Error::forbidden(format!(
                "tag {id} belongs to another user"
            )))),
            _ => Err(self.deny(Error::not_found(format!("tag {id} not found")))),
        }
    }

    /// Paths of the folders holding a run the caller sees.
    fn visible_run_folders(&self) -> Result<HashSet<String>> {
        Ok(self
            .run_scan(&RunProjection::default())?
            .into_iter()
            .map(|r| r.folder)
            .collect())
    }

    fn folder_visible_in(&self, f: &FolderRow, run_folders: &HashSet<String>) -> bool {
        if self.who.admin || (!f.owner.is_empty() && f.owner == self.who.user) {
            return true;
        }
        let prefix = format!("{}/", f.path.trim_end_matches('/'));
        run_folders
            .iter()
            .any(|p| *p == f.path || p.starts_with(&prefix))
    }

    /// The caller's own view of folder `f`, made when it asked for `f`'s
    /// path without seeing it ([`super::folders::ensure`]): the path is
    /// shared, everything else (description, tags, metadata, star, times)
    /// is the caller's. Owners and administrators have none.
    fn own_view(&self, f: &FolderRow) -> Result<Option<FolderRow>> {
        if self.who.admin || (!f.owner.is_empty() && f.owner == self.who.user) {
            return Ok(None);
        }
        Ok(self
            .tx
            .folder_views(&self.who.user)?
            .into_iter()
            .find(|(id, _)| *id == f.id)
            .map(|(_, doc)| super::folders::view_row(f, &doc, &self.who.user)))
    }

    /// Whether the caller sees user `name` (in group `group`): itself, a
    /// member of its group, or anyone for an administrator.
    fn user_visible(&self, name: &str, group: Option<&str>) -> bool {
        self.who.admin
            || name == self.who.user
            || (group.is_some() && group == self.who.group.as_deref())
    }

    fn admin_only(&self, what: &str) -> Result<()> {
        if self.who.admin {
            return Ok(());
        }
        Err(self.deny(Error::forbidden(format!(
            "You do not have permission to change {what}: administrators only"
        ))))
    }

    fn folder_visible(&self, f: &FolderRow) -> Result<bool> {
        if self.who.admin || (!f.owner.is_empty() && f.owner == self.who.user) {
            return Ok(true);
        }
        Ok(self.folder_visible_in(f, &self.visible_run_folders()?))
    }
}

impl<T: ?Sized + ReadTx> ReadTx for Scoped<'_, T> {
    fn run_status(&self, id: &str) -> Result<Option<String>> {
        if !self.visible(id)? {
            return Ok(None);
        }
        self.tx.run_status(id)
    }
    fn run_get(&self, id: &str) -> Result<Option<RunRow>> {
        if !self.visible(id)? {
            return Ok(None);
        }
        self.tx.run_get(id)
    }
    fn run_access(&self, id: &str) -> Result<Option<(String, String)>> {
        if !self.visible(id)? {
            return Ok(None);
        }
        self.tx.run_access(id)
    }
    fn run_scan(&self, p: &RunProjection) -> Result<Vec<RunScanRow>> {
        let mut rows = self.tx.run_scan(p)?;
        if !self.who.admin {
            let mut keep = Vec::with_capacity(rows.len());
            for r in rows {
                if self.sees(&r.user, &r.visibility)? {
                    keep.push(r);
                }
            }
            rows = keep;
        }
        Ok(rows)
    }
    fn run_page(&self, q: &RunPage) -> Result<RunPageAnswer> {
        // The rule of `can_see`, for the database to apply.
        let q = RunPage {
            visible_to: if self.who.admin {
                RunsVisibleTo::All
            } else {
                RunsVisibleTo::User {
                    name: self.who.user.clone(),
                    group: self.who.group.clone(),
                }
            },
            ..q.clone()
        };
        self.tx.run_page(&q)
    }
    fn runs_in_folder(&self, path: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for id in self.tx.runs_in_folder(path)? {
            if self.visible(&id)? {
                out.push(id);
            }
        }
        Ok(out)
    }
    fn runs_silent(&self, since: i64, now: i64) -> Result<Vec<String>> {
        self.tx.runs_silent(since, now)
    }

    fn folder_get(&self, id: &str) -> Result<Option<FolderRow>> {
        let Some(f) = self.tx.folder_get(id)? else {
            return Ok(None);
        };
        if let Some(v) = self.own_view(&f)? {
            return Ok(Some(v));
        }
        Ok(self.folder_visible(&f)?.then_some(f))
    }
    fn folder_views(&self, _user: &str) -> Result<Vec<(String, String)>> {
        self.tx.folder_views(&self.who.user)
    }
    fn folder_by_path(&self, path: &str) -> Result<Option<String>> {
        // Used to find or create a folder: creating one that exists but is
        // invisible reuses it (paths are unique), so the answer is the same.
        self.tx.folder_by_path(path)
    }
    fn folder_list(&self) -> Result<Vec<FolderRow>> {
        let all = self.tx.folder_list()?;
        if self.who.admin {
            return Ok(all);
        }
        let runs = self.visible_run_folders()?;
        let views: HashMap<String, String> =
            self.tx.folder_views(&self.who.user)?.into_iter().collect();
        Ok(all
            .into_iter()
            .filter_map(|f| match views.get(&f.id) {
                Some(doc) if f.owner != self.who.user => {
                    Some(super::folders::view_row(&f, doc, &self.who.user))
                }
                _ => self.folder_visible_in(&f, &runs).then_some(f),
            })
            .collect())
    }
    fn folders_under(&self, path: &str) -> Result<Vec<(String, String)>> {
        let all = self.tx.folders_under(path)?;
        if self.who.admin {
            return Ok(all);
        }
        let mut out = Vec::new();
        for (id, p) in all {
            if self.folder_get(&id)?.is_some() {
                out.push((id, p));
            }
        }
        Ok(out)
    }

    fn alert_get(&self, id: &str) -> Result<Option<AlertRow>> {
        match self.tx.alert_get(id)? {
            Some(a) if self.alert_visible(&a)? => Ok(Some(a)),
            _ => Ok(None),
        }
    }
    fn alert_list(&self) -> Result<Vec<AlertRow>> {
        let all = self.tx.alert_list()?;
        if self.who.admin {
            return Ok(all);
        }
        let mut seen: HashSet<String> = HashSet::new();
        for a in self.tx.attached(None)? {
            if self.visible(&a.run_id)? {
                seen.insert(a.alert.id);
            }
        }
        Ok(all
            .into_iter()
            .filter(|a| a.user == self.who.user || seen.contains(&a.id))
            .collect())
    }
    fn alert_by_name(&self, name: &str) -> Result<Option<String>> {
        match self.tx.alert_by_name(name)? {
            Some(id) if self.alert_get(&id)?.is_some() => Ok(Some(id)),
            _ => Ok(None),
        }
    }
    fn run_alert_status(&self, run: &str, alert: &str) -> Result<Option<String>> {
        if !self.visible(run)? {
            return Ok(None);
        }
        self.tx.run_alert_status(run, alert)
    }
    fn attached(&self, run: Option<&str>) -> Result<Vec<Attached>> {
        if let Some(r) = run
            && !self.visible(r)?
        {
            return Ok(Vec::new());
        }
        let all = self.tx.attached(run)?;
        if self.who.admin {
            return Ok(all);
        }
        let mut out = Vec::with_capacity(all.len());
        for a in all {
            if self.visible(&a.run_id)? {
                out.push(a);
            }
        }
        Ok(out)
    }
    fn attached_enabled(&self, run: &str, source: &str) -> Result<Vec<AlertRow>> {
        if !self.visible(run)? {
            return Ok(Vec::new());
        }
        self.tx.attached_enabled(run, source)
    }

    fn events_visit_where(
        &self,
        run: &str,
        exclude_prefix: Option<&str>,
        filter: &EventPred,
        skip: u64,
        visit: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<()> {
        if !self.visible(run)? {
            return Ok(());
        }
        self.tx
            .events_visit_where(run, exclude_prefix, filter, skip, visit)
    }
    fn events_count_where(
        &self,
        run: &str,
        exclude_prefix: Option<&str>,
        filter: &EventPred,
    ) -> Result<u64> {
        if !self.visible(run)? {
            return Ok(0);
        }
        self.tx.events_count_where(run, exclude_prefix, filter)
    }
    fn events_after(
        &self,
        run: &str,
        after_seq: i64,
        visit: &mut dyn FnMut(i64, i64, &str),
    ) -> Result<()> {
        if !self.visible(run)? {
            return Ok(());
        }
        self.tx.events_after(run, after_seq, visit)
    }

    fn series_id(&self, run: &str, name: &str) -> Result<Option<i64>> {
        if !self.visible(run)? {
            return Ok(None);
        }
        self.tx.series_id(run, name)
    }
    fn series_of(&self, run: &str) -> Result<Vec<SeriesRow>> {
        if !self.visible(run)? {
            return Ok(Vec::new());
        }
        self.tx.series_of(run)
    }
    fn series_some(
        &self,
        run: &str,
        names: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<SeriesRow>> {
        if !self.visible(run)? {
            return Ok(Vec::new());
        }
        self.tx.series_some(run, names, limit)
    }
    fn series_count(&self, run: &str) -> Result<u64> {
        if !self.visible(run)? {
            return Ok(0);
        }
        self.tx.series_count(run)
    }
    fn series_named(&self, name: &str) -> Result<Vec<(String, SeriesRow)>> {
        let mut out = Vec::new();
        for (run, s) in self.tx.series_named(name)? {
            if self.visible(&run)? {
                out.push((run, s));
            }
        }
        Ok(out)
    }
    // Notification channels and deliveries are their user's own.
    fn notify_channels(&self, owner: Option<&str>) -> Result<Vec<ChannelRow>> {
        let rows = self.tx.notify_channels(owner)?;
        if self.who.admin {
            return Ok(rows);
        }
        Ok(rows
            .into_iter()
            .filter(|c| c.owner == self.who.user)
            .collect())
    }
    fn outbox_list(
        &self,
        owner: Option<&str>,
        run: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>> {
        if let Some(r) = run
            && !self.visible(r)?
        {
            return Ok(Vec::new());
        }
        if self.who.admin {
            return self.tx.outbox_list(owner, run, limit);
        }
        if owner.is_some_and(|o| o != self.who.user) {
            return Ok(Vec::new());
        }
        self.tx.outbox_list(Some(&self.who.user), run, limit)
    }
    fn outbox_due(&self, now: i64) -> Result<u64> {
        self.tx.outbox_due(now)
    }
    // Tags are seen by their creator, administrators, and whoever sees a
    // run carrying them: a private run's tag names do not leak.
    fn tag_list(&self) -> Result<Vec<TagRow>> {
        let rows = self.tx.tag_list()?;
        if self.who.admin {
            return Ok(rows);
        }
        let used = self.visible_tag_names()?;
        Ok(rows
            .into_iter()
            .filter(|t| t.user == self.who.user || used.contains(&t.name))
            .collect())
    }
    fn tag_get(&self, id: &str) -> Result<Option<TagRow>> {
        match self.tx.tag_get(id)? {
            Some(t) if self.tag_visible(&t)? => Ok(Some(t)),
            _ => Ok(None),
        }
    }
    fn tag_by_name(&self, name: &str) -> Result<Option<String>> {
        match self.tx.tag_by_name(name)? {
            Some(id) => Ok(self.tag_get(&id)?.map(|t| t.id)),
            None => Ok(None),
        }
    }
    // Grids are shared definitions (named axes and coordinates, no measured
    // data): every user reads them, as Simvue's tenant-wide grids. The
    // arrays logged on them follow their run.
    fn grid_get(&self, id: &str) -> Result<Option<GridRow>> {
        self.tx.grid_get(id)
    }
    fn grid_list(&self) -> Result<Vec<GridRow>> {
        self.tx.grid_list()
    }
    fn grid_metrics(&self, run: &str) -> Result<Vec<GridMetricRow>> {
        if !self.visible(run)? {
            return Ok(Vec::new());
        }
        self.tx.grid_metrics(run)
    }
    fn grid_value(&self, run: &str, metric: &str, step: i64) -> Result<Option<GridValueRow>> {
        if !self.visible(run)? {
            return Ok(None);
        }
        self.tx.grid_value(run, metric, step)
    }
    fn grid_steps(&self, run: &str, metric: &str) -> Result<Vec<GridValueRow>> {
        if !self.visible(run)? {
            return Ok(Vec::new());
        }
        self.tx.grid_steps(run, metric)
    }
    // Series and chunks are reached through a series id, which only
    // `series_id`/`series_ensure` of a visible run hand out.
    fn series_points(&self, series: i64) -> Result<i64> {
        self.tx.series_points(series)
    }
    fn series_max_span(&self, series: i64) -> Result<i64> {
        self.tx.series_max_span(series)
    }
    fn chunks_ts_between(&self, series: i64, lo: i64, hi: i64, max_span: i64) -> Result<Vec<i64>> {
        self.tx.chunks_ts_between(series, lo, hi, max_span)
    }
    fn alert_window(&self, run: &str, alert: &str) -> Result<Option<String>> {
        if !self.visible(run)? {
            return Ok(None);
        }
        self.tx.alert_window(run, alert)
    }
    fn chunks(&self, series: i64, axis: Axis, blocks: bool) -> Result<Vec<ChunkInfo>> {
        self.tx.chunks(series, axis, blocks)
    }
    fn chunks_overlapping(&self, series: i64, axis: Axis, min: f64, max: f64) -> Result<Vec<i64>> {
        self.tx.chunks_overlapping(series, axis, min, max)
    }
    fn chunk_points(&self, chunk: i64) -> Result<Vec<u8>> {
        self.tx.chunk_points(chunk)
    }
    fn series_newest_ts(&self, series: i64) -> Result<Option<i64>> {
        self.tx.series_newest_ts(series)
    }
    fn chunks_since(&self, series: i64, ts: i64) -> Result<Vec<ChunkStats>> {
        self.tx.chunks_since(series, ts)
    }

    fn artifact_get(&self, id: &str) -> Result<Option<ArtifactRow>> {
        match self.tx.artifact_get(id)? {
            Some(a) if self.artifact_visible(&a)? => Ok(Some(a)),
            _ => Ok(None),
        }
    }
    fn artifact_list(&self) -> Result<Vec<ArtifactRow>> {
        let all = self.tx.artifact_list()?;
        if self.who.admin {
            return Ok(all);
        }
        let mut out = Vec::new();
        for a in all {
            if self.artifact_visible(&a)? {
                out.push(a);
            }
        }
        Ok(out)
    }
    fn artifacts_of(
        &self,
        run: &str,
        name: Option<&str>,
        category: Option<&str>,
    ) -> Result<Vec<(ArtifactRow, String)>> {
        if !self.visible(run)? {
            return Ok(Vec::new());
        }
        self.tx.artifacts_of(run, name, category)
    }
    fn artifact_runs(&self, artifact: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for r in self.tx.artifact_runs(artifact)? {
            if self.visible(&r)? {
                out.push(r);
            }
        }
        Ok(out)
    }
    fn artifact_category(&self, run: &str, artifact: &str) -> Result<Option<String>> {
        if !self.visible(run)? {
            return Ok(None);
        }
        self.tx.artifact_category(run, artifact)
    }

    // Tokens, users, the audit trail and settings are not filtered here:
    // the operations on them (domain::auth, domain::users) decide.
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>> {
        self.tx.token_by_hash(hash)
    }
    fn tokens(&self, name: Option<&str>) -> Result<Vec<TokenRow>> {
        self.tx.tokens(name)
    }
    fn tokens_live(&self, name: &str, now: i64) -> Result<u64> {
        self.tx.tokens_live(name, now)
    }
    fn user_get(&self, name: &str) -> Result<Option<UserRow>> {
        self.tx.user_get(name)
    }
    // Listing users (the Simvue user API) shows only those the caller
    // sees; `user_get` above stays unfiltered, as the visibility rule
    // itself reads the groups of runs' owners through it.
    fn users(&self) -> Result<Vec<UserRow>> {
        let all = self.tx.users()?;
        Ok(all
            .into_iter()
            .filter(|u| self.user_visible(&u.name, u.group.as_deref()))
            .collect())
    }
    fn user_profile(&self, name: &str) -> Result<Option<String>> {
        let group = self.group_of(name)?;
        if !self.user_visible(name, group.as_deref()) {
            return Ok(None);
        }
        self.tx.user_profile(name)
    }
    fn tenant_get(&self, name: &str) -> Result<Option<TenantRow>> {
        if !self.who.admin && self.who.group.as_deref() != Some(name) {
            return Ok(None);
        }
        self.tx.tenant_get(name)
    }
    fn tenants(&self) -> Result<Vec<TenantRow>> {
        let all = self.tx.tenants()?;
        Ok(all
            .into_iter()
            .filter(|t| self.who.admin || self.who.group.as_deref() == Some(t.name.as_str()))
            .collect())
    }
    fn audit(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRow>> {
        self.tx.audit(before, limit)
    }
    fn signin_failures(&self, key: &str) -> Result<Option<(i64, i64)>> {
        self.tx.signin_failures(key)
    }
    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.tx.setting(key)
    }
    fn idempotency_get(&self, scope: &str, key: &str) -> Result<Option<Recorded>> {
        self.tx.idempotency_get(scope, key)
    }
}

impl Scoped<'_, dyn WriteTx + '_> {
    fn own_view_of(&self, id: &str) -> Result<Option<FolderRow>> {
        match self.tx.folder_get(id)? {
            Some(f) => self.own_view(&f),
            None => Ok(None),
        }
    }

    fn owns_folder(&self, id: &str) -> Result<()> {
        match self.folder_get(id)? {
            None => Err(self.deny(Error::not_found(format!("folder {id} not found")))),
            Some(f) if self.who.admin || f.owner == self.who.user || f.owner.is_empty() => Ok(()),
            Some(_) => Err(self.deny(Error::forbidden(format!(
                "folder {id} belongs to another user"
            )))),
        }
    }

    fn owns_alert(&self, id: &str) -> Result<()> {
        match self.alert_get(id)? {
            None => Err(self.deny(Error::not_found(format!("alert {id} not found")))),
            Some(a) if can_change(self.who, &a.user) => Ok(()),
            Some(_) => Err(self.deny(Error::forbidden(format!(
                "alert {id} belongs to another user"
            )))),
        }
    }

    fn owns_artifact(&self, id: &str) -> Result<()> {
        match self.artifact_get(id)? {
            None => Err(self.deny(Error::not_found(format!("artifact {id} not found")))),
            Some(a) if can_change(self.who, &a.user) => Ok(()),
            Some(_) => Err(self.deny(Error::forbidden(format!(
                "artifact {id} belongs to another user"
            )))),
        }
    }
}

impl WriteTx for Scoped<'_, dyn WriteTx + '_> {
    fn run_insert(&self, r: &RunRow) -> Result<()> {
        if !can_change(self.who, &r.user) {
            return Err(self.deny(Error::forbidden("a run is created for its caller")));
        }
        self.tx.run_insert(r)?;
        self.runs.borrow_mut().remove(&r.id);
        Ok(())
    }
    fn run_update(&self, id: &str, p: &RunPatch) -> Result<()> {
        self.writable(id)?;
        self.tx.run_update(id, p)?;
        if p.visibility.is_some() {
            self.runs.borrow_mut().remove(id);
        }
        Ok(())
    }
    fn run_delete(&self, id: &str) -> Result<()> {
        self.writable(id)?;
        self.tx.run_delete(id)?;
        self.runs.borrow_mut().remove(id);
        Ok(())
    }

    fn folder_insert(&self, id: &str, path: &str, now: i64) -> Result<()> {
        self.tx.folder_insert(id, path, now)?;
        self.tx.folder_set_owner(id, &self.who.user)
    }
    fn folder_update(&self, id: &str, p: &FolderPatch) -> Result<()> {
        if let Some(v) = self.own_view_of(id)? {
            let doc = super::folders::view_doc(&super::folders::patched(v, p));
            return self.tx.folder_view_put(id, &self.who.user, &doc);
        }
        self.owns_folder(id)?;
        self.tx.folder_update(id, p)
    }
    fn folder_delete(&self, id: &str) -> Result<()> {
        if self.own_view_of(id)?.is_some() {
            return self.tx.folder_view_delete(id, Some(&self.who.user));
        }
        self.owns_folder(id)?;
        self.tx.folder_delete(id)?;
        self.tx.folder_view_delete(id, None)
    }
    fn folder_set_owner(&self, id: &str, owner: &str) -> Result<()> {
        if self.own_view_of(id)?.is_some() {
            return Err(self.deny(Error::forbidden(format!(
                "folder {id} belongs to another user"
            ))));
        }
        self.owns_folder(id)?;
        self.tx.folder_set_owner(id, owner)
    }
    fn folder_view_put(&self, folder: &str, _user: &str, doc: &str) -> Result<()> {
        self.tx.folder_view_put(folder, &self.who.user, doc)
    }
    fn folder_view_delete(&self, folder: &str, _user: Option<&str>) -> Result<()> {
        self.tx.folder_view_delete(folder, Some(&self.who.user))
    }

    fn alert_insert(&self, a: &AlertRow) -> Result<()> {
        self.tx.alert_insert(a)
    }
    fn alert_update(&self, id: &str, p: &AlertPatch) -> Result<()> {
        self.owns_alert(id)?;
        self.tx.alert_update(id, p)
    }
    fn alert_delete(&self, id: &str) -> Result<()> {
        self.owns_alert(id)?;
        self.tx.alert_delete(id)
    }
    fn attach_alert(&self, run: &str, alert: &str) -> Result<()> {
        self.writable(run)?;
        self.tx.attach_alert(run, alert)
    }
    fn detach_alerts_except(&self, run: &str, keep: &[String]) -> Result<()> {
        self.writable(run)?;
        self.tx.detach_alerts_except(run, keep)
    }
    fn set_alert_state(&self, run: &str, alert: &str, status: &str, at: i64) -> Result<()> {
        self.writable(run)?;
        self.tx.set_alert_state(run, alert, status, at)
    }
    fn acknowledge_alert(&self, run: &str, alert: &str, by: &str, at: i64) -> Result<()> {
        self.writable(run)?;
        self.tx.acknowledge_alert(run, alert, by, at)
    }

    fn event_insert(&self, run: &str, ts: i64, level: &str, message: &str) -> Result<()> {
        self.writable(run)?;
        self.tx.event_insert(run, ts, level, message)
    }
    fn events_insert(&self, run: &str, rows: &[(i64, String, String)]) -> Result<()> {
        self.writable(run)?;
        self.tx.events_insert(run, rows)
    }

    fn series_ensure(&self, run: &str, name: &str) -> Result<i64> {
        self.writable(run)?;
        self.tx.series_ensure(run, name)
    }
    fn chunk_insert(&self, series: i64, c: &NewChunk<'_>) -> Result<()> {
        self.tx.chunk_insert(series, c)
    }
    fn series_extend(
        &self,
        series: i64,
        count: i64,
        min: Option<f64>,
        max: Option<f64>,
        last: Option<(Option<f64>, i64)>,
    ) -> Result<()> {
        self.tx.series_extend(series, count, min, max, last)
    }

    fn artifact_insert(&self, a: &ArtifactRow) -> Result<()> {
        self.tx.artifact_insert(a)
    }
    fn artifact_set_uploaded(&self, id: &str, uploaded: bool) -> Result<()> {
        self.owns_artifact(id)?;
        self.tx.artifact_set_uploaded(id, uploaded)
    }
    fn artifact_attach(&self, run: &str, artifact: &str, category: &str) -> Result<()> {
        self.writable(run)?;
        self.tx.artifact_attach(run, artifact, category)
    }
    fn artifact_delete(&self, id: &str) -> Result<()> {
        self.owns_artifact(id)?;
        self.tx.artifact_delete(id)
    }

    fn token_insert(&self, t: &TokenRow) -> Result<()> {
        self.tx.token_insert(t)
    }
    // Tag names are one namespace for the whole server: a name taken by a
    // tag the caller does not see is refused without naming that tag.
    fn tag_insert(&self, t: &TagRow) -> Result<bool> {
        self.tx.tag_insert(t)
    }
    // A run may carry a tag name another user made (and the caller cannot
    // see): the name stays that tag.
    // Renaming or deleting a tag changes every run carrying it: its
    // creator or an administrator.
    fn tag_update(&self, t: &TagRow) -> Result<bool> {
        self.owns_tag(&t.id)?;
        self.tx.tag_update(t)
    }
    fn tag_delete(&self, id: &str) -> Result<()> {
        self.owns_tag(id)?;
        self.tx.tag_delete(id)
    }
    fn artifact_set_size(&self, id: &str, size: u64) -> Result<()> {
        self.owns_artifact(id)?;
        self.tx.artifact_set_size(id, size)
    }
    fn grid_insert(&self, g: &GridRow) -> Result<()> {
        if !self.who.admin && g.user != self.who.user {
            return Err(self.deny(Error::forbidden("a grid belongs to its creator")));
        }
        self.tx.grid_insert(g)
    }
    // Deleting a grid deletes the arrays on it: its creator or an admin.
    fn grid_delete(&self, id: &str) -> Result<()> {
        match self.tx.grid_get(id)? {
            None => Err(self.deny(Error::not_found(format!("grid {id} not found")))),
            Some(g) if !self.who.admin && g.user != self.who.user => Err(self.deny(
                Error::forbidden(format!("grid {id} belongs to another user")),
            )),
            Some(_) => self.tx.grid_delete(id),
        }
    }
    fn grid_attach(&self, run: &str, metric: &str, grid: &str) -> Result<()> {
        self.writable(run)?;
        self.tx.grid_attach(run, metric, grid)
    }
    fn grid_value_put(&self, run: &str, metric: &str, v: &GridValueRow) -> Result<()> {
        self.writable(run)?;
        self.tx.grid_value_put(run, metric, v)
    }
    fn notify_channel_insert(&self, c: &ChannelRow) -> Result<()> {
        if !self.who.admin && c.owner != self.who.user {
            return Err(self.deny(Error::forbidden(
                "a notification channel belongs to its own user",
            )));
        }
        self.tx.notify_channel_insert(c)
    }
    fn notify_channel_delete(&self, id: &str) -> Result<bool> {
        let mine = self
            .tx
            .notify_channels(None)?
            .into_iter()
            .any(|c| c.id == id && (self.who.admin || c.owner == self.who.user));
        if !mine {
            return Ok(false);
        }
        self.tx.notify_channel_delete(id)
    }
    // Deliveries are queued by the change that causes them (already allowed
    // by the run's rules) for the run owner's channels, and worked off by
    // the server's delivery worker.
    fn outbox_insert(&self, o: &OutboxRow) -> Result<()> {
        self.tx.outbox_insert(o)
    }
    fn outbox_claim(&self, now: i64, until: i64, limit: usize) -> Result<Vec<OutboxRow>> {
        self.tx.outbox_claim(now, until, limit)
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
        self.tx
            .outbox_finish(id, status, attempts, next_at, error, sent_at)
    }
    fn outbox_purge(&self, before: i64) -> Result<usize> {
        self.tx.outbox_purge(before)
    }
    fn token_delete(&self, id: &str) -> Result<bool> {
        self.tx.token_delete(id)
    }
    fn token_touch(&self, id: &str, at: i64) -> Result<()> {
        self.tx.token_touch(id, at)
    }
    fn user_put(&self, u: &UserRow) -> Result<()> {
        self.tx.user_put(u)
    }
    fn audit_insert(&self, a: &AuditRow) -> Result<()> {
        self.tx.audit_insert(a)
    }
    fn signin_failures_put(&self, key: &str, count: i64, since: i64) -> Result<()> {
        self.tx.signin_failures_put(key, count, since)
    }
    fn signin_failures_delete(&self, key: &str) -> Result<()> {
        self.tx.signin_failures_delete(key)
    }
    fn signin_failures_purge(&self, before: i64) -> Result<usize> {
        self.tx.signin_failures_purge(before)
    }

    fn user_profile_put(&self, name: &str, doc: &str) -> Result<()> {
        self.admin_only("users")?;
        self.tx.user_profile_put(name, doc)
    }
    fn tenant_put(&self, t: &TenantRow) -> Result<()> {
        self.admin_only("tenants")?;
        self.tx.tenant_put(t)
    }
    fn tenant_delete(&self, name: &str) -> Result<bool> {
        self.admin_only("tenants")?;
        self.tx.tenant_delete(name)
    }
    fn alert_window_put(&self, run: &str, alert: &str, state: &str) -> Result<()> {
        self.writable(run)?;
        self.tx.alert_window_put(run, alert, state)
    }
    fn setting_put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.tx.setting_put(key, value)
    }
    fn idempotency_put(&self, scope: &str, key: &str, r: &Recorded, at: i64) -> Result<()> {
        self.tx.idempotency_put(scope, key, r, at)
    }
    fn idempotency_purge(&self, before: i64) -> Result<usize> {
        self.tx.idempotency_purge(before)
    }
}
