//! System › Users › Users: the list, Create user (the seed's page), the edit page and its
//! Actions menu.

use crate::error::WebError;
use crate::form::{CsrfForm, Form};
use crate::layout::Layout;
use crate::pages::columns::Columns;
use crate::pages::editing::Editing;
use crate::pages::{render, render_status};
use crate::problems::{problems, Problem};
use crate::session::{redirect_with_flash, Staff};
use crate::AppState;
use app::users::{UserInput, UserPatch, UserView, CONFIRM_LOCKOUT, MAX_PAGE, PAGE_SIZES};
use app::{AppError, FieldErrors};
use app::{GroupRef, UserQuery, UserSort};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::{Action, Section, TwoFactor, UserStatus};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct ListParams {
    q: Option<String>,
    status: Option<String>,
    two_factor: Option<String>,
    ip_whitelist: Option<String>,
    group: Option<String>,
    allowed_tag: Option<String>,
    creator: Option<String>,
    mask_data: Option<String>,
    /// "yes": only accounts locked now.
    locked: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

#[derive(Template)]
#[template(path = "users_list.html")]
struct ListPage {
    l: Layout,
    users: Vec<UserView>,
    total: i64,
    page: i64,
    pages: i64,
    per_page: i64,
    q: String,
    status: String,
    two_factor: String,
    /// "yes" (has an IP Whitelist), "no" (usable from anywhere) or "" (any).
    ip_whitelist: String,
    group: i64,
    allowed_tag: i64,
    tags: Vec<app::TagRef>,
    creator: i64,
    /// "yes", "no" or "".
    mask_data: String,
    /// Only accounts locked now.
    locked: bool,
    sort: &'static str,
    desc: bool,
    groups: Vec<GroupRef>,
    /// Who created users, for the Creator filter: (id, email).
    creators: Vec<(i64, String)>,
    /// The columns this viewer chose to see (all until they choose), and the Columns menu.
    cols: Columns,
    can_create: bool,
    /// Users Update: a checkbox per row and the bulk actions.
    can_bulk: bool,
    now: domain::Timestamp,
}

impl ListPage {
    /// The query string for this list with some parameters replaced.
    fn link(&self, sort: &str, desc: bool, page: i64) -> String {
        let id = |v: i64| if v > 0 { v.to_string() } else { String::new() };
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("q", &self.q)
            .append_pair("status", &self.status)
            .append_pair("two_factor", &self.two_factor)
            .append_pair("ip_whitelist", &self.ip_whitelist)
            .append_pair("group", &id(self.group))
            .append_pair("allowed_tag", &id(self.allowed_tag))
            .append_pair("creator", &id(self.creator))
            .append_pair("mask_data", &self.mask_data)
            .append_pair("locked", if self.locked { "yes" } else { "" })
            .append_pair("sort", sort)
            .append_pair("dir", if desc { "desc" } else { "asc" })
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &self.per_page.to_string());
        format!("/users?{}", s.finish())
    }

    fn shows(&self, code: &str) -> bool {
        self.cols.shows(code)
    }

    /// This list's query string, for coming back to it after the Columns menu.
    fn here(&self) -> String {
        let link = self.link(self.sort, self.desc, self.page);
        link.trim_start_matches("/users?").to_string()
    }

    fn page_link(&self, n: &i64) -> String {
        self.link(self.sort, self.desc, *n)
    }

    fn is_page(&self, n: &i64) -> bool {
        *n == self.page
    }

    /// The page numbers the pager offers: the first, the last, and two either side of this one;
    /// `None` stands for a gap.
    fn page_numbers(&self) -> Vec<Option<i64>> {
        let mut out = Vec::new();
        let mut last = 0;
        for n in 1..=self.pages {
            if n == 1 || n == self.pages || (n - self.page).abs() <= 2 {
                if n > last + 1 {
                    out.push(None);
                }
                out.push(Some(n));
                last = n;
            }
        }
        out
    }

    /// An email split before its `@`, so a narrow column can break it there.
    fn email_parts<'a>(&self, email: &'a str) -> (&'a str, &'a str) {
        email.find('@').map_or((email, ""), |at| email.split_at(at))
    }

    fn sort_link(&self, code: &str) -> String {
        let desc = code == self.sort && !self.desc;
        self.link(code, desc, 1)
    }

    fn sort_mark(&self, code: &str) -> &'static str {
        match (code == self.sort, self.desc) {
            (true, false) => " ▲",
            (true, true) => " ▼",
            _ => "",
        }
    }

    fn aria_sort(&self, code: &str) -> &'static str {
        match (code == self.sort, self.desc) {
            (true, false) => "ascending",
            (true, true) => "descending",
            _ => "none",
        }
    }
}

/// The list's parameters from name/value pairs (a bulk form carries the list's filters).
pub(super) fn list_params_of<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> ListParams {
    let mut p = ListParams::default();
    for (k, v) in pairs {
        let v = Some(v.to_string());
        match k {
            "q" => p.q = v,
            "status" => p.status = v,
            "two_factor" => p.two_factor = v,
            "ip_whitelist" => p.ip_whitelist = v,
            "group" => p.group = v,
            "allowed_tag" => p.allowed_tag = v,
            "creator" => p.creator = v,
            "mask_data" => p.mask_data = v,
            "locked" => p.locked = v,
            _ => {}
        }
    }
    p
}

/// The Users list's query from its parameters (the list, and Select all matching); `now` is
/// what "locked" compares with.
pub(super) fn query_of(p: &ListParams, now: domain::Timestamp) -> UserQuery {
    let per_page = p
        .per_page
        .as_deref()
        .and_then(|v| v.parse().ok())
        .filter(|n| PAGE_SIZES.contains(n))
        .unwrap_or(PAGE_SIZES[0]);
    let page = p
        .page
        .as_deref()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
        .min(MAX_PAGE);
    let sort = p
        .sort
        .as_deref()
        .and_then(UserSort::from_code)
        .unwrap_or_default();
    let desc = p.dir.as_deref() == Some("desc");
    let status = p.status.as_deref().and_then(UserStatus::from_code);
    let two_factor = p.two_factor.as_deref().and_then(TwoFactor::from_code);
    let yes_no = |v: Option<&str>| match v {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    };
    let has_ip_whitelist = yes_no(p.ip_whitelist.as_deref());
    let mask_data = yes_no(p.mask_data.as_deref());
    let locked = yes_no(p.locked.as_deref()) == Some(true);
    let id = |v: Option<&str>| v.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let group = id(p.group.as_deref());
    let allowed_tag = id(p.allowed_tag.as_deref());
    let creator = id(p.creator.as_deref());
    UserQuery {
        text: p
            .q
            .clone()
            .filter(|q| !q.trim().is_empty())
            .map(|q| q.trim().to_string()),
        status,
        two_factor,
        has_ip_whitelist,
        group_id: (group > 0).then_some(group),
        allowed_tag_id: (allowed_tag > 0).then_some(allowed_tag),
        creator_id: (creator > 0).then_some(creator),
        mask_data,
        locked_at: locked.then_some(now),
        sort,
        descending: desc,
        offset: (page - 1) * per_page,
        limit: per_page,
    }
}

/// The vendor's columns in the vendor's order, then ours.
const COLUMNS: [(&str, &str); 12] = [
    ("ID", "id"),
    ("Name", "name"),
    ("Email", "email"),
    ("Allowed Client Tags", "allowed_tags"),
    ("Status", "status"),
    ("Two Factor Authentication", "two_factor"),
    ("IP Whitelist", "ip_whitelist"),
    ("Groups", "groups"),
    ("Creator", "creator"),
    ("Created At", "created_at"),
    ("Mask data", "mask_data"),
    ("Last sign-in", "last_sign_in"),
];

pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(p): Query<ListParams>,
) -> Result<Response, WebError> {
    let query = query_of(&p, state.app.now());
    let (per_page, sort, desc) = (query.limit, query.sort, query.descending);
    let page = query.offset / per_page + 1;
    let (status, two_factor) = (query.status, query.two_factor);
    let (has_ip_whitelist, mask_data) = (query.has_ip_whitelist, query.mask_data);
    let locked = query.locked_at.is_some();
    let group = query.group_id.unwrap_or(0);
    let allowed_tag = query.allowed_tag_id.unwrap_or(0);
    let creator = query.creator_id.unwrap_or(0);
    let page_data = state.app.list_users(&staff.actor, &query).await?;
    let groups = state
        .app
        .group_choices(&staff.actor)
        .await
        .unwrap_or_default();
    let creators = state
        .app
        .user_creators(&staff.actor)
        .await
        .unwrap_or_default();
    let yes_no_code = |v: Option<bool>| match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "",
    };
    let tags = state
        .app
        .tag_choices(&staff.actor)
        .await
        .unwrap_or_default();
    let cols = Columns::of(&state, &staff, "users", &COLUMNS).await?;
    Ok(render(&ListPage {
        cols,
        can_bulk: staff.actor.can(Section::Users, Action::Update),
        can_create: staff.actor.can(Section::Users, Action::Create),
        users: page_data.items,
        total: page_data.total,
        pages: ((page_data.total + per_page - 1) / per_page).max(1),
        page,
        per_page,
        q: p.q.unwrap_or_default(),
        status: status.map(|s| s.code().to_string()).unwrap_or_default(),
        two_factor: two_factor.map(|t| t.code().to_string()).unwrap_or_default(),
        ip_whitelist: yes_no_code(has_ip_whitelist).into(),
        group,
        allowed_tag,
        tags,
        creator,
        mask_data: yes_no_code(mask_data).into(),
        locked,
        sort: sort.code(),
        desc,
        groups,
        creators,
        now: state.app.now(),
        l: staff.layout,
    }))
}

#[derive(Template)]
#[template(path = "user_form.html")]
struct UserFormPage {
    l: Layout,
    /// `None` on Create user.
    user: Option<UserView>,
    input: UserInput,
    show_password: bool,
    /// The password in the field was generated here: shown so it can be passed on. A typed
    /// password is never sent back into the page.
    generated: bool,
    /// A typed password was dropped from a form that came back: the hint asks for it again.
    password_dropped: bool,
    /// Status changed to Disabled without the confirmation: the form asks for it.
    confirm_disable: bool,
    /// The user's live sessions (on the edit page).
    sessions: usize,
    groups: Vec<GroupRef>,
    errors: FieldErrors,
    alert: Option<String>,
    can_update: bool,
    locked: bool,
    /// The signer-in has Mask data on, so they can only give others masked access.
    actor_masked: bool,
    /// This user's history from the event log (empty without Event log View).
    events: Vec<app::events::EventView>,
    /// Editing one's own account: the IP Whitelist may only narrow.
    own: bool,
    /// Every tag, for Allowed Client Tags.
    tags: Vec<app::TagRef>,
    editing: Editing,
    now: domain::Timestamp,
}

impl UserFormPage {
    /// The history table shows every column of the Event log.
    fn event_col(&self, _code: &str) -> bool {
        true
    }

    fn problems(&self) -> Vec<Problem> {
        let mut errors = self.errors.clone();
        if errors.contains_key("confirm_lockout") {
            errors.insert(
                "confirm_lockout",
                "Nothing was saved yet: confirm the IP Whitelist".into(),
            );
        }
        problems(
            &errors,
            &[
                ("email", "email"),
                ("password", "password"),
                ("status", "status"),
                ("groups", "groups"),
                ("name", "name"),
                ("send_to_email", "send_to_email"),
                ("allowed_tags", "allowed_tags"),
                ("ip_whitelist", "ip_whitelist"),
                ("confirm_lockout", "confirm_lockout"),
            ],
        )
    }
    fn locked_until(&self) -> Option<domain::Timestamp> {
        let now = self.now;
        self.user
            .as_ref()
            .and_then(|u| u.locked_until.filter(|t| *t > now))
    }
    fn tag_allowed(&self, id: &i64) -> bool {
        self.input.allowed_tag_ids.contains(id)
    }
    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }
    fn selected(&self, id: &i64) -> bool {
        self.input.group_ids.contains(id)
    }
    fn action(&self) -> String {
        match &self.user {
            Some(u) => format!("/users/{}", u.id),
            None => "/users/new".into(),
        }
    }
    fn needs_2fa_warning(&self) -> bool {
        !self.l.has_smtp
            && self
                .user
                .as_ref()
                .is_some_and(|u| u.two_factor == TwoFactor::Email)
    }
}

fn input_from(f: &Form) -> UserInput {
    UserInput {
        email: f.get("email").to_string(),
        password: f.get("password").into(),
        status: f.get("status").to_string(),
        group_ids: f
            .get_all("groups")
            .iter()
            .filter_map(|g| g.parse().ok())
            .collect(),
        name: f.get("name").to_string(),
        send_to_email: f.has("send_to_email"),
        mask_data: f.has("mask_data"),
        ip_whitelist: f.get("ip_whitelist").to_string(),
        confirm_lockout: f.has(CONFIRM_LOCKOUT),
        // One that isn't a number becomes an id no tag has: "no longer exists", not ignored.
        allowed_tag_ids: f
            .get_all("allowed_tag")
            .iter()
            .map(|t| t.trim().parse().unwrap_or(-1))
            .collect(),
    }
}

fn input_of(u: &UserView) -> UserInput {
    UserInput {
        email: u.email.clone(),
        password: Default::default(),
        status: u.status.code().into(),
        group_ids: u.groups.iter().map(|g| g.id).collect(),
        name: u.name.clone(),
        send_to_email: false,
        mask_data: u.mask_data,
        ip_whitelist: u.ip_whitelist.to_text(),
        confirm_lockout: false,
        allowed_tag_ids: u.allowed_tags.iter().map(|t| t.id).collect(),
    }
}

/// What the Create user / user page form shows: whose it is (none on Create user), what is in
/// the fields, and what happened to the last submit.
struct UserForm {
    user: Option<UserView>,
    input: UserInput,
    show_password: bool,
    /// The password was generated by this answer (shown; a typed one never is).
    generated: bool,
    /// Ask to confirm a change of Status to Disabled.
    confirm_disable: bool,
    errors: FieldErrors,
    alert: Option<String>,
    editing: Editing,
}

impl UserForm {
    /// Create user's form holding `input`.
    fn new(input: UserInput) -> Self {
        Self::of(None, input, Editing::default())
    }

    fn of(user: Option<UserView>, input: UserInput, editing: Editing) -> Self {
        Self {
            user,
            input,
            show_password: false,
            generated: false,
            confirm_disable: false,
            errors: FieldErrors::new(),
            alert: None,
            editing,
        }
    }

    fn show_password(self, show_password: bool) -> Self {
        Self {
            show_password,
            ..self
        }
    }

    fn generated(self) -> Self {
        Self {
            generated: true,
            ..self
        }
    }

    fn confirm_disable(self) -> Self {
        Self {
            confirm_disable: true,
            ..self
        }
    }

    fn errors(self, errors: FieldErrors) -> Self {
        Self { errors, ..self }
    }

    fn alert(self, alert: Option<String>) -> Self {
        Self { alert, ..self }
    }
}

async fn form_page(state: &AppState, staff: Staff, form: UserForm) -> Result<Response, WebError> {
    let UserForm {
        user,
        input,
        show_password,
        generated,
        confirm_disable,
        errors,
        alert,
        editing,
    } = form;
    let groups = state.app.group_choices(&staff.actor).await?;
    let now = state.app.now();
    let events = match &user {
        Some(u) => state
            .app
            .history(&staff.actor, "user", u.id)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let tags = state.app.tag_choices(&staff.actor).await?;
    let sessions = match &user {
        Some(u) => state
            .app
            .active_session_count(&staff.actor, u.id)
            .await
            .unwrap_or_default(),
        None => 0,
    };
    let page = UserFormPage {
        password_dropped: !generated && !input.password.expose().is_empty(),
        generated,
        confirm_disable,
        sessions,
        now,
        own: user.as_ref().is_some_and(|u| u.id == staff.actor.id()),
        tags,
        events,
        can_update: staff.actor.can(Section::Users, Action::Update),
        actor_masked: staff.actor.masked(),
        locked: user.as_ref().is_some_and(|u| u.is_locked(now)),
        user,
        input,
        show_password,
        groups,
        errors,
        alert,
        l: staff.layout,
        editing,
    };
    if page.editing.conflict.is_some() {
        return Ok(render_status(StatusCode::CONFLICT, &page));
    }
    Ok(if page.errors.is_empty() && page.alert.is_none() {
        render(&page)
    } else {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    })
}

pub async fn new_form(State(state): State<AppState>, staff: Staff) -> Result<Response, WebError> {
    if let Err(e) = state
        .app
        .authorize(
            &staff.actor,
            Section::Users,
            Action::Create,
            "open Create user",
        )
        .await
    {
        return Err(e.into());
    }
    // Send to email is ticked when mail can be sent (the seed's way to hand over credentials).
    let input = UserInput {
        status: "enabled".into(),
        mask_data: staff.actor.masked(),
        send_to_email: state.app.has_smtp(),
        ..Default::default()
    };
    form_page(&state, staff, UserForm::new(input)).await
}

pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let mut input = input_from(&f);
    if f.has("generate") {
        input.password = domain::password::generate().into();
        let form = UserForm::new(input)
            .show_password(f.has("show_password"))
            .generated();
        return form_page(&state, staff, form).await;
    }
    match state.app.create_user(&staff.actor, &input).await {
        Ok(id) => {
            let email = input.email.trim();
            // Without SMTP the user page follows, with what to do next (disable email 2FA).
            let to = if state.app.has_smtp() {
                "/users".to_string()
            } else {
                format!("/users/{id}")
            };
            let message = if input.send_to_email && state.app.has_smtp() {
                format!("User created; credentials emailed to {email}")
            } else {
                format!("User created; no email was sent: pass the credentials to {email} securely")
            };
            Ok(redirect_with_flash(&state, &to, &message))
        }
        Err(AppError::Invalid(errors)) => {
            let form = UserForm::new(input).show_password(f.has("show_password"));
            form_page(&state, staff, form.errors(errors)).await
        }
        Err(AppError::Mail(m)) => {
            let form = UserForm::new(input).show_password(f.has("show_password"));
            form_page(&state, staff, form.alert(Some(m))).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn edit_form(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let user = state.app.get_user(&staff.actor, id).await?;
    let input = input_of(&user);
    let editing = Editing::at(Some(user.version));
    form_page(&state, staff, UserForm::of(Some(user), input, editing)).await
}

pub async fn update(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let user = state.app.get_user(&staff.actor, id).await?;
    let mut input = input_from(&f);
    let show = f.has("show_password");
    // The version the form was loaded with stays with it until a save goes through.
    let loaded = Editing::at(f.version());
    if f.has("generate") {
        input.password = domain::password::generate().into();
        let form = UserForm::of(Some(user), input, loaded)
            .show_password(show)
            .generated();
        return form_page(&state, staff, form).await;
    }
    // Disabling someone ends their work: the form asks once more (no script needed).
    if input.status == UserStatus::Disabled.code()
        && user.status != UserStatus::Disabled
        && !f.has("confirm_disable")
    {
        let form = UserForm::of(Some(user), input, loaded)
            .show_password(show)
            .confirm_disable();
        return form_page(&state, staff, form)
            .await
            .map(|r| with_status(r, StatusCode::UNPROCESSABLE_ENTITY));
    }
    let patch = UserPatch::from(&input);
    let (errors, alert, editing, user) = match state
        .app
        .update_user(&staff.actor, id, &patch, f.version())
        .await
    {
        Ok(()) => {
            return Ok(redirect_with_flash(
                &state,
                &format!("/users/{id}"),
                "User saved",
            ))
        }
        Err(AppError::Invalid(errors)) => (errors, None, loaded, user),
        Err(AppError::Conflict(m)) => (FieldErrors::new(), Some(m), loaded, user),
        Err(AppError::Stale(stale)) => {
            let current = state.app.get_user(&staff.actor, id).await?;
            let groups = state
                .app
                .group_choices(&staff.actor)
                .await
                .unwrap_or_default();
            let tags = state
                .app
                .tag_choices(&staff.actor)
                .await
                .unwrap_or_default();
            let editing = Editing::stale(&stale, both_values(&input, &current, &groups, &tags));
            (FieldErrors::new(), None, editing, current)
        }
        Err(e) => return Err(e.into()),
    };
    let form = UserForm::of(Some(user), input, editing)
        .show_password(show)
        .errors(errors)
        .alert(alert);
    form_page(&state, staff, form).await
}

/// Each field's value in the form and as saved meanwhile, as the form shows them.
fn both_values(
    yours: &UserInput,
    theirs: &UserView,
    groups: &[GroupRef],
    tags: &[app::TagRef],
) -> Vec<(&'static str, String, String)> {
    let yes_no = |b: bool| if b { "Yes" } else { "No" }.to_string();
    let sorted = |mut captions: Vec<&str>| {
        captions.sort_unstable();
        captions.join(", ")
    };
    let your_groups = groups
        .iter()
        .filter(|g| yours.group_ids.contains(&g.id))
        .map(|g| g.caption.as_str())
        .collect();
    let their_groups = theirs.groups.iter().map(|g| g.caption.as_str()).collect();
    let your_tags = tags
        .iter()
        .filter(|t| yours.allowed_tag_ids.contains(&t.id))
        .map(|t| t.caption.as_str())
        .collect();
    let their_tags = theirs
        .allowed_tags
        .iter()
        .map(|t| t.caption.as_str())
        .collect();
    let status = |code: &str| {
        UserStatus::from_code(code).map_or_else(|| code.to_string(), |s| s.label().to_string())
    };
    vec![
        (
            "email",
            yours.email.trim().to_string(),
            theirs.email.clone(),
        ),
        ("name", yours.name.trim().to_string(), theirs.name.clone()),
        (
            "status",
            status(&yours.status),
            theirs.status.label().into(),
        ),
        ("groups", sorted(your_groups), sorted(their_groups)),
        (
            "ip_whitelist",
            domain::IpWhitelist::parse(&yours.ip_whitelist)
                .map_or_else(|_| yours.ip_whitelist.clone(), |w| w.to_string()),
            theirs.ip_whitelist.to_string(),
        ),
        ("allowed_tags", sorted(your_tags), sorted(their_tags)),
        (
            "mask_data",
            yes_no(yours.mask_data),
            yes_no(theirs.mask_data),
        ),
    ]
}

#[derive(Template)]
#[template(path = "user_disable_2fa.html")]
struct Disable2faPage {
    l: Layout,
    user: UserView,
    error: Option<String>,
}

pub async fn disable_2fa_form(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    match state.app.get_user(&staff.actor, id).await {
        Ok(user) => Ok(render(&Disable2faPage {
            l: staff.layout,
            user,
            error: None,
        })),
        Err(e) => Err(e.into()),
    }
}

pub async fn disable_2fa(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    match state
        .app
        .set_two_factor(&staff.actor, id, false, f.get("actor_password"))
        .await
    {
        Ok(()) => Ok(redirect_with_flash(
            &state,
            &format!("/users/{id}"),
            "2FA disabled",
        )),
        Err(AppError::Invalid(fields)) => match state.app.get_user(&staff.actor, id).await {
            Ok(user) => Ok(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &Disable2faPage {
                    l: staff.layout,
                    user,
                    error: fields.values().next().cloned(),
                },
            )),
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

pub async fn enable_2fa(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, WebError> {
    match state.app.set_two_factor(&staff.actor, id, true, "").await {
        Ok(()) => Ok(redirect_with_flash(
            &state,
            &format!("/users/{id}"),
            "2FA enabled",
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn unlock(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, WebError> {
    match state.app.unlock_user(&staff.actor, id).await {
        Ok(()) => Ok(redirect_with_flash(
            &state,
            &format!("/users/{id}"),
            "User unlocked",
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, WebError> {
    match state.app.sign_out_everywhere(&staff.actor, id).await {
        Ok(()) => Ok(redirect_with_flash(
            &state,
            &format!("/users/{id}"),
            "The user was signed out everywhere",
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "user_reset_password.html")]
struct ResetPasswordPage {
    l: Layout,
    user: UserView,
    /// A generated password, shown so it can be passed on (a typed one is never echoed).
    generated: String,
    send_to_email: bool,
    errors: FieldErrors,
    alert: Option<String>,
}

impl ResetPasswordPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }
}

/// Actions › Reset password.
pub async fn reset_password_form(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    match state.app.get_user(&staff.actor, id).await {
        Ok(user) => Ok(render(&ResetPasswordPage {
            l: staff.layout,
            user,
            generated: String::new(),
            send_to_email: false,
            errors: FieldErrors::new(),
            alert: None,
        })),
        Err(e) => Err(e.into()),
    }
}

pub async fn reset_password(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    CsrfForm(f): CsrfForm,
) -> Result<Response, WebError> {
    let send = f.has("send_to_email");
    let (generated, outcome) = if f.has("generate") {
        (domain::password::generate(), None)
    } else {
        let r = state
            .app
            .reset_user_password(&staff.actor, id, f.get("password"), send)
            .await;
        (String::new(), Some(r))
    };
    let (errors, alert) = match outcome {
        Some(Ok(())) => {
            let flash = if send {
                "Password reset; the new credentials were emailed"
            } else {
                "Password reset; pass it on securely. The user must change it at next sign-in"
            };
            return Ok(redirect_with_flash(&state, &format!("/users/{id}"), flash));
        }
        Some(Err(AppError::Invalid(errors))) => (errors, None),
        Some(Err(AppError::Mail(m))) => (FieldErrors::new(), Some(m)),
        Some(Err(e)) => return Err(e.into()),
        None => (FieldErrors::new(), None),
    };
    let status = if errors.is_empty() && alert.is_none() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    match state.app.get_user(&staff.actor, id).await {
        Ok(user) => Ok(render_status(
            status,
            &ResetPasswordPage {
                l: staff.layout,
                user,
                generated,
                send_to_email: send,
                errors,
                alert,
            },
        )),
        Err(e) => Err(e.into()),
    }
}

/// A page answer with another status (a form that asks for a confirmation is not a success).
fn with_status(mut r: Response, status: StatusCode) -> Response {
    if r.status().is_success() {
        *r.status_mut() = status;
    }
    r
}
