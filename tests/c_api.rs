//! The C API as C programs use it: compiled with -Wall -Wextra -Werror
//! against include/simtrack.h, linked against the shared and the static
//! library, run offline, and checked through the spool they leave.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use common::*;
use simtrack::record::{Category, Record, RunStatus};
use simtrack::spool::{RunDir, SpoolReader};

/// The C heat example, compiled into a temporary directory that also holds
/// its offline spool and its working directory.
struct Heat {
    tmp: tempfile::TempDir,
    exe: std::path::PathBuf,
    work: std::path::PathBuf,
}

impl Heat {
    fn new(linkage: Linkage) -> Heat {
        let tmp = tempfile::tempdir().unwrap();
        let exe = compile_c(
            &[&repo().join("examples/c/heat.c")],
            &tmp.path().join("heat"),
            linkage,
        );
        let work = tmp.path().join("work");
        std::fs::create_dir(&work).unwrap();
        Heat { tmp, exe, work }
    }

    fn offline(&self) -> &std::path::Path {
        self.tmp.path()
    }

    /// `heat <steps> <workdir>`, offline, with a clean environment.
    fn cmd(&self, steps: u32) -> std::process::Command {
        let mut cmd = offline_cmd(&self.exe, self.offline());
        cmd.arg(steps.to_string()).arg(&self.work);
        cmd
    }
}

/// The run id from heat's last line, `run <id> finished after ...`.
fn heat_run_id(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .expect("heat printed its run");
    line.split(' ').next().unwrap().to_owned()
}

fn heat_lifecycle(linkage: Linkage) {
    let heat = Heat::new(linkage);
    let id = heat_run_id(&check_output(&heat.cmd(300).output().unwrap(), "heat"));
    let entries = read_run(heat.offline(), &id);
    let (tmp, work) = (heat.offline(), &heat.work);

    let Record::Create(spec) = &entries[0].record else {
        panic!("first record is not the run")
    };
    assert_eq!(spec.name, "heat-c");
    assert_eq!(spec.folder, "/examples/c");
    assert_eq!(spec.tags, ["heat", "c", "example"]);
    assert_eq!(spec.metadata["nx"], 64);
    assert_eq!(
        spec.description.as_deref(),
        Some("1-D explicit heat equation")
    );
    assert!(spec.system["hostname"].is_string());

    let residual = points_of(&entries, "residual");
    assert_eq!(residual.len(), 300);
    assert!(
        residual
            .iter()
            .enumerate()
            .all(|(i, (s, _))| *s == i as i64)
    );
    assert!(residual[299].1 < residual[0].1, "the residual falls");
    assert_eq!(points_of(&entries, "energy").len(), 300);
    assert_eq!(points_of(&entries, "u_mid").len(), 300);

    let files: Vec<_> = entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::File(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    let cats: Vec<Category> = files.iter().map(|f| f.category).collect();
    assert_eq!(cats, [Category::Input, Category::Code, Category::Output]);
    let input = std::fs::read(work.join("heat_input.nml")).unwrap();
    let spooled = std::fs::read(tmp.join("runs").join(&id).join(&files[0].stored)).unwrap();
    assert_eq!(input, spooled, "the saved input is byte-identical");
    assert_eq!(files[0].size, input.len() as u64);

    let alerts = entries
        .iter()
        .filter(|e| matches!(e.record, Record::Alert(_)))
        .count();
    assert_eq!(alerts, 2);
    let events: Vec<String> = entries
        .iter()
        .flat_map(|e| match &e.record {
            Record::Events(ev) => ev.iter().map(|e| e.message.clone()).collect(),
            _ => vec![],
        })
        .collect();
    assert!(events.iter().any(|m| m.starts_with("initialised")));
    // heat.c logs "step %ld residual %.3e"; the value depends on the numerics.
    let residual_200 = events.iter().find_map(|m| {
        m.strip_prefix("step 200 residual ")
            .and_then(|r| r.parse::<f64>().ok())
    });
    assert!(
        residual_200.is_some_and(|r| r.is_finite() && r > 0.0),
        "{events:?}"
    );
    let metadata_keys: Vec<String> = entries
        .iter()
        .flat_map(|e| match &e.record {
            Record::Metadata(m) => m.keys().cloned().collect(),
            _ => vec![],
        })
        .collect();
    for k in ["scheme", "nx", "alpha", "steps_done"] {
        assert!(metadata_keys.iter().any(|m| m == k), "metadata {k}");
    }
    assert!(
        entries
            .iter()
            .any(|e| matches!(&e.record, Record::Folder(f) if f.path == "/examples/c"))
    );
    let Record::Finish(fin) = &entries.last().unwrap().record else {
        panic!("last record is not the finish")
    };
    assert_eq!(fin.status, RunStatus::Completed);
}

#[test]
fn heat_example_full_lifecycle_offline_with_the_shared_library() {
    heat_lifecycle(Linkage::Shared);
}

#[test]
fn heat_example_full_lifecycle_offline_with_the_static_library() {
    heat_lifecycle(Linkage::Static);
}

#[test]
fn heat_example_full_lifecycle_under_address_and_undefined_sanitizers() {
    heat_lifecycle(Linkage::Sanitized);
}

#[test]
fn bad_input_gives_statuses_and_messages_never_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    for linkage in [Linkage::Shared, Linkage::Static, Linkage::Sanitized] {
        let exe = compile_c(
            &[&repo().join("tests/c/bad_input.c")],
            &tmp.path().join("bad_input"),
            linkage,
        );
        let out = offline_cmd(&exe, tmp.path())
            .current_dir(repo().join("tests/c"))
            .output()
            .unwrap();
        assert_eq!(check_output(&out, "bad_input").trim(), "ok");
    }
}

#[test]
fn sixteen_threads_logging_on_one_handle_lose_no_point() {
    sixteen_threads(Linkage::Shared);
}

#[test]
fn sixteen_threads_under_address_and_undefined_sanitizers() {
    sixteen_threads(Linkage::Sanitized);
}

fn sixteen_threads(linkage: Linkage) {
    let tmp = tempfile::tempdir().unwrap();
    let exe = compile_c(
        &[&repo().join("tests/c/threads.c")],
        &tmp.path().join("threads"),
        linkage,
    );
    let out = offline_cmd(&exe, tmp.path()).output().unwrap();
    let id = check_output(&out, "threads").trim().to_owned();
    let entries = read_run(tmp.path(), &id);
    for t in 0..16 {
        let pts = points_of(&entries, &format!("thread/{t:02}"));
        assert_eq!(pts.len(), 20_000, "thread {t}");
        // Automatic steps count 0, 1, 2, ... per metric, and each thread's
        // values arrive in its own order.
        assert!(
            pts.iter()
                .enumerate()
                .all(|(i, (s, v))| *s == i as i64 && *v == i as f64)
        );
    }
    let all = points_of(&entries, "all");
    assert_eq!(all.len(), 16 * 20_000);
    let mut steps: Vec<i64> = all.iter().map(|(s, _)| *s).collect();
    steps.sort_unstable();
    assert!(
        steps.iter().enumerate().all(|(i, s)| *s == i as i64),
        "shared metric steps are unique"
    );
}

#[test]
fn kill_minus_nine_keeps_everything_flushed_and_a_torn_tail_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = compile_c(
        &[&repo().join("tests/c/crash.c")],
        &tmp.path().join("crash"),
        Linkage::Shared,
    );
    let mut child = offline_cmd(&exe, tmp.path())
        .arg("200000")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // Let it log (and the writer write) a little more, then kill it hard.
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let mut words = line.split_whitespace().skip(1);
    let id = words.next().expect("run id").to_owned();
    let flushed: i64 = words.next().unwrap().parse().unwrap();

    let entries = read_run(tmp.path(), &id);
    let x = points_of(&entries, "x");
    assert!(
        x.len() as i64 >= flushed,
        "only {} of {flushed} flushed points survived",
        x.len()
    );
    assert!(
        x.iter()
            .enumerate()
            .all(|(i, (s, v))| *s == i as i64 && *v == i as f64)
    );

    // A crash in the middle of a write leaves a partial frame: it is
    // reported and skipped, and everything before it still reads. (The
    // kill itself may have cut the writer's last write short, as a SIGKILL
    // can; then that is where whole frames end.)
    let dir = RunDir::new(tmp.path().join("runs").join(&id));
    let mut reader = SpoolReader::open(&dir, 0, 0).unwrap();
    reader.read_all().unwrap();
    let len = match reader.torn_tail() {
        Some(t) => t.offset,
        None => std::fs::metadata(dir.log()).unwrap().len(),
    };
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.log())
        .unwrap()
        .write_all(&[200, 1, 0, 0, 7, 7])
        .unwrap();
    let mut reader = SpoolReader::open(&dir, 0, 0).unwrap();
    let again = reader.read_all().unwrap();
    assert_eq!(again.len(), entries.len());
    let torn = reader.torn_tail().expect("torn tail reported");
    assert_eq!(torn.offset, len);
}

#[test]
fn disabled_mode_and_non_zero_mpi_ranks_get_no_op_handles() {
    let heat = Heat::new(Linkage::Shared);
    let runs = heat.offline().join("runs");
    for env in [("SIMTRACK_MODE", "disabled"), ("OMPI_COMM_WORLD_RANK", "3")] {
        check_output(&heat.cmd(50).env(env.0, env.1).output().unwrap(), "heat");
        assert!(!runs.exists(), "{env:?} recorded a run");
    }
    // With SIMTRACK_RANKS=all, rank 3 reports too.
    let out = heat
        .cmd(50)
        .env("OMPI_COMM_WORLD_RANK", "3")
        .env("SIMTRACK_RANKS", "all")
        .output()
        .unwrap();
    check_output(&out, "heat");
    assert_eq!(std::fs::read_dir(runs).unwrap().count(), 1);
}

#[test]
fn bad_configuration_fails_init_with_a_message() {
    let heat = Heat::new(Linkage::Shared);
    let out = heat
        .cmd(10)
        .env("SIMTRACK_URL", "localhost:8800")
        .env("SIMTRACK_TOKEN", "x")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("init failed: configuration error"),
        "{stderr}"
    );
    assert!(
        stderr.contains("SIMTRACK_URL must start with http"),
        "{stderr}"
    );
    // The solver itself carried on.
    assert!(String::from_utf8_lossy(&out.stdout).contains("finished after 10 steps"));
}

#[test]
fn length_taking_entry_points_trim_fortran_padding() {
    fortran_layout(Linkage::Shared);
}

#[test]
fn length_taking_entry_points_under_address_and_undefined_sanitizers() {
    fortran_layout(Linkage::Sanitized);
}

fn fortran_layout(linkage: Linkage) {
    let tmp = tempfile::tempdir().unwrap();
    let exe = compile_c(
        &[&repo().join("tests/c/fortran_layout.c")],
        &tmp.path().join("layout"),
        linkage,
    );
    let out = offline_cmd(&exe, tmp.path()).output().unwrap();
    let id = check_output(&out, "fortran_layout").trim().to_owned();
    let entries = read_run(tmp.path(), &id);
    assert_eq!(
        points_of(&entries, "resid"),
        [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    );
    for (name, v) in [("a", 1.0), ("bb", 2.0), ("cccccc", 3.0)] {
        assert_eq!(
            points_of(&entries, name),
            [(0, v), (1, v), (2, v), (3, v)],
            "{name}"
        );
    }
    assert!(
        points_of(&entries, "ok").is_empty(),
        "a refused log_many logs nothing"
    );
}

#[test]
fn process_cpu_and_memory_are_sampled_as_resources_metrics() {
    let heat = Heat::new(Linkage::Shared);
    let out = heat
        .cmd(200_000)
        .env("SIMTRACK_RESOURCES_INTERVAL", "0.01")
        .output()
        .unwrap();
    let id = heat_run_id(&check_output(&out, "heat"));
    let entries = read_run(heat.offline(), &id);
    let mem = points_of(&entries, "resources/cpu.usage.memory");
    assert!(!mem.is_empty(), "memory sampled");
    assert!(
        mem.iter().all(|(_, mb)| *mb > 0.5 && *mb < 1000.0),
        "{mem:?}"
    );
    let cpu = points_of(&entries, "resources/cpu.usage.percentage");
    assert!(
        cpu.iter()
            .all(|(_, pct)| *pct >= 0.0 && *pct <= 100.0 * 64.0),
        "{cpu:?}"
    );
}

#[test]
fn exiting_without_finish_still_spools_every_point() {
    exiting_without_finish(Linkage::Shared);
}

#[test]
fn exiting_without_finish_under_address_and_undefined_sanitizers() {
    exiting_without_finish(Linkage::Sanitized);
}

fn exiting_without_finish(linkage: Linkage) {
    let tmp = tempfile::tempdir().unwrap();
    let exe = compile_c(
        &[&repo().join("tests/c/no_finish.c")],
        &tmp.path().join("no_finish"),
        linkage,
    );
    // The program leaks its handle on purpose: no leak check.
    let out = offline_cmd(&exe, tmp.path())
        .env("ASAN_OPTIONS", "halt_on_error=1:detect_leaks=0")
        .output()
        .unwrap();
    let id = check_output(&out, "no_finish").trim().to_owned();
    let entries = read_run(tmp.path(), &id);
    assert_eq!(points_of(&entries, "x").len(), 12_345);
}

/// Runs `cmd` to its end, or kills it after `limit` and fails the test: a
/// hang is reported as such instead of stalling the suite.
fn output_within(
    cmd: &mut std::process::Command,
    limit: std::time::Duration,
) -> std::process::Output {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not end within {limit:?}: killed\nstderr:\n{}",
                String::from_utf8_lossy(&stderr.join().unwrap())
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn fork_after_init(linkage: Linkage) {
    let tmp = tempfile::tempdir().unwrap();
    let exe = compile_c(
        &[&repo().join("tests/c/fork.c")],
        &tmp.path().join("fork"),
        linkage,
    );
    let out = output_within(
        offline_cmd(&exe, tmp.path())
            .env("SIMTRACK_MEMORY_CAP_MB", "1")
            // Children end with the parent's threads gone: whatever those
            // threads held looks leaked to LeakSanitizer.
            .env("ASAN_OPTIONS", "halt_on_error=1:detect_leaks=0"),
        std::time::Duration::from_secs(120),
    );
    let stdout = check_output(&out, "fork");
    let mut children = 0;
    let mut parent = None;
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["parent", id, t0, t1] => {
                parent = Some((id.to_owned(), [t0, t1].map(|n| n.parse::<i64>().unwrap())))
            }
            ["child", "refused"] => children += 1,
            _ => panic!("unexpected line {line:?}"),
        }
    }
    // Children 4, 9, ..., 39 try to start runs of their own: refused.
    assert_eq!(children, 8, "{stdout}");
    let (id, counts) = parent.expect("the parent reported its run");
    assert_eq!(
        std::fs::read_dir(tmp.path().join("runs")).unwrap().count(),
        1,
        "no child wrote a run"
    );
    let dir = RunDir::new(tmp.path().join("runs").join(&id));
    let mut reader = SpoolReader::open(&dir, 0, 0).unwrap();
    let entries = reader.read_all().unwrap();
    assert!(reader.torn_tail().is_none(), "the parent's spool is intact");
    for (t, n) in counts.iter().enumerate() {
        let pts = points_of(&entries, &format!("parent/t{t}"));
        assert!(*n > 0, "thread {t} logged during the forks");
        assert_eq!(pts.len() as i64, *n, "every point of thread {t} arrived");
        assert!(
            pts.iter()
                .enumerate()
                .all(|(i, (s, v))| *s == i as i64 && *v == i as f64),
            "thread {t}'s points in order, once each"
        );
    }
    for name in ["child/few", "child/many", "child/finish", "child/own"] {
        assert!(
            points_of(&entries, name).is_empty(),
            "{name} in the parent's run"
        );
    }
    let Record::Finish(fin) = &entries.last().unwrap().record else {
        panic!("the parent's run does not end with its finish")
    };
    assert_eq!(fin.status, RunStatus::Completed);
}

#[test]
fn children_forked_while_the_parent_logs_get_no_op_handles_and_never_hang() {
    fork_after_init(Linkage::Shared);
}

#[test]
fn fork_after_init_under_address_and_undefined_sanitizers() {
    fork_after_init(Linkage::Sanitized);
}

fn double_finish(linkage: Linkage) {
    let tmp = tempfile::tempdir().unwrap();
    let exe = compile_c(
        &[&repo().join("tests/c/double_finish.c")],
        &tmp.path().join("double_finish"),
        linkage,
    );
    let out = output_within(
        &mut offline_cmd(&exe, tmp.path()),
        std::time::Duration::from_secs(120),
    );
    let stdout = check_output(&out, "double_finish");
    let mut rounds = 0;
    for line in stdout.lines() {
        let (id, logged) = line.split_once(' ').expect("<id> <points>");
        let entries = read_run(tmp.path(), id);
        let x = points_of(&entries, "x");
        assert_eq!(
            x.len() as i64,
            logged.parse::<i64>().unwrap(),
            "every point logged before finish arrived (run {id})"
        );
        assert!(x.iter().enumerate().all(|(i, (s, _))| *s == i as i64));
        let Record::Finish(fin) = &entries.last().unwrap().record else {
            panic!("run {id} does not end with its finish")
        };
        assert_eq!(fin.status, RunStatus::Completed);
        rounds += 1;
    }
    assert_eq!(rounds, 60);
}

#[test]
fn two_threads_finishing_one_handle_get_ok_and_run_finished_never_a_crash() {
    double_finish(Linkage::Shared);
}

#[test]
fn double_finish_under_address_and_undefined_sanitizers() {
    double_finish(Linkage::Sanitized);
}

#[test]
fn children_forked_from_a_no_op_handle_do_not_wait_for_the_parents_calls() {
    // Rank 3 of an MPI job: the handle records nothing, but its calls still
    // hold it; a child must not wait for calls of threads it does not have.
    let tmp = tempfile::tempdir().unwrap();
    let exe = compile_c(
        &[&repo().join("tests/c/fork.c")],
        &tmp.path().join("fork"),
        Linkage::Shared,
    );
    let out = output_within(
        offline_cmd(&exe, tmp.path())
            .env("OMPI_COMM_WORLD_RANK", "3")
            // Log until the last fork: no spool to bound.
            .arg(i64::MAX.to_string()),
        std::time::Duration::from_secs(120),
    );
    let stdout = check_output(&out, "fork");
    assert!(
        stdout.starts_with("parent ") || stdout.contains("\nparent "),
        "{stdout}"
    );
    assert!(
        !tmp.path().join("runs").exists(),
        "a no-op handle recorded a run"
    );
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn eight_threads_logging_while_the_disk_is_full_lose_no_point() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("spool");
    let Some(_fs) = Tmpfs::mount(&mnt, "64m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs (needs root)");
        return;
    };
    let exe = compile_c(
        &[&repo().join("tests/c/full_disk_threads.c")],
        &tmp.path().join("full_disk_threads"),
        Linkage::Shared,
    );
    // Leave room for the threads' buffers (8 x 1 MiB, preallocated) and a
    // few MiB of spool: the writer soon cannot write, the buffers fill and
    // the threads' calls fail until the filler goes.
    let filler = mnt.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0x5Au8; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(13 << 20)).unwrap();
    }
    let child = offline_cmd(&exe, &mnt)
        .env("SIMTRACK_MEMORY_CAP_MB", "8")
        .env("SIMTRACK_LOG_WAIT", "0.2")
        .env("SIMTRACK_FINISH_TIMEOUT", "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    std::fs::remove_file(&filler).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = check_output(&out, "full_disk_threads");
    let mut words = stdout.split_whitespace();
    let id = words.next().expect("run id").to_owned();
    let failures: u64 = words.next().unwrap().parse().unwrap();
    assert!(
        failures > 0,
        "the disk never held the writer back: the test proves nothing"
    );
    let entries = read_run(&mnt, &id);
    for k in 0..8 {
        let pts = points_of(&entries, &format!("w{k}"));
        assert_eq!(pts.len(), 200_000, "thread {k}");
        assert!(
            pts.iter()
                .enumerate()
                .all(|(i, (s, v))| *s == i as i64 && *v == i as f64),
            "thread {k}: every step once, in order"
        );
    }
    assert!(matches!(
        entries.last().map(|e| &e.record),
        Some(Record::Finish(_))
    ));
}
