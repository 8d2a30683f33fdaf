//! Clients › Select › Edit selected clients: **Assign Tags**, **Remove Tags** and **Select
//! Status** for the clients ticked on a page, or for every client matching the list's filters.
//!
//! A page's ticks (at most a page) change in one transaction. "Every client matching" can be a
//! million clients, so it becomes a job done in batches of [`BATCH`] by whichever instance holds
//! its lease: each batch changes its clients, writes one event and moves the job's cursor in one
//! transaction, so a job stopped by a crash or a restart resumes after its last batch.
//!
//! One event per batch, not per client: it names the change, the selection (the filters), the
//! number of clients changed and their first and last id. A million per-client events would
//! grow the log (and its hash chain) by a million rows for one decision; the batch event keeps
//! who changed what, when and on which clients, and the job page keeps the whole count.
//!
//! Each batch re-reads the person's authority: a job stops when its owner is disabled or loses
//! the right, and their Allowed Client Tags are applied batch by batch.

use crate::clients::{ClientListRequest, SearchField};
use crate::tags::tag_captions;
use crate::{Actor, App, AppError};
use domain::audit::{AuditAction, Category, Event, PersonalKind};
use domain::client::ClientStatus;
use domain::{Action, Section, Timestamp, UserStatus};
use std::sync::Arc;
use store::{Batch, BatchOutcome, BulkChange, BulkJob, BulkState, TagRef};

/// Clients per batch (and per transaction).
pub const BATCH: i64 = 1000;
/// The most ids one page's selection may name.
pub const MAX_IDS: usize = 100;
/// How long an instance holds a job between batches before another may take it over.
const LEASE_MS: i64 = 60_000;

/// Which clients: the ticked ones, or every one matching the list's filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Ids(Vec<i64>),
    Matching,
}

/// What the person chose under Edit selected clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkAction {
    AssignTags(Vec<i64>),
    RemoveTags(Vec<i64>),
    /// `active` or `blocked`.
    SetStatus(String),
}

/// What the confirmation names.
#[derive(Debug, Clone)]
pub struct BulkPlan {
    pub count: i64,
    /// "Assign Tags: VIP, EU desk".
    pub change: String,
}

#[derive(Debug, Clone)]
pub enum BulkResult {
    /// A page's selection, done: clients selected and of those changed.
    Done { matched: i64, changed: i64 },
    /// A job was started; its page shows the progress.
    Started { job: i64 },
}

/// A job as its page shows it.
#[derive(Debug, Clone)]
pub struct BulkJobView {
    pub id: i64,
    pub change: String,
    pub selection: String,
    pub total: i64,
    pub done: i64,
    pub changed: i64,
    pub state: BulkState,
    pub message: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The change with its tags resolved, as the store applies it and events name it.
struct Resolved {
    change: BulkChange,
    label: String,
}

impl App {
    /// Validates the action against the actor: the rights it needs, and tags of their scope.
    async fn resolve_action(
        &self,
        actor: &Actor,
        action: &BulkAction,
    ) -> Result<Resolved, AppError> {
        self.authorize(
            actor,
            Section::Clients,
            Action::Update,
            "edit selected clients",
        )
        .await?;
        let tags = |ids: &Vec<i64>| {
            let ids = ids.clone();
            async move {
                if ids.is_empty() {
                    return Err(AppError::field("tags", "Choose at least one tag"));
                }
                let tags: Vec<TagRef> = self
                    .existing_tags(&ids)
                    .await?
                    .map_err(|m| AppError::field("tags", m))?;
                self.guard_own_tags(actor, &tags, "edit selected clients' tags")
                    .await?;
                Ok(tags)
            }
        };
        Ok(match action {
            BulkAction::AssignTags(ids) => {
                let t = tags(ids).await?;
                Resolved {
                    label: format!("Assign Tags: {}", tag_captions(&t)),
                    change: BulkChange::AssignTags(t.iter().map(|t| t.id).collect()),
                }
            }
            BulkAction::RemoveTags(ids) => {
                let t = tags(ids).await?;
                Resolved {
                    label: format!("Remove Tags: {}", tag_captions(&t)),
                    change: BulkChange::RemoveTags(t.iter().map(|t| t.id).collect()),
                }
            }
            BulkAction::SetStatus(code) => {
                let status = ClientStatus::from_code(code)
                    .ok_or_else(|| AppError::field("status", "Choose Active or Blocked"))?;
                if status == ClientStatus::Blocked {
                    self.authorize(actor, Section::Clients, Action::Delete, "block clients")
                        .await?;
                }
                Resolved {
                    label: format!("Select Status: {}", status.label()),
                    change: BulkChange::SetStatus(status),
                }
            }
        })
    }

    fn checked_ids(selection: &Selection) -> Result<&[i64], AppError> {
        match selection {
            Selection::Matching => Ok(&[]),
            Selection::Ids(ids) if ids.is_empty() => {
                Err(AppError::field("ids", "Select at least one client"))
            }
            Selection::Ids(ids) if ids.len() > MAX_IDS => Err(AppError::field(
                "ids",
                format!("Select at most {MAX_IDS} clients, or use Select all"),
            )),
            Selection::Ids(ids) => Ok(ids),
        }
    }

    /// The confirmation's figures: how many clients the change would touch.
    pub async fn plan_bulk(
        &self,
        actor: &Actor,
        req: &ClientListRequest,
        selection: &Selection,
        action: &BulkAction,
    ) -> Result<BulkPlan, AppError> {
        let resolved = self.resolve_action(actor, action).await?;
        let count = match selection {
            Selection::Ids(_) => {
                let ids = Self::checked_ids(selection)?;
                let mut found = 0;
                for id in ids {
                    if self
                        .store
                        .client_by_id(actor.client_scope(), *id)
                        .await?
                        .is_some()
                    {
                        found += 1;
                    }
                }
                found
            }
            Selection::Matching => {
                let filter = self.client_filter(actor, req).await?;
                self.store
                    .count_clients(actor.client_scope(), &filter, i64::MAX - 1)
                    .await?
                    .n
            }
        };
        Ok(BulkPlan {
            count,
            change: resolved.label,
        })
    }

    /// Applies the change: a page's selection at once, every matching client as a job.
    pub async fn apply_bulk(
        self: &Arc<Self>,
        actor: &Actor,
        req: &ClientListRequest,
        selection: &Selection,
        action: &BulkAction,
    ) -> Result<BulkResult, AppError> {
        let resolved = self.resolve_action(actor, action).await?;
        let filter = self.client_filter(actor, req).await?;
        let selection_label = EventSelection::of(req, selection);
        match selection {
            Selection::Ids(_) => {
                let ids = Self::checked_ids(selection)?;
                let batch = Batch {
                    scope: actor.client_scope(),
                    filter: &filter,
                    ids,
                    after_id: 0,
                    upto_id: i64::MAX,
                    limit: MAX_IDS as i64,
                    change: &resolved.change,
                    job_id: None,
                    at: self.now(),
                };
                let event = |o: &BatchOutcome| {
                    self.entry(
                        Some(actor),
                        None,
                        batch_event(None, &resolved.label, &selection_label, o),
                    )
                };
                let o = self.store.apply_client_batch(batch, &event).await?;
                Ok(BulkResult::Done {
                    matched: o.matched,
                    changed: o.changed,
                })
            }
            Selection::Matching => {
                let total = self
                    .store
                    .count_clients(actor.client_scope(), &filter, i64::MAX - 1)
                    .await?
                    .n;
                let now = self.now();
                let job = BulkJob {
                    id: 0,
                    user_id: actor.id(),
                    request: request_json(req),
                    change: action_json(action),
                    upto_id: self.store.max_client_id().await?,
                    total,
                    done: 0,
                    changed: 0,
                    cursor: 0,
                    state: BulkState::Running,
                    message: String::new(),
                    created_at: now,
                    updated_at: now,
                };
                let id = self.store.insert_bulk_job(&job).await?;
                let app = Arc::clone(self);
                tokio::spawn(async move { app.resume_bulk_jobs().await });
                Ok(BulkResult::Started { job: id })
            }
        }
    }

    /// A job's progress, for the person who started it (anyone else gets 404).
    pub async fn bulk_job(&self, actor: &Actor, id: i64) -> Result<BulkJobView, AppError> {
        let job = self
            .store
            .bulk_job(id)
            .await?
            .filter(|j| j.user_id == actor.id())
            .ok_or(AppError::NotFound)?;
        let (req, action) = parse_job(&job);
        let change = match &action {
            Some(a) => self
                .resolve_label(a)
                .await
                .unwrap_or_else(|_| "a change".into()),
            None => "a change".into(),
        };
        Ok(BulkJobView {
            id: job.id,
            change,
            selection: describe(&req.unwrap_or_default(), &Selection::Matching),
            total: job.total,
            done: job.done,
            changed: job.changed,
            state: job.state,
            message: job.message,
            created_at: job.created_at,
            updated_at: job.updated_at,
        })
    }

    async fn resolve_label(&self, action: &BulkAction) -> Result<String, AppError> {
        Ok(match action {
            BulkAction::AssignTags(ids) => format!(
                "Assign Tags: {}",
                tag_captions(&self.store.tags_by_ids(ids).await?)
            ),
            BulkAction::RemoveTags(ids) => format!(
                "Remove Tags: {}",
                tag_captions(&self.store.tags_by_ids(ids).await?)
            ),
            BulkAction::SetStatus(code) => format!(
                "Select Status: {}",
                ClientStatus::from_code(code)
                    .map(|s| s.label())
                    .unwrap_or("?")
            ),
        })
    }

    /// Works every job that is running and not leased by another instance, until none is left
    /// (called when a job starts, and by the server's housekeeping to resume interrupted ones).
    pub async fn resume_bulk_jobs(self: &Arc<Self>) {
        loop {
            let now = self.now();
            let claimed = self
                .store
                .claim_bulk_job(now, Timestamp(now.millis() + LEASE_MS))
                .await;
            let job = match claimed {
                Ok(Some(job)) => job,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim a bulk job");
                    return;
                }
            };
            let id = job.id;
            let (state, message) = match self.work_bulk_job(job).await {
                Ok(message) => (BulkState::Finished, message),
                Err(AppError::Unavailable) => {
                    // The lease runs out and this or another instance resumes it.
                    tracing::warn!(job = id, "bulk job paused: database unavailable");
                    return;
                }
                Err(e) => (BulkState::Failed, format!("Stopped: {e}")),
            };
            if let Err(e) = self
                .store
                .end_bulk_job(id, state, &message, self.now())
                .await
            {
                tracing::warn!(error = %e, job = id, "could not end a bulk job");
                return;
            }
        }
    }

    /// Runs a claimed job's batches from its cursor; the job's owner is re-read every batch.
    async fn work_bulk_job(&self, job: BulkJob) -> Result<String, AppError> {
        let (Some(req), Some(action)) = parse_job(&job) else {
            return Err(AppError::Internal("the job's request can't be read".into()));
        };
        let mut cursor = job.cursor;
        let mut changed = job.changed;
        loop {
            let actor = self.job_owner(job.user_id).await?;
            let resolved = self.resolve_action(&actor, &action).await?;
            let filter = self.client_filter(&actor, &req).await?;
            let batch = Batch {
                scope: actor.client_scope(),
                filter: &filter,
                ids: &[],
                after_id: cursor,
                upto_id: job.upto_id,
                limit: BATCH,
                change: &resolved.change,
                job_id: Some(job.id),
                at: self.now(),
            };
            let selection = EventSelection::of(&req, &Selection::Matching);
            let event = |o: &BatchOutcome| {
                self.entry(
                    Some(&actor),
                    None,
                    batch_event(Some(job.id), &resolved.label, &selection, o),
                )
            };
            let outcome = self.store.apply_client_batch(batch, &event).await?;
            changed += outcome.changed;
            match outcome.last_id {
                Some(last) => cursor = last,
                None => return Ok(format!("Done: {changed} client(s) changed")),
            }
        }
    }

    /// The job's owner as an actor, or why the job must stop.
    async fn job_owner(&self, user_id: i64) -> Result<Actor, AppError> {
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .filter(|u| u.status == UserStatus::Enabled)
            .ok_or_else(|| AppError::Forbidden("the user who started it is disabled".into()))?;
        let (is_admin, permissions) = self.store.permissions_of_user(user_id).await?;
        let scope = self.store.scope_sources_of_user(user_id).await?;
        Ok(Actor::new(
            store::Principal {
                user,
                is_admin,
                permissions,
                scope,
            },
            None,
            None,
            None,
        ))
    }
}

/// The selection as the event log keeps it: a search by a personal field has its text in a
/// change of its own, marked as that kind of personal data, so it reaches a viewer with Mask
/// data on (and a SIEM fed with masking) masked.
struct EventSelection {
    description: String,
    search: Option<(PersonalKind, String)>,
}

impl EventSelection {
    fn of(req: &ClientListRequest, selection: &Selection) -> Self {
        let kind = match req.field {
            SearchField::Name => Some(PersonalKind::Name),
            SearchField::Email => Some(PersonalKind::Email),
            SearchField::Phone => Some(PersonalKind::Phone),
            SearchField::Id => None,
        };
        match kind {
            Some(kind) if *selection == Selection::Matching && !req.text.trim().is_empty() => {
                let without = ClientListRequest {
                    text: "…".into(),
                    ..req.clone()
                };
                Self {
                    description: describe(&without, selection),
                    search: Some((kind, req.text.trim().to_string())),
                }
            }
            _ => Self {
                description: describe(req, selection),
                search: None,
            },
        }
    }
}

fn batch_event(
    job: Option<i64>,
    change: &str,
    selection: &EventSelection,
    o: &BatchOutcome,
) -> Event {
    let mut e = Event::new(
        Category::Clients,
        AuditAction::Update,
        "Clients changed in bulk",
    )
    .change("change", "", change)
    .change("selection", "", &selection.description);
    if let Some((kind, text)) = &selection.search {
        e = e.personal_change("search", *kind, "", text);
    }
    let mut e = e.change("clients changed", "", o.changed.to_string());
    if let (Some(first), Some(last)) = (o.first_id, o.last_id) {
        e = e.change("client ids", "", format!("{first}–{last}"));
    }
    Event {
        target_type: Some("bulk".into()),
        target_id: job,
        target_label: Some(match job {
            Some(id) => format!("Bulk job {id}"),
            None => "Selected clients".into(),
        }),
        ..e
    }
}

/// The selection in words, for the event and the job page.
fn describe(req: &ClientListRequest, selection: &Selection) -> String {
    if let Selection::Ids(ids) = selection {
        let list: Vec<String> = ids.iter().map(ToString::to_string).collect();
        return format!("clients {}", list.join(", "));
    }
    let mut parts = Vec::new();
    if !req.text.trim().is_empty() {
        parts.push(format!(
            "{} starts with {:?}",
            req.field.label(),
            req.text.trim()
        ));
    }
    for (name, value) in [
        ("country", &req.country),
        ("role", &req.role),
        ("status", &req.status),
        ("registered from", &req.from),
        ("registered to", &req.to),
    ] {
        if !value.trim().is_empty() {
            parts.push(format!("{name} {}", value.trim()));
        }
    }
    if !req.tags.is_empty() {
        let ids: Vec<String> = req.tags.iter().map(ToString::to_string).collect();
        parts.push(format!("tag ids {}", ids.join(", ")));
    }
    if parts.is_empty() {
        "every client".into()
    } else {
        format!("every client where {}", parts.join(", "))
    }
}

fn request_json(req: &ClientListRequest) -> String {
    serde_json::json!({
        "field": req.field.code(),
        "text": req.text,
        "country": req.country,
        "role": req.role,
        "status": req.status,
        "from": req.from,
        "to": req.to,
        "tags": req.tags,
    })
    .to_string()
}

fn action_json(action: &BulkAction) -> String {
    match action {
        BulkAction::AssignTags(t) => serde_json::json!({"assign_tags": t}),
        BulkAction::RemoveTags(t) => serde_json::json!({"remove_tags": t}),
        BulkAction::SetStatus(s) => serde_json::json!({"status": s}),
    }
    .to_string()
}

/// The stored request and action, read back (`None` if the row can't be read).
fn parse_job(job: &BulkJob) -> (Option<ClientListRequest>, Option<BulkAction>) {
    use serde_json::Value;
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let ids = |v: &Value| -> Option<Vec<i64>> { v.as_array()?.iter().map(Value::as_i64).collect() };
    let req = serde_json::from_str::<Value>(&job.request)
        .ok()
        .map(|v| ClientListRequest {
            field: crate::clients::SearchField::from_code(&text(&v, "field")).unwrap_or_default(),
            text: text(&v, "text"),
            country: text(&v, "country"),
            role: text(&v, "role"),
            status: text(&v, "status"),
            from: text(&v, "from"),
            to: text(&v, "to"),
            tags: ids(&v["tags"]).unwrap_or_default(),
            ..Default::default()
        });
    let action = serde_json::from_str::<Value>(&job.change)
        .ok()
        .and_then(|v| {
            if let Some(t) = ids(&v["assign_tags"]) {
                Some(BulkAction::AssignTags(t))
            } else if let Some(t) = ids(&v["remove_tags"]) {
                Some(BulkAction::RemoveTags(t))
            } else {
                v["status"]
                    .as_str()
                    .map(|s| BulkAction::SetStatus(s.into()))
            }
        });
    (req, action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_reads_back_what_was_stored() {
        let req = ClientListRequest {
            text: "ann".into(),
            country: "GB".into(),
            tags: vec![3, 4],
            ..Default::default()
        };
        for action in [
            BulkAction::AssignTags(vec![1, 2]),
            BulkAction::RemoveTags(vec![5]),
            BulkAction::SetStatus("blocked".into()),
        ] {
            let job = BulkJob {
                id: 1,
                user_id: 1,
                request: request_json(&req),
                change: action_json(&action),
                upto_id: 9,
                total: 0,
                done: 0,
                changed: 0,
                cursor: 0,
                state: BulkState::Running,
                message: String::new(),
                created_at: Timestamp(0),
                updated_at: Timestamp(0),
            };
            let (r, a) = parse_job(&job);
            let r = r.unwrap();
            assert_eq!(
                (r.text, r.country, r.tags),
                ("ann".into(), "GB".into(), vec![3, 4])
            );
            assert_eq!(a, Some(action));
        }
    }

    #[test]
    fn a_search_by_a_personal_field_goes_in_the_event_as_personal_data() {
        let req = ClientListRequest {
            field: SearchField::Email,
            text: " joanna.smith@ ".into(),
            country: "GB".into(),
            ..Default::default()
        };
        let s = EventSelection::of(&req, &Selection::Matching);
        assert!(!s.description.contains("joanna"), "{}", s.description);
        assert!(s.description.contains("GB"));
        assert_eq!(
            s.search,
            Some((PersonalKind::Email, "joanna.smith@".into()))
        );
        let e = batch_event(None, "status", &s, &BatchOutcome::default());
        let search = e.changes.iter().find(|c| c.field == "search").unwrap();
        assert_eq!(search.personal, Some(PersonalKind::Email));
        let by_id = ClientListRequest {
            field: SearchField::Id,
            text: "42".into(),
            ..Default::default()
        };
        let s = EventSelection::of(&by_id, &Selection::Matching);
        assert!(s.search.is_none() && s.description.contains("42"));
    }
}
