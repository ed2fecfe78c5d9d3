//! Security headers on every response, and how stored files are served.
//!
//! Every response carries `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY` and, unless the
//! handler set its own (the UI pages do), a Content-Security-Policy that
//! allows nothing: `default-src 'none'; frame-ancestors 'none'; sandbox`.
//! JSON rendered by a browser can therefore never run script or be framed.
//!
//! Artifact downloads ([`file_headers`]) never trust the client-declared
//! `mime_type`: a file is shown inline only when its first bytes are a PNG,
//! JPEG, GIF or WebP image of the declared type, or when it was declared
//! text or JSON (then it is served as `text/plain`). Everything else,
//! including HTML and SVG, is `application/octet-stream` with
//! `Content-Disposition: attachment`, under a strict sandboxing CSP.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of every response that is not a UI page: nothing may load,
/// run, or frame it.
pub const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox";

/// The policy of a file download: as [`API_CSP`], but an image shown inline
/// may be drawn and a text file styled by the browser's own viewer.
pub const FILE_CSP: &str = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox";

/// Adds the headers every response carries (keeping any the handler set).
pub fn add(h: &mut HeaderMap) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(API_CSP));
    h.entry("cross-origin-opener-policy")
        .or_insert(HeaderValue::from_static("same-origin"));
}

/// Middleware: [`add`] on every response.
pub async fn layer(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    add(r.headers_mut());
    r
}

/// How a stored file is served: `(content type, content disposition)`.
///
/// `declared` is the client's `mime_type`, `head` the file's first bytes
/// (16 are enough), `name` the artifact name.
pub fn file_headers(declared: &str, head: &[u8], name: &str) -> Vec<(header::HeaderName, String)> {
    let declared = declared
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let inline_type = match sniff_image(head) {
        Some(img) if declared == img || (img == "image/jpeg" && declared == "image/jpg") => {
            Some(img.to_owned())
        }
        Some(_) => None,
        None if is_text(&declared) && !looks_binary(head) => {
            Some("text/plain; charset=utf-8".to_owned())
        }
        None => None,
    };
    let (ctype, disposition) = match inline_type {
        Some(t) => (t, "inline"),
        None => ("application/octet-stream".to_owned(), "attachment"),
    };
    vec![
        (header::CONTENT_TYPE, ctype),
        (
            header::CONTENT_DISPOSITION,
            format!(
                "{disposition}; filename=\"{}\"; filename*=UTF-8''{}",
                ascii_filename(name),
                percent(name)
            ),
        ),
        (header::CONTENT_SECURITY_POLICY, FILE_CSP.to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (header::CACHE_CONTROL, "private, no-cache".to_owned()),
    ]
}

/// The image type the magic bytes say, among the ones shown inline.
fn sniff_image(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if b.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Declared types shown inline as plain text (never HTML, SVG or XML).
fn is_text(t: &str) -> bool {
    matches!(
        t,
        "text/plain"
            | "text/csv"
            | "text/x-fortran"
            | "text/x-c"
            | "text/x-python"
            | "text/markdown"
            | "application/json"
            | "application/x-namelist"
            | "text/x-log"
    )
}

fn looks_binary(head: &[u8]) -> bool {
    head.contains(&0)
}

/// The name with everything but `A-Za-z0-9._-+` replaced by `_` (at most
/// 128 bytes): safe inside a quoted header parameter everywhere.
fn ascii_filename(name: &str) -> String {
    let s: String = name
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("file{s}")
    } else {
        s
    }
}

/// RFC 5987 percent-encoding of the UTF-8 name.
fn percent(name: &str) -> String {
    name.bytes()
        .take(512)
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(v: &[(header::HeaderName, String)], h: header::HeaderName) -> String {
        v.iter()
            .find(|(k, _)| *k == h)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    #[test]
    fn html_and_svg_are_attachments_whatever_they_claim() {
        for (declared, body) in [
            ("text/html", &b"<script>alert(1)</script>"[..]),
            (
                "image/svg+xml",
                b"<svg xmlns='http://www.w3.org/2000/svg'><script>x</script></svg>",
            ),
            ("image/png", b"<html><script>alert(1)</script>"),
            ("application/xhtml+xml", b"<html/>"),
            ("text/plain", b"\x00\x01binary"),
        ] {
            let h = file_headers(declared, body, "x.html");
            assert_eq!(
                get(&h, header::CONTENT_TYPE),
                "application/octet-stream",
                "{declared}"
            );
            assert!(get(&h, header::CONTENT_DISPOSITION).starts_with("attachment;"));
            assert!(get(&h, header::CONTENT_SECURITY_POLICY).contains("sandbox"));
        }
    }

    #[test]
    fn real_images_and_text_are_inline() {
        let h = file_headers("image/png", b"\x89PNG\r\n\x1a\n0000", "plot.png");
        assert_eq!(get(&h, header::CONTENT_TYPE), "image/png");
        assert!(get(&h, header::CONTENT_DISPOSITION).starts_with("inline;"));
        let h = file_headers("application/json", b"{\"a\": 1}", "a.json");
        assert_eq!(get(&h, header::CONTENT_TYPE), "text/plain; charset=utf-8");
    }

    #[test]
    fn filenames_are_quoted_safely() {
        let h = file_headers("text/html", b"", "a\"b\r\nc;d é.html");
        let d = get(&h, header::CONTENT_DISPOSITION);
        assert!(HeaderValue::from_str(&d).is_ok());
        assert!(d.contains("filename=\"a_b__c_d__.html\""), "{d}");
        assert!(
            d.contains("filename*=UTF-8''a%22b%0D%0Ac%3Bd%20%C3%A9.html"),
            "{d}"
        );
        let h = file_headers("text/html", b"", ".bashrc");
        assert!(get(&h, header::CONTENT_DISPOSITION).contains("filename=\"file.bashrc\""));
    }
}
