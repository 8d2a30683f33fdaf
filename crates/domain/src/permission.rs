//! The permission catalogue: menu sections × actions. Groups hold permissions; a user holds the
//! union of their groups' permissions. Administrators is special: it holds the whole catalogue,
//! including permissions added in later versions, because it is resolved here and never stored.

use std::collections::BTreeSet;
use std::fmt;

crate::value_set! {
    /// A section of the menu, in the order the Rights matrix shows them (alphabetical).
    pub enum Section {
        ClientTags = ("client_tags", "Client tags"),
        Clients = ("clients", "Clients"),
        EventLog = ("event_log", "Event log"),
        Groups = ("groups", "Groups"),
        Settings = ("settings", "Settings"),
        Users = ("users", "Users"),
    }
}

crate::value_set! {
    /// What a permission lets one do in a section.
    pub enum Action {
        View = ("view", "View"),
        Create = ("create", "Create"),
        Update = ("update", "Update"),
        Delete = ("delete", "Delete"),
        Export = ("export", "Export"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    pub section: Section,
    pub action: Action,
}

impl Section {
    /// The actions that exist for this section; "Export" only where there is something to export.
    pub fn actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            Section::Clients => &[View, Create, Update, Delete, Export],
            Section::EventLog => &[View, Export],
            Section::Settings => &[View, Update],
            Section::ClientTags | Section::Groups | Section::Users => {
                &[View, Create, Update, Delete]
            }
        }
    }
}

impl Permission {
    pub const fn new(section: Section, action: Action) -> Self {
        Self { section, action }
    }

    /// Every permission that exists, in catalogue order.
    pub fn catalogue() -> impl Iterator<Item = Permission> {
        Section::ALL
            .into_iter()
            .flat_map(|s| s.actions().iter().map(move |&a| Permission::new(s, a)))
    }

    /// The stable code stored in the database and used by the API, e.g. `users.create`.
    pub fn code(self) -> String {
        format!("{}.{}", self.section.code(), self.action.code())
    }

    /// Parses a code; unknown codes are refused so an import can't smuggle in anything new.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::catalogue().find(|p| p.code() == code)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.section.label(), self.action.label())
    }
}

/// A set of permissions with the one law the escalation guard needs: `granted ⊆ held`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet(BTreeSet<Permission>);

impl PermissionSet {
    pub fn all() -> Self {
        Self(Permission::catalogue().collect())
    }

    pub fn has(&self, p: Permission) -> bool {
        self.0.contains(&p)
    }

    pub fn can(&self, section: Section, action: Action) -> bool {
        self.has(Permission::new(section, action))
    }

    pub fn covers(&self, other: &PermissionSet) -> bool {
        other.0.is_subset(&self.0)
    }

    /// What `other` holds that `self` does not — named in an escalation refusal.
    pub fn missing(&self, other: &PermissionSet) -> Vec<Permission> {
        other.0.difference(&self.0).copied().collect()
    }

    pub fn insert(&mut self, p: Permission) {
        self.0.insert(p);
    }

    pub fn extend(&mut self, other: &PermissionSet) {
        self.0.extend(other.0.iter().copied());
    }

    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn codes(&self) -> Vec<String> {
        self.iter().map(Permission::code).collect()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_round_trip() {
        for p in Permission::catalogue() {
            assert_eq!(Permission::from_code(&p.code()), Some(p));
        }
        assert_eq!(Permission::from_code("users.destroy_everything"), None);
    }

    fn subset() -> impl Strategy<Value = PermissionSet> {
        let all: Vec<Permission> = Permission::catalogue().collect();
        proptest::sample::subsequence(all.clone(), 0..=all.len()).prop_map(PermissionSet::from_iter)
    }

    proptest! {
        #[test]
        fn covers_is_subset(held in subset(), granted in subset()) {
            let ok = held.covers(&granted);
            prop_assert_eq!(ok, granted.iter().all(|p| held.has(p)));
            prop_assert_eq!(ok, held.missing(&granted).is_empty());
            prop_assert!(PermissionSet::all().covers(&granted));
        }
    }
}
