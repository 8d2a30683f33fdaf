//! `/api/v1/events`: the event log, newest first.

use super::error::ApiResult;
use super::extract::{ApiActor, ApiQuery};
use super::responses::{Called, Guarded, Queried};
use super::values;
use crate::AppState;
use app::events::{EventFilter, EventFormat, EventView};
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct ChangeOut {
    pub field: String,
    pub before: String,
    pub after: String,
}

#[derive(Serialize, ToSchema)]
pub struct EventOut {
    pub id: i64,
    #[schema(format = DateTime)]
    pub at: String,
    pub actor_id: Option<i64>,
    pub actor_email: Option<String>,
    pub actor_groups: String,
    pub category: String,
    pub action: String,
    pub event: String,
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    pub target_label: Option<String>,
    pub details: Vec<ChangeOut>,
    pub ip: Option<String>,
}

impl From<EventView> for EventOut {
    fn from(e: EventView) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor_id: e.actor_id,
            actor_email: e.actor_email,
            actor_groups: e.actor_groups,
            category: e.category,
            action: e.action,
            event: e.event,
            target_type: e.target_type,
            target_id: e.target_id,
            target_label: e.target_label,
            details: e
                .details
                .into_iter()
                .map(|c| ChangeOut {
                    field: c.field,
                    before: c.before,
                    after: c.after,
                })
                .collect(),
            ip: e.ip,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventOut>,
    /// Pass as `before` for older events; null when there are none.
    pub next_cursor: Option<i64>,
}

#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Email of the user who acted.
    pub actor: Option<String>,
    /// auth, users, groups, clients, settings, sessions, system.
    pub category: Option<String>,
    /// Exact event name, e.g. "User created".
    pub event: Option<String>,
    /// user, group or client.
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    /// From this UTC day, inclusive.
    #[param(format = Date)]
    pub from: Option<String>,
    /// Up to this UTC day, inclusive.
    #[param(format = Date)]
    pub to: Option<String>,
    /// Cursor: only events older than this id (the `next_cursor` of the previous page).
    pub before: Option<i64>,
}

impl EventParams {
    fn filter(&self) -> ApiResult<EventFilter> {
        Ok(EventFilter {
            actor: self.actor.clone().unwrap_or_default(),
            category: self.category.clone().unwrap_or_default(),
            event: self.event.clone().unwrap_or_default(),
            target_type: self.target_type.clone().unwrap_or_default(),
            target_id: self.target_id.map(|t| t.to_string()).unwrap_or_default(),
            from: values::day("from", self.from.as_deref())?,
            to: values::day("to", self.to.as_deref())?,
            before_id: self.before,
            ..Default::default()
        })
    }
}

/// One page (50) of the event log, newest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", operation_id = "listEvents", params(EventParams),
    responses((status = 200, description = "One page of events, newest first", body = EventPage), Called, Guarded, Queried))]
pub async fn list(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(p): ApiQuery<EventParams>,
) -> ApiResult<Json<EventPage>> {
    let events = state.app.list_events(&actor, &p.filter()?).await?;
    let next = (events.len() as i64 == app::events::PAGE_SIZE)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(Json(EventPage {
        items: events.into_iter().map(EventOut::from).collect(),
        next_cursor: next,
    }))
}

/// Every filtered event as JSON lines (needs Event log Export); the export itself is logged.
#[utoipa::path(get, path = "/api/v1/events/export", tag = "events", operation_id = "exportEvents", params(EventParams),
    responses((status = 200, description = "Newline-delimited JSON: one `EventOut` object per line, newest first",
        content_type = "application/x-ndjson", body = String), Called, Guarded, Queried))]
pub async fn export(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiQuery(p): ApiQuery<EventParams>,
) -> ApiResult<Response> {
    let export = state
        .app
        .export_events(&actor, &p.filter()?, EventFormat::JsonLines)
        .await?;
    Ok(crate::download::streamed(
        export,
        "application/x-ndjson",
        None,
    ))
}
