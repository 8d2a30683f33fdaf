//! SQL of the API-token store, shared by both backends like `sql.rs`.

macro_rules! impl_token_store {
    ($store:ident, $db:ty) => {
        const TOKEN_COLS: &str = "id, user_id, name, created_at, expires_at, last_used_at, revoked_at";

        fn token_row(r: &<$db as sqlx::Database>::Row) -> $crate::Result<$crate::TokenRecord> {
            use sqlx::Row;
            let g = |e: sqlx::Error| $crate::map_err(e);
            Ok($crate::TokenRecord {
                id: r.try_get("id").map_err(g)?,
                user_id: r.try_get("user_id").map_err(g)?,
                name: r.try_get("name").map_err(g)?,
                created_at: domain::Timestamp(r.try_get("created_at").map_err(g)?),
                expires_at: domain::Timestamp(r.try_get("expires_at").map_err(g)?),
                last_used_at: r.try_get::<Option<i64>, _>("last_used_at").map_err(g)?.map(domain::Timestamp),
                revoked_at: r.try_get::<Option<i64>, _>("revoked_at").map_err(g)?.map(domain::Timestamp),
            })
        }

        #[async_trait::async_trait]
        impl $crate::TokenStore for $store {
            async fn insert_token(
                &self,
                user_id: i64,
                name: &str,
                token_hash: &str,
                created_at: domain::Timestamp,
                expires_at: domain::Timestamp,
                event: $crate::AuditEntry,
            ) -> $crate::Result<i64> {
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
                .map_err($crate::map_err)?;
                append_in(&mut tx, event).await?;
                tx.commit().await.map_err($crate::map_err)?;
                Ok(id)
            }

            async fn tokens_of_user(&self, user_id: i64) -> $crate::Result<Vec<$crate::TokenRecord>> {
                let rows = sqlx::query(&format!(
                    "SELECT {TOKEN_COLS} FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id DESC"
                ))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err($crate::map_err)?;
                rows.iter().map(token_row).collect()
            }

            async fn revoke_token(
                &self,
                user_id: i64,
                id: i64,
                at: domain::Timestamp,
                event: $crate::AuditEntry,
            ) -> $crate::Result<()> {
                let mut tx = self.begin().await?;
                let done = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(user_id)
                .bind(at.millis())
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound);
                }
                append_in(&mut tx, event).await?;
                tx.commit().await.map_err($crate::map_err)
            }

            async fn touch_token(&self, id: i64, at: domain::Timestamp) -> $crate::Result<()> {
                sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(at.millis())
                    .execute(&self.pool)
                    .await
                    .map_err($crate::map_err)?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_token_store;
