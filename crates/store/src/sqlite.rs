//! SQLite backend: the embedded default. WAL, foreign keys, a busy timeout, and every write
//! transaction started with `BEGIN IMMEDIATE` so writers queue instead of failing mid-way.

use crate::dialect::Dialect;
use crate::pool::CountedPool;
use crate::{map_err, Result, Workload};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction, TransactionManager};
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    pub(crate) pool: CountedPool<Sqlite>,
    /// The connections exports read through (see [`SqliteStore::export_reads`]); callers
    /// waiting for them are not in the pool metric, which is the serving pool's.
    export_pool: CountedPool<Sqlite>,
}

/// Page cache of each export connection: an export reads every row once, in order, so a cache
/// holds little that is read again (the operating system caches the file).
const EXPORT_CACHE_KIB: u32 = 1024;

/// Export connections: exports beyond this many wait for one between pages.
const EXPORT_CONNECTIONS: u32 = 2;

/// An export connection that has been idle this long is closed, and its cache freed.
const EXPORT_IDLE: Duration = Duration::from_secs(30);

/// What SQLite does differently in the shared SQL.
pub(crate) const DIALECT: Dialect = Dialect {
    // Samples each index instead of reading it whole: seconds saved on a million rows, and the
    // statistics are as good for choosing an index.
    analyze: "PRAGMA analysis_limit = 1000; ANALYZE; PRAGMA analysis_limit = 0;",
    // SQLite has no data-modifying `WITH`, and its statements cost no network round trip: the
    // statements that go together are sent in one call to the connection's thread.
    data_modifying_with: false,
    // SQLite's durability setting belongs to the connection, not to one transaction, so a
    // sign-in attempt's reservation is committed like every other write (see the PostgreSQL
    // backend).
    reservation_commits_without_waiting: "",
    // SQLite has no row locks: a write transaction (`BEGIN IMMEDIATE`) excludes every other
    // writer from its start, so a row read in it can't change before the commit.
    row_locks: false,
    // SQLite's JSON functions (built in since 3.38) make JSON text.
    json_agg: "json_group_array",
    json_row: ("json_array(", ")"),
    json_text: "",
    // The triggers add to the figures in the writing transaction (one writer at a time).
    fold_client_figures: None,
};

/// The shared SQL (`sql/`), compiled for SQLite with the names below. Both backends
/// mount the same files on purpose: each copy is that backend's implementation.
#[allow(clippy::duplicate_mod)]
#[path = "sql/mod.rs"]
mod sql;
type Db = Sqlite;
type BackendStore = SqliteStore;
const BACKEND_NAME: &str = "sqlite";

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Turns off SQLite's memory statistics, which SQLite's own compile-time advice recommends. With
/// them on, every allocation SQLite makes takes one process-wide mutex to count itself, and the
/// pooled connections' worker threads queued on it: measured on the event log's first page, 1,500
/// pages a second with them and 2,500 without (`bench/`). Nothing here reads the statistics.
/// It must come before SQLite initialises, so before the first connection is opened.
pub(crate) fn without_memory_statistics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config may only run while no other SQLite call does; every connection
        // is opened after this, and `Once` makes concurrent callers wait for it.
        let rc = unsafe {
            libsqlite3_sys::sqlite3_config(
                libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS,
                0 as std::ffi::c_int,
            )
        };
        if rc != libsqlite3_sys::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was initialised already: memory statistics stay on"
            );
        }
    });
}

pub async fn connect(url: &str, workload: Workload, max_connections: u32) -> Result<SqliteStore> {
    without_memory_statistics();
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
        // An embedded database has no link that can be cut while a connection sits in the pool;
        // sqlx's check before each use would only be a round trip to the connection's worker
        // thread (it still checks each connection when it is returned).
        .test_before_acquire(false)
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
        .connect_with(options.clone())
        .await
        .map_err(map_err)?;
    let pool = CountedPool::from(pool);
    // An in-memory database is the pool's own (another pool would open another one); a bulk
    // load exports nothing.
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let export_pool = if in_memory || workload == Workload::BulkLoad {
        pool.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(EXPORT_CONNECTIONS)
            .min_connections(0)
            .idle_timeout(EXPORT_IDLE)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .connect_lazy_with(options.pragma("cache_size", format!("-{EXPORT_CACHE_KIB}")))
            .into()
    };
    Ok(SqliteStore { pool, export_pool })
}

/// A database file opened read-only, as it is: not created, its journal mode not set (a copy
/// made by `backup` reads the same in either mode).
pub async fn connect_read_only(url: &str) -> Result<SqliteStore> {
    without_memory_statistics();
    let options = SqliteConnectOptions::from_str(url)
        .map_err(map_err)?
        .read_only(true)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(map_err)?;
    let pool = CountedPool::from(pool);
    Ok(SqliteStore {
        export_pool: pool.clone(),
        pool,
    })
}

impl SqliteStore {
    /// Migrations run on the serving pool.
    async fn migration_pool(&self) -> Result<Option<SqlitePool>> {
        Ok(None)
    }

    /// A file on this machine can't go silent like a network: every wait on it is bounded by
    /// the busy timeout and the pool's acquire timeout, so a slow SQLite request is only busy.
    async fn probe_outside_pool(&self) -> Result<()> {
        Ok(())
    }

    /// The pool exports read through: a few connections of their own, opened when an export
    /// starts, with a small page cache (1 MiB). Through the serving pool, an export of a
    /// million clients filled the 4 MiB cache of every serving connection it happened to take
    /// (+36.8 MiB of resident memory, `bench/export.md`); here it fills at most these.
    pub(crate) fn export_reads(&self) -> &CountedPool<Sqlite> {
        &self.export_pool
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    use super::sql::clients::{client_list_query, CLIENT_COLS};
    use super::*;
    use crate::{ClientFilter, ClientQuery, ClientSearch, ClientSort};
    use domain::client::{ClientRole, ClientStatus};
    use domain::ClientScope;
    use sqlx::Row;

    /// The query plan of one page of the client list, one line per step.
    async fn plan(store: &SqliteStore, scope: &ClientScope, q: &ClientQuery) -> Vec<String> {
        let rows = client_list_query(
            &format!("EXPLAIN QUERY PLAN SELECT {CLIENT_COLS}"),
            scope,
            q,
        )
        .build()
        .fetch_all(&store.pool)
        .await
        .unwrap();
        rows.iter().map(|r| r.get::<String, _>("detail")).collect()
    }

    /// A one-connection in-memory store with the schema in place.
    async fn migrated_memory_store() -> SqliteStore {
        let store = connect("sqlite::memory:", Workload::Serve, 1)
            .await
            .unwrap();
        MIGRATOR.run(&*store.pool).await.unwrap();
        store
    }

    /// SQLite counts none of its allocations (so none takes its process-wide statistics mutex):
    /// with the statistics on, an open connection with a migrated schema counts as memory used.
    #[tokio::test]
    async fn sqlite_keeps_no_memory_statistics() {
        let _open = migrated_memory_store().await;
        // SAFETY: sqlite3_memory_used only reads a counter.
        assert_eq!(unsafe { libsqlite3_sys::sqlite3_memory_used() }, 0);
    }

    /// Every search, filter and sort the list offers is an index range or an index-ordered
    /// scan; only a name search (first-and-last or last-name prefix: two indexes at once) in a
    /// non-name order sorts its matches. A tag filter adds one primary-key probe of `client_tags`
    /// per client looked at, never a scan of it; a scope is checked on the client's row.
    #[tokio::test]
    async fn every_offered_search_filter_and_sort_is_served_by_an_index() {
        let store = migrated_memory_store().await;
        // Plans depend on statistics: give the planner a table of 5,000 varied clients.
        sqlx::raw_sql(
            "INSERT INTO clients (first_name, last_name, name_key, last_key, email, email_key, phone, \
             country, city, role, status, language, registered_at, updated_at) \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
             SELECT 'F' || i, 'L' || i, 'f' || i || ' l' || i, 'l' || i, 'e' || i || '@x.com', \
             'e' || i || '@x.com', '+44' || (1000000 + i), \
             CASE i % 5 WHEN 0 THEN 'GB' WHEN 1 THEN 'DE' WHEN 2 THEN 'FR' WHEN 3 THEN 'ES' ELSE 'IT' END, \
             '', CASE i % 3 WHEN 0 THEN 'investor' WHEN 1 THEN 'strategy_provider' ELSE 'both' END, \
             CASE WHEN i % 20 = 0 THEN 'blocked' ELSE 'active' END, 'en', i * 1000, i * 1000 FROM n; \
             ANALYZE;",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let search = |s: ClientSearch| ClientFilter {
            search: Some(s),
            ..Default::default()
        };
        let cases: Vec<(&str, ClientFilter, ClientSort, &str, bool)> = vec![
            (
                "list",
                ClientFilter::default(),
                ClientSort::Id,
                "clients",
                false,
            ),
            (
                "by name",
                ClientFilter::default(),
                ClientSort::Name,
                "USING INDEX clients_name",
                false,
            ),
            (
                "by email",
                ClientFilter::default(),
                ClientSort::Email,
                // The unique index, or the one that also carries the scope (migration 0014).
                "INDEX sqlite_autoindex_clients_1|INDEX clients_email_scope",
                false,
            ),
            (
                "by date",
                ClientFilter::default(),
                ClientSort::Registered,
                "USING INDEX clients_registered",
                false,
            ),
            (
                "id",
                search(ClientSearch::Id(7)),
                ClientSort::Id,
                "USING INTEGER PRIMARY KEY",
                false,
            ),
            (
                "email",
                search(ClientSearch::Email("e12".into())),
                ClientSort::Email,
                // The email index's range, or (scoped) each scope tag's range of the tags' one.
                "email_key>? AND email_key<?)",
                false,
            ),
            (
                "phone",
                search(ClientSearch::Phone("+4410001".into())),
                ClientSort::Id,
                "clients_phone (phone>? AND phone<?)",
                true,
            ),
            (
                "name",
                search(ClientSearch::Name("f12".into())),
                ClientSort::Id,
                "clients_last (last_key>? AND last_key<?)",
                true,
            ),
            (
                "country",
                ClientFilter {
                    country: Some("GB".into()),
                    ..Default::default()
                },
                ClientSort::Id,
                "clients_country (country=?)",
                false,
            ),
            (
                "role",
                ClientFilter {
                    role: Some(ClientRole::Investor),
                    ..Default::default()
                },
                ClientSort::Id,
                "clients_role (role=?)",
                false,
            ),
            (
                "status",
                ClientFilter {
                    status: Some(ClientStatus::Blocked),
                    ..Default::default()
                },
                ClientSort::Id,
                "clients_status (status=?)",
                false,
            ),
            (
                "dates",
                ClientFilter {
                    registered_from: Some(domain::Timestamp(1)),
                    ..Default::default()
                },
                ClientSort::Registered,
                "clients_registered (registered_at>?)",
                false,
            ),
        ];
        let scopes = [ClientScope::All, ClientScope::Tags([1, 2].into())];
        for ((name, filter, sort, expected, may_sort), scope) in cases
            .into_iter()
            .flat_map(|c| scopes.iter().map(move |s| (c.clone(), s)))
        {
            for after_id in [None, Some(1000)] {
                let q = ClientQuery {
                    filter: filter.clone(),
                    sort,
                    after_id,
                    limit: 26,
                    ..Default::default()
                };
                let steps = plan(&store, scope, &q).await;
                // The plain scoped list and a scoped email search read their page from the
                // tags' indexes (one range per scope tag, merged); every other scoped query
                // checks the scope on the client's row, with no lookup at all.
                let by_tags =
                    (name == "list" && filter == ClientFilter::default()) || name == "email";
                if !scope.is_all() {
                    let reads_tags = steps
                        .iter()
                        .any(|s| s.contains("client_tags") || s.contains(" st "));
                    assert_eq!(reads_tags, by_tags, "{name}, scoped: {steps:?}");
                    assert!(
                        !steps.iter().any(|s| s.starts_with("SCAN client_tags")),
                        "{name}, scoped, scans client_tags: {steps:?}"
                    );
                }
                // On later pages the planner may walk the id range instead (still an index).
                // (The scoped list's id lookup reads the same index, covering.)
                let served = expected.split('|').any(|expected| {
                    let covering = expected.replace("USING INDEX", "USING COVERING INDEX");
                    steps
                        .iter()
                        .any(|s| s.contains(expected) || s.contains(&covering))
                });
                assert!(after_id.is_some() || served, "{name}: {steps:?}");
                // A scoped list finds a page of ids first and then orders that page's rows
                // (at most 100): that sort is fine, a sort of every match is not. Read from the
                // tags' indexes, the page's ids are the merge of a page per scope tag, sorted.
                let sorts = steps
                    .iter()
                    .filter(|s| s.contains("TEMP B-TREE FOR ORDER BY"))
                    .count();
                let page_sorts = match (scope.is_all(), by_tags) {
                    (true, _) => 0,
                    (false, false) => 1,
                    (false, true) => 2,
                };
                assert!(
                    may_sort || sorts <= page_sorts,
                    "{name} sorts its matches: {steps:?}"
                );
                assert!(
                    steps.iter().all(|s| !s.starts_with("SCAN clients")
                        || s.contains("INDEX")
                        || name == "list"),
                    "{name} reads the whole table: {steps:?}"
                );
            }
        }
    }
}
