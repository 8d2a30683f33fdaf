//! API tokens.

use super::events::append_in;
use super::{decode, BackendStore, DbRow};
use crate::rows::TokenRow;
use const_format::formatcp;

pub(super) const TOKEN_COLS: &str =
    "id, user_id, name, created_at, expires_at, last_used_at, revoked_at";

pub(super) fn token_row(r: &DbRow) -> crate::Result<crate::TokenRecord> {
    Ok(decode::<TokenRow>(r)?.into())
}

#[async_trait::async_trait]
impl crate::TokenStore for BackendStore {
    async fn insert_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        created_at: domain::Timestamp,
        expires_at: domain::Timestamp,
        event: crate::AuditEntry,
    ) -> crate::Result<i64> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(token_hash)
        .bind(created_at.millis())
        .bind(expires_at.millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(crate::map_err)?;
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(crate::map_err)?;
        Ok(id)
    }

    async fn tokens_of_user(&self, user_id: i64) -> crate::Result<Vec<crate::TokenRecord>> {
        let rows = sqlx::query(formatcp!(
            "SELECT {TOKEN_COLS} FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id DESC"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(crate::map_err)?;
        rows.iter().map(token_row).collect()
    }

    async fn revoke_token(
        &self,
        user_id: i64,
        id: i64,
        at: domain::Timestamp,
        event: crate::AuditEntry,
    ) -> crate::Result<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(user_id)
        .bind(at.millis())
        .execute(&mut *tx)
        .await
        .map_err(crate::map_err)?;
        if done.rows_affected() == 0 {
            return Err(crate::StoreError::NotFound);
        }
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(crate::map_err)
    }

    async fn touch_token(&self, id: i64, at: domain::Timestamp) -> crate::Result<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at.millis())
            .execute(&self.pool)
            .await
            .map_err(crate::map_err)?;
        Ok(())
    }
}
