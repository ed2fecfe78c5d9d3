//! A spool is private to its owner: everything a run writes (directories
//! 0700, files 0600), whatever the process umask, and `simtrack sync`'s
//! own files too.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use simtrack::config::Config;
use simtrack::run::{InitOptions, Run};
use simtrack::transport::memory::MemoryTransport;

fn config(offline: &Path) -> Config {
    let env: HashMap<String, String> = HashMap::from([
        ("SIMTRACK_OFFLINE_DIR".into(), offline.display().to_string()),
        ("SIMTRACK_RESOURCES_INTERVAL".into(), "0".into()),
        ("HOME".into(), offline.display().to_string()),
    ]);
    Config::load_with(move |k| env.get(k).cloned()).unwrap()
}

fn walk(dir: &Path, out: &mut Vec<(std::path::PathBuf, u32)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let mode = std::fs::symlink_metadata(&p).unwrap().permissions().mode();
        out.push((p.clone(), mode & 0o777));
        if p.is_dir() {
            walk(&p, out);
        }
    }
}

#[test]
fn everything_a_run_writes_is_private_to_its_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let offline = tmp.path().join("cache/simtrack");
    let input = tmp.path().join("input.nml");
    std::fs::write(&input, "&heat nx=128 /\n").unwrap();
    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A permissive umask, as on many login nodes (the test's own process).
    // SAFETY: umask only changes this process's file-creation mask.
    let old = unsafe { libc_umask(0o022) };
    let cfg = config(&offline);
    // Offline: no transport, everything stays in the spool.
    let run = Run::init_with_transport(
        InitOptions {
            name: Some("private".into()),
            ..Default::default()
        },
        &cfg,
        None::<MemoryTransport>,
    )
    .unwrap();
    run.log("residual", 1.0, 0).unwrap();
    run.save(&input, simtrack::model::Category::Input).unwrap();
    run.finish().unwrap();
    // SAFETY: restores the mask read above.
    unsafe { libc_umask(old) };

    let mut found = Vec::new();
    walk(&offline, &mut found);
    assert!(found.len() >= 5, "{found:?}");
    let loose: Vec<_> = found
        .iter()
        .filter(|(p, m)| {
            let want = if p.is_dir() { 0o700 } else { 0o600 };
            *m != want
        })
        .collect();
    assert!(loose.is_empty(), "not private: {loose:?}");
    let root = std::fs::metadata(&offline).unwrap().permissions().mode() & 0o777;
    assert_eq!(root, 0o700);
}

unsafe extern "C" {
    #[link_name = "umask"]
    fn libc_umask(mask: u32) -> u32;
}
