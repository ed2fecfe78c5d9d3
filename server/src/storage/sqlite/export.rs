//! What `simtrack migrate` needs from an embedded database beyond the
//! state-store trait: every token record and every setting (the trait has
//! lookups by key only). Read-only.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::storage::TokenRow;

/// Every setting: key and value.
pub type Settings = Vec<(String, Vec<u8>)>;

/// Every token and every setting of `dir/simtrack.db`.
pub fn tokens_and_settings(dir: &Path) -> Result<(Vec<TokenRow>, Settings), String> {
    let path = dir.join("simtrack.db");
    let c = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let err = |e: rusqlite::Error| format!("{}: {e}", path.display());
    let tokens = c
        .prepare(
            "SELECT id, name, hash, exp, created, label, read_only, last_used, csrf
             FROM tokens ORDER BY created",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok(TokenRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    hash: r.get(2)?,
                    exp: r.get(3)?,
                    created: r.get(4)?,
                    label: r.get(5)?,
                    read_only: r.get::<_, i64>(6)? != 0,
                    last_used: r.get(7)?,
                    csrf: r.get(8)?,
                })
            })?
            .collect()
        })
        .map_err(err)?;
    let settings = c
        .prepare("SELECT key, value FROM settings ORDER BY key")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(err)?;
    Ok((tokens, settings))
}
