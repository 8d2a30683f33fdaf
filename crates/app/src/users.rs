//! System › Users › Users: listing, creating (the seed's flow), editing and the Actions menu.
//! The escalation guards live here, each one comparison of authorities: nobody creates or makes
//! a user stronger than themself in any dimension (permissions, unmasked data), nobody changes
//! an account their authority doesn't cover, nobody lifts a restriction on themself (status,
//! groups, Mask data, 2FA, IP Whitelist), and the last enabled unmasked administrator stays (the
//! store). An IP Whitelist restricts only its holder: anyone who may change an account may set
//! its list, and a holder may narrow their own but not widen or remove it.

use crate::actor::{groups_grant, user_authority};
use crate::concurrency::{
    check_version, is_retry, rejected, reservation_until, unchanged_since, until_settled, write,
};
use crate::mail::Mail;
use crate::tags::tag_captions;
use crate::{Actor, App, AppError, FieldErrors};
use domain::audit::{AuditAction, Category, Event};
use domain::password::Secret;
use domain::user::parse_name;
use domain::{
    password, Action, Authority, ClientScope, Email, IpWhitelist, PermissionSet, Section,
    Timestamp, TwoFactor, UserStatus,
};
use store::{Decision, GroupRef, NewUser, Page, TagRef, UserChange, UserQuery, UserRecord};

/// A Back Office user as the use cases hand it out: the stored record without its password
/// hash, so no page or API answer can show one.
#[derive(Debug, Clone)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub status: UserStatus,
    pub two_factor: TwoFactor,
    pub mask_data: bool,
    pub ip_whitelist: IpWhitelist,
    pub must_change_password: bool,
    pub created_by: Option<i64>,
    pub created_by_email: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_sign_in_at: Option<Timestamp>,
    pub failed_attempts: i64,
    pub locked_until: Option<Timestamp>,
    pub groups: Vec<GroupRef>,
    /// The account's own Allowed Client Tags (its groups may add more).
    pub allowed_tags: Vec<TagRef>,
    /// What an edit of this copy is based on (the form's hidden field, the API's ETag).
    pub version: i64,
}

impl UserView {
    pub fn is_locked(&self, now: Timestamp) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        let UserRecord {
            id,
            email,
            name,
            password_hash: _,
            status,
            two_factor,
            mask_data,
            ip_whitelist,
            must_change_password,
            created_by,
            created_by_email,
            created_at,
            updated_at,
            last_sign_in_at,
            failed_attempts,
            locked_until,
            version,
            groups,
            allowed_tags,
        } = u;
        Self {
            id,
            email,
            name,
            status,
            two_factor,
            mask_data,
            ip_whitelist,
            must_change_password,
            created_by,
            created_by_email,
            created_at,
            updated_at,
            last_sign_in_at,
            failed_attempts,
            locked_until,
            groups,
            allowed_tags,
            version,
        }
    }
}

/// The page sizes the Users list offers (the first is the default).
pub const PAGE_SIZES: [i64; 3] = [25, 50, 100];
/// The deepest page of the Users list: a later page number reads as this one.
pub const MAX_PAGE: i64 = 1_000_000;
/// The most users one request may list (the API's `limit`).
pub const MAX_LIMIT: i64 = 100;

/// What the Create user and edit forms send. `password` empty on edit means "unchanged".
#[derive(Debug, Clone, Default)]
pub struct UserInput {
    pub email: String,
    pub password: Secret,
    pub status: String,
    pub group_ids: Vec<i64>,
    pub name: String,
    pub send_to_email: bool,
    pub mask_data: bool,
    /// "IP Whitelist": one address or CIDR range per line; empty = anywhere.
    pub ip_whitelist: String,
    /// Saving one's own whitelist that leaves out one's current address was confirmed.
    pub confirm_lockout: bool,
    /// Allowed Client Tags (tag ids); empty: the groups' tags decide, or all clients.
    pub allowed_tag_ids: Vec<i64>,
}

/// The field that asks to confirm a whitelist that shuts its own holder out.
pub const CONFIRM_LOCKOUT: &str = "confirm_lockout";

/// What an edit changes: `None` keeps the field as the account has it when the change is
/// written (an API PATCH names only some fields; the edit form names them all).
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub email: Option<String>,
    /// Empty or `None`: unchanged.
    pub password: Option<Secret>,
    pub status: Option<String>,
    pub group_ids: Option<Vec<i64>>,
    pub name: Option<String>,
    pub mask_data: Option<bool>,
    /// "IP Whitelist": one address or CIDR range per line.
    pub ip_whitelist: Option<String>,
    /// Saving one's own whitelist that leaves out one's current address was confirmed.
    pub confirm_lockout: bool,
    /// Allowed Client Tags (tag ids).
    pub allowed_tag_ids: Option<Vec<i64>>,
}

impl From<&UserInput> for UserPatch {
    fn from(i: &UserInput) -> Self {
        Self {
            email: Some(i.email.clone()),
            password: Some(i.password.clone()),
            status: Some(i.status.clone()),
            group_ids: Some(i.group_ids.clone()),
            name: Some(i.name.clone()),
            mask_data: Some(i.mask_data),
            ip_whitelist: Some(i.ip_whitelist.clone()),
            confirm_lockout: i.confirm_lockout,
            allowed_tag_ids: Some(i.allowed_tag_ids.clone()),
        }
    }
}

impl UserPatch {
    /// The whole form: this patch over the account as it is.
    fn over(&self, u: &UserRecord) -> UserInput {
        UserInput {
            email: self.email.clone().unwrap_or_else(|| u.email.clone()),
            password: self.password.clone().unwrap_or_default(),
            status: self
                .status
                .clone()
                .unwrap_or_else(|| u.status.code().into()),
            group_ids: self
                .group_ids
                .clone()
                .unwrap_or_else(|| u.groups.iter().map(|g| g.id).collect()),
            name: self.name.clone().unwrap_or_else(|| u.name.clone()),
            send_to_email: false,
            mask_data: self.mask_data.unwrap_or(u.mask_data),
            ip_whitelist: self
                .ip_whitelist
                .clone()
                .unwrap_or_else(|| u.ip_whitelist.to_text()),
            confirm_lockout: self.confirm_lockout,
            allowed_tag_ids: self
                .allowed_tag_ids
                .clone()
                .unwrap_or_else(|| u.allowed_tags.iter().map(|t| t.id).collect()),
        }
    }
}

/// Validated form fields.
struct Valid {
    email: Email,
    password: Option<String>,
    status: UserStatus,
    name: String,
    groups: Vec<GroupRef>,
    /// What the chosen groups grant together.
    grants: Authority,
    ip_whitelist: IpWhitelist,
    allowed_tags: Vec<TagRef>,
    /// Which clients the user would see: own and groups' Allowed Client Tags.
    scope: ClientScope,
}

impl Valid {
    /// The authority the user would have with these fields.
    fn authority(&self, mask_data: bool) -> Authority {
        user_authority(&self.grants, mask_data).scoped(self.scope.clone())
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

fn captions(groups: &[GroupRef]) -> String {
    groups
        .iter()
        .map(|g| g.caption.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl App {
    pub async fn list_users(
        &self,
        actor: &Actor,
        query: &UserQuery,
    ) -> Result<Page<UserView>, AppError> {
        self.authorize(actor, Section::Users, Action::View, "list users")
            .await?;
        let query = UserQuery {
            limit: query.limit.clamp(1, MAX_LIMIT),
            offset: query.offset.clamp(0, MAX_PAGE * MAX_LIMIT),
            ..query.clone()
        };
        let page = self.store.list_users(&query).await?;
        Ok(Page {
            items: page.items.into_iter().map(UserView::from).collect(),
            total: page.total,
        })
    }

    pub async fn get_user(&self, actor: &Actor, id: i64) -> Result<UserView, AppError> {
        self.authorize(actor, Section::Users, Action::View, "view a user")
            .await?;
        let user = self.store.user_by_id(id).await?.ok_or(AppError::NotFound)?;
        Ok(user.into())
    }

    /// How many of this user's sessions are live now (neither past their lifetime nor idle too
    /// long): the "Active sessions" of the user page.
    pub async fn active_session_count(&self, actor: &Actor, id: i64) -> Result<usize, AppError> {
        self.authorize(actor, Section::Users, Action::View, "view a user")
            .await?;
        let now = self.now();
        let idle = self.settings.session_idle.as_secs() as i64;
        Ok(self
            .store
            .sessions_of_user(id)
            .await?
            .iter()
            .filter(|s| s.expires_at > now && s.last_seen_at.plus_secs(idle) > now)
            .count())
    }

    /// Who created users (id, email): what the Users list's Creator filter offers.
    pub async fn user_creators(&self, actor: &Actor) -> Result<Vec<(i64, String)>, AppError> {
        self.authorize(actor, Section::Users, Action::View, "list users")
            .await?;
        Ok(self.store.creators().await?)
    }

    /// What the "Groups" dropdown offers.
    pub async fn group_choices(&self, actor: &Actor) -> Result<Vec<GroupRef>, AppError> {
        if !(actor.can(Section::Users, Action::Create) || actor.can(Section::Users, Action::Update))
        {
            self.authorize(actor, Section::Users, Action::View, "list groups")
                .await?;
        }
        Ok(self.store.group_refs().await?)
    }

    /// Field-by-field validation shared by create and edit.
    /// `editing` is the id of the user being edited (their own email is not a duplicate).
    async fn validate_user(
        &self,
        input: &UserInput,
        password_required: bool,
        editing: Option<i64>,
    ) -> Result<Valid, AppError> {
        let mut errors = FieldErrors::new();
        let email = Email::parse(&input.email)
            .map_err(|e| errors.insert("email", e.to_string()))
            .ok();
        // Reported with the other field errors; the database's unique index still decides.
        if let Some(e) = &email {
            let owner = self.store.user_by_email_key(&e.key()).await?.map(|u| u.id);
            if owner.is_some() && owner != editing {
                errors.insert_duplicate("email", "This email is already used by another user");
            }
        }
        let local = email
            .as_ref()
            .map(|e| e.local_part().to_string())
            .unwrap_or_default();
        let password = if input.password.is_empty() && !password_required {
            None
        } else if input.password.is_empty() {
            errors.insert("password", "Enter a password or click Generate".into());
            None
        } else {
            password::check(input.password.expose(), &local)
                .map_err(|e| errors.insert("password", e.to_string()))
                .ok();
            Some(input.password.expose().to_string())
        };
        let status = UserStatus::from_code(&input.status);
        if status.is_none() {
            errors.insert("status", "Choose Enabled or Disabled".into());
        }
        let name = parse_name(&input.name)
            .map_err(|e| errors.insert("name", e.to_string()))
            .ok();
        let ip_whitelist = IpWhitelist::parse(&input.ip_whitelist)
            .map_err(|e| errors.insert("ip_whitelist", e.to_string()))
            .ok();
        let mut ids = input.group_ids.clone();
        ids.sort_unstable();
        ids.dedup();
        let details = self.store.groups_by_ids(&ids).await?;
        if ids.is_empty() {
            errors.insert("groups", "Choose at least one group".into());
        } else if details.len() != ids.len() {
            errors.insert("groups", "One of the chosen groups no longer exists".into());
        }
        let allowed_tags = self
            .existing_tags(&input.allowed_tag_ids)
            .await?
            .map_err(|m| errors.insert("allowed_tags", m))
            .unwrap_or_default();
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let mut permissions = PermissionSet::default();
        for g in &details {
            permissions.extend(&g.permissions);
        }
        let is_admin = details.iter().any(|g| g.builtin);
        let grants = groups_grant(is_admin, permissions);
        let own: Vec<i64> = allowed_tags.iter().map(|t| t.id).collect();
        let from_groups: Vec<i64> = details
            .iter()
            .flat_map(|g| g.allowed_tags.iter().map(|t| t.id))
            .collect();
        let scope = ClientScope::of_user(&own, &from_groups, is_admin);
        let groups = details
            .iter()
            .map(|g| GroupRef {
                id: g.id,
                caption: g.caption.clone(),
                builtin: g.builtin,
            })
            .collect();
        Ok(Valid {
            email: email.expect("checked"),
            password,
            status: status.expect("checked"),
            name: name.expect("checked"),
            groups,
            grants,
            ip_whitelist: ip_whitelist.expect("checked"),
            allowed_tags,
            scope,
        })
    }

    /// The authority a stored user has now: their groups' grants, their own Mask data and
    /// their Allowed Client Tags.
    pub(crate) async fn authority_of_user(&self, user: &UserRecord) -> Result<Authority, AppError> {
        let (is_admin, held) = self.store.permissions_of_user(user.id).await?;
        let sources = self.store.scope_sources_of_user(user.id).await?;
        Ok(
            user_authority(&groups_grant(is_admin, held), user.mask_data).scoped(
                ClientScope::of_user(&sources.own, &sources.groups, is_admin),
            ),
        )
    }

    /// The guard before any change to an account: the actor's authority covers the target's.
    async fn guard_target(
        &self,
        actor: &Actor,
        target: &UserRecord,
        attempted: &str,
    ) -> Result<(), AppError> {
        let held = self.authority_of_user(target).await?;
        self.guard_covers(
            actor,
            &held,
            "You can't change an account that holds more than you do",
            attempted,
        )
        .await
    }

    /// Create user (the seed's flow). With "Send to email" the credentials mail is handed to
    /// the SMTP server before the user is committed; if that fails nothing is created.
    pub async fn create_user(&self, actor: &Actor, input: &UserInput) -> Result<i64, AppError> {
        self.authorize(actor, Section::Users, Action::Create, "create a user")
            .await?;
        if input.send_to_email && !self.has_smtp() {
            return Err(AppError::field(
                "send_to_email",
                "No SMTP server is configured, so the credentials can't be emailed",
            ));
        }
        let v = self.validate_user(input, true, None).await?;
        self.guard_covers(
            actor,
            &v.authority(input.mask_data),
            "You can't create a user who would hold more than you do",
            &format!("create user {} in {}", v.email, captions(&v.groups)),
        )
        .await?;
        let password = v.password.clone().unwrap_or_default();
        let now = self.now();
        let user = NewUser {
            email: v.email.to_string(),
            email_key: v.email.key(),
            name: v.name.clone(),
            password_hash: self.hasher.hash(&password).await,
            status: v.status,
            two_factor: TwoFactor::Email,
            mask_data: input.mask_data,
            ip_whitelist: v.ip_whitelist.clone(),
            must_change_password: true,
            created_by: Some(actor.id()),
            group_ids: v.groups.iter().map(|g| g.id).collect(),
            allowed_tag_ids: v.allowed_tags.iter().map(|t| t.id).collect(),
            created_at: now,
        };
        let event = Event::new(Category::Users, AuditAction::Add, "User created")
            .change("email", "", v.email.as_str())
            .change("name", "", &v.name)
            .change("status", "", v.status.label())
            .change("groups", "", captions(&v.groups))
            .change("allowed client tags", "", tag_captions(&v.allowed_tags))
            .change("two-factor authentication", "", TwoFactor::Email.label())
            .change("mask data", "", yes_no(input.mask_data))
            .change("IP Whitelist", "", v.ip_whitelist.to_string())
            .change("credentials emailed", "", yes_no(input.send_to_email));
        let event = Event {
            target_type: Some("user".into()),
            target_label: Some(v.email.to_string()),
            ..event
        };
        let entry = self.entry(Some(actor), None, event);
        if !input.send_to_email {
            return Ok(self.store.insert_user(user, None, entry).await?);
        }
        let mail = Mail {
            to_name: v.name.clone(),
            to: v.email.to_string(),
            subject: "Your Back Office account".into(),
            body: format!(
                "An account was created for you in the Back Office.\n\n\
                 Sign in at: {url}/login\nEmail: {email}\nPassword: {password}\n\n\
                 You will be asked to choose a new password at your first sign-in, and a \
                 sign-in code will be emailed to you each time you sign in.\n",
                url = self.settings.public_url.trim_end_matches('/'),
                email = v.email,
            ),
        };
        // The email is reserved in a transaction of its own, so nothing is locked while the
        // SMTP server takes its time; the user is written once it accepted the mail.
        let key = v.email.key();
        let holder = format!("create-{:016x}", rand::random::<u64>());
        self.store
            .reserve_email(&key, &holder, now, reservation_until(now))
            .await?;
        let failed = Event::new(
            Category::Users,
            AuditAction::Send,
            "Credentials mail not sent; user not created",
        )
        .change("email", "", v.email.as_str());
        if let Err(e) = self
            .send_credentials(actor, mail, failed, "the user was not created")
            .await
        {
            if let Err(release) = self.store.release_email(&key, &holder).await {
                // It lapses by itself (see `reservation_until`).
                tracing::warn!(error = %release, "email reservation not released");
            }
            return Err(e);
        }
        match self.store.insert_user(user, Some(&holder), entry).await {
            Ok(id) => Ok(id),
            Err(e) => {
                // The mail went out but the account could not be written: say so plainly.
                let _ = self.store.release_email(&key, &holder).await;
                tracing::error!(error = %e, "credentials mailed, user not written");
                Err(AppError::from(e))
            }
        }
    }

    /// Hands the credentials mail to the SMTP server. If it can't be sent, the failure is an
    /// event and the person is told `outcome`; the caller then writes nothing ("either done and
    /// mailed, or nothing"). No transaction is open meanwhile.
    async fn send_credentials(
        &self,
        actor: &Actor,
        mail: Mail,
        failed: Event,
        outcome: &str,
    ) -> Result<(), AppError> {
        let mailer = self
            .mailer
            .as_ref()
            .ok_or_else(|| AppError::Mail("No SMTP server".into()))?;
        if let Err(reason) = mailer.send(mail).await {
            tracing::warn!(smtp = %reason, "credentials mail refused; nothing changed");
            self.log(Some(actor), None, failed.change("SMTP answer", "", &reason))
                .await;
            return Err(AppError::Mail(format!(
                "The credentials email could not be sent, so {outcome}: {reason}"
            )));
        }
        Ok(())
    }

    /// Actions › Reset password: a new password (typed, or generated by the page), to be changed
    /// at the next sign-in; the user's sessions end. With "Send to email" the credentials are
    /// mailed before the change commits, and if the mail can't be sent nothing changes.
    pub async fn reset_user_password(
        &self,
        actor: &Actor,
        id: i64,
        password: &str,
        send_to_email: bool,
    ) -> Result<(), AppError> {
        self.authorize(actor, Section::Users, Action::Update, "reset a password")
            .await?;
        let target = self.store.user_by_id(id).await?.ok_or(AppError::NotFound)?;
        if id == actor.id() {
            return Err(self
                .refuse_own(
                    actor,
                    "reset own password",
                    "Change your own password on your profile, with your current password",
                )
                .await);
        }
        self.guard_target(
            actor,
            &target,
            &format!("reset the password of {}", target.email),
        )
        .await?;
        if send_to_email && !self.has_smtp() {
            return Err(AppError::field(
                "send_to_email",
                "No SMTP server is configured, so the credentials can't be emailed",
            ));
        }
        let local = Email::parse(&target.email)
            .map(|e| e.local_part().to_string())
            .unwrap_or_default();
        if password.is_empty() {
            return Err(AppError::field(
                "password",
                "Enter a password or click Generate",
            ));
        }
        password::check(password, &local)
            .map_err(|e| AppError::field("password", e.to_string()))?;
        let change = UserChange {
            password: Some((self.hasher.hash(password).await, true)),
            end_sessions: Some(None),
            at: self.now(),
            ..Default::default()
        };
        let event = Event::new(Category::Users, AuditAction::Update, "Password reset")
            .target("user", id, &target.email)
            .change(
                "password",
                "",
                "set by an administrator (must be changed at next sign-in)",
            )
            .change("credentials emailed", "", yes_no(send_to_email));
        let entry = self.entry(Some(actor), None, event);
        if !send_to_email {
            return Ok(self.store.update_user(id, write(change, entry)).await?);
        }
        let mail = Mail {
            to_name: target.name.clone(),
            to: target.email.clone(),
            subject: "Your new Back Office password".into(),
            body: format!(
                "An administrator reset the password of your Back Office account.\n\n\
                 Sign in at: {url}/login\nEmail: {email}\nPassword: {password}\n\n\
                 You will be asked to choose a new password at your next sign-in.\n",
                url = self.settings.public_url.trim_end_matches('/'),
                email = target.email,
            ),
        };
        let failed = Event::new(
            Category::Users,
            AuditAction::Send,
            "Credentials mail not sent; password not reset",
        )
        .target("user", id, &target.email);
        // Mailed first, then written: no transaction waits on the SMTP server.
        self.send_credentials(actor, mail, failed, "the password was not reset")
            .await?;
        Ok(self.store.update_user(id, write(change, entry)).await?)
    }

    /// Saves an edit: the edit form (every field, based on the `expected` version it showed)
    /// or an API PATCH (the fields it names; `expected` from `If-Match`, if sent). The checks
    /// run on a fresh read of the account, and the change is written only if the writing
    /// transaction finds the account still at that version; otherwise it is checked again on
    /// the newer copy, or, with `expected`, refused as stale (who changed it, and when).
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: i64,
        patch: &UserPatch,
        expected: Option<i64>,
    ) -> Result<(), AppError> {
        self.authorize(actor, Section::Users, Action::Update, "update a user")
            .await?;
        let mut hashed = None;
        until_settled!(
            self,
            "account",
            self.try_update_user(actor, id, patch, expected, &mut hashed)
        )
    }

    /// One try of [`App::update_user`]: `false` when the account changed after the checks.
    /// `hashed` keeps the new password's hash across tries.
    async fn try_update_user(
        &self,
        actor: &Actor,
        id: i64,
        patch: &UserPatch,
        expected: Option<i64>,
        hashed: &mut Option<String>,
    ) -> Result<bool, AppError> {
        let target = self.store.user_by_id(id).await?.ok_or(AppError::NotFound)?;
        self.guard_target(actor, &target, &format!("update user {}", target.email))
            .await?;
        let input = patch.over(&target);
        let v = self.validate_user(&input, false, Some(id)).await?;
        check_version("user", id, expected, target.version).map_err(rejected)?;
        let new_ids: Vec<i64> = v.groups.iter().map(|g| g.id).collect();
        let old_ids: Vec<i64> = target.groups.iter().map(|g| g.id).collect();
        let groups_changed = new_ids != old_ids;
        // One's own sign-in email and password are the way back in (a reset link, the sign-in
        // code): they change on the profile, with the current password, never here.
        let own_restriction_lifted = v.status != target.status
            || groups_changed
            || input.mask_data != target.mask_data
            || v.email.as_str() != target.email
            || v.password.is_some();
        if id == actor.id() && own_restriction_lifted {
            return Err(self
                .refuse_own(
                    actor,
                    "change own status, groups, mask data, email or password",
                    "You can't change your own status, groups, Mask data, email or password \
                     here; change your password on your profile",
                )
                .await);
        }
        if id == actor.id() {
            self.guard_own_whitelist(actor, &target.ip_whitelist, &v.ip_whitelist, &input)
                .await?;
        }
        self.guard_covers(
            actor,
            &v.authority(input.mask_data),
            "You can't make a user hold more than you do",
            &format!("update user {}", target.email),
        )
        .await?;
        let mut event = Event::new(Category::Users, AuditAction::Update, "User updated")
            .target("user", id, &target.email)
            .change("email", &target.email, v.email.as_str())
            .change("name", &target.name, &v.name)
            .change("status", target.status.label(), v.status.label())
            .change("groups", captions(&target.groups), captions(&v.groups))
            .change(
                "allowed client tags",
                tag_captions(&target.allowed_tags),
                tag_captions(&v.allowed_tags),
            )
            .change(
                "mask data",
                yes_no(target.mask_data),
                yes_no(input.mask_data),
            )
            .change(
                "IP Whitelist",
                target.ip_whitelist.to_string(),
                v.ip_whitelist.to_string(),
            );
        let mut change = UserChange {
            at: self.now(),
            ..Default::default()
        };
        if v.email.as_str() != target.email {
            change.email = Some((v.email.to_string(), v.email.key()));
        }
        if v.name != target.name {
            change.name = Some(v.name.clone());
        }
        if let Some(p) = &v.password {
            if hashed.is_none() {
                *hashed = Some(self.hasher.hash(p).await);
            }
            change.password = hashed.clone().map(|h| (h, true));
            change.end_sessions = Some(None);
            event = event.change(
                "password",
                "",
                "set by an administrator (must be changed at next sign-in)",
            );
        }
        if v.status != target.status {
            change.status = Some(v.status);
        }
        if input.mask_data != target.mask_data {
            change.mask_data = Some(input.mask_data);
        }
        if groups_changed {
            change.group_ids = Some(new_ids);
        }
        if v.ip_whitelist != target.ip_whitelist {
            change.ip_whitelist = Some(v.ip_whitelist.clone());
        }
        if v.allowed_tags != target.allowed_tags {
            change.allowed_tag_ids = Some(v.allowed_tags.iter().map(|t| t.id).collect());
        }
        if event.changes.is_empty() {
            return Ok(true);
        }
        if v.status == UserStatus::Disabled && target.status != UserStatus::Disabled {
            event.event = "User disabled".into();
        }
        let email_changed = change.email.is_some();
        // Everything above was checked on `target`: written only if the row is still that
        // version, so the event's "before" values are what the transaction overwrites.
        let checked = target.version;
        let entry = self.entry(Some(actor), None, event);
        let edit: store::Edit<'_, UserRecord, UserChange> = Box::new(move |row| {
            check_version("user", id, expected, row.version)?;
            unchanged_since(checked, row.version)?;
            Ok(Decision::Write(change, entry))
        });
        match self.store.update_user(id, edit).await {
            Ok(()) => {}
            Err(e) if is_retry(&e) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        if email_changed {
            self.notify_old_address(actor, &target, v.email.as_str())
                .await;
        }
        Ok(true)
    }

    /// One's own IP Whitelist may only narrow (a restriction one can't lift on oneself), and a
    /// list that leaves out the address one is using now must be confirmed: it signs one out.
    async fn guard_own_whitelist(
        &self,
        actor: &Actor,
        old: &IpWhitelist,
        new: &IpWhitelist,
        input: &UserInput,
    ) -> Result<(), AppError> {
        if let Some(admitted) = old.beyond(new) {
            let how = if new.is_anywhere() {
                "an empty list admits every address".to_string()
            } else {
                format!("the new list admits {admitted}, which your current one doesn't")
            };
            return Err(self
                .refuse_own(
                    actor,
                    "widen or remove own IP Whitelist",
                    &format!("You can't widen or remove your own IP Whitelist: {how}"),
                )
                .await);
        }
        if new != old && !new.admits_client(actor.ip.as_deref()) && !input.confirm_lockout {
            let from = actor
                .ip
                .as_deref()
                .unwrap_or("the address you are using now");
            return Err(AppError::field(
                CONFIRM_LOCKOUT,
                format!(
                    "You will be signed out and can't sign back in from {from}. \
                     Confirm to save this IP Whitelist anyway."
                ),
            ));
        }
        Ok(())
    }

    /// Tells the old address that the account's sign-in email changed, so that a person whose
    /// address was taken over hears of it (best effort: the change is already made).
    async fn notify_old_address(&self, actor: &Actor, target: &UserRecord, new_email: &str) {
        let Some(mailer) = &self.mailer else { return };
        let mail = Mail {
            to_name: target.name.clone(),
            to: target.email.clone(),
            subject: "Your Back Office sign-in email was changed".into(),
            body: format!(
                "{actor} changed the sign-in email of your Back Office account from {old} to \
                 {new_email}. Sign-in codes and password reset links now go there.\n\
                 If you did not expect this, tell your administrator at once.\n",
                actor = actor.user.email,
                old = target.email,
            ),
        };
        if let Err(reason) = mailer.send(mail).await {
            tracing::warn!(smtp = %reason, "email change notice not sent");
        }
    }

    /// Actions › Disable 2FA / Enable 2FA. Disabling needs the actor's own password again.
    pub async fn set_two_factor(
        &self,
        actor: &Actor,
        id: i64,
        enabled: bool,
        actor_password: &str,
    ) -> Result<(), AppError> {
        self.authorize(
            actor,
            Section::Users,
            Action::Update,
            "change two-factor authentication",
        )
        .await?;
        if !enabled
            && !self
                .hasher
                .verify(actor_password, &actor.user.password_hash)
                .await
                .ok
        {
            // The refusals about the target come first, as with the right password.
            self.two_factor_target(actor, id, enabled).await?;
            return Err(AppError::field(
                "actor_password",
                "Your password is not correct",
            ));
        }
        self.set_two_factor_proven(actor, id, enabled).await
    }

    /// The account whose 2FA `actor` changes, once the guards allow it: not one's own 2FA
    /// disabled, and a target the actor may change.
    async fn two_factor_target(
        &self,
        actor: &Actor,
        id: i64,
        enabled: bool,
    ) -> Result<store::UserRecord, AppError> {
        let target = self.store.user_by_id(id).await?.ok_or(AppError::NotFound)?;
        if id == actor.id() && !enabled {
            return Err(self
                .refuse_own(
                    actor,
                    "disable own two-factor authentication",
                    "You can't disable your own two-factor authentication",
                )
                .await);
        }
        self.guard_target(actor, &target, &format!("change 2FA of {}", target.email))
            .await?;
        Ok(target)
    }

    /// [`App::set_two_factor`] once the actor's password has been checked (Disable 2FA, one
    /// user or many): the permission and guards, then the change, its event and the notice.
    pub(crate) async fn set_two_factor_proven(
        &self,
        actor: &Actor,
        id: i64,
        enabled: bool,
    ) -> Result<(), AppError> {
        self.authorize(
            actor,
            Section::Users,
            Action::Update,
            "change two-factor authentication",
        )
        .await?;
        let target = self.two_factor_target(actor, id, enabled).await?;
        let (kind, name) = if enabled {
            (TwoFactor::Email, "2FA enabled")
        } else {
            (TwoFactor::Disabled, "2FA disabled")
        };
        // "Enable 2FA" turns email codes on for an account without 2FA; it never replaces a
        // method the person enrolled. "Disable 2FA" resets whatever the account has.
        let changed = if enabled {
            target.two_factor == TwoFactor::Disabled
        } else {
            target.two_factor != TwoFactor::Disabled
        };
        if changed {
            let e = Event::new(Category::Users, AuditAction::Update, name)
                .target("user", id, &target.email)
                .change(
                    "two-factor authentication",
                    target.two_factor.label(),
                    kind.label(),
                );
            let change = store::MethodChange {
                method: kind,
                expect: Some(target.two_factor),
                totp: None,
                confirms_enrolment: None,
                passkey: None,
                recovery_hashes: Vec::new(),
                at: self.now(),
            };
            self.store
                .set_two_factor_method(id, change, self.entry(Some(actor), None, e))
                .await?;
        }
        if !changed {
            return Ok(());
        }
        if let Some(mailer) = &self.mailer {
            let mail = Mail {
                to_name: target.name.clone(),
                to: target.email.clone(),
                subject: format!("Two-factor authentication {}", if enabled { "enabled" } else { "disabled" }),
                body: format!(
                    "{} changed two-factor authentication for your Back Office account: it is now {}.\n\
                     If you did not expect this, tell your administrator.\n",
                    actor.user.email,
                    kind.label()
                ),
            };
            if let Err(reason) = mailer.send(mail).await {
                tracing::warn!(smtp = %reason, "2FA change notice not sent");
            }
        }
        Ok(())
    }

    /// Actions › Unlock.
    pub async fn unlock_user(&self, actor: &Actor, id: i64) -> Result<(), AppError> {
        self.authorize(actor, Section::Users, Action::Update, "unlock a user")
            .await?;
        let target = self.store.user_by_id(id).await?.ok_or(AppError::NotFound)?;
        self.guard_target(actor, &target, &format!("unlock {}", target.email))
            .await?;
        let event = Event::new(Category::Users, AuditAction::Update, "User unlocked").target(
            "user",
            id,
            &target.email,
        );
        let change = UserChange {
            unlock: true,
            at: self.now(),
            ..Default::default()
        };
        self.store
            .update_user(id, write(change, self.entry(Some(actor), None, event)))
            .await?;
        Ok(())
    }

    /// Actions › Sign out everywhere.
    pub async fn sign_out_everywhere(&self, actor: &Actor, id: i64) -> Result<(), AppError> {
        self.authorize(
            actor,
            Section::Users,
            Action::Update,
            "sign a user out everywhere",
        )
        .await?;
        let target = self.store.user_by_id(id).await?.ok_or(AppError::NotFound)?;
        self.guard_target(actor, &target, &format!("sign out {}", target.email))
            .await?;
        let event = Event::new(
            Category::Sessions,
            AuditAction::Delete,
            "Signed out everywhere",
        )
        .target("user", id, &target.email);
        let change = UserChange {
            end_sessions: Some(None),
            at: self.now(),
            ..Default::default()
        };
        self.store
            .update_user(id, write(change, self.entry(Some(actor), None, event)))
            .await?;
        Ok(())
    }
}
