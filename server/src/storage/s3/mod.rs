//! Artifact bytes in an S3-compatible object store (`--blobs
//! s3://BUCKET[/PREFIX]`), content-addressed as in the file store:
//! object `PREFIX/ab/cd/abcd…` for SHA-256 `abcd…`.
//!
//! Endpoint and credentials come from the standard variables:
//! `AWS_ENDPOINT_URL` (e.g. `http://127.0.0.1:3900`; default
//! `http://s3.REGION.amazonaws.com`), `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`, `AWS_REGION`
//! (default `us-east-1`). Requests use path-style addressing
//! (`ENDPOINT/BUCKET/KEY`), which Garage, MinIO, s3s and AWS all accept,
//! and are signed with AWS Signature Version 4 ([`sigv4`]).
//!
//! An upload is first checked while it is spooled to a temporary file
//! (size, limit, SHA-256, exactly as the file store checks it), then sent
//! with its SHA-256 as the signed payload hash, so the store verifies the
//! bytes again and nothing partial or wrong is ever stored. Plain `http`
//! endpoints only: this build has no TLS client (put the store on a
//! private network or behind a local TLS proxy).

pub mod sigv4;

use std::path::PathBuf;
use std::time::SystemTime;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{BlobError, BlobStore, BoxFuture, ByteStream, StorageError};
use crate::util::{hex, is_sha256};

/// An S3 bucket (and key prefix) holding artifact bytes.
pub struct S3Blobs {
    http: reqwest::Client,
    endpoint: String,
    bucket: String,
    prefix: String,
    creds: sigv4::Credentials,
    spool: PathBuf,
}

impl std::fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("S3Blobs")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn s3_err(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError(format!("object store {what}: {e}"))
}

impl S3Blobs {
    /// The store for `url` (`s3://BUCKET[/PREFIX]`), configured from the
    /// `AWS_*` environment; checks that the bucket answers.
    pub async fn open(url: &str) -> Result<S3Blobs, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("not an s3:// URL: {url}"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("no bucket in {url}"));
        }
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = env("AWS_ENDPOINT_URL")
            .unwrap_or_else(|| format!("http://s3.{region}.amazonaws.com"))
            .trim_end_matches('/')
            .to_owned();
        if !endpoint.starts_with("http://") {
            return Err(format!(
                "object store endpoint {endpoint}: only http:// endpoints are supported (no TLS client in this build)"
            ));
        }
        let creds = sigv4::Credentials {
            access_key: env("AWS_ACCESS_KEY_ID").ok_or("AWS_ACCESS_KEY_ID is not set")?,
            secret_key: env("AWS_SECRET_ACCESS_KEY").ok_or("AWS_SECRET_ACCESS_KEY is not set")?,
            session_token: env("AWS_SESSION_TOKEN"),
            region,
        };
        let spool = std::env::temp_dir().join(format!("simtrack-s3-{}", std::process::id()));
        std::fs::create_dir_all(&spool)
            .map_err(|e| format!("cannot create {}: {e}", spool.display()))?;
        let store = S3Blobs {
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| format!("cannot set up the HTTP client: {e}"))?,
            endpoint,
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            creds,
            spool,
        };
        store
            .ping()
            .await
            .map_err(|e| format!("s3://{bucket} at {}: {e}", store.endpoint))?;
        Ok(store)
    }

    /// The object key of blob `sha`.
    fn key(&self, sha: &str) -> String {
        let k = format!("{}/{}/{sha}", &sha[0..2], &sha[2..4]);
        if self.prefix.is_empty() {
            k
        } else {
            format!("{}/{k}", self.prefix)
        }
    }

    /// `/BUCKET/KEY`, URI-encoded as signed.
    fn path(&self, key: &str) -> String {
        sigv4::uri_path(&format!("/{}/{key}", self.bucket))
    }

    fn host(&self) -> &str {
        self.endpoint
            .strip_prefix("http://")
            .unwrap_or(&self.endpoint)
    }

    /// A signed request for `path` (already encoded) with `payload_hash`.
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        payload_hash: &str,
    ) -> reqwest::RequestBuilder {
        let headers = sigv4::sign_headers(
            &self.creds,
            method.as_str(),
            self.host(),
            path,
            "",
            payload_hash,
            SystemTime::now(),
        );
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.endpoint));
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        rb
    }

    /// Whether the bucket answers (readiness).
    pub async fn ping(&self) -> super::Result<()> {
        let path = sigv4::uri_path(&format!("/{}", self.bucket));
        let r = self
            .request(reqwest::Method::HEAD, &path, sigv4::EMPTY_SHA256)
            .send()
            .await
            .map_err(|e| s3_err("unreachable", e))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(s3_err("bucket check", r.status()))
        }
    }

    /// A URL that lets its holder `GET` or `PUT` blob `sha` directly at
    /// the object store for `expires` seconds (SigV4 query signing).
    pub fn presign(&self, method: &str, sha: &str, expires: u32) -> String {
        let path = self.path(&self.key(sha));
        let query = sigv4::presign_query(
            &self.creds,
            method,
            self.host(),
            &path,
            expires,
            SystemTime::now(),
        );
        format!("{}{path}?{query}", self.endpoint)
    }

    /// Checks `body` into a spool file; its path and length when it is at
    /// most `size` bytes hashing to `sha`.
    async fn spool_checked(
        &self,
        mut body: ByteStream,
        sha: &str,
        size: u64,
        limit: u64,
    ) -> Result<(PathBuf, u64), BlobError> {
        let io = |e: std::io::Error| BlobError::Storage(StorageError(format!("spool: {e}")));
        let mut name = [0u8; 12];
        crate::util::fill_random(&mut name);
        let tmp = self.spool.join(hex(&name));
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let result = async {
            let len = super::receive_checked(&mut body, &mut file, sha, size, limit, io).await?;
            file.flush().await.map_err(io)?;
            Ok(len)
        }
        .await;
        drop(file);
        match result {
            Ok(len) => Ok((tmp, len)),
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    async fn put_checked(
        &self,
        body: ByteStream,
        sha: &str,
        size: u64,
        limit: u64,
    ) -> Result<u64, BlobError> {
        if !is_sha256(sha) {
            return Err(BlobError::Mismatch(
                "artifact checksum is not a SHA-256 hex digest".into(),
            ));
        }
        let (tmp, len) = self.spool_checked(body, sha, size, limit).await?;
        let result = async {
            let file = tokio::fs::File::open(&tmp)
                .await
                .map_err(|e| s3_err("spool", e))?;
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
            let path = self.path(&self.key(sha));
            // The payload hash is the blob's own SHA-256: the store checks
            // the bytes against it before it keeps them.
            let r = self
                .request(reqwest::Method::PUT, &path, sha)
                .header(reqwest::header::CONTENT_LENGTH, len)
                .body(reqwest::Body::wrap_stream(stream))
                .send()
                .await
                .map_err(|e| s3_err("upload", e))?;
            if r.status().is_success() {
                Ok(len)
            } else {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                Err(s3_err("upload", format!("{status}: {text}")))
            }
        }
        .await;
        let _ = tokio::fs::remove_file(&tmp).await;
        result.map_err(BlobError::Storage)
    }
}

impl BlobStore for S3Blobs {
    fn has<'a>(&'a self, sha: &'a str) -> BoxFuture<'a, super::Result<bool>> {
        Box::pin(async move {
            if !is_sha256(sha) {
                return Ok(false);
            }
            let path = self.path(&self.key(sha));
            let r = self
                .request(reqwest::Method::HEAD, &path, sigv4::EMPTY_SHA256)
                .send()
                .await
                .map_err(|e| s3_err("unreachable", e))?;
            match r.status().as_u16() {
                200 => Ok(true),
                404 => Ok(false),
                s => Err(s3_err("HEAD", s)),
            }
        })
    }

    fn put<'a>(
        &'a self,
        body: ByteStream,
        sha: &'a str,
        size: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<u64, BlobError>> {
        Box::pin(self.put_checked(body, sha, size, limit))
    }

    fn get<'a>(&'a self, sha: &'a str) -> BoxFuture<'a, super::Result<Option<(u64, ByteStream)>>> {
        Box::pin(async move {
            if !is_sha256(sha) {
                return Ok(None);
            }
            let path = self.path(&self.key(sha));
            let r = self
                .request(reqwest::Method::GET, &path, sigv4::EMPTY_SHA256)
                .send()
                .await
                .map_err(|e| s3_err("unreachable", e))?;
            match r.status().as_u16() {
                200 => {}
                404 => return Ok(None),
                s => return Err(s3_err("GET", s)),
            }
            let len = r
                .content_length()
                .ok_or_else(|| s3_err("GET", "no Content-Length"))?;
            let stream = r.bytes_stream().map(|c| c.map_err(|e| e.to_string()));
            Ok(Some((len, Box::pin(stream) as ByteStream)))
        })
    }
}

impl Drop for S3Blobs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.spool);
    }
}
