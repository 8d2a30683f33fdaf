//! The Columns menu of a list (Users, Clients, Event log): which columns it shows, chosen by each
//! staff member for themself and kept for them (`app::preferences`). The list's page carries a
//! [`Columns`] named `cols` and a `here()` (its query string) for `columns_menu.html`.

use crate::error::WebError;
use crate::form::CsrfForm;
use crate::session::{redirect_with_flash, Staff};
use crate::AppState;
use app::AppError;
use axum::extract::State;
use axum::response::Response;

/// A list's columns, as `(label, code)` in the list's order, and the ones this viewer shows.
pub struct Columns {
    /// The list's name, also its path: `/users`, `/clients`, `/events`.
    pub list: &'static str,
    pub all: Vec<(&'static str, &'static str)>,
    pub shown: Vec<&'static str>,
}

impl Columns {
    /// The viewer's choice for `list`, whose columns are `all`.
    pub async fn of(
        state: &AppState,
        staff: &Staff,
        list: &'static str,
        all: &[(&'static str, &'static str)],
    ) -> Result<Self, AppError> {
        Ok(Columns {
            list,
            all: all.to_vec(),
            shown: state.app.list_columns(&staff.actor, list).await?,
        })
    }

    pub fn shows(&self, code: &str) -> bool {
        self.shown.contains(&code)
    }

    /// The shown columns, `(label, code)`.
    pub fn visible(&self) -> Vec<(&'static str, &'static str)> {
        self.all
            .iter()
            .copied()
            .filter(|(_, code)| self.shows(code))
            .collect()
    }
}

async fn save(
    state: AppState,
    staff: Staff,
    list: &'static str,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    // Back to the same list: the query string is parsed and written anew, never passed on.
    let back: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_urlencoded::parse(f.get("back").as_bytes()))
        .finish();
    let to = format!("/{list}?{back}");
    let message = match state
        .app
        .set_list_columns(&staff.actor, list, &f.get_all("col"))
        .await
    {
        Ok(()) => "Columns saved".to_string(),
        Err(AppError::Invalid(e)) => format!(
            "Columns not saved: {}",
            e.values().next().cloned().unwrap_or_default()
        ),
        Err(e) => return Err(e.into()),
    };
    Ok(redirect_with_flash(&state, &to, &message))
}

pub async fn users(
    State(state): State<AppState>,
    staff: Staff,
    f: CsrfForm,
) -> Result<Response, WebError> {
    save(state, staff, "users", f).await
}

pub async fn clients(
    State(state): State<AppState>,
    staff: Staff,
    f: CsrfForm,
) -> Result<Response, WebError> {
    save(state, staff, "clients", f).await
}

pub async fn events(
    State(state): State<AppState>,
    staff: Staff,
    f: CsrfForm,
) -> Result<Response, WebError> {
    save(state, staff, "events", f).await
}
