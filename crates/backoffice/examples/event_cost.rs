//! What writing one event-log row adds to a change. It times appending an event in its own
//! transaction (head-row lock, insert, chain update, commit), and a one-row change alone (an
//! UPDATE of user 1, committed the same way): a change and its event share one transaction and
//! one commit, so the event adds the difference. Used by `bench/run`.
//!
//! `cargo run --release --example event_cost -- DATABASE_URL [N]`

use domain::audit::{AuditAction, Category, Event};
use domain::Timestamp;
use std::time::Instant;
use store::AuditEntry;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: event_cost DATABASE_URL [N]");
    let n: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let store = store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let entry = AuditEntry {
            at: Timestamp::now(),
            actor_id: Some(1),
            actor_email: Some("bench@example.com".into()),
            actor_groups: "Administrators".into(),
            ip: Some("127.0.0.1".into()),
            event: Event::new(Category::Users, AuditAction::Update, "User updated")
                .target("user", 1, "bench@example.com")
                .change("name", format!("Name {i}"), format!("Name {}", i + 1)),
            idempotency: None,
        };
        let t = Instant::now();
        store.append_event(entry).await.expect("append");
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[n / 2];
    let p99 = times[n * 99 / 100];
    let mut changes = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        store.release_attempt(1).await.expect("update");
        changes.push(t.elapsed());
    }
    changes.sort();
    let change = changes[n / 2];
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "{} appends on {}: median {:.3} ms, p99 {:.3} ms; a one-row change alone: median {:.3} ms; \
         the event adds {:.3} ms",
        n,
        store.backend(),
        ms(median),
        ms(p99),
        ms(change),
        ms(median.saturating_sub(change)),
    );
}
