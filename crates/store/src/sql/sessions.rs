//! Sessions and the one-time sign-in codes that belong to them.

use super::events::{append_at_head, BUMP_HEAD};
use super::{decode, BackendStore, Db, DbRow, DIALECT};
use crate::rows::SessionRow;
use crate::*;
use async_trait::async_trait;
use const_format::formatcp;
use domain::Timestamp;
use sqlx::Row;

pub(super) fn session_row(r: &DbRow) -> Result<SessionRecord> {
    decode::<SessionRow>(r)?.try_into()
}

pub(super) const SESSION_COLS: &str =
    "id_hash, key, user_id, stage, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent";

/// Binds a session's columns, in `SESSION_COLS` order, as $1 to $10.
pub(super) fn bind_session<'q>(
    q: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>,
    s: &'q SessionRecord,
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>> {
    q.bind(&s.id_hash)
        .bind(&s.key)
        .bind(s.user_id)
        .bind(s.stage.code())
        .bind(&s.csrf_token)
        .bind(s.created_at.millis())
        .bind(s.last_seen_at.millis())
        .bind(s.expires_at.millis())
        .bind(&s.ip)
        .bind(&s.user_agent)
}

#[async_trait]
impl SessionStore for BackendStore {
    async fn insert_session(&self, s: &SessionRecord) -> Result<()> {
        let sql = formatcp!("INSERT INTO sessions ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
        bind_session(sqlx::query(sql), s)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(formatcp!(
            "SELECT {SESSION_COLS} FROM sessions WHERE id_hash = $1"
        ))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(session_row).transpose()
    }

    async fn open_session(
        &self,
        replacing: Option<&str>,
        session: &SessionRecord,
        event: AuditEntry,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        if let Some(old_hash) = replacing {
            let gone = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(old_hash)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            if gone.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM sign_in_codes WHERE session_hash = $1")
                .bind(old_hash)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        const SIGNED_IN: &str = "SET failed_attempts = 0, locked_until = NULL";
        // One statement (PostgreSQL) or one call to SQLite's connection thread instead of
        // three. No session or event is written for an unknown user. On PostgreSQL each
        // part reads the one before it, so the rows are locked in the order every other
        // writer takes them (the user, then the chain head); SQLite locks the database.
        const SQL: &str = if DIALECT.data_modifying_with {
            formatcp!(
                "WITH signed_in AS (UPDATE users {SIGNED_IN}, last_sign_in_at = $6 WHERE id = $3 RETURNING id), \
                 opened AS (INSERT INTO sessions ({SESSION_COLS}) \
                 SELECT $1, $2, id, $4, $5, $6, $7, $8, $9, $10 FROM signed_in RETURNING user_id) \
                 UPDATE audit_head {BUMP_HEAD} FROM opened WHERE audit_head.id = 1 \
                 RETURNING audit_head.seq, audit_head.last_hash"
            )
        } else {
            formatcp!(
                "UPDATE users {SIGNED_IN}, last_sign_in_at = $6 WHERE id = $3; \
                 INSERT INTO sessions ({SESSION_COLS}) \
                 SELECT $1, $2, id, $4, $5, $6, $7, $8, $9, $10 FROM users WHERE id = $3; \
                 UPDATE audit_head {BUMP_HEAD} WHERE id = 1 \
                 AND EXISTS (SELECT 1 FROM sessions WHERE id_hash = $1) RETURNING seq, last_hash"
            )
        };
        let head = bind_session(sqlx::query(SQL), session)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)?;
        append_at_head(&mut tx, event, &head).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn touch_session(&self, id_hash: &str, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(now.millis())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sign_in_codes WHERE session_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_user_session(&self, user_id: i64, key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND key = $2")
            .bind(user_id)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_sessions_of_user(
        &self,
        user_id: i64,
        except_hash: Option<&str>,
    ) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id)
            .bind(except_hash.unwrap_or(""))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn sessions_of_user(&self, user_id: i64) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(formatcp!(
            "SELECT {SESSION_COLS} FROM sessions WHERE user_id = $1 AND stage = 'full' ORDER BY last_seen_at DESC"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(session_row).collect()
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now.millis())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl CodeStore for BackendStore {
    async fn put_code(&self, c: &CodeRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO sign_in_codes (session_hash, user_id, code_hash, expires_at, failures, created_at) \
             VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (session_hash) DO UPDATE SET \
             code_hash = excluded.code_hash, expires_at = excluded.expires_at, failures = 0, \
             created_at = excluded.created_at",
        )
        .bind(&c.session_hash)
        .bind(c.user_id)
        .bind(&c.code_hash)
        .bind(c.expires_at.millis())
        .bind(c.created_at.millis())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn code_for_session(&self, session_hash: &str) -> Result<Option<CodeRecord>> {
        let row = sqlx::query(
            "SELECT session_hash, user_id, code_hash, expires_at, failures, created_at \
             FROM sign_in_codes WHERE session_hash = $1",
        )
        .bind(session_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            Ok(CodeRecord {
                session_hash: r.try_get(0).map_err(map_err)?,
                user_id: r.try_get(1).map_err(map_err)?,
                code_hash: r.try_get(2).map_err(map_err)?,
                expires_at: Timestamp(r.try_get(3).map_err(map_err)?),
                failures: r.try_get(4).map_err(map_err)?,
                created_at: Timestamp(r.try_get(5).map_err(map_err)?),
            })
        })
        .transpose()
    }

    async fn code_failed(&self, session_hash: &str) -> Result<i64> {
        let n: Option<i64> = sqlx::query_scalar(
            "UPDATE sign_in_codes SET failures = failures + 1 WHERE session_hash = $1 RETURNING failures",
        )
        .bind(session_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(n.unwrap_or(i64::MAX))
    }

    async fn take_code(&self, session_hash: &str, code_hash: &str, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM sign_in_codes WHERE session_hash = $1 AND code_hash = $2 AND expires_at > $3 AND failures < 5",
        )
        .bind(session_hash)
        .bind(code_hash)
        .bind(now.millis())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_code(&self, session_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sign_in_codes WHERE session_hash = $1")
            .bind(session_hash)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn record_code_send(&self, user_id: i64, at: Timestamp) -> Result<()> {
        sqlx::query("INSERT INTO code_sends (user_id, sent_at) VALUES ($1, $2)")
            .bind(user_id)
            .bind(at.millis())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn code_sends_since(
        &self,
        user_id: i64,
        since: Timestamp,
    ) -> Result<(i64, Option<Timestamp>)> {
        let row = sqlx::query(
            "SELECT COUNT(*), MAX(sent_at) FROM code_sends WHERE user_id = $1 AND sent_at > $2",
        )
        .bind(user_id)
        .bind(since.millis())
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        let count: i64 = row.try_get(0).map_err(map_err)?;
        let last: Option<i64> = row.try_get(1).map_err(map_err)?;
        Ok((count, last.map(Timestamp)))
    }
}
