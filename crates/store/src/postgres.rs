//! PostgreSQL backend: for production and for several instances on one database.

use crate::{map_err, Result, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool, Postgres, Transaction};
use std::str::FromStr;
use std::time::Duration;

pub struct PgStore {
    pub(crate) pool: PgPool,
}

/// VACUUM as well: it marks the freshly loaded pages all-visible, so counts and keyset pages
/// are index-only scans instead of heap visits (5 ms → 0.3 ms for a capped prefix count).
const ANALYZE_SQL: &str = "VACUUM ANALYZE";

/// Every round trip costs CPU on both ends, so writes that always go together are one statement
/// (a data-modifying `WITH`): an event's row and the chain head's hash; a sign-in's user row,
/// session and chain head.
const DATA_MODIFYING_WITH: bool = true;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per instance when the configuration names none: two per core. Measured on 2 cores
/// (`bench/`), 4 connections serve 10,600 API reads a second and 16 only 8,400: the database
/// shares the cores, and more connections than it can run at once only add switching.
pub fn default_max_connections() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    (2 * cores).max(4)
}

/// A pooled connection used this recently is handed out without a liveness check. sqlx checks
/// every connection when it is returned, and by default again when it is taken: a round trip
/// each, on top of the query's own. Busy connections skip the second check (as HikariCP does for
/// 500 ms); one that sat idle longer, and may have been cut meanwhile, is still checked.
const TRUST_RECENTLY_USED: Duration = Duration::from_millis(500);

/// Connects with a bounded retry, so a database that is still starting is waited for, and one
/// that is unreachable ends start-up with a clear error instead of hanging.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgStore> {
    let options = PgConnectOptions::from_str(url).map_err(map_err)?;
    let mut last = None;
    for attempt in 0..5u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
        match PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                // A failed check discards the connection; the pool takes or opens another.
                Box::pin(async move {
                    Ok(meta.idle_for <= TRUST_RECENTLY_USED || conn.ping().await.is_ok())
                })
            })
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => return Ok(PgStore { pool }),
            Err(e) => {
                tracing::warn!(attempt, error = %e, "PostgreSQL not reachable yet");
                last = Some(e);
            }
        }
    }
    Err(StoreError::Unavailable(
        last.map(|e| e.to_string()).unwrap_or_default(),
    ))
}

impl PgStore {
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(map_err)
    }
}

crate::sql::impl_store!(PgStore, Postgres, "postgres");
crate::sql_tokens::impl_token_store!(PgStore, Postgres);
crate::sql_clients::impl_client_store!(PgStore, Postgres);
crate::sql_authority::impl_authority_store!(PgStore, Postgres);
