//! `include/simtrack.h` is generated from the Rust source and committed; this
//! test fails when it is stale. Refresh it with
//! `SIMTRACK_BLESS=1 cargo test --locked --test header`.

use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn committed_header_matches_the_rust_source() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("header is UTF-8");
    let path = root.join("include/simtrack.h");
    if std::env::var_os("SIMTRACK_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/simtrack.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/simtrack.h is stale; refresh it with: SIMTRACK_BLESS=1 cargo test --locked --test header"
    );
}

/// Every `SIMTRACK_*` constant of the header (enum values and `#define`s):
/// name and value.
fn header_constants(header: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for line in header.lines().map(str::trim) {
        let (name, value) = if let Some(def) = line.strip_prefix("#define ") {
            match def.split_once(' ') {
                Some((n, v)) => (n, v),
                None => continue,
            }
        } else if let Some((n, v)) = line.trim_end_matches(',').split_once(" = ") {
            (n, v)
        } else {
            continue;
        };
        if name.starts_with("SIMTRACK_") && !name.ends_with("_H") {
            out.insert(name.to_owned(), eval(value, name));
        }
    }
    out
}

/// `integer, parameter ... :: SIMTRACK_* = <value>` lines of a Fortran file,
/// with names in upper case (Fortran names are case-insensitive).
fn fortran_constants(source: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for line in source
        .lines()
        .map(|l| l.split('!').next().unwrap_or("").trim())
    {
        let lower = line.to_ascii_lowercase();
        if !lower.starts_with("integer") || !lower.contains("parameter") {
            continue;
        }
        let Some((_, decl)) = line.split_once("::") else {
            continue;
        };
        for item in decl.split(',') {
            if let Some((name, value)) = item.split_once('=') {
                let name = name.trim().to_ascii_uppercase();
                if name.starts_with("SIMTRACK_") {
                    out.insert(name.clone(), eval(value, &name));
                }
            }
        }
    }
    out
}

/// Evaluates the constant expressions both files use: an integer, or a
/// parenthesised product of integers (`(64 * 1024)`).
fn eval(expr: &str, name: &str) -> i64 {
    let expr = expr.trim().trim_start_matches('(').trim_end_matches(')');
    expr.split('*')
        .map(|f| {
            f.trim()
                .parse::<i64>()
                .unwrap_or_else(|_| panic!("{name}: cannot evaluate {expr:?}"))
        })
        .product()
}

#[test]
fn fortran_constants_equal_the_header() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).expect(p);
    let header = header_constants(&read("include/simtrack.h"));
    let fortran = fortran_constants(&read("fortran/simtrack_c.f90"));
    assert!(
        header.contains_key("SIMTRACK_STATUS_INTERNAL")
            && header.contains_key("SIMTRACK_MAX_NAME_BYTES"),
        "the header parser found {header:?}"
    );
    assert_eq!(
        fortran, header,
        "fortran/simtrack_c.f90 must declare every SIMTRACK_* constant of include/simtrack.h, with the same value"
    );
    // The user module re-exports each one.
    let public: Vec<String> = read("fortran/simtrack.f90")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("public ::"))
        .flat_map(|l| l.split(','))
        .map(|n| n.trim().to_ascii_uppercase())
        .collect();
    for name in header.keys() {
        assert!(
            public.contains(name),
            "fortran/simtrack.f90 does not make {name} public"
        );
    }
}
