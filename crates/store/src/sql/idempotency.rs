//! Idempotency keys of API requests.

use super::BackendStore;
use crate::*;
use async_trait::async_trait;
use domain::Timestamp;
use sqlx::Row;

#[async_trait]
impl IdempotencyStore for BackendStore {
    async fn claim_idempotency(
        &self,
        scope: &str,
        request_hash: &str,
        now: Timestamp,
        stale_before: Timestamp,
        expired_before: Timestamp,
    ) -> Result<Claim> {
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(expired_before.millis())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        // A key whose request changed nothing and whose instance stopped answering
        // (claimed before `stale_before`) is taken over by the same request.
        let claimed: Option<String> = sqlx::query_scalar(
            "INSERT INTO idempotency_keys (scope, request_hash, created_at, claimed_at, committed) \
             VALUES ($1, $2, $3, $3, FALSE) ON CONFLICT (scope) DO UPDATE SET claimed_at = excluded.claimed_at \
             WHERE idempotency_keys.request_hash = $2 AND idempotency_keys.status IS NULL \
             AND idempotency_keys.committed = FALSE AND idempotency_keys.claimed_at < $4 RETURNING scope",
        )
        .bind(scope)
        .bind(request_hash)
        .bind(now.millis())
        .bind(stale_before.millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        if claimed.is_some() {
            return Ok(Claim::Claimed);
        }
        let row = sqlx::query(
            "SELECT request_hash, committed, status, content_type, body FROM idempotency_keys WHERE scope = $1",
        )
        .bind(scope)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        // Gone between the two statements (released, or expired): the caller may retry.
        let Some(row) = row else {
            return Ok(Claim::InProgress);
        };
        let hash: String = row.try_get(0).map_err(map_err)?;
        let committed: bool = row.try_get(1).map_err(map_err)?;
        let status: Option<i32> = row.try_get(2).map_err(map_err)?;
        Ok(if hash != request_hash {
            Claim::Mismatch
        } else if let Some(status) = status {
            Claim::Replay {
                status: u16::try_from(status).unwrap_or(500),
                content_type: row
                    .try_get::<Option<String>, _>(3)
                    .map_err(map_err)?
                    .unwrap_or_default(),
                body: row
                    .try_get::<Option<String>, _>(4)
                    .map_err(map_err)?
                    .unwrap_or_default(),
            }
        } else if committed {
            Claim::CarriedOut
        } else {
            Claim::InProgress
        })
    }

    async fn finish_idempotency(
        &self,
        scope: &str,
        status: u16,
        content_type: &str,
        body: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE idempotency_keys SET status = $2, content_type = $3, body = $4 WHERE scope = $1")
            .bind(scope)
            .bind(i32::from(status))
            .bind(content_type)
            .bind(body)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn release_idempotency(&self, scope: &str) -> Result<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND committed = FALSE AND status IS NULL")
            .bind(scope)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
