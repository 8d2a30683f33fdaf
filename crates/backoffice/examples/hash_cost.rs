//! What one password verification costs at the configured argon2 parameters: the median of N
//! sequential verifications on one core. The sign-in throughput target is derived from it
//! (cores ÷ this time). Used by `bench/run`.
//!
//! `cargo run --release --example hash_cost -- [N]`

use app::hashing::Hasher;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let hasher = Hasher::new();
    let stored = hasher.hash("Quartz-Harbour-Lantern-42").await;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        assert!(hasher.verify("Quartz-Harbour-Lantern-42", &stored).await.ok);
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "argon2id verification: median {:.2} ms over {n}",
        times[n / 2].as_secs_f64() * 1000.0
    );
}
