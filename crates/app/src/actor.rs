//! The acting user of a request. A use case only proceeds through [`Actor::require`], which
//! checks the permission server-side and refuses everything while a forced password change is due.

use crate::AppError;
use domain::{Action, PermissionSet, Section};
use store::UserRecord;

#[derive(Clone, Debug)]
pub struct Actor {
    pub user: UserRecord,
    pub is_admin: bool,
    pub permissions: PermissionSet,
    /// Hash of the session this request came with (`None` for the CLI and API tokens).
    pub session_hash: Option<String>,
    /// The API token this request came with, if any.
    pub token_id: Option<i64>,
    pub ip: Option<String>,
}

impl Actor {
    pub fn id(&self) -> i64 {
        self.user.id
    }

    pub fn can(&self, section: Section, action: Action) -> bool {
        self.permissions.can(section, action)
    }

    /// The gate of every use case: the permission, and no pending forced password change.
    pub fn require(&self, section: Section, action: Action) -> Result<(), AppError> {
        if self.user.must_change_password {
            return Err(AppError::PasswordChangeRequired);
        }
        if !self.can(section, action) {
            return Err(AppError::Forbidden(format!(
                "You don't have the {} {} permission",
                section.label(),
                action.label()
            )));
        }
        Ok(())
    }

    /// Group captions, as recorded with each event ("actor's groups at the time").
    pub fn groups_label(&self) -> String {
        self.user
            .groups
            .iter()
            .map(|g| g.caption.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl crate::App {
    /// [`Actor::require`], with every refusal written to the event log with what was attempted.
    pub async fn authorize(
        &self,
        actor: &Actor,
        section: Section,
        action: Action,
        attempted: &str,
    ) -> Result<(), AppError> {
        match actor.require(section, action) {
            Err(AppError::Forbidden(reason)) => {
                self.refused(actor, attempted, &reason).await;
                Err(AppError::Forbidden(reason))
            }
            other => other,
        }
    }

    /// Records a refused action (403) in the event log.
    pub(crate) async fn refused(&self, actor: &Actor, attempted: &str, reason: &str) {
        use domain::audit::{AuditAction, Category, Event};
        let e = Event::new(Category::System, AuditAction::Refused, "Action refused")
            .change("attempted", "", attempted)
            .change("reason", "", reason);
        self.log(Some(actor), None, e).await;
    }

    /// The guard: `actor` may only grant what it holds.
    pub(crate) async fn guard_grant(
        &self,
        actor: &Actor,
        grants: &domain::PermissionSet,
        attempted: &str,
    ) -> Result<(), AppError> {
        let missing = actor.permissions.missing(grants);
        if missing.is_empty() {
            return Ok(());
        }
        let names = missing
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let reason = format!("You can't grant permissions you don't hold: {names}");
        self.refused(actor, attempted, &reason).await;
        Err(AppError::Forbidden(reason))
    }
}
