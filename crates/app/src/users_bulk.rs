//! Bulk actions on Users: the chosen action is the ordinary use case run for each chosen user,
//! so every guard applies to each one and each change writes its own event. The answer says,
//! per user, whether they were changed, already as asked, or refused and why.

use crate::users::UserPatch;
use crate::{Actor, App, AppError, UserQuery};
use domain::{Action, Section, TwoFactor, UserStatus};

/// At most this many users in one bulk action (the "all matching" choice says so beyond it).
pub const MAX_BULK_USERS: i64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserBulkAction {
    Enable,
    Disable,
    AddToGroup(i64),
    RemoveFromGroup(i64),
    SignOutEverywhere,
    DisableTwoFactor,
}

impl UserBulkAction {
    /// Parses the form's action and group; `None` for anything else.
    pub fn parse(action: &str, group: Option<i64>) -> Option<Self> {
        Some(match (action, group) {
            ("enable", _) => Self::Enable,
            ("disable", _) => Self::Disable,
            ("add_group", Some(g)) => Self::AddToGroup(g),
            ("remove_group", Some(g)) => Self::RemoveFromGroup(g),
            ("sign_out", _) => Self::SignOutEverywhere,
            ("disable_2fa", _) => Self::DisableTwoFactor,
            _ => return None,
        })
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Enable => "enable",
            Self::Disable => "disable",
            Self::AddToGroup(_) => "add_group",
            Self::RemoveFromGroup(_) => "remove_group",
            Self::SignOutEverywhere => "sign_out",
            Self::DisableTwoFactor => "disable_2fa",
        }
    }

    pub fn group(self) -> Option<i64> {
        match self {
            Self::AddToGroup(g) | Self::RemoveFromGroup(g) => Some(g),
            _ => None,
        }
    }
}

/// What happened to one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkResult {
    Changed,
    /// Already as asked: nothing written, no event.
    Unchanged,
    Refused(String),
}

#[derive(Debug, Clone)]
pub struct BulkOutcome {
    pub id: i64,
    pub email: String,
    pub result: BulkResult,
}

impl App {
    /// The ids of the users matching the Users list's filters ("Select all matching"), at most
    /// [`MAX_BULK_USERS`], and how many match in all.
    pub async fn matching_user_ids(
        &self,
        actor: &Actor,
        query: &UserQuery,
    ) -> Result<(Vec<i64>, i64), AppError> {
        let query = UserQuery {
            offset: 0,
            limit: MAX_BULK_USERS,
            ..query.clone()
        };
        let page = self.list_users(actor, &query).await?;
        Ok((page.items.iter().map(|u| u.id).collect(), page.total))
    }

    /// Runs `action` for each of `ids`. Disable 2FA needs the actor's password, checked once.
    pub async fn bulk_users(
        &self,
        actor: &Actor,
        ids: &[i64],
        action: UserBulkAction,
        actor_password: &str,
    ) -> Result<Vec<BulkOutcome>, AppError> {
        self.authorize(
            actor,
            Section::Users,
            Action::Update,
            "change users in bulk",
        )
        .await?;
        if ids.is_empty() {
            return Err(AppError::field("id", "Tick at least one user"));
        }
        if ids.len() as i64 > MAX_BULK_USERS {
            return Err(AppError::field(
                "id",
                format!("At most {MAX_BULK_USERS} users at once: narrow the filters"),
            ));
        }
        if let Some(g) = action.group() {
            if !self.store.group_refs().await?.iter().any(|r| r.id == g) {
                return Err(AppError::field("group", "Choose a group from the list"));
            }
        }
        if action == UserBulkAction::DisableTwoFactor
            && !self
                .hasher
                .verify(actor_password, &actor.user.password_hash)
                .await
                .ok
        {
            return Err(AppError::field(
                "actor_password",
                "Your password is not correct",
            ));
        }
        let mut out = Vec::with_capacity(ids.len());
        let mut seen = std::collections::BTreeSet::new();
        for &id in ids {
            if !seen.insert(id) {
                continue;
            }
            let Some(user) = self.store.user_by_id(id).await? else {
                out.push(BulkOutcome {
                    id,
                    email: format!("user {id}"),
                    result: BulkResult::Refused("no longer exists".into()),
                });
                continue;
            };
            let groups: Vec<i64> = user.groups.iter().map(|g| g.id).collect();
            let status = |s: UserStatus| UserPatch {
                status: Some(s.code().into()),
                ..Default::default()
            };
            let in_groups = |ids: Vec<i64>| UserPatch {
                group_ids: Some(ids),
                ..Default::default()
            };
            let done = match action {
                UserBulkAction::Enable if user.status == UserStatus::Enabled => None,
                UserBulkAction::Disable if user.status == UserStatus::Disabled => None,
                UserBulkAction::Enable => Some(
                    self.update_user(actor, id, &status(UserStatus::Enabled), None)
                        .await,
                ),
                UserBulkAction::Disable => Some(
                    self.update_user(actor, id, &status(UserStatus::Disabled), None)
                        .await,
                ),
                UserBulkAction::AddToGroup(g) if groups.contains(&g) => None,
                UserBulkAction::AddToGroup(g) => {
                    let mut more = groups.clone();
                    more.push(g);
                    Some(self.update_user(actor, id, &in_groups(more), None).await)
                }
                UserBulkAction::RemoveFromGroup(g) if !groups.contains(&g) => None,
                UserBulkAction::RemoveFromGroup(g) => {
                    let fewer = groups.iter().copied().filter(|x| *x != g).collect();
                    Some(self.update_user(actor, id, &in_groups(fewer), None).await)
                }
                UserBulkAction::SignOutEverywhere => {
                    Some(self.sign_out_everywhere(actor, id).await)
                }
                UserBulkAction::DisableTwoFactor if user.two_factor == TwoFactor::Disabled => None,
                UserBulkAction::DisableTwoFactor => {
                    Some(self.set_two_factor_proven(actor, id, false).await)
                }
            };
            let result = match done {
                None => BulkResult::Unchanged,
                Some(Ok(())) => BulkResult::Changed,
                Some(Err(e)) => BulkResult::Refused(reason(e)?),
            };
            out.push(BulkOutcome {
                id,
                email: user.email.clone(),
                result,
            });
        }
        Ok(out)
    }
}

/// Why one user was refused, in words; an error that is not about that user (the database
/// failing) stops the whole action.
fn reason(e: AppError) -> Result<String, AppError> {
    Ok(match e {
        AppError::Forbidden(m) | AppError::Conflict(m) => m,
        AppError::Invalid(fields) => fields.values().cloned().collect::<Vec<_>>().join("; "),
        AppError::NotFound => "no longer exists".into(),
        AppError::Stale(_) => "changed by someone else meanwhile; try again".into(),
        other => return Err(other),
    })
}
