//! The Dashboard's grouped counts (see [`crate::DashboardStore`]).

use super::{decode, BackendStore, Db, DIALECT};
use crate::rows::{known, ClientGroupRow, SignInDayRow, StaffGroupRow};
use crate::{map_err, DashboardStore, Result, SignInDay, StaffFigures};
use async_trait::async_trait;
use domain::client::ClientStatus;
use domain::{Timestamp, TwoFactor, UserStatus};
use sqlx::QueryBuilder;

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
        for r in &rows {
            let g = decode::<StaffGroupRow>(r)?;
            f.locked += g.locked.unwrap_or(0);
            f.groups.push((
                known("user status", &g.status, UserStatus::from_code)?,
                known("two-factor method", &g.two_factor, TwoFactor::from_code)?,
                g.n,
            ));
        }
        Ok(f)
    }

    async fn client_figures(
        &self,
        tags: Option<&[i64]>,
    ) -> Result<Vec<(ClientStatus, String, i64)>> {
        let rows = match tags {
            // Kept by the writes (migration 0020): a few hundred rows whatever the client count.
            None => {
                if let Some(fold) = DIALECT.fold_client_figures {
                    sqlx::query(fold)
                        .execute(&self.pool)
                        .await
                        .map_err(map_err)?;
                }
                sqlx::query("SELECT status, country, n FROM client_figures WHERE n <> 0")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?
            }
            Some([]) => return Ok(Vec::new()),
            // From the tags' index alone, which carries each client's status and country: one
            // range per tag. A client carrying two of the tags is counted once.
            Some(tags) => {
                let n = if tags.len() == 1 {
                    "COUNT(*)"
                } else {
                    "COUNT(DISTINCT client_id)"
                };
                let mut qb = QueryBuilder::<Db>::new(format!(
                    "SELECT status, country, {n} AS n FROM client_tags WHERE tag_id IN ("
                ));
                let mut list = qb.separated(", ");
                for t in tags {
                    list.push_bind(*t);
                }
                qb.push(") GROUP BY status, country");
                qb.build().fetch_all(&self.pool).await.map_err(map_err)?
            }
        };
        rows.iter()
            .map(|r| {
                let g = decode::<ClientGroupRow>(r)?;
                let status = known("client status", &g.status, ClientStatus::from_code)?;
                Ok((status, g.country, g.n))
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
            .map(|r| Ok(decode::<SignInDayRow>(r)?.into()))
            .collect()
    }
}
