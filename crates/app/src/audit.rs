//! Building event-log entries and verifying the chain.

use crate::{Actor, App, AppError};
use domain::audit::Event;
use store::{AuditEntry, ChainReport, GENESIS};

impl App {
    /// An entry made by `actor` (or by the system / an anonymous person when `None`). Every
    /// change is recorded through here, so it also forgets what API tokens resolved to when the
    /// change can alter that: such a change made through this instance is seen by the next
    /// request. Refusals and failed sign-ins leave the cache alone.
    pub(crate) fn entry(
        &self,
        actor: Option<&Actor>,
        ip: Option<&str>,
        event: Event,
    ) -> AuditEntry {
        if crate::token_cache::changes_what_tokens_resolve_to(&event) {
            self.token_cache.clear();
        }
        AuditEntry {
            at: self.now(),
            actor_id: actor.map(|a| a.id()),
            actor_email: actor.map(|a| a.user.email.clone()),
            actor_groups: actor.map(Actor::groups_label).unwrap_or_default(),
            ip: ip
                .map(str::to_string)
                .or_else(|| actor.and_then(|a| a.ip.clone())),
            event,
            idempotency: actor.and_then(|a| a.idempotency.clone()),
        }
    }

    /// Writes a standalone event; a failure to log is reported but never hides the outcome.
    pub(crate) async fn log(&self, actor: Option<&Actor>, ip: Option<&str>, event: Event) {
        // A standalone event (a refusal, a failed mail) is no change: it doesn't carry the
        // request's Idempotency-Key, so a retry of that request is carried out again.
        let entry = store::AuditEntry {
            idempotency: None,
            ..self.entry(actor, ip, event)
        };
        if let Err(e) = self.store.append_event(entry).await {
            tracing::error!(error = %e, "could not write event-log entry");
        }
    }

    /// How many times this instance emptied its API-token cache (for tests).
    #[doc(hidden)]
    pub fn token_cache_clears(&self) -> u64 {
        self.token_cache.clears()
    }

    /// Walks the whole chain: `audit verify`.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, AppError> {
        verify_chain_of(self.store.as_ref()).await
    }
}

/// Walks the whole chain of `store`'s event log, from the first row to the chain head: the
/// serving database (`audit verify`) or a copy opened read-only (`audit verify --database`).
pub async fn verify_chain_of(store: &dyn store::Store) -> Result<ChainReport, AppError> {
    let mut state = (GENESIS.to_string(), 1i64);
    loop {
        let rows = store.all_events(state.1 - 1, 5000).await?;
        if rows.is_empty() {
            break;
        }
        if let Some(broken) = store::verify_chain(&mut state, &rows) {
            return Ok(broken);
        }
    }
    let (seq, last_hash) = store.chain_head().await?;
    let rows = (state.1 - 1) as u64;
    if seq != state.1 - 1 || last_hash != state.0 {
        return Ok(ChainReport::Broken {
            id: seq,
            reason: "the last rows of the chain are missing".into(),
        });
    }
    Ok(ChainReport::Ok { rows })
}
