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

use super::{BlobError, BlobStore, BoxFuture, ByteStream, DirectUpload, StorageError};
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
        extra: &[(&'static str, String)],
    ) -> reqwest::RequestBuilder {
        let headers = sigv4::sign_headers(
            &self.creds,
            (method.as_str(), path, ""),
            self.host(),
            payload_hash,
            extra,
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
            .request(reqwest::Method::HEAD, &path, sigv4::EMPTY_SHA256, &[])
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
    /// the object store for `expires` seconds (SigV4 query signing), with
    /// `extra` query parameters signed too.
    pub fn presign(&self, method: &str, sha: &str, expires: u32, extra: &[(&str, &str)]) -> String {
        let path = self.path(&self.key(sha));
        let query = sigv4::presign_query(
            &self.creds,
            method,
            self.host(),
            &path,
            expires,
            extra,
            SystemTime::now(),
        );
        format!("{}{path}?{query}", self.endpoint)
    }

    /// The staging key of direct upload `id`.
    fn upload_key(&self, id: &str) -> String {
        let id: String = id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        if self.prefix.is_empty() {
            format!("uploads/{id}")
        } else {
            format!("{}/uploads/{id}", self.prefix)
        }
    }

    async fn delete_key(&self, key: &str) -> super::Result<()> {
        let path = self.path(key);
        let r = self
            .request(reqwest::Method::DELETE, &path, sigv4::EMPTY_SHA256, &[])
            .send()
            .await
            .map_err(|e| s3_err("unreachable", e))?;
        if r.status().is_success() || r.status().as_u16() == 404 {
            Ok(())
        } else {
            Err(s3_err("DELETE", r.status()))
        }
    }

    /// Whether the object `key` is exactly `size` bytes hashing to `sha`.
    /// Asks the store (`HEAD` with `x-amz-checksum-mode: ENABLED`) for the
    /// SHA-256 it checked when the object was written (the upload form
    /// makes the client send it); only when the store kept none are the
    /// bytes read back and hashed here.
    async fn object_matches(&self, key: &str, sha: &str, size: u64) -> super::Result<bool> {
        use base64::Engine;
        let path = self.path(key);
        let r = self
            .request(
                reqwest::Method::HEAD,
                &path,
                sigv4::EMPTY_SHA256,
                &[("x-amz-checksum-mode", "ENABLED".to_owned())],
            )
            .send()
            .await
            .map_err(|e| s3_err("unreachable", e))?;
        match r.status().as_u16() {
            200 => {}
            404 => return Ok(false),
            s => return Err(s3_err("HEAD", s)),
        }
        let len = r
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if len != Some(size) {
            return Ok(false);
        }
        if let Some(stored) = r
            .headers()
            .get("x-amz-checksum-sha256")
            .and_then(|v| v.to_str().ok())
        {
            return Ok(base64::engine::general_purpose::STANDARD
                .decode(stored.trim())
                .is_ok_and(|got| got == unhex(sha)));
        }
        // The store kept no checksum: read the object back.
        let r = self
            .request(reqwest::Method::GET, &path, sigv4::EMPTY_SHA256, &[])
            .send()
            .await
            .map_err(|e| s3_err("unreachable", e))?;
        if !r.status().is_success() {
            return Ok(false);
        }
        let mut bytes = r.bytes_stream();
        let mut h = <sha2::Sha256 as sha2::Digest>::new();
        let mut n = 0u64;
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk.map_err(|e| s3_err("GET", e))?;
            n += chunk.len() as u64;
            sha2::Digest::update(&mut h, &chunk);
        }
        Ok(n == size && hex(&sha2::Digest::finalize(h)) == sha)
    }

    /// Takes in direct upload `id` as blob `sha` when it checks out: a
    /// server-side copy to the content-addressed key (no bytes through this
    /// process), then the staging object is deleted either way.
    async fn adopt_upload(&self, id: &str, sha: &str, size: u64) -> super::Result<bool> {
        if !is_sha256(sha) {
            return Ok(false);
        }
        let staging = self.upload_key(id);
        if self.has(sha).await? {
            self.delete_key(&staging).await?;
            return Ok(true);
        }
        if !self.object_matches(&staging, sha, size).await? {
            self.delete_key(&staging).await?;
            return Ok(false);
        }
        let source = sigv4::uri_path(&format!("/{}/{staging}", self.bucket));
        let r = self
            .request(
                reqwest::Method::PUT,
                &self.path(&self.key(sha)),
                sigv4::EMPTY_SHA256,
                &[("x-amz-copy-source", source)],
            )
            .send()
            .await
            .map_err(|e| s3_err("unreachable", e))?;
        if !r.status().is_success() {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            return Err(s3_err("copy", format!("{status}: {text}")));
        }
        self.delete_key(&staging).await?;
        Ok(true)
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
            // ... and keeps that SHA-256 with the object, so a later check
            // (`verify`) can ask for it instead of reading the bytes.
            let r = self
                .request(
                    reqwest::Method::PUT,
                    &path,
                    sha,
                    &[("x-amz-checksum-sha256", sha256_b64(sha))],
                )
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

/// The bytes of a lowercase hex string (checked by `is_sha256` first).
fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// The base64 form of a hex SHA-256 (as S3's checksum headers carry it).
fn sha256_b64(sha: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(unhex(sha))
}

impl BlobStore for S3Blobs {
    fn direct_upload(&self, id: &str, sha: &str, size: u64, ttl: u32) -> Option<DirectUpload> {
        if !is_sha256(sha) {
            return None;
        }
        let fields = sigv4::post_fields(
            &self.creds,
            &self.bucket,
            &self.upload_key(id),
            size,
            &sha256_b64(sha),
            ttl,
            SystemTime::now(),
        );
        Some(DirectUpload {
            url: format!(
                "{}{}",
                self.endpoint,
                sigv4::uri_path(&format!("/{}", self.bucket))
            ),
            fields,
        })
    }

    fn direct_download(&self, sha: &str, name: &str, ttl: u32) -> Option<String> {
        if !is_sha256(sha) {
            return None;
        }
        // Always an attachment of a neutral type: the store's origin is not
        // the server's, but a browser should still not render it.
        let name: String = name
            .chars()
            .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
            .collect();
        let disposition = format!("attachment; filename=\"{name}\"");
        Some(self.presign(
            "GET",
            sha,
            ttl,
            &[
                ("response-content-disposition", &disposition),
                ("response-content-type", "application/octet-stream"),
            ],
        ))
    }

    fn adopt<'a>(
        &'a self,
        id: &'a str,
        sha: &'a str,
        size: u64,
    ) -> BoxFuture<'a, super::Result<bool>> {
        Box::pin(self.adopt_upload(id, sha, size))
    }

    fn has<'a>(&'a self, sha: &'a str) -> BoxFuture<'a, super::Result<bool>> {
        Box::pin(async move {
            if !is_sha256(sha) {
                return Ok(false);
            }
            let path = self.path(&self.key(sha));
            let r = self
                .request(reqwest::Method::HEAD, &path, sigv4::EMPTY_SHA256, &[])
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
                .request(reqwest::Method::GET, &path, sigv4::EMPTY_SHA256, &[])
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
