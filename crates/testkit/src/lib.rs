//! Test support shared by the integration suites: a real SMTP server speaking SMTP over TCP
//! (with injectable faults), fresh databases, and a Back Office served on port 0.

pub mod db;
pub mod smtp;
pub mod spawn;

pub use spawn::Page;

pub use smtp::{SmtpMode, SmtpServer, TestCa};
pub use spawn::{Browser, Options, TestApp, TestClock};

/// The bytes of a TOTP secret shown as RFC 4648 base32 (the set-up page's "Secret key",
/// grouped by four), as an authenticator app reads it.
pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut n, mut out) = (0u64, 0, Vec::new());
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        bits = (bits << 5) | ALPHABET.find(c).expect("a base32 digit") as u64;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}
