//! What writing one event-log row costs: the median time of appending an event in its own
//! transaction (head-row update, insert, chain update, commit). The cost added to a change is
//! lower, since the change's transaction commits anyway. Used by `bench/run`.
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
        };
        let t = Instant::now();
        store.append_event(entry).await.expect("append");
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[n / 2];
    let p99 = times[n * 99 / 100];
    println!(
        "{} appends on {}: median {:.3} ms, p99 {:.3} ms",
        n,
        store.backend(),
        median.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}
