//! What an event-log row says: the category and action columns, the human event name, the
//! target, and the changed fields. Built by the use cases, written by the store in the same
//! transaction as the change it records. Never holds a password, code or session id.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Auth,
    Users,
    Groups,
    Clients,
    Settings,
    Sessions,
    System,
}

impl Category {
    pub fn code(self) -> &'static str {
        match self {
            Category::Auth => "auth",
            Category::Users => "users",
            Category::Groups => "groups",
            Category::Clients => "clients",
            Category::Settings => "settings",
            Category::Sessions => "sessions",
            Category::System => "system",
        }
    }
}

/// A category code in words, for the event log's filter and column (`auth` → "Sign-in").
/// Codes this version doesn't know are shown as they are.
pub fn category_label(code: &str) -> &str {
    match code {
        "auth" => "Sign-in",
        "users" => "Users",
        "groups" => "Groups",
        "clients" => "Clients",
        "settings" => "Settings",
        "sessions" => "Sessions",
        "system" => "System",
        other => other,
    }
}

/// An event's action in words, with what it acted on: `UPDATE` in `users` → "Changed user",
/// `SIGN_IN` → "Signed in". The stored codes stay in exports and the API.
pub fn action_words(category: &str, action: &str) -> String {
    let thing = match category {
        "users" => " user",
        "groups" => " group",
        "clients" => " client",
        "settings" => " settings",
        "sessions" => " session",
        _ => "",
    };
    let verb = match action {
        "SIGN_IN" => return "Signed in".into(),
        "SIGN_OUT" => return "Signed out".into(),
        "REFUSED" => return "Refused".into(),
        "ADD" => "Added",
        "UPDATE" => "Changed",
        "DELETE" => "Deleted",
        "SEND" => return "Sent email".into(),
        "EXPORT" => "Exported",
        "IMPORT" => "Imported",
        other => return other.to_string(),
    };
    let plural = matches!(action, "EXPORT" | "IMPORT") && thing != " settings";
    format!(
        "{verb}{thing}{}",
        if plural && !thing.is_empty() { "s" } else { "" }
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Add,
    Update,
    Delete,
    SignIn,
    SignOut,
    Send,
    Export,
    Import,
    Refused,
}

impl AuditAction {
    pub fn code(self) -> &'static str {
        match self {
            AuditAction::Add => "ADD",
            AuditAction::Update => "UPDATE",
            AuditAction::Delete => "DELETE",
            AuditAction::SignIn => "SIGN_IN",
            AuditAction::SignOut => "SIGN_OUT",
            AuditAction::Send => "SEND",
            AuditAction::Export => "EXPORT",
            AuditAction::Import => "IMPORT",
            AuditAction::Refused => "REFUSED",
        }
    }
}

/// The kind of client personal data a changed value is. It is part of the change from the
/// moment the event is built (see [`Event::personal_change`]), so a viewer with Mask data on
/// gets it masked by the matching rule, whatever the field is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonalKind {
    Name,
    Email,
    Phone,
}

impl PersonalKind {
    pub fn code(self) -> &'static str {
        match self {
            PersonalKind::Name => "name",
            PersonalKind::Email => "email",
            PersonalKind::Phone => "phone",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [PersonalKind::Name, PersonalKind::Email, PersonalKind::Phone]
            .into_iter()
            .find(|k| k.code() == code)
    }

    /// The masking rule for this kind (an empty value stays empty).
    pub fn mask(self, value: &str) -> String {
        if value.is_empty() {
            return String::new();
        }
        match self {
            PersonalKind::Name => crate::masking::name(value),
            PersonalKind::Email => crate::masking::email(value),
            PersonalKind::Phone => crate::masking::phone(value),
        }
    }
}

/// One changed field: before → after (both already safe to show: never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub field: String,
    pub before: String,
    pub after: String,
    /// Client personal data, masked for viewers with Mask data on.
    pub personal: Option<PersonalKind>,
}

/// An event about to be written. Who did it and from where is added by the use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub category: Category,
    pub action: AuditAction,
    pub event: String,
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    pub target_label: Option<String>,
    pub changes: Vec<Change>,
}

impl Event {
    pub fn new(category: Category, action: AuditAction, event: impl Into<String>) -> Self {
        Self {
            category,
            action,
            event: event.into(),
            target_type: None,
            target_id: None,
            target_label: None,
            changes: Vec::new(),
        }
    }

    pub fn target(mut self, kind: &str, id: i64, label: impl Into<String>) -> Self {
        self.target_type = Some(kind.to_string());
        self.target_id = Some(id);
        self.target_label = Some(label.into());
        self
    }

    pub fn change(self, field: &str, before: impl Into<String>, after: impl Into<String>) -> Self {
        self.push(field, before.into(), after.into(), None)
    }

    /// A change of client personal data of the given kind.
    pub fn personal_change(
        self,
        field: &str,
        kind: PersonalKind,
        before: impl Into<String>,
        after: impl Into<String>,
    ) -> Self {
        self.push(field, before.into(), after.into(), Some(kind))
    }

    fn push(
        mut self,
        field: &str,
        before: String,
        after: String,
        personal: Option<PersonalKind>,
    ) -> Self {
        if before != after {
            self.changes.push(Change {
                field: field.to_string(),
                before,
                after,
                personal,
            });
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_as_words() {
        assert_eq!(action_words("auth", "SIGN_IN"), "Signed in");
        assert_eq!(action_words("users", "UPDATE"), "Changed user");
        assert_eq!(action_words("clients", "EXPORT"), "Exported clients");
        assert_eq!(action_words("groups", "ADD"), "Added group");
        assert_eq!(action_words("system", "NEW_THING"), "NEW_THING");
        assert_eq!(category_label("auth"), "Sign-in");
    }
}
