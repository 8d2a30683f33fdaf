//! Test support shared by the integration suites: a real SMTP server speaking SMTP over TCP
//! (with injectable faults), fresh databases, and a Back Office served on port 0.

pub mod db;
pub mod smtp;
pub mod spawn;

pub use spawn::Page;

pub use smtp::{SmtpMode, SmtpServer, TestCa};
pub use spawn::{Browser, Options, TestApp, TestClock};
