//! Cookies and the extractors that turn a session cookie into the acting user.

use crate::error::WebError;
use crate::layout::Layout;
use crate::AppState;
use app::auth::{Authenticated, Client, NewSession};
use app::Actor;
use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use std::net::{IpAddr, SocketAddr};

pub const ANON_CSRF_COOKIE: &str = "bo_csrf";
pub const FLASH_COOKIE: &str = "bo_flash";
/// Set when a person without 2FA dismissed the prompt to enable it (for the browser session).
pub const PROMPT_DISMISSED_COOKIE: &str = "bo_2fa_prompt";

pub fn session_cookie_name(state: &AppState) -> &'static str {
    if state.cfg.secure_cookies {
        "__Host-bo_session"
    } else {
        "bo_session"
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn cookie_attrs(state: &AppState) -> &'static str {
    if state.cfg.secure_cookies {
        "; Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Lax"
    }
}

pub fn set_cookie(state: &AppState, name: &str, value: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{name}={value}{}", cookie_attrs(state)))
        .expect("cookie value is ASCII")
}

pub fn clear_cookie(state: &AppState, name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{name}={}; Max-Age=0", cookie_attrs(state))).expect("ASCII")
}

pub fn session_cookie(state: &AppState, s: &NewSession) -> HeaderValue {
    set_cookie(state, session_cookie_name(state), &s.id)
}

/// A redirect that also sets a flash message for the next page.
pub fn redirect_with_flash(state: &AppState, to: &str, message: &str) -> Response {
    let encoded: String = form_urlencoded::byte_serialize(message.as_bytes()).collect();
    let mut resp = Redirect::to(to).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, FLASH_COOKIE, &encoded),
    );
    resp
}

/// Who is asking: the peer address — or, when the peer is a configured proxy, the last address
/// in its `X-Forwarded-For` — and the user agent.
pub fn client_of(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Client {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    let ip = match (peer, forwarded) {
        (Some(p), Some(f)) if state.cfg.trusted_proxies.contains(&p) => Some(f),
        (p, _) => p,
    };
    Client {
        ip: ip.map(|i| i.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

/// The client of a request, as an extractor.
pub struct ClientInfo(pub Client);

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientInfo(client_of(
            state,
            &parts.headers,
            &parts.extensions,
        )))
    }
}

/// What the session cookie resolves to, if anything.
pub async fn resolve(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
) -> Result<Option<Authenticated>, WebError> {
    let Some(raw) = cookie(headers, session_cookie_name(state)) else {
        return Ok(None);
    };
    Ok(state.app.authenticate(raw, ip).await?)
}

/// A fully signed-in staff member, with the page layout data. Anyone else is sent where they
/// belong: to /login, to the code page, or to the forced password change.
pub struct Staff {
    pub actor: Actor,
    pub layout: Layout,
}

/// Like [`Staff`], but also admits a person who still has to choose a new password.
pub struct StaffAnyState(pub Staff);

/// Like [`Staff`], but also admits a person who must set up two-factor authentication first
/// (Require 2FA): the set-up pages themselves.
pub struct Enrolling(pub Staff);

/// What a signed-in person may be kept from until they have done it.
#[derive(Clone, Copy, PartialEq)]
enum Admit {
    Staff,
    ForcedPasswordChange,
    Enrolment,
}

async fn staff(parts: &mut Parts, state: &AppState, admit: Admit) -> Result<Staff, Response> {
    let allow_forced = admit == Admit::ForcedPasswordChange;
    let ip = client_of(state, &parts.headers, &parts.extensions).ip;
    let auth = resolve(state, &parts.headers, ip)
        .await
        .map_err(WebError::into_page)?;
    match auth {
        Some(Authenticated::Full { actor, csrf_token }) => {
            if actor.must_change_password() && !allow_forced {
                return Err(Redirect::to("/password/change").into_response());
            }
            if actor.must_enrol() && admit == Admit::Staff {
                return Err(Redirect::to("/two-factor").into_response());
            }
            let flash = cookie(&parts.headers, FLASH_COOKIE).map(|v| {
                form_urlencoded::parse(format!("f={v}").as_bytes())
                    .map(|(_, v)| v.into_owned())
                    .collect()
            });
            let mut layout = Layout::new(&actor, csrf_token, flash, state.app.has_smtp());
            layout.path = parts.uri.path().to_string();
            layout.prompt_two_factor = !layout.has_two_factor
                && !actor.must_enrol()
                && cookie(&parts.headers, PROMPT_DISMISSED_COOKIE).is_none();
            Ok(Staff {
                actor: *actor,
                layout,
            })
        }
        Some(Authenticated::AwaitingCode { .. }) => {
            Err(Redirect::to("/login/code").into_response())
        }
        None => {
            let uri = OriginalUri::from_request_parts(parts, state)
                .await
                .map(|u| u.0.to_string())
                .unwrap_or_default();
            let next: String = form_urlencoded::byte_serialize(uri.as_bytes()).collect();
            Err(Redirect::to(&format!("/login?next={next}")).into_response())
        }
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = Response;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        staff(parts, state, Admit::Staff).await
    }
}

impl FromRequestParts<AppState> for StaffAnyState {
    type Rejection = Response;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        staff(parts, state, Admit::ForcedPasswordChange)
            .await
            .map(StaffAnyState)
    }
}

impl FromRequestParts<AppState> for Enrolling {
    type Rejection = Response;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        staff(parts, state, Admit::Enrolment).await.map(Enrolling)
    }
}

/// A person between the password and the code step.
pub struct AwaitingCode {
    pub session: app::auth::PendingSignIn,
    pub masked_email: String,
    pub method: domain::TwoFactor,
}

impl FromRequestParts<AppState> for AwaitingCode {
    type Rejection = Response;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match resolve(state, &parts.headers, None)
            .await
            .map_err(WebError::into_page)?
        {
            Some(Authenticated::AwaitingCode {
                session,
                masked_email,
                method,
            }) => Ok(AwaitingCode {
                session,
                masked_email,
                method,
            }),
            Some(Authenticated::Full { .. }) => Err(Redirect::to("/").into_response()),
            None => Err(Redirect::to("/login").into_response()),
        }
    }
}
