//! What a viewer may see of a client.

use super::*;

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
