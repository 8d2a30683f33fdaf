//! The client directory's port: records, queries and the [`ClientStore`] trait. The SQL behind
//! it is in `sql_clients.rs`, shared by both backends.

use crate::{AuditEntry, ClientExportPage, Edit, Result, TagRef};
use async_trait::async_trait;
use domain::client::{ClientRole, ClientStatus};
use domain::{ClientScope, Timestamp};

/// The fields of a client that a person edits, already parsed (see `domain::client::validate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFields {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// The lower-cased email: unique across clients.
    pub email_key: String,
    /// E.164.
    pub phone: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub city: String,
    pub role: ClientRole,
    pub status: ClientStatus,
    /// ISO 639-1.
    pub language: String,
    /// Tag ids, sorted, without repeats.
    pub tags: Vec<i64>,
}

impl ClientFields {
    /// The validated form with these tags.
    pub fn new(v: &domain::client::ValidClient, mut tags: Vec<i64>) -> Self {
        tags.sort_unstable();
        tags.dedup();
        Self {
            first_name: v.first_name.clone(),
            last_name: v.last_name.clone(),
            email: v.email.to_string(),
            email_key: v.email.key(),
            phone: v.phone.clone(),
            country: v.country.clone(),
            city: v.city.clone(),
            role: v.role,
            status: v.status,
            language: v.language.clone(),
            tags,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewClient {
    pub fields: ClientFields,
    pub registered_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub country: String,
    pub city: String,
    pub role: ClientRole,
    pub status: ClientStatus,
    pub language: String,
    pub registered_at: Timestamp,
    pub updated_at: Timestamp,
    /// By caption.
    pub tags: Vec<TagRef>,
    /// Raised by every change (a bulk change too).
    pub version: i64,
}

impl ClientRecord {
    pub fn tag_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.tags.iter().map(|t| t.id).collect();
        ids.sort_unstable();
        ids
    }

    pub fn full_name(&self) -> String {
        domain::client::full_name(&self.first_name, &self.last_name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientSort {
    #[default]
    Id,
    Name,
    Email,
    Registered,
}

impl ClientSort {
    pub const ALL: [(ClientSort, &'static str); 4] = [
        (ClientSort::Id, "id"),
        (ClientSort::Name, "name"),
        (ClientSort::Email, "email"),
        (ClientSort::Registered, "registered"),
    ];

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, c)| *c == code).map(|(s, _)| *s)
    }

    pub fn code(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, c)| *c)
            .unwrap_or("id")
    }
}

/// One search at a time, each served by its own index. Prefixes are already normalised
/// (lower-cased; a phone prefix starts with `+` and holds only digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSearch {
    Id(i64),
    /// Prefix of "first last" or of the last name.
    Name(String),
    Email(String),
    Phone(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFilter {
    pub search: Option<ClientSearch>,
    pub country: Option<String>,
    pub role: Option<ClientRole>,
    pub status: Option<ClientStatus>,
    /// Registered at or after.
    pub registered_from: Option<Timestamp>,
    /// Registered before.
    pub registered_before: Option<Timestamp>,
    /// Carrying any of these tags (empty: no condition).
    pub tags: Vec<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct ClientQuery {
    pub filter: ClientFilter,
    pub sort: ClientSort,
    pub descending: bool,
    /// Keyset cursor for the ID order: only clients after this id in the chosen direction.
    /// Ignored for the other orders, which page with `offset`.
    pub after_id: Option<i64>,
    pub offset: i64,
    pub limit: i64,
}

/// How many clients match: exactly `n`, or (`exact` false) at least `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCount {
    pub n: i64,
    pub exact: bool,
}

/// Every read names the viewer's [`ClientScope`]: a client outside it is not found, listed or
/// counted, so no caller can forget the scope.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Inserts one client and its event in one transaction.
    async fn insert_client(&self, client: &NewClient, event: AuditEntry) -> Result<i64>;
    /// Inserts many clients in one transaction with multi-row INSERTs (import, demo seed).
    /// The event, when given, is appended in the same transaction.
    async fn insert_clients(
        &self,
        clients: &[NewClient],
        event: Option<AuditEntry>,
    ) -> Result<usize>;
    async fn client_by_id(&self, scope: &ClientScope, id: i64) -> Result<Option<ClientRecord>>;
    async fn list_clients(
        &self,
        scope: &ClientScope,
        query: &ClientQuery,
    ) -> Result<Vec<ClientRecord>>;
    /// One page of an export of the clients `filter` selects within `scope` (the same clients
    /// as [`ClientStore::list_clients`] in id order): the `limit` clients after `after_id`, with
    /// their tags, handed over as one value (see [`ClientExportPage`]). Read through the
    /// backend's export connections: on SQLite a pool of its own with a small page cache, so an
    /// export that reads every client through fills no serving connection's cache (each would
    /// keep its 4 MiB of them); on PostgreSQL, whose server caches the pages, the serving pool.
    async fn export_clients_page(
        &self,
        scope: &ClientScope,
        filter: &ClientFilter,
        after_id: Option<i64>,
        limit: i64,
    ) -> Result<ClientExportPage>;
    /// The number of matching clients, reading at most about `cap + 1` index entries: exact up
    /// to `cap`, otherwise at least `cap + 1`. A scoped count with other conditions looks at
    /// the first `cap + 1` clients those conditions select and counts the ones in scope (exact
    /// when there are no more). The unfiltered, unscoped total is always exact (a counter kept
    /// by the inserts).
    async fn count_clients(
        &self,
        scope: &ClientScope,
        filter: &ClientFilter,
        cap: i64,
    ) -> Result<ClientCount>;
    /// A read-modify-write in one transaction: reads the client (with its tags) there, locked
    /// against every other writer until the commit, hands it to `edit`, and writes only the
    /// fields (and tags) whose value `edit` changed, with a version one higher and `edit`'s
    /// event. The event's "before" values are therefore what the row held when it was written
    /// over. `Keep` writes nothing. Answers the client as it is after the transaction. The
    /// caller's scope is `edit`'s to check, on the row as read.
    async fn update_client(
        &self,
        id: i64,
        edit: Edit<'_, ClientRecord, ClientFields>,
    ) -> Result<ClientRecord>;
    /// Which of these email keys are already taken by a client.
    async fn taken_client_emails(&self, keys: &[String]) -> Result<Vec<String>>;
    /// The highest client id (0 when there is none).
    async fn max_client_id(&self) -> Result<i64>;
}

/// The smallest string greater than every string that starts with `prefix`, for an indexed
/// range scan `col >= prefix AND col < upper` (both databases compare these columns bytewise).
pub(crate) fn prefix_upper(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// A client's tags as its row keeps them in `clients.tag_list` (migration 0014): `",3,17,"`,
/// `","` for none, so that "carries tag 3" is `LIKE '%,3,%'` whatever the position.
pub(crate) fn tag_list(tags: &[i64]) -> String {
    let mut list = String::from(",");
    for t in tags {
        list.push_str(&t.to_string());
        list.push(',');
    }
    list
}

#[cfg(test)]
mod tests {
    use super::{prefix_upper, tag_list};

    #[test]
    fn tag_lists_delimit_every_id() {
        assert_eq!(tag_list(&[]), ",");
        assert_eq!(tag_list(&[3, 17]), ",3,17,");
        // Tag 1 is not found inside 17 or 31.
        assert!(!tag_list(&[17, 31]).contains(",1,"));
    }

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper("abc").as_deref(), Some("abd"));
        assert_eq!(prefix_upper("+44").as_deref(), Some("+45"));
        assert_eq!(prefix_upper("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper(""), None);
        assert_eq!(prefix_upper("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }
}
