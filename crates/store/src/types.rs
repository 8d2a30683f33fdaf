//! Records that cross the store boundary.

use domain::audit::Event;
use domain::{IpWhitelist, PermissionSet, Timestamp, TwoFactor, UserStatus};

pub struct NewUser {
    pub email: String,
    pub email_key: String,
    pub name: String,
    pub password_hash: String,
    pub status: UserStatus,
    pub two_factor: TwoFactor,
    pub mask_data: bool,
    pub ip_whitelist: IpWhitelist,
    pub must_change_password: bool,
    pub created_by: Option<i64>,
    pub group_ids: Vec<i64>,
    /// Allowed Client Tags of the account itself (empty: only the groups' decide).
    pub allowed_tag_ids: Vec<i64>,
    pub created_at: Timestamp,
}

/// A Back Office user as stored. `Debug` is written by hand so the hash never reaches a log.
#[derive(Clone)]
pub struct UserRecord {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub status: UserStatus,
    pub two_factor: TwoFactor,
    pub mask_data: bool,
    pub ip_whitelist: IpWhitelist,
    pub must_change_password: bool,
    pub created_by: Option<i64>,
    pub created_by_email: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_sign_in_at: Option<Timestamp>,
    pub failed_attempts: i64,
    pub locked_until: Option<Timestamp>,
    /// Raised by every change of what the edit form shows (email, name, status, groups, Mask
    /// data, two-factor authentication); not by sign-ins or password changes.
    pub version: i64,
    /// Captions of the user's groups, filled by list queries.
    pub groups: Vec<GroupRef>,
    /// The account's own Allowed Client Tags, filled with the groups.
    pub allowed_tags: Vec<TagRef>,
}

/// An account found for the password step of a sign-in.
#[derive(Debug)]
pub struct SignInAccount {
    pub user: UserRecord,
    /// The attempt counted against the account (see `UserStore::reserve_attempt`); `None` when
    /// nothing was counted because the account is disabled or locked.
    pub attempt: Option<i64>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl UserRecord {
    pub fn is_locked(&self, now: Timestamp) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }
}

/// Fields to change on a user; `None` leaves a field as it is.
#[derive(Default)]
pub struct UserChange {
    pub email: Option<(String, String)>,
    pub name: Option<String>,
    pub password: Option<(String, bool)>,
    pub status: Option<UserStatus>,
    pub two_factor: Option<TwoFactor>,
    pub mask_data: Option<bool>,
    pub ip_whitelist: Option<IpWhitelist>,
    pub group_ids: Option<Vec<i64>>,
    pub allowed_tag_ids: Option<Vec<i64>>,
    pub unlock: bool,
    /// End the user's sessions, except the one with this hash when given.
    pub end_sessions: Option<Option<String>>,
    /// Apply only if the account is enabled and its password hash is still this one (a
    /// password reset, checked before and applied after other work); else `Conflict`.
    pub expect_password_hash: Option<String>,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserSort {
    #[default]
    Id,
    Name,
    Email,
    AllowedTags,
    Status,
    TwoFactor,
    IpWhitelist,
    Groups,
    MaskData,
    Creator,
    CreatedAt,
    LastSignIn,
}

impl UserSort {
    pub const ALL: [(UserSort, &'static str); 12] = [
        (UserSort::Id, "id"),
        (UserSort::Name, "name"),
        (UserSort::Email, "email"),
        (UserSort::AllowedTags, "allowed_tags"),
        (UserSort::Status, "status"),
        (UserSort::TwoFactor, "two_factor"),
        (UserSort::IpWhitelist, "ip_whitelist"),
        (UserSort::Groups, "groups"),
        (UserSort::MaskData, "mask_data"),
        (UserSort::Creator, "creator"),
        (UserSort::CreatedAt, "created_at"),
        (UserSort::LastSignIn, "last_sign_in"),
    ];

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, c)| *c == code).map(|(s, _)| *s)
    }

    pub fn code(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, c)| *c)
            .unwrap_or("id")
    }
}

#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Contains-match on email or name, case-insensitive.
    pub text: Option<String>,
    pub status: Option<UserStatus>,
    pub two_factor: Option<TwoFactor>,
    /// `Some(true)`: only users with an IP Whitelist; `Some(false)`: only those without.
    pub has_ip_whitelist: Option<bool>,
    pub group_id: Option<i64>,
    /// Only users whose own Allowed Client Tags name this tag.
    pub allowed_tag_id: Option<i64>,
    pub creator_id: Option<i64>,
    pub mask_data: Option<bool>,
    /// Only accounts locked (after failed sign-ins) at this time.
    pub locked_at: Option<Timestamp>,
    pub sort: UserSort,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: i64,
    pub caption: String,
    pub builtin: bool,
}

#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub id: i64,
    pub caption: String,
    pub builtin: bool,
    pub members: i64,
    pub allowed_tags: Vec<TagRef>,
}

#[derive(Debug, Clone)]
pub struct GroupDetail {
    pub id: i64,
    pub caption: String,
    pub builtin: bool,
    /// Resolved: the whole catalogue for the built-in Administrators group.
    pub permissions: PermissionSet,
    /// The group's Allowed Client Tags (empty: the group doesn't narrow its members).
    pub allowed_tags: Vec<TagRef>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Raised by every change of the caption or the permissions.
    pub version: i64,
}

/// Fields to change on a group; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct GroupChange {
    pub caption: Option<String>,
    pub permissions: Option<PermissionSet>,
    /// Allowed Client Tags (tag ids).
    pub allowed_tags: Option<Vec<i64>>,
    pub at: Timestamp,
}

/// A client tag as lists and forms name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRef {
    pub id: i64,
    pub caption: String,
}

/// A client tag on the Tags page.
#[derive(Debug, Clone)]
pub struct TagRecord {
    pub id: i64,
    pub caption: String,
    /// Clients carrying the tag (a counter kept by every write).
    pub clients: i64,
    /// Users and groups whose Allowed Client Tags name it (it can't be deleted while any do).
    pub scope_holders: i64,
    pub created_at: Timestamp,
}

/// Where a user's Allowed Client Tags come from: their own account and their groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSources {
    pub own: Vec<i64>,
    pub groups: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    /// Password checked, code not yet: reaches nothing but the code page.
    AwaitingCode,
    Full,
}

impl SessionStage {
    pub fn code(self) -> &'static str {
        match self {
            SessionStage::AwaitingCode => "awaiting_code",
            SessionStage::Full => "full",
        }
    }
    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "awaiting_code" => Some(SessionStage::AwaitingCode),
            "full" => Some(SessionStage::Full),
            _ => None,
        }
    }
}

/// Who a credential speaks for: the user (with groups), whether they are an administrator,
/// and the permissions their groups give them (all of them for administrators). The app turns
/// it into a `domain::Authority` with the user's own settings.
#[derive(Clone)]
pub struct Principal {
    pub user: UserRecord,
    pub is_admin: bool,
    pub permissions: PermissionSet,
    /// The tag ids of the user's Allowed Client Tags and of their groups'.
    pub scope: ScopeSources,
}

/// A server-side session. The cookie holds the id; the store holds only its SHA-256.
#[derive(Clone)]
pub struct SessionRecord {
    pub id_hash: String,
    /// A short public handle used to end the session from the profile page.
    pub key: String,
    pub user_id: i64,
    pub stage: SessionStage,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Clone)]
pub struct CodeRecord {
    pub session_hash: String,
    pub user_id: i64,
    pub code_hash: String,
    pub expires_at: Timestamp,
    pub failures: i64,
    pub created_at: Timestamp,
}

/// An event with who did it, when and from where.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub actor_id: Option<i64>,
    pub actor_email: Option<String>,
    pub actor_groups: String,
    pub ip: Option<String>,
    pub event: Event,
    /// The API request's Idempotency-Key scope (see `IdempotencyStore`): the transaction that
    /// writes this event also marks that request as carried out.
    pub idempotency: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: i64,
    pub at: Timestamp,
    pub actor_id: Option<i64>,
    pub actor_email: Option<String>,
    pub actor_groups: String,
    pub category: String,
    pub action: String,
    pub event: String,
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    pub target_label: Option<String>,
    /// The changed fields as a JSON array of `{field, before, after}`.
    pub details: String,
    pub ip: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub actor_id: Option<i64>,
    pub category: Option<String>,
    pub event: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Keyset cursor: only events with a smaller id (newest first).
    pub before_id: Option<i64>,
    /// Keyset cursor the other way: only events with a larger id.
    pub after_id: Option<i64>,
    /// Oldest first (the log's last page, or the page before a cursor); else newest first.
    pub oldest_first: bool,
    pub limit: i64,
}

/// Which events a viewer may see: those about clients in their scope (and events about many
/// clients only when they made them).
#[derive(Debug, Clone)]
pub struct EventVisibility {
    pub viewer_id: i64,
    pub client_scope: domain::ClientScope,
}

/// A personal API token (its secret is never stored, only its SHA-256).
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A forgotten-password link (its token is never stored, only its SHA-256).
#[derive(Debug, Clone)]
pub struct ResetRecord {
    pub user_id: i64,
    pub token_hash: String,
    /// SHA-256 of the password hash when the link was made: a password change voids the link.
    pub password_fingerprint: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What a change made through the API with an Idempotency-Key found when it claimed the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or its earlier request ended without a change): carry the request out.
    Claimed,
    /// The same request was answered: replay this answer.
    Replay {
        status: u16,
        content_type: String,
        body: String,
    },
    /// The key was used for a different request (another body, method or path).
    Mismatch,
    /// A request with this key is being carried out right now.
    InProgress,
    /// The request with this key made its change, but its answer was not recorded.
    CarriedOut,
}
