//! System › Event log: the filtered log, newest first, keyset-paged; CSV and JSON-lines export.

use crate::error::WebError;
use crate::layout::Layout;
use crate::pages::columns::Columns;
use crate::pages::{render, render_status};
use crate::session::Staff;
use crate::AppState;
use app::events::{EventFilter, EventFormat, EventList, PAGE_SIZES};
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
    after: Option<String>,
    /// "1": the oldest page.
    last: Option<String>,
    per_page: Option<String>,
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
            after_id: self.after.as_deref().and_then(|a| a.parse().ok()),
            last: self.last.as_deref() == Some("1"),
            per_page: self
                .per_page
                .as_deref()
                .and_then(|n| n.parse().ok())
                .unwrap_or_default(),
        }
    }

    /// The query string of these filters (without the cursor or the page size).
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
    /// The page's events (taken out of `list`).
    events: Vec<app::events::EventView>,
    list: EventList,
    errors: FieldErrors,
    can_export: bool,
    categories: [&'static str; 7],
    /// The filters' query string, for the exports.
    query: String,
    per_pages: [i64; 3],
    cols: Columns,
}

/// The Event log's columns, `(label, code)`.
const COLUMNS: [(&str, &str); 9] = [
    ("Time", "time"),
    ("Actor", "actor"),
    ("Actor's groups", "actor_groups"),
    ("Category", "category"),
    ("Action", "action"),
    ("Event", "event"),
    ("Target", "target"),
    ("Details", "details"),
    ("IP address", "ip"),
];

impl EventsPage {
    /// The filters and the page size, to which a page's cursor is added.
    fn view_query(&self) -> String {
        format!("{}&per_page={}", self.query, self.list.per_page)
    }

    /// This list's query string, for coming back to it after the Columns menu.
    fn here(&self) -> String {
        let mut q = self.view_query();
        for (key, value) in [
            ("before", &self.p.before),
            ("after", &self.p.after),
            ("last", &self.p.last),
        ] {
            if let Some(v) = value {
                q.push_str(&format!(
                    "&{key}={}",
                    form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                ));
            }
        }
        q
    }

    fn first_link(&self) -> Option<String> {
        self.list
            .newer
            .map(|_| format!("/events?{}", self.view_query()))
    }

    fn previous_link(&self) -> Option<String> {
        self.list
            .newer
            .map(|id| format!("/events?{}&after={id}", self.view_query()))
    }

    fn next_link(&self) -> Option<String> {
        self.list
            .older
            .map(|id| format!("/events?{}&before={id}", self.view_query()))
    }

    fn last_link(&self) -> Option<String> {
        self.list
            .older
            .map(|_| format!("/events?{}&last=1", self.view_query()))
    }

    /// A column of the events table is shown (the history tables elsewhere show them all).
    fn event_col(&self, code: &str) -> bool {
        self.cols.shows(code)
    }

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
    let filter = p.filter();
    let (mut list, errors) = match state.app.event_page(&staff.actor, &filter).await {
        Ok(list) => (list, FieldErrors::new()),
        Err(AppError::Invalid(errors)) => {
            let per_page = if PAGE_SIZES.contains(&filter.per_page) {
                filter.per_page
            } else {
                app::events::PAGE_SIZE
            };
            let list = EventList {
                per_page,
                ..Default::default()
            };
            (list, errors)
        }
        Err(e) => return Err(e.into()),
    };
    let cols = Columns::of(&state, &staff, "events", &COLUMNS).await?;
    let page = EventsPage {
        can_export: staff.actor.can(Section::EventLog, Action::Export),
        l: staff.layout,
        query: p.query(),
        p,
        events: std::mem::take(&mut list.items),
        list,
        categories: CATEGORIES,
        per_pages: PAGE_SIZES,
        cols,
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
