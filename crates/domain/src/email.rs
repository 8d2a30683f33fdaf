//! Email addresses: parsed once, so a value of type [`Email`] is always well-formed.

use std::fmt;

/// A syntactically valid email address, kept as typed (trimmed). Uniqueness is decided on
/// [`Email::key`], the lower-cased form, so `Ann@Example.com` and `ann@example.com` collide.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("Enter an email address")]
    Empty,
    #[error("Email is too long (at most 254 characters)")]
    TooLong,
    #[error("Enter a valid email address, like name@example.com")]
    Malformed,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.chars().count() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError::Malformed)?;
        let bad_char =
            |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c);
        let labels_ok = domain.split('.').count() >= 2
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && !l.chars().any(bad_char)
            });
        let local_ok = !local.is_empty()
            && local.chars().count() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && !local.chars().any(bad_char);
        if !labels_ok || !local_ok {
            return Err(EmailError::Malformed);
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive identity of the address, the value the database keeps unique.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_refuses() {
        assert!(Email::parse(" Ann.Lee@Example.com ").is_ok());
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.com",
            "ann@x",
            "a b@x.com",
            "ann@x..com",
            "a\r\n@x.com",
            "ann@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn key_is_case_insensitive() {
        assert_eq!(
            Email::parse("Ann@EXAMPLE.com").unwrap().key(),
            Email::parse("ann@example.COM").unwrap().key()
        );
    }

    proptest! {
        #[test]
        fn key_is_lowercase_and_stable(local in "[A-Za-z0-9._%+-]{1,20}", dom in "[A-Za-z0-9]{1,10}") {
            prop_assume!(!local.starts_with('.') && !local.ends_with('.') && !local.contains(".."));
            let e = Email::parse(&format!("{local}@{dom}.com")).unwrap();
            prop_assert_eq!(e.key(), e.key().to_lowercase());
            prop_assert_eq!(Email::parse(&e.key()).unwrap().key(), e.key());
        }
    }
}
