//! A streamed export as an HTTP response: the body is the export's chunks as they are made, so
//! neither side holds the file. When the client goes away hyper drops the body, which closes
//! the export's channel and stops its database reads (see `app::export`).

use app::export::Export;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `export` as the response body, with its content type and, for the pages, a file name that
/// makes the browser save it.
pub fn streamed(export: Export, content_type: &'static str, file_name: Option<&str>) -> Response {
    let chunks = futures_util::stream::unfold(export, |mut export| async move {
        export.next_chunk().await.map(|chunk| (chunk, export))
    });
    let body = Body::from_stream(chunks);
    match file_name {
        Some(name) => (
            [
                (header::CONTENT_TYPE, content_type.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            body,
        )
            .into_response(),
        None => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
    }
}
