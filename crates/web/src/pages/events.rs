//! System › Event log: the filtered log, newest first, keyset-paged; CSV and JSON-lines export.

use crate::error::WebError;
use crate::layout::Layout;
use crate::pages::{render, render_status};
use crate::session::Staff;
use crate::AppState;
use app::events::{EventFilter, EventFormat, EventView, PAGE_SIZE};
use app::{AppError, FieldErrors};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::{Action, Section};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct Params {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    target_type: String,
    #[serde(default)]
    target_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    before: Option<String>,
    format: Option<String>,
}

impl Params {
    fn filter(&self) -> EventFilter {
        EventFilter {
            actor: self.actor.clone(),
            category: self.category.clone(),
            event: self.event.clone(),
            target_type: self.target_type.clone(),
            target_id: self.target_id.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            before_id: self.before.as_deref().and_then(|b| b.parse().ok()),
        }
    }

    /// The query string of these filters (without the cursor).
    fn query(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("actor", &self.actor)
            .append_pair("category", &self.category)
            .append_pair("event", &self.event)
            .append_pair("target_type", &self.target_type)
            .append_pair("target_id", &self.target_id)
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .finish()
    }
}

pub const CATEGORIES: [&str; 7] = [
    "auth", "users", "groups", "clients", "settings", "sessions", "system",
];

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    l: Layout,
    p: Params,
    events: Vec<EventView>,
    errors: FieldErrors,
    older: Option<String>,
    can_export: bool,
    categories: [&'static str; 7],
    query: String,
}

impl EventsPage {
    fn problems(&self) -> Vec<crate::problems::Problem> {
        crate::problems::problems(
            &self.errors,
            &[
                ("actor", "actor"),
                ("target_id", "target_id"),
                ("from", "from"),
                ("to", "to"),
            ],
        )
    }

    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }
}

pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(p): Query<Params>,
) -> Result<Response, WebError> {
    let (events, errors) = match state.app.list_events(&staff.actor, &p.filter()).await {
        Ok(e) => (e, FieldErrors::new()),
        Err(AppError::Invalid(errors)) => (Vec::new(), errors),
        Err(e) => return Err(e.into()),
    };
    let query = p.query();
    let older = (events.len() as i64 == PAGE_SIZE)
        .then(|| {
            events
                .last()
                .map(|e| format!("/events?{query}&before={}", e.id))
        })
        .flatten();
    let page = EventsPage {
        can_export: staff.actor.can(Section::EventLog, Action::Export),
        l: staff.layout,
        p,
        events,
        older,
        categories: CATEGORIES,
        query,
        errors,
    };
    Ok(if page.errors.is_empty() {
        render(&page)
    } else {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    })
}

pub async fn export(
    State(state): State<AppState>,
    staff: Staff,
    Query(p): Query<Params>,
) -> Result<Response, WebError> {
    let jsonl = p.format.as_deref() == Some("jsonl");
    let format = if jsonl {
        EventFormat::JsonLines
    } else {
        EventFormat::Csv
    };
    let export = state
        .app
        .export_events(&staff.actor, &p.filter(), format)
        .await?;
    Ok(if jsonl {
        crate::download::streamed(export, "application/x-ndjson", Some("event-log.jsonl"))
    } else {
        crate::download::streamed(export, "text/csv; charset=utf-8", Some("event-log.csv"))
    })
}
