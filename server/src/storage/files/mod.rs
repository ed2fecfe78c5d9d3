//! Content-addressed artifact bytes: `blobs/<aa>/<bb>/<sha256>`, written
//! through a temporary file, hashed while streaming, fsynced, then renamed
//! into place. A file is never held whole in memory, and no client-supplied
//! name ever becomes part of a path.

use std::path::{Path, PathBuf};

use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::http::ApiError;

/// The blob directory.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `s` is a lowercase-hex SHA-256 (the only thing that may name a blob).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

impl BlobStore {
    /// Opens (creating) the blob directory and clears stale temporary files.
    pub fn open(root: &Path) -> Result<BlobStore, String> {
        let tmp = root.join("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        Ok(BlobStore {
            root: root.to_path_buf(),
        })
    }

    /// Where the blob with this digest lives (`sha` must pass [`is_sha256`]).
    pub fn path(&self, sha: &str) -> PathBuf {
        self.root.join(&sha[0..2]).join(&sha[2..4]).join(sha)
    }

    /// Whether the blob is stored.
    pub fn has(&self, sha: &str) -> bool {
        is_sha256(sha) && self.path(sha).is_file()
    }

    /// Streams `body` into the store, checking it hashes to `expected` and is
    /// exactly `size` bytes (never more than `limit`).
    pub async fn put<S, E>(
        &self,
        mut body: S,
        expected: &str,
        size: u64,
        limit: u64,
    ) -> Result<(), ApiError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if !is_sha256(expected) {
            return Err(ApiError::unprocessable(
                "artifact checksum is not a SHA-256 hex digest",
            ));
        }
        let mut name = [0u8; 12];
        crate::util::fill_random(&mut name);
        let tmp = self.root.join("tmp").join(hex(&name));
        let result = async {
            let mut file = tokio::fs::File::create(&tmp).await.map_err(ApiError::io)?;
            let mut hasher = Sha256::new();
            let mut written = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk =
                    chunk.map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?;
                written += chunk.len() as u64;
                if written > limit {
                    return Err(ApiError::too_large(format!(
                        "upload exceeds the limit of {limit} bytes"
                    )));
                }
                if written > size {
                    return Err(ApiError::bad_request(format!(
                        "upload is larger than the registered size of {size} bytes"
                    )));
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(ApiError::io)?;
            }
            if written != size {
                return Err(ApiError::bad_request(format!(
                    "upload has {written} bytes, the artifact was registered with {size}"
                )));
            }
            let got = hex(&hasher.finalize());
            if got != expected {
                return Err(ApiError::bad_request(format!(
                    "upload has SHA-256 {got}, the artifact was registered with {expected}"
                )));
            }
            file.sync_all().await.map_err(ApiError::io)?;
            drop(file);
            let dest = self.path(expected);
            if let Some(parent) = dest.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(ApiError::io)?;
            }
            tokio::fs::rename(&tmp, &dest).await.map_err(ApiError::io)?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }
}
