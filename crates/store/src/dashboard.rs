//! The figures of the Dashboard (the SQL is in `sql/dashboard.rs`). The client figures are kept
//! by the writes themselves (migration 0020), so reading them costs the same at 10M clients as
//! at 1,000; the use case still keeps every answer for a short while.

use crate::Result;
use async_trait::async_trait;
use domain::client::ClientStatus;
use domain::{Timestamp, TwoFactor, UserStatus};

/// Staff accounts counted by status and two-factor method, and how many are locked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaffFigures {
    pub groups: Vec<(UserStatus, TwoFactor, i64)>,
    pub locked: i64,
}

/// Sign-ins and failed sign-ins on one UTC day (days since 1970-01-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInDay {
    pub day: i64,
    pub ok: i64,
    pub failed: i64,
}

#[async_trait]
pub trait DashboardStore: Send + Sync {
    /// Every staff account by status and method; locked = locked past `now`.
    async fn staff_figures(&self, now: Timestamp) -> Result<StaffFigures>;
    /// Clients by (status, country code): every client (read from the figures the writes keep,
    /// whatever wrote), or those carrying one of `tags`, each counted once (read from the tags'
    /// index: one index range per tag, no client row).
    async fn client_figures(
        &self,
        tags: Option<&[i64]>,
    ) -> Result<Vec<(ClientStatus, String, i64)>>;
    /// Per UTC day from `from` on, the events named `ok_event` and `failed_event`.
    async fn sign_ins_per_day(
        &self,
        from: Timestamp,
        ok_event: &str,
        failed_event: &str,
    ) -> Result<Vec<SignInDay>>;
}
