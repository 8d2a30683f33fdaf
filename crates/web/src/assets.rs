//! Static assets, embedded in the binary: the page works offline and nothing comes from a CDN.
//!
//! Pages name each asset by a versioned URL, `path?v=<hash of its content>` ([`url`]), so a page
//! always loads the very script and styles it was made with: a browser may keep a versioned
//! file for a year (`immutable`), and after a deploy the new pages name new URLs instead of
//! meeting an old cached `app.js`. The plain URL (or one with an outdated version) still
//! answers with the current file, cached briefly.

use crate::error::not_found;
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Every asset: its path, content and type.
const ASSETS: [(&str, &str, &str); 7] = [
    ("/static/app.css", include_str!("../static/app.css"), CSS),
    ("/static/app.js", include_str!("../static/app.js"), JS),
    (
        "/api/docs/swagger-ui-bundle.js",
        include_str!("../static/swagger/swagger-ui-bundle.js"),
        JS,
    ),
    (
        "/api/docs/swagger-ui.css",
        include_str!("../static/swagger/swagger-ui.css"),
        CSS,
    ),
    (
        "/api/docs/overrides.css",
        include_str!("../static/swagger/overrides.css"),
        CSS,
    ),
    (
        "/api/docs/dark.css",
        include_str!("../static/swagger/dark.css"),
        CSS,
    ),
    (
        "/api/docs/init.js",
        include_str!("../static/swagger/init.js"),
        JS,
    ),
];

/// A year, and `immutable`: the content of a versioned URL never changes.
const VERSIONED: &str = "public, max-age=31536000, immutable";
/// The plain URL: kept a few minutes, then asked for again.
const UNVERSIONED: &str = "public, max-age=300";

/// Each asset's version: the start of its content's SHA-256, computed once.
static VERSIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|(_, body, _)| hex::encode(&Sha256::digest(body.as_bytes())[..8]))
        .collect()
});

fn find(path: &str) -> Option<usize> {
    ASSETS.iter().position(|(p, _, _)| *p == path)
}

/// The versioned URL of the asset at `path` (one of [`ASSETS`]), for pages to link to.
pub fn url(path: &str) -> String {
    match find(path) {
        Some(i) => format!("{path}?v={}", VERSIONS[i]),
        None => path.to_string(),
    }
}

/// Answers an asset's path: a year's cache when the request names its current version.
pub async fn serve(uri: Uri) -> Response {
    let Some(i) = find(uri.path()) else {
        return if uri.path().starts_with("/api/") {
            crate::api::not_found().await
        } else {
            not_found().await
        };
    };
    let (_, body, kind) = ASSETS[i];
    let current = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .any(|(k, v)| k == "v" && v == VERSIONS[i].as_str());
    let cache = if current { VERSIONED } else { UNVERSIONED };
    (
        [(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, cache)],
        body,
    )
        .into_response()
}
