//! Recovery codes: ten single-use codes shown once at enrolment, for the day the phone or the
//! passkey is lost. Each is 10 characters of a 31-symbol alphabet (49 bits) — too many to guess
//! within the lockout, short enough to type — shown as `xxxxx-xxxxx`. Only their hashes are
//! stored (by the app, keyed), so what is typed is normalised first.

use rand::Rng;

/// How many codes a set holds.
pub const COUNT: usize = 10;
const LEN: usize = 10;
/// Lower-case letters and digits without the ones people confuse (0/o, 1/l/i).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A fresh set of codes, as shown to the person.
pub fn generate(rng: &mut impl Rng) -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let chars: String = (0..LEN)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// What is typed, in the form that was hashed: lower case, without spaces and dashes. `None`
/// when it can't be a recovery code (so it isn't even looked up).
pub fn normalise(typed: &str) -> Option<String> {
    let s: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    (s.len() == LEN && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ten_distinct_codes_that_normalise_to_themselves() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let codes = generate(&mut rng);
        assert_eq!(codes.len(), COUNT);
        let mut seen = std::collections::HashSet::new();
        for c in &codes {
            assert_eq!(c.len(), 11);
            let n = normalise(c).expect("a generated code is well-formed");
            assert_eq!(
                normalise(&c.to_uppercase().replace('-', " ")),
                Some(n.clone())
            );
            assert!(seen.insert(n));
        }
    }

    #[test]
    fn other_input_is_not_a_code() {
        for typed in [
            "",
            "123456",
            "abcde-abcd",
            "abcde-abcdef",
            "abcde-abcd0",
            "abcde_abcde",
        ] {
            assert_eq!(normalise(typed), None, "{typed:?}");
        }
    }
}
