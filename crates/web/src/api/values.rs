//! The fixed value sets of the API as named schemas (`enum`s in the document), each built from
//! the list the server itself parses with, and the reading of query parameters that hold them:
//! a parameter that is present holds a value of its type, exactly as the document says (an
//! empty one is not "absent"), so the document never offers a value the server refuses nor
//! hides one it accepts.

use super::error::ApiError;
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// Declares a schema-only type named like the schema, whose `enum` is the given values; a set
/// of strings can also read a query parameter.
macro_rules! value_set {
    ($(#[doc = $doc:literal])+ $name:ident = $values:expr) => {
        value_set!(@schema $(#[doc = $doc])+ $name: String = $values);

        impl $name {
            /// Reads query parameter `field`, which holds one of these values when present.
            pub fn param<'a>(field: &str, raw: Option<&'a str>) -> Result<Option<&'a str>, ApiError> {
                one_of(field, raw, &Self::values())
            }
        }
    };
    ($(#[doc = $doc:literal])+ $name:ident: Integer = $values:expr) => {
        value_set!(@schema $(#[doc = $doc])+ $name: Integer = $values);
    };
    (@schema $(#[doc = $doc:literal])+ $name:ident: $kind:ident = $values:expr) => {
        $(#[doc = $doc])+
        pub struct $name;

        impl $name {
            pub fn values() -> Vec<Value> {
                $values.into_iter().map(Value::from).collect()
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let doc: Vec<&str> = [$($doc),+].iter().map(|line| line.trim()).collect();
                ObjectBuilder::new()
                    .schema_type(Type::$kind)
                    .description(Some(doc.join(" ")))
                    .enum_values(Some(Self::values()))
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}

value_set! {
    /// A staff account's status.
    UserStatus = domain::UserStatus::ALL.map(|s| s.code())
}

value_set! {
    /// A staff member's second factor after the password: `email` (a code sent by email),
    /// `totp` (a code from an authenticator app), `passkey` (WebAuthn), or `disabled` (password
    /// only).
    TwoFactor = domain::TwoFactor::ALL.map(|t| t.code())
}

value_set! {
    /// The column the users list is ordered by.
    UserSort = app::UserSort::ALL.map(|(_, code)| code)
}

value_set! {
    /// Ascending (the default) or descending order.
    SortDirection = ["asc", "desc"]
}

value_set! {
    /// Investor, strategy provider, or both.
    ClientRole = domain::client::ClientRole::ALL.map(|r| r.code())
}

value_set! {
    /// A client's status; "Clients Delete" only ever blocks.
    ClientStatus = domain::client::ClientStatus::ALL.map(|s| s.code())
}

value_set! {
    /// The column the clients list is ordered by (`registered`: registration time).
    ClientSort = app::ClientSort::ALL.map(|(_, code)| code)
}

value_set! {
    /// What the client search text is matched against: an exact ID, or a prefix of the name,
    /// email or phone (personal fields, which masked callers can't search).
    SearchField = app::clients::SearchField::ALL.map(|f| f.code())
}

value_set! {
    /// A language the platform writes to its clients in (ISO 639-1).
    Language = domain::client::LANGUAGES.iter().map(|(code, _)| *code)
}

value_set! {
    /// A permission, as listed by `GET /api/v1/permissions` (section, dot, action).
    Permission = domain::Permission::catalogue().map(|p| p.code())
}

value_set! {
    /// Clients per page.
    PageSize: Integer = app::clients::PAGE_SIZES
}

fn one_of<'a>(
    field: &str,
    raw: Option<&'a str>,
    values: &[Value],
) -> Result<Option<&'a str>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if values.iter().any(|v| v.as_str() == Some(raw)) {
        return Ok(Some(raw));
    }
    let list: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
    Err(ApiError::field(
        field,
        format!("Use one of: {}", list.join(", ")),
    ))
}

/// Reads `dir`: true for `desc`; absent means ascending.
pub fn descending(dir: Option<&str>) -> Result<bool, ApiError> {
    Ok(SortDirection::param("dir", dir)? == Some("desc"))
}

/// Reads a day parameter (`format: date`, `YYYY-MM-DD`), which the use case reads again.
pub fn day(field: &str, raw: Option<&str>) -> Result<String, ApiError> {
    let Some(raw) = raw else {
        return Ok(String::new());
    };
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if shaped && domain::Timestamp::from_date(raw).is_some() {
        Ok(raw.to_string())
    } else {
        Err(ApiError::field(field, "Enter a date as YYYY-MM-DD"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_present_parameter_holds_a_value_of_its_set() {
        assert_eq!(UserStatus::param("status", None).unwrap(), None);
        assert_eq!(
            UserStatus::param("status", Some("enabled")).unwrap(),
            Some("enabled")
        );
        for bad in ["", " ", "Enabled", "on"] {
            let e = UserStatus::param("status", Some(bad)).unwrap_err();
            assert_eq!(e.body.fields["status"], "Use one of: enabled, disabled");
        }
        assert!(descending(Some("desc")).unwrap());
        assert!(!descending(None).unwrap());
        assert!(descending(Some("")).is_err());
    }

    #[test]
    fn days_are_full_dates() {
        assert_eq!(day("from", Some("2026-11-27")).unwrap(), "2026-11-27");
        assert_eq!(day("from", None).unwrap(), "");
        for bad in [
            "",
            " ",
            "2026-1-1",
            "27.11.2026",
            "2026-13-01",
            " 2026-11-27",
            "+202-11-27",
        ] {
            assert!(day("from", Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn value_sets_are_the_parsers_lists() {
        assert_eq!(ClientSort::values().len(), app::ClientSort::ALL.len());
        assert!(Permission::values().contains(&Value::from("users.view")));
        assert_eq!(PageSize::values(), [25, 50, 100].map(Value::from));
    }
}
