//! Liveness and readiness for load balancers and orchestrators.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;

/// Up when the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready only when the database answers.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.app.ready().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}
