//! `/api/v1/users`: the same use cases as System › Users › Users.

use super::error::{ApiError, ApiResult};
use super::extract::{present, tagged, ApiActor, ApiJson, ApiPath, ApiQuery, IfMatch};
use super::responses::{Called, Guarded, Mails, Named, Queried, Unique, Versioned, WithBody};
use super::tags::{tags_out, TagOut};
use super::values;
use crate::AppState;
use app::users::UserView;
use app::users::{UserInput, UserPatch, MAX_LIMIT, PAGE_SIZES};
use app::{UserQuery, UserSort};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use domain::{TwoFactor, UserStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct GroupRefOut {
    pub id: i64,
    pub caption: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub email: String,
    pub name: String,
    #[schema(value_type = values::UserStatus)]
    pub status: String,
    /// Two-factor authentication: `disabled`, `email`, `totp` or `passkey`.
    #[schema(value_type = values::TwoFactor)]
    pub two_factor: String,
    pub mask_data: bool,
    /// "IP Whitelist": the addresses and CIDR ranges (IPv4, IPv6) the user may use the Back
    /// Office from, normalised; empty means anywhere.
    pub ip_whitelist: Vec<String>,
    pub groups: Vec<GroupRefOut>,
    /// The account's own Allowed Client Tags (its groups' tags add to them; none anywhere
    /// means every client).
    pub allowed_tags: Vec<TagOut>,
    pub created_by: Option<i64>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_sign_in_at: Option<String>,
    pub locked: bool,
}

impl From<&UserView> for UserOut {
    fn from(u: &UserView) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
            status: u.status.code().into(),
            two_factor: u.two_factor.code().into(),
            mask_data: u.mask_data,
            ip_whitelist: u.ip_whitelist.entries().collect(),
            groups: u
                .groups
                .iter()
                .map(|g| GroupRefOut {
                    id: g.id,
                    caption: g.caption.clone(),
                })
                .collect(),
            allowed_tags: tags_out(&u.allowed_tags),
            created_by: u.created_by,
            created_at: u.created_at.iso(),
            last_sign_in_at: u.last_sign_in_at.map(|t| t.iso()),
            locked: u.locked_until.is_some_and(|t| t > domain::Timestamp::now()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserOut>,
    pub total: i64,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    /// Email or name contains (case-insensitive).
    pub q: Option<String>,
    #[param(value_type = Option<values::UserStatus>)]
    pub status: Option<String>,
    /// Two-factor authentication.
    #[param(value_type = Option<values::TwoFactor>)]
    pub two_factor: Option<String>,
    /// `true`: only users with an IP Whitelist; `false`: only users who may sign in from anywhere.
    pub ip_whitelist: Option<bool>,
    /// Only members of this group.
    pub group: Option<i64>,
    /// Only users whose own Allowed Client Tags name this tag (id).
    pub allowed_tag: Option<i64>,
    /// Only users created by this user (id).
    pub creator: Option<i64>,
    /// Only users with (`true`) or without (`false`) Mask data.
    pub mask_data: Option<bool>,
    /// The column to order by (default: id).
    #[param(value_type = Option<values::UserSort>)]
    pub sort: Option<String>,
    /// Ascending by default.
    #[param(value_type = Option<values::SortDirection>)]
    pub dir: Option<String>,
    /// Users per page.
    #[param(minimum = 1, maximum = 100, default = 25)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Lists users with filters, sorting and cursor pagination.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", operation_id = "listUsers", params(UserListParams),
    responses((status = 200, description = "One page of users", body = UserPage), Called, Guarded, Queried))]
pub async fn list(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(p): ApiQuery<UserListParams>,
) -> ApiResult<Json<UserPage>> {
    let limit = p.limit.unwrap_or(PAGE_SIZES[0]);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field("limit", "Choose between 1 and 100"));
    }
    let status =
        values::UserStatus::param("status", p.status.as_deref())?.and_then(UserStatus::from_code);
    let two_factor = values::TwoFactor::param("two_factor", p.two_factor.as_deref())?
        .and_then(TwoFactor::from_code);
    let sort = values::UserSort::param("sort", p.sort.as_deref())?
        .and_then(UserSort::from_code)
        .unwrap_or_default();
    let descending = values::descending(p.dir.as_deref())?;
    let offset = match p.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|o| (0..=10_000_000).contains(o))
            .ok_or_else(|| ApiError::field("cursor", "Not a cursor from this API"))?,
    };
    let q = UserQuery {
        text: p.q.filter(|t| !t.trim().is_empty()),
        status,
        two_factor,
        has_ip_whitelist: p.ip_whitelist,
        group_id: p.group,
        allowed_tag_id: p.allowed_tag,
        creator_id: p.creator,
        mask_data: p.mask_data,
        locked_at: None,
        sort,
        descending,
        offset,
        limit,
    };
    let page = state.app.list_users(&actor, &q).await?;
    let next = offset + limit;
    Ok(Json(UserPage {
        next_cursor: (next < page.total).then(|| next.to_string()),
        total: page.total,
        items: page.items.iter().map(UserOut::from).collect(),
    }))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", operation_id = "getUser", params(("id" = i64, Path)),
    responses((status = 200, description = "The user", body = UserOut, headers(("ETag" = String, description = "The version shown: send it back in If-Match to change only this version"))), Called, Guarded, Named))]
pub async fn get(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    user_out(&state, &actor, id, StatusCode::OK).await
}

/// The user as the API shows it, with its `ETag`.
async fn user_out(
    state: &AppState,
    actor: &app::Actor,
    id: i64,
    status: StatusCode,
) -> ApiResult<Response> {
    let user = state.app.get_user(actor, id).await?;
    Ok(tagged(user.version, status, UserOut::from(&user)))
}

/// The seed's Create user fields.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub email: String,
    pub password: String,
    #[schema(value_type = values::UserStatus)]
    pub status: String,
    /// Ids of one or more groups.
    pub groups: Vec<i64>,
    /// First and last names.
    pub name: String,
    /// Email the credentials to the user (needs an SMTP server).
    #[serde(default)]
    pub send_to_email: bool,
    /// Mask client personal data for this user.
    #[serde(default)]
    pub mask_data: bool,
    /// "IP Whitelist": IPv4 or IPv6 addresses or CIDR ranges the user may use the Back Office
    /// from; empty or absent means anywhere. A bad entry is reported as its line (the first
    /// entry is line 1) in `fields.ip_whitelist`.
    #[serde(default)]
    pub ip_whitelist: Vec<String>,
    /// Allowed Client Tags (tag ids): the user sees only clients carrying one of these or of
    /// their groups' tags.
    #[serde(default)]
    pub allowed_tag_ids: Vec<i64>,
}

/// Creates a user (2FA by email codes, a new password must be chosen at first sign-in).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", operation_id = "createUser", request_body = UserCreate,
    responses((status = 201, description = "The user was created (and the credentials mailed, if asked)", body = UserOut, headers(("ETag" = String, description = "The version shown: send it back in If-Match to change only this version"))),
        Called, Guarded, WithBody, Unique, Mails))]
pub async fn create(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(u): ApiJson<UserCreate>,
) -> ApiResult<Response> {
    let input = UserInput {
        email: u.email,
        password: u.password.into(),
        status: u.status,
        group_ids: u.groups,
        name: u.name,
        send_to_email: u.send_to_email,
        mask_data: u.mask_data,
        ip_whitelist: whitelist_lines(u.ip_whitelist)?,
        confirm_lockout: false,
        allowed_tag_ids: u.allowed_tag_ids,
    };
    let id = state.app.create_user(&actor, &input).await?;
    user_out(&state, &actor, id, StatusCode::CREATED).await
}

/// The form's text for an IP Whitelist sent as entries: one per line, so entry n is line n.
fn whitelist_lines(entries: Vec<String>) -> ApiResult<String> {
    if let Some(n) = entries.iter().position(|e| e.contains(['\n', '\r'])) {
        return Err(ApiError::field(
            "ip_whitelist",
            format!("Line {}: one address or range per entry", n + 1),
        ));
    }
    Ok(entries.join("\n"))
}

/// Fields to change; an absent field stays as it is (`null` is not a value of any).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub email: Option<String>,
    /// A new password, which the user must change at next sign-in; ends their sessions.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<values::UserStatus>, nullable = false)]
    pub status: Option<String>,
    /// Ids of one or more groups.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub groups: Option<Vec<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub mask_data: Option<bool>,
    /// The whole new IP Whitelist (see `UserCreate`); `[]` means anywhere. On one's own
    /// account it may only narrow (403 otherwise).
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub ip_whitelist: Option<Vec<String>>,
    /// Set to `true` to save one's own IP Whitelist although it leaves out the address of this
    /// request (which ends one's access from here). Without it such a change answers 422 with
    /// `fields.confirm_lockout` and changes nothing.
    #[serde(default)]
    pub confirm_lockout: bool,
    /// Allowed Client Tags (tag ids); `[]` clears them.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub allowed_tag_ids: Option<Vec<i64>>,
}

/// Changes a user.
/// Changes the fields sent; the others keep the values they have when the change is written.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", operation_id = "updateUser",
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header, description = "The ETag of the version the change is based on: 412 if it is no longer current. Without it, the change is applied to the current version (fields not sent are kept as they are then)")),
    request_body = UserUpdate,
    responses((status = 200, description = "The user as changed", body = UserOut, headers(("ETag" = String, description = "The version shown: send it back in If-Match to change only this version"))),
        Called, Guarded, Named, WithBody, Unique, Versioned))]
pub async fn update(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
    if_match: IfMatch,
    ApiJson(u): ApiJson<UserUpdate>,
) -> ApiResult<Response> {
    let expected = if_match.version()?;
    let patch = UserPatch {
        email: u.email,
        password: u.password.map(Into::into),
        status: u.status,
        group_ids: u.groups,
        name: u.name,
        mask_data: u.mask_data,
        ip_whitelist: u.ip_whitelist.map(whitelist_lines).transpose()?,
        confirm_lockout: u.confirm_lockout,
        allowed_tag_ids: u.allowed_tag_ids,
    };
    state.app.update_user(&actor, id, &patch, expected).await?;
    user_out(&state, &actor, id, StatusCode::OK).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    /// The caller's own password, to confirm.
    pub password: String,
}

/// Disables two-factor authentication for a user (the caller confirms with their password).
#[utoipa::path(post, path = "/api/v1/users/{id}/two-factor/disable", tag = "users", operation_id = "disableUserTwoFactor",
    params(("id" = i64, Path)), request_body = Confirm,
    responses((status = 200, description = "The user, now signing in with a password only", body = UserOut),
        Called, Guarded, Named, WithBody))]
pub async fn disable_2fa(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(c): ApiJson<Confirm>,
) -> ApiResult<Json<UserOut>> {
    state
        .app
        .set_two_factor(&actor, id, false, &c.password)
        .await?;
    Ok(Json(UserOut::from(&state.app.get_user(&actor, id).await?)))
}

/// Enables two-factor authentication by email codes for a user.
#[utoipa::path(post, path = "/api/v1/users/{id}/two-factor/enable", tag = "users", operation_id = "enableUserTwoFactor",
    params(("id" = i64, Path)),
    responses((status = 200, description = "The user, now receiving sign-in codes by email", body = UserOut),
        Called, Guarded, Named))]
pub async fn enable_2fa(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<UserOut>> {
    state.app.set_two_factor(&actor, id, true, "").await?;
    Ok(Json(UserOut::from(&state.app.get_user(&actor, id).await?)))
}

/// Unlocks a user locked by failed sign-ins.
#[utoipa::path(post, path = "/api/v1/users/{id}/unlock", tag = "users", operation_id = "unlockUser", params(("id" = i64, Path)),
    responses((status = 200, description = "The user, unlocked", body = UserOut), Called, Guarded, Named))]
pub async fn unlock(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<UserOut>> {
    state.app.unlock_user(&actor, id).await?;
    Ok(Json(UserOut::from(&state.app.get_user(&actor, id).await?)))
}

/// Ends every session of a user.
#[utoipa::path(post, path = "/api/v1/users/{id}/sign-out", tag = "users", operation_id = "signOutUser", params(("id" = i64, Path)),
    responses((status = 204, description = "Every session of the user has ended"), Called, Guarded, Named))]
pub async fn sign_out(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    state.app.sign_out_everywhere(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
