//! Users › bulk actions: tick users on the list (or take every user matching its filters),
//! choose an action, confirm it on a page that names the count, and read who was changed and
//! who was refused and why. The use case runs each user through the ordinary guards.

use crate::error::WebError;
use crate::form::CsrfForm;
use crate::layout::Layout;
use crate::pages::{render, render_status};
use crate::session::{redirect_with_flash, Staff};
use crate::AppState;
use app::users_bulk::{BulkOutcome, BulkResult, UserBulkAction};
use app::{AppError, GroupRef};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::users::{list_params_of, query_of};

/// The filters a bulk form carries (the list's own, under the same names).
pub const FILTERS: [&str; 9] = [
    "q",
    "status",
    "two_factor",
    "ip_whitelist",
    "group",
    "allowed_tag",
    "creator",
    "mask_data",
    "locked",
];

fn action_words(a: UserBulkAction, groups: &[GroupRef]) -> String {
    let caption = |g: i64| {
        groups
            .iter()
            .find(|r| r.id == g)
            .map_or_else(|| format!("group {g}"), |r| r.caption.clone())
    };
    match a {
        UserBulkAction::Enable => "Enable".into(),
        UserBulkAction::Disable => "Disable".into(),
        UserBulkAction::AddToGroup(g) => format!("Add to group {}", caption(g)),
        UserBulkAction::RemoveFromGroup(g) => format!("Remove from group {}", caption(g)),
        UserBulkAction::SignOutEverywhere => "Sign out everywhere".into(),
        UserBulkAction::DisableTwoFactor => "Disable 2FA".into(),
    }
}

#[derive(Template)]
#[template(path = "users_bulk.html")]
struct ConfirmPage {
    l: Layout,
    action: UserBulkAction,
    what: String,
    ids: Vec<i64>,
    emails: Vec<String>,
    /// More users match than one action takes.
    beyond: i64,
    error: Option<String>,
}

impl ConfirmPage {
    fn ids_text(&self) -> String {
        self.ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
    fn group_text(&self) -> String {
        self.action
            .group()
            .map(|g| g.to_string())
            .unwrap_or_default()
    }
}

#[derive(Template)]
#[template(path = "users_bulk_result.html")]
struct ResultPage {
    l: Layout,
    what: String,
    outcomes: Vec<BulkOutcome>,
}

impl ResultPage {
    fn count(&self, changed: bool) -> usize {
        self.outcomes
            .iter()
            .filter(|o| (o.result == BulkResult::Changed) == changed)
            .filter(|o| changed || matches!(o.result, BulkResult::Refused(_)))
            .count()
    }
    fn unchanged(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.result == BulkResult::Unchanged)
            .count()
    }
    fn refusals(&self) -> Vec<(&str, &str)> {
        self.outcomes
            .iter()
            .filter_map(|o| match &o.result {
                BulkResult::Refused(r) => Some((o.email.as_str(), r.as_str())),
                _ => None,
            })
            .collect()
    }
}

fn parse_action(f: &crate::form::Form) -> Option<UserBulkAction> {
    UserBulkAction::parse(f.get("action"), f.get("target_group").parse().ok())
}

/// Step 1: the list's form → a confirmation naming the count.
pub async fn confirm(
    State(state): State<AppState>,
    staff: Staff,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let back = |m: &str| Ok(redirect_with_flash(&state, "/users", m));
    let Some(action) = parse_action(&f) else {
        return back("Nothing done: choose an action (and a group to add to or remove from)");
    };
    let (ids, total) = if f.get("selection") == "matching" {
        let p = list_params_of(FILTERS.iter().map(|k| (*k, f.get(k))));
        state
            .app
            .matching_user_ids(&staff.actor, &query_of(&p, state.app.now()))
            .await?
    } else {
        let ids: Vec<i64> = f
            .get_all("id")
            .iter()
            .filter_map(|i| i.parse().ok())
            .collect();
        let n = ids.len() as i64;
        (ids, n)
    };
    if ids.is_empty() {
        return back(
            "Nothing done: tick at least one user, or choose every user matching the filters",
        );
    }
    let mut emails = Vec::new();
    for id in &ids {
        match state.app.get_user(&staff.actor, *id).await {
            Ok(u) => emails.push(u.email),
            Err(AppError::NotFound) => emails.push(format!("user {id} (no longer exists)")),
            Err(e) => return Err(e.into()),
        }
    }
    let groups = state.app.group_choices(&staff.actor).await?;
    Ok(render(&ConfirmPage {
        what: action_words(action, &groups),
        beyond: total - ids.len() as i64,
        action,
        ids,
        emails,
        error: None,
        l: staff.layout,
    }))
}

/// Step 2: the confirmed action, user by user; the result lists who was refused and why.
pub async fn apply(
    State(state): State<AppState>,
    staff: Staff,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let Some(action) = parse_action(&f) else {
        return Ok(redirect_with_flash(
            &state,
            "/users",
            "Nothing done: choose an action",
        ));
    };
    let ids: Vec<i64> = f
        .get("ids")
        .split(',')
        .filter_map(|i| i.trim().parse().ok())
        .collect();
    let groups = state.app.group_choices(&staff.actor).await?;
    let what = action_words(action, &groups);
    match state
        .app
        .bulk_users(&staff.actor, &ids, action, f.get("actor_password"))
        .await
    {
        Ok(outcomes) => Ok(render(&ResultPage {
            what,
            outcomes,
            l: staff.layout,
        })),
        Err(AppError::Invalid(errors)) => {
            let mut emails = Vec::new();
            for id in &ids {
                if let Ok(u) = state.app.get_user(&staff.actor, *id).await {
                    emails.push(u.email);
                }
            }
            Ok(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &ConfirmPage {
                    what,
                    beyond: 0,
                    action,
                    ids,
                    emails,
                    error: errors.values().next().cloned(),
                    l: staff.layout,
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}
