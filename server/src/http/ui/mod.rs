//! The web UI: a single page (plain JS, no build step) and its assets,
//! embedded in the binary so an air-gapped site needs nothing else, plus
//! the few UI-only endpoints under `/api/ui` ([`api`]).
//!
//! The page and its scripts are public and carry no data; everything the UI
//! shows comes from the token-authenticated API, so an unsigned-in browser
//! sees only the sign-in form.

pub mod api;
pub mod notifications;
pub mod series;
pub mod session;
#[cfg(test)]
pub(crate) mod test_support;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

use crate::http::{ApiError, AppState};

/// One embedded file: its URL path under `/ui/`, content type and bytes.
struct Asset {
    path: &'static str,
    mime: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "app.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../ui/app.js"),
    },
    Asset {
        path: "pages/parallel.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../ui/pages/parallel.js"),
    },
    Asset {
        path: "pages/alerts.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../ui/pages/alerts.js"),
    },
    Asset {
        path: "pages/grids.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../ui/pages/grids.js"),
    },
    Asset {
        path: "pages/resources.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../ui/pages/resources.js"),
    },
    Asset {
        path: "app.css",
        mime: "text/css; charset=utf-8",
        bytes: include_bytes!("../../../ui/app.css"),
    },
    Asset {
        path: "pages/notifications.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../ui/pages/notifications.js"),
    },
    Asset {
        path: "pages/tokens.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../ui/pages/tokens.js"),
    },
    Asset {
        path: "pages/audit.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../ui/pages/audit.js"),
    },
    Asset {
        path: "vendor/uPlot.iife.min.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../ui/vendor/uPlot.iife.min.js"),
    },
    Asset {
        path: "vendor/uPlot.min.css",
        mime: "text/css; charset=utf-8",
        bytes: include_bytes!("../../../ui/vendor/uPlot.min.css"),
    },
    Asset {
        path: "vendor/uPlot.LICENSE",
        mime: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../../ui/vendor/uPlot.LICENSE"),
    },
];

const INDEX: &str = include_str!("../../../ui/index.html");

/// Headers every UI response carries: no framing by other sites, no
/// content-type sniffing, and a policy that allows only our own origin
/// (nothing is loaded from the internet).
fn harden(mut r: Response, cache: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

async fn index() -> Response {
    let r = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX.replace("{{version}}", env!("CARGO_PKG_VERSION")),
    )
        .into_response();
    harden(r, "no-cache")
}

async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.path == path) {
        Some(a) => harden(
            ([(header::CONTENT_TYPE, a.mime)], a.bytes).into_response(),
            "no-cache",
        ),
        None => ApiError::new(StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

const NOT_FOUND: &str = include_str!("../../../ui/not-found.html");

/// An address outside the API that names nothing: a browser (it asks for
/// HTML) gets a page saying so with a way back; a program gets the API's
/// JSON 404.
pub async fn not_found_page(headers: axum::http::HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if !wants_html {
        return ApiError::not_found("Not Found").into_response();
    }
    let r = (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        NOT_FOUND,
    )
        .into_response();
    harden(r, "no-cache")
}

/// `/dashboard/runs/run/{id}`, the address the simvue client prints for a
/// run, goes to that run's page.
async fn dashboard_run(Path(id): Path<String>) -> Response {
    let safe: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/#/run/{safe}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    harden(r, "no-cache")
}

/// The UI routes: the page at `/`, its assets under `/ui/`, and the
/// UI-only API under `/api/ui/`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{*path}", get(asset))
        .route("/dashboard/runs/run/{id}", get(dashboard_run))
        .route("/api/ui/whoami", get(api::whoami))
        .route(
            "/api/ui/tokens",
            post(api::create_token).get(api::list_tokens),
        )
        .route("/api/ui/tokens/{id}", delete(api::revoke_token))
        .route("/api/ui/signin", post(session::signin))
        .route("/api/ui/signout", post(session::signout))
        .route("/api/ui/users", get(api::users))
        .route("/api/audit", get(api::audit))
        .route("/api/ui/runs", get(api::runs))
        .route("/api/ui/metrics/range", get(api::metric_range))
        .route("/api/ui/metrics/series", get(series::series))
        .route(
            "/api/ui/notifications",
            get(notifications::list).post(notifications::add),
        )
        .route("/api/ui/notifications/{id}", delete(notifications::remove))
        .route(
            "/api/ui/runs/{id}/notifications",
            get(notifications::of_run),
        )
}
