//! The store as a whole: health, planner statistics, migrations.

use super::{BackendStore, BACKEND_NAME, DIALECT, MIGRATOR};
use crate::*;
use async_trait::async_trait;

#[async_trait]
impl Store for BackendStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn probe(&self) -> Result<()> {
        self.probe_outside_pool().await
    }

    async fn analyze(&self) -> Result<()> {
        sqlx::raw_sql(DIALECT.analyze)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn migrate(&self) -> Result<Vec<String>> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
        // Through a pool of their own where the backend needs other settings for them
        // (no statement timeout: a migration may rewrite a large table).
        let own = self.migration_pool().await?;
        let ran = MIGRATOR.run(own.as_ref().unwrap_or(&self.pool)).await;
        if let Some(pool) = own {
            pool.close().await;
        }
        ran.map_err(|e| StoreError::Other(e.into()))?;
        Ok(MIGRATOR
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .map(|m| format!("{} {}", m.version, m.description))
            .collect())
    }

    fn backend(&self) -> &'static str {
        BACKEND_NAME
    }

    fn pool_status(&self) -> PoolStatus {
        PoolStatus {
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.pool.options().get_max_connections(),
            waiting: self.pool.waiting(),
        }
    }
}
