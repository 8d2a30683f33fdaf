//! `/api/v1/tags`: client tags, as in Clients › Tags.

use super::error::ApiResult;
use super::extract::{ApiActor, ApiJson, ApiPath};
use super::responses::{Called, Guarded, Named, Unique, WithBody};
use crate::AppState;
use app::TagRef;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A tag as clients, users and groups name it.
#[derive(Serialize, ToSchema)]
pub struct TagOut {
    pub id: i64,
    pub caption: String,
}

impl From<&TagRef> for TagOut {
    fn from(t: &TagRef) -> Self {
        Self {
            id: t.id,
            caption: t.caption.clone(),
        }
    }
}

pub fn tags_out(tags: &[TagRef]) -> Vec<TagOut> {
    tags.iter().map(TagOut::from).collect()
}

/// A tag on the Tags page.
#[derive(Serialize, ToSchema)]
pub struct TagDetailOut {
    pub id: i64,
    pub caption: String,
    /// Clients carrying the tag.
    pub clients: i64,
    /// Users and groups whose Allowed Client Tags name it; it can't be deleted while any do.
    pub scope_holders: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagIn {
    /// 1–40 characters, no comma; unique (case-insensitive).
    pub caption: String,
}

async fn detail(state: &AppState, actor: &app::Actor, id: i64) -> ApiResult<TagDetailOut> {
    let t = state.app.get_tag(actor, id).await?;
    Ok(TagDetailOut {
        id: t.id,
        caption: t.caption,
        clients: t.clients,
        scope_holders: t.scope_holders,
    })
}

/// Every client tag, by caption.
#[utoipa::path(get, path = "/api/v1/tags", tag = "clients", operation_id = "listTags",
    responses((status = 200, description = "Every tag", body = Vec<TagDetailOut>), Called, Guarded))]
pub async fn list(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<Vec<TagDetailOut>>> {
    Ok(Json(
        state
            .app
            .list_tags(&actor)
            .await?
            .into_iter()
            .map(|t| TagDetailOut {
                id: t.id,
                caption: t.caption,
                clients: t.clients,
                scope_holders: t.scope_holders,
            })
            .collect(),
    ))
}

/// Creates a tag (Client tags Create).
#[utoipa::path(post, path = "/api/v1/tags", tag = "clients", operation_id = "createTag", request_body = TagIn,
    responses((status = 201, description = "The tag was created", body = TagDetailOut), Called, Guarded, WithBody, Unique))]
pub async fn create(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(t): ApiJson<TagIn>,
) -> ApiResult<(StatusCode, Json<TagDetailOut>)> {
    let id = state.app.create_tag(&actor, &t.caption).await?;
    Ok((StatusCode::CREATED, Json(detail(&state, &actor, id).await?)))
}

/// Renames a tag (Client tags Update; a scoped caller only their own tags).
#[utoipa::path(put, path = "/api/v1/tags/{id}", tag = "clients", operation_id = "renameTag", params(("id" = i64, Path)),
    request_body = TagIn,
    responses((status = 200, description = "The tag as renamed", body = TagDetailOut), Called, Guarded, Named, WithBody, Unique))]
pub async fn rename(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(t): ApiJson<TagIn>,
) -> ApiResult<Json<TagDetailOut>> {
    state.app.rename_tag(&actor, id, &t.caption).await?;
    Ok(Json(detail(&state, &actor, id).await?))
}

/// Deletes a tag and takes it off its clients; refused (409) while a user's or group's Allowed
/// Client Tags name it.
#[utoipa::path(delete, path = "/api/v1/tags/{id}", tag = "clients", operation_id = "deleteTag", params(("id" = i64, Path)),
    responses((status = 204, description = "The tag is gone"), Called, Guarded, Named, Unique))]
pub async fn delete(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    state.app.delete_tag(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
