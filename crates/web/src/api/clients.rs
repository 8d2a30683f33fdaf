//! `/api/v1/clients`: the client directory, masked in the application layer exactly as the
//! pages are.

use super::error::{ApiError, ApiResult};
use super::extract::{present, tagged, ApiActor, ApiJson, ApiPath, ApiQuery, IfMatch};
use super::responses::{Called, Guarded, Named, Queried, Unique, Versioned, WithBody};
use super::tags::{tags_out, TagOut};
use super::values;
use crate::AppState;
use app::clients::ClientView;
use app::clients::{ClientListRequest, ClientPatch, SearchField};
use app::ClientSort;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use domain::client::ClientInput;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct ClientOut {
    pub id: i64,
    /// Masked (e.g. `J****`) for callers with Mask data on.
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    /// ISO 3166 alpha-2.
    pub country: String,
    pub city: String,
    #[schema(value_type = values::ClientRole)]
    pub role: String,
    #[schema(value_type = values::ClientStatus)]
    pub status: String,
    #[schema(value_type = values::Language)]
    pub language: String,
    #[schema(format = DateTime)]
    pub registered_at: String,
    pub tags: Vec<TagOut>,
}

impl From<&ClientView> for ClientOut {
    fn from(c: &ClientView) -> Self {
        Self {
            id: c.id,
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            country: c.country.clone(),
            city: c.city.clone(),
            role: c.role.code().into(),
            status: c.status.code().into(),
            language: c.language.clone(),
            registered_at: c.registered_at.iso(),
            tags: tags_out(&c.tags),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ClientPage {
    pub items: Vec<ClientOut>,
    /// Matching clients; with a filter or Allowed Client Tags, counting stops after about 1,000
    /// (see `total_is_lower_bound`).
    pub total: i64,
    /// True when counting stopped early: at least `total` clients match.
    pub total_is_lower_bound: bool,
    /// For the ID order: pass as `after` for the next page; null on the last page.
    pub next_cursor: Option<i64>,
}

#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClientParams {
    /// Search text: a prefix (name, email, phone) or an exact ID.
    pub q: Option<String>,
    /// What `q` searches (default: name). Masked callers may only use id.
    #[serde(rename = "in")]
    #[param(rename = "in", value_type = Option<values::SearchField>)]
    pub search_in: Option<String>,
    /// ISO 3166 alpha-2.
    pub country: Option<String>,
    #[param(value_type = Option<values::ClientRole>)]
    pub role: Option<String>,
    #[param(value_type = Option<values::ClientStatus>)]
    pub status: Option<String>,
    /// Registered from this UTC day, inclusive.
    #[param(format = Date)]
    pub from: Option<String>,
    /// Registered up to this UTC day, inclusive.
    #[param(format = Date)]
    pub to: Option<String>,
    /// The column to order by (default: id, or email for an email search). Masked callers
    /// can't sort by name or email.
    #[param(value_type = Option<values::ClientSort>)]
    pub sort: Option<String>,
    /// Ascending by default.
    #[param(value_type = Option<values::SortDirection>)]
    pub dir: Option<String>,
    /// Keyset cursor (ID order): the `next_cursor` of the previous page.
    pub after: Option<i64>,
    /// Page number for the other orders.
    #[param(minimum = 1, maximum = 1_000_000, default = 1)]
    pub page: Option<i64>,
    /// Clients per page (default 25).
    #[param(value_type = Option<values::PageSize>)]
    pub limit: Option<i64>,
    /// Clients carrying any of these tags: tag ids separated by commas, like `3,7`.
    #[param(pattern = r"^[0-9]+(,[0-9]+)*$")]
    pub tags: Option<String>,
}

impl ClientParams {
    fn request(&self) -> ApiResult<ClientListRequest> {
        let field = values::SearchField::param("in", self.search_in.as_deref())?
            .and_then(SearchField::from_code)
            .unwrap_or_default();
        let sort = values::ClientSort::param("sort", self.sort.as_deref())?
            .and_then(ClientSort::from_code)
            .unwrap_or_else(|| field.default_sort(self.q.as_deref().unwrap_or("")));
        let role = values::ClientRole::param("role", self.role.as_deref())?;
        let status = values::ClientStatus::param("status", self.status.as_deref())?;
        let descending = values::descending(self.dir.as_deref())?;
        let per_page = self.limit.unwrap_or(25);
        if !app::clients::PAGE_SIZES.contains(&per_page) {
            return Err(ApiError::field("limit", "Use 25, 50 or 100"));
        }
        let page = self.page.unwrap_or(1);
        if !(1..=1_000_000).contains(&page) {
            return Err(ApiError::field("page", "Use a page number from 1"));
        }
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        // Present means a list: `?tags=` is refused like any other empty value.
        let tags = match self.tags.as_deref() {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                // Exactly the documented pattern: digits, no sign or spaces.
                .map(|t| {
                    t.bytes()
                        .all(|b| b.is_ascii_digit())
                        .then(|| t.parse::<i64>().ok())
                        .flatten()
                        .ok_or(())
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    ApiError::field("tags", "Give tag ids separated by commas, like 3,7")
                })?,
        };
        Ok(ClientListRequest {
            tags,
            field,
            text: s(&self.q),
            country: s(&self.country),
            role: role.unwrap_or_default().into(),
            status: status.unwrap_or_default().into(),
            from: values::day("from", self.from.as_deref())?,
            to: values::day("to", self.to.as_deref())?,
            sort,
            descending,
            after_id: self.after,
            page,
            per_page,
            ..Default::default()
        })
    }
}

/// Lists and searches clients.
#[utoipa::path(get, path = "/api/v1/clients", tag = "clients", operation_id = "listClients", params(ClientParams),
    responses((status = 200, description = "One page of clients", body = ClientPage), Called, Guarded, Queried))]
pub async fn list(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(p): ApiQuery<ClientParams>,
) -> ApiResult<Json<ClientPage>> {
    let list = state.app.list_clients(&actor, &p.request()?).await?;
    Ok(Json(ClientPage {
        total: list.total,
        total_is_lower_bound: list.total_is_lower_bound,
        next_cursor: list.next_after,
        items: list.items.iter().map(ClientOut::from).collect(),
    }))
}

/// One client.
#[utoipa::path(get, path = "/api/v1/clients/{id}", tag = "clients", operation_id = "getClient", params(("id" = i64, Path)),
    responses((status = 200, description = "The client", body = ClientOut, headers(("ETag" = String, description = "The version shown: send it back in If-Match to change only this version"))), Called, Guarded, Named))]
pub async fn get(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    Ok(client_out(
        &state.app.get_client(&actor, id).await?,
        StatusCode::OK,
    ))
}

/// The client as the API shows it, with its `ETag`.
fn client_out(c: &ClientView, status: StatusCode) -> Response {
    tagged(c.version, status, ClientOut::from(c))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientIn {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// Any common format; stored as E.164.
    pub phone: String,
    /// ISO 3166 alpha-2.
    pub country: String,
    pub city: String,
    #[schema(value_type = values::ClientRole)]
    pub role: String,
    #[schema(value_type = values::ClientStatus)]
    pub status: String,
    /// Communication language.
    #[schema(value_type = values::Language)]
    pub language: String,
    /// Tag ids. A caller with Allowed Client Tags must give one of theirs.
    #[serde(default)]
    pub tag_ids: Vec<i64>,
}

impl From<&ClientIn> for ClientInput {
    fn from(c: &ClientIn) -> Self {
        ClientInput {
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            country: c.country.clone(),
            city: c.city.clone(),
            role: c.role.clone(),
            status: c.status.clone(),
            language: c.language.clone(),
        }
    }
}

/// Creates a client.
#[utoipa::path(post, path = "/api/v1/clients", tag = "clients", operation_id = "createClient", request_body = ClientIn,
    responses((status = 201, description = "The client was created", body = ClientOut, headers(("ETag" = String, description = "The version shown: send it back in If-Match to change only this version"))), Called, Guarded, WithBody, Unique))]
pub async fn create(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(c): ApiJson<ClientIn>,
) -> ApiResult<Response> {
    let id = state
        .app
        .create_client(&actor, &ClientInput::from(&c), &c.tag_ids)
        .await?;
    Ok(client_out(
        &state.app.get_client(&actor, id).await?,
        StatusCode::CREATED,
    ))
}

/// Fields to change; an absent field stays as it is (`null` is not a value of any). For masked
/// callers, personal fields are ignored.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientUpdate {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub first_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub last_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub country: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub city: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<values::ClientRole>, nullable = false)]
    pub role: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<values::ClientStatus>, nullable = false)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<values::Language>, nullable = false)]
    pub language: Option<String>,
    /// Replaces the client's tags (ids); a caller with Allowed Client Tags adds and removes
    /// only theirs.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub tag_ids: Option<Vec<i64>>,
}

/// Changes the fields sent; the others keep the values they have when the change is written,
/// so concurrent changes of different fields all stay.
#[utoipa::path(patch, path = "/api/v1/clients/{id}", tag = "clients", operation_id = "updateClient",
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header, description = "The ETag of the version the change is based on: 412 if it is no longer current. Without it, the change is applied to the current version (fields not sent are kept as they are then)")), request_body = ClientUpdate,
    responses((status = 200, description = "The client as changed", body = ClientOut, headers(("ETag" = String, description = "The version shown: send it back in If-Match to change only this version"))),
        Called, Guarded, Named, WithBody, Unique, Versioned))]
pub async fn update(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
    if_match: IfMatch,
    ApiJson(u): ApiJson<ClientUpdate>,
) -> ApiResult<Response> {
    let expected = if_match.version()?;
    let patch = ClientPatch {
        first_name: u.first_name,
        last_name: u.last_name,
        email: u.email,
        phone: u.phone,
        country: u.country,
        city: u.city,
        role: u.role,
        status: u.status,
        language: u.language,
    };
    let saved = state
        .app
        .update_client(&actor, id, &patch, u.tag_ids.as_deref(), expected)
        .await?;
    Ok(client_out(&saved, StatusCode::OK))
}

/// Blocks a client (Clients Delete); nothing is deleted, history stays.
#[utoipa::path(post, path = "/api/v1/clients/{id}/block", tag = "clients", operation_id = "blockClient",
    params(("id" = i64, Path)),
    responses((status = 200, description = "The client, blocked", body = ClientOut, headers(("ETag" = String, description = "The version shown: send it back in If-Match to change only this version"))), Called, Guarded, Named))]
pub async fn block(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    let saved = state.app.block_client(&actor, id).await?;
    Ok(client_out(&saved, StatusCode::OK))
}

/// The filtered list as CSV (Clients View + Clients Export), formula-safe, masked for masked callers.
#[utoipa::path(get, path = "/api/v1/clients/export", tag = "clients", operation_id = "exportClients", params(ClientParams),
    responses((status = 200, description = "The clients as CSV, with a header row", content_type = "text/csv", body = String),
        Called, Guarded, Queried))]
pub async fn export(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(p): ApiQuery<ClientParams>,
) -> ApiResult<Response> {
    let export = state.app.export_clients(&actor, &p.request()?).await?;
    Ok(crate::download::streamed(
        export,
        "text/csv; charset=utf-8",
        None,
    ))
}
