//! Clients: the directory of investors and strategy providers, and the "Mask data" rule.
//!
//! Masking happens here, on every record that leaves this module for a viewer whose account has
//! Mask data on: lists, the detail and edit pages, exports and error messages. A masked viewer
//! can't search, filter or sort by name, email or phone (a search would confirm a hidden value),
//! can't create or import clients (a "this email is already used" answer would too), and a
//! masked editor's save keeps the stored personal values, so a mask is never written back.
//!
//! The scope (Allowed Client Tags) is applied by the store on every read, from the actor's
//! authority: a client outside it is not listed, counted, found (404), edited or exported.

use crate::concurrency::{check_version, is_retry, until_settled, Retry};
use crate::csv_file::{restore_cell, write_csv};
use crate::tags::tag_captions;
use crate::{Actor, App, AppError, FieldErrors};
use domain::audit::{AuditAction, Category, Event};
use domain::client::{self, ClientInput, ClientRole, ClientStatus, ValidClient};
use domain::{masking, Action, Section, Timestamp};
use store::{
    ClientFields, ClientFilter, ClientQuery, ClientRecord, ClientSearch, ClientSort, Decision,
    NewClient, StoreError, TagRef,
};

pub const PAGE_SIZES: [i64; 3] = [25, 50, 100];
/// A filtered list is counted up to this many matches and shown as "at least" beyond it, so
/// a broad filter never costs a count of the whole table.
pub const COUNT_CAP: i64 = 1_000;
/// Rows read per query while exporting.
const EXPORT_CHUNK: i64 = 5000;

/// What a person can search in. Name, email and phone are personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchField {
    Id,
    #[default]
    Name,
    Email,
    Phone,
}

impl SearchField {
    pub const ALL: [SearchField; 4] = [
        SearchField::Id,
        SearchField::Name,
        SearchField::Email,
        SearchField::Phone,
    ];

    pub fn code(self) -> &'static str {
        match self {
            SearchField::Id => "id",
            SearchField::Name => "name",
            SearchField::Email => "email",
            SearchField::Phone => "phone",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SearchField::Id => "Client ID",
            SearchField::Name => "Name",
            SearchField::Email => "Email",
            SearchField::Phone => "Phone",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == s)
    }

    pub fn is_personal(self) -> bool {
        self != SearchField::Id
    }

    /// The order of results when the request names none: an email-prefix search lists matches
    /// in email order, straight off the email index (in ID order every match would have to be
    /// read and sorted first); everything else in ID order.
    pub fn default_sort(self, text: &str) -> ClientSort {
        match self {
            SearchField::Email if !text.trim().is_empty() => ClientSort::Email,
            _ => ClientSort::Id,
        }
    }
}

/// The list's search, filters and order, as the request carried them (unparsed).
#[derive(Debug, Clone, Default)]
pub struct ClientListRequest {
    pub field: SearchField,
    pub text: String,
    pub country: String,
    pub role: String,
    pub status: String,
    /// `YYYY-MM-DD`, inclusive.
    pub from: String,
    /// `YYYY-MM-DD`, inclusive.
    pub to: String,
    /// Clients carrying any of these tags (ids).
    pub tags: Vec<i64>,
    pub sort: ClientSort,
    pub descending: bool,
    /// Keyset cursor for the ID order.
    pub after_id: Option<i64>,
    /// 1-based page for the other orders.
    pub page: i64,
    pub per_page: i64,
}

/// One page of the list, masked for masked viewers.
#[derive(Debug, Clone, Default)]
pub struct ClientList {
    pub items: Vec<ClientView>,
    /// The number of matching clients; with a filter or a scope, counting stops after about
    /// [`COUNT_CAP`] (see `store::ClientStore::count_clients`).
    pub total: i64,
    /// At least `total` clients match (counting stopped early).
    pub total_is_lower_bound: bool,
    /// Another page follows this one.
    pub has_more: bool,
    /// The id to continue after (ID order), when there are more rows.
    pub next_after: Option<i64>,
}

/// A row of an import file that can't be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// Counting the header as row 1, as a spreadsheet shows it.
    pub row: usize,
    pub column: String,
    pub reason: String,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Row {}, {}: {}", self.row, self.column, self.reason)
    }
}

/// The largest import file accepted.
pub const IMPORT_MAX_BYTES: usize = 2 * 1024 * 1024 - 64 * 1024;

/// Columns of the CSV export, in order; import reads the same titles. Tags are captions
/// separated by commas (a caption can't contain one).
pub const EXPORT_COLUMNS: [&str; 12] = [
    "ID",
    "First name",
    "Last name",
    "Email",
    "Phone",
    "Country",
    "City",
    "Role",
    "Status",
    "Language",
    "Registered",
    "Tags",
];

fn role_filter(raw: &str) -> Result<Option<ClientRole>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    ClientRole::from_code(raw)
        .map(Some)
        .ok_or_else(|| "Choose a role from the list".into())
}

fn status_filter(raw: &str) -> Result<Option<ClientStatus>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    ClientStatus::from_code(raw)
        .map(Some)
        .ok_or_else(|| "Choose Active or Blocked".into())
}

fn day(raw: &str) -> Result<Option<Timestamp>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    client::parse_day(raw)
        .map(Some)
        .ok_or_else(|| "Enter a date as YYYY-MM-DD".into())
}

/// The normalised search, or a message for the search box.
fn search(field: SearchField, text: &str) -> Result<Option<ClientSearch>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    Ok(Some(match field {
        SearchField::Id => ClientSearch::Id(
            t.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or("Enter a client ID: a whole number")?,
        ),
        SearchField::Name => ClientSearch::Name(
            t.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase(),
        ),
        SearchField::Email => ClientSearch::Email(t.to_lowercase()),
        SearchField::Phone => {
            let rest = t
                .strip_prefix('+')
                .or_else(|| t.strip_prefix("00"))
                .unwrap_or(t);
            if !rest
                .chars()
                .all(|c| c.is_ascii_digit() || " -.()".contains(c))
            {
                return Err("Search a phone number by its first digits, like +44 20".into());
            }
            let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
            if digits.is_empty() {
                return Err("Search a phone number by its first digits, like +44 20".into());
            }
            ClientSearch::Phone(format!("+{digits}"))
        }
    }))
}

const MASKED_SEARCH: &str =
    "With Mask data on you can't search, filter or sort clients by name, email or phone. \
     Find a client by ID, country, role, status or registration date instead.";

/// A client as one viewer may see it. Only [`ClientView::for_actor`] builds one (`non_exhaustive`
/// keeps other crates from writing the struct out), and it masks the personal fields for a
/// viewer with Mask data on: a page, API answer or export can only show what was masked for it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientView {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub country: String,
    pub city: String,
    pub role: domain::client::ClientRole,
    pub status: domain::client::ClientStatus,
    pub language: String,
    pub registered_at: Timestamp,
    pub updated_at: Timestamp,
    /// By caption.
    pub tags: Vec<TagRef>,
    /// What an edit of this copy is based on (the form's hidden field, the API's ETag).
    pub version: i64,
    /// The personal fields above are masks.
    pub masked: bool,
}

impl ClientView {
    /// The stored record as this viewer may see it.
    fn for_actor(actor: &Actor, c: ClientRecord) -> Self {
        let masked = actor.masked();
        let personal = |value: String, mask: fn(&str) -> String| {
            if masked {
                mask(&value)
            } else {
                value
            }
        };
        let ClientRecord {
            id,
            first_name,
            last_name,
            email,
            phone,
            country,
            city,
            role,
            status,
            language,
            registered_at,
            updated_at,
            tags,
            version,
        } = c;
        Self {
            id,
            first_name: personal(first_name, masking::name),
            last_name: personal(last_name, masking::name),
            email: personal(email, masking::email),
            phone: personal(phone, masking::phone),
            country,
            city,
            role,
            status,
            language,
            registered_at,
            updated_at,
            tags,
            version,
            masked,
        }
    }

    pub fn full_name(&self) -> String {
        domain::client::full_name(&self.first_name, &self.last_name)
    }
}

/// The form's fields for a stored client (masked for masked viewers).
pub fn input_of(c: &ClientView) -> ClientInput {
    ClientInput {
        first_name: c.first_name.clone(),
        last_name: c.last_name.clone(),
        email: c.email.clone(),
        phone: c.phone.clone(),
        country: c.country.clone(),
        city: c.city.clone(),
        role: c.role.code().into(),
        status: c.status.code().into(),
        language: c.language.clone(),
    }
}

/// What an edit changes: `None` keeps the field as the client has it when the change is
/// written (an API PATCH names only some fields; the edit form names them all).
#[derive(Debug, Clone, Default)]
pub struct ClientPatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub role: Option<String>,
    pub status: Option<String>,
    pub language: Option<String>,
}

impl From<&ClientInput> for ClientPatch {
    fn from(i: &ClientInput) -> Self {
        Self {
            first_name: Some(i.first_name.clone()),
            last_name: Some(i.last_name.clone()),
            email: Some(i.email.clone()),
            phone: Some(i.phone.clone()),
            country: Some(i.country.clone()),
            city: Some(i.city.clone()),
            role: Some(i.role.clone()),
            status: Some(i.status.clone()),
            language: Some(i.language.clone()),
        }
    }
}

impl ClientPatch {
    /// The whole form: this patch over the client as stored. A masked editor's personal
    /// fields are ignored: the stored values are kept, so a mask is never written back.
    fn over(&self, c: &ClientRecord, masked: bool) -> ClientInput {
        let pick = |v: &Option<String>, stored: &str| match v {
            Some(v) => v.clone(),
            None => stored.to_string(),
        };
        let personal = |v: &Option<String>, stored: &str| {
            if masked {
                stored.to_string()
            } else {
                pick(v, stored)
            }
        };
        ClientInput {
            first_name: personal(&self.first_name, &c.first_name),
            last_name: personal(&self.last_name, &c.last_name),
            email: personal(&self.email, &c.email),
            phone: personal(&self.phone, &c.phone),
            country: pick(&self.country, &c.country),
            city: pick(&self.city, &c.city),
            role: pick(&self.role, c.role.code()),
            status: pick(&self.status, c.status.code()),
            language: pick(&self.language, &c.language),
        }
    }
}

fn field_errors(errors: client::ClientErrors) -> AppError {
    AppError::Invalid(errors.into_iter().collect::<FieldErrors>())
}

fn duplicate_email(e: StoreError) -> AppError {
    match e {
        StoreError::Duplicate { field: "email" } => {
            AppError::duplicate("email", "A client with this email already exists")
        }
        other => other.into(),
    }
}

/// The event-log changes between two versions of a client; the personal fields are marked with
/// their kind, so the event log masks them for masked viewers.
fn changes(
    mut e: Event,
    before: Option<&ClientRecord>,
    after: &ClientFields,
    after_tags: &[TagRef],
) -> Event {
    use domain::audit::PersonalKind::{Email, Name, Phone};
    let b = |f: fn(&ClientRecord) -> String| before.map(f).unwrap_or_default();
    e = e
        .personal_change(
            "first name",
            Name,
            b(|c| c.first_name.clone()),
            &after.first_name,
        )
        .personal_change(
            "last name",
            Name,
            b(|c| c.last_name.clone()),
            &after.last_name,
        )
        .personal_change("email", Email, b(|c| c.email.clone()), &after.email)
        .personal_change("phone", Phone, b(|c| c.phone.clone()), &after.phone)
        .change("country", b(|c| c.country.clone()), &after.country)
        .change("city", b(|c| c.city.clone()), &after.city)
        .change("role", b(|c| c.role.label().into()), after.role.label())
        .change(
            "status",
            b(|c| c.status.label().into()),
            after.status.label(),
        )
        .change("language", b(|c| c.language.clone()), &after.language)
        .change(
            "tags",
            b(|c| tag_captions(&c.tags)),
            tag_captions(after_tags),
        );
    e
}

impl App {
    /// Parses the list request into a store filter, refusing masked viewers' personal searches.
    pub(crate) async fn client_filter(
        &self,
        actor: &Actor,
        req: &ClientListRequest,
    ) -> Result<ClientFilter, AppError> {
        let personal_search = !req.text.trim().is_empty() && req.field.is_personal();
        let personal_sort = matches!(req.sort, ClientSort::Name | ClientSort::Email);
        if actor.masked() && (personal_search || personal_sort) {
            let what = if personal_search {
                format!("search clients by {}", req.field.label().to_lowercase())
            } else {
                format!("sort clients by {}", req.sort.code())
            };
            self.refused(actor, &what, MASKED_SEARCH).await;
            return Err(AppError::Forbidden(MASKED_SEARCH.into()));
        }
        fn take<T>(
            errors: &mut FieldErrors,
            field: &'static str,
            r: Result<Option<T>, String>,
        ) -> Option<T> {
            r.map_err(|m| errors.insert(field, m)).ok().flatten()
        }
        let mut errors = FieldErrors::new();
        let country = if req.country.trim().is_empty() {
            Ok(None)
        } else {
            client::parse_country(&req.country).map(Some)
        };
        let tags = match self.existing_tags(&req.tags).await? {
            Ok(tags) => tags.iter().map(|t| t.id).collect(),
            Err(m) => {
                errors.insert("tags", m);
                Vec::new()
            }
        };
        let filter = ClientFilter {
            tags,
            search: take(&mut errors, "q", search(req.field, &req.text)),
            country: take(&mut errors, "country", country),
            role: take(&mut errors, "role", role_filter(&req.role)),
            status: take(&mut errors, "status", status_filter(&req.status)),
            registered_from: take(&mut errors, "from", day(&req.from)),
            registered_before: take(&mut errors, "to", day(&req.to)).map(|t| t.plus_secs(86_400)),
        };
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        Ok(filter)
    }

    /// Clients › list: one page, the total, and the cursor of the next page.
    pub async fn list_clients(
        &self,
        actor: &Actor,
        req: &ClientListRequest,
    ) -> Result<ClientList, AppError> {
        self.authorize(actor, Section::Clients, Action::View, "list clients")
            .await?;
        let filter = self.client_filter(actor, req).await?;
        let per_page = if PAGE_SIZES.contains(&req.per_page) {
            req.per_page
        } else {
            PAGE_SIZES[0]
        };
        let query = ClientQuery {
            filter,
            sort: req.sort,
            descending: req.descending,
            after_id: req.after_id,
            offset: (req.page.clamp(1, 1_000_000) - 1) * per_page,
            limit: per_page + 1,
        };
        let scope = actor.client_scope();
        let mut items = self.store.list_clients(scope, &query).await?;
        let more = items.len() as i64 > per_page;
        items.truncate(per_page as usize);
        let next_after = match (more, req.sort, items.last()) {
            (true, ClientSort::Id, Some(last)) => Some(last.id),
            _ => None,
        };
        let first_page = query.offset == 0 && req.after_id.is_none();
        let counted = if first_page && !more {
            // The whole result is on this page: its length is the count.
            store::ClientCount {
                n: items.len() as i64,
                exact: true,
            }
        } else {
            let mut counted = self
                .store
                .count_clients(scope, &query.filter, COUNT_CAP)
                .await?;
            if !counted.exact {
                // A scoped search counts the in-scope clients among the first ones the search
                // selects: never say fewer than the pages up to this one already show.
                let shown = query.offset + items.len() as i64 + i64::from(more);
                counted.n = counted.n.max(shown);
            }
            counted
        };
        Ok(ClientList {
            items: items
                .into_iter()
                .map(|c| ClientView::for_actor(actor, c))
                .collect(),
            total: counted.n,
            total_is_lower_bound: !counted.exact,
            has_more: more,
            next_after,
        })
    }

    /// Clients › detail (and the edit form's data), masked for masked viewers.
    pub async fn get_client(&self, actor: &Actor, id: i64) -> Result<ClientView, AppError> {
        self.authorize(actor, Section::Clients, Action::View, "view a client")
            .await?;
        Ok(ClientView::for_actor(
            actor,
            self.client_in_scope(actor, id).await?,
        ))
    }

    /// The stored client, if it is in the actor's scope; otherwise the same 404 as a missing id.
    async fn client_in_scope(&self, actor: &Actor, id: i64) -> Result<ClientRecord, AppError> {
        self.store
            .client_by_id(actor.client_scope(), id)
            .await?
            .ok_or(AppError::NotFound)
    }

    /// Checks the tags a create or an edit sets: they exist, and every one added or removed is
    /// in the actor's scope. A scoped actor's new client must carry one of their tags (or it
    /// would vanish from their own list).
    async fn checked_tags(
        &self,
        actor: &Actor,
        before: &[TagRef],
        ids: &[i64],
        attempted: &str,
    ) -> Result<Vec<TagRef>, AppError> {
        let tags = self
            .existing_tags(ids)
            .await?
            .map_err(|m| AppError::field("tags", m))?;
        let touched: Vec<TagRef> = tags
            .iter()
            .filter(|t| !before.contains(t))
            .chain(before.iter().filter(|t| !tags.contains(t)))
            .cloned()
            .collect();
        self.guard_own_tags(actor, &touched, attempted).await?;
        let ids: Vec<i64> = tags.iter().map(|t| t.id).collect();
        if before.is_empty() && !actor.client_scope().admits(&ids) {
            return Err(AppError::field(
                "tags",
                "Choose at least one of your Allowed Client Tags, or the client would be outside \
                 them",
            ));
        }
        Ok(tags)
    }

    fn refuse_masked_entry(&self, actor: &Actor) -> Result<(), AppError> {
        if actor.masked() {
            return Err(AppError::Forbidden(
                "With Mask data on you can't create or import clients: the answer to a duplicate \
                 email would reveal another client's personal data."
                    .into(),
            ));
        }
        Ok(())
    }

    /// Whether this viewer may create and import clients (the pages offer it only then).
    pub fn can_add_clients(&self, actor: &Actor) -> bool {
        actor.can(Section::Clients, Action::Create) && !actor.masked()
    }

    pub async fn create_client(
        &self,
        actor: &Actor,
        input: &ClientInput,
        tag_ids: &[i64],
    ) -> Result<i64, AppError> {
        self.authorize(actor, Section::Clients, Action::Create, "create a client")
            .await?;
        if let Err(e) = self.refuse_masked_entry(actor) {
            self.refused(actor, "create a client", &e.to_string()).await;
            return Err(e);
        }
        let v = client::validate(input).map_err(field_errors)?;
        let tags = self
            .checked_tags(actor, &[], tag_ids, "create a client")
            .await?;
        let fields = ClientFields::new(&v, tags.iter().map(|t| t.id).collect());
        let event = changes(
            Event::new(Category::Clients, AuditAction::Add, "Client created"),
            None,
            &fields,
            &tags,
        );
        let event = Event {
            target_type: Some("client".into()),
            target_label: Some(v.full_name()),
            ..event
        };
        let client = NewClient {
            fields,
            registered_at: self.now(),
        };
        self.store
            .insert_client(&client, self.entry(Some(actor), None, event))
            .await
            .map_err(duplicate_email)
    }

    /// Saves an edit: the edit form (every field, based on the `expected` version it showed)
    /// or an API PATCH (the fields it names; `expected` from `If-Match`, if sent). A masked
    /// editor's personal fields are ignored: the stored values are kept, so what they saw (a
    /// mask) is never written back. Blocking needs Clients Delete. `tag_ids: None` keeps the
    /// client's tags. Answers the client as saved.
    pub async fn update_client(
        &self,
        actor: &Actor,
        id: i64,
        patch: &ClientPatch,
        tag_ids: Option<&[i64]>,
        expected: Option<i64>,
    ) -> Result<ClientView, AppError> {
        self.authorize(actor, Section::Clients, Action::Update, "update a client")
            .await?;
        let mut saved = None;
        until_settled!(
            self,
            "client",
            self.try_edit_client(actor, id, patch, tag_ids, expected, &mut saved)
        )?;
        saved.ok_or(AppError::NotFound)
    }

    /// One try of a client edit: the read-modify-write inside the store's transaction. The
    /// patch is laid over the row as that transaction reads (and locks) it, validated, and only
    /// what differs is written, with an event whose "before" values are the row's. New tags
    /// are checked (they exist, the actor may give or take them) on a fresh read first; the
    /// try answers `false` if the client's tags changed since, to check them again.
    async fn try_edit_client(
        &self,
        actor: &Actor,
        id: i64,
        patch: &ClientPatch,
        tag_ids: Option<&[i64]>,
        expected: Option<i64>,
        saved: &mut Option<ClientView>,
    ) -> Result<bool, AppError> {
        let stored = self.client_in_scope(actor, id).await?;
        let tags = match tag_ids {
            None => None,
            Some(ids) => Some(
                self.checked_tags(actor, &stored.tags, ids, "change a client's tags")
                    .await?,
            ),
        };
        let masked = actor.masked();
        let may_block = actor.can(Section::Clients, Action::Delete);
        let scope = actor.client_scope().clone();
        let entry = self.entry(
            Some(actor),
            None,
            Event::new(Category::Clients, AuditAction::Update, "Client updated"),
        );
        let mut blocking_refused = false;
        let refused = &mut blocking_refused;
        let edit: store::Edit<'_, ClientRecord, ClientFields> = Box::new(move |row| {
            if !scope.admits(&row.tag_ids()) {
                return Err(Box::new(AppError::NotFound));
            }
            let after_tags = match tags {
                None => row.tags.clone(),
                // Checked against the tags the client had then: check again if they moved.
                Some(_) if row.tags != stored.tags => return Err(Box::new(Retry)),
                Some(tags) => tags,
            };
            let v: ValidClient = client::validate(&patch.over(row, masked)).map_err(|errors| {
                if masked {
                    // A stored personal value that no longer passes validation is not named.
                    field_errors(
                        errors
                            .into_iter()
                            .filter(|(f, _)| {
                                !["first_name", "last_name", "email", "phone"].contains(f)
                            })
                            .collect(),
                    )
                } else {
                    field_errors(errors)
                }
            })?;
            // Bad input is told as such first, whatever version it was based on.
            check_version("client", id, expected, row.version)?;
            let fields = ClientFields::new(&v, after_tags.iter().map(|t| t.id).collect());
            if fields.status == ClientStatus::Blocked
                && row.status != ClientStatus::Blocked
                && !may_block
            {
                *refused = true;
                return Err(Box::new(AppError::Forbidden(String::new())));
            }
            let name = match (fields.status, row.status) {
                (ClientStatus::Blocked, ClientStatus::Active) => "Client blocked",
                (ClientStatus::Active, ClientStatus::Blocked) => "Client unblocked",
                _ => "Client updated",
            };
            let mut event = changes(entry.event, Some(row), &fields, &after_tags).target(
                "client",
                id,
                client::full_name(&fields.first_name, &fields.last_name),
            );
            if event.changes.is_empty() {
                return Ok(Decision::Keep);
            }
            event.event = name.into();
            Ok(Decision::Write(
                fields,
                store::AuditEntry { event, ..entry },
            ))
        });
        let written = self.store.update_client(id, edit).await;
        if blocking_refused {
            // Refused and recorded as the permission check does it.
            self.authorize(actor, Section::Clients, Action::Delete, "block a client")
                .await?;
        }
        match written {
            Ok(c) => {
                *saved = Some(ClientView::for_actor(actor, c));
                Ok(true)
            }
            Err(e) if is_retry(&e) => Ok(false),
            Err(e) => Err(duplicate_email(e)),
        }
    }

    /// Clients Delete: blocks the client. Nothing is deleted, so the history stays.
    pub async fn block_client(&self, actor: &Actor, id: i64) -> Result<ClientView, AppError> {
        self.authorize(actor, Section::Clients, Action::Delete, "block a client")
            .await?;
        let patch = ClientPatch {
            status: Some(ClientStatus::Blocked.code().into()),
            ..Default::default()
        };
        let mut saved = None;
        until_settled!(
            self,
            "client",
            self.try_edit_client(actor, id, &patch, None, None, &mut saved)
        )?;
        saved.ok_or(AppError::NotFound)
    }

    /// Export CSV: the current filtered list, every page of it, in ID order. Needs Clients
    /// View and Clients Export; masked for masked viewers. Returns the file and its row count.
    pub async fn export_clients(
        &self,
        actor: &Actor,
        req: &ClientListRequest,
    ) -> Result<(String, usize), AppError> {
        self.authorize(actor, Section::Clients, Action::View, "export clients")
            .await?;
        self.authorize(actor, Section::Clients, Action::Export, "export clients")
            .await?;
        let filter = self.client_filter(actor, req).await?;
        let mut rows = Vec::new();
        let mut after = None;
        loop {
            let query = ClientQuery {
                filter: filter.clone(),
                sort: ClientSort::Id,
                descending: false,
                after_id: after,
                offset: 0,
                limit: EXPORT_CHUNK,
            };
            let chunk = self
                .store
                .list_clients(actor.client_scope(), &query)
                .await?;
            let done = (chunk.len() as i64) < EXPORT_CHUNK;
            after = chunk.last().map(|c| c.id);
            rows.extend(chunk.into_iter().map(|c| {
                let c = ClientView::for_actor(actor, c);
                vec![
                    c.id.to_string(),
                    c.first_name,
                    c.last_name,
                    c.email,
                    c.phone,
                    c.country,
                    c.city,
                    c.role.label().to_string(),
                    c.status.label().to_string(),
                    c.language,
                    c.registered_at.iso(),
                    tag_captions(&c.tags),
                ]
            }));
            if done || after.is_none() {
                break;
            }
        }
        let count = rows.len();
        let csv = write_csv(&EXPORT_COLUMNS, rows)?;
        let e = Event::new(Category::Clients, AuditAction::Export, "Clients exported")
            .change("count", "", count.to_string())
            .change("masked", "", if actor.masked() { "Yes" } else { "No" });
        self.log(Some(actor), None, e).await;
        Ok((csv, count))
    }

    /// Import CSV (Clients Create): every row is checked first; on any problem nothing is
    /// imported and every problem is listed, one per line, in `Invalid["file"]`. A valid file
    /// is imported in one transaction.
    pub async fn import_clients(&self, actor: &Actor, bytes: &[u8]) -> Result<usize, AppError> {
        self.authorize(actor, Section::Clients, Action::Create, "import clients")
            .await?;
        if let Err(e) = self.refuse_masked_entry(actor) {
            self.refused(actor, "import clients", &e.to_string()).await;
            return Err(e);
        }
        let parsed = parse_import(bytes);
        let (valid, mut problems) = match parsed {
            Ok(rows) => rows,
            Err(problems) => (Vec::new(), problems),
        };
        let mut keys: Vec<String> = valid.iter().flat_map(|(_, _, t)| t.clone()).collect();
        keys.sort();
        keys.dedup();
        let known = self.store.tags_by_keys(&keys).await?;
        let mut tag_ids = Vec::with_capacity(valid.len());
        for (row, _, tags) in &valid {
            let mut ids = Vec::new();
            for key in tags {
                match known
                    .iter()
                    .find(|t| domain::tag::caption_key(&t.caption) == *key)
                {
                    Some(t) if actor.client_scope().includes_tag(t.id) => ids.push(t.id),
                    Some(t) => problems.push(RowProblem {
                        row: *row,
                        column: "Tags".into(),
                        reason: format!("{} is outside your Allowed Client Tags", t.caption),
                    }),
                    None => problems.push(RowProblem {
                        row: *row,
                        column: "Tags".into(),
                        reason: format!("no tag {key:?}; create it under Clients › Tags first"),
                    }),
                }
            }
            if !actor.client_scope().admits(&ids) {
                problems.push(RowProblem {
                    row: *row,
                    column: "Tags".into(),
                    reason: "name one of your Allowed Client Tags, or the client would be \
                             outside them"
                        .into(),
                });
            }
            tag_ids.push(ids);
        }
        if problems.is_empty() {
            let keys: Vec<String> = valid.iter().map(|(_, v, _)| v.email.key()).collect();
            let taken = self.store.taken_client_emails(&keys).await?;
            for (row, v, _) in &valid {
                if taken.contains(&v.email.key()) {
                    problems.push(RowProblem {
                        row: *row,
                        column: "Email".into(),
                        reason: "a client with this email already exists".into(),
                    });
                }
            }
        }
        if !problems.is_empty() {
            let mut f = FieldErrors::new();
            f.insert(
                "file",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
            return Err(AppError::Invalid(f));
        }
        let now = self.now();
        let clients: Vec<NewClient> = valid
            .iter()
            .zip(tag_ids)
            .map(|((_, v, _), tags)| NewClient {
                fields: ClientFields::new(v, tags),
                registered_at: now,
            })
            .collect();
        let e = Event::new(Category::Clients, AuditAction::Import, "Clients imported").change(
            "count",
            "",
            clients.len().to_string(),
        );
        self.store
            .insert_clients(&clients, Some(self.entry(Some(actor), None, e)))
            .await
            .map_err(duplicate_email)
    }
}

/// Which input field a column title fills; ID and Registered are accepted and ignored, so an
/// exported file can be imported elsewhere.
fn column_field(title: &str) -> Option<Option<&'static str>> {
    let t = title.trim().to_lowercase().replace('_', " ");
    if t == "id" || t == "registered" {
        return Some(None);
    }
    if t == "tags" {
        return Some(Some("tags"));
    }
    client::FIELDS
        .iter()
        .find(|(code, label)| t == label.to_lowercase() || t == code.replace('_', " "))
        .map(|(code, _)| Some(*code))
}

/// A valid row: its number, the client, and the tag captions it names (lower-cased keys).
type ParsedRow = (usize, ValidClient, Vec<String>);
type ParsedRows = (Vec<ParsedRow>, Vec<RowProblem>);

/// Reads and validates the whole file. Row numbers count the header as row 1.
fn parse_import(bytes: &[u8]) -> Result<ParsedRows, Vec<RowProblem>> {
    let file_problem = |reason: String| {
        vec![RowProblem {
            row: 1,
            column: "file".into(),
            reason,
        }]
    };
    if bytes.len() > IMPORT_MAX_BYTES {
        return Err(file_problem("the file is larger than 1.9 MiB".into()));
    }
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
        .map_err(|_| file_problem("the file is not UTF-8 text".into()))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| file_problem(format!("not a CSV file: {e}")))?
        .clone();
    if headers.iter().all(|h| h.trim().is_empty()) {
        return Err(file_problem(
            "the file is empty; the first row must name the columns".into(),
        ));
    }
    let mut problems = Vec::new();
    let mut columns: Vec<Option<&'static str>> = Vec::new();
    for h in headers.iter() {
        match column_field(restore_cell(h)) {
            Some(f) => {
                if f.is_some() && columns.contains(&f) {
                    problems.push(RowProblem {
                        row: 1,
                        column: h.to_string(),
                        reason: "this column appears twice".into(),
                    });
                }
                columns.push(f);
            }
            None => {
                problems.push(RowProblem {
                    row: 1,
                    column: h.to_string(),
                    reason: format!("unknown column; use {}", EXPORT_COLUMNS.join(", ")),
                });
                columns.push(None);
            }
        }
    }
    let optional = ["city", "status"];
    for (code, label) in client::FIELDS {
        if !optional.contains(&code) && !columns.contains(&Some(code)) {
            problems.push(RowProblem {
                row: 1,
                column: label.into(),
                reason: "this column is missing".into(),
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let label_of = |code: &str| {
        client::FIELDS
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, l)| *l)
            .unwrap_or("")
    };
    let mut valid = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(RowProblem {
                    row,
                    column: "row".into(),
                    reason: format!("can't be read: {e}"),
                });
                continue;
            }
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if record.len() > columns.len() {
            problems.push(RowProblem {
                row,
                column: "row".into(),
                reason: format!(
                    "has {} cells but the header names {} columns",
                    record.len(),
                    columns.len()
                ),
            });
            continue;
        }
        let mut input = ClientInput {
            status: "active".into(),
            ..Default::default()
        };
        let mut tags = Vec::new();
        for (cell, field) in record.iter().zip(&columns) {
            let value = restore_cell(cell).to_string();
            match field {
                Some("first_name") => input.first_name = value,
                Some("last_name") => input.last_name = value,
                Some("email") => input.email = value,
                Some("phone") => input.phone = value,
                Some("country") => input.country = value,
                Some("city") => input.city = value,
                Some("role") => input.role = value,
                Some("status") if !value.trim().is_empty() => input.status = value,
                Some("language") => input.language = value,
                Some("tags") => {
                    tags = value
                        .split(',')
                        .map(|t| {
                            domain::tag::caption_key(
                                t.split_whitespace().collect::<Vec<_>>().join(" ").as_str(),
                            )
                        })
                        .filter(|t| !t.is_empty())
                        .collect();
                }
                _ => {}
            }
        }
        match client::validate(&input) {
            Ok(v) => {
                if let Some(first) = seen.insert(v.email.key(), row) {
                    problems.push(RowProblem {
                        row,
                        column: "Email".into(),
                        reason: format!("the same email is in row {first}"),
                    });
                }
                valid.push((row, v, tags));
            }
            Err(errors) => {
                for (field, reason) in errors {
                    problems.push(RowProblem {
                        row,
                        column: label_of(field).into(),
                        reason,
                    });
                }
            }
        }
    }
    if valid.is_empty() && problems.is_empty() {
        return Err(file_problem("the file has no client rows".into()));
    }
    Ok((valid, problems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_file::{needs_prefix, neutralise_cell, FORMULA_STARTS};
    use proptest::prelude::*;

    fn read_back(csv_text: &str) -> Vec<Vec<String>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(csv_text.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn formula_cells_are_prefixed_and_quotes_follow_rfc_4180() {
        let out = write_csv(
            &["A", "B"],
            vec![vec!["=1+1".into(), "say \"hi\", then go".into()]],
        )
        .unwrap();
        assert_eq!(out, "A,B\r\n'=1+1,\"say \"\"hi\"\", then go\"\r\n");
        assert_eq!(neutralise_cell("+44"), "'+44");
        assert_eq!(neutralise_cell("\tx"), "'\tx");
        assert_eq!(neutralise_cell("J****"), "J****");
        assert_eq!(restore_cell("'+44"), "+44");
        assert_eq!(restore_cell("'quoted"), "'quoted");
        assert_eq!(neutralise_cell("'=x"), "''=x");
        assert_eq!(restore_cell("''=x"), "'=x");
    }

    proptest! {
        /// Parse the export back: no cell starts with a formula character, and every cell is
        /// the original, or the original behind one `'` when it started with one (after any
        /// apostrophes); restoring gives the original back.
        #[test]
        fn export_escaping(rows in proptest::collection::vec(
            proptest::collection::vec("[=+\\-@\t\r\n\",' a-zA-Zé0-9]{0,12}", 3), 0..8)
        ) {
            let out = write_csv(&["A", "B", "C"], rows.clone()).unwrap();
            let back = read_back(&out);
            prop_assert_eq!(back.len(), rows.len() + 1);
            for (orig, got) in rows.iter().zip(&back[1..]) {
                prop_assert_eq!(orig.len(), got.len());
                for (o, g) in orig.iter().zip(got) {
                    prop_assert!(!g.starts_with(FORMULA_STARTS), "{:?}", g);
                    if needs_prefix(o) {
                        prop_assert_eq!(g, &format!("'{o}"));
                    } else {
                        prop_assert_eq!(g, o);
                    }
                    prop_assert_eq!(restore_cell(g), o.as_str());
                }
            }
        }
    }

    #[test]
    fn import_reports_row_column_and_reason() {
        let file = "First name,Last name,Email,Phone,Country,Role,Language\r\n\
                    Ann,Lee,ann@example.com,+44 20 7946 0958,GB,Investor,en\r\n\
                    Bob,,bob@example,+1 212 555 0100,XX,Investor,en\r\n\
                    Cy,Ode,ANN@example.com,'+49 30 1234567,DE,both,de\r\n";
        let (valid, problems) = parse_import(file.as_bytes()).unwrap();
        assert_eq!(valid.len(), 2);
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            lines.contains(&"Row 3, Last name: Enter the client's last name".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("Row 3, Email:")),
            "{lines:?}"
        );
        assert!(lines.contains(&"Row 3, Country: XX is not an ISO 3166 country code".to_string()));
        assert!(
            lines.contains(&"Row 4, Email: the same email is in row 2".to_string()),
            "{lines:?}"
        );
        assert_eq!(
            valid[1].1.phone, "+49301234567",
            "an exported (neutralised) phone imports"
        );
    }

    #[test]
    fn import_needs_the_columns() {
        let problems = parse_import(b"Name,Email\r\nAnn,ann@example.com\r\n").unwrap_err();
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("Row 1, Name: unknown column")),
            "{lines:?}"
        );
        assert!(lines.contains(&"Row 1, First name: this column is missing".to_string()));
        assert!(parse_import(b"").is_err());
    }
}
