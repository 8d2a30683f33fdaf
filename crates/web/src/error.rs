//! Turning use-case errors into pages. Internal details go to the log with the request id;
//! the person sees a plain page that reveals nothing of the inside.

use app::AppError;
use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = ErrorPage {
        status: status.as_u16(),
        title,
        message,
    }
    .render()
    .unwrap_or_else(|_| message.to_string());
    (status, Html(body)).into_response()
}

pub async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "There is no page at this address.")
}

/// An [`AppError`] on its way to becoming a page.
#[derive(Debug)]
pub struct WebError(pub AppError);

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        WebError(e)
    }
}

impl WebError {
    pub fn into_page(self) -> Response {
        self.into_response()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self.0 {
            AppError::Unauthenticated => Redirect::to("/login").into_response(),
            AppError::PasswordChangeRequired => Redirect::to("/password/change").into_response(),
            AppError::TwoFactorRequired => Redirect::to("/two-factor").into_response(),
            AppError::Forbidden(m) => error_page(StatusCode::FORBIDDEN, &m),
            AppError::Expired(m) => error_page(StatusCode::GONE, &m),
            AppError::NotFound => error_page(StatusCode::NOT_FOUND, "This item does not exist."),
            AppError::Conflict(m) => error_page(StatusCode::CONFLICT, &m),
            AppError::Stale(s) => error_page(StatusCode::CONFLICT, &s.to_string()),
            AppError::TooMany(m) => error_page(StatusCode::TOO_MANY_REQUESTS, &m),
            AppError::TooManyUntil {
                message,
                retry_after_secs,
            } => {
                let mut page = error_page(StatusCode::TOO_MANY_REQUESTS, &message);
                page.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                page
            }
            AppError::Mail(m) => error_page(StatusCode::BAD_GATEWAY, &m),
            AppError::Invalid(fields) => {
                let m = fields.values().cloned().collect::<Vec<_>>().join(" ");
                error_page(StatusCode::UNPROCESSABLE_ENTITY, &m)
            }
            AppError::Unavailable => error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is not answering right now. Nothing was changed; try again in a moment.",
            ),
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                error_page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side. Nothing was changed.")
            }
        }
    }
}
