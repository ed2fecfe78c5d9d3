//! The real worker threads (writer and sender) driven through the
//! in-memory transport: what `finish` and `flush` report when the server
//! fails transiently or refuses a record for good.

use std::collections::HashMap;
use std::time::Duration;

use simtrack::Status;
use simtrack::config::Config;
use simtrack::record::Record;
use simtrack::run::{InitOptions, Run};
use simtrack::spool::RunDir;
use simtrack::transport::SendError;
use simtrack::transport::memory::MemoryTransport;

fn config(offline: &std::path::Path) -> Config {
    let env: HashMap<String, String> = HashMap::from([
        ("SIMTRACK_OFFLINE_DIR".into(), offline.display().to_string()),
        ("SIMTRACK_RESOURCES_INTERVAL".into(), "0".into()),
        ("SIMTRACK_FINISH_TIMEOUT".into(), "20".into()),
        ("HOME".into(), offline.display().to_string()),
    ]);
    Config::load_with(move |k| env.get(k).cloned()).unwrap()
}

fn start(cfg: &Config, t: &MemoryTransport) -> Run {
    Run::init_with_transport(
        InitOptions {
            name: Some("memory".into()),
            ..Default::default()
        },
        cfg,
        Some(t.clone()),
    )
    .unwrap()
}

fn points(t: &MemoryTransport) -> Vec<i64> {
    let mut steps: Vec<i64> = t
        .log
        .lock()
        .delivered
        .iter()
        .filter_map(|(_, r)| match r {
            Record::Metrics(b) => Some(b.points.iter().map(|p| p.step).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    steps.sort_unstable();
    steps
}

#[test]
fn transient_failures_are_retried_and_finish_returns_ok_once_all_is_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let t = MemoryTransport::default();
    for _ in 0..3 {
        t.log.lock().failures.push_back(SendError::Retry {
            after: None,
            message: "503".into(),
        });
    }
    let run = start(&config(tmp.path()), &t);
    std::thread::scope(|s| {
        for k in 0..4 {
            let run = &run;
            s.spawn(move || {
                for i in 0..25_000 {
                    run.log(&format!("m{k}"), i as f64, i).unwrap();
                }
            });
        }
    });
    run.flush(Duration::from_secs(20)).unwrap();
    run.finish().unwrap();
    assert_eq!(points(&t).len(), 100_000);
    assert!(
        t.log.lock().marks.is_empty(),
        "nothing was refused, nothing marked"
    );
}

#[test]
fn a_refused_record_fails_finish_marks_the_run_and_stays_in_the_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let t = MemoryTransport::default();
    // Record 0 is the run, 1 the first points, 2 the event.
    t.log.lock().refuse.push(2);
    let cfg = config(tmp.path());
    let run = start(&cfg, &t);
    let dir = RunDir::new(run.spool_dir().unwrap());
    for i in 0..10 {
        run.log("x", i as f64, i).unwrap();
    }
    run.flush(Duration::from_secs(10)).unwrap();
    run.event("this one is refused").unwrap();
    let err = run
        .flush(Duration::from_secs(10))
        .expect_err("flush after a refusal");
    assert_eq!(err.status, Status::Refused, "{err}");
    for i in 10..20 {
        run.log("x", i as f64, i).unwrap();
    }
    let err = run.finish().expect_err("finish after a refusal");
    assert_eq!(err.status, Status::Refused, "{err}");
    assert!(err.message.contains("422"), "{err}");

    // Everything else arrived; the run was told; the record is kept.
    assert_eq!(points(&t), (0..20).collect::<Vec<_>>());
    let log = t.log.lock();
    assert!(
        log.delivered
            .iter()
            .all(|(_, r)| !matches!(r, Record::Events(_)))
    );
    assert_eq!(log.marks.len(), 1);
    assert_eq!(log.marks[0].1, 2);
    drop(log);
    let state = dir.read_state();
    assert_eq!(state.refused.len(), 1);
    assert_eq!(state.refused[0].seq, 2);
    assert!(state.refused[0].marked);
    assert_eq!(state.refused[0].what, "1 events");
}
