//! Forgotten passwords: a single-use link by email, then a new password and the second factor as
//! at sign-in. Every request is answered the same, in the same time, whether the account exists,
//! is disabled or locked: the lookup and the counting happen before the answer, the link and its
//! mail after it. The link is voided by a newer request, a successful sign-in, a password change,
//! disabling the account, and its 30 minutes.

use crate::auth::{address_key, hash_token, random_token, Client, SignIn};
use crate::mail::Mail;
use crate::{App, AppError, FieldErrors};
use domain::audit::{AuditAction, Category, Event};
use domain::{Email, UserStatus};
use std::sync::Arc;
use store::{ResetRecord, UserChange, UserRecord};

pub const RESET_TTL_SECS: i64 = 30 * 60;
/// The window of both request limits.
const WINDOW_SECS: i64 = 15 * 60;
/// Links mailed per account per window (as for sign-in codes); further requests mail nothing.
const PER_ACCOUNT: i64 = 5;
/// Requests per client address per window; over it the address gets 429.
const PER_IP: i64 = 20;

pub const RESET_REQUESTED: &str = "If an account exists for that address, we've sent a link \
    to reset its password. The link works once, for 30 minutes.";
pub const RESET_LINK_INVALID: &str =
    "This link is invalid or has expired. Ask for a new one below.";

/// What the link step shows: whose password is being chosen (masked).
pub struct ResetLink {
    pub masked_email: String,
}

/// The SHA-256 of a password hash: stored with a link, so any password change voids it.
fn fingerprint(password_hash: &str) -> String {
    hash_token(password_hash)
}

fn invalid_link() -> AppError {
    AppError::Expired(RESET_LINK_INVALID.into())
}

impl App {
    /// "Forgot password?": always `Ok` (or 429 for the address), whatever the email.
    pub async fn request_password_reset(
        self: &Arc<Self>,
        email: &str,
        client: &Client,
    ) -> Result<(), AppError> {
        if !self.has_smtp() {
            return Err(AppError::NotFound);
        }
        let now = self.now();
        let ip = client.ip.as_deref();
        let user = match Email::parse(email) {
            Ok(e) => self.store.user_by_email_key(&e.key()).await?,
            Err(_) => None,
        };
        // Recorded first and then counted with itself, so simultaneous requests can't all
        // see room under a limit; IPv6 addresses count per /64, what one host usually holds.
        let user_id = user.as_ref().map(|u| u.id);
        let address = client.ip.as_deref().map(address_key);
        let address = address.as_deref();
        self.store
            .record_reset_request(user_id, address, now)
            .await?;
        let since = now.plus_secs(-WINDOW_SECS);
        let (for_account, from_ip) = self
            .store
            .reset_requests_since(user_id, address, since)
            .await?;
        if from_ip > PER_IP {
            let e = Event::new(
                Category::Auth,
                AuditAction::Refused,
                "Password reset refused",
            )
            .change("reason", "", "too many requests from this address");
            self.log(None, ip, e).await;
            return Err(AppError::TooMany(
                "Too many password reset requests from your address; try again later".into(),
            ));
        }
        let app = Arc::clone(self);
        let typed: String = email.chars().take(200).collect();
        let client = client.clone();
        tokio::spawn(async move {
            app.send_reset_link(user, &typed, for_account, &client)
                .await
        });
        Ok(())
    }

    /// After the answer: the link and its mail, or the reason there is none, as an event.
    async fn send_reset_link(
        &self,
        user: Option<UserRecord>,
        typed: &str,
        // Requests for this account in the window, this one included.
        earlier: i64,
        client: &Client,
    ) {
        let ip = client.ip.as_deref();
        let event = Event::new(
            Category::Auth,
            AuditAction::Send,
            "Password reset requested",
        )
        .change("email", "", typed);
        let Some(user) = user else {
            let e = event.change("result", "", "no account with this email");
            return self.log(None, ip, e).await;
        };
        let event = event.target("user", user.id, &user.email);
        let result = if user.status != UserStatus::Enabled {
            "account disabled: no link sent".to_string()
        } else if earlier > PER_ACCOUNT {
            "too many requests for this account: no link sent".to_string()
        } else {
            match self.mail_reset_link(&user).await {
                Ok(()) => "link emailed".to_string(),
                Err(reason) => {
                    tracing::warn!(smtp = %reason, "password reset mail not sent");
                    format!("mail not sent: {reason}")
                }
            }
        };
        self.log(None, ip, event.change("result", "", result)).await;
    }

    async fn mail_reset_link(&self, user: &UserRecord) -> Result<(), String> {
        let mailer = self.mailer.as_ref().ok_or("no SMTP server")?;
        let token = random_token();
        let now = self.now();
        let record = ResetRecord {
            user_id: user.id,
            token_hash: hash_token(&token),
            password_fingerprint: fingerprint(&user.password_hash),
            created_at: now,
            expires_at: now.plus_secs(RESET_TTL_SECS),
        };
        self.store
            .put_reset(&record)
            .await
            .map_err(|e| e.to_string())?;
        let mail = Mail {
            to_name: user.name.clone(),
            to: user.email.clone(),
            subject: "Reset your Back Office password".into(),
            body: format!(
                "Someone (hopefully you) asked to reset the password of your Back Office account \
                 {email}.\n\nChoose a new password here within 30 minutes:\n\
                 {url}/password/reset?token={token}\n\n\
                 The link works once. If you did not ask for this, ignore this mail: your \
                 password stays as it is.\n",
                email = user.email,
                url = self.settings.public_url.trim_end_matches('/'),
            ),
        };
        mailer.send(mail).await.map(|_| ())
    }

    /// The link's account, while the link still works.
    async fn live_reset(&self, token: &str) -> Result<UserRecord, AppError> {
        if token.len() != 64 {
            return Err(invalid_link());
        }
        let reset = self
            .store
            .reset_by_token(&hash_token(token))
            .await?
            .ok_or_else(invalid_link)?;
        let user = self
            .store
            .user_by_id(reset.user_id)
            .await?
            .ok_or_else(invalid_link)?;
        let live = reset.expires_at > self.now()
            && user.status == UserStatus::Enabled
            && fingerprint(&user.password_hash) == reset.password_fingerprint
            && user.last_sign_in_at.is_none_or(|t| t < reset.created_at);
        if live {
            Ok(user)
        } else {
            Err(invalid_link())
        }
    }

    /// Opening the link: whose password it is for, or `Expired` with [`RESET_LINK_INVALID`].
    pub async fn check_reset_link(&self, token: &str) -> Result<ResetLink, AppError> {
        let user = self.live_reset(token).await?;
        Ok(ResetLink {
            masked_email: domain::masking::email(&user.email),
        })
    }

    /// "Choose a new password": the same policy as everywhere; on success every session of the
    /// user ends, a notice is mailed, and the person signs in with the new password as at the
    /// sign-in page, so the second factor is still asked.
    pub async fn complete_password_reset(
        &self,
        token: &str,
        new: &str,
        confirm: &str,
        client: &Client,
    ) -> Result<SignIn, AppError> {
        let user = self.live_reset(token).await?;
        let mut errors = FieldErrors::new();
        self.check_new_password(&user, new, confirm, &mut errors)
            .await;
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        // Taking the link is what makes it single-use, even for two submissions at once.
        if self.store.take_reset(&hash_token(token)).await?.is_none() {
            return Err(invalid_link());
        }
        // Applied only to the account as it was checked: still enabled, same password. Having
        // proved they hold the mailbox, the person is unlocked too.
        let change = UserChange {
            password: Some((self.hasher.hash(new).await, false)),
            end_sessions: Some(None),
            unlock: true,
            expect_password_hash: Some(user.password_hash.clone()),
            at: self.now(),
            ..Default::default()
        };
        let ip = client.ip.as_deref();
        let event = Event::new(
            Category::Auth,
            AuditAction::Update,
            "Password reset completed",
        )
        .target("user", user.id, &user.email);
        match self
            .store
            .update_user(
                user.id,
                crate::concurrency::write(change, self.entry(None, ip, event)),
            )
            .await
        {
            Ok(()) => {}
            Err(store::StoreError::Conflict(_)) => return Err(invalid_link()),
            Err(e) => return Err(e.into()),
        }
        if let Some(mailer) = &self.mailer {
            let notice = Mail {
                to_name: user.name.clone(),
                to: user.email.clone(),
                subject: "Your Back Office password was changed".into(),
                body: format!(
                    "The password of your Back Office account {email} was changed through a \
                     password reset link at {at} UTC from the address {ip}.\n\
                     If this was not you, tell your administrator at once.\n",
                    email = user.email,
                    at = self.now().iso(),
                    ip = ip.unwrap_or("unknown"),
                ),
            };
            if let Err(reason) = mailer.send(notice).await {
                tracing::warn!(smtp = %reason, "password change notice not sent");
            }
        }
        self.sign_in(&user.email, new, client).await
    }
}
