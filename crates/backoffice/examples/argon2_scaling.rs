//! How argon2 alone, with no server, scales from one core to all of them: the sign-in target
//! assumes all cores together verify `cores ÷ one verification` per second, and this shows how
//! much of that the machine gives. Each round measures one core, then all cores, then one core
//! again, so a drift of the host's speed hits both sides; the median share of rounds is printed.
//!
//! It runs three memory sizes with passes chosen for a similar time per hash: one that fits a
//! core's own cache, one whose copies fit the shared cache together, and the configured cost
//! (19 MiB: two copies overflow a 32 MiB shared cache). If only the large ones fall short, the
//! loss is the cores competing for cache and memory, not the scheduler or the hashing code.
//!
//! `cargo run --release --example argon2_scaling -- [ROUNDS]`

use app::hashing::params;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::Barrier;
use std::time::Instant;

/// Hashes per second with `threads` threads hashing `n` times each, every thread in its own
/// work memory, written once before the clock starts.
fn rate(threads: usize, params: &Params, n: usize) -> f64 {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let start = Barrier::new(threads + 1);
    let hash = |memory: &mut [Block]| {
        let mut out = [0u8; 32];
        argon2
            .hash_password_into_with_memory(
                b"Quartz-Harbour-Lantern-42",
                b"sixteen byte salt",
                &mut out,
                memory,
            )
            .expect("valid parameters");
    };
    let clock = std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut memory = vec![Block::default(); params.block_count()];
                hash(&mut memory);
                start.wait();
                (0..n).for_each(|_| hash(&mut memory));
            });
        }
        start.wait();
        // The scope joins every thread before it returns.
        Instant::now()
    });
    (threads * n) as f64 / clock.elapsed().as_secs_f64()
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
    let configured = params();
    let sizes = [
        (
            "256 KiB x 150 passes",
            Params::new(256, 150, 1, None).expect("valid"),
        ),
        (
            "4 MiB x 10 passes",
            Params::new(4096, 10, 1, None).expect("valid"),
        ),
        (
            "19 MiB x 2 passes (the configured cost)",
            Params::new(configured.m_cost(), configured.t_cost(), 1, None).expect("valid"),
        ),
    ];
    let shares: Vec<String> = sizes
        .iter()
        .map(|(name, params)| {
            let mut share: Vec<f64> = (0..rounds)
                .map(|_| {
                    let one = rate(1, params, 10);
                    let all = rate(cores, params, 10);
                    let again = rate(1, params, 10);
                    all / (cores as f64 * (one + again) / 2.0)
                })
                .collect();
            share.sort_by(f64::total_cmp);
            format!("{name}: {:.0}%", share[rounds / 2] * 100.0)
        })
        .collect();
    println!(
        "all {cores} cores against {cores} x one core (median of {rounds} rounds): {}",
        shares.join(", ")
    );
}
