//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA-1, 6 digits, 30-second
//! steps — what Google Authenticator and its kind compute by default, so nothing but the secret
//! has to be agreed on. A few lines over `hmac` and `sha1` instead of a TOTP crate: the rule is
//! small, and the replay rule (a step is used once) belongs to us, not to a library.

use hmac::{Hmac, Mac};

/// Seconds per step (RFC 6238's X).
pub const STEP_SECS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps accepted on either side of the current one, for clocks that drift and people who type
/// slowly (RFC 6238 §5.2 recommends at most one).
pub const SKEW_STEPS: i64 = 1;
/// Bytes of a new secret: 160 bits, RFC 4226's recommendation for HMAC-SHA-1.
pub const SECRET_BYTES: usize = 20;

/// The step that Unix time `unix_secs` falls in (T0 = 0).
pub fn step_at(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// HOTP value of `secret` at counter `step`, with `digits` digits (RFC 4226 §5.3).
pub fn hotp(secret: &[u8], step: u64, digits: u32) -> u32 {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    bin % 10u32.pow(digits)
}

/// The 6-digit code of `secret` at `step`, zero-padded as an app shows it.
pub fn code_at(secret: &[u8], step: i64) -> String {
    format!("{:06}", hotp(secret, step.max(0) as u64, DIGITS))
}

/// The step whose code `typed` is, among the current step and [`SKEW_STEPS`] either side, and
/// later than `last_used` (the step of the last accepted code: that step and earlier ones are
/// spent, so an observed code can't be replayed). `None` for a malformed or wrong code.
/// Spaces are ignored ("123 456" is how some apps show it).
pub fn verify(secret: &[u8], typed: &str, unix_secs: i64, last_used: Option<i64>) -> Option<i64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(unix_secs);
    (now - SKEW_STEPS..=now + SKEW_STEPS)
        .filter(|s| last_used.is_none_or(|l| *s > l))
        .find(|s| constant_time_eq(code_at(secret, *s).as_bytes(), typed.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 4648 base32 without padding: how authenticator apps take a secret typed by hand or in an
/// `otpauth://` URI.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            out.push(ALPHABET[((n >> (35 - 5 * i)) & 31) as usize] as char);
        }
    }
    out
}

/// The secret in groups of four, easier to type from the screen.
pub fn grouped(base32: &str) -> String {
    base32
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `otpauth://totp/…` URI that the QR code holds (Key Uri Format): issuer and account label,
/// the secret, and the parameters spelled out although they are the defaults.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 6238 Appendix B, SHA-1 rows: the seed is the ASCII "12345678901234567890".
    const RFC_SEED: &[u8] = b"12345678901234567890";
    const RFC_VECTORS: [(i64, u32); 6] = [
        (59, 94287082),
        (1111111109, 7081804),
        (1111111111, 14050471),
        (1234567890, 89005924),
        (2000000000, 69279037),
        (20000000000, 65353130),
    ];

    #[test]
    fn rfc_6238_test_vectors() {
        for (time, expected) in RFC_VECTORS {
            assert_eq!(
                hotp(RFC_SEED, step_at(time) as u64, 8),
                expected,
                "T = {time}"
            );
            // Six digits are the last six of the eight (the same truncation, another modulus).
            assert_eq!(
                code_at(RFC_SEED, step_at(time)),
                format!("{:06}", expected % 1_000_000)
            );
        }
    }

    #[test]
    fn rfc_4226_hotp_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in expected.into_iter().enumerate() {
            assert_eq!(hotp(RFC_SEED, counter as u64, 6), code);
        }
    }

    #[test]
    fn accepts_one_step_either_side_and_no_further() {
        let t = 1_234_567_890;
        let now = step_at(t);
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = code_at(RFC_SEED, now + offset);
            assert_eq!(
                verify(RFC_SEED, &code, t, None).is_some(),
                accepted,
                "offset {offset}"
            );
        }
        assert_eq!(
            verify(RFC_SEED, &code_at(RFC_SEED, now), t, None),
            Some(now)
        );
    }

    #[test]
    fn a_used_step_and_earlier_ones_are_refused() {
        let t = 1_234_567_890;
        let now = step_at(t);
        let code = code_at(RFC_SEED, now);
        assert_eq!(verify(RFC_SEED, &code, t, Some(now)), None);
        assert_eq!(
            verify(RFC_SEED, &code_at(RFC_SEED, now - 1), t, Some(now)),
            None
        );
        assert_eq!(
            verify(RFC_SEED, &code_at(RFC_SEED, now + 1), t, Some(now)),
            Some(now + 1)
        );
    }

    #[test]
    fn malformed_codes_are_refused() {
        for typed in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(verify(RFC_SEED, typed, 59, None), None, "{typed:?}");
        }
        let spaced = code_at(RFC_SEED, step_at(59));
        let spaced = format!("{} {}", &spaced[..3], &spaced[3..]);
        assert!(verify(RFC_SEED, &spaced, 59, None).is_some());
    }

    #[test]
    fn base32_matches_rfc_4648() {
        for (raw, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(raw.as_bytes()), enc);
        }
        assert_eq!(base32(RFC_SEED), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
    }

    #[test]
    fn otpauth_uri_names_issuer_and_account() {
        let uri = otpauth_uri("Back Office", "ann@example.com", RFC_SEED);
        assert_eq!(
            uri,
            "otpauth://totp/Back%20Office:ann@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Back%20Office&algorithm=SHA1&digits=6&period=30"
        );
    }

    proptest! {
        /// Whatever the secret and time, the current code verifies once: never again at that step.
        #[test]
        fn a_code_verifies_once(secret in proptest::collection::vec(any::<u8>(), 1..40), t in 0i64..4_000_000_000) {
            let step = step_at(t);
            let code = code_at(&secret, step);
            let used = verify(&secret, &code, t, None);
            prop_assert!(used.is_some());
            prop_assert!(used.unwrap() >= step - SKEW_STEPS && used.unwrap() <= step + SKEW_STEPS);
            prop_assert_eq!(verify(&secret, &code, t, Some(step + SKEW_STEPS)), None);
        }
    }
}
