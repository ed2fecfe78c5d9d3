//! The real C library in tests: compiles `server/tests/c/probe.c` against the
//! `libsimtrack.so` built with the test binary, and runs it isolated from
//! any user configuration. Included with `#[path = "common/clib.rs"] mod clib;`.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// The directory holding the `libsimtrack.so` built with this test binary.
pub fn lib_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_simtrack"));
    let debug = exe.parent().expect("target/debug").to_path_buf();
    for d in [debug.join("deps"), debug.clone()] {
        if d.join("libsimtrack.so").is_file() {
            return d;
        }
    }
    panic!("libsimtrack.so not found next to {}", debug.display());
}

/// Compiles `probe.c` to `out`.
pub fn compile_probe(out: &Path) {
    let lib = lib_dir();
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args([
            "-std=c11",
            "-D_POSIX_C_SOURCE=200809L",
            "-Wall",
            "-Werror",
            "-I",
        ])
        .arg(repo().join("include"))
        .arg(repo().join("server/tests/c/probe.c"))
        .arg("-L")
        .arg(&lib)
        .arg("-lsimtrack")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lm", "-o"])
        .arg(out)
        .status()
        .expect("run cc");
    assert!(status.success(), "compiling probe.c failed");
}

/// The probe under umask 077 with `spool` as its offline directory (its
/// parent as working directory and HOME), online when `server` (URL, token)
/// is given, offline otherwise.
pub fn probe(exe: &Path, spool: &Path, server: Option<(&str, &str)>, args: &[&str]) -> Command {
    let home = spool.parent().expect("parent");
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 077 && exec \"$0\" \"$@\"")
        .arg(exe)
        .args(args)
        .current_dir(home)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SIMTRACK_OFFLINE_DIR", spool)
        .env("SIMTRACK_FINISH_TIMEOUT", "90");
    match server {
        Some((url, tok)) => c.env("SIMTRACK_URL", url).env("SIMTRACK_TOKEN", tok),
        None => c.env("SIMTRACK_MODE", "offline"),
    };
    c
}
