//! A bounded wait for the database. A request still running after [`FIRST_CHECK`] asks whether
//! the database answers a connection of its own (within `app::READY_WITHIN`; busy pooled
//! connections don't count); if it doesn't (a network that
//! went silent: packets dropped, no reset, so no connection error ever comes), the request is
//! dropped and answered 503 — within 5 s of the database going silent. Dropping it drops its
//! connection and rolls its transaction back; the pool opens new connections when the database
//! answers again. A slow request on a database that answers (a large export, an SMTP server
//! taking its time) is left alone and checked again every [`FIRST_CHECK`].

use crate::error::WebError;
use crate::AppState;
use app::AppError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// How long a request runs before the database is checked (then as often again).
pub const FIRST_CHECK: Duration = Duration::from_secs(3);

pub async fn bounded(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let answer = next.run(req);
    tokio::pin!(answer);
    loop {
        tokio::select! {
            r = &mut answer => return r,
            () = tokio::time::sleep(FIRST_CHECK) => {}
        }
        let check = state.app.database_answers();
        tokio::pin!(check);
        tokio::select! {
            r = &mut answer => return r,
            answers = &mut check => {
                if !answers {
                    tracing::warn!("request abandoned: the database does not answer");
                    return if api {
                        crate::api::error::ApiError::from(AppError::Unavailable).into_response()
                    } else {
                        WebError(AppError::Unavailable).into_response()
                    };
                }
            }
        }
    }
}
