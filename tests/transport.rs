//! The HTTP transport against a local endpoint that records what it gets and
//! fails on demand: retries, exactly-once after lost responses, a server
//! that is down for the whole run, and a server that hangs at finish.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::endpoint::{Endpoint, Fault};
use simtrack::config::Config;
use simtrack::run::{InitOptions, Run};
use simtrack::sync::{Outcome, SyncOptions, sync};
use simtrack::{Status, record::Category};

fn config(url: &str, offline: &std::path::Path, extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = HashMap::from([
        ("SIMTRACK_URL".into(), url.to_owned()),
        ("SIMTRACK_TOKEN".into(), "test-token".into()),
        ("SIMTRACK_OFFLINE_DIR".into(), offline.display().to_string()),
        ("SIMTRACK_RESOURCES_INTERVAL".into(), "0".into()),
        ("SIMTRACK_REQUEST_TIMEOUT".into(), "2".into()),
        ("SIMTRACK_ABORT_POLL".into(), "0.2".into()),
        ("HOME".into(), offline.display().to_string()),
    ]);
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Config::load_with(move |k| env.get(k).cloned()).unwrap()
}

fn start(cfg: &Config) -> Run {
    Run::init_with(
        InitOptions {
            name: Some("transport-test".into()),
            folder: Some("/t".into()),
            ..Default::default()
        },
        cfg,
    )
    .unwrap()
}

fn log_steps(run: &Run, from: i64, to: i64) {
    for i in from..to {
        run.log("x", i as f64, i).unwrap();
    }
}

/// Asserts that metric "x" arrived exactly once for each step in 0..n.
fn assert_exactly_once(ep: &Endpoint, n: i64) {
    let s = ep.state.lock();
    let mut steps: Vec<i64> = s
        .points
        .iter()
        .filter(|p| p.0 == "x")
        .map(|p| p.1)
        .collect();
    steps.sort_unstable();
    assert_eq!(steps.len() as i64, n, "points applied");
    assert!(
        steps.iter().enumerate().all(|(i, s)| *s == i as i64),
        "each step exactly once"
    );
}

#[test]
fn transient_503s_are_retried_until_everything_lands() {
    let tmp = tempfile::tempdir().unwrap();
    let ep = Endpoint::start();
    {
        let mut s = ep.state.lock();
        for _ in 0..3 {
            s.faults
                .push_back(("/api/metrics".into(), Fault::Unavailable));
        }
        s.faults.push_back(("/api/runs".into(), Fault::Unavailable));
    }
    let cfg = config(&ep.url, tmp.path(), &[]);
    let run = start(&cfg);
    log_steps(&run, 0, 50_000);
    run.event("hello").unwrap();
    run.finish().unwrap();
    assert_exactly_once(&ep, 50_000);
    let s = ep.state.lock();
    let retried = s
        .received
        .iter()
        .filter(|r| r.path == "/api/metrics")
        .count();
    assert!(retried >= 4 + 3, "metrics posts: {retried}");
    assert_eq!(s.events, ["hello"]);
    assert_eq!(s.run_updates.last().unwrap()["status"], "completed");
}

#[test]
fn a_server_cutting_a_slow_upload_or_out_of_disk_is_retried_not_refused() {
    // 408 (the server's body timeout) and 507 (its disk is full) pass: the
    // batch is sent again, not kept aside as refused.
    let tmp = tempfile::tempdir().unwrap();
    let ep = Endpoint::start();
    {
        let mut s = ep.state.lock();
        for code in [408, 507, 408, 507] {
            s.faults
                .push_back(("/api/metrics".into(), Fault::Status(code)));
        }
    }
    let cfg = config(&ep.url, tmp.path(), &[]);
    let run = start(&cfg);
    log_steps(&run, 0, 20_000);
    run.finish().unwrap();
    assert_exactly_once(&ep, 20_000);
}

#[test]
fn a_lost_response_is_resent_with_the_same_key_and_applied_once() {
    let tmp = tempfile::tempdir().unwrap();
    let ep = Endpoint::start();
    {
        let mut s = ep.state.lock();
        s.faults
            .push_back(("/api/metrics".into(), Fault::DropResponse));
        s.faults
            .push_back(("/api/metrics".into(), Fault::DropResponse));
        s.faults
            .push_back(("/api/runs/run1".into(), Fault::DropResponse));
    }
    let cfg = config(&ep.url, tmp.path(), &[]);
    let run = start(&cfg);
    log_steps(&run, 0, 40_000);
    run.finish().unwrap();
    assert_exactly_once(&ep, 40_000);
    let s = ep.state.lock();
    let keys: Vec<&str> = s
        .received
        .iter()
        .filter(|r| r.path == "/api/metrics")
        .filter_map(|r| r.key.as_deref())
        .collect();
    let unique: std::collections::HashSet<&&str> = keys.iter().collect();
    assert!(
        keys.len() > unique.len(),
        "the dropped batches were resent with their keys"
    );
}

#[test]
fn a_server_down_for_the_whole_run_loses_nothing_and_sync_delivers_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    // Reserve a port, then leave it closed: connections are refused.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}");
    let cfg = config(&url, tmp.path(), &[("SIMTRACK_FINISH_TIMEOUT", "2")]);
    let run = start(&cfg);
    let input = tmp.path().join("deck.nml");
    std::fs::write(&input, b"&deck n=1 /\n").unwrap();
    run.save(&input, Category::Input).unwrap();
    log_steps(&run, 0, 30_000);
    let t0 = Instant::now();
    let err = run.finish().unwrap_err();
    assert_eq!(err.status, Status::Undelivered);
    assert!(err.message.contains("simtrack sync"), "{}", err.message);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "finish took {:?}",
        t0.elapsed()
    );

    // The server comes up on that address; sync uploads everything once,
    // and a second sync has nothing to do.
    let ep = Endpoint::start_on(&addr.to_string());
    let reports = sync(&cfg, &SyncOptions::default()).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, Outcome::Uploaded, "{}", reports[0]);
    assert_exactly_once(&ep, 30_000);
    {
        let s = ep.state.lock();
        assert_eq!(s.uploads, [b"&deck n=1 /\n".to_vec()]);
        // Storage URLs authenticate themselves: the token is not sent there.
        let upload = s
            .received
            .iter()
            .find(|r| r.path.starts_with("/upload/"))
            .unwrap();
        assert_eq!(upload.authorization, None);
    }
    let again = sync(&cfg, &SyncOptions::default()).unwrap();
    assert_eq!(again[0].outcome, Outcome::UpToDate);
    assert_exactly_once(&ep, 30_000);
}

/// A run that delivered steps 0..1000, then logged 1000..2000 while the
/// server hangs every request: ready for a `finish` that cannot complete.
fn run_with_a_hanging_server(
    tmp: &std::path::Path,
    finish_timeout: &str,
    request_timeout: &str,
) -> (Endpoint, Config, Run) {
    let ep = Endpoint::start();
    let cfg = config(
        &ep.url,
        tmp,
        &[
            ("SIMTRACK_FINISH_TIMEOUT", finish_timeout),
            ("SIMTRACK_REQUEST_TIMEOUT", request_timeout),
        ],
    );
    let run = start(&cfg);
    log_steps(&run, 0, 1000);
    run.flush(Duration::from_secs(10)).unwrap();
    ep.state.lock().always = Some(Fault::Hang);
    log_steps(&run, 1000, 2000);
    (ep, cfg, run)
}

#[test]
fn finish_returns_by_its_deadline_when_the_server_hangs() {
    let tmp = tempfile::tempdir().unwrap();
    let (_ep, _cfg, run) = run_with_a_hanging_server(tmp.path(), "1.5", "60");
    let t0 = Instant::now();
    let err = run.finish().unwrap_err();
    let took = t0.elapsed();
    assert_eq!(err.status, Status::Undelivered);
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(3),
        "finish took {took:?}"
    );
}

/// A sender still in a request when finish gives up keeps the spool locked:
/// a `simtrack sync` meanwhile leaves the run alone (two deliverers of one
/// run would both rewrite its delivery state), and delivers it, once each,
/// when that request has ended.
#[test]
fn sync_leaves_a_run_whose_sender_is_still_in_a_request() {
    let tmp = tempfile::tempdir().unwrap();
    let (ep, cfg, run) = run_with_a_hanging_server(tmp.path(), "1", "5");
    let err = run.finish().unwrap_err();
    assert_eq!(err.status, Status::Undelivered);
    let reports = sync(&cfg, &SyncOptions::default()).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, Outcome::InUse, "{}", reports[0]);
    ep.state.lock().always = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reports = sync(&cfg, &SyncOptions::default()).unwrap();
        if reports[0].outcome == Outcome::Uploaded {
            break;
        }
        assert_eq!(reports[0].outcome, Outcome::InUse, "{}", reports[0]);
        assert!(Instant::now() < deadline, "the sender never let go");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_exactly_once(&ep, 2000);
}

#[test]
fn an_abort_request_reaches_the_run_within_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let ep = Endpoint::start();
    let cfg = config(&ep.url, tmp.path(), &[]);
    let run = start(&cfg);
    run.flush(Duration::from_secs(10)).unwrap();
    assert!(!run.abort_requested());
    ep.state.lock().abort = true;
    let t0 = Instant::now();
    while !run.abort_requested() {
        assert!(t0.elapsed() < Duration::from_secs(5), "abort not seen");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.set_status(simtrack::record::RunStatus::Terminated)
        .unwrap();
    run.finish().unwrap();
    assert_eq!(
        ep.state.lock().run_updates.last().unwrap()["status"],
        "terminated"
    );
}

#[test]
fn requests_carry_the_token_and_nan_and_infinities_arrive_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let ep = Endpoint::start();
    let cfg = config(&ep.url, tmp.path(), &[]);
    let run = start(&cfg);
    run.log("y", f64::NAN, -1).unwrap();
    run.log("y", f64::INFINITY, -1).unwrap();
    run.log("y", f64::NEG_INFINITY, -1).unwrap();
    run.finish().unwrap();
    let s = ep.state.lock();
    let ys: Vec<(i64, f64)> = s
        .points
        .iter()
        .filter(|p| p.0 == "y")
        .map(|p| (p.1, p.2))
        .collect();
    assert_eq!(ys.len(), 3);
    assert!(ys[0].1.is_nan() && ys[1].1 == f64::INFINITY && ys[2].1 == f64::NEG_INFINITY);
    assert_eq!(ys.iter().map(|y| y.0).collect::<Vec<_>>(), [0, 1, 2]);
    for r in &s.received {
        let auth = r.authorization.as_deref();
        if r.path.starts_with("/api/") {
            assert_eq!(auth, Some("Bearer test-token"), "{} {}", r.method, r.path);
        }
    }
}

#[test]
fn sync_with_the_server_away_gives_up_quickly_and_delivers_next_time() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}");
    let offline = config(
        "http://unused.invalid",
        tmp.path(),
        &[("SIMTRACK_MODE", "offline")],
    );
    for _ in 0..3 {
        let run = start(&offline);
        log_steps(&run, 0, 100);
        run.finish().unwrap();
    }
    let cfg = config(&url, tmp.path(), &[]);
    let patience = SyncOptions {
        run_patience: Duration::from_millis(300),
        ..SyncOptions::default()
    };
    let t0 = Instant::now();
    let reports = sync(&cfg, &patience).unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "sync took {:?}",
        t0.elapsed()
    );
    assert_eq!(reports.len(), 3);
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Incomplete(_)))
    );
    assert!(!simtrack::sync::all_delivered(&reports));

    let ep = Endpoint::start_on(&addr.to_string());
    let reports = sync(&cfg, &patience).unwrap();
    assert!(
        reports.iter().all(|r| r.outcome == Outcome::Uploaded),
        "{reports:?}"
    );
    assert_eq!(ep.state.lock().points.len(), 300);
}

#[test]
fn two_syncs_never_run_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config("http://127.0.0.1:9", tmp.path(), &[]);
    std::fs::create_dir_all(tmp.path()).unwrap();
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(tmp.path().join("sync.lock"))
        .unwrap();
    held.lock().unwrap();
    let err = sync(&cfg, &SyncOptions::default()).unwrap_err();
    assert!(
        err.message.contains("another simtrack sync is running"),
        "{}",
        err.message
    );
    drop(held);
    assert!(sync(&cfg, &SyncOptions::default()).unwrap().is_empty());
}

#[test]
fn sync_creates_nothing_where_nothing_was_spooled_and_refuses_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("typo");
    let cfg = config("http://127.0.0.1:9", &missing, &[]);
    assert!(sync(&cfg, &SyncOptions::default()).unwrap().is_empty());
    let one = SyncOptions {
        only: Some("0123".into()),
        ..SyncOptions::default()
    };
    let err = sync(&cfg, &one).unwrap_err();
    assert!(err.message.starts_with("no run 0123 in"), "{}", err.message);
    assert!(!missing.exists(), "sync created {}", missing.display());

    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = sync(
        &config("http://127.0.0.1:9", &file, &[]),
        &SyncOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.status, Status::InvalidArgument);
    assert!(
        err.message
            .ends_with("is not a directory: the offline directory is the one holding runs/"),
        "{}",
        err.message
    );
}

#[test]
fn a_missing_or_empty_ca_bundle_fails_init_with_a_config_error() {
    let tmp = tempfile::tempdir().unwrap();
    let not_pem = tmp.path().join("bundle.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    for bundle in [tmp.path().join("missing.pem"), not_pem] {
        let cfg = config(
            "https://127.0.0.1:9",
            tmp.path(),
            &[("SIMTRACK_CA_BUNDLE", bundle.to_str().unwrap())],
        );
        let err = Run::init_with(InitOptions::default(), &cfg).unwrap_err();
        assert_eq!(err.status, Status::Config, "{}", err.message);
        assert!(err.message.contains("CA bundle"), "{}", err.message);
    }
    assert!(
        !tmp.path().join("runs").exists(),
        "a failed init left a run behind"
    );
}

#[test]
fn heartbeats_go_out_at_the_configured_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let ep = Endpoint::start();
    let cfg = config(
        &ep.url,
        tmp.path(),
        &[("SIMTRACK_HEARTBEAT_INTERVAL", "0.2")],
    );
    let run = start(&cfg);
    std::thread::sleep(Duration::from_millis(1100));
    run.finish().unwrap();
    let s = ep.state.lock();
    let beats = s
        .received
        .iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/heartbeat"))
        .count();
    assert!(
        (3..=8).contains(&beats),
        "{beats} heartbeats in 1.1 s at 0.2 s intervals"
    );
}
