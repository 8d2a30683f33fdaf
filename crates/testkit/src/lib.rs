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
