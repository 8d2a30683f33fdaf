//! Static assets, embedded in the binary: the page works offline and nothing comes from a CDN.

use crate::error::not_found;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");

pub async fn serve(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (CSS, "text/css; charset=utf-8"),
        "app.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return not_found().await,
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
