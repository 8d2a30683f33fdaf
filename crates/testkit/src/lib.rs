//! Test support shared by the integration suites: a real SMTP server speaking SMTP over TCP
//! (with injectable faults), fresh databases, and a Back Office served on port 0.

pub mod db;
pub mod pages;
pub mod process;
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

/// Makes each named `async fn NAME(backend: &'static str)` of the calling module a test per
/// backend, under its own name: `sqlite::NAME`, and `postgres::NAME`, which is ignored unless
/// asked for (it needs the server named by `BACKOFFICE_TEST_POSTGRES_URL`: run
/// `cargo test -- --ignored postgres`, as `.ci/run` does).
#[macro_export]
macro_rules! on_each_backend {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name("sqlite").await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: set BACKOFFICE_TEST_POSTGRES_URL and run with --ignored"]
                async fn $name() {
                    super::$name("postgres").await
                }
            )+
        }
    };
}
