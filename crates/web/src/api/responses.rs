//! The error responses operations share. Each is described once, under `components/responses`,
//! and operations refer to it; a handler lists them by what it does (is called at all, needs a
//! permission, names an object, reads a query or a body, may collide, sends mail), not status
//! by status.

use std::collections::BTreeMap;
use utoipa::openapi::header::Header;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::Type;
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::IntoResponses;

/// Every shared error response: status, name under `components/responses`, description.
const ERRORS: [(u16, &str, &str); 12] = [
    (
        400,
        "BadRequest",
        "The request can't be read: malformed JSON, or a query parameter that is unknown \
        or not of its type. `error` says what.",
    ),
    (
        401,
        "Unauthenticated",
        "No valid bearer token or fully signed-in session.",
    ),
    (
        403,
        "Forbidden",
        "Refused: the caller's permissions don't cover it (`error` says why), or a change \
        made with the session cookie lacks its `X-CSRF-Token`.",
    ),
    (
        404,
        "NotFound",
        "No such object, or one the caller can't see.",
    ),
    (
        405,
        "MethodNotAllowed",
        "The path exists, but not with this method; `Allow` lists the methods it has. \
        Any path of the API answers so.",
    ),
    (
        409,
        "Conflict",
        "Another object already has this value (an email, a caption; `fields` names it), \
        or the change conflicts with what is stored (`error` says why).",
    ),
    (413, "PayloadTooLarge", "The body is larger than 1 MiB."),
    (
        415,
        "UnsupportedMediaType",
        "The body is not sent with `Content-Type: application/json`.",
    ),
    (
        422,
        "UnprocessableEntity",
        "Invalid values; `fields` says which, and why. Nothing changed.",
    ),
    (
        429,
        "TooManyRequests",
        "Over the rate limit of the token, session or IP address; retry after \
        `Retry-After` seconds.",
    ),
    (
        502,
        "MailFailed",
        "The SMTP server did not accept the mail; nothing was written.",
    ),
    (
        503,
        "Unavailable",
        "The database can't be reached; nothing was written. Retry later.",
    ),
];

/// The shared responses, for the document's `components/responses`.
pub fn components() -> BTreeMap<String, RefOr<Response>> {
    ERRORS
        .iter()
        .map(|&(status, name, description)| {
            let mut r = ResponseBuilder::new().description(description).content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            );
            r = match status {
                405 => r.header("Allow", header(Type::String, "The methods this path has.")),
                429 => r.header(
                    "Retry-After",
                    header(
                        Type::Integer,
                        "Seconds until the limit lets requests through again.",
                    ),
                ),
                _ => r,
            };
            (name.to_string(), r.build().into())
        })
        .collect()
}

fn header(kind: Type, description: &str) -> Header {
    let mut h = Header::new(utoipa::openapi::ObjectBuilder::new().schema_type(kind));
    h.description = Some(description.into());
    h
}

/// References to the shared responses of these statuses.
fn refs(statuses: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .filter_map(|s| ERRORS.iter().find(|(status, ..)| status == s))
        .map(|&(status, name, _)| {
            (
                status.to_string(),
                Ref::new(format!("#/components/responses/{name}")).into(),
            )
        })
        .collect()
}

/// Declares a set of shared responses that handlers list in `responses(...)`.
macro_rules! error_set {
    ($(#[doc = $doc:literal])+ $name:ident = [$($status:literal),+]) => {
        $(#[doc = $doc])+
        pub struct $name;

        impl $name {
            const STATUSES: &[u16] = &[$($status),+];
        }

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                refs(Self::STATUSES)
            }
        }
    };
}

error_set! {
    /// What any call can meet: no credentials, too many requests, no database.
    Called = [401, 429, 503]
}

error_set! {
    /// The call needs a permission, or changes something (the CSRF check).
    Guarded = [403]
}

error_set! {
    /// The path names an object by id.
    Named = [404]
}

error_set! {
    /// The call reads query parameters.
    Queried = [400, 422]
}

error_set! {
    /// The call reads a JSON body.
    WithBody = [400, 413, 415, 422]
}

error_set! {
    /// The call writes a value that must be unique.
    Unique = [409]
}

error_set! {
    /// The call may send mail through the SMTP server.
    Mails = [502]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_of_a_set_is_a_shared_response() {
        for (statuses, refs) in [
            (Called::STATUSES, Called::responses()),
            (Guarded::STATUSES, Guarded::responses()),
            (Named::STATUSES, Named::responses()),
            (Queried::STATUSES, Queried::responses()),
            (WithBody::STATUSES, WithBody::responses()),
            (Unique::STATUSES, Unique::responses()),
            (Mails::STATUSES, Mails::responses()),
        ] {
            assert_eq!(refs.len(), statuses.len(), "{statuses:?}");
        }
        assert_eq!(components().len(), ERRORS.len(), "names are unique");
    }
}
