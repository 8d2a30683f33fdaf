//! Rows as the shared SQL selects them, decoded by column name (`sqlx::FromRow`), and turned
//! into records with every stored code checked: a code this version doesn't know is an error,
//! never a default.

use crate::{
    BulkJob, BulkState, ClientRecord, EventRecord, ForwardingState, Result, SessionRecord,
    SessionStage, SignInDay, StoreError, TokenRecord, UserRecord,
};
use domain::client::{ClientRole, ClientStatus};
use domain::{IpWhitelist, Permission, Timestamp, TwoFactor, UserStatus};

/// The value `code` stands for, or an error naming the column and the code.
pub(crate) fn known<T>(
    column: &str,
    code: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T> {
    parse(code).ok_or_else(|| StoreError::Other(format!("unknown {column} {code:?} stored").into()))
}

/// A stored permission code, checked.
pub(crate) fn permission(code: &str) -> Result<Permission> {
    known("permission", code, Permission::from_code)
}

/// A user as `USER_COLS` selects it (other columns of the row are ignored).
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: i64,
    email: String,
    name: String,
    password_hash: String,
    status: String,
    two_factor: String,
    mask_data: bool,
    ip_whitelist: String,
    must_change_password: bool,
    created_by: Option<i64>,
    created_by_email: Option<String>,
    created_at: i64,
    updated_at: i64,
    last_sign_in_at: Option<i64>,
    failed_attempts: i64,
    locked_until: Option<i64>,
    version: i64,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;

    fn try_from(r: UserRow) -> Result<Self> {
        Ok(UserRecord {
            id: r.id,
            email: r.email,
            name: r.name,
            password_hash: r.password_hash,
            status: known("user status", &r.status, UserStatus::from_code)?,
            two_factor: known("two-factor kind", &r.two_factor, TwoFactor::from_code)?,
            mask_data: r.mask_data,
            // Written only through `IpWhitelist::to_text`; a list that no longer parses is an
            // error, never "anywhere".
            ip_whitelist: IpWhitelist::parse(&r.ip_whitelist)
                .map_err(|e| StoreError::Other(format!("stored IP Whitelist: {e}").into()))?,
            must_change_password: r.must_change_password,
            created_by: r.created_by,
            created_by_email: r.created_by_email,
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
            last_sign_in_at: r.last_sign_in_at.map(Timestamp),
            failed_attempts: r.failed_attempts,
            locked_until: r.locked_until.map(Timestamp),
            version: r.version,
            groups: Vec::new(),
            allowed_tags: Vec::new(),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id_hash: String,
    key: String,
    user_id: i64,
    stage: String,
    csrf_token: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;

    fn try_from(r: SessionRow) -> Result<Self> {
        Ok(SessionRecord {
            id_hash: r.id_hash,
            key: r.key,
            user_id: r.user_id,
            stage: known("session stage", &r.stage, SessionStage::from_code)?,
            csrf_token: r.csrf_token,
            created_at: Timestamp(r.created_at),
            last_seen_at: Timestamp(r.last_seen_at),
            expires_at: Timestamp(r.expires_at),
            ip: r.ip,
            user_agent: r.user_agent,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    id: i64,
    at: i64,
    actor_id: Option<i64>,
    actor_email: Option<String>,
    actor_groups: String,
    category: String,
    action: String,
    event: String,
    target_type: Option<String>,
    target_id: Option<i64>,
    target_label: Option<String>,
    details: String,
    ip: Option<String>,
    prev_hash: String,
    hash: String,
}

impl From<EventRow> for EventRecord {
    fn from(r: EventRow) -> Self {
        EventRecord {
            id: r.id,
            at: Timestamp(r.at),
            actor_id: r.actor_id,
            actor_email: r.actor_email,
            actor_groups: r.actor_groups,
            category: r.category,
            action: r.action,
            event: r.event,
            target_type: r.target_type,
            target_id: r.target_id,
            target_label: r.target_label,
            details: r.details,
            ip: r.ip,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow {
    id: i64,
    first_name: String,
    last_name: String,
    email: String,
    phone: String,
    country: String,
    city: String,
    role: String,
    status: String,
    language: String,
    registered_at: i64,
    updated_at: i64,
    version: i64,
}

impl TryFrom<ClientRow> for ClientRecord {
    type Error = StoreError;

    fn try_from(r: ClientRow) -> Result<Self> {
        Ok(ClientRecord {
            id: r.id,
            first_name: r.first_name,
            last_name: r.last_name,
            email: r.email,
            phone: r.phone,
            country: r.country,
            city: r.city,
            role: known("client role", &r.role, ClientRole::from_code)?,
            status: known("client status", &r.status, ClientStatus::from_code)?,
            language: r.language,
            registered_at: Timestamp(r.registered_at),
            updated_at: Timestamp(r.updated_at),
            version: r.version,
            tags: Vec::new(),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    id: i64,
    user_id: i64,
    name: String,
    created_at: i64,
    expires_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<TokenRow> for TokenRecord {
    fn from(r: TokenRow) -> Self {
        TokenRecord {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            created_at: Timestamp(r.created_at),
            expires_at: Timestamp(r.expires_at),
            last_used_at: r.last_used_at.map(Timestamp),
            revoked_at: r.revoked_at.map(Timestamp),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct BulkRow {
    id: i64,
    user_id: i64,
    request: String,
    change: String,
    upto_id: i64,
    total: i64,
    done: i64,
    changed: i64,
    cursor: i64,
    state: String,
    message: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<BulkRow> for BulkJob {
    type Error = StoreError;

    fn try_from(r: BulkRow) -> Result<Self> {
        Ok(BulkJob {
            id: r.id,
            user_id: r.user_id,
            request: r.request,
            change: r.change,
            upto_id: r.upto_id,
            total: r.total,
            done: r.done,
            changed: r.changed,
            cursor: r.cursor,
            state: known("bulk job state", &r.state, BulkState::from_code)?,
            message: r.message,
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ForwardingRow {
    sink: String,
    cursor: i64,
    delivered_at: Option<i64>,
    failures: i64,
    last_error: Option<String>,
    last_error_at: Option<i64>,
}

impl From<ForwardingRow> for ForwardingState {
    fn from(r: ForwardingRow) -> Self {
        ForwardingState {
            sink: r.sink,
            cursor: r.cursor,
            delivered_at: r.delivered_at.map(Timestamp),
            failures: r.failures,
            last_error: r.last_error,
            last_error_at: r.last_error_at.map(Timestamp),
        }
    }
}

/// One group of the Dashboard's staff count: accounts with this status and method.
#[derive(sqlx::FromRow)]
pub(crate) struct StaffGroupRow {
    pub status: String,
    pub two_factor: String,
    pub n: i64,
    /// `SUM` of nothing is NULL.
    pub locked: Option<i64>,
}

/// One group of the Dashboard's client count.
#[derive(sqlx::FromRow)]
pub(crate) struct ClientGroupRow {
    pub status: String,
    pub country: String,
    pub n: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct SignInDayRow {
    day: i64,
    ok: Option<i64>,
    failed: Option<i64>,
}

impl From<SignInDayRow> for SignInDay {
    fn from(r: SignInDayRow) -> Self {
        SignInDay {
            day: r.day,
            ok: r.ok.unwrap_or(0),
            failed: r.failed.unwrap_or(0),
        }
    }
}
