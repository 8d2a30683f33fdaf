//! The connection pool, with the one figure sqlx doesn't give: how many callers are waiting for
//! a connection right now. Open and idle connections say how busy the pool is; callers queued
//! for one say it is too small (or the database too slow) before requests start failing.
//!
//! Every query and transaction of the store takes its connection through [`CountedPool`]: it is
//! the `Executor` the SQL modules pass (`&self.pool`), and its `begin`/`begin_with` shadow the
//! pool's, so no path takes a connection uncounted. A caller counts as waiting from the moment
//! it asks until it holds a connection, opening a new one included, and stops counting if it
//! gives up (the count is released on drop, so a cancelled request never leaks a waiter).

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use futures_util::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::{Database, Describe, Either, Execute, Executor, Transaction};
use std::borrow::Cow;
use std::ops::Deref;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// A sqlx pool that counts the callers waiting for one of its connections.
#[derive(Debug)]
pub struct CountedPool<DB: Database> {
    pool: sqlx::Pool<DB>,
    waiting: Arc<AtomicU32>,
}

impl<DB: Database> Clone for CountedPool<DB> {
    fn clone(&self) -> Self {
        CountedPool {
            pool: self.pool.clone(),
            waiting: self.waiting.clone(),
        }
    }
}

impl<DB: Database> From<sqlx::Pool<DB>> for CountedPool<DB> {
    fn from(pool: sqlx::Pool<DB>) -> Self {
        CountedPool {
            pool,
            waiting: Arc::default(),
        }
    }
}

/// The pool's own reads (size, idle, options, close) and the places that need the sqlx pool
/// itself (migrations, a backup). Taking a connection goes through the methods below.
impl<DB: Database> Deref for CountedPool<DB> {
    type Target = sqlx::Pool<DB>;

    fn deref(&self) -> &sqlx::Pool<DB> {
        &self.pool
    }
}

/// One caller counted as waiting while it lives.
struct Waiting(Arc<AtomicU32>);

impl Waiting {
    fn start(count: &Arc<AtomicU32>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<DB: Database> CountedPool<DB> {
    /// Callers waiting for a connection now.
    pub fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A connection, the caller counted as waiting until it has one.
    pub async fn acquire(&self) -> Result<PoolConnection<DB>, sqlx::Error> {
        let _waiting = Waiting::start(&self.waiting);
        self.pool.acquire().await
    }

    /// A connection with a transaction begun on it.
    pub async fn begin(&self) -> Result<Transaction<'static, DB>, sqlx::Error> {
        Transaction::begin(self.acquire().await?, None).await
    }

    /// A connection with a transaction begun by `statement` (SQLite's `BEGIN IMMEDIATE`).
    pub async fn begin_with(
        &self,
        statement: impl Into<Cow<'static, str>>,
    ) -> Result<Transaction<'static, DB>, sqlx::Error> {
        Transaction::begin(self.acquire().await?, Some(statement.into())).await
    }
}

/// As sqlx's `Executor for &Pool`: take a connection (counted), run the query on it, give it
/// back when the rows are read.
impl<'p, DB: Database> Executor<'p> for &'_ CountedPool<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, sqlx::Error>>
    where
        E: 'q + Execute<'q, DB>,
    {
        let pool = self.clone();
        Box::pin(async_stream::try_stream! {
            let mut conn = pool.acquire().await?;
            let mut rows = conn.fetch_many(query);
            while let Some(row) = rows.try_next().await? {
                yield row;
            }
        })
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        E: 'q + Execute<'q, DB>,
    {
        let pool = self.clone();
        Box::pin(async move { pool.acquire().await?.fetch_optional(query).await })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement<'q>, sqlx::Error>> {
        let pool = self.clone();
        Box::pin(async move { pool.acquire().await?.prepare_with(sql, parameters).await })
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>> {
        let pool = self.clone();
        Box::pin(async move { pool.acquire().await?.describe(sql).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqlitePoolOptions;
    use std::time::Duration;

    /// Callers queued behind a busy one-connection pool are counted, and uncounted once served
    /// or once they give up.
    #[tokio::test]
    async fn waiting_callers_are_counted_until_served_or_gone() {
        // As every SQLite connection of this process is opened (a test in this binary checks).
        crate::sqlite::without_memory_statistics();
        let pool: CountedPool<sqlx::Sqlite> = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap()
            .into();
        let held = pool.acquire().await.unwrap();
        assert_eq!(pool.waiting(), 0);

        let query = tokio::spawn({
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT 1")
                    .fetch_one(&pool)
                    .await
            }
        });
        let transaction = tokio::spawn({
            let pool = pool.clone();
            async move { pool.begin().await.map(drop) }
        });
        let given_up = tokio::spawn({
            let pool = pool.clone();
            async move { tokio::time::timeout(Duration::from_millis(50), pool.acquire()).await }
        });
        while pool.waiting() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(given_up.await.unwrap().is_err(), "it timed out");
        assert_eq!(pool.waiting(), 2, "the one that gave up is not counted");

        drop(held);
        assert_eq!(query.await.unwrap().unwrap(), 1);
        transaction.await.unwrap().unwrap();
        assert_eq!(pool.waiting(), 0);
    }
}
