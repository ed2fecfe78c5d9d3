//! Keeping the data directory private to the server's user.
//!
//! `simtrack.db` holds every run and the secret that signs download links,
//! so nobody else on a shared machine may read it. The server (and `token
//! create`) run with umask `077`, so everything they create (the directory,
//! the database and its `-wal`/`-shm`, `server.lock`, blobs) is `0700`/`0600`;
//! [`prepare_dir`] also sets the modes explicitly on what it creates, and
//! [`loose_permissions`] finds what an older version (or a `cp`) left open.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Sets the process umask to `077` (files `0600`, directories `0700`).
pub fn restrict_umask() {
    // SAFETY: umask only replaces the process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` (mode `0700`) and an empty `simtrack.db` (mode `0600`) if
/// they do not exist; SQLite gives `-wal` and `-shm` the database's mode.
pub fn prepare_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() && !dir.is_dir() {
        return Err(format!(
            "{} is not a directory: --data takes the server's data directory (created if missing)",
            dir.display()
        ));
    }
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let db = dir.join("simtrack.db");
    if !db.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&db)
            .map_err(|e| format!("cannot create {}: {e}", db.display()))?;
    }
    Ok(())
}

/// Files and directories under `dir` (itself included) that its group or
/// others may access, with their modes. Blob files are many: at most
/// `limit` are listed, but all are counted in the second value. At most
/// `visit` entries are looked at (the directory and its top level first).
pub fn loose_permissions(dir: &Path, limit: usize, visit: usize) -> (Vec<(PathBuf, u32)>, usize) {
    let mut found = Vec::new();
    let mut count = 0usize;
    let mut queue = std::collections::VecDeque::from([dir.to_path_buf()]);
    let mut visited = 0usize;
    while let Some(p) = queue.pop_front() {
        visited += 1;
        if visited > visit {
            break;
        }
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            count += 1;
            if found.len() < limit {
                found.push((p.clone(), mode));
            }
        }
        if meta.is_dir()
            && let Ok(rd) = std::fs::read_dir(&p)
        {
            queue.extend(rd.flatten().map(|e| e.path()));
        }
    }
    found.sort();
    (found, count)
}

/// Prints a warning to stderr for every group/world-accessible file in
/// `dir`, with the command that fixes it. Returns how many there were.
pub fn warn_if_loose(dir: &Path) -> usize {
    // Not a directory (yet): opening the store says what is wrong with it.
    if !dir.is_dir() {
        return 0;
    }
    // Bounded, so that a store of millions of blobs starts quickly;
    // `simtrack doctor` looks at everything.
    let (found, count) = loose_permissions(dir, 10, 20_000);
    if count > 0 {
        for (p, mode) in &found {
            eprintln!(
                "simtrack server: warning: {} is accessible to other users (mode {mode:04o})",
                p.display()
            );
        }
        if count > found.len() {
            eprintln!(
                "simtrack server: warning: ... and {} more",
                count - found.len()
            );
        }
        eprintln!(
            "simtrack server: warning: the data directory holds every run and the URL-signing secret; make it private with: chmod -R go-rwx {}",
            shell_quote(dir)
        );
    }
    count
}

/// `p` quoted for a POSIX shell when it needs it.
pub fn shell_quote(p: &Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%".contains(&b))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_that_is_a_file_is_refused_with_what_it_is() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("data");
        std::fs::write(&file, b"not a directory").expect("write");
        let err = prepare_dir(&file).expect_err("a file is no data directory");
        assert!(err.contains("is not a directory"), "{err}");
        assert_eq!(warn_if_loose(&file), 0);
        // The file is left as it was.
        assert_eq!(std::fs::read(&file).expect("read"), b"not a directory");
        // A missing directory is created, private.
        let dir = tmp.path().join("new/data");
        prepare_dir(&dir).expect("created");
        assert!(dir.join("simtrack.db").is_file());
        assert_eq!(loose_permissions(&dir, 10, 100).1, 0);
    }
}
