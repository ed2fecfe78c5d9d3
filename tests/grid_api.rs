//! The grid and array C API from a C program (tests/c/grid_input.c),
//! offline: bad input answers a status and records nothing, good calls
//! leave a Grid record and Array records whose value files hold the values
//! axis 0 fastest, whatever the order they were given in.

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
        let v: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let last = if a.step == 2 { 6.5 } else { 6.0 };
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0, 5.0, last], "step {}", a.step);
    }
}
