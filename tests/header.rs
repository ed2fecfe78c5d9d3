//! `include/simtrack.h` is generated from the Rust source and committed; this
//! test fails when it is stale. Refresh it with
//! `SIMTRACK_BLESS=1 cargo test --locked --test header`.

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
