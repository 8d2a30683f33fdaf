//! Clients › Tags: list, create, rename and delete (with the count of clients that carry the
//! tag, and a confirmation).

use crate::error::WebError;
use crate::form::CsrfForm;
use crate::layout::Layout;
use crate::pages::{render, render_status};
use crate::session::{redirect_with_flash, Staff};
use crate::AppState;
use app::{AppError, FieldErrors, TagRecord};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::{Action, Section};

#[derive(Template)]
#[template(path = "tags_list.html")]
struct ListPage {
    l: Layout,
    tags: Vec<TagRecord>,
    can_create: bool,
    can_update: bool,
    can_delete: bool,
}

pub async fn list(State(state): State<AppState>, staff: Staff) -> Result<Response, WebError> {
    let tags = state.app.list_tags(&staff.actor).await?;
    Ok(render(&ListPage {
        can_create: staff.actor.can(Section::ClientTags, Action::Create),
        can_update: staff.actor.can(Section::ClientTags, Action::Update),
        can_delete: staff.actor.can(Section::ClientTags, Action::Delete),
        tags,
        l: staff.layout,
    }))
}

#[derive(Template)]
#[template(path = "tag_form.html")]
struct FormPage {
    l: Layout,
    /// `None` on Create tag.
    id: Option<i64>,
    caption: String,
    errors: FieldErrors,
}

impl FormPage {
    fn problems(&self) -> Vec<crate::problems::Problem> {
        crate::problems::problems(&self.errors, &[("caption", "caption")])
    }

    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }
}

fn form_page(staff: Staff, id: Option<i64>, caption: String, errors: FieldErrors) -> Response {
    let page = FormPage {
        l: staff.layout,
        id,
        caption,
        errors,
    };
    if page.errors.is_empty() {
        render(&page)
    } else {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    }
}

pub async fn new_form(staff: Staff) -> Result<Response, WebError> {
    staff.actor.require(Section::ClientTags, Action::Create)?;
    Ok(form_page(staff, None, String::new(), FieldErrors::new()))
}

pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let caption = f.get("caption").to_string();
    match state.app.create_tag(&staff.actor, &caption).await {
        Ok(_) => Ok(redirect_with_flash(
            &state,
            "/clients/tags",
            &format!("Tag {} created", caption.trim()),
        )),
        Err(AppError::Invalid(errors)) => Ok(form_page(staff, None, caption, errors)),
        Err(e) => Err(e.into()),
    }
}

pub async fn edit_form(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    staff.actor.require(Section::ClientTags, Action::Update)?;
    let t = state.app.get_tag(&staff.actor, id).await?;
    Ok(form_page(staff, Some(id), t.caption, FieldErrors::new()))
}

pub async fn rename(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let caption = f.get("caption").to_string();
    match state.app.rename_tag(&staff.actor, id, &caption).await {
        Ok(()) => Ok(redirect_with_flash(&state, "/clients/tags", "Tag renamed")),
        Err(AppError::Invalid(errors)) => Ok(form_page(staff, Some(id), caption, errors)),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "tag_delete.html")]
struct DeletePage {
    l: Layout,
    t: TagRecord,
}

pub async fn delete_form(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    staff.actor.require(Section::ClientTags, Action::Delete)?;
    let t = state.app.get_tag(&staff.actor, id).await?;
    Ok(render(&DeletePage { l: staff.layout, t }))
}

pub async fn delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, WebError> {
    state.app.delete_tag(&staff.actor, id).await?;
    Ok(redirect_with_flash(&state, "/clients/tags", "Tag deleted"))
}
