//! One's own two-factor authentication: the Enable 2FA dialog (the profile menu's entry), the
//! TOTP and passkey set-ups, email codes, recovery codes, passkeys, and the prompt's "Not now".
//! Every handler here admits a person whom Require 2FA keeps from everything else.

use crate::error::WebError;
use crate::form::CsrfForm;
use crate::layout::Layout;
use crate::pages::{render, render_status};
use crate::problems::{problems, Problem};
use crate::session::{redirect_with_flash, set_cookie, Enrolling, Staff, PROMPT_DISMISSED_COOKIE};
use crate::AppState;
use app::two_factor::{Proof, TotpSetup, TwoFactorView};
use app::{AppError, FieldErrors};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "two_factor.html")]
struct OverviewPage {
    l: Layout,
    view: TwoFactorView,
    must_enrol: bool,
    errors: FieldErrors,
    /// The id of the password field the password error is about: this page has one per form
    /// (Regenerate recovery codes, and Remove on each passkey).
    password_field: String,
}

impl OverviewPage {
    fn problems(&self) -> Vec<Problem> {
        problems(&self.errors, &[("password", &self.password_field)])
    }

    fn password_error_on(&self, field: &str) -> bool {
        self.errors.contains_key("password") && self.password_field == field
    }

    fn remove_field(&self, passkey: &i64) -> String {
        format!("remove_password_{passkey}")
    }
}

/// The set-up forms' fields in their order: the code, then the proof of who one is.
const SETUP_FIELDS: &[(&str, &str)] = &[
    ("code", "code"),
    ("password", "password"),
    ("current_code", "current_code"),
];

impl TotpPage {
    fn problems(&self) -> Vec<Problem> {
        problems(&self.errors, SETUP_FIELDS)
    }
}

impl EmailPage {
    fn problems(&self) -> Vec<Problem> {
        problems(&self.errors, SETUP_FIELDS)
    }
}

#[derive(Template)]
#[template(path = "two_factor_totp.html")]
struct TotpPage {
    l: Layout,
    setup: TotpSetup,
    needs_current_code: bool,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "two_factor_passkey.html")]
struct PasskeyPage {
    l: Layout,
    /// The options of `navigator.credentials.create`, as JSON (escaped into an attribute).
    options: String,
    name: String,
    needs_current_code: bool,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "two_factor_email.html")]
struct EmailPage {
    l: Layout,
    needs_current_code: bool,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage {
    l: Layout,
    codes: Vec<String>,
    /// What the codes stand in for ("authenticator app", "passkey").
    factor: &'static str,
    /// The codes as a `data:` URL for the Download button (no script needed).
    download: String,
    message: Option<String>,
}

macro_rules! field_errors {
    ($($t:ty),*) => {$(
        impl $t {
            fn err(&self, field: &str) -> String {
                self.errors.get(field).cloned().unwrap_or_default()
            }
        }
    )*};
}
field_errors!(OverviewPage, TotpPage, PasskeyPage, EmailPage);

fn proof(f: &crate::form::Form) -> Proof<'_> {
    Proof {
        password: f.get("password"),
        current_code: f.get("current_code"),
    }
}

fn codes_page(
    staff: Staff,
    codes: Vec<String>,
    factor: &'static str,
    message: Option<String>,
) -> Response {
    let text = format!(
        "Back Office recovery codes for {}\nEach code works once.\n\n{}\n",
        staff.actor.email(),
        codes.join("\n")
    );
    let download = format!(
        "data:text/plain;charset=utf-8,{}",
        form_urlencoded::byte_serialize(text.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    );
    render(&RecoveryCodesPage {
        l: staff.layout,
        codes,
        factor,
        download,
        message,
    })
}

async fn overview(
    state: &AppState,
    staff: Staff,
    errors: FieldErrors,
    password_field: String,
    status: StatusCode,
) -> Result<Response, WebError> {
    let view = state.app.own_two_factor(&staff.actor).await?;
    Ok(render_status(
        status,
        &OverviewPage {
            must_enrol: staff.actor.must_enrol(),
            l: staff.layout,
            view,
            errors,
            password_field,
        },
    ))
}

/// The profile menu's "Enable 2FA" / "Two-factor authentication".
pub async fn show(
    State(state): State<AppState>,
    Enrolling(staff): Enrolling,
) -> Result<Response, WebError> {
    overview(
        &state,
        staff,
        FieldErrors::new(),
        String::new(),
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub struct Choice {
    method: Option<String>,
}

/// **OK** in the dialog: on to the chosen method's set-up.
pub async fn choose(Enrolling(_): Enrolling, Query(c): Query<Choice>) -> Response {
    match c.method.as_deref() {
        Some("totp") => Redirect::to("/two-factor/totp").into_response(),
        Some("passkey") => Redirect::to("/two-factor/passkey").into_response(),
        Some("email") => Redirect::to("/two-factor/email").into_response(),
        _ => Redirect::to("/two-factor").into_response(),
    }
}

async fn needs_current_code(state: &AppState, staff: &Staff) -> Result<bool, AppError> {
    Ok(state
        .app
        .own_two_factor(&staff.actor)
        .await?
        .needs_current_code)
}

async fn totp_page(
    state: &AppState,
    staff: Staff,
    errors: FieldErrors,
    status: StatusCode,
) -> Result<Response, WebError> {
    // A form sent back with an error keeps the secret the person has scanned.
    let fresh = errors.is_empty();
    let needs = needs_current_code(state, &staff).await?;
    let setup = state.app.totp_setup(&staff.actor, fresh).await?;
    Ok(render_status(
        status,
        &TotpPage {
            l: staff.layout,
            setup,
            needs_current_code: needs,
            errors,
        },
    ))
}

pub async fn totp_form(
    State(state): State<AppState>,
    Enrolling(staff): Enrolling,
) -> Result<Response, WebError> {
    totp_page(&state, staff, FieldErrors::new(), StatusCode::OK).await
}

pub async fn totp_verify(
    State(state): State<AppState>,
    Enrolling(staff): Enrolling,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    match state
        .app
        .confirm_totp(&staff.actor, f.get("code"), &proof(&f))
        .await
    {
        Ok(codes) => Ok(codes_page(
            staff,
            codes,
            "authenticator app",
            Some("Two-factor authentication with your authenticator app is on.".into()),
        )),
        Err(AppError::Invalid(errors)) => {
            totp_page(&state, staff, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn passkey_page(
    state: &AppState,
    staff: Staff,
    name: String,
    errors: FieldErrors,
    status: StatusCode,
) -> Result<Response, WebError> {
    let needs = needs_current_code(state, &staff).await?;
    let options = state.app.passkey_registration_options(&staff.actor).await?;
    Ok(render_status(
        status,
        &PasskeyPage {
            l: staff.layout,
            options,
            name,
            needs_current_code: needs,
            errors,
        },
    ))
}

pub async fn passkey_form(
    State(state): State<AppState>,
    Enrolling(staff): Enrolling,
) -> Result<Response, WebError> {
    passkey_page(
        &state,
        staff,
        String::new(),
        FieldErrors::new(),
        StatusCode::OK,
    )
    .await
}

pub async fn passkey_create(
    State(state): State<AppState>,
    Enrolling(staff): Enrolling,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let result = state
        .app
        .finish_passkey_registration(&staff.actor, f.get("name"), f.get("credential"), &proof(&f))
        .await;
    match result {
        Ok(Some(codes)) => Ok(codes_page(
            staff,
            codes,
            "passkey",
            Some("Two-factor authentication with a passkey is on.".into()),
        )),
        Ok(None) => Ok(redirect_with_flash(
            &state,
            "/two-factor",
            "The passkey was added",
        )),
        Err(AppError::Invalid(errors)) => {
            let name = f.get("name").to_string();
            passkey_page(
                &state,
                staff,
                name,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn passkey_remove(
    State(state): State<AppState>,
    Enrolling(staff): Enrolling,
    Path(id): Path<i64>,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    match state
        .app
        .remove_passkey(&staff.actor, id, f.get("password"))
        .await
    {
        Ok(()) => Ok(redirect_with_flash(
            &state,
            "/two-factor",
            "The passkey was removed",
        )),
        Err(AppError::Invalid(errors)) => {
            let field = format!("remove_password_{id}");
            overview(
                &state,
                staff,
                errors,
                field,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn email_form(
    State(state): State<AppState>,
    Enrolling(staff): Enrolling,
) -> Result<Response, WebError> {
    let needs = needs_current_code(&state, &staff).await?;
    Ok(render(&EmailPage {
        l: staff.layout,
        needs_current_code: needs,
        errors: FieldErrors::new(),
    }))
}

pub async fn email_choose(
    State(state): State<AppState>,
    Enrolling(staff): Enrolling,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    match state
        .app
        .choose_email_two_factor(&staff.actor, &proof(&f))
        .await
    {
        Ok(()) => Ok(redirect_with_flash(
            &state,
            "/two-factor",
            "Sign-in codes are now sent by email",
        )),
        Err(AppError::Invalid(errors)) => {
            let needs = needs_current_code(&state, &staff).await.unwrap_or(true);
            Ok(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &EmailPage {
                    l: staff.layout,
                    needs_current_code: needs,
                    errors,
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn regenerate_codes(
    State(state): State<AppState>,
    Enrolling(staff): Enrolling,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    match state
        .app
        .regenerate_recovery_codes(&staff.actor, f.get("password"))
        .await
    {
        Ok(codes) => {
            let factor = if staff.actor.two_factor() == domain::TwoFactor::Passkey {
                "passkey"
            } else {
                "authenticator app"
            };
            Ok(codes_page(
                staff,
                codes,
                factor,
                Some("New recovery codes: the previous ones no longer work.".into()),
            ))
        }
        Err(AppError::Invalid(errors)) => {
            let field = "regen_password".to_string();
            overview(
                &state,
                staff,
                errors,
                field,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// "Not now" on the prompt (only when 2FA is not required): not asked again in this browser
/// session.
pub async fn dismiss_prompt(
    State(state): State<AppState>,
    _staff: Staff,
    CsrfForm(_): CsrfForm,
) -> Response {
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, PROMPT_DISMISSED_COOKIE, "1"),
    );
    r
}
