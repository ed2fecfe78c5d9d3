//! `Run`: the safe Rust API behind every C handle.
//!
//! A live run owns a [`Worker`] handle: the buffer its calls append to and
//! the threads that spool and deliver it. Init
//! writes the run's first record to the spool itself (so a run exists on
//! disk before init returns); every later call only appends to the buffer,
//! except `save`, which copies the file into the spool during the call.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::config::{Config, Mode, Ranks};
use crate::error::{Error, Status};
use crate::record::{
    AlertDef, Category, Event, EventBlock, EventLevel, FileRecord, FinishRecord, FolderSpec,
    LineBlock, MAX_EVENT_BYTES, MetaValue, Record, RunSpec, RunStatus, check_metric_name,
    check_name, normalize_folder, now_unix, parse_json_object, parse_tags,
};
use crate::spool::{RunDir, SpoolWriter, runs_dir};
use crate::transport::Transport;
use crate::transport::http::HttpTransport;
use crate::worker::{SenderSetup, Timing, Worker};

/// Arguments of `simtrack_init`, in its order.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub name: Option<String>,
    pub metadata_json: Option<String>,
    pub tags: Option<String>,
    pub description: Option<String>,
    pub folder: Option<String>,
}

/// A run being recorded. `Run` is `Sync`: every method but `finish` may be
/// called from many threads at once.
#[derive(Debug)]
pub struct Run {
    id: String,
    live: Option<Live>,
}

#[derive(Debug)]
struct Live {
    worker: Worker,
    /// For event times (not on the hot path).
    start: Instant,
    created: f64,
    dir: RunDir,
    finish_timeout: Duration,
    final_status: Mutex<Option<RunStatus>>,
    /// The grids defined so far (array metrics are checked against them).
    grids: crate::grid::Registry,
}

impl Run {
    /// Starts a run with the process's configuration.
    pub fn init(opts: InitOptions) -> Result<Run, Error> {
        Self::init_with(opts, &Config::load()?)
    }

    /// Does what a run's start needs done while the process has a single
    /// thread: registering for the barriers of [`crate::lanes`], which takes
    /// microseconds then and 11-15 ms on a 2-core VM once other threads
    /// exist. [`Run::init_with`] does it; a program that starts threads of
    /// its own before its first run (as `simtrack run` does) calls this
    /// first.
    pub fn prepare_process() {
        crate::lanes::asymmetric_barriers();
    }

    /// Starts a run with an explicit configuration.
    pub fn init_with(opts: InitOptions, config: &Config) -> Result<Run, Error> {
        // Before the HTTP client starts its thread: see `asymmetric_barriers`.
        crate::lanes::asymmetric_barriers();
        let transport = match config.mode {
            Mode::Online if !is_silent_rank(config) => Some(HttpTransport::new(config)?),
            _ => None,
        };
        let online = transport.is_some();
        let run = Self::init_with_transport(opts, config, transport)?;
        if online && run.is_recording() {
            deliver_dead_runs_in_background(config, &run.id);
        }
        Ok(run)
    }

    /// Starts a run whose data goes through `transport` (online) or only to
    /// the spool (`None`). Tests drive the real threads with
    /// [`crate::transport::memory::MemoryTransport`] this way.
    pub fn init_with_transport<T: Transport + 'static>(
        opts: InitOptions,
        config: &Config,
        transport: Option<T>,
    ) -> Result<Run, Error> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut metadata = match opts.metadata_json.as_deref() {
            Some(m) => parse_json_object(m, "metadata_json")?,
            None => BTreeMap::new(),
        };
        // The batch job, as metadata the runs table can filter on; the
        // solver's own keys win.
        for (k, v) in crate::context::batch_metadata(&|k| std::env::var(k).ok()) {
            metadata.entry(k).or_insert(v);
        }
        let folder = normalize_folder(opts.folder.as_deref().unwrap_or("/"))?;
        let tags = opts.tags.as_deref().map(parse_tags).unwrap_or_default();
        let name = match opts.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => generated_name(&id),
        };
        check_name("run name", &name)?;
        for tag in &tags {
            check_name("tag", tag)?;
        }
        if config.mode == Mode::Disabled || is_silent_rank(config) {
            return Ok(Run { id, live: None });
        }
        // Before anything touches the disk: a failed init leaves no run behind.
        crate::signals::install_from_env()?;
        let created = now_unix();
        let start = Instant::now();
        let clock = crate::clock::Calibration::start();
        let spec = RunSpec {
            id: id.clone(),
            name,
            folder,
            tags,
            description: opts.description,
            metadata,
            system: crate::context::capture(&id),
            heartbeat_timeout: config.heartbeat_timeout.as_secs().max(1),
            created,
        };
        let dir = RunDir::new(runs_dir(&config.offline_dir).join(&id));
        let mut spool = SpoolWriter::create(&dir)?;
        warn_if_shared(&config.offline_dir);
        // The lock only keeps `simtrack sync` off a live run; on a file
        // system without locks (some parallel file systems) the run goes on
        // without it rather than fail.
        let lock = dir.try_lock().ok().flatten();
        if let Err(e) = spool.append(&Record::Create(spec)) {
            // A run without its first record is no run: leave nothing behind
            // for `simtrack sync` to trip over.
            drop(spool);
            drop(lock);
            let _ = std::fs::remove_dir_all(&dir.root);
            return Err(e);
        }
        if transport.is_some() {
            // Names the server from the start, so that if the process dies
            // before anything is acknowledged the next online run on this
            // spool still knows where the run was going.
            let _ = dir.write_state(&crate::spool::DeliveryState {
                server_url: Some(config.url.clone().unwrap_or_default()),
                ..Default::default()
            });
        }
        let timing = Timing {
            heartbeat_interval: config.heartbeat_interval,
            abort_poll: config.abort_poll,
            resources_interval: config.resources_interval,
            memory_cap_bytes: config.memory_cap_bytes,
            log_wait: config.log_wait,
        };
        let sender = transport.map(|transport| SenderSetup {
            transport,
            server_url: config.url.clone().unwrap_or_default(),
        });
        let worker = Worker::spawn(dir.clone(), spool, clock, timing, sender, lock)?;
        Ok(Run {
            id,
            live: Some(Live {
                worker,
                start,
                created,
                dir,
                finish_timeout: config.finish_timeout,
                final_status: Mutex::new(None),
                grids: crate::grid::Registry::default(),
            }),
        })
    }

    /// The run's id (a UUID without dashes; also its spool directory name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A run that records nothing and has no id: what a C handle stands for
    /// in a child of `fork()` (see `ffi::handle`).
    pub(crate) const fn detached() -> Run {
        Run {
            id: String::new(),
            live: None,
        }
    }

    /// False for a no-op handle (disabled mode, or a silent MPI rank).
    pub fn is_recording(&self) -> bool {
        self.live.is_some()
    }

    /// The run's spool directory, if it is recording.
    pub fn spool_dir(&self) -> Option<&Path> {
        self.live.as_ref().map(|l| l.dir.root.as_path())
    }

    /// Logs one metric value; `step < 0` means the metric's next step.
    #[inline]
    pub fn log(&self, metric: &str, value: f64, step: i64) -> Result<(), Error> {
        self.log_bytes(metric.as_bytes(), value, step)
    }

    /// As [`Run::log`], with the name as bytes: a name seen before is found
    /// without UTF-8 validation (new names are validated once).
    #[inline]
    pub fn log_bytes(&self, metric: &[u8], value: f64, step: i64) -> Result<(), Error> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        live.worker.push(metric, value, step, crate::clock::ticks())
    }

    /// Logs several metrics at one step and time; all or none.
    pub fn log_many(&self, batch: &[(&str, f64)], step: i64) -> Result<(), Error> {
        self.log_many_by(
            batch.len(),
            |i| Ok((batch[i].0.as_bytes(), batch[i].1)),
            step,
        )
    }

    /// As [`Run::log_many`], with item `i` of `count` produced by `item`
    /// (so callers need not build a list). `item` is called twice per index.
    pub fn log_many_by<'a>(
        &self,
        count: usize,
        item: impl Fn(usize) -> Result<(&'a [u8], f64), Error>,
        step: i64,
    ) -> Result<(), Error> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        live.worker
            .push_many(count, item, step, crate::clock::ticks())
    }

    /// As [`Run::log`] with a C name (non-NULL, NUL-terminated): a name seen
    /// before at the same address is recognised without measuring it.
    ///
    /// # Safety
    /// `metric` is non-NULL and NUL-terminated.
    #[inline]
    pub unsafe fn log_c(
        &self,
        metric: *const std::ffi::c_char,
        value: f64,
        step: i64,
    ) -> Result<(), Error> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        // SAFETY: forwarded contract.
        unsafe {
            live.worker
                .push_c(metric, value, step, crate::clock::ticks())
        }
    }

    /// As [`Run::log_many`] with C names: `names[i]` (NUL-terminated, or
    /// NULL, which refuses the call) names `values[i]`. A name seen before
    /// at the same address is recognised without measuring it.
    ///
    /// # Safety
    /// Every non-NULL `names[i]` is NUL-terminated.
    pub unsafe fn log_many_c(
        &self,
        names: &[*const std::ffi::c_char],
        values: &[f64],
        step: i64,
    ) -> Result<(), Error> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        // SAFETY: forwarded contract.
        unsafe {
            live.worker
                .push_many_c(names, values, step, crate::clock::ticks())
        }
    }

    /// What `crate::grid` needs of a live run: its grids, spool directory
    /// and start time (None for a run that records nothing).
    pub(crate) fn grid_parts(&self) -> Option<(&crate::grid::Registry, &RunDir, Instant, &Worker)> {
        self.live
            .as_ref()
            .map(|l| (&l.grids, &l.dir, l.start, &l.worker))
    }

    pub(crate) fn push_record(&self, record: Record) {
        if let Some(live) = &self.live {
            live.worker.push_record(record);
        }
    }

    /// Records an event.
    pub fn event(&self, message: &str) -> Result<(), Error> {
        if message.len() > MAX_EVENT_BYTES {
            return Err(Error::new(
                Status::InvalidArgument,
                format!(
                    "event message is {} bytes; at most {MAX_EVENT_BYTES} are accepted",
                    message.len()
                ),
            ));
        }
        if let Some(live) = &self.live {
            let timestamp = live.created + live.start.elapsed().as_secs_f64();
            live.worker.push_event(Event {
                message: message.to_owned(),
                timestamp,
                level: None,
            });
        }
        Ok(())
    }

    /// Records an event at `level` (`None`: as [`Run::event`]).
    pub fn event_at(&self, message: &str, level: Option<EventLevel>) -> Result<(), Error> {
        self.events(vec![(message.to_owned(), level)])
    }

    /// Records several events at once, with one time and one lock: all, or
    /// none if a message is too long.
    pub fn events(&self, messages: Vec<(String, Option<EventLevel>)>) -> Result<(), Error> {
        if let Some((m, _)) = messages.iter().find(|(m, _)| m.len() > MAX_EVENT_BYTES) {
            return Err(Error::new(
                Status::InvalidArgument,
                format!(
                    "event message is {} bytes; at most {MAX_EVENT_BYTES} are accepted",
                    m.len()
                ),
            ));
        }
        if let Some(live) = &self.live {
            let timestamp = live.created + live.start.elapsed().as_secs_f64();
            live.worker.push_events(
                messages
                    .into_iter()
                    .map(|(message, level)| Event {
                        message,
                        timestamp,
                        level,
                    })
                    .collect(),
            );
        }
        Ok(())
    }

    /// The time an event recorded now gets (UTC seconds since the epoch,
    /// on the run's clock), for [`EventBlock::push`].
    pub fn event_time(&self) -> f64 {
        match &self.live {
            Some(live) => live.created + live.start.elapsed().as_secs_f64(),
            None => crate::record::now_unix(),
        }
    }

    /// Records the events of `block`, in order, as one spool record.
    pub fn event_block(&self, block: EventBlock) {
        if let Some(live) = &self.live
            && !block.is_empty()
        {
            live.worker.push_block(block);
        }
    }

    /// Records the lines of each block, in order, each block as one spool
    /// record (one event per line).
    pub fn line_blocks(&self, blocks: impl IntoIterator<Item = LineBlock>) {
        if let Some(live) = &self.live {
            live.worker
                .push_lines(blocks.into_iter().filter(|b| !b.is_empty()));
        }
    }

    /// Sets one metadata key.
    pub fn set_metadata(&self, key: &str, value: MetaValue) -> Result<(), Error> {
        if key.trim().is_empty() {
            return Err(Error::new(
                Status::InvalidArgument,
                "metadata key must not be empty",
            ));
        }
        self.push_record(Record::Metadata(BTreeMap::from([(
            key.to_owned(),
            value.into_json(),
        )])));
        Ok(())
    }

    /// Records the unit of metric `name` (`""`: none), where the simvue
    /// client's `set_metric_units` puts it: run metadata
    /// `simvue.metrics.NAME.units`, which the server merges key by key.
    pub fn set_metric_unit(&self, name: &str, unit: &str) -> Result<(), Error> {
        check_metric_name(name)?;
        if unit.len() > 64 || unit.chars().any(char::is_control) {
            return Err(Error::new(
                Status::InvalidArgument,
                format!("unit {unit:?} must be at most 64 bytes without control characters"),
            ));
        }
        let doc = serde_json::json!({ "metrics": { name: { "units": unit } } });
        self.push_record(Record::Metadata(BTreeMap::from([(
            "simvue".to_owned(),
            doc,
        )])));
        Ok(())
    }

    /// Captures the file at `path` (copy + SHA-256) and queues its upload.
    pub fn save(&self, path: &Path, category: Category) -> Result<(), Error> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("cannot save {}", path.display()), e))?;
        if !meta.is_file() {
            return Err(Error::new(
                Status::FileNotFound,
                format!("cannot save {}: not a regular file", path.display()),
            ));
        }
        let Some(live) = &self.live else {
            return Ok(());
        };
        let record = capture_file(path, category, &live.dir)?;
        self.push_record(Record::File(record));
        Ok(())
    }

    /// Defines a metric alert for the run.
    pub fn alert(&self, alert: AlertDef) -> Result<(), Error> {
        self.push_record(Record::Alert(alert));
        Ok(())
    }

    /// Sets a folder's details.
    pub fn set_folder_details(&self, details: FolderSpec) -> Result<(), Error> {
        self.push_record(Record::Folder(details));
        Ok(())
    }

    /// Sets the status `finish` will record.
    pub fn set_status(&self, status: RunStatus) -> Result<(), Error> {
        if let Some(live) = &self.live {
            *live.final_status.lock() = Some(status);
        }
        Ok(())
    }

    /// True once the server asked the run to stop.
    pub fn abort_requested(&self) -> bool {
        self.live
            .as_ref()
            .is_some_and(|l| l.worker.abort_requested())
    }

    /// Waits until what was logged so far is in the spool and, online,
    /// acknowledged by the server, or until `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        live.worker.flush(Instant::now() + timeout)
    }

    /// Ends the run: records its final status and waits, up to the finish
    /// deadline, for everything to reach the spool and the server.
    pub fn finish(self) -> Result<(), Error> {
        self.finish_leaving(None).map(|_| ())
    }

    /// As [`Run::finish`], except that when, once everything is in the
    /// spool, more than `leave_over` bytes of it are still to be delivered,
    /// it does not wait for the server: it returns `Some(bytes left)` and the
    /// rest is for `simtrack sync` (the sending thread ends with the process;
    /// a request it has in flight is resent under the same idempotency key).
    /// For a process with something better to do than wait, such as
    /// `simtrack run` handing a burst of output to a background sync.
    pub fn finish_leaving(mut self, leave_over: Option<u64>) -> Result<Option<u64>, Error> {
        let Some(live) = self.live.take() else {
            return Ok(None);
        };
        let deadline = Instant::now() + live.finish_timeout;
        live.grids.close(&live.dir.files());
        let status = live.final_status.lock().unwrap_or(RunStatus::Completed);
        let finish = FinishRecord {
            status,
            endtime: now_unix(),
        };
        live.worker.shutdown_leaving(finish, deadline, leave_over)
    }
}

impl Drop for Run {
    /// The safety net for a run dropped without `finish` (Rust callers): the
    /// writer still gets everything into the spool, marked as failed.
    fn drop(&mut self) {
        if let Some(live) = &mut self.live {
            let status = live.final_status.lock().unwrap_or(RunStatus::Failed);
            live.worker.abandon(status);
        }
    }
}

fn is_silent_rank(config: &Config) -> bool {
    config.ranks == Ranks::Zero
        && crate::context::mpi_rank_and_size(&|k| std::env::var(k).ok())
            .is_some_and(|(rank, _)| rank != 0)
}

fn generated_name(id: &str) -> String {
    const ADJ: [&str; 8] = [
        "amber", "brisk", "calm", "deep", "eager", "fierce", "gentle", "hollow",
    ];
    const NOUN: [&str; 8] = [
        "river", "comet", "lattice", "vortex", "plume", "shock", "front", "eddy",
    ];
    let h = u64::from_str_radix(&id[..8.min(id.len())], 16).unwrap_or(0);
    format!(
        "{}-{}-{}",
        ADJ[(h % 8) as usize],
        NOUN[((h >> 3) % 8) as usize],
        &id[..6.min(id.len())]
    )
}

/// Says once per process when other users may read the spool (a directory
/// made before spools were private, or a shared cache directory): what a run
/// logs is its owner's. New directories are created 0700, files 0600.
fn warn_if_shared(offline_dir: &Path) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let loose = [offline_dir.to_path_buf(), runs_dir(offline_dir)]
        .into_iter()
        .any(|d| crate::spool::shared_with_others(&d));
    if loose && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        crate::warn::warn(&format!(
            "simtrack: warning: other users can read the spool {}; run `chmod -R go-rwx {}`",
            offline_dir.display(),
            offline_dir.display()
        ));
    }
}

/// Copies `path` into the run's spool, hashing it on the way.
fn capture_file(path: &Path, category: Category, dir: &RunDir) -> Result<FileRecord, Error> {
    let mut src = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let tmp = dir
        .files()
        .join(format!("incoming-{}", uuid::Uuid::new_v4().simple()));
    let mut dst = crate::spool::private_file()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)
        .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::io(format!("cannot read {}", path.display()), e));
            }
        };
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
        size += n as u64;
    }
    dst.sync_data()
        .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
    let sha256: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stored = dir.files().join(&sha256);
    std::fs::rename(&tmp, &stored)
        .map_err(|e| Error::io(format!("cannot store {}", stored.display()), e))?;
    let name = path
        .file_name()
        .map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
    let original_path = std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    Ok(FileRecord {
        mime_type: mime_for(&name).to_owned(),
        name,
        original_path,
        category,
        sha256: sha256.clone(),
        size,
        stored: format!("files/{sha256}"),
    })
}

fn mime_for(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" | "nml" | "in" | "dat" | "out" | "inp" | "cfg" | "ini" | "f90" | "f"
        | "f95" | "f03" | "f08" | "c" | "h" | "cpp" | "cc" | "hpp" | "rs" | "sh" | "toml"
        | "yaml" | "yml" | "md" => "text/plain",
        "py" => "text/x-python",
        "csv" => "text/csv",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "h5" | "hdf5" => "application/x-hdf5",
        "nc" => "application/x-netcdf",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Delivers, on a thread of its own, the runs on this spool that a process
/// killed while it logged left for this server (see
/// [`crate::sync::deliver_dead_runs`]): their last points reach the server
/// without a `simtrack sync`. Prints one line per run it delivered.
fn deliver_dead_runs_in_background(config: &Config, own: &str) {
    let Some(url) = config.url.clone() else {
        return;
    };
    let config = config.clone();
    let own = own.to_owned();
    let spawned = std::thread::Builder::new()
        .name("simtrack-recover".into())
        .spawn(move || {
            let Ok(transport) = HttpTransport::new(&config) else {
                return;
            };
            let reports =
                match crate::sync::deliver_dead_runs(&config.offline_dir, &url, transport, &own) {
                    Ok(r) => r,
                    Err(e) => {
                        crate::warn::warn(&format!(
                            "simtrack: cannot deliver runs left by dead processes in {}: {}; `simtrack sync` does it",
                            config.offline_dir.display(),
                            e.message
                        ));
                        return;
                    }
                };
            for r in reports {
                if !matches!(r.outcome, crate::sync::Outcome::InUse) {
                    crate::warn::warn(&format!("simtrack: a run left by a process that died: {r}"));
                }
            }
        });
    // Without the thread the runs wait for `simtrack sync`, as before.
    drop(spawned);
}
