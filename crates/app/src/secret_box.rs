//! Sealing the second factors' secrets (TOTP secrets, passkey credentials, WebAuthn ceremony
//! state) with the operator's key (`BACKOFFICE_SECRET_KEY_FILE`), so that a database dump or
//! backup alone yields none of them; and keyed hashes for recovery codes, for the same reason
//! (49 bits of a code could be brute-forced from a plain hash).
//!
//! XChaCha20-Poly1305 with a random 192-bit nonce per seal (no counter to share between
//! instances). Each value is bound to what it is for (`context`, e.g. `totp:42`) as associated
//! data, so a sealed value copied onto another row or user doesn't open.
//!
//! One key, two jobs kept apart: seals use a subkey derived from the file's key (HKDF-Expand,
//! RFC 5869, with the file's random key as the pseudorandom key), the keyed hashes use the file's
//! key itself. Values sealed before the subkey (`v1:`) still open with the file's key; new ones
//! are `v2:`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::{rngs::OsRng, RngCore};

/// What the key file holds: 32 random bytes as 64 hex digits (a trailing newline is fine).
pub struct SecretKey([u8; 32]);

/// HKDF-Expand's `info` for the sealing subkey.
const SEAL_KEY_INFO: &[u8] = b"backoffice secret-box seal key v2";

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

    /// The sealing subkey: HKDF-Expand to one block, T(1) = HMAC(key, info || 0x01); the file's
    /// key is already uniformly random, so it serves as HKDF's pseudorandom key (RFC 5869 §3.3).
    fn seal_key(&self) -> [u8; 32] {
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(SEAL_KEY_INFO);
        mac.update(&[1]);
        mac.finalize().into_bytes().into()
    }

    pub fn seal(&self, context: &str, plain: &[u8]) -> String {
        let cipher = XChaCha20Poly1305::new((&self.seal_key()).into());
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
        format!("v2:{}{}", hex::encode(nonce), hex::encode(sealed))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, Unsealable> {
        let (key, hex_text) = if let Some(h) = sealed.strip_prefix("v2:") {
            (self.seal_key(), h)
        } else if let Some(h) = sealed.strip_prefix("v1:") {
            (self.0, h)
        } else {
            return Err(Unsealable);
        };
        let raw = hex::decode(hex_text)
            .ok()
            .filter(|b| b.len() > 24)
            .ok_or(Unsealable)?;
        let (nonce, body) = raw.split_at(24);
        XChaCha20Poly1305::new((&key).into())
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
    fn seals_use_a_subkey_and_values_sealed_before_it_still_open() {
        let key = SecretKey::generate();
        let sealed = key.seal("totp:1", b"secret");
        assert!(sealed.starts_with("v2:"));
        // Not sealed with the file's key itself: that key only makes keyed hashes now.
        let raw = hex::decode(&sealed[3..]).unwrap();
        let (nonce, body) = raw.split_at(24);
        let with_file_key = XChaCha20Poly1305::new((&key.0).into()).decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: b"totp:1",
            },
        );
        assert!(with_file_key.is_err());
        // A value sealed before the subkey (v1: the file's key) still opens.
        let old = XChaCha20Poly1305::new((&key.0).into())
            .encrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: b"old secret",
                    aad: b"totp:1",
                },
            )
            .unwrap();
        let v1 = format!("v1:{}{}", hex::encode(nonce), hex::encode(old));
        assert_eq!(key.open("totp:1", &v1).unwrap(), b"old secret");
        assert!(key.open("totp:2", &v1).is_err());
        assert!(key.open("totp:1", &format!("v3:{}", &v1[3..])).is_err());
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
