//! The second factors a person enrols themself: an authenticator app (TOTP), passkeys
//! (WebAuthn), the recovery codes that come with both, and the "Require 2FA" setting. The
//! sign-in side (checking a code, a passkey or a recovery code after the password) is in
//! `auth.rs`, next to the emailed code.
//!
//! Changing one's own method asks for the password and the current factor: a code from the app
//! or a recovery code, unless the session signed in with it in the last 15 minutes (the factor
//! was just proven; passkey and email accounts change their method that way).

use crate::{Actor, App, AppError};
use domain::audit::{AuditAction, Category, Event};
use domain::{recovery, totp, Action, Section, Timestamp, TwoFactor};
use rand::{rngs::OsRng, RngCore};
use sha2::Digest;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use store::{MethodChange, NewPasskey, CEREMONY_REGISTER, CEREMONY_SIGN_IN};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

/// The setting behind System › Settings › Require 2FA ("on" or absent).
pub const REQUIRE_SETTING: &str = "require_two_factor";
/// The issuer an authenticator app shows next to the account.
const ISSUER: &str = "Back Office";
/// A sign-in this recent proved the current factor.
const RECENT_SIGN_IN_SECS: i64 = 15 * 60;
/// How long a WebAuthn challenge may be answered.
const CEREMONY_SECS: i64 = 5 * 60;
/// How long an instance trusts its copy of "Require 2FA" (every request of an account without
/// 2FA looks at it).
const REQUIRE_CACHE: Duration = Duration::from_secs(1);
const NAME_MAX: usize = 100;

/// What the TOTP set-up page shows: the QR code (SVG, made here) and the same secret as text.
pub struct TotpSetup {
    pub secret: String,
    pub qr_svg: String,
}

#[derive(Debug, Clone)]
pub struct PasskeyView {
    pub id: i64,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// One's own two-factor authentication, as the profile and the Enable 2FA dialog show it.
pub struct TwoFactorView {
    pub method: TwoFactor,
    pub recovery_codes_left: i64,
    pub passkeys: Vec<PasskeyView>,
    /// The methods one may choose: Email only with SMTP, Passkey only with a domain name.
    pub offered: Vec<TwoFactor>,
    /// Changing the method needs a code now (the sign-in is not recent enough).
    pub needs_current_code: bool,
}

/// What proves a change of one's own method: the password, and a code of the current factor
/// (ignored after a recent sign-in).
pub struct Proof<'a> {
    pub password: &'a str,
    pub current_code: &'a str,
}

/// "Require 2FA", remembered for [`REQUIRE_CACHE`].
#[derive(Default)]
pub(crate) struct RequireCache(Mutex<Option<(Instant, bool)>>);

/// The relying party of passkeys: the public URL's host name. An IP address can't be one
/// (browsers refuse it), so such an install offers no passkeys.
pub(crate) fn relying_party(public_url: &str) -> Option<Webauthn> {
    let url = Url::parse(public_url).ok()?;
    let host = url.host_str()?;
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return None;
    }
    WebauthnBuilder::new(host, &url)
        .ok()?
        .rp_name(ISSUER)
        .build()
        .ok()
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

fn event(name: &str, actor: &Actor) -> Event {
    Event::new(Category::Auth, AuditAction::Update, name).target(
        "user",
        actor.id(),
        &actor.user.email,
    )
}

impl App {
    pub(crate) fn recovery_hash(&self, user_id: i64, normalised: &str) -> String {
        self.settings
            .secret_key
            .keyed_hash(&format!("recovery:{user_id}"), normalised)
    }

    /// A fresh set of recovery codes and their hashes.
    fn new_recovery_codes(&self, user_id: i64) -> (Vec<String>, Vec<String>) {
        let codes = recovery::generate(&mut OsRng);
        let hashes = codes
            .iter()
            .filter_map(|c| recovery::normalise(c))
            .map(|n| self.recovery_hash(user_id, &n))
            .collect();
        (codes, hashes)
    }

    pub(crate) fn open_totp_secret(&self, user_id: i64, sealed: &str) -> Result<Vec<u8>, AppError> {
        self.settings
            .secret_key
            .open(&format!("totp:{user_id}"), sealed)
            .map_err(internal)
    }

    /// Whether "Require 2FA" is on (shared by every instance through the database).
    pub async fn two_factor_required(&self) -> Result<bool, AppError> {
        if let Ok(c) = self.require_cache.0.lock() {
            if let Some((at, on)) = *c {
                if at.elapsed() < REQUIRE_CACHE {
                    return Ok(on);
                }
            }
        }
        let on = self.store.setting(REQUIRE_SETTING).await?.as_deref() == Some("on");
        if let Ok(mut c) = self.require_cache.0.lock() {
            *c = Some((Instant::now(), on));
        }
        Ok(on)
    }

    /// System › Settings › Require 2FA.
    pub async fn set_two_factor_required(&self, actor: &Actor, on: bool) -> Result<(), AppError> {
        self.authorize(
            actor,
            Section::Settings,
            Action::Update,
            "change Require 2FA",
        )
        .await?;
        if self.two_factor_required().await? == on {
            return Ok(());
        }
        let (before, after) = if on { ("off", "on") } else { ("on", "off") };
        let e = Event::new(Category::Settings, AuditAction::Update, "Settings changed").change(
            "Require 2FA",
            before,
            after,
        );
        let entry = self.entry(Some(actor), None, e);
        self.store
            .put_setting(REQUIRE_SETTING, if on { "on" } else { "off" }, Some(entry))
            .await?;
        if let Ok(mut c) = self.require_cache.0.lock() {
            *c = Some((Instant::now(), on));
        }
        Ok(())
    }

    /// Marks an actor without 2FA who must enrol before anything else (Require 2FA is on).
    pub(crate) async fn with_enrolment_due(&self, mut actor: Actor) -> Result<Actor, AppError> {
        actor.must_enrol =
            actor.user.two_factor == TwoFactor::Disabled && self.two_factor_required().await?;
        Ok(actor)
    }

    /// The methods offered to this install's staff; Require 2FA asks for TOTP or a passkey.
    fn offered_methods(&self, actor: &Actor) -> Vec<TwoFactor> {
        let mut m = Vec::new();
        if self.has_smtp() && !actor.must_enrol {
            m.push(TwoFactor::Email);
        }
        m.push(TwoFactor::Totp);
        if self.webauthn.is_some() {
            m.push(TwoFactor::Passkey);
        }
        m
    }

    pub async fn own_two_factor(&self, actor: &Actor) -> Result<TwoFactorView, AppError> {
        let id = actor.id();
        let passkeys = self
            .store
            .passkeys_of_user(id)
            .await?
            .into_iter()
            .map(|p| PasskeyView {
                id: p.id,
                name: p.name,
                created_at: p.created_at,
                last_used_at: p.last_used_at,
            })
            .collect();
        Ok(TwoFactorView {
            method: actor.user.two_factor,
            recovery_codes_left: self.store.recovery_codes_left(id).await?,
            passkeys,
            offered: self.offered_methods(actor),
            needs_current_code: actor.user.two_factor != TwoFactor::Disabled
                && !self.recent_sign_in(actor).await?,
        })
    }

    async fn recent_sign_in(&self, actor: &Actor) -> Result<bool, AppError> {
        let Some(hash) = &actor.session_hash else {
            return Ok(false);
        };
        let now = self.now();
        Ok(self
            .store
            .session(hash)
            .await?
            .is_some_and(|s| now.millis() - s.created_at.millis() <= RECENT_SIGN_IN_SECS * 1000))
    }

    /// Checks what a change of one's own two-factor settings needs (see the module doc). A
    /// recovery code given as the current factor is spent.
    ///
    /// Each check takes one of the account's sign-in attempts: a wrong password or code here
    /// counts toward the lockout exactly as at sign-in, so a session can't be used to guess.
    async fn check_proof(&self, actor: &Actor, proof: &Proof<'_>) -> Result<(), AppError> {
        let Some(attempt) = self.store.reserve_attempt(actor.id(), self.now()).await? else {
            return Err(AppError::Conflict(
                "Too many failed attempts; try again later".into(),
            ));
        };
        let ok = self
            .hasher
            .verify(proof.password, &actor.user.password_hash)
            .await
            .ok;
        if !ok {
            self.record_failure(
                &actor.user,
                attempt,
                "wrong password (two-factor settings)",
                None,
            )
            .await;
            return Err(AppError::field("password", "The password is not correct"));
        }
        let method = actor.user.two_factor;
        let code = proof.current_code.trim();
        let proven = method == TwoFactor::Disabled
            || self.recent_sign_in(actor).await?
            || (method == TwoFactor::Totp && self.spend_totp_code(actor.id(), code).await?)
            || (method.has_recovery_codes() && self.spend_recovery_code(actor, code, None).await?);
        if proven {
            self.store.release_attempt(actor.id()).await?;
            return Ok(());
        }
        self.record_failure(
            &actor.user,
            attempt,
            "wrong code (two-factor settings)",
            None,
        )
        .await;
        Err(AppError::field(
            "current_code",
            match method {
                TwoFactor::Totp => {
                    "Enter a current code from your authenticator app, or a recovery code"
                }
                TwoFactor::Passkey => {
                    "Enter a recovery code, or sign out and sign in again with your passkey"
                }
                _ => "Sign out and sign in again with your emailed code, then change the method",
            },
        ))
    }

    /// Accepts a TOTP code of the user's active secret once: true when it matched an unspent
    /// step and this caller spent it.
    pub(crate) async fn spend_totp_code(&self, user_id: i64, code: &str) -> Result<bool, AppError> {
        let Some(stored) = self.store.totp_secret(user_id).await? else {
            return Ok(false);
        };
        let secret = self.open_totp_secret(user_id, &stored.sealed)?;
        let now = self.now().millis().div_euclid(1000);
        match totp::verify(&secret, code, now, Some(stored.last_step)) {
            Some(step) => Ok(self.store.spend_totp_step(user_id, step).await?),
            None => Ok(false),
        }
    }

    /// Spends one of the actor's (or the signing-in user's) recovery codes, with its event.
    pub(crate) async fn spend_recovery_code(
        &self,
        actor: &Actor,
        typed: &str,
        ip: Option<&str>,
    ) -> Result<bool, AppError> {
        self.spend_recovery_code_of(actor.id(), &actor.user.email, typed, Some(actor), ip)
            .await
    }

    pub(crate) async fn spend_recovery_code_of(
        &self,
        user_id: i64,
        email: &str,
        typed: &str,
        actor: Option<&Actor>,
        ip: Option<&str>,
    ) -> Result<bool, AppError> {
        let Some(code) = recovery::normalise(typed) else {
            return Ok(false);
        };
        let left = self.store.recovery_codes_left(user_id).await?;
        let e = Event::new(Category::Auth, AuditAction::Update, "Recovery code used")
            .target("user", user_id, email)
            .change(
                "recovery codes left",
                left.to_string(),
                (left - 1).max(0).to_string(),
            );
        let entry = self.entry(actor, ip, e);
        Ok(self
            .store
            .spend_recovery_code(
                user_id,
                &self.recovery_hash(user_id, &code),
                self.now(),
                entry,
            )
            .await?)
    }

    /// The TOTP set-up: the secret waiting for its first code. Opening the set-up (`fresh`)
    /// always makes a new one, so a secret planted by whoever else knew the password is
    /// replaced before the owner scans it; a form sent back with an error shows the same one.
    pub async fn totp_setup(&self, actor: &Actor, fresh: bool) -> Result<TotpSetup, AppError> {
        actor.require_self_service()?;
        let id = actor.id();
        let context = format!("totp-enrolment:{id}");
        let pending = if fresh {
            None
        } else {
            self.store.totp_enrolment(id).await?
        };
        let secret = match pending {
            Some(sealed) => self
                .settings
                .secret_key
                .open(&context, &sealed)
                .map_err(internal)?,
            None => {
                let mut s = vec![0u8; totp::SECRET_BYTES];
                OsRng.fill_bytes(&mut s);
                let sealed = self.settings.secret_key.seal(&context, &s);
                self.store
                    .put_totp_enrolment(id, &sealed, self.now())
                    .await?;
                s
            }
        };
        let uri = totp::otpauth_uri(ISSUER, actor.email(), &secret);
        let qr = qrcode::QrCode::new(uri.as_bytes()).map_err(internal)?;
        let svg = qr
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build();
        // Inline in the page: the XML declaration has no place in HTML.
        let qr_svg = match svg.find("<svg") {
            Some(i) => svg[i..].to_string(),
            None => svg,
        };
        Ok(TotpSetup {
            secret: totp::grouped(&totp::base32(&secret)),
            qr_svg,
        })
    }

    /// "Verify" on the TOTP set-up: only a correct code from the app switches the method.
    /// Returns the new recovery codes, to be shown once.
    pub async fn confirm_totp(
        &self,
        actor: &Actor,
        code: &str,
        proof: &Proof<'_>,
    ) -> Result<Vec<String>, AppError> {
        actor.require_self_service()?;
        let id = actor.id();
        let sealed = self
            .store
            .totp_enrolment(id)
            .await?
            .ok_or_else(|| AppError::Conflict("The set-up expired; start it again".into()))?;
        let secret = self
            .settings
            .secret_key
            .open(&format!("totp-enrolment:{id}"), &sealed)
            .map_err(internal)?;
        let now = self.now().millis().div_euclid(1000);
        let Some(step) = totp::verify(&secret, code, now, None) else {
            return Err(AppError::field(
                "code",
                "Wrong code: check that the app shows this account, and type its current code",
            ));
        };
        self.check_proof(actor, proof).await?;
        let (codes, hashes) = self.new_recovery_codes(id);
        let change = MethodChange {
            method: TwoFactor::Totp,
            expect: Some(actor.user.two_factor),
            totp: Some((
                self.settings
                    .secret_key
                    .seal(&format!("totp:{id}"), &secret),
                step,
            )),
            confirms_enrolment: Some(sealed),
            passkey: None,
            recovery_hashes: hashes,
            at: self.now(),
        };
        self.switch_method(actor, change).await?;
        Ok(codes)
    }

    /// Email codes as one's own method (only with SMTP).
    pub async fn choose_email_two_factor(
        &self,
        actor: &Actor,
        proof: &Proof<'_>,
    ) -> Result<(), AppError> {
        actor.require_self_service()?;
        if !self.offered_methods(actor).contains(&TwoFactor::Email) {
            return Err(AppError::field(
                "method",
                "Email codes are not offered here: choose an authenticator app (TOTP) or a passkey",
            ));
        }
        if actor.user.two_factor == TwoFactor::Email {
            return Ok(());
        }
        self.check_proof(actor, proof).await?;
        let change = MethodChange {
            method: TwoFactor::Email,
            expect: Some(actor.user.two_factor),
            totp: None,
            confirms_enrolment: None,
            passkey: None,
            recovery_hashes: Vec::new(),
            at: self.now(),
        };
        self.switch_method(actor, change).await
    }

    async fn switch_method(&self, actor: &Actor, change: MethodChange) -> Result<(), AppError> {
        let before = actor.user.two_factor;
        let name = if before == TwoFactor::Disabled {
            "Two-factor authentication set up"
        } else {
            "Two-factor authentication method changed"
        };
        let mut e = event(name, actor).change(
            "two-factor authentication",
            before.label(),
            change.method.label(),
        );
        if let Some(p) = &change.passkey {
            e = e.change("passkey", "", &p.name);
        }
        let entry = self.entry(Some(actor), None, e);
        self.store
            .set_two_factor_method(actor.id(), change, entry)
            .await?;
        Ok(())
    }

    /// New recovery codes; the old ones stop working.
    pub async fn regenerate_recovery_codes(
        &self,
        actor: &Actor,
        password: &str,
    ) -> Result<Vec<String>, AppError> {
        actor.require_self_service()?;
        if !actor.user.two_factor.has_recovery_codes() {
            return Err(AppError::Conflict(
                "Recovery codes come with an authenticator app or a passkey".into(),
            ));
        }
        if !self
            .hasher
            .verify(password, &actor.user.password_hash)
            .await
            .ok
        {
            return Err(AppError::field("password", "The password is not correct"));
        }
        let (codes, hashes) = self.new_recovery_codes(actor.id());
        let entry = self.entry(
            Some(actor),
            None,
            event("Recovery codes regenerated", actor),
        );
        self.store
            .replace_recovery_codes(actor.id(), &hashes, entry)
            .await?;
        Ok(codes)
    }

    fn relying_party(&self) -> Result<&Webauthn, AppError> {
        self.webauthn.as_ref().ok_or_else(|| {
            AppError::Conflict(
                "Passkeys need the Back Office to be reached by a domain name (BACKOFFICE_PUBLIC_URL)".into(),
            )
        })
    }

    /// The WebAuthn user handle: stable per account, and reveals nothing (not even the id).
    fn user_handle(&self, user_id: i64) -> Uuid {
        let h = self
            .settings
            .secret_key
            .keyed_hash("webauthn-user", &user_id.to_string());
        let bytes = hex::decode(&h[..32]).unwrap_or_default();
        Uuid::from_slice(&bytes).unwrap_or_default()
    }

    fn seal_json(&self, context: &str, value: &impl serde::Serialize) -> Result<String, AppError> {
        let json = serde_json::to_vec(value).map_err(internal)?;
        Ok(self.settings.secret_key.seal(context, &json))
    }

    fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        context: &str,
        sealed: &str,
    ) -> Result<T, AppError> {
        let plain = self
            .settings
            .secret_key
            .open(context, sealed)
            .map_err(internal)?;
        serde_json::from_slice(&plain).map_err(internal)
    }

    /// Keeps a WebAuthn ceremony's state (sealed: it holds the challenge) for the session that
    /// started it, so whichever instance gets the answer can finish it.
    async fn start_ceremony(
        &self,
        session_hash: &str,
        purpose: &str,
        state: &impl serde::Serialize,
    ) -> Result<(), AppError> {
        let sealed = self.seal_json(&format!("ceremony:{session_hash}"), state)?;
        let until = self.now().plus_secs(CEREMONY_SECS);
        self.store
            .put_ceremony(session_hash, purpose, &sealed, until)
            .await?;
        Ok(())
    }

    async fn passkeys(&self, user_id: i64) -> Result<Vec<(i64, Passkey)>, AppError> {
        let context = format!("passkey:{user_id}");
        self.store
            .passkeys_of_user(user_id)
            .await?
            .into_iter()
            .map(|p| Ok((p.id, self.open_json(&context, &p.credential)?)))
            .collect()
    }

    /// Starts adding a passkey: the options for the browser's `navigator.credentials.create`.
    pub async fn passkey_registration_options(&self, actor: &Actor) -> Result<String, AppError> {
        actor.require_self_service()?;
        let rp = self.relying_party()?;
        let session = actor
            .session_hash
            .as_deref()
            .ok_or(AppError::Unauthenticated)?;
        let exclude = self
            .passkeys(actor.id())
            .await?
            .into_iter()
            .map(|(_, p)| p.cred_id().clone())
            .collect::<Vec<_>>();
        let (options, state) = rp
            .start_passkey_registration(
                self.user_handle(actor.id()),
                actor.email(),
                actor.name(),
                Some(exclude),
            )
            .map_err(internal)?;
        self.start_ceremony(session, CEREMONY_REGISTER, &state)
            .await?;
        serde_json::to_string(&options).map_err(internal)
    }

    /// Finishes adding a passkey called `name` from the browser's answer. When passkeys were not
    /// the method yet this switches it (with the proof) and returns the new recovery codes.
    pub async fn finish_passkey_registration(
        &self,
        actor: &Actor,
        name: &str,
        credential: &str,
        proof: &Proof<'_>,
    ) -> Result<Option<Vec<String>>, AppError> {
        actor.require_self_service()?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control)
        {
            return Err(AppError::field(
                "name",
                "Give the passkey a name (at most 100 characters), e.g. the device it is on",
            ));
        }
        let rp = self.relying_party()?;
        let session = actor
            .session_hash
            .as_deref()
            .ok_or(AppError::Unauthenticated)?;
        let answer: RegisterPublicKeyCredential =
            serde_json::from_str(credential).map_err(|_| {
                AppError::field(
                    "credential",
                    "The browser did not create a passkey; try again",
                )
            })?;
        // The passkey first, the proof after: a failed prompt must not spend the authenticator
        // code or recovery code given as proof (the page starts a new ceremony either way).
        let sealed_state = self
            .store
            .take_ceremony(session, CEREMONY_REGISTER, self.now())
            .await?
            .ok_or_else(|| {
                AppError::field("credential", "The passkey prompt expired; try again")
            })?;
        let state: PasskeyRegistration =
            self.open_json(&format!("ceremony:{session}"), &sealed_state)?;
        let passkey = rp
            .finish_passkey_registration(&answer, &state)
            .map_err(|e| {
                tracing::info!(error = %e, "passkey registration refused");
                AppError::field("credential", "The passkey could not be verified; try again")
            })?;
        self.check_proof(actor, proof).await?;
        let id = actor.id();
        let new = NewPasskey {
            name: name.to_string(),
            credential_key: hex::encode(sha2::Sha256::digest(passkey.cred_id().as_ref())),
            credential: self.seal_json(&format!("passkey:{id}"), &passkey)?,
        };
        if actor.user.two_factor == TwoFactor::Passkey {
            let e = event("Passkey added", actor).change("passkey", "", name);
            let entry = self.entry(Some(actor), None, e);
            self.store.add_passkey(id, &new, self.now(), entry).await?;
            return Ok(None);
        }
        let (codes, hashes) = self.new_recovery_codes(id);
        let change = MethodChange {
            method: TwoFactor::Passkey,
            expect: Some(actor.user.two_factor),
            totp: None,
            confirms_enrolment: None,
            passkey: Some(new),
            recovery_hashes: hashes,
            at: self.now(),
        };
        self.switch_method(actor, change).await?;
        Ok(Some(codes))
    }

    /// **Remove** on one of one's passkeys (not the last one).
    pub async fn remove_passkey(
        &self,
        actor: &Actor,
        id: i64,
        password: &str,
    ) -> Result<(), AppError> {
        actor.require_self_service()?;
        if !self
            .hasher
            .verify(password, &actor.user.password_hash)
            .await
            .ok
        {
            return Err(AppError::field("password", "The password is not correct"));
        }
        let name = self
            .store
            .passkeys_of_user(actor.id())
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .map(|p| p.name)
            .ok_or(AppError::NotFound)?;
        let e = event("Passkey removed", actor).change("passkey", &name, "");
        let entry = self.entry(Some(actor), None, e);
        self.store.remove_passkey(actor.id(), id, entry).await?;
        Ok(())
    }

    /// The sign-in's passkey step: options for `navigator.credentials.get`, bound to the
    /// pre-2FA session.
    pub(crate) async fn passkey_challenge(
        &self,
        user_id: i64,
        session_hash: &str,
    ) -> Result<String, AppError> {
        let rp = self.relying_party()?;
        let keys: Vec<Passkey> = self
            .passkeys(user_id)
            .await?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        if keys.is_empty() {
            return Err(AppError::Conflict(
                "This account has no passkey; use a recovery code".into(),
            ));
        }
        let (options, state) = rp.start_passkey_authentication(&keys).map_err(internal)?;
        self.start_ceremony(session_hash, CEREMONY_SIGN_IN, &state)
            .await?;
        serde_json::to_string(&options).map_err(internal)
    }

    /// Checks the browser's passkey answer against the session's challenge: true when one of
    /// the user's passkeys signed it (its counter and last use are recorded).
    pub(crate) async fn passkey_answer_ok(
        &self,
        user_id: i64,
        session_hash: &str,
        answer: &str,
    ) -> Result<bool, AppError> {
        let rp = self.relying_party()?;
        let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(answer) else {
            return Ok(false);
        };
        let Some(sealed) = self
            .store
            .take_ceremony(session_hash, CEREMONY_SIGN_IN, self.now())
            .await?
        else {
            return Ok(false);
        };
        let state: PasskeyAuthentication =
            self.open_json(&format!("ceremony:{session_hash}"), &sealed)?;
        let result = match rp.finish_passkey_authentication(&answer, &state) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "passkey sign-in refused");
                return Ok(false);
            }
        };
        for (id, mut key) in self.passkeys(user_id).await? {
            if key.cred_id() == result.cred_id() {
                key.update_credential(&result);
                let sealed = self.seal_json(&format!("passkey:{user_id}"), &key)?;
                self.store.passkey_used(id, &sealed, self.now()).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }
}
