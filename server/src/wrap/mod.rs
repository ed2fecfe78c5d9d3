//! `simtrack run [OPTIONS] -- CMD [ARGS...]`: tracks an unmodified program
//! as one run through the library (same configuration, spool, sync, abort
//! and heartbeats as a linked solver).
//!
//! The child's output is passed through and recorded ([`output`]), turned
//! into metrics by rules ([`rules`]); signals sent to the wrapper reach the
//! child, and the child tree's resources are sampled ([`child`]). The
//! child's fate is the run's status and the wrapper's exit code.

mod child;
mod output;
mod pty;
mod rules;

use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use simtrack::config::Config;
use simtrack::record::{Category, RunStatus};
use simtrack::{InitOptions, Run};

use rules::{Matcher, Rules, Stream};

/// Options of `simtrack run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Run name [default: generated].
    #[arg(long)]
    name: Option<String>,
    /// Folder of the run [default: /].
    #[arg(long)]
    folder: Option<String>,
    /// A tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// KEY=VALUE metadata (repeatable); integers, numbers and true/false stay typed.
    #[arg(long = "metadata", value_name = "KEY=VALUE")]
    metadata: Vec<String>,
    /// Run description.
    #[arg(long)]
    description: Option<String>,
    /// NAME=REGEX (repeatable): a matching line logs NAME, the first capture group as its value.
    #[arg(long = "metric", value_name = "NAME=REGEX")]
    metrics: Vec<String>,
    /// REGEX whose first capture group is the step of the metrics that follow.
    #[arg(long, value_name = "REGEX")]
    step_regex: Option<String>,
    /// TOML rules file (repeatable); see `docs/run.md`.
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Files saved as inputs at start (glob, repeatable).
    #[arg(long = "input", value_name = "GLOB")]
    inputs: Vec<String>,
    /// Files saved as outputs at exit (glob, repeatable).
    #[arg(long = "output", value_name = "GLOB")]
    outputs: Vec<String>,
    /// Files saved as code at start (glob, repeatable).
    #[arg(long = "code", value_name = "GLOB")]
    code: Vec<String>,
    /// Seconds between SIGTERM and SIGKILL when the run is aborted.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    kill_after: f64,
    /// Whether the program's stdout is a pseudo-terminal, so it prints line
    /// by line: auto = when simtrack's own stdout is a terminal.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pty: pty::When,
    /// The program and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

fn metadata_value(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = text.parse::<f64>()
        && f.is_finite()
    {
        return Value::from(f);
    }
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(text.to_owned()),
    }
}

/// What must be right before a run starts; errors are usage errors.
fn prepare(args: &RunArgs) -> Result<(Rules, BTreeMap<String, Value>), String> {
    let mut rules = Rules::default();
    for m in &args.metrics {
        rules.add_metric_arg(m)?;
    }
    if let Some(s) = &args.step_regex {
        rules.set_step(s)?;
    }
    for f in &args.rules {
        let text =
            std::fs::read_to_string(f).map_err(|e| format!("--rules {}: {e}", f.display()))?;
        rules.add_file(&text, &f.display().to_string())?;
    }
    let mut meta = BTreeMap::new();
    for kv in &args.metadata {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--metadata {kv:?}: expected KEY=VALUE"))?;
        meta.insert(k.trim().to_owned(), metadata_value(v));
    }
    for g in args.inputs.iter().chain(&args.outputs).chain(&args.code) {
        glob::Pattern::new(g).map_err(|e| format!("invalid glob {g:?}: {e}"))?;
    }
    if !(args.kill_after.is_finite() && args.kill_after >= 0.0) {
        return Err("--kill-after: expected a number of seconds >= 0".to_owned());
    }
    Ok((rules, meta))
}

fn say(msg: &str) {
    eprintln!("simtrack run: {msg}");
}

/// Saves the files `globs` match; says what matched nothing or failed.
fn save_files(run: &Run, globs: &[String], category: Category) {
    for g in globs {
        let paths: Vec<PathBuf> = match glob::glob(g) {
            Ok(p) => p.filter_map(Result::ok).filter(|p| p.is_file()).collect(),
            Err(_) => Vec::new(),
        };
        if paths.is_empty() {
            let m = format!("no file matches {g:?} ({})", category.as_str());
            say(&m);
            let _ = run.event(&format!("simtrack run: {m}"));
        }
        for p in paths {
            if let Err(e) = run.save(&p, category) {
                say(&e.to_string());
                let _ = run.event(&format!("simtrack run: {e}"));
            }
        }
    }
}

/// Exit code of a usage error, as clap uses.
const USAGE: u8 = 2;

/// `simtrack run`.
pub fn main(args: RunArgs) -> ExitCode {
    let (rules, mut meta) = match prepare(&args) {
        Ok(x) => x,
        Err(e) => {
            say(&e);
            return ExitCode::from(USAGE);
        }
    };
    let mut config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            say(&e.to_string());
            return ExitCode::FAILURE;
        }
    };
    // The wrapper samples the child's tree itself; its own use is noise.
    let resources_every = config.resources_interval.take();
    let slurm = slurm_times();
    if let Some(secs) = slurm.limit_secs {
        meta.entry("slurm_time_limit_secs".to_owned())
            .or_insert(Value::from(secs));
    }
    meta.insert(
        "command".to_owned(),
        Value::String(shell_words(&args.command)),
    );
    let opts = InitOptions {
        name: args.name.clone(),
        metadata_json: Some(Value::Object(meta.into_iter().collect()).to_string()),
        tags: (!args.tags.is_empty()).then(|| args.tags.join(",")),
        description: args.description.clone(),
        folder: args.folder.clone(),
    };
    let run = match Run::init_with(opts, &config) {
        Ok(r) => r,
        Err(e) => {
            say(&format!("cannot start the run: {e}"));
            return ExitCode::FAILURE;
        }
    };
    save_files(&run, &args.code, Category::Code);
    save_files(&run, &args.inputs, Category::Input);

    child::install_handlers();
    let own_group = !child::stdin_is_tty();
    let mut master = None;
    let stdout = match args.pty.wanted().then(pty::open) {
        Some(Ok(p)) => {
            master = Some(p.master);
            Stdio::from(p.slave)
        }
        Some(Err(e)) => {
            say(&format!(
                "cannot open a pseudo-terminal ({e}); the program's stdout is a pipe"
            ));
            Stdio::piped()
        }
        None => Stdio::piped(),
    };
    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..])
        .stdin(Stdio::inherit())
        .stdout(stdout)
        .stderr(Stdio::piped());
    if own_group {
        cmd.process_group(0);
    }
    let mut proc = match cmd.spawn() {
        Ok(p) => p,
        Err(e) => {
            let (code, why) = match e.kind() {
                std::io::ErrorKind::NotFound => (127, "command not found".to_owned()),
                std::io::ErrorKind::PermissionDenied => (126, "permission denied".to_owned()),
                _ => (126, e.to_string()),
            };
            let msg = format!("{}: {why}", args.command[0]);
            say(&msg);
            let _ = run.event(&format!("simtrack run: cannot start {msg}"));
            let _ = run.set_metadata("exit_code", simtrack::record::MetaValue::Int(code));
            let _ = run.set_metadata("failure", simtrack::record::MetaValue::Str(msg));
            let _ = run.set_status(RunStatus::Failed);
            finish(run, &config, RunStatus::Failed);
            return ExitCode::from(code as u8);
        }
    };
    // Our copy of the terminal's program end: once the program and its
    // children have closed theirs, reading the other end ends.
    drop(cmd);
    // Where a new size of the user's terminal goes (the program's end is
    // closed; the size is the terminal's, set through either end).
    let resize = master.as_ref().and_then(|m| m.try_clone().ok());
    if resize.is_some() {
        pty::watch_resizes();
    }
    let pid = proc.id();
    child::set_target(pid, own_group);
    let _ = run.event(&format!(
        "simtrack run: started {} (pid {pid})",
        shell_words(&args.command)
    ));

    let (tx, rx) = output::queue();
    let (pass_tx, pass_rx) = output::queue();
    let (ended, readers_ended) = std::sync::mpsc::channel::<()>();
    let sinks = [
        output::terminal(Stream::Stdout),
        output::terminal(Stream::Stderr),
    ]
    .map(|sink| {
        sink.map_err(|e| say(&format!("cannot copy the program's output: {e}")))
            .ok()
    });
    if let Err(e) = output::spawn_pass_through(pass_rx, sinks, tx) {
        say(&format!("cannot read the program's output: {e}"));
    }
    let mut readers = Vec::new();
    let mut returns = [None, None];
    let pipe = |fd: Option<std::os::fd::OwnedFd>| {
        fd.map(|fd| {
            output::widen_pipe(&fd);
            output::Source::pipe(fd)
        })
    };
    for (stream, source) in [
        (
            Stream::Stdout,
            master
                .map(output::Source::terminal)
                .or_else(|| pipe(proc.stdout.take().map(Into::into))),
        ),
        (Stream::Stderr, pipe(proc.stderr.take().map(Into::into))),
    ] {
        let Some(source) = source else { continue };
        let started = output::spawn_reader(source, stream, pass_tx.clone(), ended.clone());
        match started {
            Ok((thread, back)) => {
                readers.push(thread);
                returns[stream as usize] = Some(back);
            }
            Err(e) => say(&format!("cannot read the program's output: {e}")),
        }
    }
    drop(pass_tx);
    drop(ended);

    let mut matcher = Matcher::new(rules);
    let give_up = AtomicBool::new(false);
    let mut stop: Option<Stop> = None;
    let status = std::thread::scope(|s| {
        let parser = s.spawn(|| output::parse(rx, returns, &give_up, &run, &mut matcher));
        let status = supervise(
            &mut proc,
            &run,
            resources_every,
            args.kill_after,
            resize.as_ref(),
            &mut stop,
        );
        // Grandchildren may hold the pipes open after the child is gone:
        // wait a little for them, then stop waiting (readers end with them).
        let deadline = Instant::now() + Duration::from_secs(2);
        // Every reader has ended once the channel is disconnected.
        let all_read = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match readers_ended.recv_timeout(left) {
                Ok(()) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break true,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break false,
            }
        };
        for r in readers.drain(..) {
            if all_read || r.is_finished() {
                let _ = r.join();
            }
        }
        if !all_read {
            say("the program's output is still open (a background process?); not waiting for it");
            give_up.store(true, Ordering::Release);
        }
        let _ = parser.join();
        status
    });

    for (metric, (n, first)) in &matcher.unparsed {
        let m = format!(
            "{n} value(s) of metric {metric:?} did not parse as numbers and were not logged (first: {first:?})"
        );
        say(&m);
        let _ = run.event(&format!("simtrack run: {m}"));
    }
    save_files(&run, &args.outputs, Category::Output);

    let (code, run_status, text) = match (status.code(), status.signal()) {
        (Some(0), _) => (0u8, RunStatus::Completed, "exited with code 0".to_owned()),
        (Some(c), _) => {
            let _ = run.set_metadata("exit_code", simtrack::record::MetaValue::Int(c.into()));
            (c as u8, RunStatus::Failed, format!("exited with code {c}"))
        }
        (None, Some(sig)) => {
            let name = child::signal_name(sig);
            let _ = run.set_metadata(
                "exit_signal",
                simtrack::record::MetaValue::Str(name.clone()),
            );
            let _ = run.set_metadata(
                "exit_code",
                simtrack::record::MetaValue::Int(128 + i64::from(sig)),
            );
            let st = if child::is_crash(sig) && !status_aborted(&run) && stop.is_none() {
                RunStatus::Failed
            } else {
                RunStatus::Terminated
            };
            let core = if status.core_dumped() {
                ", core dumped"
            } else {
                ""
            };
            ((128 + sig) as u8, st, format!("killed by {name}{core}"))
        }
        _ => (1, RunStatus::Failed, "ended in an unknown way".to_owned()),
    };
    let _ = run.event(&format!("simtrack run: the program {text}"));
    // Stopped from outside (a scheduler's time limit or scancel, a kill):
    // the program's end is that stop, whatever code it chose to exit with,
    // unless it says it completed.
    let run_status = match &stop {
        Some(s) => {
            let why = s.reason(&slurm);
            let _ = run.set_metadata(
                "stop_signal",
                simtrack::record::MetaValue::Str(child::signal_name(s.signal)),
            );
            let _ = run.set_metadata("stop_reason", simtrack::record::MetaValue::Str(why.clone()));
            let _ = run.event(&format!(
                "simtrack run: stopped from outside by {} ({why})",
                child::signal_name(s.signal)
            ));
            if run_status == RunStatus::Completed {
                run_status
            } else {
                RunStatus::Terminated
            }
        }
        None => run_status,
    };
    let _ = run.set_status(run_status);
    finish(run, &config, run_status);
    ExitCode::from(code)
}

fn status_aborted(run: &Run) -> bool {
    run.abort_requested()
}

/// Spool backlog (bytes not yet acknowledged) above which the wrapper does
/// not wait for the server at exit: a few MB take the server seconds.
const WAIT_BACKLOG_BYTES: u64 = 1 << 20;

/// Ends the run. The wrapper waits for the spool (synced: the data is safe),
/// then, online, delivers what is left itself when that is little (as the
/// library's finish would), else sends the final status ahead of the rest
/// and leaves the rest to a `simtrack sync --run ID` started in the
/// background, so a burst of output does not hold the job script up. If
/// that background delivery is cut short (the end of a batch job kills it),
/// everything stays in the spool for the next `simtrack sync`.
fn finish(run: Run, config: &Config, status: RunStatus) {
    let dir = run.spool_dir().map(simtrack::spool::RunDir::new);
    let online = config.mode == simtrack::config::Mode::Online && run.is_recording();
    let id = run.id().to_owned();
    match run.finish_within(online.then_some(Duration::ZERO)) {
        Ok(()) => return,
        Err(e) if !(online && e.status == simtrack::Status::Undelivered) => {
            say(&e.to_string());
            return;
        }
        Err(_) => {}
    }
    let Some(dir) = dir else { return };
    if let Err(e) = deliver_rest(&dir, &id, config, status) {
        say(&format!(
            "{e}; the run is complete in the spool {} and `simtrack sync` uploads it",
            dir.root.display()
        ));
    }
}

fn deliver_rest(
    dir: &simtrack::spool::RunDir,
    id: &str,
    config: &Config,
    status: RunStatus,
) -> Result<(), simtrack::Error> {
    use simtrack::delivery::{Courier, Pumped};
    let transport = simtrack::transport::http::HttpTransport::new(config)?;
    let url = config.url.clone().unwrap_or_default();
    let mut courier = Courier::open(dir.clone(), transport, &url)?;
    let size = std::fs::metadata(dir.log()).map_or(0, |m| m.len());
    let backlog = size.saturating_sub(courier.state().acked_offset);
    if backlog <= WAIT_BACKLOG_BYTES {
        let deadline = Instant::now() + config.finish_timeout;
        loop {
            match courier.pump(Some(deadline), &|| false)? {
                Pumped::CaughtUp => return Ok(()),
                Pumped::Backoff { retry_in, .. } if Instant::now() + retry_in < deadline => {
                    std::thread::sleep(retry_in);
                }
                _ => break,
            }
        }
    }
    let finish = simtrack::record::FinishRecord {
        status,
        endtime: simtrack::record::now_unix(),
    };
    let early = courier.send_finish_early(&finish).unwrap_or(false);
    drop(courier);
    let exe = std::env::current_exe()
        .map_err(|e| simtrack::Error::io("cannot find the simtrack executable", e))?;
    let mut cmd = Command::new(exe);
    cmd.args(["sync", "--run", id, "--cache"])
        .arg(&config.offline_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Its own session: the job script's end or a Ctrl-C does not stop it
    // (a batch system's end-of-job cleanup may; the spool keeps the rest).
    // SAFETY: setsid is async-signal-safe and touches only the new process.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| simtrack::Error::io("cannot start the background `simtrack sync`", e))?;
    say(&format!(
        "{} of output still to upload: continuing in the background (simtrack sync --run {id}, pid {}){}",
        human_bytes(backlog),
        child.id(),
        if early {
            "; the run's final status is already on the server"
        } else {
            ""
        }
    ));
    Ok(())
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MB", n as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} kB", n as f64 / 1024.0)
    }
}

/// Waits for the child: forwards signals (recording them), passes a new size
/// of the user's terminal on to the program's (`resize`), honours an abort
/// (SIGTERM, then SIGKILL after `kill_after`), samples resources.
fn supervise(
    proc: &mut std::process::Child,
    run: &Run,
    resources_every: Option<Duration>,
    kill_after: f64,
    resize: Option<&std::os::fd::OwnedFd>,
    stop: &mut Option<Stop>,
) -> std::process::ExitStatus {
    let pid = proc.id();
    let exit_wait = child::ExitWait::new(pid);
    let mut kill_at: Option<Instant> = None;
    let mut next_sample = Instant::now();
    let mut last_cpu: Option<(Instant, f64)> = None;
    loop {
        // Signals first, so one that ended the child is recorded too.
        for sig in child::take_received() {
            let _ = run.event(&format!(
                "simtrack run: received {}, forwarded to the program",
                child::signal_name(sig)
            ));
            if stop.is_none() && child::is_stop(sig) {
                *stop = Some(Stop {
                    signal: sig,
                    at: simtrack::record::now_unix(),
                });
            }
        }
        if let Some(fd) = resize
            && pty::resized()
        {
            use std::os::fd::AsFd;
            pty::copy_size(fd.as_fd());
        }
        match proc.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) => {}
            Err(_) => {
                if let Ok(s) = proc.wait() {
                    return s;
                }
            }
        }
        if kill_at.is_none() && run.abort_requested() {
            let _ = run.event(&format!(
                "simtrack run: abort requested; sending SIGTERM (SIGKILL after {kill_after} s)"
            ));
            child::send(libc::SIGTERM);
            kill_at = Some(Instant::now() + Duration::from_secs_f64(kill_after));
        }
        if let Some(t) = kill_at
            && Instant::now() >= t
        {
            let _ = run.event("simtrack run: the program outlived --kill-after; sending SIGKILL");
            child::send(libc::SIGKILL);
            kill_at = Some(Instant::now() + Duration::from_secs(3600));
        }
        if let Some(every) = resources_every
            && Instant::now() >= next_sample
        {
            next_sample = Instant::now() + every;
            if let Some(u) = child::tree_usage(pid) {
                let now = Instant::now();
                if let Some((t0, c0)) = last_cpu {
                    let wall = now.duration_since(t0).as_secs_f64();
                    if wall > 0.0 {
                        let pct = (100.0 * (u.cpu_secs - c0) / wall).max(0.0);
                        let _ = run.log("resources/cpu.usage.percentage", pct, -1);
                    }
                }
                last_cpu = Some((now, u.cpu_secs));
                let _ = run.log(
                    "resources/cpu.usage.memory",
                    u.rss_bytes as f64 / (1024.0 * 1024.0),
                    -1,
                );
                let _ = run.log("resources/threads", u.threads as f64, -1);
                let _ = run.log("resources/processes", u.processes as f64, -1);
            }
        }
        // Until the child ends (at once, with a pidfd), a signal comes
        // (the wait is interrupted), or the next thing to do is due.
        let mut due = Instant::now() + POLL_EVERY;
        if let Some(t) = kill_at {
            due = due.min(t);
        }
        if resources_every.is_some() {
            due = due.min(next_sample);
        }
        exit_wait.wait_until(due);
    }
}

/// How often the supervisor looks for an abort request while the child runs.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// A stopping signal (SIGTERM, SIGINT, SIGHUP) the wrapper received from
/// outside, and when (Unix seconds).
#[derive(Debug, Clone, Copy)]
struct Stop {
    signal: i32,
    at: f64,
}

impl Stop {
    /// Why the job was stopped, as precisely as the facts allow: SLURM's own
    /// word (`scontrol show job`: state TIMEOUT or reason TimeLimit,
    /// CANCELLED, PREEMPTED, NODE_FAIL), else a signal that came at or after
    /// the job's end time is the time limit, else only that a signal came.
    fn reason(&self, slurm: &SlurmTimes) -> String {
        let Ok(job) = std::env::var("SLURM_JOB_ID") else {
            return "signal from outside the program (not in a SLURM job)".to_owned();
        };
        if let Some(text) = command_output("scontrol", &["show", "job", "-o", &job])
            && let Some(why) = slurm_stop_reason(&text)
        {
            return why;
        }
        match slurm.end_unix {
            // SLURM checks time limits every 30 s or so; a little early
            // counts too (clocks, rounding to seconds).
            Some(end) if self.at >= end - 5.0 => "SLURM time limit".to_owned(),
            Some(_) => {
                "SLURM job stopped before its time limit (scancel, preemption or another signal)"
                    .to_owned()
            }
            None => {
                "SLURM job with no known time limit stopped (scancel, preemption or another signal)"
                    .to_owned()
            }
        }
    }
}

/// What `scontrol show job -o` says about why a job is ending, if anything.
fn slurm_stop_reason(text: &str) -> Option<String> {
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .map(str::to_owned)
    };
    let state = field("JobState=").unwrap_or_default();
    let reason = field("Reason=").unwrap_or_default();
    Some(match (state.as_str(), reason.as_str()) {
        ("TIMEOUT", _) | (_, "TimeLimit") => "SLURM time limit (TIMEOUT)".to_owned(),
        ("CANCELLED", _) => "SLURM job cancelled (scancel)".to_owned(),
        ("PREEMPTED", _) => "SLURM job preempted".to_owned(),
        ("NODE_FAIL", _) => "SLURM node failure".to_owned(),
        ("DEADLINE", _) => "SLURM deadline reached".to_owned(),
        _ => return None,
    })
}

/// The job's time limit (seconds) and projected end (Unix seconds):
/// `SLURM_JOB_END_TIME` where SLURM exports it (23.02 on), else asked of
/// `squeue` once at start (limit and time left). Empty outside a job, when
/// unlimited, or when squeue does not answer within 3 s.
#[derive(Debug, Default, Clone, Copy)]
struct SlurmTimes {
    limit_secs: Option<i64>,
    end_unix: Option<f64>,
}

fn slurm_times() -> SlurmTimes {
    let Ok(job) = std::env::var("SLURM_JOB_ID") else {
        return SlurmTimes::default();
    };
    let now = simtrack::record::now_unix();
    let mut t = SlurmTimes::default();
    if let Some(out) = command_output("squeue", &["-h", "-j", &job, "-o", "%l %L"]) {
        let mut f = out.split_whitespace();
        t.limit_secs = f.next().and_then(parse_slurm_duration);
        t.end_unix = f
            .next()
            .and_then(parse_slurm_duration)
            .map(|left| now + left as f64);
    }
    if let Some(end) = std::env::var("SLURM_JOB_END_TIME")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|e| *e > 0.0)
    {
        t.end_unix = Some(end);
    }
    t
}

/// The stdout of a short command, or `None` if it fails or takes over 3 s.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(3);
    while child.try_wait().ok()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    Some(out)
}

/// SLURM's `[days-]hours:minutes:seconds`, `minutes:seconds` or `minutes`.
fn parse_slurm_duration(text: &str) -> Option<i64> {
    let (days, rest) = match text.split_once('-') {
        Some((d, r)) => (d.parse::<i64>().ok()?, r),
        None => (0, text),
    };
    let parts: Vec<i64> = rest
        .split(':')
        .map(|p| p.parse::<i64>().ok())
        .collect::<Option<_>>()?;
    let (h, m, s) = match (text.contains('-'), parts.as_slice()) {
        (_, [h, m, s]) => (*h, *m, *s),
        (true, [h, m]) => (*h, *m, 0),
        (true, [h]) => (*h, 0, 0),
        (false, [m, s]) => (0, *m, *s),
        (false, [m]) => (0, *m, 0),
        _ => return None,
    };
    Some(((days * 24 + h) * 60 + m) * 60 + s)
}

/// The command as one line a shell would read back the same.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_values_keep_their_types() {
        assert_eq!(metadata_value("3"), Value::from(3));
        assert_eq!(metadata_value("0.5"), Value::from(0.5));
        assert_eq!(metadata_value("true"), Value::Bool(true));
        assert_eq!(metadata_value("abc"), Value::from("abc"));
        assert_eq!(metadata_value("nan"), Value::from("nan"));
    }

    #[test]
    fn slurm_durations_become_seconds() {
        assert_eq!(parse_slurm_duration("1:00"), Some(60));
        assert_eq!(parse_slurm_duration("2:00:00"), Some(7200));
        assert_eq!(parse_slurm_duration("1-00:00:01"), Some(86401));
        assert_eq!(parse_slurm_duration("1-2"), Some(93600));
        assert_eq!(parse_slurm_duration("UNLIMITED"), None);
    }

    #[test]
    fn scontrol_says_why_a_job_ends() {
        let line = |s: &str, r: &str| {
            format!("JobId=7 JobName=x JobState={s} Reason={r} Dependency=(null)")
        };
        assert_eq!(
            slurm_stop_reason(&line("TIMEOUT", "TimeLimit")).as_deref(),
            Some("SLURM time limit (TIMEOUT)")
        );
        assert_eq!(
            slurm_stop_reason(&line("COMPLETING", "TimeLimit")).as_deref(),
            Some("SLURM time limit (TIMEOUT)")
        );
        assert_eq!(
            slurm_stop_reason(&line("CANCELLED", "None")).as_deref(),
            Some("SLURM job cancelled (scancel)")
        );
        assert_eq!(slurm_stop_reason(&line("RUNNING", "None")), None);
        assert_eq!(slurm_stop_reason(&line("COMPLETING", "None")), None);
    }

    #[test]
    fn commands_are_quoted_for_a_shell() {
        assert_eq!(
            shell_words(&["./a".into(), "x y".into(), "it's".into()]),
            r"./a 'x y' 'it'\''s'"
        );
    }
}
