//! The event log: a hash chain appended in the transaction of each change.

use super::clients::{push_carries_tag, PER_ROW};
use super::{decode, BackendStore, Db, DbRow, Tx, DIALECT};
use crate::audit_chain::row_hash;
use crate::rows::EventRow;
use crate::*;
use async_trait::async_trait;
use const_format::formatcp;
use domain::audit::Event;
use sqlx::{QueryBuilder, Row};

pub(super) fn event_row(r: &DbRow) -> Result<EventRecord> {
    Ok(decode::<EventRow>(r)?.into())
}

pub(super) fn details_json(event: &Event) -> String {
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
pub(super) fn chained_record(entry: AuditEntry, id: i64, prev_hash: String) -> EventRecord {
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

pub(super) const INSERT_EVENT: &str =
    "INSERT INTO events (id, at, actor_id, actor_email, actor_groups, category, \
     action, event, target_type, target_id, target_label, details, ip, prev_hash, hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

/// Takes the next event id from the chain head. The update takes the head's row lock, so
/// concurrent writers append one after another and the chain stays linear.
pub(super) const BUMP_HEAD: &str = "SET seq = seq + 1";

/// Appends one event to the chain inside `tx`. Where the backend allows
/// (`Dialect::data_modifying_with`), the row is inserted and the head's hash set in one statement.
pub(super) async fn append_in(tx: &mut Tx, entry: AuditEntry) -> Result<()> {
    let head = sqlx::query(formatcp!(
        "UPDATE audit_head {BUMP_HEAD} WHERE id = 1 RETURNING seq, last_hash"
    ))
    .fetch_one(&mut **tx)
    .await
    .map_err(map_err)?;
    append_at_head(tx, entry, &head).await
}

/// Appends one event after `head`: the `seq, last_hash` that a `BUMP_HEAD` of
/// `audit_head` returned in `tx` (and whose row lock `tx` still holds).
pub(super) async fn append_at_head(tx: &mut Tx, entry: AuditEntry, head: &DbRow) -> Result<()> {
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
    const INSERT: &str = if DIALECT.data_modifying_with {
        formatcp!(
            "WITH inserted AS ({INSERT_EVENT}) UPDATE audit_head SET last_hash = $15 WHERE id = 1"
        )
    } else {
        // SQLite runs both statements in one call to its connection thread.
        formatcp!("{INSERT_EVENT}; UPDATE audit_head SET last_hash = $15 WHERE id = 1")
    };
    sqlx::query(INSERT)
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
    appended(1);
    Ok(())
}

/// Counts events written into a transaction (one that later rolls back is counted too: rare,
/// and the count is for watching the rate, not for reconciling the log).
fn appended(n: usize) {
    metrics::counter!("backoffice_event_log_appends_total").increment(n as u64);
}

pub(super) const EVENT_COLS: &str =
    "id, at, actor_id, actor_email, actor_groups, category, action, event, \
    target_type, target_id, target_label, details, ip, prev_hash, hash";

/// The events `q` selects that `visible` lets the viewer see, newest first (oldest first when
/// `q` asks): `select` (the columns) followed by the conditions, the keysets, the order and the
/// limit.
fn event_list_query<'a>(
    select: &str,
    visible: &'a EventVisibility,
    q: &'a EventQuery,
) -> QueryBuilder<'a, Db> {
    let mut qb = QueryBuilder::<Db>::new(format!("{select} FROM events WHERE 1 = 1"));
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
    if let Some(a) = q.after_id {
        qb.push(" AND id > ");
        qb.push_bind(a);
    }
    qb.push(if q.oldest_first {
        " ORDER BY id ASC LIMIT "
    } else {
        " ORDER BY id DESC LIMIT "
    });
    qb.push_bind(q.limit);
    qb
}

/// An export page's columns, as the page's query reads them (the chain hashes are not
/// exported).
const EXPORT_COLS: &str = "id, at, actor_id, actor_email, actor_groups, category, action, event, \
    target_type, target_id, target_label, details, ip";

/// What an export page's statement answers, in one row: the page's row count, its last (lowest)
/// id and its rows as one JSON text, in the order the page's query lists them, each row an
/// array of texts (or nulls) in the order of [`crate::ExportedEvent`]; `FROM (` the page's
/// query follows, then `) AS page`.
const EXPORT_PAGE: &str = formatcp!(
    "SELECT COUNT(*), MIN(id), COALESCE({agg}({open}CAST(id AS TEXT), CAST(at AS TEXT), \
     CAST(actor_id AS TEXT), actor_email, actor_groups, category, action, event, target_type, \
     CAST(target_id AS TEXT), target_label, details, ip{close}){text}, '[]') FROM (",
    agg = DIALECT.json_agg,
    open = DIALECT.json_row.0,
    close = DIALECT.json_row.1,
    text = DIALECT.json_text,
);

#[async_trait]
impl AuditStore for BackendStore {
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
        let head = sqlx::query(
            "UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, last_hash",
        )
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
            let mut qb = QueryBuilder::<Db>::new(
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
        tx.commit().await.map_err(map_err)?;
        appended(records.len());
        Ok(())
    }

    async fn list_events(
        &self,
        visible: &EventVisibility,
        q: &EventQuery,
    ) -> Result<Vec<EventRecord>> {
        let rows = event_list_query(formatcp!("SELECT {EVENT_COLS}"), visible, q)
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(event_row).collect()
    }

    async fn export_events_page(
        &self,
        visible: &EventVisibility,
        q: &EventQuery,
    ) -> Result<EventExportPage> {
        // Newest first, paged by `before_id` (the page's cursor is its lowest id).
        let q = &EventQuery {
            after_id: None,
            oldest_first: false,
            ..q.clone()
        };
        let mut qb = event_list_query(formatcp!("{EXPORT_PAGE}SELECT {EXPORT_COLS}"), visible, q);
        qb.push(") AS page");
        let (rows, last_id, events): (i64, Option<i64>, String) = qb
            .build_query_as()
            .fetch_one(self.export_reads())
            .await
            .map_err(map_err)?;
        Ok(EventExportPage::new(rows, last_id, events))
    }

    async fn all_events(&self, after_id: i64, limit: i64) -> Result<Vec<EventRecord>> {
        let rows = sqlx::query(formatcp!(
            "SELECT {EVENT_COLS} FROM events WHERE id > $1 ORDER BY id LIMIT $2"
        ))
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
        Ok((
            row.try_get(0).map_err(map_err)?,
            row.try_get(1).map_err(map_err)?,
        ))
    }
}
