//! Each staff member's own interface settings.

use super::BackendStore;
use crate::*;
use async_trait::async_trait;

#[async_trait]
impl PreferenceStore for BackendStore {
    async fn preference(&self, user_id: i64, name: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM user_preferences WHERE user_id = $1 AND name = $2")
            .bind(user_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn set_preference(&self, user_id: i64, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_preferences (user_id, name, value) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, name) DO UPDATE SET value = excluded.value",
        )
        .bind(user_id)
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
