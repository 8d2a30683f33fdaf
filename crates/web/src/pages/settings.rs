//! System › Settings: mail configuration and "Send test email", Require 2FA, and how the event
//! log's forwarding to a SIEM stands.

use crate::error::WebError;
use crate::form::CsrfForm;
use crate::layout::Layout;
use crate::pages::{render, render_status};
use crate::problems::{problems, Problem};
use crate::session::Staff;
use crate::AppState;
use app::settings::MailSettings;
use app::{AppError, FieldErrors};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use domain::{Action, Section};

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    l: Layout,
    mail: Option<MailSettings>,
    can_send: bool,
    to: String,
    result: Option<(bool, String)>,
    /// Require 2FA: accounts without a second factor must set one up before anything else.
    require_two_factor: bool,
    /// Where the event log is forwarded, and how far behind each destination is.
    forwarding: Vec<app::forwarding::ForwardingStatus>,
    /// What the test email's form got wrong (an address that isn't one).
    errors: FieldErrors,
}

impl SettingsPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }

    fn problems(&self) -> Vec<Problem> {
        problems(&self.errors, &[("to", "to")])
    }
}

async fn page(
    state: &AppState,
    staff: Staff,
    to: String,
    result: Result<Option<(bool, String)>, FieldErrors>,
) -> Result<Response, WebError> {
    let mail = state.app.mail_settings(&staff.actor).await?;
    let require_two_factor = state.app.two_factor_required().await?;
    let forwarding = state.app.forwarding_status(&staff.actor).await?;
    let failed = matches!(result, Ok(Some((false, _))));
    let (result, errors) = match result {
        Ok(r) => (r, FieldErrors::new()),
        Err(errors) => (None, errors),
    };
    let p = SettingsPage {
        can_send: staff.actor.can(Section::Settings, Action::Update),
        l: staff.layout,
        mail,
        to,
        result,
        require_two_factor,
        forwarding,
        errors,
    };
    Ok(if failed {
        render_status(StatusCode::BAD_GATEWAY, &p)
    } else if !p.errors.is_empty() {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &p)
    } else {
        render(&p)
    })
}

pub async fn show(State(state): State<AppState>, staff: Staff) -> Result<Response, WebError> {
    let to = staff.actor.email().to_string();
    page(&state, staff, to, Ok(None)).await
}

pub async fn test_email(
    State(state): State<AppState>,
    staff: Staff,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let to = f.get("to").to_string();
    let result = match state.app.send_test_email(Some(&staff.actor), &to).await {
        Ok(answer) => Ok(Some((
            true,
            format!("Sent. The SMTP server answered: {answer}"),
        ))),
        Err(AppError::Mail(m)) => Ok(Some((false, format!("Not sent: {m}")))),
        Err(AppError::Invalid(errors)) => Err(errors),
        Err(e) => return Err(e.into()),
    };
    page(&state, staff, to, result).await
}

/// **Require 2FA** (Save).
pub async fn require_two_factor(
    State(state): State<AppState>,
    staff: Staff,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let on = f.get("require_two_factor") == "on";
    state.app.set_two_factor_required(&staff.actor, on).await?;
    Ok(crate::session::redirect_with_flash(
        &state,
        "/settings",
        if on {
            "Require 2FA is on: accounts without two-factor authentication must set it up at their next request"
        } else {
            "Require 2FA is off"
        },
    ))
}
