//! A one-second memory of what API tokens resolve to. Token clients call in bursts, and without
//! it every call would pay a database round trip only to learn who is asking. An entry lives at
//! most [`TTL`], so a revocation or a permission change made through another instance is honoured
//! within a second; a change made through this instance that can alter what a token resolves to
//! empties the cache at once (see `App::entry`, which every event goes through, and
//! [`changes_what_tokens_resolve_to`], which decides).

use domain::audit::{AuditAction, Category, Event};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use store::{Principal, TokenRecord};

pub const TTL: Duration = Duration::from_secs(1);
/// Beyond this many live tokens the cache starts over rather than grow.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<String, (Instant, TokenRecord, Principal)>>,
    /// How many times the cache was emptied (tests check that only changes do it).
    clears: AtomicU64,
    /// When each token was last recorded as refused by its owner's IP Whitelist.
    refusals: Mutex<HashMap<i64, Instant>>,
}

/// A token refused by its owner's IP Whitelist is recorded at most once a minute per instance:
/// a script left running outside the list must not fill the event log.
const REFUSAL_EVENT_INTERVAL: Duration = Duration::from_secs(60);

/// Whether the event records a change that can alter what an API token resolves to: a user
/// (status, groups, Mask data, password…), a group's rights, or a token itself. Refusals, sign-ins
/// (failed or not), codes, exports and client or session changes can't, and emptying the cache
/// for them would let anyone who can fail a sign-in or be refused defeat it. Both matches are
/// exhaustive, so a new category or action can't be added without deciding here.
pub(crate) fn changes_what_tokens_resolve_to(event: &Event) -> bool {
    let change = match event.action {
        AuditAction::Add | AuditAction::Update | AuditAction::Delete | AuditAction::Import => true,
        AuditAction::SignIn
        | AuditAction::SignOut
        | AuditAction::Send
        | AuditAction::Export
        | AuditAction::Refused => false,
    };
    match event.category {
        // Auth changes are tokens created or revoked, passwords changed and accounts locked.
        Category::Users | Category::Groups | Category::Auth => change,
        Category::Clients | Category::Settings | Category::Sessions | Category::System => false,
    }
}

impl TokenCache {
    pub fn get(&self, token_hash: &str) -> Option<(TokenRecord, Principal)> {
        let entries = self.entries.lock().ok()?;
        let (at, token, authority) = entries.get(token_hash)?;
        (at.elapsed() < TTL).then(|| (token.clone(), authority.clone()))
    }

    pub fn put(&self, token_hash: String, token: TokenRecord, authority: Principal) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, (at, _, _)| at.elapsed() < TTL);
            }
            if entries.len() < MAX_ENTRIES {
                entries.insert(token_hash, (Instant::now(), token, authority));
            }
        }
    }

    pub fn clear(&self) {
        self.clears.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// Whether a refusal of token `id` should be written to the event log now.
    pub fn record_refusal(&self, id: i64) -> bool {
        let Ok(mut seen) = self.refusals.lock() else {
            return true;
        };
        if seen.len() >= MAX_ENTRIES {
            seen.retain(|_, at| at.elapsed() < REFUSAL_EVENT_INTERVAL);
        }
        match seen.get(&id) {
            Some(at) if at.elapsed() < REFUSAL_EVENT_INTERVAL => false,
            _ => {
                seen.insert(id, Instant::now());
                true
            }
        }
    }

    pub fn clears(&self) -> u64 {
        self.clears.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_token_is_recorded_once_a_minute() {
        let cache = TokenCache::default();
        assert!(cache.record_refusal(7));
        assert!(!cache.record_refusal(7));
        assert!(cache.record_refusal(8), "each token has its own minute");
    }

    #[test]
    fn only_changes_to_users_groups_and_tokens_empty_the_cache() {
        let e = |c, a| Event::new(c, a, "");
        assert!(changes_what_tokens_resolve_to(&e(
            Category::Users,
            AuditAction::Update
        )));
        assert!(changes_what_tokens_resolve_to(&e(
            Category::Groups,
            AuditAction::Delete
        )));
        assert!(changes_what_tokens_resolve_to(&e(
            Category::Auth,
            AuditAction::Delete
        )));
        for (c, a) in [
            (Category::System, AuditAction::Refused),
            (Category::Auth, AuditAction::SignIn),
            (Category::Auth, AuditAction::SignOut),
            (Category::Auth, AuditAction::Send),
            (Category::Groups, AuditAction::Export),
            (Category::Clients, AuditAction::Update),
            (Category::Sessions, AuditAction::Delete),
        ] {
            assert!(!changes_what_tokens_resolve_to(&e(c, a)), "{c:?} {a:?}");
        }
    }
}
