//! CSRF protection for every state-changing request: the browser must say the request comes
//! from our own origin (Origin / Sec-Fetch-Site), and carry the token bound to its session —
//! or, before sign-in, the token bound to its pre-session cookie.

use crate::error::{error_page, WebError};
use crate::session::{cookie, ANON_CSRF_COOKIE};
use crate::AppState;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

fn origin_ok(state: &AppState, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return false;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if origin == state.cfg.public_origin {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
    !host.is_empty() && origin_host == host
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Checks origin and token; a refusal is a 403 page and nothing changes.
pub async fn verify(state: &AppState, headers: &HeaderMap, token: &str) -> Result<(), Response> {
    let refuse = || {
        error_page(
            StatusCode::FORBIDDEN,
            "The form expired or came from another site. Go back, reload the page and try again.",
        )
    };
    if !origin_ok(state, headers) {
        return Err(refuse());
    }
    let token = if token.is_empty() {
        headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    } else {
        token
    };
    if token.is_empty() {
        return Err(refuse());
    }
    let session = cookie(headers, crate::session::session_cookie_name(state));
    let expected = match session {
        Some(raw) => state
            .app
            .csrf_token_of(raw)
            .await
            .map_err(|e| WebError::from(e).into_page())?,
        None => None,
    };
    let expected = expected.or_else(|| cookie(headers, ANON_CSRF_COOKIE).map(str::to_string));
    match expected {
        Some(e) if same(&e, token) => Ok(()),
        _ => Err(refuse()),
    }
}
