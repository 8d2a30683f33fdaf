//! The JSON API under `/api/v1`: a second adapter over the same use cases as the pages. The
//! OpenAPI document is generated from these handlers (utoipa), so it can't drift from them.

pub mod clients;
mod document;
pub mod error;
pub mod events;
pub mod extract;
pub mod groups;
pub mod idempotency;
pub mod me;
pub mod responses;
pub mod tags;
pub mod users;
pub mod values;

use crate::AppState;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The document's fixed parts; `info.license` comes from the crate's (the workspace's) licence.
#[derive(OpenApi)]
#[openapi(
    info(title = "Back Office API", version = "1", description = "Staff users, groups, clients and the event log. \
        Authenticate with a personal token (`Authorization: Bearer bo_…`, created on the profile page or with \
        POST /api/v1/me/tokens) or with the browser session cookie plus the CSRF token in `X-CSRF-Token` for changes. \
        Every error is an `ErrorBody`; a method a path doesn't have answers 405 with one and an `Allow` header."),
    tags(
        (name = "me", description = "The caller's own account and permissions, and their personal tokens."),
        (name = "users", description = "Staff accounts, as in System › Users › Users."),
        (name = "groups", description = "Groups and the permissions they grant, as in System › Users › Groups, \
            with their export file and the permission catalogue."),
        (name = "clients", description = "The client directory (investors and strategy providers); names, emails \
            and phones reach callers with Mask data only masked."),
        (name = "events", description = "The event log: who did what, when and from where, newest first."),
    ),
    // Named here because nothing a handler returns refers to them by type: the shared error
    // responses refer to ErrorBody by name, and query parameters to the value sets.
    components(schemas(
        error::ErrorBody,
        values::UserStatus,
        values::TwoFactor,
        values::UserSort,
        values::SortDirection,
        values::ClientRole,
        values::ClientStatus,
        values::ClientSort,
        values::SearchField,
        values::Language,
        values::Permission,
        values::PageSize,
    ))
)]
struct ApiDoc;

/// The API routes and their OpenAPI document, built from the same list.
pub fn routes() -> (Router<AppState>, OpenApiDoc) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me::me))
        .routes(routes!(me::list_tokens, me::create_token))
        .routes(routes!(me::revoke_token))
        .routes(routes!(me::permissions))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update))
        .routes(routes!(users::disable_2fa))
        .routes(routes!(users::enable_2fa))
        .routes(routes!(users::unlock))
        .routes(routes!(users::sign_out))
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(groups::export))
        .routes(routes!(groups::import))
        .routes(routes!(groups::get, groups::update, groups::delete))
        .routes(routes!(clients::list, clients::create))
        .routes(routes!(clients::export))
        .routes(routes!(clients::get, clients::update))
        .routes(routes!(clients::block))
        .routes(routes!(tags::list, tags::create))
        .routes(routes!(tags::rename, tags::delete))
        .routes(routes!(events::list))
        .routes(routes!(events::export))
        .split_for_parts()
}

/// The API, `/api/openapi.json` (for this server's public URL and cookie) and Swagger UI at
/// `/api/docs` (served from the binary).
pub fn router(state: &AppState) -> Router<AppState> {
    let (api, mut doc) = routes();
    document::finish(
        &mut doc,
        &state.app.settings().public_url,
        crate::session::session_cookie_name(state),
    );
    let json = doc.to_pretty_json().unwrap_or_default();
    api.route(
        "/api/openapi.json",
        get(move || async move { ([(header::CONTENT_TYPE, "application/json")], json.clone()) }),
    )
    .route("/api/docs", get(docs_page))
    .route("/api/docs/{file}", get(crate::assets::serve))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        idempotency::idempotent,
    ))
    .layer(axum::middleware::map_response(error::method_not_allowed))
    .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
}

/// Swagger UI styles itself inline, so its page gets a CSP that allows inline styles (not scripts).
const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
    frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

async fn docs_page() -> Response {
    use crate::assets::url;
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Back Office API</title>\
        <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
        <meta name=\"color-scheme\" content=\"light dark\">\
        <link rel=\"stylesheet\" href=\"{}\"><link rel=\"stylesheet\" href=\"{}\">\
        <link rel=\"stylesheet\" href=\"{}\"></head>\
        <body><div id=\"swagger-ui\"></div>\
        <script src=\"{}\"></script><script src=\"{}\"></script></body></html>",
        url("/api/docs/swagger-ui.css"),
        url("/api/docs/overrides.css"),
        url("/api/docs/dark.css"),
        url("/api/docs/swagger-ui-bundle.js"),
        url("/api/docs/init.js"),
    );
    ([(header::CONTENT_SECURITY_POLICY, DOCS_CSP)], Html(html)).into_response()
}

/// Unknown paths under `/api/` answer in JSON.
pub async fn not_found() -> Response {
    error::ApiError::new(StatusCode::NOT_FOUND, "No such API route").into_response()
}
