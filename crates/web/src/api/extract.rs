//! Who is calling the API, within which limits, and with which body.
//!
//! A caller is either a personal token (`Authorization: Bearer bo_…`) or the browser session
//! cookie; with the cookie, a state change also needs the CSRF token in `X-CSRF-Token` and a
//! same-origin request. Pre-2FA sessions reach nothing here.

use super::error::ApiError;
use crate::csrf::CsrfFailure;
use crate::session::{client_of, cookie, session_cookie_name};
use crate::AppState;
use app::auth::Authenticated;
use app::Actor;
use app::AppError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Fixed one-minute windows per key (credential or IP). Limits of 0 mean unlimited.
pub struct RateLimiter {
    pub(crate) per_credential: u32,
    pub(crate) per_ip: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(per_credential: u32, per_ip: u32) -> Self {
        Self {
            per_credential,
            per_ip,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request; `Err(seconds)` tells how long until the window resets.
    fn hit(&self, key: String, limit: u32) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() > 100_000 {
            w.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let entry = w.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > limit {
            let left = 60u64
                .saturating_sub(now.duration_since(entry.0).as_secs())
                .max(1);
            return Err(left);
        }
        Ok(())
    }
}

fn limited(secs: u64) -> ApiError {
    ApiError {
        retry_after: Some(secs),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests; slow down",
        )
    }
}

/// The authenticated caller of an API request.
pub struct ApiActor(pub Actor);

fn unauthenticated() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "Authenticate with a bearer token or a signed-in session",
    )
}

impl FromRequestParts<AppState> for ApiActor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let client = client_of(state, &parts.headers, &parts.extensions);
        if let Some(ip) = &client.ip {
            state
                .limits
                .hit(format!("ip:{ip}"), state.limits.per_ip)
                .map_err(limited)?;
        }
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        if let Some(raw) = bearer {
            let actor = state
                .app
                .authenticate_token(raw.trim(), client.ip)
                .await?
                .ok_or_else(unauthenticated)?;
            let key = actor.credential_key();
            state
                .limits
                .hit(key, state.limits.per_credential)
                .map_err(limited)?;
            if actor.must_enrol() {
                return Err(AppError::TwoFactorRequired.into());
            }
            return Ok(ApiActor(with_scope(actor, parts)));
        }
        let Some(raw) = cookie(&parts.headers, session_cookie_name(state)) else {
            return Err(unauthenticated());
        };
        let Some(Authenticated::Full { actor, .. }) =
            state.app.authenticate(raw, client.ip).await?
        else {
            return Err(unauthenticated());
        };
        if actor.must_enrol() {
            return Err(AppError::TwoFactorRequired.into());
        }
        let key = actor.credential_key();
        state
            .limits
            .hit(key, state.limits.per_credential)
            .map_err(limited)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let token = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            crate::csrf::check(
                state,
                &parts.headers,
                if token.is_empty() { "-" } else { token },
            )
            .await
            .map_err(|f| match f {
                CsrfFailure::Refused => ApiError::new(
                    StatusCode::FORBIDDEN,
                    "Send the session's CSRF token in X-CSRF-Token",
                ),
                CsrfFailure::Error(e) => ApiError::from(e),
            })?;
        }
        Ok(ApiActor(with_scope(*actor, parts)))
    }
}

/// The actor, acting for the Idempotency-Key this request claimed, if any.
fn with_scope(actor: Actor, parts: &Parts) -> Actor {
    match parts.extensions.get::<super::idempotency::Scope>() {
        Some(s) => actor.with_idempotency(s.0.clone()),
        None => actor,
    }
}

/// A JSON body whose every rejection becomes the API's JSON error.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

/// Reads a field of a PATCH body (`#[serde(default, deserialize_with = "present")]`): absent
/// leaves it `None`, unchanged; `null` is refused rather than read as absent, so "absent means
/// unchanged" is the only rule and the document can say the field is never null.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// The version an `If-Match` header names. Read with [`IfMatch::version`] in the handler's
/// body, after the request body was accepted, so that a request both malformed and with an
/// unreadable `If-Match` is told about its body (400/415/422) first.
pub struct IfMatch(Option<Result<i64, ()>>);

impl IfMatch {
    /// `None` without the header or with `*` (any version). A value that is not one ETag of
    /// this API's form can't be read: 400.
    pub fn version(self) -> Result<Option<i64>, ApiError> {
        self.0.transpose().map_err(|()| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "If-Match must be one ETag this API handed out (like \"3\"), or *",
            )
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(raw) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let raw = raw.to_str().unwrap_or("").trim();
        if raw == "*" {
            return Ok(IfMatch(None));
        }
        let version = raw
            .strip_prefix("W/")
            .unwrap_or(raw)
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .and_then(|v| v.parse().ok())
            .ok_or(());
        Ok(IfMatch(Some(version)))
    }
}

/// A JSON answer with the `ETag` of the version it shows, for a later `If-Match`.
pub fn tagged<T: serde::Serialize>(
    version: i64,
    status: StatusCode,
    body: T,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut r = (status, axum::Json(body)).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&format!("\"{version}\"")) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// Query parameters whose rejection becomes the API's JSON error.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(v) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(v))
    }
}

/// A path parameter; one that can't be parsed (say, an id beyond i64) names nothing: JSON 404.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(_) => Err(ApiError::new(StatusCode::NOT_FOUND, "Not found")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_tells_when_to_retry() {
        let l = RateLimiter::new(3, 0);
        for _ in 0..3 {
            assert!(l.hit("token:1".into(), 3).is_ok());
        }
        let wait = l.hit("token:1".into(), 3).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(
            l.hit("token:2".into(), 3).is_ok(),
            "other keys are not affected"
        );
        assert!(l.hit("ip:x".into(), 0).is_ok(), "0 means unlimited");
    }
}
