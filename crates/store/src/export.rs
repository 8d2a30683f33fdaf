//! Pages of a streamed export (issue 27), as the database hands them over: a page of clients or
//! events is ONE value, the page's rows as a JSON array of arrays made by the database
//! (`json_group_array` on SQLite, `json_agg` on PostgreSQL; the one difference lives in each
//! backend's `Dialect`), not a row object per row. Handing over thousands of rows one by one cost
//! more than everything else the export does: an allocation per value, a `Row` per row and, on
//! SQLite, a channel message per row from the connection's thread (`bench/export.md`).
//!
//! A page is decoded once, by [`ClientExportPage::decode`] / [`EventExportPage::decode`], into
//! rows that borrow their text from the page (a value is copied only where JSON had to escape a
//! character in it). Decoding is CPU work: the caller does it off the async runtime's workers.
//! The rows are store values, unmasked: masking is the application's, on the decoded rows.

use crate::{Result, StoreError};
use domain::client::{ClientRole, ClientStatus};
use domain::Timestamp;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;

/// One page of a client export: up to the asked number of clients after the cursor, in id
/// order, with the captions of every tag (read in the same statement, so in step with the
/// rows' tags).
#[derive(Debug)]
pub struct ClientExportPage {
    /// Clients in the page.
    pub rows: usize,
    /// The highest id in the page (the next page's cursor); `None` for an empty page.
    pub last_id: Option<i64>,
    /// `[[id, first_name, last_name, email, phone, country, city, role, status, language,
    /// registered_at, tag_list], …]` in id order, every value as text.
    clients: String,
    /// `[[id, caption], …]` in caption order, as text.
    tags: String,
}

/// A client as an export reads it: the stored values, unmasked, borrowed from the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedClient<'a> {
    pub id: i64,
    pub first_name: Cow<'a, str>,
    pub last_name: Cow<'a, str>,
    pub email: Cow<'a, str>,
    pub phone: Cow<'a, str>,
    pub country: Cow<'a, str>,
    pub city: Cow<'a, str>,
    pub role: ClientRole,
    pub status: ClientStatus,
    pub language: Cow<'a, str>,
    pub registered_at: Timestamp,
    /// The client's tag ids as `clients.tag_list` keeps them (`",3,17,"`); see
    /// [`ExportedClients::tags_of`] for their captions.
    tag_list: Cow<'a, str>,
}

/// A decoded [`ClientExportPage`].
#[derive(Debug)]
pub struct ExportedClients<'a> {
    pub clients: Vec<ExportedClient<'a>>,
    /// Every tag's caption, in caption order.
    captions: Vec<Cow<'a, str>>,
    /// A tag id's place in `captions`.
    place: HashMap<i64, usize>,
}

/// A row as the database writes it: every value as text (numbers too: PostgreSQL makes a row
/// a text array, the cheapest row it writes as JSON), `null` for NULL.
#[derive(Deserialize)]
struct ClientJson<'a>(
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
);

#[derive(Deserialize)]
struct TagJson<'a>(#[serde(borrow)] Cow<'a, str>, #[serde(borrow)] Cow<'a, str>);

/// See [`ClientJson`].
#[derive(Deserialize)]
struct EventJson<'a>(
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Option<Cow<'a, str>>,
);

fn json_error(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Other(format!("export page of {what}: {e}").into())
}

/// A stored integer, written as text in the page.
fn int(what: &str, text: &str) -> Result<i64> {
    text.parse().map_err(|_| {
        StoreError::Other(format!("export page: {what} {text:?} is no integer").into())
    })
}

impl ClientExportPage {
    pub(crate) fn new(rows: i64, last_id: Option<i64>, clients: String, tags: String) -> Self {
        Self {
            rows: usize::try_from(rows).unwrap_or(0),
            last_id,
            clients,
            tags,
        }
    }

    /// The page's size as the database handed it over, in bytes (about the size of its CSV).
    pub fn len_bytes(&self) -> usize {
        self.clients.len()
    }

    /// The page's rows, borrowed from it. CPU work: call it off the async workers.
    pub fn decode(&self) -> Result<ExportedClients<'_>> {
        let rows: Vec<ClientJson<'_>> =
            serde_json::from_str(&self.clients).map_err(|e| json_error("clients", e))?;
        let tags: Vec<TagJson<'_>> =
            serde_json::from_str(&self.tags).map_err(|e| json_error("tags", e))?;
        let mut clients = Vec::with_capacity(rows.len());
        for r in rows {
            clients.push(ExportedClient {
                id: int("client id", &r.0)?,
                first_name: r.1,
                last_name: r.2,
                email: r.3,
                phone: r.4,
                country: r.5,
                city: r.6,
                role: crate::rows::known("client role", &r.7, ClientRole::from_code)?,
                status: crate::rows::known("client status", &r.8, ClientStatus::from_code)?,
                language: r.9,
                registered_at: Timestamp(int("registered_at", &r.10)?),
                tag_list: r.11,
            });
        }
        // The aggregate takes the rows in the order the page's query lists them; should a
        // database ever feed them otherwise, the page is put in order here.
        if !clients.windows(2).all(|w| w[0].id < w[1].id) {
            clients.sort_unstable_by_key(|c| c.id);
        }
        let mut place = HashMap::with_capacity(tags.len());
        for (i, t) in tags.iter().enumerate() {
            place.insert(int("tag id", &t.0)?, i);
        }
        Ok(ExportedClients {
            clients,
            captions: tags.into_iter().map(|t| t.1).collect(),
            place,
        })
    }
}

impl<'a> ExportedClients<'a> {
    /// The captions of `client`'s tags, in caption order (as [`crate::ClientRecord::tags`]).
    /// `order` is a buffer the caller keeps from row to row, so no row allocates.
    pub fn tags_of<'s>(
        &'s self,
        client: &ExportedClient<'_>,
        order: &'s mut Vec<usize>,
    ) -> impl Iterator<Item = &'s str> + use<'a, 's> {
        order.clear();
        order.extend(
            client
                .tag_list
                .split(',')
                .filter_map(|id| id.parse::<i64>().ok())
                .filter_map(|id| self.place.get(&id).copied()),
        );
        order.sort_unstable();
        order.iter().map(|&i| &*self.captions[i])
    }
}

/// One page of an event-log export: up to the asked number of events before the cursor,
/// newest first.
#[derive(Debug)]
pub struct EventExportPage {
    /// Events in the page.
    pub rows: usize,
    /// The lowest id in the page (the next page's cursor); `None` for an empty page.
    pub last_id: Option<i64>,
    /// `[[id, at, actor_id, actor_email, actor_groups, category, action, event, target_type,
    /// target_id, target_label, details, ip], …]`, newest first, every value as text or null.
    events: String,
}

/// An event as an export reads it: the stored values (no chain hashes), unmasked, borrowed from
/// the page. `details` is the stored JSON text of the changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedEvent<'a> {
    pub id: i64,
    pub at: i64,
    pub actor_id: Option<i64>,
    pub actor_email: Option<Cow<'a, str>>,
    pub actor_groups: Cow<'a, str>,
    pub category: Cow<'a, str>,
    pub action: Cow<'a, str>,
    pub event: Cow<'a, str>,
    pub target_type: Option<Cow<'a, str>>,
    pub target_id: Option<i64>,
    pub target_label: Option<Cow<'a, str>>,
    pub details: Cow<'a, str>,
    pub ip: Option<Cow<'a, str>>,
}

impl EventExportPage {
    pub(crate) fn new(rows: i64, last_id: Option<i64>, events: String) -> Self {
        Self {
            rows: usize::try_from(rows).unwrap_or(0),
            last_id,
            events,
        }
    }

    /// The page's size as the database handed it over, in bytes.
    pub fn len_bytes(&self) -> usize {
        self.events.len()
    }

    /// The page's rows, borrowed from it. CPU work: call it off the async workers.
    pub fn decode(&self) -> Result<Vec<ExportedEvent<'_>>> {
        let rows: Vec<EventJson<'_>> =
            serde_json::from_str(&self.events).map_err(|e| json_error("events", e))?;
        let opt_int = |what, v: Option<Cow<'_, str>>| v.map(|v| int(what, &v)).transpose();
        let mut events = Vec::with_capacity(rows.len());
        for r in rows {
            events.push(ExportedEvent {
                id: int("event id", &r.0)?,
                at: int("event time", &r.1)?,
                actor_id: opt_int("actor id", r.2)?,
                actor_email: r.3,
                actor_groups: r.4,
                category: r.5,
                action: r.6,
                event: r.7,
                target_type: r.8,
                target_id: opt_int("target id", r.9)?,
                target_label: r.10,
                details: r.11,
                ip: r.12,
            });
        }
        // Newest first, whatever order the aggregate took the rows in (see above).
        if !events.windows(2).all(|w| w[0].id > w[1].id) {
            events.sort_unstable_by_key(|e| std::cmp::Reverse(e.id));
        }
        Ok(events)
    }
}
