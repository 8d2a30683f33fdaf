//! System › Event log: reading and exporting the log. Rows are never edited or deleted here (or
//! anywhere). Client personal data in events is masked for viewers with "Mask data" on.

use crate::{Actor, App, AppError};
use domain::audit::{AuditAction, Category, Event};
use domain::{masking, Action, Email, Section, Timestamp};
use serde::Serialize;
use store::{EventQuery, EventRecord};

pub const PAGE_SIZE: i64 = 50;
const EXPORT_MAX_ROWS: i64 = 1_000_000;

/// One changed field, as shown in the Details column.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ChangeView {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// An event as a viewer may see it (masked where the viewer must not see client data).
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub id: i64,
    pub at: String,
    #[serde(skip)]
    pub time: Timestamp,
    pub actor_id: Option<i64>,
    pub actor_email: Option<String>,
    pub actor_groups: String,
    pub category: String,
    pub action: String,
    pub event: String,
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    pub target_label: Option<String>,
    pub details: Vec<ChangeView>,
    pub ip: Option<String>,
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
    pub before_id: Option<i64>,
}

/// Masks the personal data a client event carries: the client's name as the target label and
/// the values of the personal fields.
fn mask_event(mut v: EventView) -> EventView {
    if v.target_type.as_deref() == Some("client") {
        v.target_label = v.target_label.as_deref().map(masking::name);
    }
    if v.category == Category::Clients.code() || v.target_type.as_deref() == Some("client") {
        for c in &mut v.details {
            let mask: fn(&str) -> String = match c.field.as_str() {
                "first name" | "last name" | "name" => masking::name,
                "email" => masking::email,
                "phone" => masking::phone,
                _ => continue,
            };
            c.before = if c.before.is_empty() {
                String::new()
            } else {
                mask(&c.before)
            };
            c.after = if c.after.is_empty() {
                String::new()
            } else {
                mask(&c.after)
            };
        }
    }
    v
}

fn view(r: EventRecord, masked: bool) -> EventView {
    let details: Vec<ChangeView> = serde_json::from_str(&r.details).unwrap_or_default();
    let v = EventView {
        id: r.id,
        at: r.at.iso(),
        time: r.at,
        actor_id: r.actor_id,
        actor_email: r.actor_email,
        actor_groups: r.actor_groups,
        category: r.category,
        action: r.action,
        event: r.event,
        target_type: r.target_type,
        target_id: r.target_id,
        target_label: r.target_label,
        details,
        ip: r.ip,
    };
    if masked {
        mask_event(v)
    } else {
        v
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
            limit,
        })
    }

    /// One page of the log, newest first.
    pub async fn list_events(
        &self,
        actor: &Actor,
        filter: &EventFilter,
    ) -> Result<Vec<EventView>, AppError> {
        self.authorize(actor, Section::EventLog, Action::View, "view the event log")
            .await?;
        let q = self.event_query(filter, PAGE_SIZE).await?;
        let masked = actor.user.mask_data;
        Ok(self
            .store
            .list_events(&q)
            .await?
            .into_iter()
            .map(|r| view(r, masked))
            .collect())
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
        let masked = actor.user.mask_data;
        Ok(self
            .store
            .list_events(&q)
            .await?
            .into_iter()
            .map(|r| view(r, masked))
            .collect())
    }

    /// Every filtered row (up to a million), for CSV or JSON lines. The export is logged.
    pub async fn export_events(
        &self,
        actor: &Actor,
        filter: &EventFilter,
    ) -> Result<Vec<EventView>, AppError> {
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
        let mut q = self.event_query(filter, 5000).await?;
        let masked = actor.user.mask_data;
        let mut out = Vec::new();
        loop {
            let rows = self.store.list_events(&q).await?;
            let Some(last) = rows.last().map(|r| r.id) else {
                break;
            };
            out.extend(rows.into_iter().map(|r| view(r, masked)));
            if out.len() as i64 >= EXPORT_MAX_ROWS {
                break;
            }
            q.before_id = Some(last);
        }
        let e = Event::new(Category::System, AuditAction::Export, "Event log exported").change(
            "count",
            "",
            out.len().to_string(),
        );
        self.log(Some(actor), None, e).await;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_personal_data_in_events_is_masked() {
        let v = EventView {
            id: 1,
            at: String::new(),
            time: Timestamp(0),
            actor_id: None,
            actor_email: Some("staff@example.com".into()),
            actor_groups: String::new(),
            category: "clients".into(),
            action: "UPDATE".into(),
            event: "Client updated".into(),
            target_type: Some("client".into()),
            target_id: Some(7),
            target_label: Some("Johanna Smith".into()),
            details: vec![
                ChangeView {
                    field: "email".into(),
                    before: "jo@example.com".into(),
                    after: "js@example.org".into(),
                },
                ChangeView {
                    field: "phone".into(),
                    before: "".into(),
                    after: "+441234567890".into(),
                },
                ChangeView {
                    field: "country".into(),
                    before: "GB".into(),
                    after: "DE".into(),
                },
            ],
            ip: None,
        };
        let m = mask_event(v);
        assert_eq!(m.target_label.as_deref(), Some("J**** S****"));
        assert_eq!(m.details[0].before, "j****@e****.com");
        assert_eq!(m.details[1].after, "+*******90");
        assert_eq!(m.details[2].after, "DE", "non-personal fields stay");
        assert_eq!(
            m.actor_email.as_deref(),
            Some("staff@example.com"),
            "staff emails are not client data"
        );
    }
}
