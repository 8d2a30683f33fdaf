//! `Idempotency-Key` on the API's POSTs, the convention payment APIs use: a request sent again
//! with the same key and the same body gets the first answer (for 24 hours, on any instance:
//! the keys are in the database), never a second change. So a client whose answer was lost —
//! a dropped connection, a 503 from a proxy after the commit — can retry safely.
//!
//! The key is the caller's: it is scoped by the credential the request came with. The first
//! request claims it; the change it makes marks it carried out in the change's own transaction
//! (see `app::Actor::with_idempotency`); its answer is recorded for replay. A retry meanwhile
//! answers 409; the same key with another method, path or body, 422. A request refused before
//! it was looked at (401, 408, 429) or that failed on our side (5xx) without a change frees its
//! key, so the retry is carried out. When the database can't be reached to record the answer or
//! free the key (the usual cause of a 503), that is done again in the background for a while,
//! so a retry after the outage still finds the first answer, or a free key.

use super::error::ApiError;
use crate::session::{cookie, session_cookie_name};
use crate::AppState;
use app::Claim;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";

/// Bodies the API reads are at most 1 MiB (its body limit); answers to POSTs are small.
const MAX_BODY: usize = 1024 * 1024;

/// The scope of a claimed key, for `ApiActor` to hand to the use case.
#[derive(Clone)]
pub struct Scope(pub String);

/// Set by a handler whose answer carries a secret (a new token): the answer is not stored,
/// and a retry is told that the request was carried out.
#[derive(Clone, Copy)]
pub struct NoReplay;

fn sha256(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn refused(status: StatusCode, message: &str) -> Response {
    ApiError::new(status, message).into_response()
}

pub async fn idempotent(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_string()
        }
        _ => {
            return refused(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        }
    };
    let headers = req.headers();
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .or_else(|| cookie(headers, session_cookie_name(&state)))
        .map(str::to_string);
    // Without a credential the request is refused before it changes anything.
    let Some(credential) = credential else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is larger than 1 MiB",
        );
    };
    let scope = sha256(&[credential.as_bytes(), key.as_bytes()]);
    let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let request_hash = sha256(&[parts.method.as_str().as_bytes(), target.as_bytes(), &bytes]);
    match state.app.claim_idempotency(&scope, &request_hash).await {
        Err(e) => ApiError::from(e).into_response(),
        Ok(Claim::Claimed) => {
            let mut req = Request::from_parts(parts, Body::from(bytes));
            req.extensions_mut().insert(Scope(scope.clone()));
            // Abandoned (the deadline answered 503 first), the request frees its key anyway.
            let mut unsettled = Unsettled(Some((state.clone(), scope.clone())));
            let answer = next.run(req).await;
            unsettled.0 = None;
            record(&state, &scope, answer).await
        }
        Ok(Claim::Replay {
            status,
            content_type,
            body,
        }) => {
            let mut r =
                (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            r
        }
        Ok(Claim::Mismatch) => refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "This Idempotency-Key was used for a different request (another method, path or \
             body); use a new key for a new request",
        ),
        Ok(Claim::InProgress) => {
            let mut r = refused(
                StatusCode::CONFLICT,
                "A request with this Idempotency-Key is still being carried out; retry in a moment",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Ok(Claim::CarriedOut) => refused(
            StatusCode::CONFLICT,
            "The request with this Idempotency-Key was carried out, but its answer could not be \
             recorded; look the result up instead of retrying",
        ),
    }
}

/// How long recording an answer, or freeing a key, is tried again while the database is away.
const RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// The outcome of a claimed request, to write down once the database can be reached.
#[derive(Clone)]
enum Outcome {
    Answer {
        status: u16,
        content_type: String,
        body: String,
    },
    Free,
}

async fn write_down(state: &AppState, scope: &str, outcome: &Outcome) -> Result<(), app::AppError> {
    let app = &state.app;
    let write = async {
        match outcome {
            Outcome::Answer {
                status,
                content_type,
                body,
            } => {
                app.finish_idempotency(scope, *status, content_type, body)
                    .await
            }
            Outcome::Free => app.release_idempotency(scope).await,
        }
    };
    tokio::time::timeout(app::READY_WITHIN, write)
        .await
        .unwrap_or(Err(app::AppError::Unavailable))
}

/// Writes the outcome down now, or keeps trying in the background for [`RETRY_FOR`].
async fn settle(state: &AppState, scope: &str, outcome: Outcome) {
    if write_down(state, scope, &outcome).await.is_ok() {
        return;
    }
    let (state, scope) = (state.clone(), scope.to_string());
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        while started.elapsed() < RETRY_FOR {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if write_down(&state, &scope, &outcome).await.is_ok() {
                return;
            }
        }
        tracing::warn!("the outcome of an idempotent request could not be recorded");
    });
}

/// A claimed key whose request was dropped before it answered: freed in the background (the
/// store keeps a key whose change committed).
struct Unsettled(Option<(AppState, String)>);

impl Drop for Unsettled {
    fn drop(&mut self) {
        // Outside a runtime (the process is ending) the key is left to lapse.
        if let (Some((state, scope)), Ok(runtime)) =
            (self.0.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move { settle(&state, &scope, Outcome::Free).await });
        }
    }
}

/// Records the answer for replay, or frees the key of a request that was not looked at or
/// failed on our side.
async fn record(state: &AppState, scope: &str, answer: Response) -> Response {
    let status = answer.status();
    let not_looked_at = matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS
    );
    if status.is_server_error() || not_looked_at {
        settle(state, scope, Outcome::Free).await;
        return answer;
    }
    let secret = answer.extensions().get::<NoReplay>().is_some();
    let (parts, body) = answer.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side",
        );
    };
    let kind = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let outcome = if secret {
        Outcome::Answer {
            status: StatusCode::CONFLICT.as_u16(),
            content_type: "application/json".into(),
            body: serde_json::json!({"error": "The request with this Idempotency-Key was carried \
                out; its answer held a secret that is shown only once, so it is not repeated"})
            .to_string(),
        }
    } else {
        Outcome::Answer {
            status: status.as_u16(),
            content_type: kind.to_string(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    };
    settle(state, scope, outcome).await;
    Response::from_parts(parts, Body::from(bytes))
}
