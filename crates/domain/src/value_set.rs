//! Fixed sets of values (statuses, roles, 2FA methods, menu sections, actions): each value has a
//! stable `code` (stored in the database, used in URLs, the API and import files) and a `label`
//! (the words a person sees). One macro writes the enum with `ALL`, `code`, `label` and
//! `from_code`, so every set parses the same way, and a value added to a set can't be left out
//! of its list, its code or its label.
//!
//! Laws (tested below for every set): `from_code(v.code()) == Some(v)` and
//! `from_code(v.label()) == Some(v)` in any case and with surrounding spaces; codes and labels
//! are unique within a set; anything else is `None`, never a default.

/// Declares a value set: `Variant = ("code", "Label")`, in the order pages list them (which is
/// also the order `Ord` compares them in).
#[macro_export]
macro_rules! value_set {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = ($code:literal, $label:literal) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in the order pages list them.
            pub const ALL: [$name; [$($code),+].len()] = [$($name::$variant),+];

            /// The stable code: stored, and used in URLs, the API and files.
            pub fn code(self) -> &'static str {
                match self {
                    $($name::$variant => $code),+
                }
            }

            /// The words a person sees.
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label),+
                }
            }

            /// The value with this code or label, in any case, surrounding spaces ignored
            /// (import files and query strings are typed by people); `None` for anything else.
            pub fn from_code(s: &str) -> Option<Self> {
                let s = s.trim();
                Self::ALL
                    .into_iter()
                    .find(|v| v.code().eq_ignore_ascii_case(s) || v.label().eq_ignore_ascii_case(s))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::client::{ClientRole, ClientStatus};
    use crate::permission::{Action, Section};
    use crate::user::{TwoFactor, UserStatus};
    use std::collections::HashSet;

    macro_rules! laws {
        ($($set:ty),+) => {$({
            let all = <$set>::ALL;
            for v in all {
                assert_eq!(<$set>::from_code(v.code()), Some(v));
                assert_eq!(<$set>::from_code(&format!(" {} ", v.label().to_uppercase())), Some(v));
            }
            assert_eq!(all.iter().map(|v| v.code()).collect::<HashSet<_>>().len(), all.len());
            assert_eq!(all.iter().map(|v| v.label()).collect::<HashSet<_>>().len(), all.len());
            for unknown in ["", "unknown", "0"] {
                assert_eq!(<$set>::from_code(unknown), None, "{unknown:?}");
            }
        })+};
    }

    #[test]
    fn every_set_parses_its_codes_and_labels_and_nothing_else() {
        laws!(
            UserStatus,
            TwoFactor,
            ClientRole,
            ClientStatus,
            Section,
            Action
        );
    }
}
