//! System › Users › Groups: list, Rights matrix, members, delete, export and import.

use crate::csrf;
use crate::error::WebError;
use crate::form::{CsrfForm, Form};
use crate::layout::Layout;
use crate::pages::editing::Editing;
use crate::pages::{render, render_status};
use crate::session::{redirect_with_flash, Staff};
use crate::AppState;
use app::users::UserView;
use app::{AppError, FieldErrors};
use app::{GroupSummary, TagRef};
use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{Action, Permission, PermissionSet, Section};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "groups_list.html")]
struct ListPage {
    l: Layout,
    groups: Vec<GroupSummary>,
    can_create: bool,
}

pub async fn list(State(state): State<AppState>, staff: Staff) -> Result<Response, WebError> {
    let groups = state.app.list_groups(&staff.actor).await?;
    Ok(render(&ListPage {
        can_create: staff.actor.can(Section::Groups, Action::Create),
        groups,
        l: staff.layout,
    }))
}

/// One row of the Rights matrix: a section and a checkbox per action that exists for it.
struct RightsRow {
    section: &'static str,
    /// Per column: the right's code, whether it is held, the column (action) and what the
    /// right is called in this row (Clients › Delete is "Block").
    cells: Vec<Option<(String, bool, &'static str, &'static str)>>,
}

fn rights(perms: &PermissionSet) -> Vec<RightsRow> {
    Section::ALL
        .iter()
        .map(|&s| RightsRow {
            section: s.label(),
            cells: Action::ALL
                .iter()
                .map(|&a| {
                    s.actions().contains(&a).then(|| {
                        let p = Permission::new(s, a);
                        (p.code(), perms.has(p), a.label(), p.label())
                    })
                })
                .collect(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "group_form.html")]
struct FormPage {
    l: Layout,
    id: Option<i64>,
    builtin: bool,
    caption: String,
    rights: Vec<RightsRow>,
    actions: Vec<&'static str>,
    errors: FieldErrors,
    tab_users: bool,
    members: Vec<UserView>,
    can_edit: bool,
    can_delete: bool,
    events: Vec<app::events::EventView>,
    /// Every tag, and the group's Allowed Client Tags among them.
    tags: Vec<TagRef>,
    allowed: Vec<i64>,
    editing: Editing,
}

impl FormPage {
    /// The history table shows every column of the Event log.
    fn event_col(&self, _code: &str) -> bool {
        true
    }

    fn is_allowed(&self, id: &i64) -> bool {
        self.allowed.contains(id)
    }
    fn problems(&self) -> Vec<crate::problems::Problem> {
        crate::problems::problems(
            &self.errors,
            &[
                ("caption", "caption"),
                ("permissions", "rights-label"),
                ("allowed_tags", "allowed_tags"),
            ],
        )
    }

    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }
}

/// What the group form shows, besides who is looking.
struct GroupForm<'a> {
    /// `None` on Create group.
    id: Option<i64>,
    builtin: bool,
    caption: String,
    perms: &'a PermissionSet,
    errors: FieldErrors,
    /// Open on the Users tab.
    tab_users: bool,
    members: Vec<UserView>,
    allowed: Vec<i64>,
    editing: Editing,
}

impl<'a> GroupForm<'a> {
    /// An empty form (no members, no errors, Rights tab) for these values.
    fn new(id: Option<i64>, caption: String, perms: &'a PermissionSet, allowed: Vec<i64>) -> Self {
        GroupForm {
            id,
            builtin: false,
            caption,
            perms,
            errors: FieldErrors::new(),
            tab_users: false,
            members: Vec::new(),
            allowed,
            editing: Editing::default(),
        }
    }
}

async fn form_page(
    state: &AppState,
    staff: Staff,
    form: GroupForm<'_>,
) -> Result<Response, WebError> {
    let GroupForm {
        id,
        builtin,
        caption,
        perms,
        errors,
        tab_users,
        members,
        allowed,
        editing,
    } = form;
    let tags = state.app.tag_choices(&staff.actor).await?;
    let can_edit = !builtin
        && staff.actor.can(
            Section::Groups,
            if id.is_some() {
                Action::Update
            } else {
                Action::Create
            },
        );
    let events = match id {
        Some(gid) => state
            .app
            .history(&staff.actor, "group", gid)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let page = FormPage {
        tags,
        allowed,
        events,
        can_delete: !builtin && id.is_some() && staff.actor.can(Section::Groups, Action::Delete),
        can_edit,
        l: staff.layout,
        id,
        builtin,
        caption,
        rights: rights(perms),
        actions: Action::ALL.iter().map(|a| a.label()).collect(),
        errors,
        tab_users,
        members,
        editing,
    };
    Ok(if page.editing.conflict.is_some() {
        render_status(StatusCode::CONFLICT, &page)
    } else if page.errors.is_empty() {
        render(&page)
    } else {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    })
}

fn perms_from(f: &Form) -> PermissionSet {
    f.get_all("perm")
        .into_iter()
        .filter_map(Permission::from_code)
        .collect()
}

pub async fn new_form(State(state): State<AppState>, staff: Staff) -> Result<Response, WebError> {
    state
        .app
        .authorize(
            &staff.actor,
            Section::Groups,
            Action::Create,
            "open Create group",
        )
        .await?;
    let perms = PermissionSet::default();
    form_page(
        &state,
        staff,
        GroupForm::new(None, String::new(), &perms, vec![]),
    )
    .await
}

/// The ticked Allowed Client Tags; one that isn't a number becomes an id no tag has.
fn allowed_from(f: &Form) -> Vec<i64> {
    f.get_all("allowed_tag")
        .iter()
        .map(|v| v.trim().parse().unwrap_or(-1))
        .collect()
}

pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let perms = perms_from(&f);
    let allowed = allowed_from(&f);
    match state
        .app
        .create_group(&staff.actor, f.get("caption"), &perms, &allowed)
        .await
    {
        Ok(id) => Ok(redirect_with_flash(
            &state,
            &format!("/groups/{id}"),
            "Group created",
        )),
        Err(AppError::Invalid(errors)) => {
            let form = GroupForm {
                errors,
                ..GroupForm::new(None, f.get("caption").into(), &perms, allowed)
            };
            form_page(&state, staff, form).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct Tab {
    tab: Option<String>,
}

pub async fn edit_form(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(t): Query<Tab>,
) -> Result<Response, WebError> {
    let (g, members) = state.app.get_group(&staff.actor, id).await?;
    let form = GroupForm {
        builtin: g.builtin,
        tab_users: t.tab.as_deref() == Some("users"),
        members,
        editing: Editing::at(Some(g.version)),
        ..GroupForm::new(
            Some(id),
            g.caption,
            &g.permissions,
            g.allowed_tags.iter().map(|t| t.id).collect(),
        )
    };
    form_page(&state, staff, form).await
}

pub async fn update(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let perms = perms_from(&f);
    let allowed = allowed_from(&f);
    let (errors, editing) = match state
        .app
        .update_group(
            &staff.actor,
            id,
            f.get("caption"),
            &perms,
            &allowed,
            f.version(),
        )
        .await
    {
        Ok(()) => {
            return Ok(redirect_with_flash(
                &state,
                &format!("/groups/{id}"),
                "Group saved",
            ))
        }
        Err(AppError::Invalid(errors)) => (errors, Editing::at(f.version())),
        Err(AppError::Stale(stale)) => {
            let (current, _) = state.app.get_group(&staff.actor, id).await?;
            let tag_captions = |ids: &[i64], tags: &[TagRef]| {
                let mut c: Vec<&str> = tags
                    .iter()
                    .filter(|t| ids.contains(&t.id))
                    .map(|t| t.caption.as_str())
                    .collect();
                c.sort_unstable();
                c.join(", ")
            };
            let every_tag = state
                .app
                .tag_choices(&staff.actor)
                .await
                .unwrap_or_default();
            let theirs: Vec<i64> = current.allowed_tags.iter().map(|t| t.id).collect();
            let both = vec![
                (
                    "caption",
                    f.get("caption").trim().to_string(),
                    current.caption,
                ),
                (
                    "permissions",
                    perms.codes().join(", "),
                    current.permissions.codes().join(", "),
                ),
                (
                    "allowed_tags",
                    tag_captions(&allowed, &every_tag),
                    tag_captions(&theirs, &current.allowed_tags),
                ),
            ];
            (FieldErrors::new(), Editing::stale(&stale, both))
        }
        Err(e) => return Err(e.into()),
    };
    let form = GroupForm {
        errors,
        editing,
        ..GroupForm::new(Some(id), f.get("caption").into(), &perms, allowed)
    };
    form_page(&state, staff, form).await
}

#[derive(Template)]
#[template(path = "group_delete.html")]
struct DeletePage {
    l: Layout,
    id: i64,
    caption: String,
    members: usize,
}

pub async fn delete_form(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let (g, members) = state.app.get_group(&staff.actor, id).await?;
    Ok(render(&DeletePage {
        l: staff.layout,
        id,
        caption: g.caption,
        members: members.len(),
    }))
}

pub async fn delete(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, WebError> {
    state.app.delete_group(&staff.actor, id).await?;
    Ok(redirect_with_flash(&state, "/groups", "Group deleted"))
}

pub async fn export(State(state): State<AppState>, staff: Staff) -> Result<Response, WebError> {
    let json = state.app.export_groups(&staff.actor).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"groups.json\"",
            ),
        ],
        json,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "groups_import.html")]
struct ImportPage {
    l: Layout,
    problems: Vec<String>,
    replace: bool,
}

pub async fn import_form(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Response, WebError> {
    state
        .app
        .authorize(
            &staff.actor,
            Section::Groups,
            Action::Create,
            "open Import groups",
        )
        .await?;
    Ok(render(&ImportPage {
        l: staff.layout,
        problems: vec![],
        replace: false,
    }))
}

pub async fn import(
    State(state): State<AppState>,
    staff: Staff,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    let (mut token, mut file, mut replace) = (String::new(), Vec::new(), false);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                match field.bytes().await {
                    Ok(bytes) => match name.as_str() {
                        "csrf" => token = String::from_utf8_lossy(&bytes).into_owned(),
                        "file" => file = bytes.to_vec(),
                        "replace" => replace = &bytes[..] == b"enabled",
                        _ => {}
                    },
                    Err(e) => {
                        return Ok(crate::error::error_page(
                            StatusCode::BAD_REQUEST,
                            &e.body_text(),
                        ))
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Ok(crate::error::error_page(
                    StatusCode::BAD_REQUEST,
                    &e.body_text(),
                ))
            }
        }
    }
    if let Err(r) = csrf::verify(&state, &headers, &token).await {
        return Ok(r);
    }
    match state.app.import_groups(&staff.actor, &file, replace).await {
        Ok(n) => Ok(redirect_with_flash(
            &state,
            "/groups",
            &format!("{n} group(s) imported"),
        )),
        Err(AppError::Invalid(f)) => {
            let problems = f
                .values()
                .flat_map(|v| v.lines().map(str::to_string).collect::<Vec<_>>())
                .collect();
            Ok(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &ImportPage {
                    l: staff.layout,
                    problems,
                    replace,
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}
