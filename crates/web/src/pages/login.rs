//! /login and the code step.

use crate::error::WebError;
use crate::form::CsrfForm;
use crate::pages::{render, render_status};
use crate::problems::Problem;
use crate::session::{
    clear_cookie, cookie, session_cookie, session_cookie_name, set_cookie, AwaitingCode,
    ClientInfo, Staff, ANON_CSRF_COOKIE,
};
use crate::AppState;
use app::auth::{random_token, Answer, SignIn, INVALID_CREDENTIALS};
use app::AppError;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use domain::TwoFactor;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    email: String,
    next: String,
    error: Option<String>,
    /// "Forgot password?" is offered only where a link can be mailed.
    can_reset: bool,
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage {
    csrf: String,
    masked_email: String,
    /// The account's method code: "email", "totp" or "passkey".
    method: &'static str,
    /// The passkey prompt's options (JSON), for passkey accounts.
    passkey_options: String,
    error: Option<String>,
    /// What was wrong with the code typed: shown in the error summary and at the field.
    code_error: Option<String>,
    notice: Option<String>,
}

impl CodePage {
    fn problems(&self) -> Vec<Problem> {
        field_problem("code", &self.code_error)
    }
}

#[derive(Template)]
#[template(path = "recovery_sign_in.html")]
struct RecoveryPage {
    csrf: String,
    error: Option<String>,
    /// What was wrong with the recovery code typed.
    code_error: Option<String>,
}

impl RecoveryPage {
    fn problems(&self) -> Vec<Problem> {
        field_problem("recovery_code", &self.code_error)
    }
}

/// The error summary of a one-field form.
fn field_problem(id: &str, message: &Option<String>) -> Vec<Problem> {
    message
        .iter()
        .map(|m| Problem {
            id: id.to_string(),
            message: m.clone(),
        })
        .collect()
}

/// The second step's page for the account's method; a passkey account gets a fresh challenge.
async fn code_page(
    state: &AppState,
    waiting: &AwaitingCode,
    error: Option<String>,
    code_error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let passkey_options = if waiting.method == TwoFactor::Passkey {
        match state.app.passkey_sign_in_options(&waiting.session).await {
            Ok(o) => o,
            Err(AppError::Conflict(m)) => {
                return Ok(render_status(
                    StatusCode::CONFLICT,
                    &RecoveryPage {
                        csrf: waiting.session.csrf_token().to_string(),
                        error: Some(m),
                        code_error: None,
                    },
                ))
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        String::new()
    };
    Ok(render_status(
        status,
        &CodePage {
            csrf: waiting.session.csrf_token().to_string(),
            masked_email: waiting.masked_email.clone(),
            method: waiting.method.code(),
            code_error,
            passkey_options,
            error,
            notice,
        },
    ))
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only same-site paths are followed after sign-in (no open redirect): `/` alone or `/` and a
/// path character, then visible ASCII without `\\`. Browsers drop tabs and newlines from URLs
/// (`/\t/evil.example/` is `//evil.example/`, another site), and a control character or a
/// non-ASCII one can't go in a `Location` header at all. The value arrives percent-decoded, so
/// `%09` is a tab here. Paths the Back Office itself puts in `next` are percent-encoded ASCII.
fn safe_next(next: &str) -> String {
    let path_char = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@%".contains(c);
    let safe = match next.strip_prefix('/') {
        Some("") => true,
        Some(rest) => {
            rest.starts_with(path_char) && rest.chars().all(|c| c.is_ascii_graphic() && c != '\\')
        }
        None => false,
    };
    if safe {
        next.to_string()
    } else {
        "/".into()
    }
}

/// The pre-session CSRF token: reuse the browser's, or issue one.
pub(crate) fn anon_csrf(
    state: &AppState,
    headers: &HeaderMap,
) -> (String, Option<axum::http::HeaderValue>) {
    match cookie(headers, ANON_CSRF_COOKIE).filter(|t| t.len() == 64) {
        Some(t) => (t.to_string(), None),
        None => {
            let t = random_token();
            let c = set_cookie(state, ANON_CSRF_COOKIE, &t);
            (t, Some(c))
        }
    }
}

/// Where an accepted password leads: to `next` when signed in, or to the code step; either way
/// with the new session's cookie.
pub(crate) fn after_password(state: &AppState, outcome: SignIn, next: &str) -> Response {
    let (to, session) = match outcome {
        SignIn::Done(session) => (next, session),
        SignIn::CodeSent { session, .. } | SignIn::SecondFactor { session } => {
            ("/login/code", session)
        }
    };
    let mut r = Redirect::to(to).into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, session_cookie(state, &session));
    r
}

pub(crate) fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    email: &str,
    next: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let (csrf, set) = anon_csrf(state, headers);
    let mut resp = render_status(
        status,
        &LoginPage {
            csrf,
            email: email.into(),
            next: next.into(),
            error,
            can_reset: state.app.has_smtp(),
        },
    );
    if let Some(c) = set {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    let next = safe_next(q.next.as_deref().unwrap_or("/"));
    login_page(&state, &headers, "", &next, None, StatusCode::OK)
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientInfo(client): ClientInfo,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let (email, next) = (f.get("email"), safe_next(f.get("next")));
    Ok(
        match state.app.sign_in(email, f.get("password"), &client).await {
            Ok(signed_in) => after_password(&state, signed_in, &next),
            Err(AppError::Forbidden(_)) => login_page(
                &state,
                &headers,
                email,
                &next,
                Some(INVALID_CREDENTIALS.into()),
                StatusCode::UNAUTHORIZED,
            ),
            Err(AppError::TooManyUntil {
                message,
                retry_after_secs,
            }) => {
                let mut r = login_page(
                    &state,
                    &headers,
                    email,
                    &next,
                    Some(message),
                    StatusCode::TOO_MANY_REQUESTS,
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, retry_after_secs.into());
                r
            }
            Err(AppError::Mail(m)) | Err(AppError::TooMany(m)) => login_page(
                &state,
                &headers,
                email,
                &next,
                Some(m),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            Err(e) => return Err(e.into()),
        },
    )
}

pub async fn code_form(
    State(state): State<AppState>,
    waiting: AwaitingCode,
) -> Result<Response, WebError> {
    code_page(&state, &waiting, None, None, None, StatusCode::OK).await
}

/// The answer to the second step: a full session, the same page with the error, or (when the
/// sign-in can't go on) the sign-in page.
async fn second_step(
    state: &AppState,
    waiting: &AwaitingCode,
    answer: Answer<'_>,
    client: &app::auth::Client,
) -> Result<Response, WebError> {
    match state
        .app
        .verify_second_factor(&waiting.session, answer, client)
        .await
    {
        Ok(session) => {
            let mut r = Redirect::to("/").into_response();
            r.headers_mut()
                .append(header::SET_COOKIE, session_cookie(state, &session));
            Ok(r)
        }
        Err(AppError::Invalid(fields)) => {
            let error = fields.values().next().cloned();
            if matches!(answer, Answer::Recovery(_)) {
                return Ok(render_status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &RecoveryPage {
                        csrf: waiting.session.csrf_token().to_string(),
                        error: None,
                        code_error: error,
                    },
                ));
            }
            // A passkey's failure is no typed field's: it is said above the button.
            let (error, code_error) = match answer {
                Answer::Code(_) => (None, error),
                _ => (error, None),
            };
            code_page(
                state,
                waiting,
                error,
                code_error,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(AppError::Conflict(m)) => {
            let mut r = login_page(
                state,
                &HeaderMap::new(),
                "",
                "/",
                Some(m),
                StatusCode::UNAUTHORIZED,
            );
            r.headers_mut().append(
                header::SET_COOKIE,
                clear_cookie(state, session_cookie_name(state)),
            );
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn recovery_form(waiting: AwaitingCode) -> Response {
    render(&RecoveryPage {
        csrf: waiting.session.csrf_token().to_string(),
        error: None,
        code_error: None,
    })
}

pub async fn recovery_submit(
    State(state): State<AppState>,
    waiting: AwaitingCode,
    ClientInfo(client): ClientInfo,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    second_step(
        &state,
        &waiting,
        Answer::Recovery(f.get("recovery_code")),
        &client,
    )
    .await
}

pub async fn passkey_submit(
    State(state): State<AppState>,
    waiting: AwaitingCode,
    ClientInfo(client): ClientInfo,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    second_step(
        &state,
        &waiting,
        Answer::Passkey(f.get("credential")),
        &client,
    )
    .await
}

pub async fn code_submit(
    State(state): State<AppState>,
    waiting: AwaitingCode,
    ClientInfo(client): ClientInfo,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    second_step(&state, &waiting, Answer::Code(f.get("code")), &client).await
}

pub async fn code_resend(
    State(state): State<AppState>,
    waiting: AwaitingCode,
    ClientInfo(client): ClientInfo,
    CsrfForm(_): CsrfForm,
) -> Result<Response, WebError> {
    let (error, notice, status) = match state.app.resend_code(&waiting.session, &client).await {
        Ok(()) => (
            None,
            Some("A new code was sent. The previous code no longer works.".to_string()),
            StatusCode::OK,
        ),
        Err(AppError::TooMany(m)) => (Some(m), None, StatusCode::TOO_MANY_REQUESTS),
        Err(AppError::Mail(m)) => (Some(m), None, StatusCode::SERVICE_UNAVAILABLE),
        Err(e) => return Err(e.into()),
    };
    code_page(&state, &waiting, error, None, notice, status).await
}

pub async fn cancel(
    State(state): State<AppState>,
    waiting: AwaitingCode,
    CsrfForm(_): CsrfForm,
) -> Result<Response, WebError> {
    state.app.cancel_sign_in(&waiting.session).await?;
    Ok(to_login_signed_out(&state))
}

pub async fn logout(
    State(state): State<AppState>,
    staff: crate::session::StaffAnyState,
    CsrfForm(_): CsrfForm,
) -> Result<Response, WebError> {
    let Staff { actor, .. } = staff.0;
    state.app.sign_out(&actor).await?;
    Ok(to_login_signed_out(&state))
}

/// To the sign-in page, with the session cookie cleared.
fn to_login_signed_out(state: &AppState) -> Response {
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        clear_cookie(state, session_cookie_name(state)),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_same_site_paths_are_kept() {
        for kept in [
            "/",
            "/users",
            "/users/7?tab=groups",
            "/clients?q=a%20b",
            "/@x",
            "/%2F",
        ] {
            assert_eq!(safe_next(kept), kept);
        }
        for dropped in [
            "",
            "users",
            "//evil.example/",
            "/\\evil.example",
            "/\t/evil.example/",
            "/\r\nSet-Cookie: x=1",
            "/users\n",
            "/a\u{7f}",
            "/a\u{85}b",
            "/ /evil",
            "/?next=x",
            "/caf\u{e9}",
            "https://evil.example/",
        ] {
            assert_eq!(safe_next(dropped), "/", "{dropped:?}");
        }
    }
}
