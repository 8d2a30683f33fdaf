//! PostgreSQL backend: for production and for several instances on one database.

use crate::dialect::Dialect;
use crate::pool::CountedPool;
use crate::{map_err, Result, StoreError, Workload};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool, Postgres, Transaction};
use std::str::FromStr;
use std::time::Duration;

pub struct PgStore {
    pub(crate) pool: CountedPool<Postgres>,
    options: PgConnectOptions,
}

/// What PostgreSQL does differently in the shared SQL.
pub(crate) const DIALECT: Dialect = Dialect {
    // VACUUM as well: it marks the freshly loaded pages all-visible, so counts and keyset pages
    // are index-only scans instead of heap visits (5 ms → 0.3 ms for a capped prefix count).
    analyze: "VACUUM ANALYZE",
    // Every round trip costs CPU on both ends, so writes that always go together are one
    // statement (a data-modifying `WITH`): an event's row and the chain head's hash; a
    // sign-in's user row, session and chain head.
    data_modifying_with: true,
    // The commit of a sign-in attempt's reservation (the failed-attempt counter raised before
    // a password or code is checked) does not wait for the disk. Nobody is answered on the
    // strength of that commit alone. Every outcome of the check writes again with a commit that
    // does wait (the session, the "Sign-in failed" event, or the attempt handed back), and
    // PostgreSQL flushes its log in order, so the reservation is on disk before the answer goes
    // out. Other sessions see the reservation at once either way: the setting only decides
    // whether the commit waits. A crash can lose a reservation only while its check is still
    // running. Waiting for the disk at both commits of a sign-in cost about 4% of sign-in
    // throughput (`bench/`). `set_config(…, true)` lasts until the end of the statement's own
    // transaction, so it takes no extra round trip and changes nothing for the connection's
    // next statements.
    reservation_commits_without_waiting:
        "AND set_config('synchronous_commit', 'off', true) IS NOT NULL",
    // A read-modify-write reads its row with `FOR UPDATE`: the row is locked until the commit,
    // so two edits of one row run one after the other, each reading what the other wrote.
    row_locks: true,
    // `json_agg` answers the `json` type (and NULL for no rows, which the SQL turns into `[]`).
    // A row is a text array: `json_build_array` looks up how to write each of its arguments
    // again for every row (a page of 2,000 clients took 7-10 ms of the server's time, a text
    // array 4.5-5 ms).
    json_agg: "json_agg",
    json_row: ("ARRAY[", "]"),
    json_text: "::text",
    // Deletes exactly the changes it adds (those its snapshot sees; later ones wait for the next
    // fold), and adds them in key order, so two folds at once lock the figures in the same order.
    fold_client_figures: Some(
        "WITH folded AS (DELETE FROM client_figure_changes RETURNING status, country, n) \
         INSERT INTO client_figures (status, country, n) \
         SELECT status, country, SUM(n) FROM folded GROUP BY status, country ORDER BY status, country \
         ON CONFLICT (status, country) DO UPDATE SET n = client_figures.n + EXCLUDED.n",
    ),
};

/// The shared SQL (`sql/`), compiled for PostgreSQL with the names below. Both backends
/// mount the same files on purpose: each copy is that backend's implementation.
#[allow(clippy::duplicate_mod)]
#[path = "sql/mod.rs"]
mod sql;
type Db = Postgres;
type BackendStore = PgStore;
const BACKEND_NAME: &str = "postgres";

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

/// How long taking a connection from the pool may wait, opening one included (sqlx has no
/// connect timeout of its own: this bounds the TCP connect and the start-up exchange too).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the liveness check of a connection that sat idle may take before the connection is
/// given up (dropped without a goodbye) and another one taken or opened.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Session settings sent at connection start-up, for the database server's side of each
/// connection. A network that goes silent (packets dropped, no reset) must not leave the server
/// holding a request's row locks: keepalives probe an idle connection after 5 s, every 2 s,
/// three times; `tcp_user_timeout` gives up on unacknowledged data after 10 s; a transaction
/// left idle for 30 s is ended; a statement gets 30 s (the server's side of an answer that the
/// application stopped waiting for after 5 s). Bulk loading (`demo seed`) has no statement
/// limit. The application's own waits are bounded in the web layer (`web::deadline`) and by
/// the pool's timeouts here.
fn session_settings(workload: Workload) -> Vec<(&'static str, &'static str)> {
    let mut settings = vec![
        ("tcp_keepalives_idle", "5"),
        ("tcp_keepalives_interval", "2"),
        ("tcp_keepalives_count", "3"),
        ("tcp_user_timeout", "10000"),
        ("idle_in_transaction_session_timeout", "30000"),
    ];
    if workload == Workload::Serve {
        settings.push(("statement_timeout", "30000"));
    }
    settings
}

/// Connects with a bounded retry, so a database that is still starting is waited for, and one
/// that is unreachable ends start-up with a clear error instead of hanging.
pub async fn connect(url: &str, workload: Workload, max_connections: u32) -> Result<PgStore> {
    let options = PgConnectOptions::from_str(url)
        .map_err(map_err)?
        .options(session_settings(workload));
    let mut last = None;
    for attempt in 0..5u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
        match PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                // A failed check discards the connection; the pool takes or opens another. A
                // check that gets no answer in time is an error: the connection is dropped
                // without a goodbye, which would wait on the silent network too.
                Box::pin(async move {
                    if meta.idle_for <= TRUST_RECENTLY_USED {
                        return Ok(true);
                    }
                    match tokio::time::timeout(PING_TIMEOUT, conn.ping()).await {
                        Ok(answer) => Ok(answer.is_ok()),
                        Err(_) => Err(sqlx::Error::PoolTimedOut),
                    }
                })
            })
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => {
                return Ok(PgStore {
                    pool: pool.into(),
                    options,
                })
            }
            Err(e) => {
                tracing::warn!(attempt, error = %e, "PostgreSQL not reachable yet");
                last = Some(e);
            }
        }
    }
    Err(StoreError::Unavailable(match last {
        Some(e) => e.into(),
        None => "PostgreSQL not reachable".into(),
    }))
}

impl PgStore {
    /// The pool exports read through: the serving one. PostgreSQL caches the pages in its own
    /// shared buffers, so a connection that reads a million rows grows this process by nothing
    /// but the page it holds.
    pub(crate) fn export_reads(&self) -> &CountedPool<Postgres> {
        &self.pool
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(map_err)
    }

    /// One connection without the serving statement timeout: a migration may rewrite a large
    /// table.
    async fn migration_pool(&self) -> Result<Option<PgPool>> {
        PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(self.options.clone().options([("statement_timeout", "0")]))
            .await
            .map(Some)
            .map_err(map_err)
    }

    /// A connection of its own and one round trip on it; the caller bounds the wait.
    async fn probe_outside_pool(&self) -> Result<()> {
        let mut conn = sqlx::PgConnection::connect_with(&self.options)
            .await
            .map_err(map_err)?;
        conn.ping().await.map_err(map_err)?;
        conn.close().await.map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SignInStore, UserStore};
    use domain::Timestamp;

    /// A fresh database on the test server named by `BACKOFFICE_TEST_POSTGRES_URL` (these
    /// tests are ignored unless asked for, so one is required).
    async fn fresh_store() -> PgStore {
        let admin = std::env::var("BACKOFFICE_TEST_POSTGRES_URL")
            .expect("BACKOFFICE_TEST_POSTGRES_URL names the test server");
        let name = format!("bo_test_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        // One connection, so every statement below runs on the one the reservation used.
        let store = connect(&format!("{base}/{name}"), Workload::Serve, 1)
            .await
            .unwrap();
        MIGRATOR.run(&*store.pool).await.unwrap();
        store
    }

    /// Serving connections carry the bounded waits; migrations run without a statement timeout.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: set BACKOFFICE_TEST_POSTGRES_URL and run with --ignored"]
    async fn serving_connections_bound_their_waits_and_migrations_do_not() {
        let store = fresh_store().await;
        let show = |pool: &PgPool, name: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, String>(&format!("SHOW {name}"))
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(show(&store.pool, "statement_timeout").await, "30s");
        assert_eq!(
            show(&store.pool, "idle_in_transaction_session_timeout").await,
            "30s"
        );
        assert_eq!(show(&store.pool, "tcp_keepalives_idle").await, "5");
        assert_eq!(show(&store.pool, "tcp_user_timeout").await, "10000");
        let migrations = store.migration_pool().await.unwrap().unwrap();
        assert_eq!(show(&migrations, "statement_timeout").await, "0");
    }

    /// An attempt reservation is made and counted, and its commit-without-waiting ends with its
    /// own transaction: the connection's later commits wait for the disk again.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: set BACKOFFICE_TEST_POSTGRES_URL and run with --ignored"]
    async fn an_attempt_reservation_leaves_later_commits_waiting_for_the_disk() {
        let store = fresh_store().await;
        let synchronous_commit = || async {
            sqlx::query_scalar::<_, String>("SHOW synchronous_commit")
                .fetch_one(&store.pool)
                .await
                .unwrap()
        };
        assert_eq!(synchronous_commit().await, "on");
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, email_key, name, password_hash, status, two_factor, \
             created_at, updated_at) VALUES ('a@example.com', 'a@example.com', 'A', 'x', \
             'enabled', 'disabled', 0, 0) RETURNING id",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        let now = Timestamp::now();
        let attempt = store
            .sign_in_attempt("a@example.com", "192.0.2.1", 30, now)
            .await
            .unwrap();
        assert_eq!(attempt.account.and_then(|a| a.attempt), Some(1));
        assert_eq!(synchronous_commit().await, "on");
        assert_eq!(store.reserve_attempt(id, now).await.unwrap(), Some(2));
        assert_eq!(synchronous_commit().await, "on");
        let counted: i64 = sqlx::query_scalar("SELECT failed_attempts FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(counted, 2);
    }
}
