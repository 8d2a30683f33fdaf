//! `backoffice`: the Back Office of a copy-trading platform, in one binary.

mod cli;
mod config;
mod serve;
mod telemetry;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
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
