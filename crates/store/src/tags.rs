//! Client tags and bulk changes: the port. The SQL is in `sql_tags.rs`, shared by both backends.
//!
//! Guarantees: a tag's `clients` counter changes in the transaction that adds or removes its
//! clients; a tag named in anyone's Allowed Client Tags can't be deleted (deleting it would
//! widen them to every client); a bulk batch changes its clients, appends its event and moves
//! its job's cursor in one transaction, so an interrupted job resumes after the last batch that
//! committed and no client is changed twice.

use crate::{AuditEntry, ClientFilter, Edit, Result, ScopeSources, TagRecord, TagRef};
use async_trait::async_trait;
use domain::client::ClientStatus;
use domain::{ClientScope, Timestamp};

/// What a bulk change does to each selected client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkChange {
    AssignTags(Vec<i64>),
    RemoveTags(Vec<i64>),
    SetStatus(ClientStatus),
}

/// A bulk change to every client matching a filter, as stored.
#[derive(Debug, Clone)]
pub struct BulkJob {
    pub id: i64,
    pub user_id: i64,
    /// The app's description of the selection and of the change (JSON), read back to resume.
    pub request: String,
    pub change: String,
    /// Clients created after the job started are not part of it.
    pub upto_id: i64,
    /// Matching clients when the job started.
    pub total: i64,
    /// Clients looked at so far, and of those the ones that changed.
    pub done: i64,
    pub changed: i64,
    /// The last client id done.
    pub cursor: i64,
    pub state: BulkState,
    pub message: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkState {
    Running,
    Finished,
    Failed,
}

impl BulkState {
    pub fn code(self) -> &'static str {
        match self {
            BulkState::Running => "running",
            BulkState::Finished => "finished",
            BulkState::Failed => "failed",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [BulkState::Running, BulkState::Finished, BulkState::Failed]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// One batch of a bulk change: which clients, and the job whose cursor it moves (none for a
/// selection of ids on one page, done at once).
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    pub scope: &'a ClientScope,
    pub filter: &'a ClientFilter,
    /// Only these ids (a page's checkboxes); empty for "every client matching the filter".
    pub ids: &'a [i64],
    pub after_id: i64,
    pub upto_id: i64,
    pub limit: i64,
    pub change: &'a BulkChange,
    pub job_id: Option<i64>,
    pub at: Timestamp,
}

/// What a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    /// Clients selected by the batch, and of them the ones the change altered.
    pub matched: i64,
    pub changed: i64,
    pub first_id: Option<i64>,
    pub last_id: Option<i64>,
}

/// Builds a batch's event from what it did (called inside the batch's transaction).
pub type BatchEvent<'a> = &'a (dyn Fn(&BatchOutcome) -> AuditEntry + Send + Sync);

#[async_trait]
pub trait TagStore: Send + Sync {
    /// Every tag by caption, with its client count and how many scopes name it.
    async fn list_tags(&self) -> Result<Vec<TagRecord>>;
    /// Every tag's id and caption, by caption (pickers and filters: no counts).
    async fn tag_refs(&self) -> Result<Vec<TagRef>>;
    /// The tags with these ids that exist, by caption.
    async fn tags_by_ids(&self, ids: &[i64]) -> Result<Vec<TagRef>>;
    /// Tags by caption key (lower-cased), for imports and the API.
    async fn tags_by_keys(&self, keys: &[String]) -> Result<Vec<TagRef>>;
    /// `Duplicate { field: "caption" }` when the caption is taken.
    async fn insert_tag(&self, caption: &str, event: AuditEntry) -> Result<i64>;
    /// Renames the tag if its caption is still `from` (the one the event's "before" names);
    /// `Conflict` when it was renamed meanwhile, `NotFound` when it is gone.
    async fn rename_tag(&self, id: i64, from: &str, caption: &str, event: AuditEntry)
        -> Result<()>;
    /// Removes the tag from its clients and deletes it, in one transaction: the tag (caption and
    /// client count) is read there, locked, and handed to `edit`, whose event is appended.
    /// `Conflict` while a scope names it.
    async fn delete_tag(&self, id: i64, edit: Edit<'_, TagRecord, ()>) -> Result<()>;
    /// Where a user's Allowed Client Tags come from (their account's and their groups').
    async fn scope_sources_of_user(&self, user_id: i64) -> Result<ScopeSources>;
    /// Applies a bulk change to one batch of clients (in id order after `after_id`), with its
    /// event and, for a job, the job's progress, in one transaction.
    async fn apply_client_batch(
        &self,
        batch: Batch<'_>,
        event: BatchEvent<'_>,
    ) -> Result<BatchOutcome>;
    async fn insert_bulk_job(&self, job: &BulkJob) -> Result<i64>;
    async fn bulk_job(&self, id: i64) -> Result<Option<BulkJob>>;
    /// Takes a running job whose lease has expired (a new one, or one whose instance stopped),
    /// leasing it until `lease_until`.
    async fn claim_bulk_job(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<BulkJob>>;
    /// Ends a job (finished or failed, with a message for its page).
    async fn end_bulk_job(
        &self,
        id: i64,
        state: BulkState,
        message: &str,
        at: Timestamp,
    ) -> Result<()>;
}
