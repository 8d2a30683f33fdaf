//! The password step's port: what its first statement finds, and the [`SignInStore`] trait. The
//! SQL behind it is in `sql_sign_in.rs`, shared by both backends.

use crate::{Result, SignInAccount};
use async_trait::async_trait;
use domain::Timestamp;

/// How long an address's count lasts, from its first attempt: 10 minutes.
pub const ADDRESS_WINDOW_MILLIS: i64 = 10 * 60 * 1000;

/// What the first statement of a password step found.
#[derive(Debug)]
pub struct SignInAttempt {
    /// Attempts from the client address in its current window, this one included.
    pub address_attempts: i64,
    /// When the address's window ends and its count starts over.
    pub address_window_ends: Timestamp,
    /// The account with that email, if there is one; its `attempt` is `None` when nothing was
    /// reserved (disabled, locked, or the address is over its limit).
    pub account: Option<SignInAccount>,
}

#[async_trait]
pub trait SignInStore: Send + Sync {
    /// Counts a password attempt against the client `address` (the app's `address_key`: an IPv4
    /// address or an IPv6 /64) and, while the address has made
    /// at most `per_address` attempts in its window ([`ADDRESS_WINDOW_MILLIS`] from its first),
    /// reserves one against the account with `email_key` as `UserStore::reserve_attempt` does
    /// (if the account is enabled and not locked). Sign-ins are thus limited per address as well
    /// as per account (by default 30 password attempts per address per 10 minutes), counted in
    /// the database so that every instance agrees, before any password is checked so that
    /// concurrent guesses can't exceed either limit.
    ///
    /// Known and unknown emails cost the same: one commit that counts the address (and holds
    /// the reservation, if any) and a look at the account, in one statement on PostgreSQL and one
    /// call inside one transaction on SQLite. On PostgreSQL that commit doesn't wait for the disk,
    /// like `reserve_attempt`'s: every outcome below the limit writes again before answering.
    async fn sign_in_attempt(
        &self,
        email_key: &str,
        address: &str,
        per_address: i64,
        now: Timestamp,
    ) -> Result<SignInAttempt>;
    /// Forgets the counts of addresses whose window ended by `now`.
    async fn purge_sign_in_addresses(&self, now: Timestamp) -> Result<u64>;
}
