//! Forgotten-password links.

use super::{BackendStore, Db};

#[async_trait::async_trait]
impl crate::ResetStore for BackendStore {
    async fn record_reset_request(
        &self,
        user_id: Option<i64>,
        ip: Option<&str>,
        at: domain::Timestamp,
    ) -> crate::Result<()> {
        sqlx::query("INSERT INTO password_reset_requests (user_id, ip, at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(ip)
            .bind(at.millis())
            .execute(&self.pool)
            .await
            .map_err(crate::map_err)?;
        Ok(())
    }

    async fn reset_requests_since(
        &self,
        user_id: Option<i64>,
        ip: Option<&str>,
        since: domain::Timestamp,
    ) -> crate::Result<(i64, i64)> {
        use sqlx::Row;
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM password_reset_requests WHERE user_id = $1 AND at > $3), \
               (SELECT COUNT(*) FROM password_reset_requests WHERE ip = $2 AND at > $3)",
        )
        .bind(user_id)
        .bind(ip)
        .bind(since.millis())
        .fetch_one(&self.pool)
        .await
        .map_err(crate::map_err)?;
        Ok((
            row.try_get(0).map_err(crate::map_err)?,
            row.try_get(1).map_err(crate::map_err)?,
        ))
    }

    async fn put_reset(&self, r: &crate::ResetRecord) -> crate::Result<()> {
        sqlx::query(
            "INSERT INTO password_resets (user_id, token_hash, password_fingerprint, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id) DO UPDATE SET token_hash = excluded.token_hash, \
             password_fingerprint = excluded.password_fingerprint, \
             created_at = excluded.created_at, expires_at = excluded.expires_at",
        )
        .bind(r.user_id)
        .bind(&r.token_hash)
        .bind(&r.password_fingerprint)
        .bind(r.created_at.millis())
        .bind(r.expires_at.millis())
        .execute(&self.pool)
        .await
        .map_err(crate::map_err)?;
        Ok(())
    }

    async fn reset_by_token(&self, token_hash: &str) -> crate::Result<Option<crate::ResetRecord>> {
        let row = sqlx::query(
            "SELECT user_id, token_hash, password_fingerprint, created_at, expires_at \
             FROM password_resets WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(crate::map_err)?;
        row.as_ref().map(reset_row).transpose()
    }

    async fn take_reset(&self, token_hash: &str) -> crate::Result<Option<crate::ResetRecord>> {
        let row = sqlx::query(
            "DELETE FROM password_resets WHERE token_hash = $1 \
             RETURNING user_id, token_hash, password_fingerprint, created_at, expires_at",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(crate::map_err)?;
        row.as_ref().map(reset_row).transpose()
    }

    async fn purge_reset_requests(&self, before: domain::Timestamp) -> crate::Result<u64> {
        let requests = sqlx::query("DELETE FROM password_reset_requests WHERE at <= $1")
            .bind(before.millis())
            .execute(&self.pool)
            .await
            .map_err(crate::map_err)?;
        let links = sqlx::query("DELETE FROM password_resets WHERE expires_at <= $1")
            .bind(before.millis())
            .execute(&self.pool)
            .await
            .map_err(crate::map_err)?;
        Ok(requests.rows_affected() + links.rows_affected())
    }
}

pub(super) fn reset_row(r: &<Db as sqlx::Database>::Row) -> crate::Result<crate::ResetRecord> {
    use sqlx::Row;
    let g = |e: sqlx::Error| crate::map_err(e);
    Ok(crate::ResetRecord {
        user_id: r.try_get("user_id").map_err(g)?,
        token_hash: r.try_get("token_hash").map_err(g)?,
        password_fingerprint: r.try_get("password_fingerprint").map_err(g)?,
        created_at: domain::Timestamp(r.try_get("created_at").map_err(g)?),
        expires_at: domain::Timestamp(r.try_get("expires_at").map_err(g)?),
    })
}
