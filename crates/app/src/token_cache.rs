//! A one-second memory of what API tokens resolve to. Token clients call in bursts, and without
//! it every call would pay a database round trip only to learn who is asking. An entry lives at
//! most [`TTL`], so a revocation or a permission change made through another instance is honoured
//! within a second; a change made through this instance empties the cache at once (see
//! `App::entry`, which every change goes through).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use store::{Principal, TokenRecord};

pub const TTL: Duration = Duration::from_secs(1);
/// Beyond this many live tokens the cache starts over rather than grow.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<String, (Instant, TokenRecord, Principal)>>,
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
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}
