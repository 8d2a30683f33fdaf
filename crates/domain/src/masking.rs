//! Masking of client personal data for viewers with "Mask data" on. Each function reveals at
//! most what the product rule allows and pads with a fixed run of asterisks, so the output never
//! tells how long the hidden part was. Applying a mask to masked text gives the same text.

const STARS: &str = "****";

/// `John Ronald Doe` → `J**** R**** D****`: the first letter of each word.
pub fn name(value: &str) -> String {
    value
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .map(|c| format!("{c}{STARS}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `john.doe@example.co.uk` → `j****@e****.uk`: the first character of the local part and of the
/// domain, and the top-level domain.
pub fn email(value: &str) -> String {
    let value = value.trim();
    let Some((local, domain)) = value.rsplit_once('@') else {
        return name(value);
    };
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let masked_domain = match domain.rsplit_once('.') {
        Some((_, tld)) if !tld.is_empty() => format!("{}{STARS}.{tld}", first(domain)),
        _ => format!("{}{STARS}", first(domain)),
    };
    format!("{}{STARS}@{masked_domain}", first(local))
}

/// `+44 20 7946 0589` → `+*******89`: only the last two digits.
pub fn phone(value: &str) -> String {
    if value.starts_with("+*******") && value.chars().count() == 10 {
        return value.to_string();
    }
    let digits: Vec<char> = value.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 3 {
        return "+*********".to_string();
    }
    let tail: String = digits[digits.len() - 2..].iter().collect();
    format!("+*******{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(name("John Doe"), "J**** D****");
        assert_eq!(name("Łukasz  Żółć"), "Ł**** Ż****");
        assert_eq!(name(""), "");
        assert_eq!(name("J"), "J****");
        assert_eq!(email("john.doe@example.com"), "j****@e****.com");
        assert_eq!(email("a@b"), "a****@b****");
        assert_eq!(phone("+44 20 7946 0589"), "+*******89");
        assert_eq!(phone("7"), "+*********");
    }

    proptest! {
        #[test]
        fn name_reveals_only_initials(words in proptest::collection::vec("[\\p{L}\\p{N}]{1,12}", 1..4)) {
            let input = words.join(" ");
            let masked = name(&input);
            let revealed: Vec<char> = masked.chars().filter(|c| *c != '*' && *c != ' ').collect();
            let initials: Vec<char> = input.split_whitespace().filter_map(|w| w.chars().next()).collect();
            prop_assert_eq!(revealed, initials);
            prop_assert_eq!(name(&masked), masked.clone());
        }

        #[test]
        fn name_length_does_not_depend_on_word_length(a in "[A-Za-z]{1,30}", b in "[A-Za-z]{1,30}") {
            prop_assert_eq!(name(&a).chars().count(), name(&b).chars().count());
        }

        #[test]
        fn email_reveals_first_chars_and_tld(local in "[a-z0-9.]{1,30}", dom in "[a-z0-9]{1,20}", tld in "[a-z]{2,6}") {
            let input = format!("{local}@{dom}.{tld}");
            let masked = email(&input);
            let expected = format!("{}****@{}****.{}", &local[..1], &dom[..1], tld);
            prop_assert_eq!(&masked, &expected);
            prop_assert_eq!(email(&masked), masked);
        }

        #[test]
        fn phone_reveals_last_two_digits(digits in "[0-9]{3,15}") {
            let masked = phone(&format!("+{digits}"));
            prop_assert_eq!(masked.len(), 10);
            prop_assert!(masked.ends_with(&digits[digits.len() - 2..]));
            prop_assert_eq!(masked.chars().filter(char::is_ascii_digit).count(), 2);
            prop_assert_eq!(phone(&masked), masked);
        }

        #[test]
        fn email_length_does_not_depend_on_part_lengths(
            a in "[a-z]{1,30}", b in "[a-z]{1,30}", c in "[a-z]{1,20}", d in "[a-z]{1,20}", tld in "[a-z]{2,6}"
        ) {
            let one = email(&format!("{a}@{c}.{tld}"));
            let two = email(&format!("{b}@{d}.{tld}"));
            prop_assert_eq!(one.chars().count(), two.chars().count());
        }

        #[test]
        fn phone_length_is_fixed(a in "[+0-9 ()-]{0,25}", b in "[+0-9 ()-]{0,25}") {
            prop_assert_eq!(phone(&a).chars().count(), phone(&b).chars().count());
        }

        #[test]
        fn unicode_emails_reveal_only_first_chars(local in "\\PC{1,12}", dom in "[\\p{L}\\p{N}]{1,12}") {
            prop_assume!(!local.contains('@') && !local.chars().any(char::is_whitespace));
            let masked = email(&format!("{local}@{dom}.com"));
            let l = local.chars().next().unwrap();
            let d = dom.chars().next().unwrap();
            prop_assert_eq!(&masked, &format!("{l}****@{d}****.com"));
            prop_assert_eq!(email(&masked), masked);
        }

        /// Whatever the input, a masked name holds no more characters than one per word plus
        /// the fixed padding, and no character that was not an initial.
        #[test]
        fn name_never_reveals_more_than_initials(input in "\\PC{0,40}") {
            let masked = name(&input);
            let words = input.split_whitespace().count();
            let revealed: Vec<char> = masked.split(' ').filter_map(|w| w.chars().next()).collect();
            let initials: Vec<char> = input.split_whitespace().filter_map(|w| w.chars().next()).collect();
            prop_assert_eq!(revealed, initials);
            prop_assert_eq!(masked.chars().count(), if words == 0 { 0 } else { words * 6 - 1 });
        }
    }

    #[test]
    fn empty_and_one_letter_values() {
        assert_eq!(email(""), "");
        assert_eq!(email("a@b.c"), "a****@b****.c");
        assert_eq!(email("@"), "****@****");
        assert_eq!(phone(""), "+*********");
        assert_eq!(phone("+*********"), "+*********");
        assert_eq!(name("É"), "É****");
    }
}
