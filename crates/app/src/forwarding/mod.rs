//! Forwarding the event log to a SIEM: to syslog (`BACKOFFICE_EVENTS_SYSLOG_URL`) and/or a
//! webhook (`BACKOFFICE_EVENTS_WEBHOOK_URL`).
//!
//! Delivery is at least once and in chain order: each destination has a cursor in the database
//! (the last event it acknowledged), so a restart or an outage of either side resumes where it
//! stopped; a failed batch is sent again whole, after a pause that doubles up to a minute. With
//! several instances, a lease in the database lets one forward to a destination at a time.
//! Every event carries its id, so a receiver can drop the duplicates that at-least-once implies
//! and see a gap, and its chain hashes to check the chain. What leaves is the event as stored
//! (the SIEM is trusted like the database), unless `BACKOFFICE_EVENTS_MASK_PERSONAL` masks
//! client personal data in it, by the rules the Event log page uses for a viewer with Mask data
//! on; a masked event leaves without its hashes, which are made over the unmasked row: with the
//! rest of the row in the clear, a guessed name could be checked against them.

pub mod syslog;
pub mod webhook;

use crate::{App, AppError};
use async_trait::async_trait;
use domain::{Action, Section, Timestamp};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use store::EventRecord;

/// How long an instance holds a destination without renewing (it renews at every batch).
const LEASE_SECS: i64 = 30;
/// Events per delivery.
const BATCH: i64 = 200;
/// How often an idle forwarder looks for new events.
const POLL: Duration = Duration::from_secs(1);
/// The longest a delivery may take before it counts as failed (well inside the lease).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The operator's forwarding settings.
#[derive(Debug, Default)]
pub struct Forwarding {
    pub syslog: Option<syslog::SyslogTarget>,
    pub webhook: Option<webhook::WebhookTarget>,
    /// Mask client personal data in what leaves.
    pub mask_personal: bool,
}

/// A destination: delivers a batch of events (as JSON) or says why not.
#[async_trait]
pub trait Destination: Send {
    /// The destination's name in the database and on System › Settings: its kind and address
    /// (nothing secret), so a destination pointed elsewhere starts a cursor of its own.
    fn sink(&self) -> String;
    async fn deliver(&mut self, events: &[serde_json::Value]) -> Result<(), String>;
}

/// What a destination receives for one event: the stored row, with its id and (unless masked)
/// its chain hashes.
pub fn event_json(r: &EventRecord, mask_personal: bool) -> serde_json::Value {
    let masked = crate::events::view(r.clone(), true);
    let details = if mask_personal {
        serde_json::to_value(&masked.details).unwrap_or_default()
    } else {
        serde_json::from_str(&r.details)
            .unwrap_or_else(|_| serde_json::Value::String(r.details.clone()))
    };
    let mut json = serde_json::json!({
        "id": r.id,
        "at": r.at.iso(),
        "actor_id": r.actor_id,
        "actor_email": r.actor_email,
        "actor_groups": r.actor_groups,
        "category": r.category,
        "action": r.action,
        "event": r.event,
        "target_type": r.target_type,
        "target_id": r.target_id,
        "target_label": if mask_personal { masked.target_label } else { r.target_label.clone() },
        "details": details,
        "ip": r.ip,
    });
    if !mask_personal {
        json["prev_hash"] = r.prev_hash.clone().into();
        json["hash"] = r.hash.clone().into();
    }
    json
}

/// Where a destination stands, as System › Settings shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ForwardingStatus {
    pub sink: String,
    /// Events written but not yet acknowledged by the destination.
    pub behind: i64,
    pub delivered_at: Option<String>,
    pub failures: i64,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

impl App {
    /// Starts one forwarder per configured destination, for the life of the process.
    pub fn start_forwarding(self: &Arc<Self>, f: Forwarding) {
        let owner = format!("{:016x}", rand::random::<u64>());
        let destinations: Vec<Box<dyn Destination>> = [
            f.syslog.map(|d| Box::new(d) as Box<dyn Destination>),
            f.webhook.map(|d| Box::new(d) as Box<dyn Destination>),
        ]
        .into_iter()
        .flatten()
        .collect();
        for d in destinations {
            tokio::spawn(forward(self.clone(), d, f.mask_personal, owner.clone()));
        }
    }

    /// The destinations forwarded to so far and how far behind each is (Settings › View).
    pub async fn forwarding_status(
        &self,
        actor: &crate::Actor,
    ) -> Result<Vec<ForwardingStatus>, AppError> {
        actor.require(Section::Settings, Action::View)?;
        let (head, _) = self.store.chain_head().await?;
        Ok(self
            .store
            .forwarding_states()
            .await?
            .into_iter()
            .map(|s| ForwardingStatus {
                behind: (head - s.cursor).max(0),
                delivered_at: s.delivered_at.map(Timestamp::iso),
                last_error_at: s.last_error_at.map(Timestamp::iso),
                sink: s.sink,
                failures: s.failures,
                last_error: s.last_error,
            })
            .collect())
    }
}

/// What one round of a forwarder did.
enum Round {
    /// A batch went out and the cursor moved past it.
    Sent,
    /// Nothing new to send.
    Idle,
    /// Another instance holds the destination.
    HeldElsewhere,
}

/// One destination's loop: rounds, with a pause after a failure that doubles up to a minute.
async fn forward(app: Arc<App>, mut dest: Box<dyn Destination>, mask: bool, owner: String) {
    let sink = dest.sink();
    let mut backoff = BACKOFF_FIRST;
    loop {
        match round(&app, dest.as_mut(), &sink, mask, &owner).await {
            Ok(Round::Sent) => backoff = BACKOFF_FIRST,
            Ok(Round::Idle) => {
                backoff = BACKOFF_FIRST;
                tokio::time::sleep(POLL).await;
            }
            // Look again before its lease could run out.
            Ok(Round::HeldElsewhere) => {
                tokio::time::sleep(Duration::from_secs(LEASE_SECS as u64 / 3)).await;
            }
            Err(error) => {
                // Counted before the database records it, so a scrape that sees the shared
                // count of failures also sees this instance's. (The record is kept only while
                // this instance holds the lease.)
                crate::metrics::forwarding_failed(&sink);
                let _ = app
                    .store
                    .forwarding_failed(&sink, &owner, &error, app.now())
                    .await;
                tracing::warn!(%sink, %error, retry_in = ?backoff, "event forwarding failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Takes (or renews) the lease, sends what follows the cursor, moves the cursor. The lease is
/// renewed right before the send, which is cut off well inside it ([`DELIVERY_TIMEOUT`]), so
/// two instances don't send at once; the cursor moves only while this instance still holds it.
async fn round(
    app: &App,
    dest: &mut dyn Destination,
    sink: &str,
    mask: bool,
    owner: &str,
) -> Result<Round, String> {
    let database = |e: store::StoreError| format!("database: {e}");
    let lease = || async {
        let now = app.now();
        app.store
            .take_forwarding_lease(sink, owner, now, now.plus_secs(LEASE_SECS), 0)
            .await
            .map_err(database)
    };
    let Some(cursor) = lease().await? else {
        return Ok(Round::HeldElsewhere);
    };
    let events = app
        .store
        .all_events(cursor, BATCH)
        .await
        .map_err(database)?;
    let Some(last) = events.last().map(|e| e.id) else {
        return Ok(Round::Idle);
    };
    if lease().await?.is_none() {
        return Ok(Round::HeldElsewhere);
    }
    let payload: Vec<_> = events.iter().map(|e| event_json(e, mask)).collect();
    let sent = tokio::time::timeout(DELIVERY_TIMEOUT, dest.deliver(&payload))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {DELIVERY_TIMEOUT:?}")));
    sent?;
    // Sent: if the cursor can't be saved (or the lease ran out meanwhile) the batch goes again
    // (at least once), from this instance or the one that took over.
    let moved = app
        .store
        .forwarding_delivered(sink, owner, last, app.now())
        .await
        .map_err(|e| format!("sent up to event {last}, but the cursor was not saved: {e}"))?;
    if !moved {
        return Err(format!(
            "sent up to event {last}, but the lease ran out meanwhile; sent again"
        ));
    }
    tracing::debug!(sink, up_to = last, "events forwarded");
    Ok(Round::Sent)
}

/// Parses `host:port` of a destination URL (IPv6 in brackets).
fn host_port(rest: &str, setting: &str) -> Result<(String, u16), String> {
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| format!("{setting}: {rest:?} has no port (host:port)"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{setting}: {port:?} is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{setting}: no host"));
    }
    Ok((host.to_string(), port))
}

/// The TLS client settings for a destination: the public roots, and the operator's own CA
/// (`BACKOFFICE_EVENTS_CA_FILE`) when given.
pub fn tls_config(extra_roots_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_roots_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("not a PEM certificate file: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("a certificate can't be used: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("the file holds no certificate".into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> EventRecord {
        EventRecord {
            id: 7,
            at: Timestamp(1_700_000_000_000),
            actor_id: Some(1),
            actor_email: Some("admin@example.com".into()),
            actor_groups: "Administrators".into(),
            category: "CLIENTS".into(),
            action: "UPDATE".into(),
            event: "Changed client".into(),
            target_type: Some("client".into()),
            target_id: Some(3),
            target_label: Some("Joanna Smith".into()),
            details: r#"[{"field":"email","before":"jo@example.com","after":"js@example.org","personal":"email"},{"field":"country","before":"GB","after":"DE","personal":false}]"#.into(),
            ip: Some("203.0.113.9".into()),
            prev_hash: "aa".into(),
            hash: "bb".into(),
        }
    }

    #[test]
    fn the_event_leaves_as_stored_or_with_client_personal_data_masked() {
        let plain = event_json(&record(), false);
        assert_eq!(
            (plain["id"].as_i64(), plain["hash"].as_str()),
            (Some(7), Some("bb"))
        );
        assert_eq!(plain["prev_hash"], "aa");
        assert_eq!(plain["details"][0]["after"], "js@example.org");
        assert_eq!(plain["details"][0]["personal"], "email", "as stored");
        assert_eq!(plain["target_label"], "Joanna Smith");
        let masked = event_json(&record(), true);
        let text = masked.to_string();
        assert!(
            !text.contains("js@example.org") && !text.contains("Joanna Smith"),
            "{text}"
        );
        assert_eq!(masked["details"][1]["after"], "DE", "other fields stay");
        // The hashes are of the unmasked row: a guessed name could be checked against them.
        assert!(masked.get("hash").is_none() && masked.get("prev_hash").is_none());
        assert_eq!(masked["id"], 7);
    }

    #[test]
    fn destination_addresses_need_a_host_and_a_port() {
        assert_eq!(
            host_port("siem.example.com:6514", "S").unwrap(),
            ("siem.example.com".into(), 6514)
        );
        assert_eq!(host_port("[::1]:514", "S").unwrap(), ("::1".into(), 514));
        for bad in ["siem.example.com", ":514", "h:0", "h:x"] {
            assert!(host_port(bad, "S").is_err(), "{bad}");
        }
    }
}
