//! SQLite backend: the embedded default. WAL, foreign keys, a busy timeout, and every write
//! transaction started with `BEGIN IMMEDIATE` so writers queue instead of failing mid-way.

use crate::{map_err, Result, Workload};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction, TransactionManager};
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

/// Samples each index instead of reading it whole: seconds saved on a million rows, and the
/// statistics are as good for choosing an index.
const ANALYZE_SQL: &str = "PRAGMA analysis_limit = 1000; ANALYZE; PRAGMA analysis_limit = 0;";

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub async fn connect(url: &str, workload: Workload, max_connections: u32) -> Result<SqliteStore> {
    // Serving, every commit is fsynced before it is acknowledged, so an acknowledged write
    // survives a failing filesystem or power loss, not only a killed process. A bulk load
    // (demo data) takes the faster NORMAL: a crash there loses only the load being made.
    let (cache_kib, synchronous) = match workload {
        Workload::Serve => (4096, SqliteSynchronous::Full),
        Workload::BulkLoad => (65536, SqliteSynchronous::Normal),
    };
    let options = SqliteConnectOptions::from_str(url)
        .map_err(map_err)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        // Bulk inserts into the clients indexes need 64 MiB of page cache per connection (the
        // default is 2 MiB), or they spill and rewrite the same pages to the WAL many times.
        .pragma("cache_size", format!("-{cache_kib}"));
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // When a COMMIT fails on I/O (read-only or failing filesystem) SQLite has already rolled
        // back, the rollback sqlx then sends fails too, and sqlx's transaction counter stays at
        // one: that connection would refuse every later BEGIN (a 500 on every write it serves,
        // even after the disk is fixed). Such a connection is dropped here and a fresh one opened.
        .before_acquire(|conn, _| {
            Box::pin(async move {
                Ok(
                    <Sqlite as sqlx::Database>::TransactionManager::get_transaction_depth(conn)
                        == 0,
                )
            })
        })
        .connect_with(options)
        .await
        .map_err(map_err)?;
    Ok(SqliteStore { pool })
}

impl SqliteStore {
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)
    }
}

crate::sql::impl_store!(SqliteStore, Sqlite, "sqlite");
crate::sql_tokens::impl_token_store!(SqliteStore, Sqlite);
crate::sql_clients::impl_client_store!(SqliteStore, Sqlite);
crate::sql_authority::impl_authority_store!(SqliteStore, Sqlite);
