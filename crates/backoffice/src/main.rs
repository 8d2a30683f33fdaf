//! `backoffice`: the Back Office of a copy-trading platform, in one binary.

mod cli;
mod config;
mod metrics;
mod serve;
mod telemetry;

use clap::Parser;
use std::process::ExitCode;

/// glibc's malloc raises its mmap threshold after the first large free, so argon2's 19 MiB
/// blocks would then come from (and stay in) the heap of every hashing thread. A fixed threshold
/// sends them to mmap and back to the system once the hashing pool lets them go.
/// Arenas are bounded at four per core (glibc allows eight): with only two, the async workers and
/// the SQLite connection threads queued on the arena locks and list pages lost a third of their
/// throughput (bench/RESULTS.md); more than four per core added memory and no speed.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = i32::try_from(4 * cores).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let args = cli::Cli::parse();
    let config = match config::Config::load() {
        Ok(c) => c,
        Err(e) => return cli::config_failure(&e),
    };
    telemetry::init(&config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: can't start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(cli::run(args, config))
}
