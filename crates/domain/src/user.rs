//! Back Office user attributes that have a fixed set of values.

/// Account status, shown as the seed's "Status" dropdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Enabled,
    Disabled,
}

impl UserStatus {
    pub const ALL: [UserStatus; 2] = [UserStatus::Enabled, UserStatus::Disabled];

    pub fn label(self) -> &'static str {
        match self {
            UserStatus::Enabled => "Enabled",
            UserStatus::Disabled => "Disabled",
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            UserStatus::Enabled => "enabled",
            UserStatus::Disabled => "disabled",
        }
    }
    pub fn from_code(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "enabled" => Some(UserStatus::Enabled),
            "disabled" => Some(UserStatus::Disabled),
            _ => None,
        }
    }
}

/// Two-factor authentication method. New users get `Email` (the seed's default); `Totp` (an
/// authenticator app) and `Passkey` (WebAuthn) are enrolled by the person themself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoFactor {
    Email,
    Disabled,
    Totp,
    Passkey,
}

impl TwoFactor {
    pub const ALL: [TwoFactor; 4] = [
        TwoFactor::Email,
        TwoFactor::Disabled,
        TwoFactor::Totp,
        TwoFactor::Passkey,
    ];

    /// The vendor's words, as the Users list shows them.
    pub fn label(self) -> &'static str {
        match self {
            TwoFactor::Email => "Email",
            TwoFactor::Disabled => "Disabled",
            TwoFactor::Totp => "TOTP",
            TwoFactor::Passkey => "Passkey",
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            TwoFactor::Email => "email",
            TwoFactor::Disabled => "disabled",
            TwoFactor::Totp => "totp",
            TwoFactor::Passkey => "passkey",
        }
    }
    pub fn from_code(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "email" => Some(TwoFactor::Email),
            "disabled" => Some(TwoFactor::Disabled),
            "totp" => Some(TwoFactor::Totp),
            "passkey" => Some(TwoFactor::Passkey),
            _ => None,
        }
    }
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
