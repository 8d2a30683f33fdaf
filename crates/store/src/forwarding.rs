//! The event log's forwarding to a SIEM: a cursor and a lease per destination ("sink"); the
//! events themselves are read with [`crate::AuditStore::all_events`]. The SQL is in
//! `sql/forwarding.rs`.

use crate::Result;
use async_trait::async_trait;
use domain::Timestamp;

/// Where a destination stands, for System › Settings and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardingState {
    pub sink: String,
    /// The last event the destination acknowledged.
    pub cursor: i64,
    pub delivered_at: Option<Timestamp>,
    /// Failed attempts since the last delivery.
    pub failures: i64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}

#[async_trait]
pub trait ForwardingStore: Send + Sync {
    /// Takes or renews the lease on `sink` for `owner` until `until`, when it is free (expired
    /// at `now`) or `owner`'s already: then the destination's cursor. `None` while another
    /// instance holds it. A destination seen for the first time starts at `start_cursor` (the
    /// event log's head when forwarding was switched on, or 0 for the whole log).
    async fn take_forwarding_lease(
        &self,
        sink: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
        start_cursor: i64,
    ) -> Result<Option<i64>>;
    /// Moves the cursor forward to `cursor` after a delivery at `at`, only while `owner` holds
    /// the lease, unexpired (false otherwise: it ran out, or another instance took over).
    async fn forwarding_delivered(
        &self,
        sink: &str,
        owner: &str,
        cursor: i64,
        at: Timestamp,
    ) -> Result<bool>;
    /// Records a failed attempt (the cursor stays).
    async fn forwarding_failed(
        &self,
        sink: &str,
        owner: &str,
        error: &str,
        at: Timestamp,
    ) -> Result<()>;
    /// Every destination forwarded to so far.
    async fn forwarding_states(&self) -> Result<Vec<ForwardingState>>;
}
