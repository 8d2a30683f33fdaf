//! The profile page (own password and sessions) and the forced password change.

use crate::error::WebError;
use crate::form::CsrfForm;
use crate::layout::Layout;
use crate::pages::{render, render_status};
use crate::problems::{problems, Problem};
use crate::session::{redirect_with_flash, Staff, StaffAnyState};
use crate::AppState;
use app::{AppError, FieldErrors};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

#[derive(Template)]
#[template(path = "password_forced.html")]
struct ForcedPage {
    csrf: String,
    email: String,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    l: Layout,
    name: String,
    two_factor: &'static str,
    groups: String,
    /// One's own IP Whitelist, comma-separated ("" for anywhere).
    ip_whitelist: String,
    sessions: Vec<app::auth::SessionView>,
    errors: FieldErrors,
    tokens: Vec<app::TokenRecord>,
    /// A token just created: its secret is shown on this page only.
    new_token: Option<String>,
}

impl ProfilePage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }

    fn problems(&self) -> Vec<Problem> {
        problems(
            &self.errors,
            &[
                ("current_password", "current_password"),
                ("new_password", "new_password"),
                ("confirm_password", "confirm_password"),
                ("name", "token_name"),
                ("expires_in_days", "expires_in_days"),
            ],
        )
    }
}

impl ForcedPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }

    fn problems(&self) -> Vec<Problem> {
        problems(&self.errors, NEW_PASSWORD_FIELDS)
    }
}

/// The fields of a form that sets a new password, in their order on the page.
pub(super) const NEW_PASSWORD_FIELDS: &[(&str, &str)] = &[
    ("new_password", "new_password"),
    ("confirm_password", "confirm_password"),
];

pub async fn forced_form(StaffAnyState(staff): StaffAnyState) -> Response {
    if !staff.actor.must_change_password() {
        return Redirect::to("/").into_response();
    }
    render(&ForcedPage {
        csrf: staff.layout.csrf,
        email: staff.actor.email().to_string(),
        errors: FieldErrors::new(),
    })
}

pub async fn forced_submit(
    State(state): State<AppState>,
    StaffAnyState(staff): StaffAnyState,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    match state
        .app
        .change_own_password(
            &staff.actor,
            None,
            f.get("new_password"),
            f.get("confirm_password"),
        )
        .await
    {
        Ok(()) => Ok(redirect_with_flash(
            &state,
            "/",
            "Your new password is saved",
        )),
        Err(AppError::Invalid(errors)) => Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ForcedPage {
                csrf: staff.layout.csrf,
                email: staff.actor.email().to_string(),
                errors,
            },
        )),
        Err(e) => Err(e.into()),
    }
}

async fn profile_page(
    state: &AppState,
    staff: Staff,
    errors: FieldErrors,
    new_token: Option<String>,
) -> Result<Response, WebError> {
    let sessions = state.app.own_sessions(&staff.actor).await?;
    let tokens = state.app.list_tokens(&staff.actor).await?;
    let u = staff.actor.account();
    let page = ProfilePage {
        name: u.name.clone(),
        two_factor: u.two_factor.label(),
        ip_whitelist: u.ip_whitelist.to_string(),
        groups: staff.actor.groups_label(),
        sessions,
        errors,
        tokens,
        new_token,
        l: staff.layout,
    };
    Ok(if page.errors.is_empty() {
        render(&page)
    } else {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    })
}

pub async fn show(State(state): State<AppState>, staff: Staff) -> Result<Response, WebError> {
    profile_page(&state, staff, FieldErrors::new(), None).await
}

pub async fn change_password(
    State(state): State<AppState>,
    staff: Staff,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let result = state
        .app
        .change_own_password(
            &staff.actor,
            Some(f.get("current_password")),
            f.get("new_password"),
            f.get("confirm_password"),
        )
        .await;
    match result {
        Ok(()) => Ok(redirect_with_flash(
            &state,
            "/profile",
            "Password changed; your other sessions were ended",
        )),
        Err(AppError::Invalid(errors)) => profile_page(&state, staff, errors, None).await,
        Err(e) => Err(e.into()),
    }
}

pub async fn end_session(
    State(state): State<AppState>,
    staff: Staff,
    Path(key): Path<String>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, WebError> {
    state.app.end_own_session(&staff.actor, &key).await?;
    Ok(redirect_with_flash(&state, "/profile", "Session ended"))
}

pub async fn create_token(
    State(state): State<AppState>,
    staff: Staff,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let days = f.get("expires_in_days").trim().parse::<i64>().ok();
    match state
        .app
        .create_token(
            &staff.actor,
            f.get("token_name"),
            days.or(Some(app::tokens::DEFAULT_DAYS)),
        )
        .await
    {
        Ok(t) => profile_page(&state, staff, FieldErrors::new(), Some(t.token)).await,
        Err(AppError::Invalid(errors)) => profile_page(&state, staff, errors, None).await,
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_token(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, WebError> {
    state.app.revoke_token(&staff.actor, id).await?;
    Ok(redirect_with_flash(&state, "/profile", "API token revoked"))
}
