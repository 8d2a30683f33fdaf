//! One module per page group.

pub mod clients;
pub mod columns;
pub mod dashboard;
pub mod editing;
pub mod events;
pub mod groups;
pub mod health;
pub mod login;
pub mod password_reset;
pub mod profile;
pub mod settings;
pub mod tags;
pub mod two_factor;
pub mod users;
pub mod users_bulk;

use askama::Template;
use axum::response::{Html, IntoResponse, Response};

/// Renders a template; a template error is an internal error, never shown.
pub fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(body) => Html(body).into_response(),
        Err(e) => crate::WebError(app::AppError::Internal(e.to_string())).into_response(),
    }
}

/// Renders with a status other than 200 (a form that comes back with errors).
pub fn render_status<T: Template>(status: axum::http::StatusCode, t: &T) -> Response {
    let mut r = render(t);
    if r.status().is_success() {
        *r.status_mut() = status;
    }
    r
}
