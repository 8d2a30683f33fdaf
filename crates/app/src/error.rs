//! One error type for every use case; the web layer turns each variant into a page or JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Deref, DerefMut};
use store::StoreError;

/// Problems keyed by field name, shown next to each field (or as `fields` in JSON). A problem
/// that is a taken unique value (an email already used) is marked as one when it is found, so
/// the API answers 409 from the type, never by reading the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors {
    messages: BTreeMap<&'static str, String>,
    duplicates: BTreeSet<&'static str>,
}

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` holds a value another record already has.
    pub fn insert_duplicate(&mut self, field: &'static str, message: impl Into<String>) {
        self.duplicates.insert(field);
        self.messages.insert(field, message.into());
    }

    /// True when every problem is a taken unique value (and there is one).
    pub fn only_duplicates(&self) -> bool {
        !self.messages.is_empty() && self.messages.keys().all(|f| self.duplicates.contains(f))
    }
}

impl Deref for FieldErrors {
    type Target = BTreeMap<&'static str, String>;
    fn deref(&self) -> &Self::Target {
        &self.messages
    }
}

impl DerefMut for FieldErrors {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.messages
    }
}

impl IntoIterator for FieldErrors {
    type Item = (&'static str, String);
    type IntoIter = std::collections::btree_map::IntoIter<&'static str, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.messages.into_iter()
    }
}

impl<'a> IntoIterator for &'a FieldErrors {
    type Item = (&'a &'static str, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, &'static str, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.messages.iter()
    }
}

impl FromIterator<(&'static str, String)> for FieldErrors {
    fn from_iter<I: IntoIterator<Item = (&'static str, String)>>(iter: I) -> Self {
        Self {
            messages: iter.into_iter().collect(),
            duplicates: BTreeSet::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("Please check the highlighted fields")]
    Invalid(FieldErrors),
    #[error("Sign in to continue")]
    Unauthenticated,
    #[error("You must choose a new password first")]
    PasswordChangeRequired,
    /// "Require 2FA" is on and the account has no second factor: it must enrol first.
    #[error("Two-factor authentication is required: set it up in the Back Office first (profile menu › Enable 2FA)")]
    TwoFactorRequired,
    #[error("{0}")]
    Forbidden(String),
    #[error("Not found")]
    NotFound,
    /// A link or one-time credential that no longer works (used, voided or expired).
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    Conflict(String),
    /// The edit was based on an older version of the record: someone changed it since.
    #[error("{0}")]
    Stale(Stale),
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

/// Who changed a record since the version an edit was based on, and when (from the event log).
#[derive(Debug, Clone)]
pub struct Stale {
    /// "user", "group" or "client".
    pub kind: &'static str,
    pub id: i64,
    /// The version the record has now (a form that shows both values carries it).
    pub version: i64,
    pub changed_by: Option<String>,
    pub changed_at: Option<domain::Timestamp>,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "This {} was changed", self.kind)?;
        if let Some(by) = &self.changed_by {
            write!(f, " by {by}")?;
        }
        if let Some(at) = self.changed_at {
            // "2026-12-01 04:52:20 UTC"
            let iso = at.iso();
            write!(
                f,
                " at {} UTC",
                iso.trim_end_matches('Z').replacen('T', " ", 1)
            )?;
        }
        write!(
            f,
            " after your copy was loaded; nothing was saved. Compare your values with the \
             current ones and save again"
        )
    }
}

impl AppError {
    pub fn field(name: &'static str, message: impl Into<String>) -> Self {
        let mut f = FieldErrors::new();
        f.insert(name, message.into());
        AppError::Invalid(f)
    }

    /// A taken unique value (see [`FieldErrors::insert_duplicate`]).
    pub fn duplicate(name: &'static str, message: impl Into<String>) -> Self {
        let mut f = FieldErrors::new();
        f.insert_duplicate(name, message);
        AppError::Invalid(f)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { field: "email" } => {
                AppError::duplicate("email", "This email is already used by another user")
            }
            StoreError::Duplicate { field: "caption" } => {
                AppError::duplicate("caption", "A group with this caption already exists")
            }
            StoreError::Duplicate { field } => {
                AppError::duplicate(field, "This value is already used")
            }
            StoreError::NotFound => AppError::NotFound,
            // A use case's own refusal, made inside the store's transaction: handed back as is.
            StoreError::Rejected(r) => match r.downcast::<AppError>() {
                Ok(e) => *e,
                Err(other) => AppError::Internal(other.to_string()),
            },
            StoreError::Conflict(m) => AppError::Conflict(m),
            StoreError::Unavailable(source) => {
                tracing::error!(error = %source, "database unavailable");
                AppError::Unavailable
            }
            StoreError::Other(source) => AppError::Internal(source.to_string()),
        }
    }
}
