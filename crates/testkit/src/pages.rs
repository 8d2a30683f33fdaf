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

/// The id of the user with this email, read from the Users list.
pub async fn user_id(admin: &Browser, email: &str) -> i64 {
    let page = admin
        .get(&format!("/users?q={}", email.replace('@', "%40")))
        .await;
    let cell = format!("<td>{email}</td>");
    let at = page
        .body
        .find(&cell)
        .unwrap_or_else(|| panic!("{email} not listed"));
    let before = &page.body[..at];
    let href = before.rfind("href=\"/users/").expect("row link") + "href=\"/users/".len();
    before[href..].split('"').next().unwrap().parse().unwrap()
}

/// Loads a user's edit page and saves it with some fields replaced.
pub async fn save_user(admin: &Browser, id: i64, changes: &[(&str, &str)]) -> Page {
    let page = admin.get(&format!("/users/{id}")).await;
    let value = |name: &str| -> String {
        let key = format!("name=\"{name}\" type=\"");
        let at = page.body.find(&key).map(|i| i + key.len()).unwrap_or(0);
        let rest = &page.body[at..];
        let v = rest.find("value=\"").map(|i| i + 7).unwrap_or(0);
        rest[v..].split('"').next().unwrap_or("").to_string()
    };
    let email = value("email");
    let name = value("name");
    let status = if page.body.contains("<option value=\"disabled\" selected>") {
        "disabled"
    } else {
        "enabled"
    };
    let groups: Vec<String> = page
        .body
        .split("name=\"groups\" value=\"")
        .skip(1)
        .filter(|s| s.split('>').next().unwrap_or("").contains("checked"))
        .map(|s| s.split('"').next().unwrap().to_string())
        .filter(|v| v.parse::<i64>().is_ok())
        .collect();
    let mask = page.body.contains("name=\"mask_data\" value=\"1\" checked");
    let ip_whitelist = page
        .body
        .split("name=\"ip_whitelist\"")
        .nth(1)
        .and_then(|rest| rest.split_once('>'))
        .and_then(|(_, rest)| rest.split_once("</textarea>"))
        .map(|(text, _)| text.replace("&#x2f;", "/").replace("&#47;", "/"))
        .unwrap_or_default();
    let mut fields: Vec<(String, String)> = vec![
        ("email".into(), email),
        ("password".into(), String::new()),
        ("status".into(), status.into()),
        ("name".into(), name),
        ("ip_whitelist".into(), ip_whitelist),
    ];
    for g in groups {
        fields.push(("groups".into(), g));
    }
    if mask {
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
pub async fn token_for(t: &TestApp, b: &Browser) -> String {
    b.get("/profile").await;
    let r = b
        .request(reqwest::Method::POST, "/api/v1/me/tokens")
        .header("x-csrf-token", b.csrf())
        .header("origin", t.url(""))
        .json(&serde_json::json!({"name": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_string()
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
            allowed_tag_ids: Vec::new(),
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
