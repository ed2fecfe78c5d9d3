//! Shared helpers of the integration tests: compiling C programs against the
//! built library and reading back what a run spooled.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use simtrack::record::{MetricBatch, Record};
use simtrack::spool::{Entry, RunDir, SpoolReader};

/// `target/<profile>/deps`, where `cargo test` builds libsimtrack.so and
/// libsimtrack.a for this very test run (the copies in `target/<profile>`
/// are only refreshed by `cargo build`: they may be stale or absent).
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().expect("target/<profile>/deps").to_path_buf()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linkage {
    Shared,
    Static,
    /// The shared library, with the C side built with AddressSanitizer and
    /// UndefinedBehaviorSanitizer (any finding aborts the program).
    Sanitized,
}

/// Compiles C sources with warnings as errors against the generated header.
pub fn compile_c(sources: &[&Path], out: &Path, linkage: Linkage) -> PathBuf {
    let lib = lib_dir();
    let mut cmd = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cmd.args([
        "-std=c11",
        "-D_POSIX_C_SOURCE=200809L",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-O1",
        "-g",
        "-pthread",
    ])
    .arg("-I")
    .arg(repo().join("include"))
    .args(sources)
    .arg("-o")
    .arg(out);
    match linkage {
        Linkage::Shared | Linkage::Sanitized => {
            cmd.arg(format!("-L{}", lib.display()))
                .arg("-lsimtrack")
                .arg(format!("-Wl,-rpath,{}", lib.display()));
        }
        Linkage::Static => {
            cmd.arg(lib.join("libsimtrack.a"));
            cmd.args([
                "-lgcc_s",
                "-lutil",
                "-lrt",
                "-lpthread",
                "-lm",
                "-ldl",
                "-lc",
            ]);
        }
    }
    if linkage == Linkage::Sanitized {
        cmd.args([
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ]);
    }
    cmd.arg("-lm");
    let o = cmd.output().expect("run the C compiler");
    assert!(
        o.status.success(),
        "compiling {sources:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.to_path_buf()
}

/// A command with a clean simtrack environment: offline into `offline`.
pub fn offline_cmd(exe: &Path, offline: &Path) -> Command {
    let mut cmd = Command::new(exe);
    for (k, _) in std::env::vars() {
        if k.starts_with("SIMTRACK_")
            || k.starts_with("OMPI_")
            || k.starts_with("PMI")
            || k.starts_with("SLURM_")
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("SIMTRACK_OFFLINE_DIR", offline)
        .env("SIMTRACK_RESOURCES_INTERVAL", "0");
    cmd.current_dir(offline);
    // `cargo test` puts target/<profile> before target/<profile>/deps on
    // LD_LIBRARY_PATH, which outranks the programs' RUNPATH: without this,
    // they would load the copy of the library that only `cargo build`
    // refreshes, possibly stale.
    cmd.env("LD_LIBRARY_PATH", lib_dir());
    // Sanitized programs: any report ends the program with a failure.
    cmd.env(
        "ASAN_OPTIONS",
        "abort_on_error=0:halt_on_error=1:detect_leaks=1",
    )
    .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1");
    cmd
}

pub fn check_output(o: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{what} failed with {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

/// Every trusted record of a spooled run.
pub fn read_run(offline: &Path, id: &str) -> Vec<Entry> {
    let dir = RunDir::new(offline.join("runs").join(id));
    SpoolReader::open(&dir, 0, 0)
        .expect("open spool")
        .read_all()
        .expect("read spool")
}

/// All metric points of `metric` as (step, value), in spool order.
pub fn points_of(entries: &[Entry], metric: &str) -> Vec<(i64, f64)> {
    let mut out = Vec::new();
    for e in entries {
        if let Record::Metrics(MetricBatch { names, points }) = &e.record {
            for p in points {
                if names[p.name as usize] == metric {
                    out.push((p.step, p.value));
                }
            }
        }
    }
    out
}

pub mod endpoint;
