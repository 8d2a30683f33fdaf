//! Fresh, isolated databases for tests: a new SQLite file, or a new PostgreSQL database on the
//! server named by `BACKOFFICE_TEST_POSTGRES_URL`.

use rand::Rng;
use sqlx::Connection;

/// Which backends to run a suite on: SQLite always, PostgreSQL when configured. When CI sets
/// `BACKOFFICE_REQUIRE_POSTGRES=1`, a missing PostgreSQL URL fails instead of skipping.
pub fn backends() -> Vec<&'static str> {
    let mut b = vec!["sqlite"];
    if std::env::var("BACKOFFICE_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
        b.push("postgres");
    } else if std::env::var("BACKOFFICE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!("BACKOFFICE_REQUIRE_POSTGRES=1 but BACKOFFICE_TEST_POSTGRES_URL is not set");
    }
    b
}

/// For a test marked as needing PostgreSQL (ignored unless asked for): fails, rather than
/// passing, when run without it.
pub fn require_postgres() {
    assert!(
        backends().contains(&"postgres"),
        "this test needs PostgreSQL: set BACKOFFICE_TEST_POSTGRES_URL"
    );
}

/// A database URL no other test uses.
pub async fn fresh(backend: &str) -> String {
    let name = format!("bo_test_{:016x}", rand::thread_rng().gen::<u64>());
    match backend {
        "sqlite" => {
            let dir = std::env::temp_dir().join("backoffice-tests");
            std::fs::create_dir_all(&dir).expect("temp dir");
            format!("sqlite://{}", dir.join(format!("{name}.db")).display())
        }
        "postgres" => {
            let admin = std::env::var("BACKOFFICE_TEST_POSTGRES_URL")
                .expect("BACKOFFICE_TEST_POSTGRES_URL");
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create database");
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            format!("{base}/{name}")
        }
        other => panic!("unknown backend {other}"),
    }
}
