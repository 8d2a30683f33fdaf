//! What every signed-in page shows around its content: the top bar, the left menu (entries
//! appear only with the permission to open them, the current one marked), the breadcrumbs and
//! the flash message.

use app::Actor;
use domain::{Action, Section};

#[derive(Clone)]
pub struct Layout {
    pub email: String,
    pub csrf: String,
    pub flash: Option<String>,
    pub has_smtp: bool,
    pub can_clients: bool,
    pub can_tags: bool,
    pub can_users: bool,
    pub can_groups: bool,
    pub can_settings: bool,
    pub can_events: bool,
    /// The profile menu's entry: "Enable 2FA" without a second factor, else
    /// "Two-factor authentication".
    pub has_two_factor: bool,
    /// The "Enable 2FA" prompt of an account without 2FA (until dismissed).
    pub prompt_two_factor: bool,
    /// The request's path: which menu entry is current, and the breadcrumbs.
    pub path: String,
}

/// One step of the breadcrumbs; `href` is `None` for a heading that is not a page (System) and
/// for the current page.
pub struct Crumb {
    pub label: String,
    pub href: Option<String>,
}

/// The menu's pages, for finding the current one (the longest that the path starts with).
const MENU: [&str; 7] = [
    "/",
    "/clients",
    "/clients/tags",
    "/users",
    "/groups",
    "/events",
    "/settings",
];

impl Layout {
    pub fn new(actor: &Actor, csrf: String, flash: Option<String>, has_smtp: bool) -> Self {
        Self {
            email: actor.email().to_string(),
            csrf,
            flash,
            has_smtp,
            can_clients: actor.can(Section::Clients, Action::View),
            can_tags: actor.can(Section::ClientTags, Action::View),
            can_users: actor.can(Section::Users, Action::View),
            can_groups: actor.can(Section::Groups, Action::View),
            can_settings: actor.can(Section::Settings, Action::View),
            can_events: actor.can(Section::EventLog, Action::View),
            has_two_factor: actor.two_factor() != domain::TwoFactor::Disabled,
            prompt_two_factor: false,
            path: "/".into(),
        }
    }

    /// The menu entry for this page, if it is under one.
    fn current(&self) -> Option<&'static str> {
        MENU.into_iter()
            .filter(|m| {
                *m == "/" && self.path == "/"
                    || *m != "/" && (self.path == *m || self.path.starts_with(&format!("{m}/")))
            })
            .max_by_key(|m| m.len())
    }

    /// `aria-current="page"` for the menu entry `href` when it is the current page's.
    pub fn aria_current(&self, href: &str) -> &'static str {
        if self.current() == Some(href) {
            "page"
        } else {
            "false"
        }
    }

    /// The way from the menu to this page, e.g. System › Users › Users › Create user.
    pub fn breadcrumbs(&self) -> Vec<Crumb> {
        breadcrumbs(&self.path)
    }
}

fn crumb(label: &str, href: Option<&str>) -> Crumb {
    Crumb {
        label: label.to_string(),
        href: href.map(str::to_string),
    }
}

/// The breadcrumbs of a path; the last one is the page itself and has no link.
pub fn breadcrumbs(path: &str) -> Vec<Crumb> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut out = match parts[0] {
        "clients" => vec![crumb("Clients", Some("/clients"))],
        "users" => vec![
            crumb("System", None),
            crumb("Users", None),
            crumb("Users", Some("/users")),
        ],
        "groups" => vec![
            crumb("System", None),
            crumb("Users", None),
            crumb("Groups", Some("/groups")),
        ],
        "events" => vec![crumb("System", None), crumb("Event log", Some("/events"))],
        "settings" => vec![crumb("System", None), crumb("Settings", Some("/settings"))],
        "profile" => vec![crumb("Profile", Some("/profile"))],
        "two-factor" => vec![
            crumb("Profile", Some("/profile")),
            crumb("Two-factor authentication", Some("/two-factor")),
        ],
        _ => vec![crumb("Dashboard", Some("/"))],
    };
    let mut sub = parts.iter().skip(1).copied();
    let mut prefix = format!("/{}", parts[0]);
    if parts[0] == "clients" && parts.get(1) == Some(&"tags") {
        out.push(crumb("Tags", Some("/clients/tags")));
        sub.next();
        prefix.push_str("/tags");
    }
    let single = |s: &str| match s {
        "tags" => "Tag",
        "users" => "User",
        "groups" => "Group",
        "clients" => "Client",
        _ => "Item",
    };
    let kind = if prefix.ends_with("/tags") {
        "tags"
    } else {
        parts[0]
    };
    for seg in sub {
        prefix.push('/');
        prefix.push_str(seg);
        let is_id = !seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit());
        if seg == "two-factor" && kind == "users" {
            continue;
        }
        let label = match seg {
            "new" => format!("Create {}", single(kind).to_lowercase()),
            "import" => "Import".into(),
            "export" => "Export".into(),
            "bulk" => "Edit selected clients".into(),
            "edit" => "Edit".into(),
            "block" => "Block".into(),
            "delete" => "Delete".into(),
            "reset-password" => "Reset password".into(),
            "two-factor" => "Two-factor authentication".into(),
            "disable" => "Disable 2FA".into(),
            "setup" => "Set up".into(),
            "totp" => "TOTP".into(),
            "passkey" => "Passkey".into(),
            "email" => "Email codes".into(),
            id if is_id => format!("{} {id}", single(kind)),
            other => other.replace('-', " "),
        };
        // Only a record's own page is linked: the steps between are not pages of their own.
        out.push(Crumb {
            label,
            href: is_id.then(|| prefix.clone()),
        });
    }
    if let Some(last) = out.last_mut() {
        last.href = None;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(path: &str) -> String {
        breadcrumbs(path)
            .iter()
            .map(|c| c.label.as_str())
            .collect::<Vec<_>>()
            .join(" › ")
    }

    #[test]
    fn crumbs_follow_the_menu() {
        assert_eq!(labels("/users"), "System › Users › Users");
        assert_eq!(labels("/users/new"), "System › Users › Users › Create user");
        assert_eq!(
            labels("/users/7/two-factor/disable"),
            "System › Users › Users › User 7 › Disable 2FA"
        );
        assert_eq!(labels("/clients/tags/3"), "Clients › Tags › Tag 3");
        assert_eq!(labels("/events"), "System › Event log");
        assert_eq!(labels("/"), "Dashboard");
        let c = breadcrumbs("/groups/2");
        assert_eq!(c[2].href.as_deref(), Some("/groups"));
        assert!(c[3].href.is_none(), "the page itself is not a link");
    }
}
