//! Clients: the list with search, filters, sort and pagination, the detail page, Create and
//! Edit, Block, Export CSV and Import. Every value shown comes from `app` already masked for
//! masked viewers; the templates only print.

use crate::csrf;
use crate::error::{error_page, WebError};
use crate::form::{CsrfForm, Form};
use crate::layout::Layout;
use crate::pages::editing::Editing;
use crate::pages::{render, render_status};
use crate::session::{redirect_with_flash, Staff};
use crate::AppState;
use app::clients::ClientView;
use app::clients::{ClientList, ClientListRequest, ClientPatch, SearchField, PAGE_SIZES};
use app::ClientSort;
use app::{AppError, FieldErrors};
use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::client::{ClientInput, ClientRole, ClientStatus, COUNTRIES, LANGUAGES};
use domain::{Action, Section};
use serde::Deserialize;

#[derive(Deserialize, Default, Clone)]
pub struct ListParams {
    q: Option<String>,
    by: Option<String>,
    country: Option<String>,
    role: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    after: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

impl ListParams {
    fn request(&self) -> ClientListRequest {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let field = self
            .by
            .as_deref()
            .and_then(SearchField::from_code)
            .unwrap_or_default();
        ClientListRequest {
            field,
            text: s(&self.q),
            country: s(&self.country),
            role: s(&self.role),
            status: s(&self.status),
            from: s(&self.from),
            to: s(&self.to),
            sort: self
                .sort
                .as_deref()
                .and_then(ClientSort::from_code)
                .unwrap_or_else(|| field.default_sort(&s(&self.q))),
            descending: self.dir.as_deref() == Some("desc"),
            after_id: self.after.as_deref().and_then(|v| v.parse().ok()),
            page: self
                .page
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            per_page: self
                .per_page
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or(PAGE_SIZES[0]),
        }
    }
}

struct Column {
    label: &'static str,
    /// The sort code, when the viewer may sort by this column.
    sort: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "clients_list.html")]
struct ListPage {
    l: Layout,
    req: ClientListRequest,
    clients: Vec<ClientView>,
    total: i64,
    total_is_lower_bound: bool,
    has_more: bool,
    next_after: Option<i64>,
    errors: FieldErrors,
    masked: bool,
    fields: Vec<SearchField>,
    columns: Vec<Column>,
    countries: &'static [(&'static str, &'static str)],
    roles: [ClientRole; 3],
    statuses: [ClientStatus; 2],
    per_pages: [i64; 3],
    can_add: bool,
    can_export: bool,
}

impl ListPage {
    /// The query string of this list's search and filters (no order, no page).
    fn filters(&self) -> form_urlencoded::Serializer<'static, String> {
        let r = &self.req;
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("by", r.field.code())
            .append_pair("q", &r.text)
            .append_pair("country", &r.country)
            .append_pair("role", &r.role)
            .append_pair("status", &r.status)
            .append_pair("from", &r.from)
            .append_pair("to", &r.to);
        s
    }

    fn link(&self, sort: &str, desc: bool, after: Option<i64>, page: i64) -> String {
        let mut s = self.filters();
        s.append_pair("sort", sort)
            .append_pair("dir", if desc { "desc" } else { "asc" })
            .append_pair("per_page", &self.req.per_page.to_string());
        if let Some(a) = after {
            s.append_pair("after", &a.to_string());
        } else if page > 1 {
            s.append_pair("page", &page.to_string());
        }
        format!("/clients?{}", s.finish())
    }

    fn export_link(&self) -> String {
        format!("/clients/export?{}", self.filters().finish())
    }

    fn sort_link(&self, code: &str) -> String {
        let desc = code == self.req.sort.code() && !self.req.descending;
        self.link(code, desc, None, 1)
    }

    fn sort_mark(&self, code: &str) -> &'static str {
        match (code == self.req.sort.code(), self.req.descending) {
            (true, false) => " ▲",
            (true, true) => " ▼",
            _ => "",
        }
    }

    fn aria_sort(&self, code: &str) -> &'static str {
        match (code == self.req.sort.code(), self.req.descending) {
            (true, false) => "ascending",
            (true, true) => "descending",
            _ => "none",
        }
    }

    /// The order is the one a new search would get anyway, so the filter form needn't carry it.
    fn sort_is_default(&self) -> bool {
        self.req.sort == self.req.field.default_sort(&self.req.text) && !self.req.descending
    }

    fn keyset(&self) -> bool {
        self.req.sort == ClientSort::Id
    }

    fn next_link(&self) -> Option<String> {
        let sort = self.req.sort.code();
        if self.keyset() {
            self.next_after
                .map(|a| self.link(sort, self.req.descending, Some(a), 1))
        } else {
            let page = self.req.page.max(1);
            self.has_more
                .then(|| self.link(sort, self.req.descending, None, page + 1))
        }
    }

    fn previous_link(&self) -> Option<String> {
        let sort = self.req.sort.code();
        if self.keyset() {
            self.req
                .after_id
                .map(|_| self.link(sort, self.req.descending, None, 1))
        } else {
            let page = self.req.page.max(1);
            (page > 1).then(|| self.link(sort, self.req.descending, None, page - 1))
        }
    }

    /// "1 client", "1,234 clients", "More than 10,000 clients match".
    fn total_text(&self) -> String {
        let digits = self.total.to_string();
        let mut grouped = String::new();
        for (i, d) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(d);
        }
        match (self.total_is_lower_bound, self.total) {
            (true, _) => format!("More than {grouped} clients match"),
            (false, 1) => "1 client".to_string(),
            (false, _) => format!("{grouped} clients"),
        }
    }

    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }
}

pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(p): Query<ListParams>,
) -> Response {
    let mut req = p.request();
    if !PAGE_SIZES.contains(&req.per_page) {
        req.per_page = PAGE_SIZES[0];
    }
    let (list, errors) = match state.app.list_clients(&staff.actor, &req).await {
        Ok(list) => (list, FieldErrors::new()),
        Err(AppError::Invalid(errors)) => (ClientList::default(), errors),
        Err(e) => return WebError(e).into_response(),
    };
    let masked = staff.actor.masked();
    let columns = [
        ("ID", Some("id")),
        ("Name", Some("name")),
        ("Email", Some("email")),
        ("Phone", None),
        ("Country", None),
        ("Role", None),
        ("Status", None),
        ("Registered", Some("registered")),
    ]
    .into_iter()
    .map(|(label, sort)| Column {
        label,
        sort: sort.filter(|s| !(masked && (*s == "name" || *s == "email"))),
    })
    .collect();
    let page = ListPage {
        can_add: state.app.can_add_clients(&staff.actor),
        can_export: staff.actor.can(Section::Clients, Action::Export),
        fields: SearchField::ALL
            .into_iter()
            .filter(|f| !masked || !f.is_personal())
            .collect(),
        req,
        clients: list.items,
        total: list.total,
        total_is_lower_bound: list.total_is_lower_bound,
        has_more: list.has_more,
        next_after: list.next_after,
        errors,
        masked,
        columns,
        countries: COUNTRIES,
        roles: ClientRole::ALL,
        statuses: ClientStatus::ALL,
        per_pages: PAGE_SIZES,
        l: staff.layout,
    };
    if page.errors.is_empty() {
        render(&page)
    } else {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    }
}

pub async fn export(
    State(state): State<AppState>,
    staff: Staff,
    Query(p): Query<ListParams>,
) -> Response {
    match state.app.export_clients(&staff.actor, &p.request()).await {
        Ok((csv, _)) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"clients.csv\"",
                ),
            ],
            csv,
        )
            .into_response(),
        Err(e) => WebError(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "client_detail.html")]
struct DetailPage {
    l: Layout,
    c: ClientView,
    masked: bool,
    can_update: bool,
    can_block: bool,
}

impl DetailPage {
    fn country_name(&self) -> &'static str {
        domain::client::country_name(&self.c.country).unwrap_or("")
    }
    fn language_name(&self) -> &'static str {
        domain::client::language_name(&self.c.language).unwrap_or("")
    }
}

pub async fn detail(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Response {
    match state.app.get_client(&staff.actor, id).await {
        Ok(c) => render(&DetailPage {
            can_update: staff.actor.can(Section::Clients, Action::Update),
            can_block: staff.actor.can(Section::Clients, Action::Delete)
                && c.status == ClientStatus::Active,
            masked: staff.actor.masked(),
            c,
            l: staff.layout,
        }),
        Err(e) => WebError(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "client_form.html")]
struct FormPage {
    l: Layout,
    /// `None` on Create client.
    id: Option<i64>,
    input: ClientInput,
    errors: FieldErrors,
    /// Personal fields are read-only (and masked) for a masked editor.
    masked: bool,
    countries: &'static [(&'static str, &'static str)],
    languages: &'static [(&'static str, &'static str)],
    roles: [ClientRole; 3],
    statuses: [ClientStatus; 2],
    editing: Editing,
}

impl FormPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }
    fn action(&self) -> String {
        match self.id {
            Some(id) => format!("/clients/{id}/edit"),
            None => "/clients/new".into(),
        }
    }
}

fn input_from(f: &Form) -> ClientInput {
    ClientInput {
        first_name: f.get("first_name").into(),
        last_name: f.get("last_name").into(),
        email: f.get("email").into(),
        phone: f.get("phone").into(),
        country: f.get("country").into(),
        city: f.get("city").into(),
        role: f.get("role").into(),
        status: f.get("status").into(),
        language: f.get("language").into(),
    }
}

/// Each field's value in the form and as saved meanwhile (role and status by their labels).
fn both_values(yours: &ClientInput, theirs: &ClientView) -> Vec<(&'static str, String, String)> {
    let label = |code: &str, f: fn(&str) -> Option<&'static str>| {
        f(code).map_or_else(|| code.to_string(), str::to_string)
    };
    let role = |c: &str| ClientRole::from_code(c).map(ClientRole::label);
    let status = |c: &str| ClientStatus::from_code(c).map(ClientStatus::label);
    vec![
        (
            "first_name",
            yours.first_name.clone(),
            theirs.first_name.clone(),
        ),
        (
            "last_name",
            yours.last_name.clone(),
            theirs.last_name.clone(),
        ),
        ("email", yours.email.clone(), theirs.email.clone()),
        ("phone", yours.phone.clone(), theirs.phone.clone()),
        ("country", yours.country.clone(), theirs.country.clone()),
        ("city", yours.city.clone(), theirs.city.clone()),
        ("role", label(&yours.role, role), theirs.role.label().into()),
        (
            "status",
            label(&yours.status, status),
            theirs.status.label().into(),
        ),
        ("language", yours.language.clone(), theirs.language.clone()),
    ]
}

fn form_page(
    staff: Staff,
    id: Option<i64>,
    input: ClientInput,
    errors: FieldErrors,
    editing: Editing,
) -> Response {
    let page = FormPage {
        editing,
        masked: staff.actor.masked() && id.is_some(),
        id,
        input,
        errors,
        countries: COUNTRIES,
        languages: LANGUAGES,
        roles: ClientRole::ALL,
        statuses: ClientStatus::ALL,
        l: staff.layout,
    };
    if page.editing.conflict.is_some() {
        return render_status(StatusCode::CONFLICT, &page);
    }
    if page.errors.is_empty() {
        render(&page)
    } else {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    }
}

pub async fn new_form(State(state): State<AppState>, staff: Staff) -> Response {
    if let Err(e) = staff.actor.require(Section::Clients, Action::Create) {
        return WebError(e).into_response();
    }
    if !state.app.can_add_clients(&staff.actor) {
        return error_page(
            StatusCode::FORBIDDEN,
            "With Mask data on you can't create or import clients.",
        );
    }
    let input = ClientInput {
        status: "active".into(),
        role: "investor".into(),
        language: "en".into(),
        ..Default::default()
    };
    form_page(staff, None, input, FieldErrors::new(), Editing::default())
}

pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    CsrfForm(f): CsrfForm,
) -> Response {
    let input = input_from(&f);
    match state.app.create_client(&staff.actor, &input).await {
        Ok(id) => redirect_with_flash(&state, &format!("/clients/{id}"), "Client created"),
        Err(AppError::Invalid(errors)) => form_page(staff, None, input, errors, Editing::default()),
        Err(e) => WebError(e).into_response(),
    }
}

pub async fn edit_form(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> Response {
    if let Err(e) = staff.actor.require(Section::Clients, Action::Update) {
        return WebError(e).into_response();
    }
    match state.app.get_client(&staff.actor, id).await {
        Ok(c) => form_page(
            staff,
            Some(id),
            app::clients::input_of(&c),
            FieldErrors::new(),
            Editing::at(Some(c.version)),
        ),
        Err(e) => WebError(e).into_response(),
    }
}

pub async fn update(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(f): CsrfForm,
) -> Response {
    let posted = input_from(&f);
    let patch = ClientPatch::from(&posted);
    let (errors, stale) = match state
        .app
        .update_client(&staff.actor, id, &patch, f.version())
        .await
    {
        Ok(_) => return redirect_with_flash(&state, &format!("/clients/{id}"), "Client saved"),
        Err(AppError::Invalid(errors)) => (errors, None),
        Err(AppError::Stale(stale)) => (FieldErrors::new(), Some(stale)),
        Err(e) => return WebError(e).into_response(),
    };
    // The form comes back with what was typed — but a masked editor's personal fields show
    // the stored values as masked, never what the request carried.
    let current = match state.app.get_client(&staff.actor, id).await {
        Ok(c) => c,
        Err(e) => return WebError(e).into_response(),
    };
    let mut input = posted;
    if staff.actor.masked() {
        input.first_name = current.first_name.clone();
        input.last_name = current.last_name.clone();
        input.email = current.email.clone();
        input.phone = current.phone.clone();
    }
    let editing = match stale {
        None => Editing::at(f.version()),
        Some(stale) => Editing::stale(&stale, both_values(&input, &current)),
    };
    form_page(staff, Some(id), input, errors, editing)
}

#[derive(Template)]
#[template(path = "client_block.html")]
struct BlockPage {
    l: Layout,
    c: ClientView,
}

pub async fn block_form(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> Response {
    if let Err(e) = staff.actor.require(Section::Clients, Action::Delete) {
        return WebError(e).into_response();
    }
    match state.app.get_client(&staff.actor, id).await {
        Ok(c) => render(&BlockPage { l: staff.layout, c }),
        Err(e) => WebError(e).into_response(),
    }
}

pub async fn block(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm,
) -> Response {
    match state.app.block_client(&staff.actor, id).await {
        Ok(_) => redirect_with_flash(&state, &format!("/clients/{id}"), "Client blocked"),
        Err(e) => WebError(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "clients_import.html")]
struct ImportPage {
    l: Layout,
    problems: Vec<String>,
    columns: String,
}

fn import_page(staff: Staff, problems: Vec<String>) -> Response {
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_status(
        status,
        &ImportPage {
            l: staff.layout,
            problems,
            columns: app::clients::EXPORT_COLUMNS.join(", "),
        },
    )
}

pub async fn import_form(State(state): State<AppState>, staff: Staff) -> Response {
    if let Err(e) = staff.actor.require(Section::Clients, Action::Create) {
        return WebError(e).into_response();
    }
    if !state.app.can_add_clients(&staff.actor) {
        return error_page(
            StatusCode::FORBIDDEN,
            "With Mask data on you can't create or import clients.",
        );
    }
    import_page(staff, vec![])
}

pub async fn import(
    State(state): State<AppState>,
    staff: Staff,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let (mut token, mut file) = (String::new(), Vec::new());
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                match field.bytes().await {
                    Ok(bytes) => match name.as_str() {
                        "csrf" => token = String::from_utf8_lossy(&bytes).into_owned(),
                        "file" => file = bytes.to_vec(),
                        _ => {}
                    },
                    Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.body_text()),
                }
            }
            Ok(None) => break,
            Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.body_text()),
        }
    }
    if let Err(r) = csrf::verify(&state, &headers, &token).await {
        return r;
    }
    match state.app.import_clients(&staff.actor, &file).await {
        Ok(n) => redirect_with_flash(&state, "/clients", &format!("{n} client(s) imported")),
        Err(AppError::Invalid(f)) => import_page(
            staff,
            f.values()
                .flat_map(|v| v.lines().map(str::to_string).collect::<Vec<_>>())
                .collect(),
        ),
        Err(e) => WebError(e).into_response(),
    }
}
