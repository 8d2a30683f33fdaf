//! Client tags: short captions that group clients (a regional desk, an introducing broker).
//! A staff member's Allowed Client Tags decide which clients they see ([`ClientScope`]).
//!
//! Laws (property-tested below): a valid caption is trimmed, 1–[`CAPTION_MAX`] characters with
//! no control characters and no comma (the CSV column lists tags with commas), and two captions
//! are the same tag exactly when their keys are equal (case-insensitive).

use std::collections::BTreeSet;

pub const CAPTION_MAX: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptionError {
    #[error("Enter the tag's caption")]
    Empty,
    #[error("A tag's caption is at most {CAPTION_MAX} characters")]
    TooLong,
    #[error("A tag's caption can't contain a comma or control characters")]
    Forbidden,
}

/// The caption as stored: trimmed, inner runs of spaces collapsed.
pub fn parse_caption(raw: &str) -> Result<String, CaptionError> {
    let s = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.is_empty() {
        return Err(CaptionError::Empty);
    }
    if s.chars().count() > CAPTION_MAX {
        return Err(CaptionError::TooLong);
    }
    if s.chars().any(|c| c.is_control() || c == ',') {
        return Err(CaptionError::Forbidden);
    }
    Ok(s)
}

/// The uniqueness key of a caption: "VIP" and "vip" are one tag.
pub fn caption_key(caption: &str) -> String {
    caption.to_lowercase()
}

/// Which clients a staff member sees: all of them, or those carrying at least one of these tags
/// (tag ids). `All` is wider than any tag set; a tag set is wider than its subsets, so the empty
/// set (no client at all) is the narrowest scope there is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientScope {
    All,
    Tags(BTreeSet<i64>),
}

impl ClientScope {
    /// The narrowest scope: no client.
    pub fn none() -> Self {
        ClientScope::Tags(BTreeSet::new())
    }

    /// A staff member's scope from where Allowed Client Tags are set: the union of their own
    /// account's and their groups' tags, where none at all means every client. Administrators is
    /// unscoped unless the account's own field narrows it (its members' other groups' tags
    /// don't). A tagless group adds nothing, so joining one never widens anybody.
    pub fn of_user(own: &[i64], groups: &[i64], administrator: bool) -> Self {
        let tags: BTreeSet<i64> = if administrator {
            own.iter().copied().collect()
        } else {
            own.iter().chain(groups).copied().collect()
        };
        Self::of_field(tags)
    }

    /// One field's scope (a group's or an account's Allowed Client Tags): empty means all.
    pub fn of_field(tags: impl IntoIterator<Item = i64>) -> Self {
        let tags: BTreeSet<i64> = tags.into_iter().collect();
        if tags.is_empty() {
            ClientScope::All
        } else {
            ClientScope::Tags(tags)
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, ClientScope::All)
    }

    /// The tag ids of a narrowed scope; `None` for all clients.
    pub fn tags(&self) -> Option<&BTreeSet<i64>> {
        match self {
            ClientScope::All => None,
            ClientScope::Tags(t) => Some(t),
        }
    }

    /// Whether a client carrying these tags is in scope.
    pub fn admits(&self, client_tags: &[i64]) -> bool {
        match self {
            ClientScope::All => true,
            ClientScope::Tags(t) => client_tags.iter().any(|id| t.contains(id)),
        }
    }

    /// Whether this scope includes this tag (everything includes every tag).
    pub fn includes_tag(&self, tag: i64) -> bool {
        match self {
            ClientScope::All => true,
            ClientScope::Tags(t) => t.contains(&tag),
        }
    }

    /// `self` is at least as wide as `other`.
    pub fn covers(&self, other: &ClientScope) -> bool {
        match (self, other) {
            (ClientScope::All, _) => true,
            (ClientScope::Tags(_), ClientScope::All) => false,
            (ClientScope::Tags(a), ClientScope::Tags(b)) => a.is_superset(b),
        }
    }

    /// The narrowest scope at least as wide as both.
    pub fn join(&self, other: &ClientScope) -> ClientScope {
        match (self, other) {
            (ClientScope::Tags(a), ClientScope::Tags(b)) => {
                ClientScope::Tags(a.union(b).copied().collect())
            }
            _ => ClientScope::All,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn scope() -> impl Strategy<Value = ClientScope> {
        prop_oneof![
            Just(ClientScope::All),
            proptest::collection::btree_set(1i64..6, 0..4).prop_map(ClientScope::Tags),
        ]
    }

    proptest! {
        #[test]
        fn a_valid_caption_is_stable_and_clean(raw in "\\PC{0,50}") {
            if let Ok(c) = parse_caption(&raw) {
                prop_assert_eq!(parse_caption(&c), Ok(c.clone()));
                prop_assert!(!c.is_empty() && c.chars().count() <= CAPTION_MAX);
                prop_assert!(!c.contains(',') && c.trim() == c);
            }
        }

        #[test]
        fn keys_ignore_case(raw in "[a-zA-Z ]{1,20}") {
            prop_assert_eq!(caption_key(&raw.to_uppercase()), caption_key(&raw.to_lowercase()));
        }

        #[test]
        fn covers_is_a_partial_order(a in scope(), b in scope(), c in scope()) {
            prop_assert!(a.covers(&a));
            if a.covers(&b) && b.covers(&c) { prop_assert!(a.covers(&c)); }
            if a.covers(&b) && b.covers(&a) { prop_assert_eq!(&a, &b); }
        }

        #[test]
        fn join_is_the_least_upper_bound(a in scope(), b in scope(), c in scope()) {
            let j = b.join(&c);
            prop_assert!(j.covers(&b) && j.covers(&c));
            prop_assert_eq!(a.covers(&j), a.covers(&b) && a.covers(&c));
        }

        /// A wider scope admits every client a narrower one admits.
        #[test]
        fn covering_admits_more(a in scope(), b in scope(), client in proptest::collection::vec(1i64..6, 0..3)) {
            if a.covers(&b) && b.admits(&client) {
                prop_assert!(a.admits(&client));
            }
        }

        /// A non-administrator is unscoped exactly when no tag is set anywhere: a tagless
        /// group adds nothing, so joining one never widens a scoped member.
        #[test]
        fn unscoped_only_without_any_tag(own in proptest::collection::vec(1i64..6, 0..3),
                                         groups in proptest::collection::vec(1i64..6, 0..3)) {
            let scope = ClientScope::of_user(&own, &groups, false);
            prop_assert_eq!(scope.is_all(), own.is_empty() && groups.is_empty());
            for t in own.iter().chain(&groups) {
                prop_assert!(scope.includes_tag(*t));
            }
        }
    }

    #[test]
    fn administrators_are_unscoped_unless_their_own_field_narrows_them() {
        assert_eq!(ClientScope::of_user(&[], &[3], true), ClientScope::All);
        assert_eq!(
            ClientScope::of_user(&[2], &[3], true),
            ClientScope::Tags([2].into())
        );
        assert_eq!(
            ClientScope::of_user(&[], &[3, 4], false),
            ClientScope::Tags([3, 4].into())
        );
        assert_eq!(ClientScope::of_user(&[], &[], false), ClientScope::All);
        assert!(!ClientScope::none().admits(&[1]));
        assert!(ClientScope::All.admits(&[]));
    }

    #[test]
    fn captions() {
        assert_eq!(parse_caption("  EU   desk "), Ok("EU desk".into()));
        assert_eq!(parse_caption(" "), Err(CaptionError::Empty));
        assert_eq!(parse_caption("a,b"), Err(CaptionError::Forbidden));
        assert_eq!(parse_caption(&"x".repeat(41)), Err(CaptionError::TooLong));
    }
}
