//! What every signed-in page shows around its content: the top bar, the left menu (entries
//! appear only with the permission to open them) and the flash message.

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
}

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
        }
    }
}
