//! System › Event log: the filtered log, newest first, keyset-paged; CSV and JSON-lines export.

use crate::error::WebError;
use crate::layout::Layout;
use crate::pages::{render, render_status};
use crate::session::Staff;
use crate::AppState;
use app::events::{EventFilter, EventView, PAGE_SIZE};
use app::{AppError, FieldErrors};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
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

fn details_text(e: &EventView) -> String {
    e.details
        .iter()
        .map(|c| format!("{}: {} → {}", c.field, c.before, c.after))
        .collect::<Vec<_>>()
        .join("; ")
}

pub async fn export(
    State(state): State<AppState>,
    staff: Staff,
    Query(p): Query<Params>,
) -> Result<Response, WebError> {
    let events = state.app.export_events(&staff.actor, &p.filter()).await?;
    if p.format.as_deref() == Some("jsonl") {
        let mut body = String::new();
        for e in &events {
            body.push_str(&serde_json::to_string(e).unwrap_or_default());
            body.push('\n');
        }
        return Ok((
            [
                (header::CONTENT_TYPE, "application/x-ndjson"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"event-log.jsonl\"",
                ),
            ],
            body,
        )
            .into_response());
    }
    let head = [
        "id",
        "time_utc",
        "actor",
        "actor_groups",
        "category",
        "action",
        "event",
        "target_type",
        "target_id",
        "target",
        "details",
        "ip",
    ];
    let rows = events.iter().map(|e| {
        vec![
            e.id.to_string(),
            e.at.clone(),
            e.actor_email.clone().unwrap_or_default(),
            e.actor_groups.clone(),
            e.category.clone(),
            e.action.clone(),
            e.event.clone(),
            e.target_type.clone().unwrap_or_default(),
            e.target_id.map(|t| t.to_string()).unwrap_or_default(),
            e.target_label.clone().unwrap_or_default(),
            details_text(e),
            e.ip.clone().unwrap_or_default(),
        ]
    });
    let body = app::csv_file::write_csv(&head, rows)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"event-log.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}
