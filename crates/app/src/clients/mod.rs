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
use crate::csv_file::restore_cell;
use crate::tags::tag_captions;
use crate::{Actor, App, AppError, FieldErrors};
use domain::audit::{AuditAction, Category, Event};
use domain::client::{self, ClientInput, ClientRole, ClientStatus, ValidClient};
use domain::{masking, Action, Section, Timestamp};
use store::{
    ClientFields, ClientFilter, ClientQuery, ClientRecord, ClientSearch, ClientSort, Decision,
    NewClient, StoreError, TagRef,
};

mod import_export;
mod list;
mod view;

pub use import_export::{RowProblem, EXPORT_COLUMNS, IMPORT_MAX_BYTES};
pub use list::{ClientList, ClientListRequest, SearchField};
pub use view::{input_of, ClientView};

pub const PAGE_SIZES: [i64; 3] = [25, 50, 100];
/// A filtered list is counted up to this many matches and shown as "at least" beyond it, so
/// a broad filter never costs a count of the whole table.
pub const COUNT_CAP: i64 = 1_000;

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
}
