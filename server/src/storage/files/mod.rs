//! Content-addressed artifact bytes: `blobs/<aa>/<bb>/<sha256>`, written
//! through a temporary file, hashed while streaming, fsynced, then renamed
//! into place. A file is never held whole in memory, and no client-supplied
//! name ever becomes part of a path.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;

use super::{BlobError, BlobStore, BoxFuture, ByteStream, StorageError};
use crate::util::{hex, is_sha256};

/// The blob directory.
#[derive(Debug)]
pub struct FileBlobs {
    root: PathBuf,
}

fn io(e: std::io::Error) -> BlobError {
    BlobError::Storage(StorageError(format!("storage error: {e}")))
}

/// The length of the stored blob `sha` under `root`, or `None` when it is
/// missing (for `simtrack doctor`).
pub fn stored_len(root: &Path, sha: &str) -> Option<u64> {
    if !is_sha256(sha) {
        return None;
    }
    std::fs::metadata(root.join(&sha[0..2]).join(&sha[2..4]).join(sha))
        .ok()
        .map(|m| m.len())
}

impl FileBlobs {
    /// Opens (creating) the blob directory and clears stale temporary files.
    pub fn open(root: &Path) -> Result<FileBlobs, String> {
        let tmp = root.join("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        Ok(FileBlobs {
            root: root.to_path_buf(),
        })
    }

    /// Where the blob with this digest lives (`sha` must pass [`is_sha256`]).
    fn path(&self, sha: &str) -> PathBuf {
        self.root.join(&sha[0..2]).join(&sha[2..4]).join(sha)
    }

    /// Streams `body` into the store, checking it hashes to `expected` and is
    /// at most `size` bytes (never more than `limit`); answers its length.
    async fn put_file(
        &self,
        mut body: ByteStream,
        expected: &str,
        size: u64,
        limit: u64,
    ) -> Result<u64, BlobError> {
        if !is_sha256(expected) {
            return Err(BlobError::Mismatch(
                "artifact checksum is not a SHA-256 hex digest".into(),
            ));
        }
        let mut name = [0u8; 12];
        crate::util::fill_random(&mut name);
        let tmp = self.root.join("tmp").join(hex(&name));
        let result = async {
            let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
            let len =
                super::receive_checked(&mut body, &mut file, expected, size, limit, io).await?;
            file.sync_all().await.map_err(io)?;
            drop(file);
            let dest = self.path(expected);
            if let Some(parent) = dest.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(io)?;
            }
            tokio::fs::rename(&tmp, &dest).await.map_err(io)?;
            Ok(len)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }
}

impl BlobStore for FileBlobs {
    fn has<'a>(&'a self, sha: &'a str) -> BoxFuture<'a, super::Result<bool>> {
        Box::pin(async move {
            Ok(is_sha256(sha)
                && tokio::fs::metadata(self.path(sha))
                    .await
                    .is_ok_and(|m| m.is_file()))
        })
    }

    fn put<'a>(
        &'a self,
        body: ByteStream,
        sha: &'a str,
        size: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<u64, BlobError>> {
        Box::pin(self.put_file(body, sha, size, limit))
    }

    fn get<'a>(&'a self, sha: &'a str) -> BoxFuture<'a, super::Result<Option<(u64, ByteStream)>>> {
        Box::pin(async move {
            if !is_sha256(sha) {
                return Ok(None);
            }
            let file = match tokio::fs::File::open(self.path(sha)).await {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(StorageError(format!("storage error: {e}"))),
            };
            let len = file
                .metadata()
                .await
                .map_err(|e| StorageError(format!("storage error: {e}")))?
                .len();
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
                .map(|r| r.map_err(|e| e.to_string()));
            Ok(Some((len, Box::pin(stream) as ByteStream)))
        })
    }
}
