//! "Forgot password?" and "Choose a new password" (the link from the mail), before sign-in.
//! The link's token leaves the address bar at once: it is moved into a short-lived cookie for
//! the reset page only, so it stays out of history, bookmarks and any Referer.

use crate::error::WebError;
use crate::form::CsrfForm;
use crate::pages::login::{after_password, anon_csrf, login_page};
use crate::pages::{render, render_status};
use crate::session::{cookie, ClientInfo};
use crate::AppState;
use app::password_reset::{RESET_REQUESTED, RESET_TTL_SECS};
use app::{AppError, FieldErrors};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

const RESET_COOKIE: &str = "bo_reset";

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    csrf: String,
    email: String,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    csrf: String,
    masked_email: String,
    /// A generated password, shown so it can be copied (never a typed one).
    generated: String,
    errors: FieldErrors,
}

impl ResetPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }

    fn problems(&self) -> Vec<crate::problems::Problem> {
        crate::problems::problems(&self.errors, super::profile::NEW_PASSWORD_FIELDS)
    }
}

#[derive(Template)]
#[template(path = "reset_invalid.html")]
struct InvalidPage {
    message: String,
}

fn with_cookie(mut resp: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

fn forgot_page(
    state: &AppState,
    headers: &HeaderMap,
    email: &str,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let (csrf, set) = anon_csrf(state, headers);
    let page = ForgotPage {
        csrf,
        email: email.into(),
        notice,
        error,
    };
    with_cookie(render_status(status, &page), set)
}

pub async fn forgot_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.app.has_smtp() {
        return crate::error::not_found().await.into_response();
    }
    forgot_page(&state, &headers, "", None, None, StatusCode::OK)
}

pub async fn forgot_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientInfo(client): ClientInfo,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let email = f.get("email");
    Ok(
        match state.app.request_password_reset(email, &client).await {
            Ok(()) => forgot_page(
                &state,
                &headers,
                "",
                Some(RESET_REQUESTED.into()),
                None,
                StatusCode::OK,
            ),
            Err(AppError::TooMany(m)) => {
                let mut r = forgot_page(
                    &state,
                    &headers,
                    email,
                    None,
                    Some(m),
                    StatusCode::TOO_MANY_REQUESTS,
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("900"));
                r
            }
            Err(e) => return Err(e.into()),
        },
    )
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn reset_cookie(state: &AppState, token: &str) -> HeaderValue {
    let secure = if state.cfg.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{RESET_COOKIE}={token}; Path=/password/reset; HttpOnly; SameSite=Lax; Max-Age={RESET_TTL_SECS}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("bo_reset=; Max-Age=0"))
}

fn invalid(message: &str) -> Response {
    render_status(
        StatusCode::GONE,
        &InvalidPage {
            message: message.into(),
        },
    )
}

/// The link from the mail: the token moves into a cookie, and the address bar loses it.
pub async fn reset_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Result<Response, WebError> {
    if let Some(token) = q.token {
        let token: String = token
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(64)
            .collect();
        let mut r = Redirect::to("/password/reset").into_response();
        r.headers_mut()
            .append(header::SET_COOKIE, reset_cookie(&state, &token));
        return Ok(r);
    }
    let token = cookie(&headers, RESET_COOKIE).unwrap_or("");
    Ok(match state.app.check_reset_link(token).await {
        Ok(link) => {
            let (csrf, set) = anon_csrf(&state, &headers);
            let page = ResetPage {
                csrf,
                masked_email: link.masked_email,
                generated: String::new(),
                errors: FieldErrors::new(),
            };
            with_cookie(render(&page), set)
        }
        Err(AppError::Expired(m)) => invalid(&m),
        Err(e) => return Err(e.into()),
    })
}

pub async fn reset_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientInfo(client): ClientInfo,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let token = cookie(&headers, RESET_COOKIE).unwrap_or("").to_string();
    let page = |masked_email: String, generated: String, errors: FieldErrors| {
        let (csrf, set) = anon_csrf(&state, &headers);
        let status = if errors.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let page = ResetPage {
            csrf,
            masked_email,
            generated,
            errors,
        };
        with_cookie(render_status(status, &page), set)
    };
    // Generate re-shows the form; only it (and a refused password) needs to look at the link
    // here: saving checks the link itself.
    let reshow = |generated: String, errors: FieldErrors| async {
        match state.app.check_reset_link(&token).await {
            Ok(link) => Ok(page(link.masked_email, generated, errors)),
            Err(AppError::Expired(m)) => Ok(invalid(&m)),
            Err(e) => Err(WebError::from(e)),
        }
    };
    if f.has("generate") {
        return reshow(domain::password::generate(), FieldErrors::new()).await;
    }
    let outcome = state
        .app
        .complete_password_reset(
            &token,
            f.get("new_password"),
            f.get("confirm_password"),
            &client,
        )
        .await;
    let mut r = match outcome {
        Ok(signed_in) => after_password(&state, signed_in, "/"),
        Err(AppError::Invalid(errors)) => return reshow(String::new(), errors).await,
        Err(AppError::Expired(m)) => return Ok(invalid(&m)),
        // The password is changed, but signing in with it was refused (say, the per-address
        // sign-in limit): the sign-in page says so and why.
        Err(AppError::Forbidden(m)) | Err(AppError::Mail(m)) | Err(AppError::TooMany(m)) => {
            login_page(
                &state,
                &headers,
                "",
                "/",
                Some(format!(
                    "Your new password is saved, but you were not signed in: {m}"
                )),
                StatusCode::OK,
            )
        }
        Err(e) => return Err(e.into()),
    };
    r.headers_mut()
        .append(header::SET_COOKIE, clear_cookie_at(RESET_COOKIE));
    Ok(r)
}

fn clear_cookie_at(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{name}=; Path=/password/reset; Max-Age=0"))
        .unwrap_or_else(|_| HeaderValue::from_static("bo_reset=; Max-Age=0"))
}
