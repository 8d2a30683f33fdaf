//! The Dashboard's grouped counts (see [`crate::DashboardStore`]).

use super::{BackendStore, Db};
use crate::{map_err, DashboardStore, Result, SignInDay, StaffFigures};
use async_trait::async_trait;
use domain::Timestamp;
use sqlx::{QueryBuilder, Row};

const DAY_MS: i64 = 86_400_000;

#[async_trait]
impl DashboardStore for BackendStore {
    async fn staff_figures(&self, now: Timestamp) -> Result<StaffFigures> {
        let rows = sqlx::query(
            "SELECT status, two_factor, COUNT(*) AS n, \
             SUM(CASE WHEN locked_until > $1 THEN 1 ELSE 0 END) AS locked \
             FROM users GROUP BY status, two_factor",
        )
        .bind(now.millis())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut f = StaffFigures::default();
        for r in rows {
            f.groups.push((
                r.try_get("status").map_err(map_err)?,
                r.try_get("two_factor").map_err(map_err)?,
                r.try_get("n").map_err(map_err)?,
            ));
            f.locked += r
                .try_get::<Option<i64>, _>("locked")
                .map_err(map_err)?
                .unwrap_or(0);
        }
        Ok(f)
    }

    async fn client_figures(&self, tags: Option<&[i64]>) -> Result<Vec<(String, String, i64)>> {
        let mut qb = QueryBuilder::<Db>::new("SELECT status, country, COUNT(*) AS n FROM clients");
        if let Some(tags) = tags {
            if tags.is_empty() {
                return Ok(Vec::new());
            }
            qb.push(" WHERE id IN (SELECT client_id FROM client_tags WHERE tag_id IN (");
            let mut list = qb.separated(", ");
            for t in tags {
                list.push_bind(*t);
            }
            qb.push("))");
        }
        qb.push(" GROUP BY status, country");
        let rows = qb.build().fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("status").map_err(map_err)?,
                    r.try_get("country").map_err(map_err)?,
                    r.try_get("n").map_err(map_err)?,
                ))
            })
            .collect()
    }

    async fn sign_ins_per_day(
        &self,
        from: Timestamp,
        ok_event: &str,
        failed_event: &str,
    ) -> Result<Vec<SignInDay>> {
        // The events' time index bounds the read to the days shown.
        let rows = sqlx::query(
            "SELECT at / $4 AS day, SUM(CASE WHEN event = $2 THEN 1 ELSE 0 END) AS ok, \
             SUM(CASE WHEN event = $3 THEN 1 ELSE 0 END) AS failed \
             FROM events WHERE at >= $1 AND event IN ($2, $3) GROUP BY at / $4 ORDER BY day",
        )
        .bind(from.millis())
        .bind(ok_event)
        .bind(failed_event)
        .bind(DAY_MS)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(SignInDay {
                    day: r.try_get("day").map_err(map_err)?,
                    ok: r
                        .try_get::<Option<i64>, _>("ok")
                        .map_err(map_err)?
                        .unwrap_or(0),
                    failed: r
                        .try_get::<Option<i64>, _>("failed")
                        .map_err(map_err)?
                        .unwrap_or(0),
                })
            })
            .collect()
    }
}
