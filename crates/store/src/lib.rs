//! The persistence port. One trait per aggregate, gathered in [`Store`]; the use cases hold an
//! `Arc<dyn Store>` and never know which database is behind it. Both implementations share
//! their SQL text (see `sql/`, with the differences in each backend's `DIALECT`); each backend has its own migrations folder.

mod audit_chain;
mod backup;
mod clients;
mod dashboard;
mod dialect;
mod forwarding;
mod pool;
mod postgres;
mod rows;
mod sign_in;
mod sqlite;
mod tags;
mod two_factor;
mod types;

use async_trait::async_trait;
use domain::{PermissionSet, Timestamp};
use std::sync::Arc;

pub use audit_chain::{verify_chain, ChainReport, GENESIS};
pub use backup::{backup_sqlite, BackupReport};
pub use clients::*;
pub use dashboard::*;
pub use forwarding::*;
pub use sign_in::*;
pub use tags::*;
pub use two_factor::*;
pub use types::*;

/// The error a store's source keeps, for the log (never shown to a person).
pub type Source = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule held by the database was hit; `field` is the form field it guards,
    /// found from the constraint (see [`UNIQUE_RULES`]).
    #[error("duplicate value for {field}")]
    Duplicate { field: &'static str },
    #[error("not found")]
    NotFound,
    /// The change conflicts with a rule checked inside the transaction.
    #[error("{0}")]
    Conflict(String),
    /// An [`Edit`] refused the change after seeing the row (the use case's own error, handed
    /// back to it unchanged).
    #[error("{0}")]
    Rejected(Rejection),
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Source),
    #[error("database error: {0}")]
    Other(#[source] Source),
}

/// The schema's unique rules that a person can hit, each with the form field it guards: by
/// constraint name (PostgreSQL reports it) and by the `table.column` that SQLite reports instead
/// ("UNIQUE constraint failed: users.email_key"). The names are those of the migrations.
pub const UNIQUE_RULES: [(&str, &str, &str); 5] = [
    (
        "passkeys_credential_key_unique",
        "passkeys.credential_key",
        "passkey",
    ),
    ("tags_caption_key_unique", "tags.caption_key", "caption"),
    ("users_email_key_unique", "users.email_key", "email"),
    (
        "access_groups_caption_key_unique",
        "access_groups.caption_key",
        "caption",
    ),
    ("clients_email_key_unique", "clients.email_key", "email"),
];

/// The field guarded by the unique rule a database error names, if it is one of ours.
fn duplicate_field(db: &dyn sqlx::error::DatabaseError) -> Option<&'static str> {
    if let Some(constraint) = db.constraint() {
        return UNIQUE_RULES
            .iter()
            .find(|(name, _, _)| *name == constraint)
            .map(|(_, _, field)| *field);
    }
    let columns = db.message().strip_prefix("UNIQUE constraint failed: ")?;
    UNIQUE_RULES
        .iter()
        .find(|(_, cols, _)| *cols == columns)
        .map(|(_, _, field)| *field)
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A use case's reason to refuse an edit, carried through the store untouched.
pub type Rejection = Box<dyn std::error::Error + Send + Sync>;

/// What an [`Edit`] decided after seeing the row as the writing transaction holds it. Made once
/// per edit and consumed at once, so its size doesn't matter.
#[allow(clippy::large_enum_variant)]
pub enum Decision<C> {
    /// Nothing to write (the row already holds what was asked).
    Keep,
    /// Write this change and append this event, in the same transaction.
    Write(C, AuditEntry),
}

/// The modify step of a read-modify-write: called once, inside the writing transaction, with
/// the row read and locked there (`SELECT … FOR UPDATE` on PostgreSQL; SQLite's write
/// transaction holds the whole database). It must not wait on anything: it only decides.
pub type Edit<'a, R, C> =
    Box<dyn FnOnce(&R) -> std::result::Result<Decision<C>, Rejection> + Send + 'a>;

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Holds `email_key` for a user about to be created, in a transaction of its own that
    /// commits at once, so that nothing stays locked while the credentials mail is handed to
    /// the SMTP server. `Duplicate { field: "email" }` when a user has the email or another
    /// live reservation holds it. `holder` names the reservation for `insert_user` and
    /// `release_email`; it lapses at `until`.
    async fn reserve_email(
        &self,
        email_key: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<()>;
    /// Gives a reservation back (the mail could not be sent).
    async fn release_email(&self, email_key: &str, holder: &str) -> Result<()>;
    /// Inserts a user with their groups and the event, in one transaction. The email's key is
    /// claimed in the reservations first: a live reservation by anyone but `reservation` (the
    /// holder that reserved it for this create) is a duplicate; the reservation is removed.
    async fn insert_user(
        &self,
        user: NewUser,
        reservation: Option<&str>,
        event: AuditEntry,
    ) -> Result<i64>;
    async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>>;
    async fn user_by_email_key(&self, key: &str) -> Result<Option<UserRecord>>;
    async fn list_users(&self, query: &UserQuery) -> Result<Page<UserRecord>>;
    /// The permissions a user holds through their groups (all of them for Administrators).
    async fn permissions_of_user(&self, user_id: i64) -> Result<(bool, PermissionSet)>;
    /// A read-modify-write in one transaction: the user (with groups) is read there, locked
    /// against every other writer, and handed to `edit`; only the fields its change names are
    /// written, with its event. Changes of what the edit form shows raise the version. A new
    /// email is claimed in the reservations (a live one is a duplicate). A change of status,
    /// groups or Mask data that would leave no enabled, unmasked administrator is refused with
    /// `Conflict`. Every such transaction first locks the Administrators group, so they take
    /// their locks in one order.
    async fn update_user(&self, id: i64, edit: Edit<'_, UserRecord, UserChange>) -> Result<()>;
    /// The users who created other users (id, email), by email: the Users list's Creator filter.
    async fn creators(&self) -> Result<Vec<(i64, String)>>;
    /// Enabled members of Administrators with Mask data off: the accounts that hold everything.
    async fn count_enabled_admins(&self) -> Result<i64>;
    async fn count_users(&self) -> Result<i64>;
    /// Counts a sign-in attempt against the account before the password or code is checked,
    /// so concurrent guesses can't exceed the limit. Returns `None` when the account is locked.
    /// On PostgreSQL its commit doesn't wait for the disk, so every outcome of the check must
    /// write again before answering (an event, the session, or `release_attempt`): that commit
    /// flushes the reservation too.
    async fn reserve_attempt(&self, user_id: i64, now: Timestamp) -> Result<Option<i64>>;
    /// Gives back a reserved attempt (correct password, code still to come).
    async fn release_attempt(&self, user_id: i64) -> Result<()>;
    /// Replaces a stored hash whose parameters are older than the configured ones.
    async fn upgrade_password_hash(&self, user_id: i64, hash: &str) -> Result<()>;
}

#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Creates the built-in Administrators group if it does not exist; idempotent.
    async fn ensure_admin_group(&self) -> Result<i64>;
    async fn list_groups(&self) -> Result<Vec<GroupSummary>>;
    /// Every group's id, caption and kind, without member counts (for choosers and filters).
    async fn group_refs(&self) -> Result<Vec<GroupRef>>;
    async fn group_by_id(&self, id: i64) -> Result<Option<GroupDetail>>;
    async fn groups_by_ids(&self, ids: &[i64]) -> Result<Vec<GroupDetail>>;
    async fn insert_group(
        &self,
        caption: &str,
        permissions: &PermissionSet,
        allowed_tags: &[i64],
        event: AuditEntry,
    ) -> Result<i64>;
    /// A read-modify-write in one transaction, like `update_user`: the group (with its
    /// permissions) is read there, locked, and handed to `edit`; what its change names
    /// (caption, permissions, Allowed Client Tags) is written with a version one higher and its
    /// event. The built-in group is `NotFound`.
    async fn update_group(&self, id: i64, edit: Edit<'_, GroupDetail, GroupChange>) -> Result<()>;
    /// Deletes the group (not Administrators: `NotFound`) in one transaction: the group is
    /// read there, locked, and handed to `edit`, whose event is appended; its members' versions
    /// go up (their forms showed it).
    async fn delete_group(&self, id: i64, edit: Edit<'_, GroupDetail, ()>) -> Result<()>;
    /// Imports groups in one transaction: with `replace`, groups with the same caption get the
    /// new permissions; otherwise captions get " (1)", " (2)" … suffixes.
    async fn import_groups(
        &self,
        groups: &[(String, PermissionSet)],
        replace: bool,
        event: AuditEntry,
    ) -> Result<usize>;
    async fn members_of_group(&self, id: i64) -> Result<Vec<UserRecord>>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &SessionRecord) -> Result<()>;
    async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>>;
    /// A completed sign-in, in one transaction: the user's failed attempts are cleared and the
    /// sign-in time (the session's start) recorded, the session is stored — in place of the
    /// pre-session `replacing`, if given (a new id after each step; `NotFound` if it is gone) —
    /// and `event` is appended. No session exists without its event, and it costs one commit.
    async fn open_session(
        &self,
        replacing: Option<&str>,
        session: &SessionRecord,
        event: AuditEntry,
    ) -> Result<()>;
    async fn touch_session(&self, id_hash: &str, now: Timestamp) -> Result<()>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    async fn delete_user_session(&self, user_id: i64, key: &str) -> Result<bool>;
    async fn delete_sessions_of_user(&self, user_id: i64, except_hash: Option<&str>)
        -> Result<u64>;
    async fn sessions_of_user(&self, user_id: i64) -> Result<Vec<SessionRecord>>;
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64>;
}

#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Stores (replacing) the code bound to a pre-2FA session and records the send.
    async fn put_code(&self, code: &CodeRecord) -> Result<()>;
    async fn code_for_session(&self, session_hash: &str) -> Result<Option<CodeRecord>>;
    /// Records a wrong guess; returns the number of wrong guesses so far.
    async fn code_failed(&self, session_hash: &str) -> Result<i64>;
    /// Consumes the code if it matches, is unexpired and not worn out: true for exactly one caller.
    async fn take_code(&self, session_hash: &str, code_hash: &str, now: Timestamp) -> Result<bool>;
    async fn delete_code(&self, session_hash: &str) -> Result<()>;
    async fn record_code_send(&self, user_id: i64, at: Timestamp) -> Result<()>;
    /// Sends to this account since `since`, and the time of the latest one.
    async fn code_sends_since(
        &self,
        user_id: i64,
        since: Timestamp,
    ) -> Result<(i64, Option<Timestamp>)>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an event on its own (sign-in attempts, refusals, exports).
    async fn append_event(&self, entry: AuditEntry) -> Result<()>;
    /// Newest first, keyset-paged by `before_id`; no total, so deep logs stay fast. Only the
    /// events `visible` lets the viewer see: a scoped viewer sees no event about a client
    /// outside their scope.
    async fn list_events(
        &self,
        visible: &EventVisibility,
        query: &EventQuery,
    ) -> Result<Vec<EventRecord>>;
    /// Appends many events in one transaction, chained in order (demo data, benchmarks).
    async fn append_events(&self, entries: Vec<AuditEntry>) -> Result<()>;
    /// Every event in id order, for `audit verify`.
    async fn all_events(&self, after_id: i64, limit: i64) -> Result<Vec<EventRecord>>;
    /// The chain head: the last sequence number and hash (to detect a removed tail).
    async fn chain_head(&self) -> Result<(i64, String)>;
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new token's hash with its event, in one transaction.
    async fn insert_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        created_at: Timestamp,
        expires_at: Timestamp,
        event: AuditEntry,
    ) -> Result<i64>;
    /// The owner's tokens that are not revoked, newest first.
    async fn tokens_of_user(&self, user_id: i64) -> Result<Vec<TokenRecord>>;
    async fn revoke_token(
        &self,
        user_id: i64,
        id: i64,
        at: Timestamp,
        event: AuditEntry,
    ) -> Result<()>;
    async fn touch_token(&self, id: i64, at: Timestamp) -> Result<()>;
}

/// Forgotten-password links and the requests for them.
#[async_trait]
pub trait ResetStore: Send + Sync {
    /// Records a request, for a known account (`user_id`) or not, for the rate limits.
    async fn record_reset_request(
        &self,
        user_id: Option<i64>,
        ip: Option<&str>,
        at: Timestamp,
    ) -> Result<()>;
    /// Requests since `since`: for this account, and from this address.
    async fn reset_requests_since(
        &self,
        user_id: Option<i64>,
        ip: Option<&str>,
        since: Timestamp,
    ) -> Result<(i64, i64)>;
    /// Stores the account's link, replacing (and so voiding) any earlier one.
    async fn put_reset(&self, reset: &ResetRecord) -> Result<()>;
    async fn reset_by_token(&self, token_hash: &str) -> Result<Option<ResetRecord>>;
    /// Removes and returns the link: `Some` for exactly one caller, so a link works once.
    async fn take_reset(&self, token_hash: &str) -> Result<Option<ResetRecord>>;
    /// Forgets requests made, and links that expired, before `before`.
    async fn purge_reset_requests(&self, before: Timestamp) -> Result<u64>;
}

/// `Idempotency-Key` of the API's POSTs, kept in the database so that every instance sees it.
/// `scope` is the caller's key (the web layer derives it from the credential and the key).
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims the key for a request whose hash is `request_hash`, or says what became of the
    /// request that claimed it first. A key older than `expired_before` is free again, and so
    /// is one whose request claimed it before `stale_before` and changed nothing (its instance
    /// stopped). Forgets expired keys on the way.
    async fn claim_idempotency(
        &self,
        scope: &str,
        request_hash: &str,
        now: Timestamp,
        stale_before: Timestamp,
        expired_before: Timestamp,
    ) -> Result<Claim>;
    /// Records the answer to replay.
    async fn finish_idempotency(
        &self,
        scope: &str,
        status: u16,
        content_type: &str,
        body: &str,
    ) -> Result<()>;
    /// Frees the key of a request that ended without an answer to replay, unless its change
    /// committed (then a retry must not carry it out again).
    async fn release_idempotency(&self, scope: &str) -> Result<()>;
}

/// A staff member's own settings of the interface (e.g. which columns a list shows), by name.
#[async_trait]
pub trait PreferenceStore: Send + Sync {
    async fn preference(&self, user_id: i64, name: &str) -> Result<Option<String>>;
    async fn set_preference(&self, user_id: i64, name: &str, value: &str) -> Result<()>;
}

/// Who a credential speaks for, found in one query per request.
#[async_trait]
pub trait AuthorityStore: Send + Sync {
    /// A session with its user, the user's groups and permissions.
    async fn session_authority(&self, id_hash: &str) -> Result<Option<(SessionRecord, Principal)>>;
    /// An API token (revoked or not) with its user, the user's groups and permissions.
    async fn token_authority(&self, token_hash: &str) -> Result<Option<(TokenRecord, Principal)>>;
}

/// Everything the application needs from a database.
#[async_trait]
pub trait Store:
    UserStore
    + GroupStore
    + SessionStore
    + CodeStore
    + AuditStore
    + TokenStore
    + ClientStore
    + AuthorityStore
    + ResetStore
    + SignInStore
    + IdempotencyStore
    + TagStore
    + TwoFactorStore
    + ForwardingStore
    + DashboardStore
    + PreferenceStore
{
    /// Answers when the database answers (readiness).
    async fn ping(&self) -> Result<()>;
    /// Answers when the database answers a connection of its own, outside the pool: whether a
    /// slow request waits on a database that went silent, or only on busy pooled connections.
    async fn probe(&self) -> Result<()>;
    /// Refreshes the query planner's statistics after a bulk load (PostgreSQL also vacuums).
    async fn analyze(&self) -> Result<()>;
    /// Applies pending migrations; returns the versions applied now.
    async fn migrate(&self) -> Result<Vec<String>>;
    fn backend(&self) -> &'static str;
    /// The connection pool now (for monitoring).
    fn pool_status(&self) -> PoolStatus;
}

/// The connection pool at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open, busy or idle.
    pub size: u32,
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
    /// Callers waiting for a connection (counted by the store's pool: sqlx doesn't tell).
    pub waiting: u32,
}

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`). The backend is chosen
/// here, once; everything above works on the trait object.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    connect_with(url, Workload::Serve, None).await
}

/// What a connection pool is tuned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Many short queries: a small page cache per connection keeps the server's memory low (the
    /// operating system caches the file anyway).
    Serve,
    /// Bulk loading (`demo seed`): a large page cache, so index pages aren't rewritten over
    /// and over.
    BulkLoad,
}

/// Opens the database for `workload`, with at most `max_connections` pooled connections
/// (default: 8 for SQLite, whose readers run side by side; two per core for PostgreSQL).
pub async fn connect_with(
    url: &str,
    workload: Workload,
    max_connections: Option<u32>,
) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        let max = max_connections.unwrap_or(8);
        Ok(Arc::new(sqlite::connect(url, workload, max).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let max = max_connections.unwrap_or_else(postgres::default_max_connections);
        Ok(Arc::new(postgres::connect(url, workload, max).await?))
    } else {
        Err(StoreError::Other(
            "unknown database scheme; use sqlite:// or postgres://".into(),
        ))
    }
}

/// Opens a copy of a database to read it, changing nothing: a SQLite file read-only (it must
/// exist: nothing is created), or a PostgreSQL database. No migration runs.
pub async fn open_copy(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::connect_read_only(url).await?))
    } else {
        connect_with(url, Workload::Serve, Some(2)).await
    }
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => match duplicate_field(db.as_ref())
        {
            Some(field) => StoreError::Duplicate { field },
            None => StoreError::Other(e.into()),
        },
        sqlx::Error::PoolTimedOut => {
            metrics::counter!("backoffice_db_pool_timeouts_total").increment(1);
            StoreError::Unavailable(e.into())
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(e.into()),
        sqlx::Error::Database(db) if is_unavailable(db.as_ref()) => {
            StoreError::Unavailable(e.into())
        }
        _ => StoreError::Other(e.into()),
    }
}

/// Database errors that say "not now" rather than "not this": the server is shutting down,
/// refusing or dropping connections (PostgreSQL), or the SQLite file can't be written right
/// now (disk full, read-only, I/O error, can't open, busy for longer than the busy timeout).
/// They become 503, and the same request succeeds once the cause is gone.
fn is_unavailable(db: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = db.code() else {
        return false;
    };
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // Extended result codes carry the primary code in the low byte.
        const BUSY: i32 = 5;
        const LOCKED: i32 = 6;
        const NOMEM: i32 = 7;
        const READONLY: i32 = 8;
        const IOERR: i32 = 10;
        const FULL: i32 = 13;
        const CANTOPEN: i32 = 14;
        return code.parse::<i32>().is_ok_and(|c| {
            matches!(
                c & 0xff,
                BUSY | LOCKED | NOMEM | READONLY | IOERR | FULL | CANTOPEN
            )
        });
    }
    // PostgreSQL SQLSTATEs: connection exceptions (08…), operator intervention (57P01 admin
    // shutdown, 57P02 crash shutdown, 57P03 cannot connect now), too many connections (53300),
    // and 55000, which is what a database closed with ALLOW_CONNECTIONS false answers.
    code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "55000"
}
