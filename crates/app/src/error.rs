//! One error type for every use case; the web layer turns each variant into a page or JSON.

use std::collections::BTreeMap;
use store::StoreError;

/// Problems keyed by field name, shown next to each field (or as `fields` in JSON).
pub type FieldErrors = BTreeMap<&'static str, String>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("Please check the highlighted fields")]
    Invalid(FieldErrors),
    #[error("Sign in to continue")]
    Unauthenticated,
    #[error("You must choose a new password first")]
    PasswordChangeRequired,
    #[error("{0}")]
    Forbidden(String),
    #[error("Not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooMany(String),
    /// Refused for now; the same request may succeed after `retry_after_secs` (`Retry-After`).
    #[error("{message}")]
    TooManyUntil {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Mail(String),
    #[error("The database is unavailable; try again in a moment")]
    Unavailable,
    /// Internal details go to the log, never to the person.
    #[error("Something went wrong on our side")]
    Internal(String),
}

impl AppError {
    pub fn field(name: &'static str, message: impl Into<String>) -> Self {
        let mut f = FieldErrors::new();
        f.insert(name, message.into());
        AppError::Invalid(f)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate("email") => {
                AppError::field("email", "This email is already used by another user")
            }
            StoreError::Duplicate("caption") => {
                AppError::field("caption", "A group with this caption already exists")
            }
            StoreError::Duplicate(what) => AppError::Conflict(format!("Duplicate {what}")),
            StoreError::NotFound => AppError::NotFound,
            StoreError::Conflict(m) => AppError::Conflict(m),
            StoreError::Unavailable(m) => {
                tracing::error!(error = %m, "database unavailable");
                AppError::Unavailable
            }
            StoreError::Other(m) => AppError::Internal(m),
        }
    }
}
