//! Helpers shared by the HTTP suites: most act through the pages, as a person would; the
//! set-up of a staff member ([`TestApp::staff`]) goes through the use cases.

use crate::spawn::{Browser, Page, ADMIN_PASSWORD};
use crate::TestApp;
use domain::{Permission, PermissionSet};

pub const USER_PASSWORD: &str = "Amber-Falcon-Orchard-93";
pub const NEW_PASSWORD: &str = "Violet-Canyon-Ribbon-58";

/// Fills and saves Create user. `groups` are group ids as strings.
pub async fn create_user_with(
    admin: &Browser,
    email: &str,
    name: &str,
    password: &str,
    groups: &[&str],
    send_to_email: bool,
    mask_data: bool,
) -> Page {
    admin.get("/users/new").await;
    let mut fields = vec![
        ("email", email),
        ("password", password),
        ("status", "enabled"),
        ("name", name),
    ];
    for g in groups {
        fields.push(("groups", g));
    }
    if send_to_email {
        fields.push(("send_to_email", "1"));
    }
    if mask_data {
        fields.push(("mask_data", "1"));
    }
    admin.post("/users/new", &fields).await
}

pub async fn create_user(
    admin: &Browser,
    email: &str,
    name: &str,
    groups: &[&str],
    send: bool,
    mask: bool,
) -> Page {
    let r = create_user_with(admin, email, name, USER_PASSWORD, groups, send, mask).await;
    assert_eq!(r.status, 303, "create {email}: {}", r.body);
    r
}

/// A user as `GET /api/v1/users?q=…` shows them to `admin` (the JSON, not the page's HTML).
pub async fn user_json(admin: &Browser, email: &str) -> serde_json::Value {
    let r = admin
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/users?q={}", email.replace('@', "%40")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "look up {email}");
    let list: serde_json::Value = r.json().await.unwrap();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| u["email"].as_str() == Some(email))
        .cloned()
        .unwrap_or_else(|| panic!("{email} not listed"))
}

/// The id of the user with this email.
pub async fn user_id(admin: &Browser, email: &str) -> i64 {
    user_json(admin, email).await["id"].as_i64().unwrap()
}

/// Saves a user's edit page with some fields replaced, the others as stored (read through the
/// API, so the set-up doesn't depend on how the page lays the form out). When `admin` can't read
/// the user (signed out meanwhile, say), only the changes are posted, and the page's answer
/// tells what happened.
pub async fn save_user(admin: &Browser, id: i64, changes: &[(&str, &str)]) -> Page {
    admin.get(&format!("/users/{id}")).await;
    let r = admin
        .request(reqwest::Method::GET, &format!("/api/v1/users/{id}"))
        .send()
        .await
        .unwrap();
    let u: serde_json::Value = if r.status() == 200 {
        r.json().await.unwrap()
    } else {
        serde_json::Value::Null
    };
    let text = |k: &str| u[k].as_str().unwrap_or_default().to_string();
    let mut fields: Vec<(String, String)> = vec![
        ("email".into(), text("email")),
        ("password".into(), String::new()),
        ("status".into(), text("status")),
        ("name".into(), text("name")),
        (
            "ip_whitelist".into(),
            u["ip_whitelist"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    ];
    for g in u["groups"].as_array().into_iter().flatten() {
        fields.push(("groups".into(), g["id"].to_string()));
    }
    if u["mask_data"].as_bool() == Some(true) {
        fields.push(("mask_data".into(), "1".into()));
    }
    for (k, _) in changes {
        if *k == "groups" || *k == "mask_data" {
            fields.retain(|(f, _)| f != k);
        }
    }
    for (k, v) in changes {
        if *k == "groups" || *k == "mask_data" {
            if !v.is_empty() {
                for g in v.split(',') {
                    fields.push((k.to_string(), g.to_string()));
                }
            }
        } else {
            fields.retain(|(f, _)| f != k);
            fields.push((k.to_string(), v.to_string()));
        }
    }
    // Disabling someone asks for a confirmation on the page; these saves give it.
    fields.push(("confirm_disable".into(), "1".into()));
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    admin.post(&format!("/users/{id}"), &pairs).await
}

pub async fn disable_user(admin: &Browser, email: &str) {
    let id = user_id(admin, email).await;
    let r = save_user(admin, id, &[("status", "disabled")]).await;
    assert_eq!(r.status, 303, "disable {email}: {}", r.body);
}

/// Actions › Disable 2FA, confirmed with the administrator's password.
pub async fn disable_2fa(admin: &Browser, email: &str) {
    let id = user_id(admin, email).await;
    admin.get(&format!("/users/{id}/two-factor/disable")).await;
    let r = admin
        .post(
            &format!("/users/{id}/two-factor/disable"),
            &[("actor_password", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 303, "disable 2FA of {email}: {}", r.body);
}

/// Creates a group through the page; returns its id.
pub async fn create_group(admin: &Browser, caption: &str, perms: &[&str]) -> i64 {
    admin.get("/groups/new").await;
    let mut fields = vec![("caption", caption)];
    for p in perms {
        fields.push(("perm", p));
    }
    let r = admin.post("/groups/new", &fields).await;
    assert_eq!(r.status, 303, "create group {caption}: {}", r.body);
    r.location
        .unwrap()
        .trim_start_matches("/groups/")
        .parse()
        .unwrap()
}

/// A staff member created by `admin` in `groups` (ids), with 2FA off, signed in through every
/// step: the usual actor of a guard test.
pub async fn staff_member(
    t: &TestApp,
    admin: &Browser,
    email: &str,
    name: &str,
    groups: &[&str],
    mask: bool,
) -> Browser {
    let groups: Vec<i64> = groups.iter().map(|g| g.parse().unwrap()).collect();
    t.staff(email)
        .by(admin)
        .named(name)
        .in_groups(&groups)
        .masked(mask)
        .signed_in()
        .await
}

/// Signs a user in through every step (code from the mail, forced change) and returns the browser.
pub async fn sign_in_fully(t: &TestApp, email: &str, password: &str) -> Browser {
    let b = t.browser();
    let r = b.sign_in(email, password).await;
    if r.location.as_deref() == Some("/login/code") {
        let code = t.smtp().latest_code(email);
        assert_eq!(b.enter_code(&code).await.location.as_deref(), Some("/"));
    } else {
        let alert = r
            .body
            .split("role=\"alert\">")
            .nth(1)
            .unwrap_or("")
            .split('<')
            .next()
            .unwrap_or("");
        assert_eq!(r.status, 303, "sign in {email}: {alert}");
    }
    choose_own_password(&b).await;
    b
}

/// After a sign-in with a password someone else chose: the forced change to [`NEW_PASSWORD`].
pub async fn choose_own_password(b: &Browser) {
    if b.get("/").await.location.as_deref() == Some("/password/change") {
        b.get("/password/change").await;
        let r = b
            .post(
                "/password/change",
                &[
                    ("new_password", NEW_PASSWORD),
                    ("confirm_password", NEW_PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
    }
}

/// Creates a token for a signed-in browser through `POST /api/v1/me/tokens` (session + CSRF),
/// from the browser's client address.
pub async fn token_for(_t: &TestApp, b: &Browser) -> String {
    b.api_token("test").await
}

/// How many event-log rows mention `text` in their details.
pub async fn events_with(t: &TestApp, text: &str) -> usize {
    let store = store::connect(&t.db_url).await.unwrap();
    let page = store
        .list_events(
            &store::EventVisibility {
                viewer_id: 0,
                client_scope: domain::ClientScope::All,
            },
            &store::EventQuery {
                limit: 100_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    page.iter()
        .filter(|e| e.details.contains(text) || e.event.contains(text))
        .count()
}

/// How many users exist.
pub async fn user_count(t: &TestApp) -> i64 {
    store::connect(&t.db_url)
        .await
        .unwrap()
        .count_users()
        .await
        .unwrap()
}

/// A staff member to be made by [`TestApp::staff`]: created by the first administrator through
/// the use cases, in a group of their own that grants exactly the rights asked for, with
/// two-factor authentication off, then signed in through the pages with their own password.
pub struct Staff<'a> {
    t: &'a TestApp,
    by: Option<&'a Browser>,
    email: String,
    name: String,
    rights: Vec<String>,
    groups: Vec<i64>,
    masked: bool,
    allowed_tags: Vec<i64>,
}

impl TestApp {
    /// A staff member with `email`: say which rights ([`Staff::with_rights`],
    /// [`Staff::with_every_right`]), whether masked ([`Staff::masked`]), then
    /// [`Staff::signed_in`].
    pub fn staff(&self, email: &str) -> Staff<'_> {
        Staff {
            t: self,
            by: None,
            email: email.to_string(),
            name: "Staff Person".into(),
            rights: Vec::new(),
            groups: Vec::new(),
            masked: false,
            allowed_tags: Vec::new(),
        }
    }

    /// The first administrator as the use cases see them (signed in anew).
    pub async fn admin_actor(&self) -> app::Actor {
        self.actor_of(&self.admin().await).await
    }

    /// The person signed in at `b` as the use cases see them.
    pub async fn actor_of(&self, b: &Browser) -> app::Actor {
        let id = b.session_id().expect("a session");
        match self.app.authenticate(&id, None).await.unwrap() {
            Some(app::auth::Authenticated::Full { actor, .. }) => *actor,
            _ => panic!("not signed in"),
        }
    }
}

impl<'a> Staff<'a> {
    /// Created by the administrator signed in at `admin` (else the first administrator signs
    /// in anew to create them).
    pub fn by(mut self, admin: &'a Browser) -> Self {
        self.by = Some(admin);
        self
    }

    /// Their name (else "Staff Person").
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Permission codes (e.g. `users.view`) their own group grants.
    pub fn with_rights(mut self, codes: &[&str]) -> Self {
        self.rights.extend(codes.iter().map(|c| c.to_string()));
        self
    }

    /// Every permission of the catalogue (not membership of Administrators).
    pub fn with_every_right(mut self) -> Self {
        self.rights = Permission::catalogue().map(|p| p.code()).collect();
        self
    }

    /// Also a member of these existing groups.
    pub fn in_groups(mut self, ids: &[i64]) -> Self {
        self.groups.extend_from_slice(ids);
        self
    }

    /// With "Mask data" on or off.
    pub fn masked(mut self, masked: bool) -> Self {
        self.masked = masked;
        self
    }

    /// Their own Allowed Client Tags (tag ids): they see only clients carrying one.
    pub fn with_allowed_tags(mut self, tags: &[i64]) -> Self {
        self.allowed_tags.extend_from_slice(tags);
        self
    }

    /// Creates the account and returns a browser signed in as them.
    pub async fn signed_in(self) -> Browser {
        let admin = match self.by {
            Some(b) => self.t.actor_of(b).await,
            None => self.t.admin_actor().await,
        };
        let mut groups = self.groups.clone();
        if !self.rights.is_empty() {
            let permissions: PermissionSet = self
                .rights
                .iter()
                .map(|c| Permission::from_code(c).unwrap_or_else(|| panic!("no permission {c}")))
                .collect();
            let caption = format!("Group {}", self.email);
            groups.push(
                self.t
                    .app
                    .create_group(&admin, &caption, &permissions, &[])
                    .await
                    .unwrap(),
            );
        }
        let input = app::users::UserInput {
            email: self.email.clone(),
            password: USER_PASSWORD.into(),
            status: "enabled".into(),
            group_ids: groups,
            name: self.name.clone(),
            send_to_email: false,
            mask_data: self.masked,
            ip_whitelist: String::new(),
            confirm_lockout: false,
            allowed_tag_ids: self.allowed_tags.clone(),
        };
        let id = self.t.app.create_user(&admin, &input).await.unwrap();
        self.t
            .app
            .set_two_factor(&admin, id, false, ADMIN_PASSWORD)
            .await
            .unwrap();
        sign_in_fully(self.t, &self.email, USER_PASSWORD).await
    }
}
