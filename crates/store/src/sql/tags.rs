//! Client tags, Allowed Client Tags and bulk changes.

use super::clients::{change_client_tags_in, client_filters, client_tag_pairs_in};
use super::events::append_in;
use super::{decide, decode, lock_rows, with_target_id, BackendStore, Db, DbRow, Tx, DIALECT};
use crate::rows::BulkRow;
use crate::*;
use async_trait::async_trait;
use const_format::formatcp;
use domain::Timestamp;
use sqlx::Row;

pub(super) const BULK_COLS: &str =
    "id, user_id, request, change, upto_id, total, done, changed, cursor, state, \
    message, created_at, updated_at";

pub(super) fn bulk_row(r: &DbRow) -> Result<BulkJob> {
    decode::<BulkRow>(r)?.try_into()
}

pub(super) fn tag_refs(rows: &[DbRow]) -> Result<Vec<TagRef>> {
    rows.iter()
        .map(|r| {
            Ok(TagRef {
                id: r.try_get(0).map_err(map_err)?,
                caption: r.try_get(1).map_err(map_err)?,
            })
        })
        .collect()
}

/// Sets a user's or a group's Allowed Client Tags (`table` is one of the two scope tables,
/// `owner` its owner column), in the caller's transaction.
pub(super) async fn set_allowed_tags_in(
    tx: &mut Tx,
    table: &str,
    owner: &str,
    id: i64,
    tags: &[i64],
) -> Result<()> {
    sqlx::query(&format!("DELETE FROM {table} WHERE {owner} = $1"))
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    let mut tags = tags.to_vec();
    tags.sort_unstable();
    tags.dedup();
    if tags.is_empty() {
        return Ok(());
    }
    let mut qb = sqlx::QueryBuilder::<Db>::new(format!("INSERT INTO {table} ({owner}, tag_id) "));
    qb.push_values(&tags, |mut b, t| {
        b.push_bind(id).push_bind(*t);
    });
    qb.build().execute(&mut **tx).await.map_err(map_err)?;
    Ok(())
}

impl BackendStore {
    /// A user's own Allowed Client Tags (with captions) and where their scope comes from,
    /// in one round trip.
    pub(crate) async fn scope_of_user(&self, user_id: i64) -> Result<(Vec<TagRef>, ScopeSources)> {
        let rows = sqlx::query(
            "SELECT t.id, t.caption, 1 AS own, t.caption_key FROM user_allowed_tags a \
             JOIN tags t ON t.id = a.tag_id WHERE a.user_id = $1 \
             UNION ALL SELECT g.tag_id, '', 0, '' FROM group_allowed_tags g \
             JOIN user_groups ug ON ug.group_id = g.group_id WHERE ug.user_id = $1 \
             ORDER BY 4",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut own = Vec::new();
        let mut sources = ScopeSources::default();
        for r in &rows {
            let tag: i64 = r.try_get(0).map_err(map_err)?;
            if r.try_get::<i32, _>(2).map_err(map_err)? == 1 {
                own.push(TagRef {
                    id: tag,
                    caption: r.try_get(1).map_err(map_err)?,
                });
                sources.own.push(tag);
            } else {
                sources.groups.push(tag);
            }
        }
        Ok((own, sources))
    }

    /// The Allowed Client Tags of these users' own accounts and of these groups.
    pub(super) async fn allowed_tags_of(
        &self,
        table: &str,
        owner: &str,
        ids: &[i64],
    ) -> Result<Vec<(i64, TagRef)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new(format!(
            "SELECT a.{owner}, t.id, t.caption FROM {table} a JOIN tags t ON t.id = a.tag_id WHERE a.{owner} IN ("
        ));
        let mut sep = qb.separated(", ");
        for id in ids {
            sep.push_bind(*id);
        }
        qb.push(") ORDER BY t.caption_key");
        let rows = qb.build().fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(map_err)?,
                    TagRef {
                        id: r.try_get(1).map_err(map_err)?,
                        caption: r.try_get(2).map_err(map_err)?,
                    },
                ))
            })
            .collect()
    }
}

#[async_trait]
impl TagStore for BackendStore {
    async fn list_tags(&self) -> Result<Vec<TagRecord>> {
        let rows = sqlx::query(
            "SELECT t.id, t.caption, t.clients, t.created_at, \
             (SELECT COUNT(*) FROM user_allowed_tags u WHERE u.tag_id = t.id) \
             + (SELECT COUNT(*) FROM group_allowed_tags g WHERE g.tag_id = t.id) AS holders \
             FROM tags t ORDER BY t.caption_key",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(TagRecord {
                    id: r.try_get(0).map_err(map_err)?,
                    caption: r.try_get(1).map_err(map_err)?,
                    clients: r.try_get(2).map_err(map_err)?,
                    created_at: Timestamp(r.try_get(3).map_err(map_err)?),
                    scope_holders: r.try_get(4).map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn tag_refs(&self) -> Result<Vec<TagRef>> {
        let rows = sqlx::query("SELECT id, caption FROM tags ORDER BY caption_key")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        tag_refs(&rows)
    }

    async fn tags_by_ids(&self, ids: &[i64]) -> Result<Vec<TagRef>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new("SELECT id, caption FROM tags WHERE id IN (");
        let mut sep = qb.separated(", ");
        for id in ids {
            sep.push_bind(*id);
        }
        qb.push(") ORDER BY caption_key");
        tag_refs(&qb.build().fetch_all(&self.pool).await.map_err(map_err)?)
    }

    async fn tags_by_keys(&self, keys: &[String]) -> Result<Vec<TagRef>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb =
            sqlx::QueryBuilder::<Db>::new("SELECT id, caption FROM tags WHERE caption_key IN (");
        let mut sep = qb.separated(", ");
        for k in keys {
            sep.push_bind(k.as_str());
        }
        qb.push(") ORDER BY caption_key");
        tag_refs(&qb.build().fetch_all(&self.pool).await.map_err(map_err)?)
    }

    async fn insert_tag(&self, caption: &str, event: AuditEntry) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tags (caption, caption_key, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(caption)
        .bind(domain::tag::caption_key(caption))
        .bind(event.at.millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        append_in(&mut tx, with_target_id(event, id)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn rename_tag(
        &self,
        id: i64,
        from: &str,
        caption: &str,
        event: AuditEntry,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        // Only over the caption the event names as "before" (the UPDATE locks the row).
        let done = sqlx::query(
            "UPDATE tags SET caption = $2, caption_key = $3 WHERE id = $1 AND caption = $4",
        )
        .bind(id)
        .bind(caption)
        .bind(domain::tag::caption_key(caption))
        .bind(from)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM tags WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
            return Err(match exists {
                Some(_) => StoreError::Conflict("The tag was renamed meanwhile".into()),
                None => StoreError::NotFound,
            });
        }
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_tag(&self, id: i64, edit: Edit<'_, TagRecord, ()>) -> Result<()> {
        let mut tx = self.begin().await?;
        let sql = formatcp!(
            "SELECT id, caption, clients, created_at FROM tags WHERE id = $1{}",
            lock_rows!("tags")
        );
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)?;
        // Checked in the deleting transaction; the foreign keys refuse it anyway.
        let holders: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM user_allowed_tags WHERE tag_id = $1) \
             + (SELECT COUNT(*) FROM group_allowed_tags WHERE tag_id = $1)",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        if holders > 0 {
            return Err(StoreError::Conflict(format!(
                "The tag is in the Allowed Client Tags of {holders} user(s) or group(s); \
                 deleting it would let them see every client. Remove it there first."
            )));
        }
        let tag = TagRecord {
            id,
            caption: row.try_get(1).map_err(map_err)?,
            clients: row.try_get(2).map_err(map_err)?,
            created_at: Timestamp(row.try_get(3).map_err(map_err)?),
            scope_holders: holders,
        };
        let event = match decide(edit, &tag)? {
            Decision::Keep => return Ok(()),
            Decision::Write((), event) => event,
        };
        if DIALECT.row_locks {
            // Deleting the tag's rows rewrites each carrier's `tag_list` (migration 0014): lock
            // the carriers first, in id order, the order a bulk batch locks clients in, so that
            // the two wait for each other instead of deadlocking.
            sqlx::query(formatcp!(
                "SELECT id FROM clients WHERE id IN (SELECT client_id FROM client_tags WHERE tag_id = $1) \
                 ORDER BY id{}",
                lock_rows!("clients")
            ))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        sqlx::query("DELETE FROM client_tags WHERE tag_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let done = sqlx::query("DELETE FROM tags WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn scope_sources_of_user(&self, user_id: i64) -> Result<ScopeSources> {
        Ok(self.scope_of_user(user_id).await?.1)
    }

    async fn apply_client_batch(
        &self,
        b: Batch<'_>,
        event: BatchEvent<'_>,
    ) -> Result<BatchOutcome> {
        let mut tx = self.begin().await?;
        let mut qb = sqlx::QueryBuilder::<Db>::new("SELECT id FROM clients");
        client_filters(&mut qb, b.scope, b.filter);
        qb.push(" AND id > ");
        qb.push_bind(b.after_id);
        qb.push(" AND id <= ");
        qb.push_bind(b.upto_id);
        if !b.ids.is_empty() {
            qb.push(" AND id IN (");
            let mut sep = qb.separated(", ");
            for id in b.ids {
                sep.push_bind(*id);
            }
            qb.push(")");
        }
        qb.push(" ORDER BY id LIMIT ");
        qb.push_bind(b.limit);
        // The batch's clients stay locked until it commits, like a single edit's row, so
        // what it reads of them (status, tags) is what it writes over.
        qb.push(lock_rows!("clients"));
        let ids: Vec<i64> = qb
            .build_query_scalar()
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let mut outcome = BatchOutcome {
            matched: ids.len() as i64,
            changed: 0,
            first_id: ids.first().copied(),
            last_id: ids.last().copied(),
        };
        if ids.is_empty() {
            return Ok(outcome);
        }
        let mut changed_ids: Vec<i64> = match b.change {
            BulkChange::AssignTags(tags) => {
                let held = client_tag_pairs_in(&mut tx, &ids, Some(tags)).await?;
                let add: Vec<(i64, i64)> = ids
                    .iter()
                    .flat_map(|c| tags.iter().map(move |t| (*c, *t)))
                    .filter(|p| !held.contains(p))
                    .collect();
                change_client_tags_in(&mut tx, &add, &[]).await?;
                add.iter().map(|(c, _)| *c).collect()
            }
            BulkChange::RemoveTags(tags) => {
                let held = client_tag_pairs_in(&mut tx, &ids, Some(tags)).await?;
                change_client_tags_in(&mut tx, &[], &held).await?;
                held.iter().map(|(c, _)| *c).collect()
            }
            BulkChange::SetStatus(status) => {
                let mut qb =
                    sqlx::QueryBuilder::<Db>::new("SELECT id FROM clients WHERE status <> ");
                qb.push_bind(status.code());
                qb.push(" AND id IN (");
                let mut sep = qb.separated(", ");
                for id in &ids {
                    sep.push_bind(*id);
                }
                qb.push(")");
                let changing: Vec<i64> = qb
                    .build_query_scalar()
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if !changing.is_empty() {
                    let mut qb = sqlx::QueryBuilder::<Db>::new("UPDATE clients SET status = ");
                    qb.push_bind(status.code());
                    qb.push(" WHERE id IN (");
                    let mut sep = qb.separated(", ");
                    for id in &changing {
                        sep.push_bind(*id);
                    }
                    qb.push(")");
                    qb.build().execute(&mut *tx).await.map_err(map_err)?;
                }
                changing
            }
        };
        changed_ids.sort_unstable();
        changed_ids.dedup();
        outcome.changed = changed_ids.len() as i64;
        if !changed_ids.is_empty() {
            // A changed client is another version: a form based on the old one gets 409.
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "UPDATE clients SET version = version + 1, updated_at = ",
            );
            qb.push_bind(b.at.millis());
            qb.push(" WHERE id IN (");
            let mut sep = qb.separated(", ");
            for id in &changed_ids {
                sep.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(&mut *tx).await.map_err(map_err)?;
        }
        if let Some(job) = b.job_id {
            sqlx::query(
                "UPDATE bulk_jobs SET cursor = $2, done = done + $3, changed = changed + $4, updated_at = $5, \
                 lease_until = $5 + 60000 \
                 WHERE id = $1 AND state = 'running'",
            )
            .bind(job)
            .bind(outcome.last_id.unwrap_or(b.after_id))
            .bind(outcome.matched)
            .bind(outcome.changed)
            .bind(b.at.millis())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        if outcome.changed > 0 {
            append_in(&mut tx, event(&outcome)).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(outcome)
    }

    async fn insert_bulk_job(&self, job: &BulkJob) -> Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO bulk_jobs (user_id, request, change, upto_id, total, done, changed, cursor, state, \
             message, lease_until, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running', '', 0, $9, $9) RETURNING id",
        )
        .bind(job.user_id)
        .bind(&job.request)
        .bind(&job.change)
        .bind(job.upto_id)
        .bind(job.total)
        .bind(job.done)
        .bind(job.changed)
        .bind(job.cursor)
        .bind(job.created_at.millis())
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)
    }

    async fn bulk_job(&self, id: i64) -> Result<Option<BulkJob>> {
        let row = sqlx::query(formatcp!("SELECT {BULK_COLS} FROM bulk_jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(bulk_row).transpose()
    }

    async fn claim_bulk_job(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<BulkJob>> {
        // Compare-and-set on the lease: of two instances claiming the same job, one
        // updates the row and the other's UPDATE matches nothing.
        let candidate: Option<(i64, i64)> = sqlx::query_as(
            "SELECT id, lease_until FROM bulk_jobs WHERE state = 'running' AND lease_until <= $1 ORDER BY id LIMIT 1",
        )
        .bind(now.millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some((id, lease)) = candidate else {
            return Ok(None);
        };
        let won = sqlx::query("UPDATE bulk_jobs SET lease_until = $3 WHERE id = $1 AND lease_until = $2 AND state = 'running'")
            .bind(id)
            .bind(lease)
            .bind(lease_until.millis())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        if won.rows_affected() == 0 {
            return Ok(None);
        }
        self.bulk_job(id).await
    }

    async fn end_bulk_job(
        &self,
        id: i64,
        state: BulkState,
        message: &str,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query("UPDATE bulk_jobs SET state = $2, message = $3, updated_at = $4, lease_until = 0 WHERE id = $1")
            .bind(id)
            .bind(state.code())
            .bind(message)
            .bind(at.millis())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
