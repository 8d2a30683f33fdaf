//! Who is asking, in one round trip: a session or an API token joined with its user, the
//! user's groups and their permissions. Every authenticated request pays for this lookup, so it
//! is a single indexed query instead of four.

use super::users::{user_row, USER_COLS};
use super::{BackendStore, DbRow};
use crate::rows::{known, permission};
use crate::*;
use async_trait::async_trait;
use const_format::formatcp;
use domain::Timestamp;
use sqlx::Row;

/// The user's groups and permissions, joined to whichever credential row selects them.
pub(super) const AUTHORITY_JOINS: &str = " JOIN users u ON u.id = cred.user_id \
    LEFT JOIN users c ON c.id = u.created_by \
    LEFT JOIN user_groups ug ON ug.user_id = u.id \
    LEFT JOIN access_groups g ON g.id = ug.group_id \
    LEFT JOIN group_permissions gp ON gp.group_id = g.id";
pub(super) const AUTHORITY_COLS: &str =
    "g.id AS group_id, g.caption AS group_caption, g.builtin AS group_builtin, gp.permission AS group_permission";

/// Folds the joined rows (one per group permission, at least one) into an `Principal`.
pub(super) fn authority_rows(rows: &[DbRow]) -> Result<Principal> {
    let g = |e: sqlx::Error| map_err(e);
    let mut user = user_row(&rows[0])?;
    let mut is_admin = false;
    let mut permissions = PermissionSet::default();
    for r in rows {
        let Some(group_id) = r.try_get::<Option<i64>, _>("group_id").map_err(g)? else {
            continue;
        };
        let builtin: bool = r.try_get("group_builtin").map_err(g)?;
        is_admin |= builtin;
        if !user.groups.iter().any(|x| x.id == group_id) {
            user.groups.push(GroupRef {
                id: group_id,
                caption: r.try_get("group_caption").map_err(g)?,
                builtin,
            });
        }
        if let Some(code) = r
            .try_get::<Option<String>, _>("group_permission")
            .map_err(g)?
        {
            permissions.insert(permission(&code)?);
        }
    }
    // The same order as `groups_for_users`: the built-in group first, then by caption.
    user.groups
        .sort_by_key(|x| (!x.builtin, x.caption.to_lowercase()));
    if is_admin {
        permissions = PermissionSet::all();
    }
    Ok(Principal {
        user,
        is_admin,
        permissions,
        scope: ScopeSources::default(),
    })
}

impl BackendStore {
    /// Runs a credential's authority query (`sql`, keyed by `$1`): the first row, for the
    /// credential's own columns, and the user's authority with its client scope.
    async fn credential_authority(
        &self,
        sql: &'static str,
        key: &str,
    ) -> Result<Option<(DbRow, Principal)>> {
        let rows = sqlx::query(sql)
            .bind(key)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut authority = authority_rows(&rows)?;
        self.fill_scope(&mut authority).await?;
        Ok(rows.into_iter().next().map(|r| (r, authority)))
    }

    /// The principal's Allowed Client Tags: a second indexed query (a join would
    /// multiply the permission rows by the tags).
    async fn fill_scope(&self, p: &mut Principal) -> Result<()> {
        let (own, sources) = self.scope_of_user(p.user.id).await?;
        p.user.allowed_tags = own;
        p.scope = sources;
        Ok(())
    }
}

#[async_trait]
impl AuthorityStore for BackendStore {
    async fn session_authority(&self, id_hash: &str) -> Result<Option<(SessionRecord, Principal)>> {
        let sql = formatcp!(
            "SELECT {USER_COLS}, {AUTHORITY_COLS}, cred.key AS s_key, cred.stage AS s_stage, \
             cred.csrf_token AS s_csrf_token, cred.created_at AS s_created_at, \
             cred.last_seen_at AS s_last_seen_at, cred.expires_at AS s_expires_at, cred.ip AS s_ip, \
             cred.user_agent AS s_user_agent FROM sessions cred{AUTHORITY_JOINS} WHERE cred.id_hash = $1"
        );
        let Some((r, authority)) = self.credential_authority(sql, id_hash).await? else {
            return Ok(None);
        };
        let g = |e: sqlx::Error| map_err(e);
        let session = SessionRecord {
            id_hash: id_hash.to_string(),
            key: r.try_get("s_key").map_err(g)?,
            user_id: authority.user.id,
            stage: known(
                "session stage",
                &r.try_get::<String, _>("s_stage").map_err(g)?,
                SessionStage::from_code,
            )?,
            csrf_token: r.try_get("s_csrf_token").map_err(g)?,
            created_at: Timestamp(r.try_get("s_created_at").map_err(g)?),
            last_seen_at: Timestamp(r.try_get("s_last_seen_at").map_err(g)?),
            expires_at: Timestamp(r.try_get("s_expires_at").map_err(g)?),
            ip: r.try_get("s_ip").map_err(g)?,
            user_agent: r.try_get("s_user_agent").map_err(g)?,
        };
        Ok(Some((session, authority)))
    }

    async fn token_authority(&self, token_hash: &str) -> Result<Option<(TokenRecord, Principal)>> {
        let sql = formatcp!(
            "SELECT {USER_COLS}, {AUTHORITY_COLS}, cred.id AS t_id, cred.name AS t_name, \
             cred.created_at AS t_created_at, cred.expires_at AS t_expires_at, \
             cred.last_used_at AS t_last_used_at, cred.revoked_at AS t_revoked_at \
             FROM api_tokens cred{AUTHORITY_JOINS} WHERE cred.token_hash = $1"
        );
        let Some((r, authority)) = self.credential_authority(sql, token_hash).await? else {
            return Ok(None);
        };
        let g = |e: sqlx::Error| map_err(e);
        let token = TokenRecord {
            id: r.try_get("t_id").map_err(g)?,
            user_id: authority.user.id,
            name: r.try_get("t_name").map_err(g)?,
            created_at: Timestamp(r.try_get("t_created_at").map_err(g)?),
            expires_at: Timestamp(r.try_get("t_expires_at").map_err(g)?),
            last_used_at: r
                .try_get::<Option<i64>, _>("t_last_used_at")
                .map_err(g)?
                .map(Timestamp),
            revoked_at: r
                .try_get::<Option<i64>, _>("t_revoked_at")
                .map_err(g)?
                .map(Timestamp),
        };
        Ok(Some((token, authority)))
    }
}
