//! Creating administrators outside the web: the first one at first start, and `admin create`.

use crate::{App, AppError, FieldErrors};
use domain::audit::{AuditAction, Category, Event};
use domain::user::parse_name;
use domain::{password, Email, TwoFactor, UserStatus};
use store::{AuditEntry, NewUser};

/// An administrator made by the CLI or at first start.
pub struct CreatedAdmin {
    pub id: i64,
    pub email: String,
    /// Set when the password was generated, so it can be printed once.
    pub generated_password: Option<String>,
    pub two_factor: TwoFactor,
}

impl App {
    /// Seeds what must always exist (the built-in Administrators group). Idempotent.
    pub async fn seed(&self) -> Result<i64, AppError> {
        Ok(self.store.ensure_admin_group().await?)
    }

    /// Creates the first administrator when there is none; `None` when one exists already.
    pub async fn ensure_first_admin(&self, email: &str) -> Result<Option<CreatedAdmin>, AppError> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        match self.create_admin(email, "Administrator", None, None).await {
            Ok(admin) => Ok(Some(admin)),
            // Another instance starting at the same moment made it first.
            Err(AppError::Invalid(f))
                if f.contains_key("email") && self.store.count_users().await? > 0 =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `admin create`: a member of Administrators who must choose a new password at first
    /// sign-in. 2FA by email when SMTP is configured, none on a standalone install, unless
    /// `two_factor` says otherwise.
    pub async fn create_admin(
        &self,
        email: &str,
        name: &str,
        password: Option<&str>,
        two_factor: Option<TwoFactor>,
    ) -> Result<CreatedAdmin, AppError> {
        let mut errors = FieldErrors::new();
        let email = Email::parse(email)
            .map_err(|e| errors.insert("email", e.to_string()))
            .ok();
        let name = parse_name(name)
            .map_err(|e| errors.insert("name", e.to_string()))
            .ok();
        if let (Some(p), Some(e)) = (password, &email) {
            if let Err(err) = password::check(p, e.local_part()) {
                errors.insert("password", err.to_string());
            }
        }
        let (Some(email), Some(name), true) = (email, name, errors.is_empty()) else {
            return Err(AppError::Invalid(errors));
        };
        let generated = password.is_none().then(password::generate);
        let chosen = password
            .map(str::to_string)
            .or_else(|| generated.clone())
            .unwrap_or_default();
        let two_factor = two_factor.unwrap_or(if self.has_smtp() {
            TwoFactor::Email
        } else {
            TwoFactor::Disabled
        });
        let admins = self.seed().await?;
        let now = self.now();
        let user = NewUser {
            email: email.to_string(),
            email_key: email.key(),
            name,
            password_hash: self.hasher.hash(&chosen).await,
            status: UserStatus::Enabled,
            two_factor,
            mask_data: false,
            // The way back in for whoever runs the server: usable from anywhere.
            ip_whitelist: Default::default(),
            must_change_password: true,
            created_by: None,
            group_ids: vec![admins],
            allowed_tag_ids: Vec::new(),
            created_at: now,
        };
        let event = Event::new(
            Category::Users,
            AuditAction::Add,
            "Administrator created from the command line",
        )
        .change("email", "", email.as_str())
        .change("groups", "", "Administrators")
        .change("two-factor authentication", "", two_factor.label());
        let entry = AuditEntry {
            at: now,
            actor_id: None,
            actor_email: Some("system (command line)".into()),
            actor_groups: String::new(),
            ip: None,
            event: Event {
                target_type: Some("user".into()),
                target_label: Some(email.to_string()),
                ..event
            },
            idempotency: None,
        };
        let id = self.store.insert_user(user, None, entry).await?;
        Ok(CreatedAdmin {
            id,
            email: email.to_string(),
            generated_password: generated,
            two_factor,
        })
    }
}
