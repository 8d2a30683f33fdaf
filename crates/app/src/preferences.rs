//! What each staff member sets for themself in the interface: which columns a list shows.
//! Anyone signed in may set their own; nobody can read or set another's, and nothing here
//! widens what a list may show (the list's own use case decides what is in it).

use crate::{Actor, App, AppError};

/// The lists whose columns can be chosen, with every column code each one has.
pub const LIST_COLUMNS: [(&str, &[&str]); 3] = [
    (
        "users",
        &[
            "id",
            "name",
            "email",
            "allowed_tags",
            "status",
            "two_factor",
            "ip_whitelist",
            "groups",
            "creator",
            "created_at",
            "mask_data",
            "last_sign_in",
        ],
    ),
    (
        "clients",
        &[
            "name",
            "email",
            "phone",
            "country",
            "role",
            "status",
            "tags",
            "registered",
        ],
    ),
    (
        "events",
        &[
            "time",
            "actor",
            "actor_groups",
            "category",
            "action",
            "event",
            "target",
            "details",
            "ip",
        ],
    ),
];

fn known(list: &str) -> Result<&'static [&'static str], AppError> {
    LIST_COLUMNS
        .iter()
        .find(|(l, _)| *l == list)
        .map(|(_, c)| *c)
        .ok_or(AppError::NotFound)
}

impl App {
    /// The columns `list` shows for this actor, in the list's order: their saved choice, or
    /// every column when they never chose (or saved columns this version no longer has).
    pub async fn list_columns(
        &self,
        actor: &Actor,
        list: &str,
    ) -> Result<Vec<&'static str>, AppError> {
        let all = known(list)?;
        let saved = self
            .store
            .preference(actor.id(), &format!("{list}.columns"))
            .await?;
        let chosen: Vec<&'static str> = match saved {
            Some(v) => {
                let codes: Vec<&str> = v.split(',').collect();
                all.iter().copied().filter(|c| codes.contains(c)).collect()
            }
            None => Vec::new(),
        };
        Ok(if chosen.is_empty() {
            all.to_vec()
        } else {
            chosen
        })
    }

    /// Saves which columns `list` shows for this actor: at least one, each one the list has.
    pub async fn set_list_columns(
        &self,
        actor: &Actor,
        list: &str,
        chosen: &[&str],
    ) -> Result<(), AppError> {
        let all = known(list)?;
        if let Some(bad) = chosen.iter().find(|c| !all.contains(c)) {
            return Err(AppError::field(
                "columns",
                format!("There is no column {bad:?} in this list"),
            ));
        }
        let value: Vec<&str> = all.iter().copied().filter(|c| chosen.contains(c)).collect();
        if value.is_empty() {
            return Err(AppError::field("columns", "Choose at least one column"));
        }
        self.store
            .set_preference(actor.id(), &format!("{list}.columns"), &value.join(","))
            .await?;
        Ok(())
    }
}
