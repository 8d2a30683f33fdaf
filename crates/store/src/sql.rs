//! The SQL both backends share. sqlx's SQLite driver accepts `$n` placeholders and both
//! databases speak `RETURNING` and `ON CONFLICT`, so one text serves both; the macro stamps the
//! trait implementations out for each backend's pool and row types. What differs (connecting,
//! `BEGIN IMMEDIATE`, migrations, `ANALYZE`, whether writes are merged with a data-modifying
//! `WITH`) lives in `sqlite.rs` and `postgres.rs`.

macro_rules! impl_store {
    ($store:ident, $db:ty, $name:literal) => {
        use $crate::audit_chain::row_hash;
        use $crate::*;
        use async_trait::async_trait;
        use domain::audit::Event;
        use domain::{IpWhitelist, Permission, PermissionSet, Timestamp, TwoFactor, UserStatus};
        use sqlx::{QueryBuilder, Row};

        type DbRow = <$db as sqlx::Database>::Row;
        type Tx = sqlx::Transaction<'static, $db>;

        const USER_COLS: &str = "u.id, u.email, u.name, u.password_hash, u.status, u.two_factor, \
            u.mask_data, u.ip_whitelist, u.must_change_password, u.created_by, c.email AS created_by_email, \
            u.created_at, u.updated_at, u.last_sign_in_at, u.failed_attempts, u.locked_until, u.version";
        const USER_FROM: &str = " FROM users u LEFT JOIN users c ON c.id = u.created_by ";
        /// Counts one more sign-in attempt ($2 is now, in ms); from the fifth failure in a row the
        /// account locks, for one minute and then twice as long each time, up to 15 minutes.
        const RESERVE_ATTEMPT: &str = "SET failed_attempts = failed_attempts + 1, locked_until = CASE \
             WHEN failed_attempts + 1 < 5 THEN NULL \
             WHEN failed_attempts + 1 = 5 THEN $2 + 60000 \
             WHEN failed_attempts + 1 = 6 THEN $2 + 120000 \
             WHEN failed_attempts + 1 = 7 THEN $2 + 240000 \
             WHEN failed_attempts + 1 = 8 THEN $2 + 480000 \
             ELSE $2 + 900000 END";
        const NOT_LOCKED: &str = "(locked_until IS NULL OR locked_until <= $2)";

        fn user_row(r: &DbRow) -> Result<UserRecord> {
            let g = |e: sqlx::Error| map_err(e);
            Ok(UserRecord {
                id: r.try_get("id").map_err(g)?,
                email: r.try_get("email").map_err(g)?,
                name: r.try_get("name").map_err(g)?,
                password_hash: r.try_get("password_hash").map_err(g)?,
                status: UserStatus::from_code(&r.try_get::<String, _>("status").map_err(g)?)
                    .unwrap_or(UserStatus::Disabled),
                two_factor: TwoFactor::from_code(&r.try_get::<String, _>("two_factor").map_err(g)?)
                    .unwrap_or(TwoFactor::Email),
                mask_data: r.try_get("mask_data").map_err(g)?,
                // Written only through `IpWhitelist::to_text`; a list that no longer parses is
                // an error, never "anywhere".
                ip_whitelist: IpWhitelist::parse(&r.try_get::<String, _>("ip_whitelist").map_err(g)?)
                    .map_err(|e| StoreError::Other(format!("stored IP Whitelist: {e}").into()))?,
                must_change_password: r.try_get("must_change_password").map_err(g)?,
                created_by: r.try_get("created_by").map_err(g)?,
                created_by_email: r.try_get("created_by_email").map_err(g)?,
                created_at: Timestamp(r.try_get("created_at").map_err(g)?),
                updated_at: Timestamp(r.try_get("updated_at").map_err(g)?),
                last_sign_in_at: r.try_get::<Option<i64>, _>("last_sign_in_at").map_err(g)?.map(Timestamp),
                failed_attempts: r.try_get("failed_attempts").map_err(g)?,
                locked_until: r.try_get::<Option<i64>, _>("locked_until").map_err(g)?.map(Timestamp),
                version: r.try_get("version").map_err(g)?,
                groups: Vec::new(),
                allowed_tags: Vec::new(),
            })
        }

        fn session_row(r: &DbRow) -> Result<SessionRecord> {
            let g = |e: sqlx::Error| map_err(e);
            Ok(SessionRecord {
                id_hash: r.try_get("id_hash").map_err(g)?,
                key: r.try_get("key").map_err(g)?,
                user_id: r.try_get("user_id").map_err(g)?,
                stage: SessionStage::from_code(&r.try_get::<String, _>("stage").map_err(g)?),
                csrf_token: r.try_get("csrf_token").map_err(g)?,
                created_at: Timestamp(r.try_get("created_at").map_err(g)?),
                last_seen_at: Timestamp(r.try_get("last_seen_at").map_err(g)?),
                expires_at: Timestamp(r.try_get("expires_at").map_err(g)?),
                ip: r.try_get("ip").map_err(g)?,
                user_agent: r.try_get("user_agent").map_err(g)?,
            })
        }

        fn event_row(r: &DbRow) -> Result<EventRecord> {
            let g = |e: sqlx::Error| map_err(e);
            Ok(EventRecord {
                id: r.try_get("id").map_err(g)?,
                at: Timestamp(r.try_get("at").map_err(g)?),
                actor_id: r.try_get("actor_id").map_err(g)?,
                actor_email: r.try_get("actor_email").map_err(g)?,
                actor_groups: r.try_get("actor_groups").map_err(g)?,
                category: r.try_get("category").map_err(g)?,
                action: r.try_get("action").map_err(g)?,
                event: r.try_get("event").map_err(g)?,
                target_type: r.try_get("target_type").map_err(g)?,
                target_id: r.try_get("target_id").map_err(g)?,
                target_label: r.try_get("target_label").map_err(g)?,
                details: r.try_get("details").map_err(g)?,
                ip: r.try_get("ip").map_err(g)?,
                prev_hash: r.try_get("prev_hash").map_err(g)?,
                hash: r.try_get("hash").map_err(g)?,
            })
        }

        fn details_json(event: &Event) -> String {
            let changes: Vec<serde_json::Value> = event
                .changes
                .iter()
                .map(|c| {
                    // `personal` is always written (false when not personal data), so a row
                    // without it is known to predate the key (see app/events.rs).
                    let personal = c.personal.map_or(serde_json::Value::Bool(false), |k| k.code().into());
                    serde_json::json!({"field": c.field, "before": c.before, "after": c.after, "personal": personal})
                })
                .collect();
            serde_json::Value::Array(changes).to_string()
        }

        /// The row for `entry` at position `id`, linked to the previous row's hash.
        fn chained_record(entry: AuditEntry, id: i64, prev_hash: String) -> EventRecord {
            let e = entry.event;
            let mut record = EventRecord {
                id,
                at: entry.at,
                actor_id: entry.actor_id,
                actor_email: entry.actor_email,
                actor_groups: entry.actor_groups,
                category: e.category.code().to_string(),
                action: e.action.code().to_string(),
                details: details_json(&e),
                event: e.event,
                target_type: e.target_type,
                target_id: e.target_id,
                target_label: e.target_label,
                ip: entry.ip,
                prev_hash,
                hash: String::new(),
            };
            record.hash = row_hash(&record.prev_hash, &record);
            record
        }

        const INSERT_EVENT: &str = "INSERT INTO events (id, at, actor_id, actor_email, actor_groups, category, \
             action, event, target_type, target_id, target_label, details, ip, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

        /// Takes the next event id from the chain head. The update takes the head's row lock, so
        /// concurrent writers append one after another and the chain stays linear.
        const BUMP_HEAD: &str = "SET seq = seq + 1";

        /// Appends one event to the chain inside `tx`. Where the backend allows
        /// (`DATA_MODIFYING_WITH`), the row is inserted and the head's hash set in one statement.
        async fn append_in(tx: &mut Tx, entry: AuditEntry) -> Result<()> {
            let head = sqlx::query(&format!("UPDATE audit_head {BUMP_HEAD} WHERE id = 1 RETURNING seq, last_hash"))
                .fetch_one(&mut **tx)
                .await
                .map_err(map_err)?;
            append_at_head(tx, entry, &head).await
        }

        /// Appends one event after `head`: the `seq, last_hash` that a `BUMP_HEAD` of
        /// `audit_head` returned in `tx` (and whose row lock `tx` still holds).
        async fn append_at_head(tx: &mut Tx, entry: AuditEntry, head: &DbRow) -> Result<()> {
            let id: i64 = head.try_get("seq").map_err(map_err)?;
            let prev: String = head.try_get("last_hash").map_err(map_err)?;
            if let Some(scope) = &entry.idempotency {
                // The API request that made this change is carried out once it commits.
                sqlx::query("UPDATE idempotency_keys SET committed = TRUE WHERE scope = $1")
                    .bind(scope)
                    .execute(&mut **tx)
                    .await
                    .map_err(map_err)?;
            }
            let record = chained_record(entry, id, prev);
            let insert = if DATA_MODIFYING_WITH {
                format!("WITH inserted AS ({INSERT_EVENT}) UPDATE audit_head SET last_hash = $15 WHERE id = 1")
            } else {
                // SQLite runs both statements in one call to its connection thread.
                format!("{INSERT_EVENT}; UPDATE audit_head SET last_hash = $15 WHERE id = 1")
            };
            sqlx::query(&insert)
            .bind(record.id)
            .bind(record.at.millis())
            .bind(record.actor_id)
            .bind(&record.actor_email)
            .bind(&record.actor_groups)
            .bind(&record.category)
            .bind(&record.action)
            .bind(&record.event)
            .bind(&record.target_type)
            .bind(record.target_id)
            .bind(&record.target_label)
            .bind(&record.details)
            .bind(&record.ip)
            .bind(&record.prev_hash)
            .bind(&record.hash)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
            Ok(())
        }

        /// Claims `key` for this transaction in `email_reservations`: a live reservation of
        /// another holder makes it a duplicate. On PostgreSQL a concurrent claim of the same key
        /// waits on the unique index until this transaction ends, so the email checks that
        /// follow see each other's commits.
        async fn claim_email(tx: &mut Tx, key: &str, holder: &str, now: Timestamp, until: Timestamp) -> Result<()> {
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
            claimed.map(|_| ()).ok_or(StoreError::Duplicate { field: "email" })
        }

        async fn unclaim_email(tx: &mut Tx, key: &str) -> Result<()> {
            sqlx::query("DELETE FROM email_reservations WHERE email_key = $1")
                .bind(key)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
            Ok(())
        }

        /// A holder name for a claim that lives only inside its transaction.
        fn transient_holder() -> String {
            format!("tx-{:016x}", rand::random::<u64>())
        }

        /// Fills the users' groups, reading through `exec` (the pool, or a transaction).
        async fn groups_of_users<'e, E>(exec: E, users: &mut [UserRecord]) -> Result<()>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            if users.is_empty() {
                return Ok(());
            }
            let mut qb = QueryBuilder::<$db>::new(
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

        /// The row lock a read-modify-write takes on the rows of `table` it reads: PostgreSQL
        /// locks them until the commit; SQLite's write transaction already excludes every other
        /// writer.
        fn lock_rows(table: &str) -> String {
            if ROW_LOCKS {
                format!(" FOR UPDATE OF {table}")
            } else {
                String::new()
            }
        }

        /// A group other than Administrators with its permissions, read in `tx` and locked
        /// there until it ends (`NotFound` for the built-in group).
        async fn locked_group(tx: &mut Tx, id: i64) -> Result<GroupDetail> {
            let sql = format!(
                "SELECT g.id, g.caption, g.builtin, g.created_at, g.updated_at, g.version FROM access_groups g \
                 WHERE g.id = $1 AND g.builtin = FALSE{}",
                lock_rows("g")
            );
            let row = sqlx::query(&sql)
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
                .map(|r| Ok(TagRef { id: r.try_get(0).map_err(map_err)?, caption: r.try_get(1).map_err(map_err)? }))
                .collect::<Result<Vec<_>>>()?;
            Ok(GroupDetail {
                id,
                caption: row.try_get(1).map_err(map_err)?,
                builtin: row.try_get(2).map_err(map_err)?,
                permissions: codes.iter().filter_map(|c| Permission::from_code(c)).collect(),
                allowed_tags,
                created_at: Timestamp(row.try_get(3).map_err(map_err)?),
                updated_at: Timestamp(row.try_get(4).map_err(map_err)?),
                version: row.try_get(5).map_err(map_err)?,
            })
        }

        /// Runs `edit` on the row just read (and locked) in `tx`.
        fn decide<R, C>(edit: Edit<'_, R, C>, row: &R) -> Result<Decision<C>> {
            edit(row).map_err(StoreError::Rejected)
        }

        async fn set_user_groups(tx: &mut Tx, user_id: i64, group_ids: &[i64]) -> Result<()> {
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

        async fn set_group_permissions(tx: &mut Tx, group_id: i64, permissions: &PermissionSet) -> Result<()> {
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

        async fn count_admins_in<'e, E>(exec: E) -> Result<i64>
        where
            E: sqlx::Executor<'e, Database = $db>,
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

        async fn insert_group_in(tx: &mut Tx, caption: &str, permissions: &PermissionSet, at: Timestamp) -> Result<i64> {
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

        fn with_target_id(mut entry: AuditEntry, id: i64) -> AuditEntry {
            if entry.event.target_id.is_none() {
                entry.event.target_id = Some(id);
            }
            entry
        }

        impl $store {
            async fn groups_for_users(&self, users: &mut [UserRecord]) -> Result<()> {
                groups_of_users(&self.pool, users).await?;
                let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
                for (uid, tag) in self.allowed_tags_of("user_allowed_tags", "user_id", &ids).await? {
                    if let Some(u) = users.iter_mut().find(|u| u.id == uid) {
                        u.allowed_tags.push(tag);
                    }
                }
                Ok(())
            }

            async fn permissions_of_group(&self, id: i64, builtin: bool) -> Result<PermissionSet> {
                if builtin {
                    return Ok(PermissionSet::all());
                }
                let codes: Vec<String> =
                    sqlx::query_scalar("SELECT permission FROM group_permissions WHERE group_id = $1")
                        .bind(id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_err)?;
                Ok(codes.iter().filter_map(|c| Permission::from_code(c)).collect())
            }
        }

        #[async_trait]
        impl UserStore for $store {
            async fn reserve_email(&self, email_key: &str, holder: &str, now: Timestamp, until: Timestamp) -> Result<()> {
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

            async fn insert_user(&self, user: NewUser, reservation: Option<&str>, event: AuditEntry) -> Result<i64> {
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
                set_allowed_tags_in(&mut tx, "user_allowed_tags", "user_id", id, &user.allowed_tag_ids).await?;
                sqlx::query("UPDATE row_counts SET n = n + 1 WHERE name = 'users'")
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                append_in(&mut tx, with_target_id(event, id)).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(id)
            }

            async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>> {
                let sql = format!("SELECT {USER_COLS}{USER_FROM} WHERE u.id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(map_err)?;
                let Some(row) = row else { return Ok(None) };
                let mut users = vec![user_row(&row)?];
                self.groups_for_users(&mut users).await?;
                Ok(users.pop())
            }

            async fn user_by_email_key(&self, key: &str) -> Result<Option<UserRecord>> {
                let sql = format!("SELECT {USER_COLS}{USER_FROM} WHERE u.email_key = $1");
                let row = sqlx::query(&sql).bind(key).fetch_optional(&self.pool).await.map_err(map_err)?;
                row.as_ref().map(user_row).transpose()
            }

            async fn list_users(&self, q: &UserQuery) -> Result<Page<UserRecord>> {
                fn filters<'a>(qb: &mut QueryBuilder<'a, $db>, q: &'a UserQuery) {
                    qb.push(" WHERE 1 = 1");
                    if let Some(text) = q.text.as_deref().filter(|t| !t.is_empty()) {
                        let pattern = format!(
                            "%{}%",
                            text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
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
                }
                let unfiltered = q.text.as_deref().unwrap_or("").is_empty()
                    && q.status.is_none()
                    && q.group_id.is_none()
                    && q.allowed_tag_id.is_none()
                    && q.two_factor.is_none()
                    && q.has_ip_whitelist.is_none()
                    && q.creator_id.is_none()
                    && q.mask_data.is_none();
                let total = if unfiltered {
                    self.count_users().await?
                } else {
                    // The filters read only `u`, so the count needs no join to the creator.
                    let mut count = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM users u");
                    filters(&mut count, q);
                    count.build_query_scalar().fetch_one(&self.pool).await.map_err(map_err)?
                };

                let mut qb = QueryBuilder::<$db>::new(format!("SELECT {USER_COLS}"));
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
                    if let Some(p) = r.try_get::<Option<String>, _>(1).map_err(map_err)?.and_then(|c| Permission::from_code(&c)) {
                        set.insert(p);
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
                let sql = format!("SELECT {USER_COLS}{USER_FROM} WHERE u.id = $1{}", lock_rows("u"));
                let row = sqlx::query(&sql)
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
                    sqlx::query("UPDATE users SET password_hash = $2, must_change_password = $3 WHERE id = $1")
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
                    .map(|r| Ok((r.try_get(0).map_err(map_err)?, r.try_get(1).map_err(map_err)?)))
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
                let sql = format!(
                    "UPDATE users {RESERVE_ATTEMPT} WHERE id = $1 AND {NOT_LOCKED} \
                     {RESERVATION_COMMITS_WITHOUT_WAITING} RETURNING failed_attempts"
                );
                sqlx::query_scalar(&sql)
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

        #[async_trait]
        impl GroupStore for $store {
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
                let rows = sqlx::query("SELECT id, caption, builtin FROM access_groups ORDER BY builtin DESC, caption_key")
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
                let mut groups = rows.iter()
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
                for (gid, tag) in self.allowed_tags_of("group_allowed_tags", "group_id", &ids).await? {
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
                let mut qb = QueryBuilder::<$db>::new(
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
                for (gid, tag) in self.allowed_tags_of("group_allowed_tags", "group_id", ids).await? {
                    if let Some(g) = out.iter_mut().find(|g| g.id == gid) {
                        g.allowed_tags.push(tag);
                    }
                }
                Ok(out)
            }

            async fn insert_group(&self, caption: &str, permissions: &PermissionSet, allowed_tags: &[i64], event: AuditEntry) -> Result<i64> {
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
                sqlx::query("UPDATE access_groups SET updated_at = $2, version = version + 1 WHERE id = $1")
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

            async fn import_groups(&self, groups: &[(String, PermissionSet)], replace: bool, event: AuditEntry) -> Result<usize> {
                let mut tx = self.begin().await?;
                for (caption, permissions) in groups {
                    let existing: Option<(i64, bool)> = sqlx::query_as(
                        "SELECT id, builtin FROM access_groups WHERE caption_key = $1",
                    )
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
                                return Err(StoreError::Conflict(format!("{caption} is built in and can't be replaced")));
                            }
                            let mut n = 1;
                            let unique = loop {
                                let candidate = format!("{caption} ({n})");
                                let taken: Option<i64> =
                                    sqlx::query_scalar("SELECT id FROM access_groups WHERE caption_key = $1")
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
                let sql = format!(
                    "SELECT {USER_COLS}{USER_FROM} JOIN user_groups m ON m.user_id = u.id WHERE m.group_id = $1 ORDER BY u.id"
                );
                let rows = sqlx::query(&sql).bind(id).fetch_all(&self.pool).await.map_err(map_err)?;
                rows.iter().map(user_row).collect()
            }
        }

        const SESSION_COLS: &str =
            "id_hash, key, user_id, stage, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent";

        /// Binds a session's columns, in `SESSION_COLS` order, as $1 to $10.
        fn bind_session<'q>(
            q: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            s: &'q SessionRecord,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
            q.bind(&s.id_hash)
            .bind(&s.key)
            .bind(s.user_id)
            .bind(s.stage.code())
            .bind(&s.csrf_token)
            .bind(s.created_at.millis())
            .bind(s.last_seen_at.millis())
            .bind(s.expires_at.millis())
            .bind(&s.ip)
            .bind(&s.user_agent)
        }

        #[async_trait]
        impl SessionStore for $store {
            async fn insert_session(&self, s: &SessionRecord) -> Result<()> {
                let sql = format!("INSERT INTO sessions ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
                bind_session(sqlx::query(&sql), s).execute(&self.pool).await.map_err(map_err)?;
                Ok(())
            }

            async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>> {
                let row = sqlx::query(&format!("SELECT {SESSION_COLS} FROM sessions WHERE id_hash = $1"))
                    .bind(id_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(session_row).transpose()
            }

            async fn open_session(
                &self,
                replacing: Option<&str>,
                session: &SessionRecord,
                event: AuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                if let Some(old_hash) = replacing {
                    let gone = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                        .bind(old_hash)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    if gone.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    sqlx::query("DELETE FROM sign_in_codes WHERE session_hash = $1")
                        .bind(old_hash)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                const SIGNED_IN: &str = "SET failed_attempts = 0, locked_until = NULL";
                // One statement (PostgreSQL) or one call to SQLite's connection thread instead of
                // three. No session or event is written for an unknown user. On PostgreSQL each
                // part reads the one before it, so the rows are locked in the order every other
                // writer takes them (the user, then the chain head); SQLite locks the database.
                let sql = if DATA_MODIFYING_WITH {
                    format!(
                        "WITH signed_in AS (UPDATE users {SIGNED_IN}, last_sign_in_at = $6 WHERE id = $3 RETURNING id), \
                         opened AS (INSERT INTO sessions ({SESSION_COLS}) \
                         SELECT $1, $2, id, $4, $5, $6, $7, $8, $9, $10 FROM signed_in RETURNING user_id) \
                         UPDATE audit_head {BUMP_HEAD} FROM opened WHERE audit_head.id = 1 \
                         RETURNING audit_head.seq, audit_head.last_hash"
                    )
                } else {
                    format!(
                        "UPDATE users {SIGNED_IN}, last_sign_in_at = $6 WHERE id = $3; \
                         INSERT INTO sessions ({SESSION_COLS}) \
                         SELECT $1, $2, id, $4, $5, $6, $7, $8, $9, $10 FROM users WHERE id = $3; \
                         UPDATE audit_head {BUMP_HEAD} WHERE id = 1 \
                         AND EXISTS (SELECT 1 FROM sessions WHERE id_hash = $1) RETURNING seq, last_hash"
                    )
                };
                let head = bind_session(sqlx::query(&sql), session)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .ok_or(StoreError::NotFound)?;
                append_at_head(&mut tx, event, &head).await?;
                tx.commit().await.map_err(map_err)
            }

            async fn touch_session(&self, id_hash: &str, now: Timestamp) -> Result<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
                    .bind(id_hash)
                    .bind(now.millis())
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn delete_session(&self, id_hash: &str) -> Result<()> {
                sqlx::query("DELETE FROM sign_in_codes WHERE session_hash = $1")
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn delete_user_session(&self, user_id: i64, key: &str) -> Result<bool> {
                let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND key = $2")
                    .bind(user_id)
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_sessions_of_user(&self, user_id: i64, except_hash: Option<&str>) -> Result<u64> {
                let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
                    .bind(user_id)
                    .bind(except_hash.unwrap_or(""))
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(done.rows_affected())
            }

            async fn sessions_of_user(&self, user_id: i64) -> Result<Vec<SessionRecord>> {
                let rows = sqlx::query(&format!(
                    "SELECT {SESSION_COLS} FROM sessions WHERE user_id = $1 AND stage = 'full' ORDER BY last_seen_at DESC"
                ))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                rows.iter().map(session_row).collect()
            }

            async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
                let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(now.millis())
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(done.rows_affected())
            }
        }

        #[async_trait]
        impl CodeStore for $store {
            async fn put_code(&self, c: &CodeRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO sign_in_codes (session_hash, user_id, code_hash, expires_at, failures, created_at) \
                     VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (session_hash) DO UPDATE SET \
                     code_hash = excluded.code_hash, expires_at = excluded.expires_at, failures = 0, \
                     created_at = excluded.created_at",
                )
                .bind(&c.session_hash)
                .bind(c.user_id)
                .bind(&c.code_hash)
                .bind(c.expires_at.millis())
                .bind(c.created_at.millis())
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn code_for_session(&self, session_hash: &str) -> Result<Option<CodeRecord>> {
                let row = sqlx::query(
                    "SELECT session_hash, user_id, code_hash, expires_at, failures, created_at \
                     FROM sign_in_codes WHERE session_hash = $1",
                )
                .bind(session_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                row.map(|r| {
                    Ok(CodeRecord {
                        session_hash: r.try_get(0).map_err(map_err)?,
                        user_id: r.try_get(1).map_err(map_err)?,
                        code_hash: r.try_get(2).map_err(map_err)?,
                        expires_at: Timestamp(r.try_get(3).map_err(map_err)?),
                        failures: r.try_get(4).map_err(map_err)?,
                        created_at: Timestamp(r.try_get(5).map_err(map_err)?),
                    })
                })
                .transpose()
            }

            async fn code_failed(&self, session_hash: &str) -> Result<i64> {
                let n: Option<i64> = sqlx::query_scalar(
                    "UPDATE sign_in_codes SET failures = failures + 1 WHERE session_hash = $1 RETURNING failures",
                )
                .bind(session_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(n.unwrap_or(i64::MAX))
            }

            async fn take_code(&self, session_hash: &str, code_hash: &str, now: Timestamp) -> Result<bool> {
                let done = sqlx::query(
                    "DELETE FROM sign_in_codes WHERE session_hash = $1 AND code_hash = $2 AND expires_at > $3 AND failures < 5",
                )
                .bind(session_hash)
                .bind(code_hash)
                .bind(now.millis())
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_code(&self, session_hash: &str) -> Result<()> {
                sqlx::query("DELETE FROM sign_in_codes WHERE session_hash = $1")
                    .bind(session_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn record_code_send(&self, user_id: i64, at: Timestamp) -> Result<()> {
                sqlx::query("INSERT INTO code_sends (user_id, sent_at) VALUES ($1, $2)")
                    .bind(user_id)
                    .bind(at.millis())
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn code_sends_since(&self, user_id: i64, since: Timestamp) -> Result<(i64, Option<Timestamp>)> {
                let row = sqlx::query("SELECT COUNT(*), MAX(sent_at) FROM code_sends WHERE user_id = $1 AND sent_at > $2")
                    .bind(user_id)
                    .bind(since.millis())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)?;
                let count: i64 = row.try_get(0).map_err(map_err)?;
                let last: Option<i64> = row.try_get(1).map_err(map_err)?;
                Ok((count, last.map(Timestamp)))
            }
        }

        const EVENT_COLS: &str = "id, at, actor_id, actor_email, actor_groups, category, action, event, \
            target_type, target_id, target_label, details, ip, prev_hash, hash";

        #[async_trait]
        impl AuditStore for $store {
            async fn append_event(&self, entry: AuditEntry) -> Result<()> {
                let mut tx = self.begin().await?;
                append_in(&mut tx, entry).await?;
                tx.commit().await.map_err(map_err)
            }

            async fn append_events(&self, entries: Vec<AuditEntry>) -> Result<()> {
                if entries.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin().await?;
                let n = entries.len() as i64;
                let head = sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, last_hash")
                    .bind(n)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let last: i64 = head.try_get("seq").map_err(map_err)?;
                let mut prev: String = head.try_get("last_hash").map_err(map_err)?;
                let mut records = Vec::with_capacity(entries.len());
                for (i, entry) in entries.into_iter().enumerate() {
                    let r = chained_record(entry, last - n + 1 + i as i64, prev);
                    prev = r.hash.clone();
                    records.push(r);
                }
                // 15 binds a row: 500 rows stay under both databases' bind limits.
                for chunk in records.chunks(500) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO events (id, at, actor_id, actor_email, actor_groups, category, action, event, \
                         target_type, target_id, target_label, details, ip, prev_hash, hash) ",
                    );
                    qb.push_values(chunk, |mut b, r| {
                        b.push_bind(r.id)
                            .push_bind(r.at.millis())
                            .push_bind(r.actor_id)
                            .push_bind(&r.actor_email)
                            .push_bind(&r.actor_groups)
                            .push_bind(&r.category)
                            .push_bind(&r.action)
                            .push_bind(&r.event)
                            .push_bind(&r.target_type)
                            .push_bind(r.target_id)
                            .push_bind(&r.target_label)
                            .push_bind(&r.details)
                            .push_bind(&r.ip)
                            .push_bind(&r.prev_hash)
                            .push_bind(&r.hash);
                    });
                    qb.build().execute(&mut *tx).await.map_err(map_err)?;
                }
                sqlx::query("UPDATE audit_head SET last_hash = $1 WHERE id = 1")
                    .bind(&prev)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn list_events(&self, visible: &EventVisibility, q: &EventQuery) -> Result<Vec<EventRecord>> {
                let mut qb = QueryBuilder::<$db>::new(format!("SELECT {EVENT_COLS} FROM events WHERE 1 = 1"));
                if let domain::ClientScope::Tags(tags) = &visible.client_scope {
                    // An event about one client shows when the client is in scope; one about many
                    // (an import, an export, a bulk change) only to whoever made it.
                    qb.push(" AND (CASE WHEN target_type = 'client' THEN ");
                    if tags.is_empty() {
                        qb.push("1 = 0");
                    } else {
                        let tags: Vec<i64> = tags.iter().copied().collect();
                        push_carries_tag(&mut qb, "events.target_id", &tags, PER_ROW);
                    }
                    qb.push(" WHEN category = 'clients' AND (target_type IS NULL OR target_type = 'bulk') THEN actor_id = ");
                    qb.push_bind(visible.viewer_id);
                    qb.push(" ELSE 1 = 1 END)");
                }
                if let Some(a) = q.actor_id {
                    qb.push(" AND actor_id = ");
                    qb.push_bind(a);
                }
                if let Some(c) = &q.category {
                    qb.push(" AND category = ");
                    qb.push_bind(c.as_str());
                }
                if let Some(e) = &q.event {
                    qb.push(" AND event = ");
                    qb.push_bind(e.as_str());
                }
                if let Some(t) = &q.target_type {
                    qb.push(" AND target_type = ");
                    qb.push_bind(t.as_str());
                }
                if let Some(t) = q.target_id {
                    qb.push(" AND target_id = ");
                    qb.push_bind(t);
                }
                // Ids follow commit order and an event's time is taken before its transaction
                // commits (at most the SMTP timeout, capped at 5 minutes, earlier), so a time
                // range is also an id range, which the (actor|target|category, id) indexes can
                // use. Each bound is one lookup on the `at` index (a scalar subquery, evaluated
                // once, in the same round trip):
                // - any event timed before `from - SLACK` committed before `from`, so before every
                //   event timed at or after `from`: the latest such event's id is a lower bound;
                // - any event timed at or after `to + SLACK` committed after every event timed
                //   before `to`: the earliest such event's id is an upper bound.
                // Either event will do, so no tie-break on equal times is needed (a tie-break
                // cost SQLite a temporary B-tree per query). The exact time conditions stay.
                const SLACK_MS: i64 = 600_000;
                if let Some(f) = q.from {
                    qb.push(" AND id > COALESCE((SELECT id FROM events WHERE at < ");
                    qb.push_bind(f.millis() - SLACK_MS);
                    qb.push(" ORDER BY at DESC LIMIT 1), 0) AND at >= ");
                    qb.push_bind(f.millis());
                }
                if let Some(t) = q.to {
                    qb.push(" AND id < COALESCE((SELECT id FROM events WHERE at >= ");
                    qb.push_bind(t.millis() + SLACK_MS);
                    qb.push(" ORDER BY at LIMIT 1), 9223372036854775807) AND at < ");
                    qb.push_bind(t.millis());
                }
                if let Some(b) = q.before_id {
                    qb.push(" AND id < ");
                    qb.push_bind(b);
                }
                qb.push(" ORDER BY id DESC LIMIT ");
                qb.push_bind(q.limit);
                let rows = qb.build().fetch_all(&self.pool).await.map_err(map_err)?;
                rows.iter().map(event_row).collect()
            }

            async fn all_events(&self, after_id: i64, limit: i64) -> Result<Vec<EventRecord>> {
                let rows = sqlx::query(&format!("SELECT {EVENT_COLS} FROM events WHERE id > $1 ORDER BY id LIMIT $2"))
                    .bind(after_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(event_row).collect()
            }

            async fn chain_head(&self) -> Result<(i64, String)> {
                let row = sqlx::query("SELECT seq, last_hash FROM audit_head WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok((row.try_get(0).map_err(map_err)?, row.try_get(1).map_err(map_err)?))
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
                Ok(())
            }

            async fn probe(&self) -> Result<()> {
                self.probe_outside_pool().await
            }

            async fn analyze(&self) -> Result<()> {
                sqlx::raw_sql(ANALYZE_SQL).execute(&self.pool).await.map_err(map_err)?;
                Ok(())
            }

            async fn migrate(&self) -> Result<Vec<String>> {
                let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
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
                $name
            }
        }

    };
}

pub(crate) use impl_store;
