//! Staff accounts: creating, reading, listing, editing, and the failed-attempt counters.

use super::events::append_in;
use super::tags::set_allowed_tags_in;
use super::{decide, decode, lock_rows, with_target_id, BackendStore, Db, DbRow, Tx, DIALECT};
use crate::rows::{permission, UserRow};
use crate::*;
use async_trait::async_trait;
use const_format::formatcp;
use domain::{PermissionSet, Timestamp, UserStatus};
use sqlx::{QueryBuilder, Row};

/// A user's columns but the failed-attempt counters, which a sign-in reads from its own
/// reservation (`sign_in.rs`).
pub(super) const USER_COLS_BUT_ATTEMPTS: &str =
    "u.id, u.email, u.name, u.password_hash, u.status, \
    u.two_factor, u.mask_data, u.ip_whitelist, u.must_change_password, u.created_by, \
    c.email AS created_by_email, u.created_at, u.updated_at, u.last_sign_in_at, u.version";
pub(super) const USER_COLS: &str =
    formatcp!("{USER_COLS_BUT_ATTEMPTS}, u.failed_attempts, u.locked_until");
pub(super) const USER_FROM: &str = " FROM users u LEFT JOIN users c ON c.id = u.created_by ";
/// Counts one more sign-in attempt ($2 is now, in ms); from the fifth failure in a row the
/// account locks, for one minute and then twice as long each time, up to 15 minutes.
pub(super) const RESERVE_ATTEMPT: &str =
    "SET failed_attempts = failed_attempts + 1, locked_until = CASE \
     WHEN failed_attempts + 1 < 5 THEN NULL \
     WHEN failed_attempts + 1 = 5 THEN $2 + 60000 \
     WHEN failed_attempts + 1 = 6 THEN $2 + 120000 \
     WHEN failed_attempts + 1 = 7 THEN $2 + 240000 \
     WHEN failed_attempts + 1 = 8 THEN $2 + 480000 \
     ELSE $2 + 900000 END";
pub(super) const NOT_LOCKED: &str = "(locked_until IS NULL OR locked_until <= $2)";

pub(super) fn user_row(r: &DbRow) -> Result<UserRecord> {
    decode::<UserRow>(r)?.try_into()
}

/// Claims `key` for this transaction in `email_reservations`: a live reservation of
/// another holder makes it a duplicate. On PostgreSQL a concurrent claim of the same key
/// waits on the unique index until this transaction ends, so the email checks that
/// follow see each other's commits.
pub(super) async fn claim_email(
    tx: &mut Tx,
    key: &str,
    holder: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<()> {
    let claimed: Option<String> = sqlx::query_scalar(
        "INSERT INTO email_reservations (email_key, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (email_key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE email_reservations.holder = $2 OR email_reservations.expires_at <= $4 RETURNING email_key",
    )
    .bind(key)
    .bind(holder)
    .bind(until.millis())
    .bind(now.millis())
    .fetch_optional(&mut **tx)
    .await
    .map_err(map_err)?;
    claimed
        .map(|_| ())
        .ok_or(StoreError::Duplicate { field: "email" })
}

pub(super) async fn unclaim_email(tx: &mut Tx, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM email_reservations WHERE email_key = $1")
        .bind(key)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// A holder name for a claim that lives only inside its transaction.
pub(super) fn transient_holder() -> String {
    format!("tx-{:016x}", rand::random::<u64>())
}

/// Fills the users' groups, reading through `exec` (the pool, or a transaction).
pub(super) async fn groups_of_users<'e, E>(exec: E, users: &mut [UserRecord]) -> Result<()>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    if users.is_empty() {
        return Ok(());
    }
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT ug.user_id, g.id, g.caption, g.builtin FROM user_groups ug \
         JOIN access_groups g ON g.id = ug.group_id WHERE ug.user_id IN (",
    );
    let mut sep = qb.separated(", ");
    for u in users.iter() {
        sep.push_bind(u.id);
    }
    qb.push(") ORDER BY g.builtin DESC, g.caption_key");
    let rows = qb.build().fetch_all(exec).await.map_err(map_err)?;
    for r in rows {
        let uid: i64 = r.try_get(0).map_err(map_err)?;
        let group = GroupRef {
            id: r.try_get(1).map_err(map_err)?,
            caption: r.try_get(2).map_err(map_err)?,
            builtin: r.try_get(3).map_err(map_err)?,
        };
        if let Some(u) = users.iter_mut().find(|u| u.id == uid) {
            u.groups.push(group);
        }
    }
    Ok(())
}

pub(super) async fn set_user_groups(tx: &mut Tx, user_id: i64, group_ids: &[i64]) -> Result<()> {
    sqlx::query("DELETE FROM user_groups WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    for gid in group_ids {
        sqlx::query("INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2)")
            .bind(user_id)
            .bind(gid)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
    }
    Ok(())
}

pub(super) async fn count_admins_in<'e, E>(exec: E) -> Result<i64>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    sqlx::query_scalar(
        "SELECT COUNT(DISTINCT u.id) FROM users u JOIN user_groups ug ON ug.user_id = u.id \
         JOIN access_groups g ON g.id = ug.group_id \
         WHERE g.builtin = TRUE AND u.status = 'enabled' AND u.mask_data = FALSE",
    )
    .fetch_one(exec)
    .await
    .map_err(map_err)
}

impl BackendStore {
    pub(super) async fn groups_for_users(&self, users: &mut [UserRecord]) -> Result<()> {
        groups_of_users(&self.pool, users).await?;
        let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
        for (uid, tag) in self
            .allowed_tags_of("user_allowed_tags", "user_id", &ids)
            .await?
        {
            if let Some(u) = users.iter_mut().find(|u| u.id == uid) {
                u.allowed_tags.push(tag);
            }
        }
        Ok(())
    }

    pub(super) async fn permissions_of_group(
        &self,
        id: i64,
        builtin: bool,
    ) -> Result<PermissionSet> {
        if builtin {
            return Ok(PermissionSet::all());
        }
        let codes: Vec<String> =
            sqlx::query_scalar("SELECT permission FROM group_permissions WHERE group_id = $1")
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        codes.iter().map(|c| permission(c)).collect()
    }
}

#[async_trait]
impl UserStore for BackendStore {
    async fn reserve_email(
        &self,
        email_key: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        claim_email(&mut tx, email_key, holder, now, until).await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE email_key = $1")
            .bind(email_key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if taken.is_some() {
            return Err(StoreError::Duplicate { field: "email" });
        }
        tx.commit().await.map_err(map_err)
    }

    async fn release_email(&self, email_key: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM email_reservations WHERE email_key = $1 AND holder = $2")
            .bind(email_key)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_user(
        &self,
        user: NewUser,
        reservation: Option<&str>,
        event: AuditEntry,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        let holder = reservation.map_or_else(transient_holder, str::to_string);
        claim_email(&mut tx, &user.email_key, &holder, event.at, event.at).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, email_key, name, password_hash, status, two_factor, mask_data, \
             must_change_password, created_by, created_at, updated_at, ip_whitelist) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) RETURNING id",
        )
        .bind(&user.email)
        .bind(&user.email_key)
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(user.status.code())
        .bind(user.two_factor.code())
        .bind(user.mask_data)
        .bind(user.must_change_password)
        .bind(user.created_by)
        .bind(user.created_at.millis())
        .bind(user.ip_whitelist.to_text())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        unclaim_email(&mut tx, &user.email_key).await?;
        set_user_groups(&mut tx, id, &user.group_ids).await?;
        set_allowed_tags_in(
            &mut tx,
            "user_allowed_tags",
            "user_id",
            id,
            &user.allowed_tag_ids,
        )
        .await?;
        sqlx::query("UPDATE row_counts SET n = n + 1 WHERE name = 'users'")
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        append_in(&mut tx, with_target_id(event, id)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>> {
        let sql = formatcp!("SELECT {USER_COLS}{USER_FROM} WHERE u.id = $1");
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let mut users = vec![user_row(&row)?];
        self.groups_for_users(&mut users).await?;
        Ok(users.pop())
    }

    async fn user_by_email_key(&self, key: &str) -> Result<Option<UserRecord>> {
        let sql = formatcp!("SELECT {USER_COLS}{USER_FROM} WHERE u.email_key = $1");
        let row = sqlx::query(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_row).transpose()
    }

    async fn list_users(&self, q: &UserQuery) -> Result<Page<UserRecord>> {
        fn filters<'a>(qb: &mut QueryBuilder<'a, Db>, q: &'a UserQuery) {
            qb.push(" WHERE 1 = 1");
            if let Some(text) = q.text.as_deref().filter(|t| !t.is_empty()) {
                let pattern = format!(
                    "%{}%",
                    text.to_lowercase()
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                );
                qb.push(" AND (u.email_key LIKE ");
                qb.push_bind(pattern.clone());
                qb.push(" ESCAPE '\\' OR LOWER(u.name) LIKE ");
                qb.push_bind(pattern);
                qb.push(" ESCAPE '\\')");
            }
            if let Some(status) = q.status {
                qb.push(" AND u.status = ");
                qb.push_bind(status.code());
            }
            if let Some(gid) = q.group_id {
                qb.push(" AND EXISTS (SELECT 1 FROM user_groups f WHERE f.user_id = u.id AND f.group_id = ");
                qb.push_bind(gid);
                qb.push(")");
            }
            if let Some(tag) = q.allowed_tag_id {
                qb.push(" AND EXISTS (SELECT 1 FROM user_allowed_tags f WHERE f.user_id = u.id AND f.tag_id = ");
                qb.push_bind(tag);
                qb.push(")");
            }
            if let Some(tf) = q.two_factor {
                qb.push(" AND u.two_factor = ");
                qb.push_bind(tf.code());
            }
            match q.has_ip_whitelist {
                Some(true) => qb.push(" AND u.ip_whitelist <> ''"),
                Some(false) => qb.push(" AND u.ip_whitelist = ''"),
                None => qb.push(""),
            };
            if let Some(creator) = q.creator_id {
                qb.push(" AND u.created_by = ");
                qb.push_bind(creator);
            }
            if let Some(mask) = q.mask_data {
                qb.push(" AND u.mask_data = ");
                qb.push_bind(mask);
            }
            if let Some(at) = q.locked_at {
                qb.push(" AND u.locked_until > ");
                qb.push_bind(at.millis());
            }
        }
        let unfiltered = q.text.as_deref().unwrap_or("").is_empty()
            && q.status.is_none()
            && q.group_id.is_none()
            && q.allowed_tag_id.is_none()
            && q.two_factor.is_none()
            && q.has_ip_whitelist.is_none()
            && q.creator_id.is_none()
            && q.mask_data.is_none()
            && q.locked_at.is_none();
        let total = if unfiltered {
            self.count_users().await?
        } else {
            // The filters read only `u`, so the count needs no join to the creator.
            let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM users u");
            filters(&mut count, q);
            count
                .build_query_scalar()
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?
        };

        let mut qb = QueryBuilder::<Db>::new(formatcp!("SELECT {USER_COLS}"));
        qb.push(USER_FROM);
        filters(&mut qb, q);
        let column = match q.sort {
            UserSort::Id => "u.id",
            UserSort::Name => "LOWER(u.name)",
            UserSort::Email => "u.email_key",
            UserSort::AllowedTags => {
                "(SELECT MIN(t.caption_key) FROM user_allowed_tags s JOIN tags t ON t.id = s.tag_id WHERE s.user_id = u.id)"
            }
            UserSort::Status => "u.status",
            UserSort::TwoFactor => "u.two_factor",
            UserSort::IpWhitelist => "u.ip_whitelist",
            UserSort::Groups => {
                "(SELECT MIN(LOWER(g.caption)) FROM user_groups s JOIN access_groups g ON g.id = s.group_id WHERE s.user_id = u.id)"
            }
            UserSort::MaskData => "u.mask_data",
            UserSort::Creator => "c.email_key",
            UserSort::CreatedAt => "u.created_at",
            UserSort::LastSignIn => "COALESCE(u.last_sign_in_at, 0)",
        };
        let dir = if q.descending { "DESC" } else { "ASC" };
        qb.push(format!(" ORDER BY {column} {dir}, u.id {dir} LIMIT "));
        qb.push_bind(q.limit);
        qb.push(" OFFSET ");
        qb.push_bind(q.offset);
        let rows = qb.build().fetch_all(&self.pool).await.map_err(map_err)?;
        let mut items = rows.iter().map(user_row).collect::<Result<Vec<_>>>()?;
        self.groups_for_users(&mut items).await?;
        Ok(Page { items, total })
    }

    async fn permissions_of_user(&self, user_id: i64) -> Result<(bool, PermissionSet)> {
        let rows = sqlx::query(
            "SELECT g.builtin, gp.permission FROM user_groups ug JOIN access_groups g ON g.id = ug.group_id \
             LEFT JOIN group_permissions gp ON gp.group_id = g.id WHERE ug.user_id = $1",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut set = PermissionSet::default();
        for r in &rows {
            if r.try_get::<bool, _>(0).map_err(map_err)? {
                return Ok((true, PermissionSet::all()));
            }
            if let Some(code) = r.try_get::<Option<String>, _>(1).map_err(map_err)? {
                set.insert(permission(&code)?);
            }
        }
        Ok((false, set))
    }

    async fn update_user(&self, id: i64, edit: Edit<'_, UserRecord, UserChange>) -> Result<()> {
        let mut tx = self.begin().await?;
        // Serialises every change that could affect who is an administrator. Taken
        // first by every user edit (before the user's row), so all take locks in one
        // order and none waits on another in a circle.
        sqlx::query("UPDATE access_groups SET updated_at = updated_at WHERE builtin = TRUE")
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let sql = formatcp!(
            "SELECT {USER_COLS}{USER_FROM} WHERE u.id = $1{}",
            lock_rows!("u")
        );
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)?;
        let mut users = vec![user_row(&row)?];
        groups_of_users(&mut *tx, &mut users).await?;
        let before = users.pop().ok_or(StoreError::NotFound)?;
        let (change, event) = match decide(edit, &before)? {
            Decision::Keep => return Ok(()),
            Decision::Write(change, event) => (change, event),
        };
        if let Some(expected) = &change.expect_password_hash {
            if before.password_hash != *expected || before.status != UserStatus::Enabled {
                return Err(StoreError::Conflict("The account changed meanwhile".into()));
            }
        }
        let affects_admins =
            change.status.is_some() || change.group_ids.is_some() || change.mask_data.is_some();
        let shown = affects_admins
            || change.email.is_some()
            || change.name.is_some()
            || change.two_factor.is_some()
            || change.ip_whitelist.is_some()
            || change.allowed_tag_ids.is_some();
        sqlx::query("UPDATE users SET updated_at = $2, version = version + $3 WHERE id = $1")
            .bind(id)
            .bind(change.at.millis())
            .bind(i64::from(shown))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if let Some((_, key)) = &change.email {
            claim_email(&mut tx, key, &transient_holder(), change.at, change.at).await?;
        }
        if let Some((email, key)) = &change.email {
            sqlx::query("UPDATE users SET email = $2, email_key = $3 WHERE id = $1")
                .bind(id)
                .bind(email)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            unclaim_email(&mut tx, key).await?;
        }
        if let Some(name) = &change.name {
            sqlx::query("UPDATE users SET name = $2 WHERE id = $1")
                .bind(id)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        if let Some((hash, must_change)) = &change.password {
            sqlx::query(
                "UPDATE users SET password_hash = $2, must_change_password = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(hash)
            .bind(*must_change)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        if let Some(status) = change.status {
            sqlx::query("UPDATE users SET status = $2 WHERE id = $1")
                .bind(id)
                .bind(status.code())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        if let Some(tf) = change.two_factor {
            sqlx::query("UPDATE users SET two_factor = $2 WHERE id = $1")
                .bind(id)
                .bind(tf.code())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        if let Some(list) = &change.ip_whitelist {
            sqlx::query("UPDATE users SET ip_whitelist = $2 WHERE id = $1")
                .bind(id)
                .bind(list.to_text())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        if let Some(mask) = change.mask_data {
            sqlx::query("UPDATE users SET mask_data = $2 WHERE id = $1")
                .bind(id)
                .bind(mask)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        if change.unlock {
            sqlx::query("UPDATE users SET failed_attempts = 0, locked_until = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        if let Some(groups) = &change.group_ids {
            set_user_groups(&mut tx, id, groups).await?;
        }
        if let Some(tags) = &change.allowed_tag_ids {
            set_allowed_tags_in(&mut tx, "user_allowed_tags", "user_id", id, tags).await?;
        }
        let disabled = change.status == Some(UserStatus::Disabled);
        if disabled || change.email.is_some() || change.password.is_some() {
            // A forgotten-password link dies with the account's access, and with the
            // address or password it was sent for.
            sqlx::query("DELETE FROM password_resets WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        if disabled || change.end_sessions.is_some() {
            let keep = change.end_sessions.clone().flatten().unwrap_or_default();
            sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
                .bind(id)
                .bind(&keep)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            sqlx::query("DELETE FROM sign_in_codes WHERE user_id = $1 AND session_hash <> $2")
                .bind(id)
                .bind(&keep)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        if affects_admins && count_admins_in(&mut *tx).await? == 0 {
            return Err(StoreError::Conflict(
                "The last enabled unmasked administrator can't be disabled, masked or removed from Administrators".into(),
            ));
        }
        append_in(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn creators(&self) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            // A loose index scan: the next creator id after the last one, by the
            // `users_created_by` index, once per creator (there are few), on both databases.
            "WITH RECURSIVE creator(id) AS (SELECT MIN(created_by) FROM users \
             UNION ALL SELECT (SELECT MIN(created_by) FROM users WHERE created_by > creator.id) \
             FROM creator WHERE creator.id IS NOT NULL) \
             SELECT c.id, c.email FROM creator JOIN users c ON c.id = creator.id ORDER BY c.email_key",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(map_err)?,
                    r.try_get(1).map_err(map_err)?,
                ))
            })
            .collect()
    }

    async fn count_enabled_admins(&self) -> Result<i64> {
        count_admins_in(&self.pool).await
    }

    async fn count_users(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT n FROM row_counts WHERE name = 'users'")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn reserve_attempt(&self, user_id: i64, now: Timestamp) -> Result<Option<i64>> {
        const SQL: &str = formatcp!(
            "UPDATE users {RESERVE_ATTEMPT} WHERE id = $1 AND {NOT_LOCKED} {} RETURNING failed_attempts",
            DIALECT.reservation_commits_without_waiting
        );
        sqlx::query_scalar(SQL)
            .bind(user_id)
            .bind(now.millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn release_attempt(&self, user_id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE users SET failed_attempts = CASE WHEN failed_attempts > 0 THEN failed_attempts - 1 ELSE 0 END, \
             locked_until = NULL WHERE id = $1",
        )
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn upgrade_password_hash(&self, user_id: i64, hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user_id)
            .bind(hash)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
