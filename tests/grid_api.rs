//! The grid and array C API from a C program (tests/c/grid_input.c),
//! offline: bad input answers a status and records nothing, good calls
//! leave a Grid record and Array records whose value files hold the values
//! axis 0 fastest, whatever the order they were given in; arrays logged
//! in a row, and by a solver killed right after its last call, all arrive.

mod common;

use common::*;
use simtrack::record::Record;

#[test]
fn bad_input_is_a_status_and_arrays_reach_the_spool_in_axis0_order() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = compile_c(
        &[&repo().join("tests/c/grid_input.c")],
        &tmp.path().join("grid_input"),
        Linkage::Shared,
    );
    let out = check_output(
        &offline_cmd(&exe, tmp.path()).output().unwrap(),
        "grid_input",
    );
    let status = |name: &str| -> i32 {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} not printed:\n{out}"))
            .parse()
            .unwrap()
    };
    let (null_run, null_arg, invalid) = (1, 2, 4);
    for (name, want) in [
        ("null_run", null_run),
        ("null_name", null_arg),
        ("null_axes", null_arg),
        ("ndim_0", invalid),
        ("ndim_4", invalid),
        ("unordered", invalid),
        ("null_coords", null_arg),
        ("grid", 0),
        ("grid_again", 0),
        ("grid_other_lengths", invalid),
        ("unknown_grid", invalid),
        ("wrong_n", invalid),
        ("null_data", null_arg),
        ("bad_order", invalid),
        ("negative_step", invalid),
        ("null_metric", null_arg),
        ("fortran", 0),
        ("c", 0),
        ("f32", 0),
        ("finish", 0),
    ] {
        assert_eq!(status(name), want, "{name}\n{out}");
    }
    let id = out.lines().find_map(|l| l.strip_prefix("run ")).unwrap();
    let entries = read_run(tmp.path(), id);
    let grids: Vec<_> = entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Grid(g) => Some(g.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        grids.len(),
        1,
        "one grid record (the second definition is a no-op)"
    );
    assert_eq!(grids[0].axes, vec![vec![0.0, 1.0, 2.0], vec![10.0, 20.0]]);
    assert_eq!(grids[0].units, vec!["m".to_owned(), String::new()]);
    let files = tmp.path().join("runs").join(id).join("files");
    let arrays: Vec<_> = entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Array(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        arrays.iter().map(|a| a.step).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    for a in &arrays {
        assert_eq!(a.shape, vec![2, 3]);
        let bytes = std::fs::read(files.join(&a.stored)).unwrap();
        // The values, then a 4 KiB trailer holding the record.
        assert_eq!(bytes.len(), 6 * 8 + 4096);
        let v: Vec<f64> = bytes[..6 * 8]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let last = if a.step == 2 { 6.5 } else { 6.0 };
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0, 5.0, last], "step {}", a.step);
    }
}

/// Many arrays in a row, in every layout, some logged while files are made
/// ready and some after: each file holds its step's values axis 0 fastest,
/// and after finish the files directory holds exactly the arrays' files
/// (the ones made ready and not used are removed).
#[test]
fn arrays_logged_in_a_row_keep_their_values_and_leave_no_spare_files() {
    use simtrack::grid::{AxisDef, Order, Values};
    let tmp = tempfile::tempdir().unwrap();
    let env = std::collections::HashMap::from([
        ("SIMTRACK_MODE", "offline".to_owned()),
        ("SIMTRACK_OFFLINE_DIR", tmp.path().display().to_string()),
        ("SIMTRACK_RESOURCES_INTERVAL", "0".to_owned()),
        ("HOME", tmp.path().display().to_string()),
    ]);
    let cfg = simtrack::config::Config::load_with(move |k| env.get(k).cloned()).unwrap();
    let run = simtrack::Run::init_with(simtrack::InitOptions::default(), &cfg).unwrap();
    let (x, y) = ([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0]);
    let axes = [
        AxisDef {
            label: "x",
            units: "m",
            coords: &x,
        },
        AxisDef {
            label: "y",
            units: "m",
            coords: &y,
        },
    ];
    run.grid("g", &axes).unwrap();
    // Axis 0 fastest: element (i, j) at i + 4 j.
    let want = |s: i64| -> Vec<f64> { (0..12).map(|k| (k + 100 * s) as f64).collect() };
    for s in 0..30i64 {
        let w = want(s);
        match s % 3 {
            0 => run.log_array("u", "g", Values::F64(&w), Order::Fortran, s),
            1 => {
                // C order: c[i][j] at i * 3 + j.
                let mut c = vec![0.0; 12];
                for i in 0..4 {
                    for j in 0..3 {
                        c[i * 3 + j] = w[i + 4 * j];
                    }
                }
                run.log_array("u", "g", Values::F64(&c), Order::C, s)
            }
            _ => {
                let f: Vec<f32> = w.iter().map(|v| *v as f32).collect();
                run.log_array("u", "g", Values::F32(&f), Order::Fortran, s)
            }
        }
        .unwrap();
        if s % 4 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let id = run.id().to_owned();
    run.finish().unwrap();
    let entries = read_run(tmp.path(), &id);
    let files = tmp.path().join("runs").join(&id).join("files");
    let mut stored = Vec::new();
    for e in &entries {
        if let Record::Array(a) = &e.record {
            let bytes = std::fs::read(files.join(&a.stored)).unwrap();
            assert_eq!(bytes.len(), 12 * 8 + 4096);
            let v: Vec<f64> = bytes[..12 * 8]
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(v, want(a.step), "step {}", a.step);
            assert_eq!(a.shape, vec![3, 4]);
            stored.push(a.stored.clone());
        }
    }
    assert_eq!(stored.len(), 30);
    let mut on_disk: Vec<String> = std::fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    stored.sort();
    assert_eq!(on_disk, stored);
}

/// A solver SIGKILLed right after its last `simtrack_log_array` returned:
/// recovery (as `simtrack sync` runs it) delivers every array it logged,
/// exactly once, with its values.
#[test]
fn arrays_survive_sigkill_once_the_call_returned() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = compile_c(
        &[&repo().join("tests/c/array_kill.c")],
        &tmp.path().join("array_kill"),
        Linkage::Shared,
    );
    for round in 0..3 {
        let offline = tmp.path().join(format!("spool{round}"));
        std::fs::create_dir_all(&offline).unwrap();
        let out = offline_cmd(&exe, &offline).arg("8").output().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(9), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let id = stdout
            .lines()
            .find_map(|l| l.strip_prefix("run "))
            .unwrap()
            .to_owned();
        let dir = simtrack::spool::RunDir::new(offline.join("runs").join(&id));
        let before = read_run(&offline, &id)
            .iter()
            .filter(|e| matches!(e.record, Record::Array(_)))
            .count() as u64;
        let recovered = simtrack::grid::recover(&dir).unwrap();
        assert_eq!(before + recovered, 8, "round {round}");
        assert_eq!(simtrack::grid::recover(&dir).unwrap(), 0);
        let mut steps = Vec::new();
        for e in read_run(&offline, &id) {
            if let Record::Array(a) = &e.record {
                let bytes = std::fs::read(dir.files().join(&a.stored)).unwrap();
                let v: Vec<f64> = bytes[..8000]
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                let want: Vec<f64> = (0..1000).map(|i| (i + 1000 * a.step) as f64).collect();
                assert_eq!(v, want, "step {}", a.step);
                steps.push(a.step);
            }
        }
        steps.sort_unstable();
        assert_eq!(steps, (0..8).collect::<Vec<_>>(), "round {round}");
    }
}
