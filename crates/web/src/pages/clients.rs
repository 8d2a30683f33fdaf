//! Clients: the list with search, filters, sort and pagination, the detail page, Create and
//! Edit, Block, Export CSV and Import. Every value shown comes from `app` already masked for
//! masked viewers; the templates only print.

use crate::csrf;
use crate::error::{error_page, WebError};
use crate::form::{CsrfForm, Form};
use crate::layout::Layout;
use crate::pages::columns::Columns;
use crate::pages::editing::Editing;
use crate::pages::{render, render_status};
use crate::session::{redirect_with_flash, Staff};
use crate::AppState;
use app::bulk::{BulkAction, BulkJobView, BulkResult, Selection};
use app::clients::ClientView;
use app::clients::{ClientList, ClientListRequest, ClientPatch, SearchField, PAGE_SIZES};
use app::{AppError, FieldErrors};
use app::{BulkState, ClientSort, TagRef};
use askama::Template;
use axum::extract::{Multipart, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
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
    before: Option<String>,
    /// "1": the last page (ID order).
    last: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

/// The ids of the repeated `tag` parameter (a checkbox per tag); one that isn't a number is
/// kept as an id no tag has, so the filter answers "no longer exists" instead of ignoring it.
fn tag_ids(pairs: &[(String, String)]) -> Vec<i64> {
    pairs
        .iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| v.trim().parse().unwrap_or(-1))
        .collect()
}

fn query_pairs(raw: &Option<String>) -> Vec<(String, String)> {
    Form::parse(raw.as_deref().unwrap_or("").as_bytes()).0
}

impl ListParams {
    fn request_with_tags(&self, raw: &Option<String>) -> ClientListRequest {
        ClientListRequest {
            tags: tag_ids(&query_pairs(raw)),
            ..self.request()
        }
    }

    /// The list's filters as a form posted them (the bulk form carries them along).
    fn from_form(f: &Form) -> Self {
        let v = |k: &str| Some(f.get(k).to_string()).filter(|v| !v.is_empty());
        ListParams {
            q: v("q"),
            by: v("by"),
            country: v("country"),
            role: v("role"),
            status: v("filter_status"),
            from: v("from"),
            to: v("to"),
            ..Default::default()
        }
    }

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
            tags: Vec::new(),
            sort: self
                .sort
                .as_deref()
                .and_then(ClientSort::from_code)
                .unwrap_or_else(|| field.default_sort(&s(&self.q))),
            descending: self.dir.as_deref() == Some("desc"),
            after_id: self.after.as_deref().and_then(|v| v.parse().ok()),
            before_id: self.before.as_deref().and_then(|v| v.parse().ok()),
            last: self.last.as_deref() == Some("1"),
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

/// The columns a viewer may hide, `(label, code)`.
const COLUMNS: [(&str, &str); 8] = [
    ("Name", "name"),
    ("Email", "email"),
    ("Phone", "phone"),
    ("Country", "country"),
    ("Role", "role"),
    ("Status", "status"),
    ("Tags", "tags"),
    ("Registered", "registered"),
];

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
    prev_before: Option<i64>,
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
    /// Every tag, for the filter.
    tags: Vec<TagRef>,
    /// Select mode: a checkbox per row and Edit selected clients.
    select: bool,
    can_bulk: bool,
    /// The tags the viewer may assign or remove (their scope's).
    assignable: Vec<TagRef>,
    /// The columns this viewer chose (ID always shows), and the Columns menu.
    cols: Columns,
    /// A search the viewer may not run (a masked viewer's search by a personal field): shown
    /// on the list instead of the results.
    refused: Option<String>,
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
        for t in &r.tags {
            s.append_pair("tag", &t.to_string());
        }
        s
    }

    fn tag_chosen(&self, id: &i64) -> bool {
        self.req.tags.contains(id)
    }

    /// This page with its check boxes (same filters, order, page size and page).
    fn select_link(&self) -> String {
        format!("/clients?{}&select=1", self.here())
    }

    fn unselect_link(&self) -> String {
        format!("/clients?{}", self.here())
    }

    /// The ids on this page, for "All clients on this page".
    fn page_ids(&self) -> String {
        self.clients
            .iter()
            .map(|c| c.id.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// This list in the order `sort`, at the page `at`: a keyset cursor (`after`, `before`,
    /// `last`) or a page number.
    fn link(&self, sort: &str, desc: bool, at: (&str, i64)) -> String {
        let mut s = self.filters();
        s.append_pair("sort", sort)
            .append_pair("dir", if desc { "desc" } else { "asc" })
            .append_pair("per_page", &self.req.per_page.to_string());
        if at != ("page", 1) {
            s.append_pair(at.0, &at.1.to_string());
        }
        format!("/clients?{}", s.finish())
    }

    /// A page of this list in its order.
    fn page_link(&self, at: (&str, i64)) -> String {
        self.link(self.req.sort.code(), self.req.descending, at)
    }

    /// This list's query string, for coming back to it after the Columns menu.
    fn here(&self) -> String {
        let r = &self.req;
        let at = match (r.after_id, r.before_id, r.last) {
            (Some(a), _, _) => ("after", a),
            (_, Some(b), _) => ("before", b),
            (_, _, true) => ("last", 1),
            _ => ("page", r.page.max(1)),
        };
        let link = self.page_link(at);
        link.trim_start_matches("/clients?").to_string()
    }

    fn shows(&self, code: &str) -> bool {
        self.cols.shows(code)
    }

    /// The last page's number in an offset order, when the total is known.
    fn last_page(&self) -> Option<i64> {
        (!self.total_is_lower_bound)
            .then(|| ((self.total + self.req.per_page - 1) / self.req.per_page).max(1))
    }

    fn first_link(&self) -> Option<String> {
        let not_first = if self.keyset() {
            self.prev_before.is_some()
        } else {
            self.req.page > 1
        };
        not_first.then(|| self.page_link(("page", 1)))
    }

    fn last_link(&self) -> Option<String> {
        if !self.has_more {
            return None;
        }
        if self.keyset() {
            Some(self.page_link(("last", 1)))
        } else {
            self.last_page().map(|n| self.page_link(("page", n)))
        }
    }

    fn export_link(&self) -> String {
        format!("/clients/export?{}", self.filters().finish())
    }

    fn sort_link(&self, code: &str) -> String {
        let desc = code == self.req.sort.code() && !self.req.descending;
        self.link(code, desc, ("page", 1))
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
        if self.keyset() {
            self.next_after.map(|a| self.page_link(("after", a)))
        } else {
            let page = self.req.page.max(1);
            self.has_more.then(|| self.page_link(("page", page + 1)))
        }
    }

    fn previous_link(&self) -> Option<String> {
        if self.keyset() {
            self.prev_before.map(|b| self.page_link(("before", b)))
        } else {
            let page = self.req.page.max(1);
            (page > 1).then(|| self.page_link(("page", page - 1)))
        }
    }

    /// "1 client", "1,234 clients", "At least 1,001 clients match" (counting stopped early).
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
            (true, 0) => "Too many clients to count them all; narrow the search for a total".into(),
            (true, _) => format!("At least {grouped} clients match"),
            (false, 1) => "1 client".to_string(),
            (false, _) => format!("{grouped} clients"),
        }
    }

    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }

    fn problems(&self) -> Vec<crate::problems::Problem> {
        crate::problems::problems(
            &self.errors,
            &[
                ("q", "q"),
                ("country", "country"),
                ("role", "role"),
                ("status", "status"),
                ("from", "from"),
                ("to", "to"),
            ],
        )
    }
}

pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(p): Query<ListParams>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let select = query_pairs(&raw)
        .iter()
        .any(|(k, v)| k == "select" && v == "1");
    let mut req = p.request_with_tags(&raw);
    if !PAGE_SIZES.contains(&req.per_page) {
        req.per_page = PAGE_SIZES[0];
    }
    let (list, errors, refused) = match state.app.list_clients(&staff.actor, &req).await {
        Ok(list) => (list, FieldErrors::new(), None),
        Err(AppError::Invalid(errors)) => (ClientList::default(), errors, None),
        // Refused searches come back to the list with the reason; a viewer who may not list
        // clients at all gets the plain refusal page.
        Err(AppError::Forbidden(m)) if staff.actor.can(Section::Clients, Action::View) => {
            (ClientList::default(), FieldErrors::new(), Some(m))
        }
        Err(e) => return Err(e.into()),
    };
    let masked = staff.actor.masked();
    let cols = Columns::of(&state, &staff, "clients", &COLUMNS).await?;
    // ID is always shown: it leads to the client's page.
    let columns = [("ID", "id")]
        .into_iter()
        .chain(cols.visible())
        .map(|(label, code)| Column {
            label,
            sort: ["id", "name", "email", "registered"]
                .contains(&code)
                .then_some(code)
                .filter(|s| !(masked && (*s == "name" || *s == "email"))),
        })
        .collect();
    let tags = state.app.tag_choices(&staff.actor).await?;
    let can_bulk = staff.actor.can(Section::Clients, Action::Update);
    // What Edit selected clients offers; the use case refuses any other tag anyway.
    let assignable = tags
        .iter()
        .filter(|t| can_bulk && staff.actor.client_scope().includes_tag(t.id))
        .cloned()
        .collect();
    let page = ListPage {
        tags,
        select: select && can_bulk,
        can_bulk,
        assignable,
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
        prev_before: list.prev_before,
        cols,
        errors,
        masked,
        refused,
        columns,
        countries: COUNTRIES,
        roles: ClientRole::ALL,
        statuses: ClientStatus::ALL,
        per_pages: PAGE_SIZES,
        l: staff.layout,
    };
    Ok(if page.refused.is_some() {
        render_status(StatusCode::FORBIDDEN, &page)
    } else if page.errors.is_empty() {
        render(&page)
    } else {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    })
}

pub async fn export(
    State(state): State<AppState>,
    staff: Staff,
    Query(p): Query<ListParams>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let export = state
        .app
        .export_clients(&staff.actor, &p.request_with_tags(&raw))
        .await?;
    Ok(crate::download::streamed(
        export,
        "text/csv; charset=utf-8",
        Some("clients.csv"),
    ))
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

pub async fn detail(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let c = state.app.get_client(&staff.actor, id).await?;
    Ok(render(&DetailPage {
        can_update: staff.actor.can(Section::Clients, Action::Update),
        can_block: staff.actor.can(Section::Clients, Action::Delete)
            && c.status == ClientStatus::Active,
        masked: staff.actor.masked(),
        c,
        l: staff.layout,
    }))
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
    /// The tags the form offers (the editor's scope's), and the ones chosen.
    tags: Vec<TagRef>,
    chosen: Vec<i64>,
    /// Tags the client carries outside the editor's scope: shown, kept, not editable.
    fixed: Vec<TagRef>,
    editing: Editing,
}

impl FormPage {
    fn is_chosen(&self, id: &i64) -> bool {
        self.chosen.contains(id)
    }
    fn problems(&self) -> Vec<crate::problems::Problem> {
        crate::problems::problems(
            &self.errors,
            &[
                ("first_name", "first_name"),
                ("last_name", "last_name"),
                ("email", "email"),
                ("phone", "phone"),
                ("country", "country"),
                ("city", "city"),
                ("role", "role"),
                ("status", "status"),
                ("language", "language"),
                ("tags", "tags"),
            ],
        )
    }

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
fn both_values(
    yours: &ClientInput,
    your_tags: &[TagRef],
    theirs: &ClientView,
) -> Vec<(&'static str, String, String)> {
    let tag_list = |tags: &[TagRef]| {
        let mut captions: Vec<&str> = tags.iter().map(|t| t.caption.as_str()).collect();
        captions.sort_unstable();
        captions.join(", ")
    };
    let label = |code: &str, f: fn(&str) -> Option<&'static str>| {
        f(code).map_or_else(|| code.to_string(), str::to_string)
    };
    let role = |c: &str| ClientRole::from_code(c).map(ClientRole::label);
    let status = |c: &str| ClientStatus::from_code(c).map(ClientStatus::label);
    vec![
        (
            "first_name",
            yours.first_name.trim().to_string(),
            theirs.first_name.clone(),
        ),
        (
            "last_name",
            yours.last_name.trim().to_string(),
            theirs.last_name.clone(),
        ),
        (
            "email",
            yours.email.trim().to_string(),
            theirs.email.clone(),
        ),
        // The same number typed another way is the same value.
        (
            "phone",
            domain::client::parse_phone(&yours.phone).unwrap_or_else(|_| yours.phone.clone()),
            theirs.phone.clone(),
        ),
        (
            "country",
            yours.country.trim().to_uppercase(),
            theirs.country.clone(),
        ),
        ("city", yours.city.trim().to_string(), theirs.city.clone()),
        ("role", label(&yours.role, role), theirs.role.label().into()),
        (
            "status",
            label(&yours.status, status),
            theirs.status.label().into(),
        ),
        ("language", yours.language.clone(), theirs.language.clone()),
        ("tags", tag_list(your_tags), tag_list(&theirs.tags)),
    ]
}

/// The client's tags as the form shows them: the editor's own (checkboxes) and the others.
struct TagChoice {
    offered: Vec<TagRef>,
    chosen: Vec<i64>,
    fixed: Vec<TagRef>,
}

async fn tag_choice(
    state: &AppState,
    staff: &Staff,
    current: &[TagRef],
    chosen: Vec<i64>,
) -> Result<TagChoice, AppError> {
    let offered = state.app.assignable_tags(&staff.actor).await?;
    let fixed = current
        .iter()
        .filter(|t| !offered.contains(t))
        .cloned()
        .collect();
    Ok(TagChoice {
        offered,
        chosen,
        fixed,
    })
}

/// The posted tags: the ticked ones, plus the client's tags outside the editor's scope (which
/// the form shows but can't change).
fn posted_tags(f: &Form) -> Vec<i64> {
    f.get_all("tag")
        .iter()
        .chain(f.get_all("fixed_tag").iter())
        .map(|v| v.trim().parse().unwrap_or(-1))
        .collect()
}

fn form_page(
    staff: Staff,
    id: Option<i64>,
    input: ClientInput,
    errors: FieldErrors,
    tags: TagChoice,
    editing: Editing,
) -> Response {
    let page = FormPage {
        editing,
        tags: tags.offered,
        chosen: tags.chosen,
        fixed: tags.fixed,
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

pub async fn new_form(State(state): State<AppState>, staff: Staff) -> Result<Response, WebError> {
    staff.actor.require(Section::Clients, Action::Create)?;
    if !state.app.can_add_clients(&staff.actor) {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "With Mask data on you can't create or import clients.",
        ));
    }
    let input = ClientInput {
        status: "active".into(),
        role: "investor".into(),
        language: "en".into(),
        ..Default::default()
    };
    // A staff member with one Allowed Client Tag gets it ticked: their client must carry it.
    let mut tags = tag_choice(&state, &staff, &[], Vec::new()).await?;
    if let (false, [only]) = (staff.actor.client_scope().is_all(), tags.offered.as_slice()) {
        tags.chosen = vec![only.id];
    }
    Ok(form_page(
        staff,
        None,
        input,
        FieldErrors::new(),
        tags,
        Editing::default(),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let input = input_from(&f);
    let tags = posted_tags(&f);
    match state.app.create_client(&staff.actor, &input, &tags).await {
        Ok(id) => Ok(redirect_with_flash(
            &state,
            &format!("/clients/{id}"),
            "Client created",
        )),
        Err(AppError::Invalid(errors)) => {
            let t = tag_choice(&state, &staff, &[], tags).await?;
            Ok(form_page(staff, None, input, errors, t, Editing::default()))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn edit_form(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    staff.actor.require(Section::Clients, Action::Update)?;
    let c = state.app.get_client(&staff.actor, id).await?;
    let chosen = c.tags.iter().map(|t| t.id).collect();
    let t = tag_choice(&state, &staff, &c.tags, chosen).await?;
    Ok(form_page(
        staff,
        Some(id),
        app::clients::input_of(&c),
        FieldErrors::new(),
        t,
        Editing::at(Some(c.version)),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let posted = input_from(&f);
    let tags = posted_tags(&f);
    let patch = ClientPatch::from(&posted);
    let (errors, stale) = match state
        .app
        .update_client(&staff.actor, id, &patch, Some(&tags), f.version())
        .await
    {
        Ok(_) => {
            return match state.app.get_client(&staff.actor, id).await {
                Ok(_) => Ok(redirect_with_flash(
                    &state,
                    &format!("/clients/{id}"),
                    "Client saved",
                )),
                // Their own tags taken off, the client left the editor's scope.
                Err(AppError::NotFound) => Ok(redirect_with_flash(
                    &state,
                    "/clients",
                    "Client saved; it no longer carries any of your Allowed Client Tags",
                )),
                Err(e) => Err(e.into()),
            };
        }
        Err(AppError::Invalid(errors)) => (errors, None),
        Err(AppError::Stale(stale)) => (FieldErrors::new(), Some(stale)),
        Err(e) => return Err(e.into()),
    };
    // The form comes back with what was typed — but a masked editor's personal fields show
    // the stored values as masked, never what the request carried.
    let current = state.app.get_client(&staff.actor, id).await?;
    let mut input = posted;
    if staff.actor.masked() {
        input.first_name = current.first_name.clone();
        input.last_name = current.last_name.clone();
        input.email = current.email.clone();
        input.phone = current.phone.clone();
    }
    let choice = tag_choice(&state, &staff, &current.tags, tags).await?;
    let editing = match stale {
        None => Editing::at(f.version()),
        Some(stale) => {
            let yours: Vec<TagRef> = choice
                .offered
                .iter()
                .chain(&choice.fixed)
                .filter(|t| choice.chosen.contains(&t.id))
                .cloned()
                .collect();
            Editing::stale(&stale, both_values(&input, &yours, &current))
        }
    };
    Ok(form_page(staff, Some(id), input, errors, choice, editing))
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
) -> Result<Response, WebError> {
    staff.actor.require(Section::Clients, Action::Delete)?;
    let c = state.app.get_client(&staff.actor, id).await?;
    Ok(render(&BlockPage { l: staff.layout, c }))
}

pub async fn block(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, WebError> {
    state.app.block_client(&staff.actor, id).await?;
    Ok(redirect_with_flash(
        &state,
        &format!("/clients/{id}"),
        "Client blocked",
    ))
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

pub async fn import_form(
    State(state): State<AppState>,
    staff: Staff,
) -> Result<Response, WebError> {
    staff.actor.require(Section::Clients, Action::Create)?;
    if !state.app.can_add_clients(&staff.actor) {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "With Mask data on you can't create or import clients.",
        ));
    }
    Ok(import_page(staff, vec![]))
}

pub async fn import(
    State(state): State<AppState>,
    staff: Staff,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
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
                    Err(e) => return Ok(error_page(StatusCode::BAD_REQUEST, &e.body_text())),
                }
            }
            Ok(None) => break,
            Err(e) => return Ok(error_page(StatusCode::BAD_REQUEST, &e.body_text())),
        }
    }
    if let Err(r) = csrf::verify(&state, &headers, &token).await {
        return Ok(r);
    }
    match state.app.import_clients(&staff.actor, &file).await {
        Ok(n) => Ok(redirect_with_flash(
            &state,
            "/clients",
            &format!("{n} client(s) imported"),
        )),
        Err(AppError::Invalid(f)) => Ok(import_page(
            staff,
            f.values()
                .flat_map(|v| v.lines().map(str::to_string).collect::<Vec<_>>())
                .collect(),
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "clients_bulk.html")]
struct BulkConfirmPage {
    l: Layout,
    /// The posted form, carried to the confirmation's hidden fields.
    fields: Vec<(String, String)>,
    count: i64,
    change: String,
    matching: bool,
}

/// The selection and the action of the Edit selected clients form.
fn bulk_choice(f: &Form) -> Result<(Selection, BulkAction), AppError> {
    let ids = |key: &str| -> Vec<i64> {
        f.get_all(key)
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().parse().unwrap_or(-1))
            .collect()
    };
    let selection = match f.get("selection") {
        "matching" => Selection::Matching,
        "page" => Selection::Ids(ids("page_ids")),
        _ => Selection::Ids(ids("id")),
    };
    let tags = ids("bulk_tag");
    let action = match f.get("action") {
        "assign_tags" => BulkAction::AssignTags(tags),
        "remove_tags" => BulkAction::RemoveTags(tags),
        "set_status" => BulkAction::SetStatus(f.get("new_status").to_string()),
        _ => {
            return Err(AppError::field(
                "action",
                "Choose Assign Tags, Remove Tags or Select Status",
            ))
        }
    };
    Ok((selection, action))
}

/// Edit selected clients: the first post shows a confirmation naming the count; the confirmed
/// post applies the change (a page's selection at once, every matching client as a job).
pub async fn bulk(
    State(state): State<AppState>,
    staff: Staff,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let req = ListParams::from_form(&f).request_with_tags(&None);
    let req = ClientListRequest {
        tags: tag_ids(&f.0),
        ..req
    };
    let back = |message: &str| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &f.0 {
            if ["by", "q", "country", "role", "from", "to", "tag"].contains(&k.as_str()) {
                s.append_pair(k, v);
            }
        }
        s.append_pair("status", f.get("filter_status"));
        s.append_pair("select", "1");
        redirect_with_flash(&state, &format!("/clients?{}", s.finish()), message)
    };
    let (selection, action) = match bulk_choice(&f) {
        Ok(c) => c,
        Err(AppError::Invalid(e)) => {
            return Ok(back(&e.values().cloned().collect::<Vec<_>>().join(" ")));
        }
        Err(e) => return Err(e.into()),
    };
    if f.get("confirm") != "yes" {
        return match state
            .app
            .plan_bulk(&staff.actor, &req, &selection, &action)
            .await
        {
            Ok(plan) if plan.count == 0 => Ok(back("No client is selected")),
            Ok(plan) => Ok(render(&BulkConfirmPage {
                l: staff.layout,
                fields: f
                    .0
                    .iter()
                    .filter(|(k, _)| k != "csrf" && k != "confirm")
                    .cloned()
                    .collect(),
                count: plan.count,
                change: plan.change,
                matching: selection == Selection::Matching,
            })),
            Err(AppError::Invalid(e)) => {
                Ok(back(&e.values().cloned().collect::<Vec<_>>().join(" ")))
            }
            Err(e) => Err(e.into()),
        };
    }
    match state
        .app
        .apply_bulk(&staff.actor, &req, &selection, &action)
        .await
    {
        Ok(BulkResult::Done { matched, changed }) => Ok(back(&format!(
            "{changed} of {matched} selected client(s) changed"
        ))),
        Ok(BulkResult::Started { job }) => Ok(redirect_with_flash(
            &state,
            &format!("/clients/bulk/{job}"),
            "Change started",
        )),
        Err(AppError::Invalid(e)) => Ok(back(&e.values().cloned().collect::<Vec<_>>().join(" "))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "clients_bulk_job.html")]
struct BulkJobPage {
    l: Layout,
    job: BulkJobView,
}

impl BulkJobPage {
    fn running(&self) -> bool {
        self.job.state == BulkState::Running
    }
    fn percent(&self) -> i64 {
        (self.job.done * 100)
            .checked_div(self.job.total)
            .unwrap_or(100)
            .min(100)
    }
}

/// A bulk job's progress; the page refreshes itself while the job runs.
pub async fn bulk_job(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let job = state.app.bulk_job(&staff.actor, id).await?;
    Ok(render(&BulkJobPage {
        l: staff.layout,
        job,
    }))
}
