//! System › Event log: reading and exporting the log. Rows are never edited or deleted here (or
//! anywhere). Client personal data in events is masked for viewers with "Mask data" on.

use crate::csv_file::{csv_lines, CsvPage};
use crate::export::{self, Export, Sink, Stopped};
use crate::{Actor, App, AppError};
use domain::audit::{AuditAction, Category, Event, PersonalKind};
use domain::{Action, Email, Section, Timestamp};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt::Write;
use std::sync::Arc;
use store::{EventExportPage, EventQuery, EventRecord, ExportedEvent};

pub const PAGE_SIZE: i64 = 50;
/// The page sizes the Event log offers.
pub const PAGE_SIZES: [i64; 3] = [25, 50, 100];

/// One changed field, as shown in the Details column.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeView<S = String> {
    pub field: S,
    pub before: S,
    pub after: S,
}

/// An event as a viewer may see it (masked where the viewer must not see client data). Pages
/// and the API hold `String`s; an export's rows borrow what they can from the page the store
/// handed over (`Cow`), and are written with the same fields by the same serde derive.
#[derive(Debug, Clone, Serialize)]
pub struct EventView<S = String> {
    pub id: i64,
    pub at: S,
    #[serde(skip)]
    pub time: Timestamp,
    pub actor_id: Option<i64>,
    pub actor_email: Option<S>,
    pub actor_groups: S,
    pub category: S,
    pub action: S,
    pub event: S,
    pub target_type: Option<S>,
    pub target_id: Option<i64>,
    pub target_label: Option<S>,
    pub details: Vec<ChangeView<S>>,
    pub ip: Option<S>,
}

impl EventView {
    /// The Action column in words ("Changed user", "Signed in").
    pub fn action_words(&self) -> String {
        domain::audit::action_words(&self.category, &self.action)
    }

    /// The Category column in words ("Sign-in" for `auth`).
    pub fn category_label(&self) -> &str {
        domain::audit::category_label(&self.category)
    }
}

/// What the filter form sends, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub actor: String,
    pub category: String,
    pub event: String,
    pub target_type: String,
    pub target_id: String,
    pub from: String,
    pub to: String,
    /// Newest first from just before this event (Next).
    pub before_id: Option<i64>,
    /// The page just after this event, going towards the newest (Previous).
    pub after_id: Option<i64>,
    /// The oldest page (Last).
    pub last: bool,
    /// One of [`PAGE_SIZES`]; anything else is [`PAGE_SIZE`].
    pub per_page: i64,
}

/// One page of the Event log with the cursors of its neighbours, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventList {
    pub items: Vec<EventView>,
    /// The cursor of the page of newer events (`after_id`), when there is one.
    pub newer: Option<i64>,
    /// The cursor of the page of older events (`before_id`), when there is one.
    pub older: Option<i64>,
    /// Every event in the log, when the view is the whole log: the chain's length, which the
    /// log keeps anyway. A filtered or scoped view is not counted (see `event_page`).
    pub total: Option<i64>,
    pub per_page: i64,
}

impl EventFilter {
    /// No filter is set: the view is the whole log.
    fn is_whole_log(&self) -> bool {
        [
            &self.actor,
            &self.category,
            &self.event,
            &self.target_type,
            &self.target_id,
            &self.from,
            &self.to,
        ]
        .iter()
        .all(|s| s.trim().is_empty())
    }
}

/// A changed field as stored in an event row's details.
#[derive(Deserialize)]
struct StoredChange<'d> {
    #[serde(borrow)]
    field: Cow<'d, str>,
    #[serde(borrow)]
    before: Cow<'d, str>,
    #[serde(borrow)]
    after: Cow<'d, str>,
    /// The kind of personal data (`"name"`, `"email"`, `"phone"`) or `false`; absent only in
    /// rows written before the kind was recorded.
    personal: Option<serde_json::Value>,
}

impl StoredChange<'_> {
    /// The personal-data kind the event was built with. Rows from before the kind was recorded
    /// are read by the client fields' names, the only rule those versions had.
    fn personal_kind(&self, client_event: bool) -> Option<PersonalKind> {
        match &self.personal {
            Some(v) => v.as_str().and_then(PersonalKind::from_code),
            None if client_event => match &*self.field {
                "first name" | "last name" | "name" => Some(PersonalKind::Name),
                "email" => Some(PersonalKind::Email),
                "phone" => Some(PersonalKind::Phone),
                _ => None,
            },
            None => None,
        }
    }
}

/// The changes of an event row as `viewer_masked` may see them.
fn changes_for<'d, S: From<String> + From<Cow<'d, str>>>(
    details: &'d str,
    client_event: bool,
    viewer_masked: bool,
) -> Vec<ChangeView<S>> {
    let stored: Vec<StoredChange> = serde_json::from_str(details).unwrap_or_default();
    stored
        .into_iter()
        .map(|c| match c.personal_kind(client_event) {
            Some(kind) if viewer_masked => ChangeView {
                field: c.field.into(),
                before: kind.mask(&c.before).into(),
                after: kind.mask(&c.after).into(),
            },
            _ => ChangeView {
                field: c.field.into(),
                before: c.before.into(),
                after: c.after.into(),
            },
        })
        .collect()
}

/// An event row as a viewer may see it: the one place that decides what of an event is masked
/// (the target label of a client event, and the changes by their personal-data kind), for
/// pages, the API and exports alike. `S` is `String` for a stored record, `Cow` for an export
/// row borrowed from its page.
fn view_of<'d, S: From<String> + From<Cow<'d, str>> + AsRef<str>>(
    row: EventView<S>,
    details: &'d str,
    masked: bool,
) -> EventView<S> {
    let client_target = row.target_type.as_ref().map(AsRef::as_ref) == Some("client");
    let client_event = client_target || row.category.as_ref() == Category::Clients.code();
    EventView {
        details: changes_for(details, client_event, masked),
        // A client event's target is the client, labelled with their name.
        target_label: match row.target_label {
            Some(label) if masked && client_target => {
                Some(PersonalKind::Name.mask(label.as_ref()).into())
            }
            other => other,
        },
        ..row
    }
}

pub(crate) fn view(r: EventRecord, masked: bool) -> EventView {
    let row = EventView {
        id: r.id,
        at: r.at.iso(),
        time: r.at,
        actor_id: r.actor_id,
        actor_email: r.actor_email,
        actor_groups: r.actor_groups,
        details: Vec::new(),
        category: r.category,
        action: r.action,
        event: r.event,
        target_type: r.target_type,
        target_id: r.target_id,
        target_label: r.target_label,
        ip: r.ip,
    };
    view_of(row, &r.details, masked)
}

/// An export row as a viewer may see it, borrowing what it can from the page.
fn export_view<'c>(e: &'c ExportedEvent<'_>, masked: bool) -> EventView<Cow<'c, str>> {
    let text = |s: &'c str| Cow::Borrowed(s);
    let at = Timestamp(e.at);
    let row = EventView {
        id: e.id,
        at: Cow::Owned(at.iso()),
        time: at,
        actor_id: e.actor_id,
        actor_email: e.actor_email.as_deref().map(text),
        actor_groups: text(&e.actor_groups),
        details: Vec::new(),
        category: text(&e.category),
        action: text(&e.action),
        event: text(&e.event),
        target_type: e.target_type.as_deref().map(text),
        target_id: e.target_id,
        target_label: e.target_label.as_deref().map(text),
        ip: e.ip.as_deref().map(text),
    };
    view_of(row, &e.details, masked)
}

/// The events this actor may see: none about clients outside their Allowed Client Tags.
fn visible_to(actor: &Actor) -> store::EventVisibility {
    store::EventVisibility {
        viewer_id: actor.id(),
        client_scope: actor.client_scope().clone(),
    }
}

impl App {
    /// Turns the filter form into a query; unknown actors and bad dates are field errors.
    async fn event_query(&self, f: &EventFilter, limit: i64) -> Result<EventQuery, AppError> {
        let mut errors = crate::FieldErrors::new();
        let actor_id = if f.actor.trim().is_empty() {
            None
        } else {
            let found = match Email::parse(&f.actor) {
                Ok(e) => self.store.user_by_email_key(&e.key()).await?.map(|u| u.id),
                Err(_) => None,
            };
            if found.is_none() {
                errors.insert("actor", "No user has this email".into());
            }
            found
        };
        let date = |raw: &str, field: &'static str, errors: &mut crate::FieldErrors| {
            if raw.trim().is_empty() {
                return None;
            }
            let t = Timestamp::from_date(raw);
            if t.is_none() {
                errors.insert(field, "Enter a date like 2026-11-27".into());
            }
            t
        };
        let from = date(&f.from, "from", &mut errors);
        let to = date(&f.to, "to", &mut errors).map(|t| t.plus_secs(86_400));
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                errors.insert("to", "To must be the same day as From or later".into());
            }
        }
        let target_id = if f.target_id.trim().is_empty() {
            None
        } else {
            let id = f.target_id.trim().parse::<i64>().ok();
            if id.is_none() {
                errors.insert("target_id", "Enter a number".into());
            }
            id
        };
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Ok(EventQuery {
            actor_id,
            category: text(&f.category),
            event: text(&f.event),
            target_type: text(&f.target_type),
            target_id,
            from,
            to,
            before_id: f.before_id,
            after_id: None,
            oldest_first: false,
            limit,
        })
    }

    /// One page of the log, newest first.
    pub async fn list_events(
        &self,
        actor: &Actor,
        filter: &EventFilter,
    ) -> Result<Vec<EventView>, AppError> {
        self.events_up_to(actor, filter, PAGE_SIZE).await
    }

    /// At most `limit` events of the log, newest first (the Dashboard's latest changes read
    /// only the few they show).
    pub(crate) async fn events_up_to(
        &self,
        actor: &Actor,
        filter: &EventFilter,
        limit: i64,
    ) -> Result<Vec<EventView>, AppError> {
        self.authorize(actor, Section::EventLog, Action::View, "view the event log")
            .await?;
        let q = self.event_query(filter, limit).await?;
        let masked = actor.masked();
        Ok(self
            .store
            .list_events(&visible_to(actor), &q)
            .await?
            .into_iter()
            .map(|r| view(r, masked))
            .collect())
    }

    /// A page of the Event log, keyset-paged either way: newest first, the page after a cursor
    /// (Next), the page before one (Previous) or the oldest page (Last), each one indexed read
    /// of `per_page + 1` rows; no OFFSET, whatever the page.
    ///
    /// The total is given only for the whole, unscoped log, where it is the chain head's
    /// sequence number (one row); counting a filtered view would read every matching row of a
    /// log that grows to millions on each view, so the page says it is not counted instead.
    pub async fn event_page(
        &self,
        actor: &Actor,
        filter: &EventFilter,
    ) -> Result<EventList, AppError> {
        self.authorize(actor, Section::EventLog, Action::View, "view the event log")
            .await?;
        let per_page = if PAGE_SIZES.contains(&filter.per_page) {
            filter.per_page
        } else {
            PAGE_SIZE
        };
        let mut q = self.event_query(filter, per_page + 1).await?;
        let visible = visible_to(actor);
        let backwards = filter.last || filter.after_id.is_some();
        if backwards {
            q.before_id = None;
            q.after_id = if filter.last { None } else { filter.after_id };
            q.oldest_first = true;
        }
        let mut rows = self.store.list_events(&visible, &q).await?;
        let beyond = rows.len() as i64 > per_page;
        rows.truncate(per_page as usize);
        let (newer_exists, older_exists) = if backwards {
            if !beyond && !filter.last {
                // Fewer than a page before the cursor: that is the first page; show it whole.
                let first = EventFilter {
                    after_id: None,
                    before_id: None,
                    ..filter.clone()
                };
                return Box::pin(self.event_page(actor, &first)).await;
            }
            rows.reverse();
            (beyond, !filter.last)
        } else {
            (filter.before_id.is_some(), beyond)
        };
        let total = if filter.is_whole_log() && actor.client_scope().is_all() {
            Some(self.store.chain_head().await?.0)
        } else {
            None
        };
        let masked = actor.masked();
        Ok(EventList {
            newer: newer_exists.then(|| rows.first().map(|r| r.id)).flatten(),
            older: older_exists.then(|| rows.last().map(|r| r.id)).flatten(),
            items: rows.into_iter().map(|r| view(r, masked)).collect(),
            total,
            per_page,
        })
    }

    /// The latest events about one object, for its page ("history").
    pub async fn history(
        &self,
        actor: &Actor,
        target_type: &str,
        target_id: i64,
    ) -> Result<Vec<EventView>, AppError> {
        if !actor.can(Section::EventLog, Action::View) {
            return Ok(Vec::new());
        }
        let q = EventQuery {
            target_type: Some(target_type.into()),
            target_id: Some(target_id),
            limit: 20,
            ..Default::default()
        };
        let masked = actor.masked();
        Ok(self
            .store
            .list_events(&visible_to(actor), &q)
            .await?
            .into_iter()
            .map(|r| view(r, masked))
            .collect())
    }

    /// Every filtered row, newest first, as CSV or JSON lines, streamed (see
    /// [`crate::export`]); masked and scoped like the page. Needs Event log View and Export.
    /// The export is logged when it ends, with the rows sent and whether it was complete.
    pub async fn export_events(
        self: &Arc<Self>,
        actor: &Actor,
        filter: &EventFilter,
        format: EventFormat,
    ) -> Result<Export, AppError> {
        self.authorize(
            actor,
            Section::EventLog,
            Action::View,
            "export the event log",
        )
        .await?;
        self.authorize(
            actor,
            Section::EventLog,
            Action::Export,
            "export the event log",
        )
        .await?;
        let query = self.event_query(filter, export::PAGE_ROWS).await?;
        let (sink, export) = export::channel();
        let (app, actor) = (Arc::clone(self), actor.clone());
        tokio::spawn(async move {
            let (count, stopped) = app.stream_events(&actor, query, format, &sink).await;
            let e = Event::new(Category::System, AuditAction::Export, "Event log exported")
                .change("count", "", count.to_string())
                .change("complete", "", export::outcome(stopped));
            // Logged before the last chunk's sender goes: the file ends after its event, and
            // the event is not in the file (it is newer than the first page read).
            app.log(Some(&actor), None, e).await;
        });
        Ok(export)
    }

    async fn stream_events(
        &self,
        actor: &Actor,
        query: EventQuery,
        format: EventFormat,
        sink: &Sink,
    ) -> (usize, Option<Stopped>) {
        if format == EventFormat::Csv {
            let header = vec![EXPORT_COLUMNS.iter().map(|c| c.to_string()).collect()];
            if let Err(stopped) = sink.send(header, csv_lines).await {
                return (0, Some(stopped));
            }
        }
        let visible = visible_to(actor);
        let (store, visible, query) = (&self.store, &visible, &query);
        let read = |before_id: Option<i64>| async move {
            let q = EventQuery {
                before_id,
                ..query.clone()
            };
            let page = store.export_events_page(visible, &q).await?;
            let (rows, next) = (page.rows, page.last_id);
            Ok((page, rows, next))
        };
        let masked = actor.masked();
        let encode = move |page: EventExportPage| export_page(&page, masked, format);
        let page_rows = usize::try_from(query.limit).unwrap_or(0);
        export::stream_pages(sink, query.before_id, page_rows, read, encode).await
    }
}

/// A page of the export in `format`, masked for a masked viewer: decoded once, each row written
/// straight into the page's buffer.
fn export_page(
    page: &EventExportPage,
    masked: bool,
    format: EventFormat,
) -> Result<Vec<u8>, AppError> {
    let events = page.decode()?;
    let views = events.iter().map(|e| export_view(e, masked));
    match format {
        EventFormat::Csv => {
            let mut csv = CsvPage::with_capacity(page.len_bytes());
            // Reused from row to row.
            let (mut id, mut target_id, mut details) =
                (String::new(), String::new(), String::new());
            for e in views {
                id.clear();
                let _ = write!(id, "{}", e.id);
                target_id.clear();
                if let Some(t) = e.target_id {
                    let _ = write!(target_id, "{t}");
                }
                details.clear();
                write_details(&e.details, &mut details);
                csv.row([
                    &id,
                    &e.at,
                    text(&e.actor_email),
                    &e.actor_groups,
                    &e.category,
                    &e.action,
                    &e.event,
                    text(&e.target_type),
                    &target_id,
                    text(&e.target_label),
                    &details,
                    text(&e.ip),
                ])?;
            }
            csv.finish()
        }
        EventFormat::JsonLines => {
            let mut out = Vec::with_capacity(page.len_bytes() + page.len_bytes() / 2);
            for e in views {
                serde_json::to_writer(&mut out, &e)
                    .map_err(|e| AppError::Internal(format!("json: {e}")))?;
                out.push(b'\n');
            }
            Ok(out)
        }
    }
}

/// An optional cell's text ("" for none).
fn text<'s>(value: &'s Option<Cow<'_, str>>) -> &'s str {
    value.as_deref().unwrap_or_default()
}

/// The Details column: `field: before → after`, separated by `; `.
fn write_details<S: AsRef<str>>(changes: &[ChangeView<S>], out: &mut String) {
    for (i, c) in changes.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        let _ = write!(
            out,
            "{}: {} → {}",
            c.field.as_ref(),
            c.before.as_ref(),
            c.after.as_ref()
        );
    }
}

/// What an event-log export is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFormat {
    /// RFC 4180, formula-safe, with [`EXPORT_COLUMNS`].
    Csv,
    /// One JSON object per line: an [`EventView`] as serde writes it (the API's `EventOut`).
    JsonLines,
}

/// Columns of the event log's CSV export, in order.
pub const EXPORT_COLUMNS: [&str; 12] = [
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(category: &str, target_type: &str, label: &str, details: &str) -> EventRecord {
        EventRecord {
            id: 1,
            at: Timestamp(0),
            actor_id: None,
            actor_email: Some("staff@example.com".into()),
            actor_groups: String::new(),
            category: category.into(),
            action: "UPDATE".into(),
            event: "Client updated".into(),
            target_type: Some(target_type.into()),
            target_id: Some(7),
            target_label: Some(label.into()),
            details: details.into(),
            ip: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn personal_data_is_masked_by_the_kind_it_was_built_with() {
        let details = r#"[
            {"field":"email","before":"jo@example.com","after":"js@example.org","personal":"email"},
            {"field":"mobile","before":"","after":"+441234567890","personal":"phone"},
            {"field":"country","before":"GB","after":"DE","personal":false}
        ]"#;
        let m = view(record("clients", "client", "Johanna Smith", details), true);
        assert_eq!(m.target_label.as_deref(), Some("J**** S****"));
        assert_eq!(m.details[0].before, "j****@e****.com");
        assert_eq!(m.details[1].before, "", "an empty value stays empty");
        assert_eq!(
            m.details[1].after, "+*******90",
            "masked by kind, not by field name"
        );
        assert_eq!(m.details[2].after, "DE", "non-personal fields stay");
        assert_eq!(
            m.actor_email.as_deref(),
            Some("staff@example.com"),
            "staff emails are not client data"
        );
        let plain = view(record("clients", "client", "Johanna Smith", details), false);
        assert_eq!(plain.details[1].after, "+441234567890");
    }

    #[test]
    fn a_staff_users_email_is_not_client_data() {
        let details = r#"[{"field":"email","before":"a@example.com","after":"b@example.com","personal":false}]"#;
        let m = view(record("users", "user", "b@example.com", details), true);
        assert_eq!(m.details[0].after, "b@example.com");
        assert_eq!(m.target_label.as_deref(), Some("b@example.com"));
    }

    #[test]
    fn rows_from_before_the_kind_was_recorded_are_masked_by_field_name() {
        let details = r#"[{"field":"phone","before":"","after":"+441234567890"}]"#;
        let m = view(record("clients", "client", "Jo Smith", details), true);
        assert_eq!(m.details[0].after, "+*******90");
    }

    #[test]
    fn events_built_by_the_client_use_cases_carry_the_kind() {
        let e = Event::new(Category::Clients, AuditAction::Update, "Client updated")
            .personal_change("first name", PersonalKind::Name, "Jo", "Joanna")
            .change("country", "GB", "DE");
        assert_eq!(e.changes[0].personal, Some(PersonalKind::Name));
        assert_eq!(e.changes[1].personal, None);
    }
}
