//! What a viewer may see of a client.

use super::*;
use std::borrow::Cow;

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
    pub(super) fn for_actor(actor: &Actor, c: ClientRecord) -> Self {
        let masked = actor.masked();
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
        let Personal {
            first_name,
            last_name,
            email,
            phone,
        } = Personal {
            first_name: Cow::Owned(first_name),
            last_name: Cow::Owned(last_name),
            email: Cow::Owned(email),
            phone: Cow::Owned(phone),
        }
        .for_viewer(masked);
        Self {
            id,
            first_name: first_name.into_owned(),
            last_name: last_name.into_owned(),
            email: email.into_owned(),
            phone: phone.into_owned(),
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

/// A client's personal fields: the ones a viewer with Mask data on sees masked, each with its
/// mask. [`ClientView`] and the export's rows ([`ExportRow`]) both take them through
/// [`Personal::for_viewer`], so what a page shows and what an export writes can't differ.
pub(super) struct Personal<'a> {
    pub first_name: Cow<'a, str>,
    pub last_name: Cow<'a, str>,
    pub email: Cow<'a, str>,
    pub phone: Cow<'a, str>,
}

impl<'a> Personal<'a> {
    /// The fields as this viewer may see them: masked for a masked viewer, else as they are
    /// (borrowed values stay borrowed).
    pub(super) fn for_viewer(self, masked: bool) -> Self {
        if !masked {
            return self;
        }
        let mask = |value: Cow<'a, str>, mask: fn(&str) -> String| Cow::Owned(mask(&value));
        Self {
            first_name: mask(self.first_name, masking::name),
            last_name: mask(self.last_name, masking::name),
            email: mask(self.email, masking::email),
            phone: mask(self.phone, masking::phone),
        }
    }
}

/// A client as an export row for one viewer: the stored values of a page as the store decoded
/// them, borrowed, with the personal fields masked for a masked viewer. Only
/// [`ExportRow::for_actor`] builds one.
pub(super) struct ExportRow<'c> {
    pub id: i64,
    pub personal: Personal<'c>,
    pub country: &'c str,
    pub city: &'c str,
    pub role: domain::client::ClientRole,
    pub status: domain::client::ClientStatus,
    pub language: &'c str,
    pub registered_at: Timestamp,
}

impl<'c> ExportRow<'c> {
    pub(super) fn for_actor(actor: &Actor, c: &'c store::ExportedClient<'_>) -> Self {
        let personal = Personal {
            first_name: Cow::Borrowed(&c.first_name),
            last_name: Cow::Borrowed(&c.last_name),
            email: Cow::Borrowed(&c.email),
            phone: Cow::Borrowed(&c.phone),
        }
        .for_viewer(actor.masked());
        Self {
            id: c.id,
            personal,
            country: &c.country,
            city: &c.city,
            role: c.role,
            status: c.status,
            language: &c.language,
            registered_at: c.registered_at,
        }
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
