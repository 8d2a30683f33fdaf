//! Forwarding cursors and leases (see [`crate::ForwardingStore`]).

use super::{decode, BackendStore};
use crate::rows::ForwardingRow;
use crate::{map_err, ForwardingState, ForwardingStore, Result};
use async_trait::async_trait;
use domain::Timestamp;

#[async_trait]
impl ForwardingStore for BackendStore {
    async fn take_forwarding_lease(
        &self,
        sink: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
        start_cursor: i64,
    ) -> Result<Option<i64>> {
        sqlx::query(
            "INSERT INTO event_forwarding (sink, cursor) VALUES ($1, $2) ON CONFLICT (sink) DO NOTHING",
        )
        .bind(sink)
        .bind(start_cursor)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        // One conditional UPDATE: of two instances racing for a free lease, one gets the row.
        sqlx::query_scalar(
            "UPDATE event_forwarding SET lease_owner = $2, lease_until = $4 \
             WHERE sink = $1 AND (lease_owner = $2 OR lease_until < $3) RETURNING cursor",
        )
        .bind(sink)
        .bind(owner)
        .bind(now.millis())
        .bind(until.millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)
    }

    async fn forwarding_delivered(
        &self,
        sink: &str,
        owner: &str,
        cursor: i64,
        at: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE event_forwarding SET cursor = $3, delivered_at = $4, failures = 0, \
             last_error = NULL, last_error_at = NULL \
             WHERE sink = $1 AND lease_owner = $2 AND lease_until >= $4 AND cursor < $3",
        )
        .bind(sink)
        .bind(owner)
        .bind(cursor)
        .bind(at.millis())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn forwarding_failed(
        &self,
        sink: &str,
        owner: &str,
        error: &str,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE event_forwarding SET failures = failures + 1, last_error = $3, last_error_at = $4 \
             WHERE sink = $1 AND lease_owner = $2",
        )
        .bind(sink)
        .bind(owner)
        .bind(error)
        .bind(at.millis())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn forwarding_states(&self) -> Result<Vec<ForwardingState>> {
        let rows = sqlx::query(
            "SELECT sink, cursor, delivered_at, failures, last_error, last_error_at \
             FROM event_forwarding ORDER BY sink",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| Ok(decode::<ForwardingRow>(r)?.into()))
            .collect()
    }
}
