//! `/api/v1/me`, personal tokens, and the permission catalogue.

use super::error::ApiResult;
use super::extract::{ApiActor, ApiJson, ApiPath};
use super::idempotency::NoReplay;
use super::responses::{Called, Guarded, Named, WithBody};
use super::users::UserOut;
use super::values;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use domain::Permission;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct MeOut {
    pub user: UserOut,
    /// Every permission held.
    #[schema(value_type = Vec<values::Permission>)]
    pub permissions: Vec<String>,
    pub is_admin: bool,
}

/// The caller's own account and permissions.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", operation_id = "getMe",
    responses((status = 200, description = "The caller", body = MeOut), Called))]
pub async fn me(ApiActor(actor): ApiActor) -> Json<MeOut> {
    Json(MeOut {
        permissions: actor.authority().permissions().codes(),
        is_admin: actor.is_admin(),
        user: UserOut::from(&actor.account()),
    })
}

#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    pub id: i64,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

impl From<&app::TokenRecord> for TokenOut {
    fn from(t: &app::TokenRecord) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            created_at: t.created_at.iso(),
            expires_at: t.expires_at.iso(),
            last_used_at: t.last_used_at.map(|t| t.iso()),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// What the token is for.
    pub name: String,
    /// Days until it expires: 1–365, 90 when omitted.
    #[schema(minimum = 1, maximum = 365)]
    pub expires_in_days: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct NewTokenOut {
    /// The secret: shown once, never again.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenOut,
}

/// The caller's tokens that are not revoked.
#[utoipa::path(get, path = "/api/v1/me/tokens", tag = "me", operation_id = "listTokens",
    responses((status = 200, description = "The caller's tokens, without their secrets", body = Vec<TokenOut>), Called))]
pub async fn list_tokens(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<Vec<TokenOut>>> {
    Ok(Json(
        state
            .app
            .list_tokens(&actor)
            .await?
            .iter()
            .map(TokenOut::from)
            .collect(),
    ))
}

/// Creates a personal token; only with a fully signed-in session (not with another token).
#[utoipa::path(post, path = "/api/v1/me/tokens", tag = "me", operation_id = "createToken", request_body = TokenIn,
    security(("session" = [], "csrf" = [])),
    responses((status = 201, description = "The token, with its secret shown this once", body = NewTokenOut),
        Called, Guarded, WithBody))]
pub async fn create_token(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(input): ApiJson<TokenIn>,
) -> ApiResult<(StatusCode, Extension<NoReplay>, Json<NewTokenOut>)> {
    let t = state
        .app
        .create_token(&actor, &input.name, input.expires_in_days)
        .await?;
    // The token is shown once: an Idempotency-Key's stored answer never holds it.
    Ok((
        StatusCode::CREATED,
        Extension(NoReplay),
        Json(NewTokenOut {
            token: t.token,
            info: TokenOut::from(&t.record),
        }),
    ))
}

/// Revokes one of the caller's tokens.
#[utoipa::path(delete, path = "/api/v1/me/tokens/{id}", tag = "me", operation_id = "revokeToken",
    params(("id" = i64, Path)),
    responses((status = 204, description = "The token no longer works"), Called, Guarded, Named))]
pub async fn revoke_token(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    state.app.revoke_token(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct PermissionOut {
    #[schema(value_type = values::Permission)]
    pub code: String,
    pub section: String,
    pub action: String,
}

/// Every permission that exists.
#[utoipa::path(get, path = "/api/v1/permissions", tag = "groups", operation_id = "listPermissions",
    responses((status = 200, description = "The permission catalogue", body = Vec<PermissionOut>), Called))]
pub async fn permissions(ApiActor(_): ApiActor) -> Json<Vec<PermissionOut>> {
    Json(
        Permission::catalogue()
            .map(|p| PermissionOut {
                code: p.code(),
                section: p.section.label().into(),
                action: p.action.label().into(),
            })
            .collect(),
    )
}
