//! `/api/v1/groups`: the same use cases as System › Users › Groups.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiActor, ApiJson, ApiPath, ApiQuery};
use super::responses::{Called, Guarded, Named, Queried, Unique, WithBody};
use super::tags::{tags_out, TagOut};
use super::values;
use crate::AppState;
use app::groups::GroupsFile;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::{Permission, PermissionSet};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct GroupOut {
    pub id: i64,
    pub caption: String,
    /// The built-in Administrators group: every permission, can't be edited or deleted.
    pub builtin: bool,
    #[schema(value_type = Vec<values::Permission>)]
    pub permissions: Vec<String>,
    /// Allowed Client Tags: members see only clients carrying one of them (empty: the group
    /// doesn't narrow its members).
    pub allowed_tags: Vec<TagOut>,
}

#[derive(Serialize, ToSchema)]
pub struct GroupSummaryOut {
    pub id: i64,
    pub caption: String,
    pub builtin: bool,
    pub members: i64,
    pub allowed_tags: Vec<TagOut>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupIn {
    /// 1–100 characters, unique (case-insensitive).
    pub caption: String,
    /// The permissions the group grants.
    #[schema(value_type = Vec<values::Permission>)]
    pub permissions: Vec<String>,
    /// Allowed Client Tags (tag ids); absent or empty: the group doesn't narrow its members.
    #[serde(default)]
    pub allowed_tag_ids: Vec<i64>,
}

fn permission_set(codes: &[String]) -> ApiResult<PermissionSet> {
    let mut set = PermissionSet::default();
    for c in codes {
        let p = Permission::from_code(c)
            .ok_or_else(|| ApiError::field("permissions", format!("Unknown permission {c:?}")))?;
        set.insert(p);
    }
    Ok(set)
}

async fn group_out(state: &AppState, actor: &app::Actor, id: i64) -> ApiResult<GroupOut> {
    let (g, _) = state.app.get_group(actor, id).await?;
    Ok(GroupOut {
        id: g.id,
        caption: g.caption,
        builtin: g.builtin,
        permissions: g.permissions.codes(),
        allowed_tags: tags_out(&g.allowed_tags),
    })
}

/// Every group with its number of members; Administrators first.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", operation_id = "listGroups",
    responses((status = 200, description = "Every group", body = Vec<GroupSummaryOut>), Called, Guarded))]
pub async fn list(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<Vec<GroupSummaryOut>>> {
    let groups = state.app.list_groups(&actor).await?;
    Ok(Json(
        groups
            .into_iter()
            .map(|g| GroupSummaryOut {
                id: g.id,
                caption: g.caption,
                builtin: g.builtin,
                members: g.members,
                allowed_tags: tags_out(&g.allowed_tags),
            })
            .collect(),
    ))
}

/// One group and its permissions.
#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "groups", operation_id = "getGroup", params(("id" = i64, Path)),
    responses((status = 200, description = "The group", body = GroupOut), Called, Guarded, Named))]
pub async fn get(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<GroupOut>> {
    Ok(Json(group_out(&state, &actor, id).await?))
}

/// Creates a group; the caller must hold every permission it grants.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", operation_id = "createGroup", request_body = GroupIn,
    responses((status = 201, description = "The group was created", body = GroupOut), Called, Guarded, WithBody, Unique))]
pub async fn create(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(g): ApiJson<GroupIn>,
) -> ApiResult<(StatusCode, Json<GroupOut>)> {
    let id = state
        .app
        .create_group(
            &actor,
            &g.caption,
            &permission_set(&g.permissions)?,
            &g.allowed_tag_ids,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(group_out(&state, &actor, id).await?),
    ))
}

/// Replaces a group's caption and permissions.
#[utoipa::path(put, path = "/api/v1/groups/{id}", tag = "groups", operation_id = "updateGroup", params(("id" = i64, Path)),
    request_body = GroupIn,
    responses((status = 200, description = "The group as changed", body = GroupOut), Called, Guarded, Named, WithBody, Unique))]
pub async fn update(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(g): ApiJson<GroupIn>,
) -> ApiResult<Json<GroupOut>> {
    state
        .app
        .update_group(
            &actor,
            id,
            &g.caption,
            &permission_set(&g.permissions)?,
            &g.allowed_tag_ids,
        )
        .await?;
    Ok(Json(group_out(&state, &actor, id).await?))
}

/// Deletes a group; its members lose its permissions at their next request.
#[utoipa::path(delete, path = "/api/v1/groups/{id}", tag = "groups", operation_id = "deleteGroup", params(("id" = i64, Path)),
    responses((status = 204, description = "The group is gone"), Called, Guarded, Named))]
pub async fn delete(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    state.app.delete_group(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every group but the built-in one, as the import takes it.
#[utoipa::path(get, path = "/api/v1/groups/export", tag = "groups", operation_id = "exportGroups",
    responses((status = 200, description = "The groups file", body = GroupsFileSchema), Called, Guarded))]
pub async fn export(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
) -> ApiResult<Json<serde_json::Value>> {
    let json = state.app.export_groups(&actor).await?;
    serde_json::from_str(&json)
        .map(Json)
        .map_err(|e| app::AppError::Internal(e.to_string()).into())
}

/// The groups file (what export writes and import reads).
#[derive(ToSchema)]
#[schema(as = GroupsFile)]
#[allow(dead_code)]
pub struct GroupsFileSchema {
    /// The file format's version; there is one.
    #[schema(schema_with = file_version)]
    version: u32,
    groups: Vec<GroupFileEntrySchema>,
}

#[derive(ToSchema)]
#[schema(as = GroupFileEntry)]
#[allow(dead_code)]
pub struct GroupFileEntrySchema {
    caption: String,
    #[schema(value_type = Vec<values::Permission>)]
    permissions: Vec<String>,
}

/// `const` is JSON Schema's keyword for a single allowed value; utoipa's schema object has no
/// field for it, so it goes through the object's open map of extra keywords.
fn file_version() -> utoipa::openapi::Object {
    let mut extra = utoipa::openapi::extensions::Extensions::default();
    extra.insert("const".into(), app::groups::FILE_VERSION.into());
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .description(Some("The file format's version; there is one."))
        .extensions(Some(extra))
        .build()
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// true: replace groups with the same caption; false (default): add " (1)", " (2)" … copies.
    pub replace: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ImportOut {
    pub imported: usize,
}

/// Imports a groups file: all or nothing.
#[utoipa::path(post, path = "/api/v1/groups/import", tag = "groups", operation_id = "importGroups", params(ImportParams),
    request_body = GroupsFileSchema,
    responses((status = 200, description = "Every group of the file was imported", body = ImportOut),
        Called, Guarded, Queried, WithBody))]
pub async fn import(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(p): ApiQuery<ImportParams>,
    ApiJson(file): ApiJson<GroupsFile>,
) -> ApiResult<Json<ImportOut>> {
    let bytes = serde_json::to_vec(&file).map_err(|e| app::AppError::Internal(e.to_string()))?;
    let imported = state
        .app
        .import_groups(&actor, &bytes, p.replace.unwrap_or(false))
        .await?;
    Ok(Json(ImportOut { imported }))
}
