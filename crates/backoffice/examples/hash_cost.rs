//! What one password verification costs at the configured argon2 parameters, measured with the
//! argon2 crate's own `verify_password` (fresh memory each time): the median of N sequential
//! verifications on one core. The sign-in throughput target is derived from it (cores ÷ this
//! time). Used by `bench/run`.
//!
//! It also prints what the machine can do with every core verifying at once, with the crate's
//! own verification and with the server's pooled-memory `Hasher`: a ceiling to compare the
//! sign-in scenario with.
//!
//! `cargo run --release --example hash_cost -- [N]`

use app::hashing::{params, Hasher};
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::{Algorithm, Argon2, Version};
use std::time::{Duration, Instant};

const PASSWORD: &str = "Quartz-Harbour-Lantern-42";

fn standard_verify(stored: &str) {
    let parsed = PasswordHash::new(stored).expect("a PHC string");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
        .verify_password(PASSWORD.as_bytes(), &parsed)
        .expect("the password matches");
}

/// Verifications per second with `threads` threads verifying `n` times each.
fn parallel(threads: usize, n: usize, verify: impl Fn() + Sync) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| (0..n).for_each(|_| verify()));
        }
    });
    (threads * n) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
    let hasher = Hasher::new();
    let stored = hasher.hash(PASSWORD).await;

    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            standard_verify(&stored);
            t.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "argon2id verification: median {:.2} ms over {n}",
        times[n / 2].as_secs_f64() * 1000.0
    );

    let crate_rate = parallel(cores, n, || standard_verify(&stored));
    let runtime = tokio::runtime::Handle::current();
    let pooled_rate = tokio::task::block_in_place(|| {
        parallel(cores, n, || {
            assert!(runtime.block_on(hasher.verify(PASSWORD, &stored)).ok);
        })
    });
    println!(
        "all {cores} cores at once: {crate_rate:.1}/s with the crate's verify, \
         {pooled_rate:.1}/s with the server's pooled Hasher"
    );
}
