//! The use cases of the Back Office. Every operation a person can do is a method here that takes
//! the acting user ([`Actor`]); permission checks, escalation guards, masking, audit writing and
//! mail sending happen in this crate and nowhere else, so pages and API can't disagree.

pub mod actor;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod bulk;
pub mod clients;
pub mod concurrency;
pub mod csv_file;
pub mod dashboard;
pub mod demo;
pub mod error;
pub mod events;
pub mod export;
pub mod forwarding;
pub mod groups;
pub mod hashing;
pub mod mail;
pub mod metrics;
pub mod password_reset;
pub mod secret_box;
pub mod settings;
pub mod tags;
mod token_cache;
pub mod tokens;
pub mod two_factor;
pub mod users;

pub use actor::Actor;
pub use error::{AppError, FieldErrors, Stale};

/// How long a readiness check waits for the database (`/readyz` answers within it).
pub const READY_WITHIN: std::time::Duration = std::time::Duration::from_millis(1500);
/// The store's plain listing, query and reference types, which adapters pass through as they
/// are (no secret, no client data): re-exported so that `web` needs no dependency on `store`
/// and can reach data only through the use cases.
pub use store::{
    BulkState, Claim, ClientSort, GroupDetail, GroupRef, GroupSummary, Page, TagRecord, TagRef,
    TokenRecord, UserQuery, UserSort,
};

use domain::Timestamp;
use std::sync::Arc;
use std::time::Duration;
use store::Store;

/// Tunables the operator sets; defaults are the documented ones.
#[derive(Clone, Debug)]
pub struct Settings {
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub code_ttl: Duration,
    pub public_url: String,
    /// Password attempts one client address may make per sign-in window (see
    /// `auth::ADDRESS_WINDOW_SECS`); 0 = unlimited (still counted).
    pub sign_in_attempts_per_ip: u32,
    /// Seals second-factor secrets (`BACKOFFICE_SECRET_KEY_FILE`); every instance of one
    /// database needs the same. The default is a fresh random key, for tools and tests that
    /// keep no secret across processes.
    pub secret_key: secret_box::SecretKey,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            code_ttl: Duration::from_secs(10 * 60),
            public_url: "http://127.0.0.1:8080".into(),
            sign_in_attempts_per_ip: 30,
            secret_key: secret_box::SecretKey::generate(),
        }
    }
}

/// Where "now" comes from; tests inject a clock they can move forward.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The application: the store, the mailer (none on a standalone install), the password hasher.
pub struct App {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) mailer: Option<mail::Mailer>,
    pub(crate) hasher: hashing::Hasher,
    pub(crate) settings: Settings,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) token_cache: token_cache::TokenCache,
    pub(crate) tag_cache: tags::TagCache,
    /// The passkeys' relying party (`None` when the public URL has no domain name).
    pub(crate) webauthn: Option<webauthn_rs::Webauthn>,
    pub(crate) require_cache: two_factor::RequireCache,
    pub(crate) dashboard_cache: dashboard::DashboardCache,
}

impl App {
    pub fn new(store: Arc<dyn Store>, mailer: Option<mail::Mailer>, settings: Settings) -> Self {
        Self::with_clock(store, mailer, settings, Arc::new(SystemClock))
    }

    pub fn with_clock(
        store: Arc<dyn Store>,
        mailer: Option<mail::Mailer>,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            mailer,
            hasher: hashing::Hasher::new(),
            webauthn: two_factor::relying_party(&settings.public_url),
            require_cache: Default::default(),
            dashboard_cache: Default::default(),
            settings,
            clock,
            token_cache: Default::default(),
            tag_cache: Default::default(),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// True when an SMTP server is configured; false on a standalone install.
    pub fn has_smtp(&self) -> bool {
        self.mailer.is_some()
    }

    /// Start-up: makes sure the configured secret key is this database's (the first start
    /// records a check value sealed with it). A different key can't open the secrets already
    /// stored, so the server must not start with it.
    pub async fn check_secret_key(&self) -> Result<(), String> {
        let check = self
            .store
            .setting_or_insert(
                secret_box::KEY_CHECK_SETTING,
                &self.settings.secret_key.key_check(),
            )
            .await
            .map_err(|e| format!("could not read the key check from the database: {e}"))?;
        if self.settings.secret_key.matches_check(&check) {
            Ok(())
        } else {
            Err(
                "the secret key (BACKOFFICE_SECRET_KEY_FILE) is not the one this database's \
                 two-factor secrets were sealed with"
                    .into(),
            )
        }
    }

    /// Whether the database has recorded a secret key already (a key file that went missing
    /// must not be replaced by a new one silently).
    pub async fn has_secret_key_check(&self) -> Result<bool, AppError> {
        Ok(self
            .store
            .setting(secret_box::KEY_CHECK_SETTING)
            .await?
            .is_some())
    }

    /// Readiness: the database answers.
    /// The database answers a connection of its own within [`READY_WITHIN`] (busy pooled
    /// connections don't count against it): whether a slow request waits on a silent database.
    pub async fn database_answers(&self) -> bool {
        matches!(
            tokio::time::timeout(READY_WITHIN, self.store.probe()).await,
            Ok(Ok(()))
        )
    }

    /// The database answers, within [`READY_WITHIN`].
    pub async fn ready(&self) -> Result<(), AppError> {
        match tokio::time::timeout(READY_WITHIN, self.store.ping()).await {
            Ok(answer) => answer.map_err(AppError::from),
            Err(_) => {
                tracing::warn!("database did not answer a ping in time");
                Err(AppError::Unavailable)
            }
        }
    }
}
