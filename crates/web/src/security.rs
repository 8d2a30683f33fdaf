//! Security headers on every response, `no-store` on everything but static assets (which say
//! how long they keep, see `assets`), and the
//! one-shot flash cookie cleared once a page has shown it.

use crate::session::FLASH_COOKIE;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Served over https, browsers are told to use nothing else for a year, so a person who types
/// the address without `https://` is never answered in clear text, nor is their cookie sent in it.
const HSTS: &str = "max-age=31536000; includeSubDomains";

pub async fn headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let had_flash = crate::session::cookie(req.headers(), FLASH_COOKIE).is_some();
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if state.cfg.secure_cookies {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let sets_flash = h
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.starts_with(FLASH_COOKIE)));
    if had_flash && !sets_flash && !resp.status().is_redirection() {
        resp.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_static("bo_flash=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
        );
    }
    resp
}
