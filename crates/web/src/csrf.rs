//! CSRF protection for every state-changing request: the browser must say the request comes
//! from our own origin (Origin / Sec-Fetch-Site), and carry the token bound to its session —
//! or, before sign-in, the token bound to its pre-session cookie.

use crate::error::{error_page, WebError};
use crate::session::{cookie, ANON_CSRF_COOKIE};
use crate::AppState;
use app::AppError;
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

/// Why a state change was not let through.
pub enum CsrfFailure {
    /// Another origin, or no or the wrong token: 403, and nothing changes.
    Refused,
    /// The check could not be made (the database did not answer the session's token): the
    /// error as such, so an outage answers 503 rather than a refusal that sends people to reload.
    Error(AppError),
}

/// Checks origin and token.
pub async fn check(state: &AppState, headers: &HeaderMap, token: &str) -> Result<(), CsrfFailure> {
    if !origin_ok(state, headers) {
        return Err(CsrfFailure::Refused);
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
        return Err(CsrfFailure::Refused);
    }
    let session = cookie(headers, crate::session::session_cookie_name(state));
    let expected = match session {
        Some(raw) => state
            .app
            .csrf_token_of(raw)
            .await
            .map_err(CsrfFailure::Error)?,
        None => None,
    };
    let expected = expected.or_else(|| cookie(headers, ANON_CSRF_COOKIE).map(str::to_string));
    match expected {
        Some(e) if same(&e, token) => Ok(()),
        _ => Err(CsrfFailure::Refused),
    }
}

/// [`check`] for a form: a refusal is a 403 page, an error the page for that error.
pub async fn verify(state: &AppState, headers: &HeaderMap, token: &str) -> Result<(), Response> {
    check(state, headers, token).await.map_err(|f| match f {
        CsrfFailure::Refused => error_page(
            StatusCode::FORBIDDEN,
            "The form expired or came from another site. Go back, reload the page and try again.",
        ),
        CsrfFailure::Error(e) => WebError(e).into_page(),
    })
}
