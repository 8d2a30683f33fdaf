//! Sealing the second factors' secrets (TOTP secrets, passkey credentials, WebAuthn ceremony
//! state) with the operator's key (`BACKOFFICE_SECRET_KEY_FILE`), so that a database dump or
//! backup alone yields none of them; and keyed hashes for recovery codes, for the same reason
//! (49 bits of a code could be brute-forced from a plain hash).
//!
//! XChaCha20-Poly1305 with a random 192-bit nonce per seal (no counter to share between
//! instances). Each value is bound to what it is for (`context`, e.g. `totp:42`) as associated
//! data, so a sealed value copied onto another row or user doesn't open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::{rngs::OsRng, RngCore};

/// What the key file holds: 32 random bytes as 64 hex digits (a trailing newline is fine).
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl Clone for SecretKey {
    fn clone(&self) -> Self {
        Self(self.0)
    }
}

/// The setting that holds a value sealed with the database's key: a different key can't open it.
pub const KEY_CHECK_SETTING: &str = "secret_key_check";
const KEY_CHECK_CONTEXT: &str = "key-check";
const KEY_CHECK_PLAIN: &[u8] = b"backoffice secret key check";

/// A sealed value that doesn't open with this key (a wrong key, or tampering).
#[derive(Debug, thiserror::Error)]
#[error("a stored secret doesn't open with this key")]
pub struct Unsealable;

impl SecretKey {
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// Parses a key file's contents.
    pub fn from_file_contents(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = hex::decode(text)
            .map_err(|_| "the key must be 64 hexadecimal digits (32 bytes)".to_string())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the key must be 64 hexadecimal digits (32 bytes)".to_string())?;
        Ok(Self(key))
    }

    /// What a new key file holds.
    pub fn to_file_contents(&self) -> String {
        format!("{}\n", hex::encode(self.0))
    }

    pub fn seal(&self, context: &str, plain: &[u8]) -> String {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .expect("encryption of a bounded message can't fail");
        format!("v1:{}{}", hex::encode(nonce), hex::encode(sealed))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, Unsealable> {
        let raw = sealed
            .strip_prefix("v1:")
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() > 24)
            .ok_or(Unsealable)?;
        let (nonce, body) = raw.split_at(24);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Unsealable)
    }

    /// HMAC-SHA-256 of `data` under this key, bound to `context`, as hex.
    pub fn keyed_hash(&self, context: &str, data: &str) -> String {
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(context.as_bytes());
        mac.update(&[0]);
        mac.update(data.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The value stored once per database to recognise its key.
    pub fn key_check(&self) -> String {
        self.seal(KEY_CHECK_CONTEXT, KEY_CHECK_PLAIN)
    }

    /// Whether `stored` (a [`key_check`](Self::key_check) value) was made with this key.
    pub fn matches_check(&self, stored: &str) -> bool {
        self.open(KEY_CHECK_CONTEXT, stored)
            .is_ok_and(|p| p == KEY_CHECK_PLAIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let key = SecretKey::generate();
        let sealed = key.seal("totp:1", b"secret");
        assert_eq!(key.open("totp:1", &sealed).unwrap(), b"secret");
        assert!(key.open("totp:2", &sealed).is_err());
        assert!(SecretKey::generate().open("totp:1", &sealed).is_err());
        assert_ne!(
            key.seal("totp:1", b"secret"),
            sealed,
            "a fresh nonce each time"
        );
        assert!(!sealed.contains(&hex::encode(b"secret")));
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_are_refused() {
        let key = SecretKey::generate();
        let again = SecretKey::from_file_contents(&key.to_file_contents()).unwrap();
        assert!(again.matches_check(&key.key_check()));
        assert!(!SecretKey::generate().matches_check(&key.key_check()));
        for bad in ["", "abc", &"0".repeat(62), &"g".repeat(64)] {
            assert!(SecretKey::from_file_contents(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keyed_hashes_depend_on_key_and_context() {
        let key = SecretKey::generate();
        assert_eq!(key.keyed_hash("a", "x"), key.keyed_hash("a", "x"));
        assert_ne!(key.keyed_hash("a", "x"), key.keyed_hash("b", "x"));
        assert_ne!(
            key.keyed_hash("a", "x"),
            SecretKey::generate().keyed_hash("a", "x")
        );
    }
}
