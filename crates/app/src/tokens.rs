//! Personal API tokens: created after a full sign-in (never by another token), shown once,
//! stored as SHA-256, with a name and an expiry; a token acts with its owner's current
//! permissions and masking, and dies with the owner's account.

use crate::auth::{hash_token, random_token};
use crate::{Actor, App, AppError};
use domain::audit::{AuditAction, Category, Event};
use domain::UserStatus;
use store::TokenRecord;

pub const DEFAULT_DAYS: i64 = 90;
/// How long an instance may remember what a token resolved to.
pub const CACHE_TTL: std::time::Duration = crate::token_cache::TTL;
pub const MAX_DAYS: i64 = 365;
const PREFIX: &str = "bo_";

/// A token just created: the secret is in `token` and nowhere else.
pub struct NewToken {
    pub token: String,
    pub record: TokenRecord,
}

impl App {
    pub async fn create_token(
        &self,
        actor: &Actor,
        name: &str,
        days: Option<i64>,
    ) -> Result<NewToken, AppError> {
        if actor.user.must_change_password {
            return Err(AppError::PasswordChangeRequired);
        }
        if actor.must_enrol() {
            return Err(AppError::TwoFactorRequired);
        }
        if actor.session_hash.is_none() {
            return Err(AppError::Forbidden(
                "API tokens are created after a full sign-in, not with another token".into(),
            ));
        }
        let name = name.trim();
        let mut errors = crate::FieldErrors::new();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            errors.insert(
                "name",
                "Give the token a name of 1 to 100 characters".into(),
            );
        }
        let days = days.unwrap_or(DEFAULT_DAYS);
        if !(1..=MAX_DAYS).contains(&days) {
            errors.insert(
                "expires_in_days",
                format!("Choose between 1 and {MAX_DAYS} days"),
            );
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let token = format!("{PREFIX}{}", random_token());
        let now = self.now();
        let expires_at = now.plus_secs(days * 86_400);
        let e = Event::new(Category::Auth, AuditAction::Add, "API token created")
            .target("user", actor.id(), &actor.user.email)
            .change("token", "", name)
            .change("expires", "", expires_at.iso());
        let id = self
            .store
            .insert_token(
                actor.id(),
                name,
                &hash_token(&token),
                now,
                expires_at,
                self.entry(Some(actor), None, e),
            )
            .await?;
        let record = TokenRecord {
            id,
            user_id: actor.id(),
            name: name.to_string(),
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        Ok(NewToken { token, record })
    }

    pub async fn list_tokens(&self, actor: &Actor) -> Result<Vec<TokenRecord>, AppError> {
        Ok(self.store.tokens_of_user(actor.id()).await?)
    }

    pub async fn revoke_token(&self, actor: &Actor, id: i64) -> Result<(), AppError> {
        let e = Event::new(Category::Auth, AuditAction::Delete, "API token revoked")
            .target("user", actor.id(), &actor.user.email)
            .change("token id", "", id.to_string());
        Ok(self
            .store
            .revoke_token(actor.id(), id, self.now(), self.entry(Some(actor), None, e))
            .await?)
    }

    /// Resolves `Authorization: Bearer …`: one indexed lookup for the token with its owner and
    /// their permissions, remembered for up to a second (see `token_cache`).
    pub async fn authenticate_token(
        &self,
        raw: &str,
        ip: Option<String>,
    ) -> Result<Option<Actor>, AppError> {
        if !raw.starts_with(PREFIX) || raw.len() != PREFIX.len() + 64 {
            return Ok(None);
        }
        let token_hash = hash_token(raw);
        let (token, authority) = match self.token_cache.get(&token_hash) {
            Some(found) => found,
            None => {
                let Some(found) = self.store.token_authority(&token_hash).await? else {
                    return Ok(None);
                };
                self.token_cache
                    .put(token_hash.clone(), found.0.clone(), found.1.clone());
                found
            }
        };
        let now = self.now();
        if token.revoked_at.is_some()
            || token.expires_at <= now
            || authority.user.status != UserStatus::Enabled
        {
            return Ok(None);
        }
        if !authority.user.ip_whitelist.admits_client(ip.as_deref()) {
            if !self.token_cache.record_refusal(token.id) {
                return Ok(None);
            }
            let e = Event::new(
                Category::Auth,
                AuditAction::Refused,
                "API token refused: address not in the IP Whitelist",
            )
            .target("user", authority.user.id, &authority.user.email)
            .change("token", "", &token.name)
            .change("address", "", ip.as_deref().unwrap_or("unknown"));
            self.log(None, ip.as_deref(), e).await;
            return Ok(None);
        }
        if token
            .last_used_at
            .is_none_or(|t| now.millis() - t.millis() > 60_000)
        {
            self.store.touch_token(token.id, now).await?;
            let touched = TokenRecord {
                last_used_at: Some(now),
                ..token.clone()
            };
            self.token_cache.put(token_hash, touched, authority.clone());
        }
        let actor = Actor::new(authority, None, Some(token.id), ip);
        Ok(Some(self.with_enrolment_due(actor).await?))
    }
}
