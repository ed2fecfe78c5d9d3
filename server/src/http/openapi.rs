//! The OpenAPI 3.1 description of the API, served at `/api/openapi.json`.
//! Built from one table of operations so it cannot drift far from the
//! router in [`crate::http::router`]; a test checks every routed path is in it.

use serde_json::{Map, Value, json};

/// (method, path, summary, request body kind, mutating).
pub const OPERATIONS: &[(&str, &str, &str, &str, bool)] = &[
    (
        "get",
        "/api/version",
        "Server API version ({\"version\": \"1.3.0\"})",
        "",
        false,
    ),
    ("get", "/api/openapi.json", "This document", "", false),
    (
        "post",
        "/api/folders",
        "Create a folder (and its ancestors); an existing path answers its id",
        "json",
        true,
    ),
    (
        "get",
        "/api/folders",
        "List folders: filters, start, count, sorting (created, modified, path, metadata.K)",
        "",
        false,
    ),
    ("get", "/api/folders/{id}", "A folder", "", false),
    (
        "put",
        "/api/folders/{id}",
        "Update description, tags, metadata (merged), starred",
        "json",
        true,
    ),
    (
        "delete",
        "/api/folders/{id}",
        "Delete a folder: recursive, runs, runs_only",
        "",
        true,
    ),
    ("post", "/api/runs", "Create a run", "json", true),
    (
        "get",
        "/api/runs",
        "List runs: filters (status, folder.path, has tag.T, metadata.K op V, ...), start, count, sorting",
        "",
        false,
    ),
    (
        "get",
        "/api/runs/{id}",
        "A run document (with alerts and metric summaries)",
        "",
        false,
    ),
    (
        "put",
        "/api/runs/{id}",
        "Partial update: status, metadata (merged), tags, alerts, ...",
        "json",
        true,
    ),
    (
        "delete",
        "/api/runs/{id}",
        "Delete a run and its data",
        "",
        true,
    ),
    (
        "put",
        "/api/runs/{id}/heartbeat",
        "Heartbeat; answers {\"last_heartbeat\", \"abort\"}",
        "",
        true,
    ),
    (
        "get",
        "/api/runs/{id}/abort",
        "Abort flag: {\"status\": bool, \"reason\"}",
        "",
        false,
    ),
    (
        "put",
        "/api/runs/{id}/abort",
        "Request the run's abort ({\"reason\"})",
        "json",
        true,
    ),
    (
        "put",
        "/api/runs/{id}/starred",
        "Star or unstar a run",
        "json",
        true,
    ),
    (
        "get",
        "/api/runs/{id}/artifacts",
        "Artifacts of a run (array): name, category",
        "",
        false,
    ),
    (
        "get",
        "/api/runs/{id}/artifacts/{aid}",
        "Category of an attached artifact",
        "",
        false,
    ),
    (
        "put",
        "/api/runs/{id}/artifacts/{aid}",
        "Attach an artifact with a category (code, input, output)",
        "json",
        true,
    ),
    (
        "post",
        "/api/metrics",
        "Metrics batch (msgpack {run, metrics: [{time, timestamp, step, values}]})",
        "msgpack",
        true,
    ),
    (
        "get",
        "/api/metrics",
        "Series: runs, metrics, xaxis (step|time|timestamp), aggregate, max_points (min/max-per-bucket downsampling, capped at the server's --max-read-points; X-Simtrack-Max-Points when lowered). Without max_points every point, streamed",
        "",
        false,
    ),
    (
        "get",
        "/api/metrics/names",
        "Metric names of runs (sorted; optional start, count page them)",
        "",
        false,
    ),
    (
        "post",
        "/api/events",
        "Events batch (msgpack {run, events: [{message, log_level, timestamp}]})",
        "msgpack",
        true,
    ),
    (
        "get",
        "/api/events",
        "Events of a run: run, filters, start, count (0 = all)",
        "",
        false,
    ),
    (
        "post",
        "/api/artifacts",
        "Register an artifact ({name, original_path, size, mime_type, checksum, metadata}); answers {id, url}, plus fields (a presigned S3 POST form to send the bytes to) with an object store",
        "json",
        true,
    ),
    (
        "get",
        "/api/artifacts",
        "List artifacts: runs, start, count, sorting (created, name, metadata.K)",
        "",
        false,
    ),
    (
        "get",
        "/api/artifacts/{id}",
        "An artifact, with a signed download url",
        "",
        false,
    ),
    (
        "put",
        "/api/artifacts/{id}",
        "Confirm the upload ({\"uploaded\": true}); with an object store, after checking its size and SHA-256",
        "json",
        true,
    ),
    (
        "delete",
        "/api/artifacts/{id}",
        "Delete an artifact record",
        "",
        true,
    ),
    (
        "put",
        "/api/artifacts/{id}/upload",
        "Upload the bytes (signed URL, no bearer token)",
        "octet",
        false,
    ),
    (
        "get",
        "/api/artifacts/{id}/download",
        "Download the bytes (signed URL, no bearer token); with an object store, a 307 to a presigned URL there",
        "",
        false,
    ),
    (
        "post",
        "/api/alerts",
        "Create an alert (source metrics|events|user); deduplicate=True answers 409 {id} for an existing name",
        "json",
        true,
    ),
    (
        "get",
        "/api/alerts",
        "List alerts: start, count, sorting (created, name)",
        "",
        false,
    ),
    ("get", "/api/alerts/{id}", "An alert", "", false),
    ("put", "/api/alerts/{id}", "Update an alert", "json", true),
    ("delete", "/api/alerts/{id}", "Delete an alert", "", true),
    (
        "get",
        "/api/alerts/{id}/status/{run}",
        "Alert state for a run: {\"status\": \"ok\"|\"critical\"}",
        "",
        false,
    ),
    (
        "put",
        "/api/alerts/{id}/status/{run}",
        "Set a (user) alert's state for a run",
        "json",
        true,
    ),
    (
        "post",
        "/api/alerts/{id}/acknowledge/{run}",
        "Acknowledge an alert critical on a run (its owner or an administrator): it stays critical but notifies nothing more until it clears",
        "",
        true,
    ),
    (
        "get",
        "/api/audit",
        "The audit trail, newest first (administrators only): before, count",
        "",
        false,
    ),
    (
        "put",
        "/api/folders/{id}/starred",
        "Star or unstar a folder ({\"starred\": bool})",
        "json",
        true,
    ),
    (
        "get",
        "/api/tags",
        "List tags: start, count, sorting (created, name)",
        "",
        false,
    ),
    (
        "post",
        "/api/tags",
        "Create a tag (name, colour, description); runs' tags are made on first use",
        "json",
        true,
    ),
    ("get", "/api/tags/{id}", "A tag", "", false),
    (
        "put",
        "/api/tags/{id}",
        "Update a tag's name (on every run too), colour, description",
        "json",
        true,
    ),
    (
        "delete",
        "/api/tags/{id}",
        "Delete a tag and take it off every run",
        "",
        true,
    ),
    (
        "get",
        "/api/stats",
        "Run counts by state; single=false: per-user totals",
        "",
        false,
    ),
    ("get", "/api/whoami", "The caller's user name", "", false),
    (
        "get",
        "/api/runs/{id}/grids",
        "The grids a run's array metrics are on, with those metrics' names",
        "",
        false,
    ),
    (
        "get",
        "/api/users",
        "Users the caller sees (itself and its group; all for administrators): start, count",
        "",
        false,
    ),
    (
        "post",
        "/api/users",
        "Create a user (administrators): username, fullname, email, tenant, is_admin, is_readonly, is_enabled",
        "json",
        true,
    ),
    (
        "get",
        "/api/users/{id}",
        "A user (its id is its name)",
        "",
        false,
    ),
    (
        "put",
        "/api/users/{id}",
        "Change a user (administrators)",
        "json",
        true,
    ),
    (
        "delete",
        "/api/users/{id}",
        "Delete a user (administrators): disabled and marked deleted, its runs stay",
        "",
        true,
    ),
    (
        "get",
        "/api/tenants",
        "Tenants (groups) the caller sees: start, count",
        "",
        false,
    ),
    (
        "post",
        "/api/tenants",
        "Create a tenant, i.e. a group (administrators): name, is_enabled; quotas must be 0",
        "json",
        true,
    ),
    (
        "get",
        "/api/tenants/{id}",
        "A tenant (its id is its name)",
        "",
        false,
    ),
    (
        "put",
        "/api/tenants/{id}",
        "Enable or disable a tenant (administrators): is_enabled",
        "json",
        true,
    ),
    (
        "delete",
        "/api/tenants/{id}",
        "Delete a tenant (administrators) once no member is left",
        "",
        true,
    ),
];

/// The document as JSON text.
pub fn document() -> String {
    let mut paths: Map<String, Value> = Map::new();
    for (method, path, summary, body, mutating) in OPERATIONS {
        let mut params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if *mutating {
            params.push(json!({"$ref": "#/components/parameters/IdempotencyKey"}));
        }
        let signed = path.ends_with("/upload") || path.ends_with("/download");
        let mut op = json!({
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {"description": "Success (JSON body)"},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
                "413": {"$ref": "#/components/responses/Error"},
                "422": {"$ref": "#/components/responses/Error"}
            }
        });
        if signed {
            op["security"] = json!([]);
            if let Some(p) = op["parameters"].as_array_mut() {
                p.push(json!({"name": "u", "in": "query", "required": true, "description": "the user the link was made for", "schema": {"type": "string"}}));
                p.push(json!({"name": "exp", "in": "query", "required": true, "schema": {"type": "integer"}}));
                p.push(json!({"name": "sig", "in": "query", "required": true, "schema": {"type": "string"}}));
            }
        }
        let content_type = match *body {
            "json" => Some("application/json"),
            "msgpack" => Some("application/msgpack"),
            "octet" => Some("application/octet-stream"),
            _ => None,
        };
        if let Some(ct) = content_type {
            op["requestBody"] = json!({"required": true, "content": {ct: {"schema": {}}}});
        }
        paths
            .entry(path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|m| m.insert(method.to_string(), op));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "simtrack server API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Simvue REST API as the simvue 2.6 Python client speaks it, served by simtrack. \
                Every call needs `Authorization: Bearer <token>` except the signed artifact URLs. \
                Mutating calls accept `Idempotency-Key`: the first successful response is stored (per token) \
                and returned again for a repeated key without re-applying the request. \
                Errors are `{\"detail\": \"...\"}`. Timestamps are UTC `%Y-%m-%dT%H:%M:%S.%f`."
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key", "in": "header", "required": false,
                    "description": "At most 255 characters. A repeated key (same token) returns the stored first response; the request is not applied twice.",
                    "schema": {"type": "string", "maxLength": 255}
                }
            },
            "responses": {
                "Error": {
                    "description": "Error",
                    "content": {"application/json": {"schema": {"type": "object", "properties": {"detail": {"type": "string"}}}}}
                }
            }
        }
    })
    .to_string()
}
