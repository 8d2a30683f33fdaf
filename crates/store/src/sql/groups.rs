//! Groups and their permissions (Administrators is built in and holds every permission).

use super::events::append_in;
use super::tags::set_allowed_tags_in;
use super::users::{user_row, USER_COLS, USER_FROM};
use super::{decide, lock_rows, with_target_id, BackendStore, Db, Tx, DIALECT};
use crate::rows::permission;
use crate::*;
use async_trait::async_trait;
use const_format::formatcp;
use domain::{PermissionSet, Timestamp};
use sqlx::{QueryBuilder, Row};

/// A group other than Administrators with its permissions, read in `tx` and locked
/// there until it ends (`NotFound` for the built-in group).
pub(super) async fn locked_group(tx: &mut Tx, id: i64) -> Result<GroupDetail> {
    let sql = formatcp!(
        "SELECT g.id, g.caption, g.builtin, g.created_at, g.updated_at, g.version FROM access_groups g \
         WHERE g.id = $1 AND g.builtin = FALSE{}",
        lock_rows!("g")
    );
    let row = sqlx::query(sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_err)?
        .ok_or(StoreError::NotFound)?;
    let codes: Vec<String> =
        sqlx::query_scalar("SELECT permission FROM group_permissions WHERE group_id = $1")
            .bind(id)
            .fetch_all(&mut **tx)
            .await
            .map_err(map_err)?;
    let tags = sqlx::query(
        "SELECT t.id, t.caption FROM group_allowed_tags a JOIN tags t ON t.id = a.tag_id \
         WHERE a.group_id = $1 ORDER BY t.caption_key",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await
    .map_err(map_err)?;
    let allowed_tags = tags
        .iter()
        .map(|r| {
            Ok(TagRef {
                id: r.try_get(0).map_err(map_err)?,
                caption: r.try_get(1).map_err(map_err)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(GroupDetail {
        id,
        caption: row.try_get(1).map_err(map_err)?,
        builtin: row.try_get(2).map_err(map_err)?,
        permissions: codes.iter().map(|c| permission(c)).collect::<Result<_>>()?,
        allowed_tags,
        created_at: Timestamp(row.try_get(3).map_err(map_err)?),
        updated_at: Timestamp(row.try_get(4).map_err(map_err)?),
        version: row.try_get(5).map_err(map_err)?,
    })
}

pub(super) async fn set_group_permissions(
    tx: &mut Tx,
    group_id: i64,
    permissions: &PermissionSet,
) -> Result<()> {
    sqlx::query("DELETE FROM group_permissions WHERE group_id = $1")
        .bind(group_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    for code in permissions.codes() {
        sqlx::query("INSERT INTO group_permissions (group_id, permission) VALUES ($1, $2)")
            .bind(group_id)
            .bind(code)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
    }
    Ok(())
}

pub(super) async fn insert_group_in(
    tx: &mut Tx,
    caption: &str,
    permissions: &PermissionSet,
    at: Timestamp,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO access_groups (caption, caption_key, builtin, created_at, updated_at) \
         VALUES ($1, $2, FALSE, $3, $3) RETURNING id",
    )
    .bind(caption)
    .bind(caption.to_lowercase())
    .bind(at.millis())
    .fetch_one(&mut **tx)
    .await
    .map_err(map_err)?;
    set_group_permissions(tx, id, permissions).await?;
    Ok(id)
}

#[async_trait]
impl GroupStore for BackendStore {
    async fn ensure_admin_group(&self) -> Result<i64> {
        let now = Timestamp::now().millis();
        sqlx::query(
            "INSERT INTO access_groups (caption, caption_key, builtin, created_at, updated_at) \
             SELECT 'Administrators', 'administrators', TRUE, $1, $1 \
             WHERE NOT EXISTS (SELECT 1 FROM access_groups WHERE builtin = TRUE) \
             ON CONFLICT DO NOTHING",
        )
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        sqlx::query_scalar("SELECT id FROM access_groups WHERE builtin = TRUE ORDER BY id LIMIT 1")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn group_refs(&self) -> Result<Vec<GroupRef>> {
        let rows = sqlx::query(
            "SELECT id, caption, builtin FROM access_groups ORDER BY builtin DESC, caption_key",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(GroupRef {
                    id: r.try_get(0).map_err(map_err)?,
                    caption: r.try_get(1).map_err(map_err)?,
                    builtin: r.try_get(2).map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn list_groups(&self) -> Result<Vec<GroupSummary>> {
        let rows = sqlx::query(
            "SELECT g.id, g.caption, g.builtin, \
             (SELECT COUNT(*) FROM user_groups ug WHERE ug.group_id = g.id) AS members \
             FROM access_groups g ORDER BY g.builtin DESC, g.caption_key",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut groups = rows
            .iter()
            .map(|r| {
                Ok(GroupSummary {
                    id: r.try_get(0).map_err(map_err)?,
                    caption: r.try_get(1).map_err(map_err)?,
                    builtin: r.try_get(2).map_err(map_err)?,
                    members: r.try_get(3).map_err(map_err)?,
                    allowed_tags: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ids: Vec<i64> = groups.iter().map(|g| g.id).collect();
        for (gid, tag) in self
            .allowed_tags_of("group_allowed_tags", "group_id", &ids)
            .await?
        {
            if let Some(g) = groups.iter_mut().find(|g| g.id == gid) {
                g.allowed_tags.push(tag);
            }
        }
        Ok(groups)
    }

    async fn group_by_id(&self, id: i64) -> Result<Option<GroupDetail>> {
        Ok(self.groups_by_ids(&[id]).await?.pop())
    }

    async fn groups_by_ids(&self, ids: &[i64]) -> Result<Vec<GroupDetail>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT id, caption, builtin, created_at, updated_at, version FROM access_groups WHERE id IN (",
        );
        let mut sep = qb.separated(", ");
        for id in ids {
            sep.push_bind(*id);
        }
        qb.push(") ORDER BY builtin DESC, caption_key");
        let rows = qb.build().fetch_all(&self.pool).await.map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get(0).map_err(map_err)?;
            let builtin: bool = r.try_get(2).map_err(map_err)?;
            out.push(GroupDetail {
                id,
                caption: r.try_get(1).map_err(map_err)?,
                builtin,
                permissions: self.permissions_of_group(id, builtin).await?,
                allowed_tags: Vec::new(),
                created_at: Timestamp(r.try_get(3).map_err(map_err)?),
                updated_at: Timestamp(r.try_get(4).map_err(map_err)?),
                version: r.try_get(5).map_err(map_err)?,
            });
        }
        for (gid, tag) in self
            .allowed_tags_of("group_allowed_tags", "group_id", ids)
            .await?
        {
            if let Some(g) = out.iter_mut().find(|g| g.id == gid) {
                g.allowed_tags.push(tag);
            }
        }
        Ok(out)
    }

    async fn insert_group(
        &self,
        caption: &str,
        permissions: &PermissionSet,
        allowed_tags: &[i64],
        event: AuditEntry,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id = insert_group_in(&mut tx, caption, permissions, event.at).await?;
        set_allowed_tags_in(&mut tx, "group_allowed_tags", "group_id", id, allowed_tags).await?;
        append_in(&mut tx, with_target_id(event, id)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn update_group(&self, id: i64, edit: Edit<'_, GroupDetail, GroupChange>) -> Result<()> {
        let mut tx = self.begin().await?;
        let before = locked_group(&mut tx, id).await?;
        let (change, event) = match decide(edit, &before)? {
            Decision::Keep => return Ok(()),
            Decision::Write(change, event) => (change, event),
        };
        if let Some(caption) = &change.caption {
            sqlx::query("UPDATE access_groups SET caption = $2, caption_key = $3 WHERE id = $1")
                .bind(id)
                .bind(caption)
                .bind(caption.to_lowercase())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        if let Some(permissions) = &change.permissions {
            set_group_permissions(&mut tx, id, permissions).await?;
        }
        if let Some(tags) = &change.allowed_tags {
            set_allowed_tags_in(&mut tx, "group_allowed_tags", "group_id", id, tags).await?;
        }
        sqlx::query(
            "UPDATE access_groups SET updated_at = $2, version = version + 1 WHERE id = $1",
        )
        .bind(id)
        .bind(change.at.millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_group(&self, id: i64, edit: Edit<'_, GroupDetail, ()>) -> Result<()> {
        let mut tx = self.begin().await?;
        let before = locked_group(&mut tx, id).await?;
        let event = match decide(edit, &before)? {
            Decision::Keep => return Ok(()),
            Decision::Write((), event) => event,
        };
        // The members' edit forms showed the group: they are other versions now.
        sqlx::query(
            "UPDATE users SET version = version + 1 WHERE id IN (SELECT user_id FROM user_groups WHERE group_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("DELETE FROM user_groups WHERE group_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("DELETE FROM access_groups WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn import_groups(
        &self,
        groups: &[(String, PermissionSet)],
        replace: bool,
        event: AuditEntry,
    ) -> Result<usize> {
        let mut tx = self.begin().await?;
        for (caption, permissions) in groups {
            let existing: Option<(i64, bool)> =
                sqlx::query_as("SELECT id, builtin FROM access_groups WHERE caption_key = $1")
                    .bind(caption.to_lowercase())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
            match existing {
                None => {
                    insert_group_in(&mut tx, caption, permissions, event.at).await?;
                }
                Some((id, false)) if replace => {
                    set_group_permissions(&mut tx, id, permissions).await?;
                    sqlx::query("UPDATE access_groups SET version = version + 1, updated_at = $2 WHERE id = $1")
                        .bind(id)
                        .bind(event.at.millis())
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                Some((_, builtin)) => {
                    if replace && builtin {
                        return Err(StoreError::Conflict(format!(
                            "{caption} is built in and can't be replaced"
                        )));
                    }
                    let mut n = 1;
                    let unique = loop {
                        let candidate = format!("{caption} ({n})");
                        let taken: Option<i64> = sqlx::query_scalar(
                            "SELECT id FROM access_groups WHERE caption_key = $1",
                        )
                        .bind(candidate.to_lowercase())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(map_err)?;
                        if taken.is_none() {
                            break candidate;
                        }
                        n += 1;
                    };
                    insert_group_in(&mut tx, &unique, permissions, event.at).await?;
                }
            }
        }
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(groups.len())
    }

    async fn members_of_group(&self, id: i64) -> Result<Vec<UserRecord>> {
        let sql = formatcp!(
            "SELECT {USER_COLS}{USER_FROM} JOIN user_groups m ON m.user_id = u.id WHERE m.group_id = $1 ORDER BY u.id"
        );
        let rows = sqlx::query(sql)
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(user_row).collect()
    }
}
