//! Back Office user attributes that have a fixed set of values.

crate::value_set! {
    /// Account status, shown as the seed's "Status" dropdown.
    pub enum UserStatus {
        Enabled = ("enabled", "Enabled"),
        Disabled = ("disabled", "Disabled"),
    }
}

crate::value_set! {
    /// Two-factor authentication method, in the vendor's words as the Users list shows them.
    /// New users get `Email` (the seed's default); `Totp` (an authenticator app) and `Passkey`
    /// (WebAuthn) are enrolled by the person themself.
    pub enum TwoFactor {
        Email = ("email", "Email"),
        Disabled = ("disabled", "Disabled"),
        Totp = ("totp", "TOTP"),
        Passkey = ("passkey", "Passkey"),
    }
}

impl TwoFactor {
    /// Methods that come with recovery codes (those the person enrolled on their own device).
    pub fn has_recovery_codes(self) -> bool {
        matches!(self, TwoFactor::Totp | TwoFactor::Passkey)
    }
}

/// The longest name accepted for a user ("first and last names").
pub const NAME_MAX: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("Enter the user's first and last names")]
    Empty,
    #[error("Name is too long (at most 200 characters)")]
    TooLong,
    #[error("Name must not contain control characters")]
    Control,
}

/// Validates and trims a person's name.
pub fn parse_name(raw: &str) -> Result<String, NameError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.chars().count() > NAME_MAX {
        return Err(NameError::TooLong);
    }
    if s.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    Ok(s.to_string())
}
