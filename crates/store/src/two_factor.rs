//! The second factors' port: authenticator-app secrets, recovery codes, passkeys, WebAuthn
//! ceremonies in progress, and the run-time settings (Require 2FA, the key check). The SQL is in
//! `sql_two_factor.rs`, shared by both backends. Secrets and credentials arrive here already
//! sealed by the app (see `app::secret_box`): the store never holds a key.

use crate::{AuditEntry, Result};
use async_trait::async_trait;
use domain::{Timestamp, TwoFactor};

/// A user's active TOTP secret (sealed) and the step of the last code accepted.
#[derive(Debug, Clone)]
pub struct TotpSecret {
    pub sealed: String,
    pub last_step: i64,
}

/// A passkey as stored; `credential` is sealed.
#[derive(Debug, Clone)]
pub struct PasskeyRecord {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub credential: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// A passkey to store: `credential_key` (a hash of the credential id) makes a second
/// registration of the same credential a duplicate of field "passkey".
#[derive(Debug, Clone)]
pub struct NewPasskey {
    pub name: String,
    pub credential_key: String,
    pub credential: String,
}

/// A switch of a user's method, written in one transaction with its event: the method, the
/// method's own data (the previous method's data is deleted), and a new set of recovery codes.
#[derive(Debug, Clone)]
pub struct MethodChange {
    pub method: TwoFactor,
    /// Only while the user's method is still this one (`Conflict` otherwise): a change decided
    /// on what a person saw doesn't overwrite one made meanwhile.
    pub expect: Option<TwoFactor>,
    /// The sealed secret and the step of the code that proved it (method TOTP).
    pub totp: Option<(String, i64)>,
    /// The TOTP set-up this change confirms, as stored: `Conflict` unless it is still there (it
    /// is deleted with the change), so one set-up is confirmed once even when two confirmations
    /// race, and a set-up replaced meanwhile confirms nothing.
    pub confirms_enrolment: Option<String>,
    /// The first passkey (method Passkey).
    pub passkey: Option<NewPasskey>,
    /// Hashes of the new recovery codes; empty for methods without them.
    pub recovery_hashes: Vec<String>,
    pub at: Timestamp,
}

/// What a ceremony in progress is for.
pub const CEREMONY_REGISTER: &str = "register";
pub const CEREMONY_SIGN_IN: &str = "sign-in";

#[async_trait]
pub trait TwoFactorStore: Send + Sync {
    /// Stores (replacing) the secret of a TOTP set-up in progress.
    async fn put_totp_enrolment(&self, user_id: i64, sealed: &str, at: Timestamp) -> Result<()>;
    async fn totp_enrolment(&self, user_id: i64) -> Result<Option<String>>;
    async fn totp_secret(&self, user_id: i64) -> Result<Option<TotpSecret>>;
    /// Spends `step` and every earlier one: true for exactly one caller, and only while the
    /// last accepted step is earlier (a conditional UPDATE, atomic on both databases).
    async fn spend_totp_step(&self, user_id: i64, step: i64) -> Result<bool>;
    /// Switches the user's method (raising the user's version), in one transaction with `event`.
    async fn set_two_factor_method(
        &self,
        user_id: i64,
        change: MethodChange,
        event: AuditEntry,
    ) -> Result<()>;
    /// Recovery codes not used yet.
    async fn recovery_codes_left(&self, user_id: i64) -> Result<i64>;
    /// Marks the code with this hash used, with `event`: true for exactly one caller.
    async fn spend_recovery_code(
        &self,
        user_id: i64,
        code_hash: &str,
        at: Timestamp,
        event: AuditEntry,
    ) -> Result<bool>;
    /// Replaces the user's recovery codes (the old ones stop working), with `event`.
    async fn replace_recovery_codes(
        &self,
        user_id: i64,
        hashes: &[String],
        event: AuditEntry,
    ) -> Result<()>;
    async fn passkeys_of_user(&self, user_id: i64) -> Result<Vec<PasskeyRecord>>;
    /// Adds a passkey to a user whose method is Passkey, with `event`.
    async fn add_passkey(
        &self,
        user_id: i64,
        passkey: &NewPasskey,
        at: Timestamp,
        event: AuditEntry,
    ) -> Result<i64>;
    /// Removes one of the user's passkeys, with `event`; `Conflict` for the last one (the
    /// method would be left without a credential: change or reset the method instead).
    async fn remove_passkey(&self, user_id: i64, id: i64, event: AuditEntry) -> Result<()>;
    /// Stores a used passkey's updated credential (its signature counter) and the time.
    async fn passkey_used(&self, id: i64, credential: &str, at: Timestamp) -> Result<()>;
    /// Stores (replacing) the ceremony of this session.
    async fn put_ceremony(
        &self,
        session_hash: &str,
        purpose: &str,
        state: &str,
        expires_at: Timestamp,
    ) -> Result<()>;
    /// Removes and returns the session's unexpired ceremony for `purpose`: a challenge is
    /// answered once.
    async fn take_ceremony(
        &self,
        session_hash: &str,
        purpose: &str,
        now: Timestamp,
    ) -> Result<Option<String>>;
    /// Housekeeping: forgets ceremonies past their expiry and TOTP set-ups begun before
    /// `enrolments_before` and never confirmed. Returns how many rows went.
    async fn purge_two_factor_leftovers(
        &self,
        now: Timestamp,
        enrolments_before: Timestamp,
    ) -> Result<u64>;
    async fn setting(&self, name: &str) -> Result<Option<String>>;
    /// Sets a run-time setting, with its event when a person changed it.
    async fn put_setting(&self, name: &str, value: &str, event: Option<AuditEntry>) -> Result<()>;
    /// Sets the setting unless it is set: returns what it holds afterwards (the first writer's
    /// value when instances start together).
    async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String>;
}
