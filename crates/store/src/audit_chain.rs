//! The event log's hash chain: each row stores SHA-256 over the previous row's hash and its own
//! canonical content, so changing, deleting or inserting a row breaks the chain at that row.

use crate::EventRecord;
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of a row: canonical JSON of every column but the hashes, chained to `prev`.
pub(crate) fn row_hash(prev: &str, e: &EventRecord) -> String {
    let canonical = serde_json::json!([
        e.id,
        e.at.millis(),
        e.actor_id,
        e.actor_email,
        e.actor_groups,
        e.category,
        e.action,
        e.event,
        e.target_type,
        e.target_id,
        e.target_label,
        e.details,
        e.ip
    ]);
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(canonical.to_string().as_bytes());
    hex::encode(h.finalize())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    Ok {
        rows: u64,
    },
    /// The first row whose link or content does not match, and why.
    Broken {
        id: i64,
        reason: String,
    },
}

/// Checks consecutive rows, carrying `(expected_prev_hash, expected_next_id)` between calls.
pub fn verify_chain(state: &mut (String, i64), rows: &[EventRecord]) -> Option<ChainReport> {
    for e in rows {
        if e.id != state.1 {
            let reason = if e.id > state.1 {
                format!("row {} is missing before this one", state.1)
            } else {
                "row id out of sequence".to_string()
            };
            return Some(ChainReport::Broken { id: e.id, reason });
        }
        if e.prev_hash != state.0 {
            return Some(ChainReport::Broken {
                id: e.id,
                reason: "link to the previous row does not match".into(),
            });
        }
        if row_hash(&e.prev_hash, e) != e.hash {
            return Some(ChainReport::Broken {
                id: e.id,
                reason: "content does not match its hash".into(),
            });
        }
        state.0 = e.hash.clone();
        state.1 += 1;
    }
    None
}
