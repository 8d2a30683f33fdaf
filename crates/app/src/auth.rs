//! Signing in (password, then the account's second factor: an emailed code, a code from an
//! authenticator app, a passkey, or a recovery code), sessions, signing out, and one's own password
//! and sessions. Every failure of the password step looks the same from outside: same message,
//! same status, same time.
//!
//! An account's IP Whitelist holds at every step: the password step (checked after the password,
//! so a refusal costs what a wrong password costs and says the same), the code step, and every
//! request with a session or an API token; each refusal is an event naming the address.

use crate::mail::Mail;
use crate::metrics::{self, SignInOutcome};
use crate::{Actor, App, AppError};
use domain::audit::{AuditAction, Category, Event};
use domain::{masking, password, Email, TwoFactor, UserStatus};
use rand::{rngs::OsRng, Rng, RngCore};
use sha2::{Digest, Sha256};
use store::{CodeRecord, SessionRecord, SessionStage, SignInAccount, SignInAttempt, UserRecord};

pub const INVALID_CREDENTIALS: &str = "Invalid email or password";
pub const CODE_NOT_SENT: &str = "The code could not be sent; try again in a minute";
pub const TOO_MANY_FROM_ADDRESS: &str =
    "Too many sign-in attempts from your network address; try again later";
pub const NO_SMTP_FOR_CODE: &str =
    "This account signs in with a code sent by email, but this Back Office has no \
    mail server configured. Ask an administrator to disable 2FA via email codes for your account.";
const MAX_CODE_FAILURES: i64 = 5;
const RESEND_INTERVAL_SECS: i64 = 60;
const SENDS_PER_WINDOW: i64 = 5;
const SEND_WINDOW_SECS: i64 = 15 * 60;

/// A fresh session: the raw id goes into the cookie and nowhere else.
pub struct NewSession {
    pub id: String,
    pub csrf_token: String,
}

pub enum SignIn {
    /// Signed in; the person may still have to choose a new password first.
    Done(NewSession),
    /// Password accepted, a code was sent to this (masked) address.
    CodeSent {
        session: NewSession,
        masked_email: String,
    },
    /// Password accepted; the account's app code or passkey comes next.
    SecondFactor { session: NewSession },
}

/// What a person gives at the second step.
#[derive(Clone, Copy)]
pub enum Answer<'a> {
    /// The emailed code or, for TOTP accounts, the app's current code.
    Code(&'a str),
    /// One of the account's recovery codes (TOTP and passkey accounts).
    Recovery(&'a str),
    /// The browser's answer to the passkey challenge (JSON).
    Passkey(&'a str),
}

/// A sign-in waiting for its code. Only the app builds one (from the session cookie), so the web
/// layer can show its CSRF token and hand it back, but never name another session.
pub struct PendingSignIn(SessionRecord);

impl PendingSignIn {
    pub fn csrf_token(&self) -> &str {
        &self.0.csrf_token
    }
}

/// One of one's own sessions, as the profile lists it (no id, no CSRF token).
#[derive(Debug, Clone)]
pub struct SessionView {
    /// The public handle that ends it.
    pub key: String,
    pub created_at: domain::Timestamp,
    pub last_seen_at: domain::Timestamp,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session this request came with.
    pub current: bool,
}

/// What the request's session cookie resolves to.
pub enum Authenticated {
    AwaitingCode {
        session: PendingSignIn,
        masked_email: String,
        /// What the second step asks for.
        method: TwoFactor,
    },
    /// Signed in; the session's CSRF token comes along so pages need no second lookup.
    Full {
        actor: Box<Actor>,
        csrf_token: String,
    },
}

/// The request context needed to open a session.
#[derive(Default, Clone)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The key that per-address limits count by: the address itself for IPv4, its /64 network for
/// IPv6 (one host or customer usually holds a whole /64, so counting single addresses there
/// would give an attacker billions of fresh budgets).
pub fn address_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        _ => ip.to_string(),
    }
}

pub fn hash_token(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

pub fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn code_hash(session_hash: &str, code: &str) -> String {
    hash_token(&format!("{session_hash}:{code}"))
}

/// The reason of a refusal by the IP Whitelist, naming the address.
fn outside_whitelist(ip: Option<&str>) -> String {
    format!(
        "address {} not in the IP Whitelist",
        ip.unwrap_or("unknown")
    )
}

fn failed(reason: &str, email: &str) -> Event {
    Event::new(
        Category::Auth,
        AuditAction::SignIn,
        crate::dashboard::SIGN_IN_FAILED,
    )
    .change("reason", "", reason)
    .change("email", "", email.chars().take(200).collect::<String>())
}

impl App {
    fn new_session(
        &self,
        user_id: i64,
        stage: SessionStage,
        client: &Client,
    ) -> (NewSession, SessionRecord) {
        let id = random_token();
        let csrf = random_token();
        let now = self.now();
        let record = SessionRecord {
            id_hash: hash_token(&id),
            key: random_token()[..16].to_string(),
            user_id,
            stage,
            csrf_token: csrf.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: now.plus_secs(self.settings.session_absolute.as_secs() as i64),
            ip: client.ip.clone(),
            user_agent: client
                .user_agent
                .as_ref()
                .map(|u| u.chars().take(300).collect()),
        };
        (
            NewSession {
                id,
                csrf_token: csrf,
            },
            record,
        )
    }

    /// The password step. Its first statement counts the attempt against the client address
    /// and reserves one against the account (`SignInStore::sign_in_attempt`); over the address's
    /// limit every email, known or not, gets the same 429, and no password is checked.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        client: &Client,
    ) -> Result<SignIn, AppError> {
        let ip = client.ip.as_deref();
        let now = self.now();
        // A malformed email is looked up as "", which no account has: the same work.
        let key = Email::parse(email).map(|e| e.key()).unwrap_or_default();
        let per_address = match (ip, self.settings.sign_in_attempts_per_ip) {
            (Some(_), n) if n > 0 => i64::from(n),
            _ => i64::MAX,
        };
        let SignInAttempt {
            address_attempts,
            address_window_ends,
            account,
        } = self
            .store
            .sign_in_attempt(&key, &address_key(ip.unwrap_or("")), per_address, now)
            .await?;
        if address_attempts > per_address {
            // One event per address and window: a flood of refused guesses must not become a
            // flood of event-log writes.
            if address_attempts == per_address + 1 {
                let e = Event::new(
                    Category::Auth,
                    AuditAction::SignIn,
                    "Sign-in refused: too many attempts from this address",
                )
                .change("attempts", "", address_attempts.to_string())
                .change("email", "", email.chars().take(200).collect::<String>());
                self.log(None, ip, e).await;
            }
            metrics::sign_in(SignInOutcome::AddressLimited);
            let wait = (address_window_ends.millis() - now.millis()).max(1000);
            return Err(AppError::TooManyUntil {
                message: TOO_MANY_FROM_ADDRESS.into(),
                retry_after_secs: (wait as u64).div_ceil(1000),
            });
        }
        let Some(SignInAccount { user, attempt }) = account else {
            self.hasher.verify_dummy(password).await;
            metrics::sign_in(SignInOutcome::UnknownEmail);
            self.log(None, ip, failed("unknown email", email)).await;
            return Err(AppError::Forbidden(INVALID_CREDENTIALS.into()));
        };
        let actor_less = failed("", &user.email).target("user", user.id, &user.email);
        if user.status == UserStatus::Disabled {
            self.hasher.verify_dummy(password).await;
            metrics::sign_in(SignInOutcome::Disabled);
            self.log(
                None,
                ip,
                actor_less.change("reason", "", "account disabled"),
            )
            .await;
            return Err(AppError::Forbidden(INVALID_CREDENTIALS.into()));
        }
        let Some(attempt) = attempt else {
            self.hasher.verify_dummy(password).await;
            metrics::sign_in(SignInOutcome::Locked);
            self.log(None, ip, actor_less.change("reason", "", "account locked"))
                .await;
            return Err(AppError::Forbidden(INVALID_CREDENTIALS.into()));
        };
        let verified = self.hasher.verify(password, &user.password_hash).await;
        if !verified.ok {
            metrics::sign_in(SignInOutcome::WrongPassword);
            self.record_failure(&user, attempt, "wrong password", ip)
                .await;
            return Err(AppError::Forbidden(INVALID_CREDENTIALS.into()));
        }
        if !user.ip_whitelist.admits_client(ip) {
            // The same work and answer as a wrong password: the attempt counts, one event.
            metrics::sign_in(SignInOutcome::IpNotWhitelisted);
            self.record_failure(&user, attempt, &outside_whitelist(ip), ip)
                .await;
            return Err(AppError::Forbidden(INVALID_CREDENTIALS.into()));
        }
        if verified.needs_rehash {
            let hash = self.hasher.hash(password).await;
            self.store.upgrade_password_hash(user.id, &hash).await?;
        }
        if user.two_factor == TwoFactor::Disabled {
            return self
                .complete_sign_in(&user, None, client)
                .await
                .map(SignIn::Done);
        }
        self.store.release_attempt(user.id).await?;
        if matches!(user.two_factor, TwoFactor::Totp | TwoFactor::Passkey) {
            // Nothing to send: the code is on the person's device, the passkey in it.
            let (session, record) = self.new_session(user.id, SessionStage::AwaitingCode, client);
            self.store.insert_session(&record).await?;
            return Ok(SignIn::SecondFactor { session });
        }
        if self.mailer.is_none() {
            self.log(
                None,
                ip,
                actor_less.change("reason", "", "no SMTP server for the code"),
            )
            .await;
            return Err(AppError::Mail(NO_SMTP_FOR_CODE.into()));
        }
        let (session, record) = self.new_session(user.id, SessionStage::AwaitingCode, client);
        self.store.insert_session(&record).await?;
        if let Err(e) = self.send_code(&user, &record.id_hash, ip, false).await {
            self.store.delete_session(&record.id_hash).await?;
            return Err(e);
        }
        Ok(SignIn::CodeSent {
            session,
            masked_email: masking::email(&user.email),
        })
    }

    pub(crate) async fn record_failure(
        &self,
        user: &UserRecord,
        attempt: i64,
        reason: &str,
        ip: Option<&str>,
    ) {
        let base = failed(reason, &user.email).target("user", user.id, &user.email);
        self.log(None, ip, base).await;
        if attempt >= 5 {
            let locked = Event::new(Category::Auth, AuditAction::Update, "Account locked")
                .target("user", user.id, &user.email)
                .change("consecutive failures", "", attempt.to_string());
            self.log(None, ip, locked).await;
        }
    }

    /// Sends a new code bound to the pre-2FA session `session_hash`, within the send limits:
    /// 5 codes per account per 15 minutes, and a resend at most once a minute.
    async fn send_code(
        &self,
        user: &UserRecord,
        session_hash: &str,
        ip: Option<&str>,
        resend: bool,
    ) -> Result<(), AppError> {
        let mailer = self
            .mailer
            .as_ref()
            .ok_or_else(|| AppError::Mail(NO_SMTP_FOR_CODE.into()))?;
        let now = self.now();
        let (sent, last) = self
            .store
            .code_sends_since(user.id, now.plus_secs(-SEND_WINDOW_SECS))
            .await?;
        if let Some(last) = last.filter(|_| resend) {
            let wait = RESEND_INTERVAL_SECS - (now.millis() - last.millis()) / 1000;
            if wait > 0 {
                return Err(AppError::TooMany(format!(
                    "A code was just sent; you can ask for another in {wait} s"
                )));
            }
        }
        if sent >= SENDS_PER_WINDOW {
            return Err(AppError::TooMany(
                "Too many codes were sent to this account; wait 15 minutes and try again".into(),
            ));
        }
        let code = format!("{:06}", OsRng.gen_range(0..1_000_000u32));
        let minutes = self.settings.code_ttl.as_secs() / 60;
        let mail = Mail {
            to_name: user.name.clone(),
            to: user.email.clone(),
            subject: "Your Back Office sign-in code".into(),
            body: format!(
                "Your sign-in code is {code}\n\nIt is valid for {minutes} minutes and can be used once.\n\
                 If you did not try to sign in, tell your administrator: someone knows your password.\n"
            ),
        };
        let target = Event::new(Category::Auth, AuditAction::Send, "");
        match mailer.send(mail).await {
            Ok(answer) => {
                tracing::info!(user_id = user.id, smtp = %answer, "sign-in code sent");
                self.store
                    .put_code(&CodeRecord {
                        session_hash: session_hash.to_string(),
                        user_id: user.id,
                        code_hash: code_hash(session_hash, &code),
                        expires_at: now.plus_secs(self.settings.code_ttl.as_secs() as i64),
                        failures: 0,
                        created_at: now,
                    })
                    .await?;
                self.store.record_code_send(user.id, now).await?;
                let e = Event {
                    event: "Sign-in code sent".into(),
                    ..target
                }
                .target("user", user.id, &user.email);
                self.log(None, ip, e).await;
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(user_id = user.id, smtp = %reason, "sign-in code could not be sent");
                let e = Event {
                    event: "Sign-in code not sent".into(),
                    ..target
                }
                .target("user", user.id, &user.email)
                .change("SMTP answer", "", reason);
                self.log(None, ip, e).await;
                Err(AppError::Mail(CODE_NOT_SENT.into()))
            }
        }
    }

    /// The code step (an emailed code, or the app's code for TOTP accounts).
    pub async fn verify_code(
        &self,
        session: &PendingSignIn,
        code: &str,
        client: &Client,
    ) -> Result<NewSession, AppError> {
        self.verify_second_factor(session, Answer::Code(code), client)
            .await
    }

    /// The options of the passkey prompt at the second step (a fresh challenge).
    pub async fn passkey_sign_in_options(
        &self,
        session: &PendingSignIn,
    ) -> Result<String, AppError> {
        self.passkey_challenge(session.0.user_id, &session.0.id_hash)
            .await
    }

    /// The second step. On success the pre-2FA session is replaced by a full one (new id). Every
    /// wrong answer counts toward the account's lockout, like a wrong password.
    pub async fn verify_second_factor(
        &self,
        session: &PendingSignIn,
        answer: Answer<'_>,
        client: &Client,
    ) -> Result<NewSession, AppError> {
        let session = &session.0;
        let ip = client.ip.as_deref();
        let user = self
            .store
            .user_by_id(session.user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if user.status == UserStatus::Disabled {
            self.store.delete_session(&session.id_hash).await?;
            return Err(AppError::Unauthenticated);
        }
        if !user.ip_whitelist.admits_client(ip) {
            metrics::sign_in(SignInOutcome::IpNotWhitelisted);
            self.store.delete_session(&session.id_hash).await?;
            let e =
                failed(&outside_whitelist(ip), &user.email).target("user", user.id, &user.email);
            self.log(None, ip, e).await;
            return Err(AppError::Conflict(INVALID_CREDENTIALS.into()));
        }
        let now = self.now();
        let Some(attempt) = self.store.reserve_attempt(user.id, now).await? else {
            metrics::sign_in(SignInOutcome::Locked);
            self.store.delete_session(&session.id_hash).await?;
            self.log(
                None,
                ip,
                failed("account locked", &user.email).target("user", user.id, &user.email),
            )
            .await;
            return Err(AppError::Conflict(
                "Too many failed attempts; sign in again later".into(),
            ));
        };
        let method = user.two_factor;
        let (accepted, factor, wrong) = match answer {
            Answer::Code(code) if method == TwoFactor::Email => {
                let code = code.trim();
                let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
                let ok = well_formed
                    && self
                        .store
                        .take_code(&session.id_hash, &code_hash(&session.id_hash, code), now)
                        .await?;
                (ok, "emailed code", "wrong code")
            }
            Answer::Code(code) if method == TwoFactor::Totp => (
                self.spend_totp_code(user.id, code).await?,
                "authenticator app",
                "wrong code",
            ),
            Answer::Recovery(code) if method.has_recovery_codes() => (
                self.spend_recovery_code_of(user.id, &user.email, code, None, ip)
                    .await?,
                "recovery code",
                "wrong recovery code",
            ),
            Answer::Passkey(json) if method == TwoFactor::Passkey => (
                self.passkey_answer_ok(user.id, &session.id_hash, json)
                    .await?,
                "passkey",
                "passkey not verified",
            ),
            _ => (false, "", "answer not for this account's method"),
        };
        if accepted {
            return self
                .complete_sign_in_with(&user, Some(&session.id_hash), client, Some(factor))
                .await;
        }
        metrics::sign_in(SignInOutcome::WrongCode);
        self.record_failure(&user, attempt, wrong, ip).await;
        let dead = match method {
            TwoFactor::Email => match self.store.code_for_session(&session.id_hash).await? {
                None => true,
                Some(c) if c.expires_at <= now => true,
                Some(_) => self.store.code_failed(&session.id_hash).await? >= MAX_CODE_FAILURES,
            },
            _ => false,
        };
        if dead || attempt >= 5 {
            self.store.delete_session(&session.id_hash).await?;
            return Err(AppError::Conflict(
                "The code is no longer valid; sign in again".into(),
            ));
        }
        let (field, message) = match (answer, method) {
            (Answer::Recovery(_), _) => ("recovery_code", "Wrong or used recovery code"),
            (Answer::Passkey(_), _) => ("passkey", "The passkey could not be verified; try again"),
            (_, TwoFactor::Totp) => (
                "code",
                "Wrong code; type the current code from your authenticator app",
            ),
            _ => ("code", "Wrong code; check the latest email and try again"),
        };
        Err(AppError::field(field, message))
    }

    /// "Resend code": a new code replaces the old one, within the per-account limits.
    pub async fn resend_code(
        &self,
        session: &PendingSignIn,
        client: &Client,
    ) -> Result<(), AppError> {
        let session = &session.0;
        let user = self
            .store
            .user_by_id(session.user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if user.status == UserStatus::Disabled {
            return Err(AppError::Unauthenticated);
        }
        if user.two_factor != TwoFactor::Email {
            // An app code, a passkey or a recovery code is asked for: an emailed one would
            // never be accepted.
            return Err(AppError::Conflict(
                "Your account signs in with another method; no code is emailed".into(),
            ));
        }
        self.send_code(&user, &session.id_hash, client.ip.as_deref(), true)
            .await
    }

    async fn complete_sign_in(
        &self,
        user: &UserRecord,
        pre_session: Option<&str>,
        client: &Client,
    ) -> Result<NewSession, AppError> {
        self.complete_sign_in_with(user, pre_session, client, None)
            .await
    }

    /// A completed sign-in; `factor` names the second factor that completed it.
    async fn complete_sign_in_with(
        &self,
        user: &UserRecord,
        pre_session: Option<&str>,
        client: &Client,
        factor: Option<&str>,
    ) -> Result<NewSession, AppError> {
        let (session, record) = self.new_session(user.id, SessionStage::Full, client);
        let mut e = Event::new(
            Category::Auth,
            AuditAction::SignIn,
            crate::dashboard::SIGNED_IN,
        )
        .target("user", user.id, &user.email);
        if let Some(f) = factor {
            e = e.change("second factor", "", f);
        }
        let entry = self.entry(None, client.ip.as_deref(), e);
        self.store.open_session(pre_session, &record, entry).await?;
        metrics::sign_in(SignInOutcome::Ok);
        Ok(session)
    }

    /// Resolves a session cookie. Expired (idle or absolute) sessions and sessions of disabled
    /// users are deleted and resolve to `None`.
    pub async fn authenticate(
        &self,
        raw_session_id: &str,
        ip: Option<String>,
    ) -> Result<Option<Authenticated>, AppError> {
        if raw_session_id.len() != 64 {
            return Ok(None);
        }
        let id_hash = hash_token(raw_session_id);
        let Some((session, authority)) = self.store.session_authority(&id_hash).await? else {
            return Ok(None);
        };
        let now = self.now();
        let idle_limit = session
            .last_seen_at
            .plus_secs(self.settings.session_idle.as_secs() as i64);
        let code_stage_limit = session
            .created_at
            .plus_secs(self.settings.code_ttl.as_secs() as i64);
        let expired = session.expires_at <= now
            || idle_limit <= now
            || (session.stage == SessionStage::AwaitingCode && code_stage_limit <= now);
        if expired || authority.user.status != UserStatus::Enabled {
            self.store.delete_session(&id_hash).await?;
            return Ok(None);
        }
        if session.stage == SessionStage::Full
            && !authority.user.ip_whitelist.admits_client(ip.as_deref())
        {
            // Ended, so a cookie carried elsewhere costs one event, not one per request.
            self.store.delete_session(&id_hash).await?;
            let e = Event::new(
                Category::Auth,
                AuditAction::Refused,
                "Session refused: address not in the IP Whitelist",
            )
            .target("user", authority.user.id, &authority.user.email)
            .change("address", "", ip.as_deref().unwrap_or("unknown"));
            self.log(None, ip.as_deref(), e).await;
            return Ok(None);
        }
        if session.stage == SessionStage::AwaitingCode {
            return Ok(Some(Authenticated::AwaitingCode {
                masked_email: masking::email(&authority.user.email),
                method: authority.user.two_factor,
                session: PendingSignIn(session),
            }));
        }
        if now.millis() - session.last_seen_at.millis() > 60_000 {
            self.store.touch_session(&id_hash, now).await?;
        }
        let actor = Actor::new(authority, Some(id_hash), None, ip);
        Ok(Some(Authenticated::Full {
            actor: Box::new(self.with_enrolment_due(actor).await?),
            csrf_token: session.csrf_token,
        }))
    }

    /// The CSRF token bound to a session.
    pub async fn csrf_token_of(&self, raw_session_id: &str) -> Result<Option<String>, AppError> {
        Ok(self
            .store
            .session(&hash_token(raw_session_id))
            .await?
            .map(|s| s.csrf_token))
    }

    pub async fn sign_out(&self, actor: &Actor) -> Result<(), AppError> {
        if let Some(h) = &actor.session_hash {
            self.store.delete_session(h).await?;
        }
        let e = Event::new(Category::Auth, AuditAction::SignOut, "Signed out").target(
            "user",
            actor.id(),
            &actor.user.email,
        );
        self.log(Some(actor), None, e).await;
        Ok(())
    }

    /// Abandons a sign-in at the code step.
    pub async fn cancel_sign_in(&self, session: &PendingSignIn) -> Result<(), AppError> {
        self.store
            .delete_session(&session.0.id_hash)
            .await
            .map_err(AppError::from)
    }

    /// Changes one's own password. `current` is required unless this is the forced change
    /// right after signing in with a password someone else chose. Other sessions end.
    pub async fn change_own_password(
        &self,
        actor: &Actor,
        current: Option<&str>,
        new: &str,
        confirm: &str,
    ) -> Result<(), AppError> {
        let mut errors = crate::FieldErrors::new();
        if !actor.user.must_change_password || current.is_some() {
            let ok = self
                .hasher
                .verify(current.unwrap_or(""), &actor.user.password_hash)
                .await
                .ok;
            if !ok {
                errors.insert(
                    "current_password",
                    "The current password is not correct".into(),
                );
            }
        }
        self.check_new_password(&actor.user, new, confirm, &mut errors)
            .await;
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let hash = self.hasher.hash(new).await;
        let change = store::UserChange {
            password: Some((hash, false)),
            end_sessions: Some(actor.session_hash.clone()),
            at: self.now(),
            ..Default::default()
        };
        let event = Event::new(Category::Auth, AuditAction::Update, "Password changed").target(
            "user",
            actor.id(),
            &actor.user.email,
        );
        let entry = self.entry(Some(actor), None, event);
        self.store
            .update_user(actor.id(), crate::concurrency::write(change, entry))
            .await?;
        Ok(())
    }

    /// The rules of every form where people choose their own new password: the policy, the
    /// confirmation, and not the current password.
    pub(crate) async fn check_new_password(
        &self,
        user: &UserRecord,
        new: &str,
        confirm: &str,
        errors: &mut crate::FieldErrors,
    ) {
        let local = Email::parse(&user.email)
            .map(|e| e.local_part().to_string())
            .unwrap_or_default();
        if let Err(e) = password::check(new, &local) {
            errors.insert("new_password", e.to_string());
        } else if new != confirm {
            errors.insert(
                "confirm_password",
                "The two passwords are not the same".into(),
            );
        } else if self.hasher.verify(new, &user.password_hash).await.ok {
            errors.insert(
                "new_password",
                "Choose a password different from the current one".into(),
            );
        }
    }

    pub async fn own_sessions(&self, actor: &Actor) -> Result<Vec<SessionView>, AppError> {
        let sessions = self.store.sessions_of_user(actor.id()).await?;
        Ok(sessions
            .into_iter()
            .map(|s| SessionView {
                current: actor.is_current_session(&s),
                key: s.key,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                ip: s.ip,
                user_agent: s.user_agent,
            })
            .collect())
    }

    pub async fn end_own_session(&self, actor: &Actor, key: &str) -> Result<(), AppError> {
        if !self.store.delete_user_session(actor.id(), key).await? {
            return Err(AppError::NotFound);
        }
        let e = Event::new(Category::Sessions, AuditAction::Delete, "Session ended").target(
            "user",
            actor.id(),
            &actor.user.email,
        );
        self.log(Some(actor), None, e).await;
        Ok(())
    }

    /// Housekeeping: removes sessions past their absolute lifetime and the sign-in counts of
    /// addresses whose window has ended. Also forgets password-reset requests older than a day
    /// (their limits look back 15 minutes) and expired reset links, expired passkey ceremonies,
    /// and authenticator-app set-ups left unconfirmed for a day.
    pub async fn purge_expired_sessions(&self) -> Result<u64, AppError> {
        let now = self.now();
        let day_ago = now.plus_secs(-24 * 3600);
        let sessions = self.store.delete_expired_sessions(now).await?;
        self.store.purge_sign_in_addresses(now).await?;
        self.store.purge_reset_requests(day_ago).await?;
        self.store.purge_two_factor_leftovers(now, day_ago).await?;
        Ok(sessions)
    }
}

#[cfg(test)]
mod tests {
    use super::address_key;

    #[test]
    fn ipv6_addresses_count_per_64_and_ipv4_per_address() {
        assert_eq!(address_key("203.0.113.7"), "203.0.113.7");
        assert_eq!(
            address_key("2001:db8:1:2:aaaa::1"),
            address_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_eq!(address_key("2001:db8:1:2::9"), "2001:db8:1:2::/64");
        assert_ne!(
            address_key("2001:db8:1:2::1"),
            address_key("2001:db8:1:3::1")
        );
        assert_eq!(address_key("::ffff:198.51.100.4"), "198.51.100.4");
        assert_eq!(address_key("not an address"), "not an address");
    }
}
