//! `simtrack run [OPTIONS] -- CMD [ARGS...]`: tracks an unmodified program
//! as one run through the library (same configuration, spool, sync, abort
//! and heartbeats as a linked solver).
//!
//! The child's output is passed through and recorded ([`output`]; its
//! stdout a terminal when ours is one, [`pty`]; with `--direct` it writes
//! its output files itself and they are read back, [`direct`]), turned
//! into metrics by
//! rules ([`rules`]); signals sent to the wrapper reach the child, and the
//! child tree's resources are sampled ([`child`]). The child's fate is the
//! run's status and the wrapper's exit code; a stop from outside is
//! explained with what SLURM says ([`slurm`]); the run ends with its spool
//! synced and, online, the rest delivered or handed to a background sync
//! ([`finish`]).

mod child;
mod direct;
mod finish;
mod output;
mod pty;
mod rules;
mod slurm;

use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use simtrack::config::Config;
use simtrack::record::{Category, LineBlock, RunStatus};
use simtrack::{InitOptions, Run};

use finish::finish;
use rules::{Matcher, Rules};
use slurm::{Stop, slurm_times};

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
    /// A stdout or stderr that is a file (a batch job's) is written by the
    /// program itself and read back: the program never waits for the
    /// wrapper and outlives it (see `docs/run.md` for the cost).
    #[arg(long)]
    direct: bool,
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
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| format!("--metadata {kv:?}: expected KEY=VALUE"))?;
        meta.insert(k.trim().to_owned(), metadata_value(v));
    }
    for g in args.inputs.iter().chain(&args.outputs).chain(&args.code) {
        glob::Pattern::new(g).map_err(|e| format!("invalid glob {g:?}: {e}"))?;
    }
    // What the run would be refused for: a mistake on the command line is
    // said before the program runs, not by running it untracked.
    if let Some(f) = &args.folder {
        simtrack::record::normalize_folder(f).map_err(|e| format!("--folder: {}", e.message))?;
    }
    if let Some(n) = args
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        simtrack::record::check_name("--name", n).map_err(|e| e.message)?;
    }
    for t in args
        .tags
        .iter()
        .flat_map(|t| simtrack::record::parse_tags(t))
    {
        simtrack::record::check_name("--tag", &t).map_err(|e| e.message)?;
    }
    if !(args.kill_after.is_finite() && args.kill_after >= 0.0) {
        return Err("--kill-after: expected a number of seconds >= 0".to_owned());
    }
    Ok((rules, meta))
}

/// Tells the user `msg` on stderr.
fn say(msg: &str) {
    to_stderr(&format!("simtrack run: {msg}"));
}

/// Writes `line` and a newline to our stderr, through a descriptor of it
/// (not `eprintln!`): it may be a file the program's output is read back
/// from, where our writes are noted (see `direct`). The library's warnings
/// come here too.
fn to_stderr(line: &str) {
    use std::os::fd::AsFd;
    let err = std::io::stderr();
    let _lock = err.lock();
    if let Ok(fd) = err.as_fd().try_clone_to_owned() {
        let text = format!("{line}\n");
        let _ = direct::write_stderr(&mut std::fs::File::from(fd), text.as_bytes());
    }
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
///
/// The program starts as early as it can: right after the command line and
/// the configuration are checked. The run is set up while it runs (its
/// spool, the system's description, what SLURM says of the job's time
/// limit), so none of that delays the job. Only files saved at start
/// (`--input`, `--code`) come first: they are saved before the program can
/// change them.
pub fn main(args: RunArgs) -> ExitCode {
    simtrack::warn::set_sink(to_stderr);
    let (rules, meta) = match prepare(&args) {
        Ok(x) => x,
        Err(e) => {
            say(&e);
            return ExitCode::from(USAGE);
        }
    };
    let mut config = match Config::load() {
        Ok(c) => c,
        Err(e) => return untracked(&args.command, &e.to_string()),
    };
    // The wrapper samples the child's tree itself; its own use is noise.
    let resources_every = config.resources_interval.take();
    // The run starts after the output's threads: what it needs done while
    // there is one thread is done now.
    Run::prepare_process();
    let user_limit = meta.contains_key(SLURM_LIMIT_KEY);
    let mut opts = Some(init_options(&args, meta));
    let mut init = || Run::init_with(opts.take().unwrap_or_default(), &config);
    let mut early_run = None;
    if !args.code.is_empty() || !args.inputs.is_empty() {
        let run = match init() {
            Ok(r) => r,
            Err(e) => return untracked(&args.command, &format!("cannot start the run: {e}")),
        };
        save_files(&run, &args.code, Category::Code);
        save_files(&run, &args.inputs, Category::Input);
        early_run = Some(run);
    }

    child::install_handlers();
    let own_group = !child::stdin_is_tty();
    let mut master = None;
    // Dropped once the program has ended: reading its output files ends then.
    let (running_out, ended_out) = std::sync::mpsc::channel::<()>();
    let (running_err, ended_err) = std::sync::mpsc::channel::<()>();
    let wants_pty = args.pty.wanted();
    let [tail_out, tail_err] = if args.direct {
        direct::tails([ended_out, ended_err], !wants_pty)
    } else {
        [None, None]
    };
    let stdout = match wants_pty.then(pty::open) {
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
        None if tail_out.is_some() => Stdio::inherit(),
        None => Stdio::piped(),
    };
    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..])
        .stdin(Stdio::inherit())
        .stdout(stdout)
        .stderr(if tail_err.is_some() {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
    if own_group {
        cmd.process_group(0);
    }
    let mut proc = match cmd.spawn() {
        Ok(p) => p,
        Err(e) => {
            let (code, why) = cannot_start(&e);
            let msg = format!("{}: {why}", args.command[0]);
            let run = match early_run.map_or_else(init, Ok) {
                Ok(r) => r,
                Err(e) => {
                    say(&format!("cannot start the run: {e}"));
                    say(&msg);
                    return ExitCode::from(code);
                }
            };
            say(&msg);
            let _ = run.event(&format!("simtrack run: cannot start {msg}"));
            let _ = run.set_metadata("exit_code", simtrack::record::MetaValue::Int(code.into()));
            let _ = run.set_metadata("failure", simtrack::record::MetaValue::Str(msg));
            let _ = run.set_status(RunStatus::Failed);
            finish(run, &config, RunStatus::Failed);
            return ExitCode::from(code);
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
    let spawned_at = Instant::now();
    let pid = proc.id();
    child::set_target(pid, own_group);
    let started = output::start([
        master
            .map(output::Source::terminal)
            .or_else(|| tail_out.map(output::Source::file))
            .or_else(|| proc.stdout.take().map(|p| output::Source::pipe(p.into()))),
        tail_err
            .map(output::Source::file)
            .or_else(|| proc.stderr.take().map(|p| output::Source::pipe(p.into()))),
    ]);

    let run = match early_run.map_or_else(init, Ok) {
        Ok(r) => r,
        Err(e) => {
            say(&format!(
                "cannot start the run: {e}; the program runs untracked"
            ));
            let status = unrecorded(&mut proc, started, (running_out, running_err));
            return ExitCode::from(exit_code(status));
        }
    };
    // At the time the program started (its first lines, read before the
    // run was set up, carry the times they were read).
    let mut started_event = LineBlock::new(
        run.event_time() - spawned_at.elapsed().as_secs_f64(),
        None,
        0,
    );
    let _ = started_event.push(
        &format!(
            "simtrack run: started {} (pid {pid})",
            shell_words(&args.command)
        ),
        None,
    );
    run.line_blocks([started_event]);
    // Asked of squeue: after the start, so the job does not wait for it.
    let slurm = slurm_times();
    if let Some(secs) = slurm.limit_secs
        && !user_limit
    {
        let _ = run.set_metadata(SLURM_LIMIT_KEY, simtrack::record::MetaValue::Int(secs));
    }
    let output::Started {
        rx,
        returns,
        readers,
        readers_ended,
        pausing,
    } = started;

    let mut matcher = Matcher::new(rules);
    let give_up = AtomicBool::new(false);
    let mut stop: Option<Stop> = None;
    let status = std::thread::scope(|s| {
        // Named, so `top -H` and profilers tell it from the main thread.
        let parser = std::thread::Builder::new()
            .name("simtrack-parser".to_owned())
            .spawn_scoped(s, || {
                output::parse(rx, returns, &give_up, &run, &mut matcher)
            })
            .expect("cannot start the parser thread");
        let status = supervise(
            &mut proc,
            &run,
            resources_every,
            args.kill_after,
            resize.as_ref(),
            &mut stop,
        );
        drop((running_out, running_err, pausing));
        if !output::await_readers(readers, &readers_ended) {
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

    let code = exit_code(status);
    let (run_status, text) = match (status.code(), status.signal()) {
        (Some(0), _) => (RunStatus::Completed, "exited with code 0".to_owned()),
        (Some(c), _) => {
            let _ = run.set_metadata("exit_code", simtrack::record::MetaValue::Int(c.into()));
            (RunStatus::Failed, format!("exited with code {c}"))
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
            (st, format!("killed by {name}{core}"))
        }
        _ => (RunStatus::Failed, "ended in an unknown way".to_owned()),
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

/// The metadata key of the job's SLURM time limit.
const SLURM_LIMIT_KEY: &str = "slurm_time_limit_secs";

/// The run's name, metadata (with the command), tags, description, folder.
fn init_options(args: &RunArgs, mut meta: BTreeMap<String, Value>) -> InitOptions {
    meta.insert(
        "command".to_owned(),
        Value::String(shell_words(&args.command)),
    );
    InitOptions {
        name: args.name.clone(),
        metadata_json: Some(Value::Object(meta.into_iter().collect()).to_string()),
        tags: (!args.tags.is_empty()).then(|| args.tags.join(",")),
        description: args.description.clone(),
        folder: args.folder.clone(),
    }
}

/// The wrapper's exit code for the program's end: its own code, 128 + N
/// for a death by signal N (as a shell), 1 if neither is known.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => (128 + sig) as u8,
        _ => 1,
    }
}

/// A program already running whose run could not be set up (its spool
/// cannot be created): its output is still passed through, signals still
/// reach it, and its end is returned; nothing is recorded.
fn unrecorded(
    proc: &mut std::process::Child,
    started: output::Started,
    running: (std::sync::mpsc::Sender<()>, std::sync::mpsc::Sender<()>),
) -> std::process::ExitStatus {
    let output::Started {
        rx,
        returns,
        readers,
        readers_ended,
        pausing,
    } = started;
    let discard = std::thread::spawn(move || output::discard(rx, returns));
    let status = loop {
        match proc.wait() {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Not our child any more (cannot happen): nothing to wait for.
            Err(_) => break std::process::ExitStatus::from_raw(1 << 8),
        }
    };
    drop((running, pausing));
    if output::await_readers(readers, &readers_ended) {
        let _ = discard.join();
    }
    status
}

/// When the run cannot be tracked (a configuration error, a spool that
/// cannot be created), the program still runs: a batch job that waited
/// hours for its nodes is not lost to its tracking. The wrapper says why
/// and becomes the program (`exec`): same process, signals and exit code as
/// without it. Returns only if the program cannot be started.
fn untracked(command: &[String], why: &str) -> ExitCode {
    say(&format!("{why}; the program runs untracked"));
    let e = Command::new(&command[0]).args(&command[1..]).exec();
    let (code, why) = cannot_start(&e);
    say(&format!("{}: {why}", command[0]));
    ExitCode::from(code)
}

/// The exit code (as a shell's) and the reason for a program that could not
/// be started.
fn cannot_start(e: &std::io::Error) -> (u8, String) {
    match e.kind() {
        std::io::ErrorKind::NotFound => (127, "command not found".to_owned()),
        std::io::ErrorKind::PermissionDenied => (126, "permission denied".to_owned()),
        _ => (126, e.to_string()),
    }
}

fn status_aborted(run: &Run) -> bool {
    run.abort_requested()
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
    // The first sample waits a little: at once it would read a program
    // just started (and cost a short run milliseconds for nothing).
    let mut next_sample =
        Instant::now() + resources_every.map_or(Duration::ZERO, |e| e.min(FIRST_SAMPLE));
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

/// When the first resources sample is taken, at the latest.
const FIRST_SAMPLE: Duration = Duration::from_secs(1);

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
    fn commands_are_quoted_for_a_shell() {
        assert_eq!(
            shell_words(&["./a".into(), "x y".into(), "it's".into()]),
            r"./a 'x y' 'it'\''s'"
        );
    }
}
