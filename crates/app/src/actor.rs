//! The acting user of a request. A use case only proceeds through [`Actor::require`], which
//! checks the permission server-side and refuses everything while a forced password change is due.
//! What bounds the actor is one [`Authority`]; every escalation guard compares it with the
//! authority an operation would create or touch ([`crate::App::guard_covers`]).

use crate::AppError;
use domain::{Action, Authority, ClientScope, PersonalData, Section};
use store::{Principal, UserRecord};

/// Built only by the app (sign-in, API tokens), so the web layer can read who is asking but
/// never the stored record behind it (its password hash stays here).
#[derive(Clone, Debug)]
pub struct Actor {
    pub(crate) user: UserRecord,
    pub(crate) is_admin: bool,
    pub(crate) authority: Authority,
    /// Hash of the session this request came with (`None` for the CLI and API tokens).
    pub(crate) session_hash: Option<String>,
    /// The API token this request came with, if any.
    pub(crate) token_id: Option<i64>,
    pub(crate) ip: Option<String>,
    /// The Idempotency-Key scope of the API request (see `App::claim_idempotency`): the change
    /// this request makes marks it carried out in its own transaction.
    pub(crate) idempotency: Option<String>,
    /// "Require 2FA" is on and this account has none: everything but enrolling is refused.
    pub(crate) must_enrol: bool,
}

impl Actor {
    pub(crate) fn new(
        principal: Principal,
        session_hash: Option<String>,
        token_id: Option<i64>,
        ip: Option<String>,
    ) -> Self {
        let authority = authority_of(&principal);
        Self {
            user: principal.user,
            is_admin: principal.is_admin,
            authority,
            session_hash,
            token_id,
            ip,
            idempotency: None,
            must_enrol: false,
        }
    }

    /// This actor acting for an API request that claimed an Idempotency-Key.
    pub fn with_idempotency(mut self, scope: String) -> Self {
        self.idempotency = Some(scope);
        self
    }

    pub fn id(&self) -> i64 {
        self.user.id
    }

    pub fn email(&self) -> &str {
        &self.user.email
    }

    pub fn name(&self) -> &str {
        &self.user.name
    }

    pub fn is_admin(&self) -> bool {
        self.is_admin
    }

    pub fn must_change_password(&self) -> bool {
        self.user.must_change_password
    }

    /// "Require 2FA" is on and this account has no second factor yet.
    pub fn must_enrol(&self) -> bool {
        self.must_enrol
    }

    /// This account's two-factor method.
    pub fn two_factor(&self) -> domain::TwoFactor {
        self.user.two_factor
    }

    /// The gate of one's own two-factor set-up: open while enrolment is due (that is what it
    /// is for), closed while a forced password change is due.
    pub fn require_self_service(&self) -> Result<(), AppError> {
        if self.user.must_change_password {
            return Err(AppError::PasswordChangeRequired);
        }
        Ok(())
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Which clients this actor sees and acts on (their Allowed Client Tags).
    pub fn client_scope(&self) -> &ClientScope {
        self.authority.client_scope()
    }

    /// "Mask data": client personal data reaches this actor masked.
    pub fn masked(&self) -> bool {
        self.authority.personal_data().is_masked()
    }

    pub fn token_id(&self) -> Option<i64> {
        self.token_id
    }

    /// The actor's own account, as anyone else would see it (no password hash).
    pub fn account(&self) -> crate::users::UserView {
        self.user.clone().into()
    }

    /// A stable key for the credential this request came with (its token or its session),
    /// for per-credential rate limits; it reveals neither.
    pub fn credential_key(&self) -> String {
        match (&self.token_id, &self.session_hash) {
            (Some(id), _) => format!("token:{id}"),
            (None, Some(hash)) => format!("session:{hash}"),
            (None, None) => format!("user:{}", self.user.id),
        }
    }

    /// True for the session this request came with.
    pub(crate) fn is_current_session(&self, session: &store::SessionRecord) -> bool {
        self.session_hash.as_deref() == Some(session.id_hash.as_str())
    }

    pub fn can(&self, section: Section, action: Action) -> bool {
        self.authority.permissions().can(section, action)
    }

    /// The gate of every use case: the permission, no pending forced password change, and no
    /// two-factor enrolment due.
    pub fn require(&self, section: Section, action: Action) -> Result<(), AppError> {
        if self.user.must_change_password {
            return Err(AppError::PasswordChangeRequired);
        }
        if self.must_enrol {
            return Err(AppError::TwoFactorRequired);
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

/// A user's authority: the join of what their groups grant and their own account's settings,
/// over the clients their Allowed Client Tags admit.
pub(crate) fn authority_of(principal: &Principal) -> Authority {
    let grant = groups_grant(principal.is_admin, principal.permissions.clone());
    user_authority(&grant, principal.user.mask_data).scoped(ClientScope::of_user(
        &principal.scope.own,
        &principal.scope.groups,
        principal.is_admin,
    ))
}

/// What a group grants as far as the order of authorities goes: its rights over the clients its
/// Allowed Client Tags name, all of them when it names none. A scoped actor can't create or
/// change a tagless group, which would leave its members' scope to their other groups.
pub(crate) fn group_grant(permissions: domain::PermissionSet, allowed_tags: &[i64]) -> Authority {
    Authority::granted_by_group(permissions)
        .scoped(ClientScope::of_field(allowed_tags.iter().copied()))
}

/// What a user's groups grant together: their permissions, and for a member of Administrators
/// every permission including later ones.
pub(crate) fn groups_grant(is_admin: bool, permissions: domain::PermissionSet) -> Authority {
    let grant = Authority::granted_by_group(permissions);
    if is_admin {
        grant.join(&Authority::administrators())
    } else {
        grant
    }
}

/// The authority a user with this groups' grant and this "Mask data" has (or would have).
pub(crate) fn user_authority(groups_grant: &Authority, mask_data: bool) -> Authority {
    groups_grant.join(&Authority::of_account(PersonalData::from_mask_data(
        mask_data,
    )))
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

    /// The escalation guard, the one comparison every change of who-may-do-what makes:
    /// `actor` must cover `other` (the authority it would create, or the account or group it
    /// would touch). A refusal is a 403 that says what `other` holds beyond the actor, and an
    /// "Action refused" event.
    pub(crate) async fn guard_covers(
        &self,
        actor: &Actor,
        other: &Authority,
        refusal: &str,
        attempted: &str,
    ) -> Result<(), AppError> {
        let beyond = actor.authority.beyond(other);
        if beyond.is_empty() {
            return Ok(());
        }
        let reason = format!("{refusal}: {}", beyond.join("; "));
        self.refused(actor, attempted, &reason).await;
        Err(AppError::Forbidden(reason))
    }

    /// Refuses, with an event, an action the actor may not take on their own account.
    pub(crate) async fn refuse_own(
        &self,
        actor: &Actor,
        attempted: &str,
        reason: &str,
    ) -> AppError {
        self.refused(actor, attempted, reason).await;
        AppError::Forbidden(reason.to_string())
    }
}
