//! Everything that bounds a staff member, as one value with a partial order. Every escalation
//! guard is one comparison: `actor.covers(&result)`. Nobody makes a user, a group or an account
//! stronger than themself in any dimension, because "stronger" is defined here, once.
//!
//! Laws (property-tested below): `covers` is reflexive, transitive and antisymmetric, and
//! `a.covers(&b.join(&c))` exactly when `a` covers both `b` and `c`.
//!
//! The IP Whitelist is deliberately not a dimension: it restricts only its holder (issue 26), so
//! an office-only administrator may still create or edit an account usable from anywhere; one's
//! own list can only narrow (`app::users`).
//!
//! Adding a dimension (as the client scope was): add a field,
//! give it an order in [`Authority::covers`], a least upper bound in [`Authority::join`] and a
//! sentence in [`Authority::beyond`]. Each of them destructures the value without `..`, so the
//! compiler refuses a new field until all three say how it compares.

use crate::{ClientScope, PermissionSet};

/// Whether client personal data (names, emails, phones) is shown as stored or masked.
/// `Masked` is weaker than `Unmasked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PersonalData {
    Masked,
    Unmasked,
}

impl PersonalData {
    /// The "Mask data" checkbox.
    pub fn from_mask_data(mask_data: bool) -> Self {
        if mask_data {
            PersonalData::Masked
        } else {
            PersonalData::Unmasked
        }
    }

    pub fn is_masked(self) -> bool {
        self == PersonalData::Masked
    }
}

/// What a person (or a group, or a person-to-be) may do and see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    permissions: PermissionSet,
    /// Member of Administrators: holds every permission, including ones later versions add,
    /// which no set of today's permissions covers.
    administrator: bool,
    personal_data: PersonalData,
    /// Which clients: all, or those carrying one of the Allowed Client Tags.
    client_scope: ClientScope,
}

impl Authority {
    /// An authority over every client; narrow it with [`Authority::scoped`].
    pub fn new(permissions: PermissionSet, personal_data: PersonalData) -> Self {
        Self {
            permissions,
            administrator: false,
            personal_data,
            client_scope: ClientScope::All,
        }
    }

    /// The same authority limited to these clients.
    pub fn scoped(self, client_scope: ClientScope) -> Self {
        Self {
            client_scope,
            ..self
        }
    }

    /// The built-in Administrators group's grant: every permission, now and later.
    pub fn administrators() -> Self {
        Self {
            permissions: PermissionSet::all(),
            administrator: true,
            personal_data: PersonalData::Masked,
            client_scope: ClientScope::none(),
        }
    }

    /// What a group grants its members: its permissions and nothing in any other dimension
    /// (the weakest value of each), so a member's permissions are the join of their groups'
    /// grants and their own account's settings. The client scope is not a join of grants (a
    /// tagless group must not widen a scoped member; see [`ClientScope::of_user`]): a user's
    /// authority gets it with [`Authority::scoped`].
    pub fn granted_by_group(permissions: PermissionSet) -> Self {
        Self::new(permissions, PersonalData::Masked).scoped(ClientScope::none())
    }

    /// What an account's own settings add to its groups' grants.
    pub fn of_account(personal_data: PersonalData) -> Self {
        Self::new(PermissionSet::default(), personal_data).scoped(ClientScope::none())
    }

    pub fn is_administrator(&self) -> bool {
        self.administrator
    }

    pub fn permissions(&self) -> &PermissionSet {
        &self.permissions
    }

    pub fn personal_data(&self) -> PersonalData {
        self.personal_data
    }

    pub fn client_scope(&self) -> &ClientScope {
        &self.client_scope
    }

    /// A covers B when A is at least as strong as B in every dimension.
    pub fn covers(&self, other: &Authority) -> bool {
        let Authority {
            permissions,
            administrator,
            personal_data,
            client_scope,
        } = other;
        self.permissions.covers(permissions)
            && self.administrator >= *administrator
            && self.personal_data >= *personal_data
            && self.client_scope.covers(client_scope)
    }

    /// The least upper bound: the weakest authority that covers both.
    pub fn join(&self, other: &Authority) -> Authority {
        let Authority {
            permissions,
            administrator,
            personal_data,
            client_scope,
        } = other;
        let mut joined = self.permissions.clone();
        joined.extend(permissions);
        Authority {
            permissions: joined,
            administrator: self.administrator || *administrator,
            personal_data: self.personal_data.max(*personal_data),
            client_scope: self.client_scope.join(client_scope),
        }
    }

    /// What `other` holds beyond `self`, one phrase per dimension, for a refusal's reason.
    /// Empty exactly when `self` covers `other`.
    pub fn beyond(&self, other: &Authority) -> Vec<String> {
        let Authority {
            permissions,
            administrator,
            personal_data,
            client_scope,
        } = other;
        let mut out = Vec::new();
        let missing = self.permissions.missing(permissions);
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
            out.push(format!("permissions you don't hold ({})", names.join(", ")));
        }
        if *administrator && !self.administrator {
            out.push("membership of Administrators (every permission, also future ones)".into());
        }
        if *personal_data > self.personal_data {
            out.push("unmasked client personal data (your Mask data is on)".to_string());
        }
        if !self.client_scope.covers(client_scope) {
            out.push(match client_scope {
                ClientScope::All => "every client (your Allowed Client Tags limit you)".to_string(),
                ClientScope::Tags(_) => "client tags outside your Allowed Client Tags".to_string(),
            });
        }
        out
    }
}

impl FromIterator<Authority> for Authority {
    /// The join of many (a user in several groups); the empty join is the weakest authority.
    fn from_iter<I: IntoIterator<Item = Authority>>(iter: I) -> Self {
        iter.into_iter().fold(
            Authority::new(PermissionSet::default(), PersonalData::Masked)
                .scoped(ClientScope::none()),
            |a, b| a.join(&b),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Permission;
    use proptest::prelude::*;

    fn authority() -> impl Strategy<Value = Authority> {
        let all: Vec<Permission> = Permission::catalogue().collect();
        (
            proptest::sample::subsequence(all.clone(), 0..=all.len()),
            any::<bool>(),
            any::<bool>(),
            crate::tag::tests::scope(),
        )
            .prop_map(|(p, masked, admin, scope)| {
                let a = Authority::new(
                    PermissionSet::from_iter(p),
                    PersonalData::from_mask_data(masked),
                )
                .scoped(scope);
                if admin {
                    a.join(&Authority::administrators())
                } else {
                    a
                }
            })
    }

    proptest! {
        #[test]
        fn covers_is_reflexive(a in authority()) {
            prop_assert!(a.covers(&a));
        }

        #[test]
        fn covers_is_transitive(a in authority(), b in authority(), c in authority()) {
            if a.covers(&b) && b.covers(&c) {
                prop_assert!(a.covers(&c));
            }
        }

        #[test]
        fn covers_is_antisymmetric(a in authority(), b in authority()) {
            if a.covers(&b) && b.covers(&a) {
                prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn covering_a_join_is_covering_each(a in authority(), b in authority(), c in authority()) {
            let j = b.join(&c);
            prop_assert_eq!(a.covers(&j), a.covers(&b) && a.covers(&c));
            prop_assert!(j.covers(&b) && j.covers(&c));
        }

        #[test]
        fn beyond_is_empty_exactly_when_covered(a in authority(), b in authority()) {
            prop_assert_eq!(a.beyond(&b).is_empty(), a.covers(&b));
        }

        #[test]
        fn a_masked_authority_never_covers_an_unmasked_one(a in authority(), b in authority()) {
            let masked = Authority::new(a.permissions().clone(), PersonalData::Masked);
            let unmasked = Authority::new(b.permissions().clone(), PersonalData::Unmasked);
            prop_assert!(!masked.covers(&unmasked));
        }
    }

    #[test]
    fn a_user_is_the_join_of_their_groups_and_their_account() {
        let view = PermissionSet::from_iter([Permission::new(
            crate::Section::Clients,
            crate::Action::View,
        )]);
        let user: Authority = [
            Authority::granted_by_group(view.clone()),
            Authority::of_account(PersonalData::Unmasked),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            user,
            Authority::new(view, PersonalData::Unmasked).scoped(ClientScope::none())
        );
        let masked_admin = Authority::administrators();
        assert!(!masked_admin.covers(&user));
        assert_eq!(
            masked_admin.beyond(&user),
            vec!["unmasked client personal data (your Mask data is on)".to_string()]
        );
    }

    #[test]
    fn every_current_permission_does_not_cover_an_administrator() {
        let everything = Authority::new(PermissionSet::all(), PersonalData::Unmasked);
        let admin = Authority::administrators()
            .join(&Authority::of_account(PersonalData::Unmasked))
            .scoped(ClientScope::All);
        assert!(!everything.covers(&admin));
        assert!(admin.covers(&everything));
    }
}
