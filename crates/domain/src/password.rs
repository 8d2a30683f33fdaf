//! The password policy, used everywhere a password is chosen (CLI, create/edit user, profile,
//! forced change), and the generator behind the "Generate" button.

use rand::{rngs::OsRng, Rng};

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 128;

/// Why a password was refused; the message names the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("Password must be at least 12 characters long")]
    TooShort,
    #[error("Password must be at most 128 characters long")]
    TooLong,
    #[error("Password is too easy to guess; use a longer phrase or the Generate button")]
    TooWeak,
    #[error("Password must not contain the email address")]
    ContainsEmail,
}

/// Checks a candidate password against the policy. `email_local` is the local part of the
/// account's email: a password containing it (3 characters or more) is refused, case-insensitively.
pub fn check(password: &str, email_local: &str) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    if len > MAX_LEN {
        return Err(PasswordError::TooLong);
    }
    // Very short local parts ("jo@…") would forbid half the dictionary; they are skipped.
    if email_local.chars().count() >= 3
        && password
            .to_lowercase()
            .contains(&email_local.to_lowercase())
    {
        return Err(PasswordError::ContainsEmail);
    }
    let inputs = [email_local];
    let score = zxcvbn::zxcvbn(password, &inputs).score();
    if u8::from(score) < 3 {
        return Err(PasswordError::TooWeak);
    }
    Ok(())
}

/// Characters for generated passwords: no look-alikes (0/O, 1/l/I) so a person can copy one by hand.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// A 20-character password from the operating system's CSPRNG (~116 bits) that passes the policy.
pub fn generate() -> String {
    loop {
        let candidate: String = (0..20)
            .map(|_| ALPHABET[OsRng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        if check(&candidate, "").is_ok() {
            return candidate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_never_printed() {
        let typed = Secret::from("Amber-Falcon-Orchard-93");
        assert_eq!(format!("{typed:?}"), "Secret(***)");
        assert_eq!(typed.expose(), "Amber-Falcon-Orchard-93");
        assert_eq!(format!("{:?}", Secret::default()), "Secret(\"\")");
    }

    #[test]
    fn rules() {
        assert_eq!(check("short", "ann"), Err(PasswordError::TooShort));
        assert_eq!(check(&"x".repeat(129), "ann"), Err(PasswordError::TooLong));
        assert_eq!(
            check("passwordpassword", "ann"),
            Err(PasswordError::TooWeak)
        );
        assert_eq!(
            check("annabel-Rides-7-horses", "annabel"),
            Err(PasswordError::ContainsEmail)
        );
        assert_eq!(check("correct horse battery staple", "ann"), Ok(()));
        // Any characters, no truncation: a 128-char unicode phrase is fine.
        let long: String = "Ünïcødé-phrase-Ω ".repeat(8).chars().take(128).collect();
        assert_eq!(check(&long, "ann"), Ok(()));
    }

    #[test]
    fn generated_passwords_pass_and_differ() {
        let a = generate();
        let b = generate();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(check(&a, "").is_ok());
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
    }
}

/// A password as someone typed it, on its way to the policy check and the hasher. Its `Debug`
/// prints only whether it is empty, so a form or request logged with `{:?}` carries no password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The password itself, for the check and the hash.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(\"\")"
        } else {
            "Secret(***)"
        })
    }
}
