//! The server's layers point one way: `http` → `domain` → `storage`, with
//! `util` and `config` shared below them all. This test reads every file
//! under `server/src` (up to its `#[cfg(test)]` module, where tests may
//! reach across to set things up) and fails on any path that breaks that:
//! the SQL driver outside `storage/sqlite`, HTTP types below `http`, a
//! concrete backend named above `storage`, or an import pointing upward.
//!
//! Run it alone with `cargo test -p simtrack-server --test layers`.

use std::path::{Path, PathBuf};

/// Where a file sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Http,
    Domain,
    Storage,
    /// `util.rs`, `config.rs`, `private.rs`: shared helpers every layer may use.
    Shared,
    /// `lib.rs`, `main.rs`, `server.rs`, `sync.rs`, `doctor.rs`: wiring and
    /// commands.
    Top,
}

fn layer_of(rel: &Path) -> Layer {
    let first = rel
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or_default();
    match first {
        "http" => Layer::Http,
        "domain" => Layer::Domain,
        "storage" => Layer::Storage,
        "util.rs" | "config.rs" | "private.rs" => Layer::Shared,
        _ => Layer::Top,
    }
}

/// Path fragments a layer must not name, and why.
fn forbidden(layer: Layer, rel: &Path) -> Vec<(&'static str, &'static str)> {
    let http_types = [
        ("axum", "HTTP types belong to the http layer"),
        ("tower_http", "HTTP types belong to the http layer"),
        ("hyper", "HTTP types belong to the http layer"),
        ("reqwest", "HTTP types belong to the http layer"),
    ];
    let upward_from_domain = [("crate::http", "the domain must not import the http layer")];
    let driver = ("rusqlite", "only storage/sqlite may use the SQL driver");
    let backends = [
        (
            "storage::sqlite",
            "above storage, only the traits may be named, not a backend",
        ),
        (
            "storage::files",
            "above storage, only the traits may be named, not a backend",
        ),
    ];
    let in_sqlite = rel.starts_with("storage/sqlite");
    let mut rules: Vec<(&'static str, &'static str)> = Vec::new();
    match layer {
        Layer::Http => {
            rules.push(driver);
            rules.extend(backends);
        }
        Layer::Domain => {
            rules.push(driver);
            rules.extend(http_types);
            rules.extend(upward_from_domain);
            rules.extend(backends);
        }
        Layer::Storage => {
            if !in_sqlite {
                rules.push(driver);
            }
            // The object store's HTTP client is storage/s3's driver, as
            // rusqlite is storage/sqlite's; HTTP types stay out otherwise.
            let in_s3 = rel.starts_with("storage/s3");
            rules.extend(
                http_types
                    .into_iter()
                    .filter(|(p, _)| !(in_s3 && *p == "reqwest")),
            );
            rules.push(("crate::http", "storage must not import the http layer"));
            rules.push(("crate::domain", "storage must not import the domain"));
        }
        Layer::Shared => {
            rules.push(driver);
            rules.extend(http_types);
            for (p, _) in [
                ("crate::http", ""),
                ("crate::domain", ""),
                ("crate::storage", ""),
            ] {
                rules.push((p, "shared helpers must not import any layer"));
            }
        }
        // Wiring may name a backend (it chooses one), never the driver.
        Layer::Top => rules.push(driver),
    }
    rules
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read server/src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file outside comments and its test module.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or("")))
}

/// Whether `line` names `path` as a path (not as part of a longer word).
fn names(line: &str, path: &str) -> bool {
    line.match_indices(path).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + path.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn layers_import_only_downward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut seen = [false; 3];
    let mut violations = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let layer = layer_of(rel);
        match layer {
            Layer::Http => seen[0] = true,
            Layer::Domain => seen[1] = true,
            Layer::Storage => seen[2] = true,
            _ => {}
        }
        let text = std::fs::read_to_string(file).expect("read source");
        for (n, line) in code_lines(&text) {
            for (path, why) in forbidden(layer, rel) {
                if names(line, path) {
                    violations.push(format!("{}:{n}: `{path}`: {why}", rel.display()));
                }
            }
        }
    }
    assert!(
        seen.iter().all(|s| *s),
        "expected http/, domain/ and storage/ under {}",
        src.display()
    );
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_checker_catches_what_it_is_meant_to() {
    let storage = Path::new("storage/files/mod.rs");
    let domain = Path::new("domain/runs.rs");
    let hit = |layer, rel, line: &str| {
        forbidden(layer, rel)
            .iter()
            .any(|(path, _)| names(line, path))
    };
    assert!(hit(Layer::Storage, storage, "use crate::domain::Error;"));
    assert!(hit(Layer::Storage, storage, "use axum::http::StatusCode;"));
    assert!(hit(
        Layer::Domain,
        domain,
        "let e = crate::http::ApiError::new();"
    ));
    assert!(hit(Layer::Domain, domain, "use rusqlite::params;"));
    assert!(hit(
        Layer::Http,
        Path::new("http/runs.rs"),
        "use rusqlite::Connection;"
    ));
    assert!(!hit(
        Layer::Domain,
        domain,
        "use crate::storage::{ReadTx, WriteTx};"
    ));
    assert!(!hit(Layer::Domain, domain, "let my_axum_thing = 1;"));
    assert!(!hit(
        Layer::Storage,
        Path::new("storage/sqlite/tx.rs"),
        "use rusqlite::params;"
    ));
    let code: Vec<_> = code_lines("use a; // use axum\n#[cfg(test)]\nuse rusqlite;")
        .map(|(_, l)| l)
        .collect();
    assert_eq!(code, ["use a; "]);
}
