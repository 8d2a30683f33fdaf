//! The Back Office's integration tests, one binary with a module per area (its first lines say
//! what it covers). The shared harness is in `testkit`: the app on port 0 with a real SMTP
//! server (`spawn`), the binary as a child process (`process`), fresh databases (`db`), and the
//! steps a person takes through the pages (`pages`).
//!
//! What can't run everywhere is ignored unless asked for, with the reason: the browser tests
//! (Chromium and ChromeDriver), the scale-out tests and two-factor replay across instances
//! (PostgreSQL). `.ci/run` runs them.

mod api;
mod backups;
mod browser;
mod cli;
mod clients;
mod concurrency;
mod dashboard;
mod events;
mod exports;
mod faults;
mod forms;
mod forwarding;
mod headers;
mod ip_whitelist;
mod metrics;
mod scale_out;
mod sign_in;
mod two_factor;
mod users_groups;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_backoffice");
