//! IP Whitelist over HTTP, on both databases: where a staff member may sign in from and use the
//! Back Office from. The test app trusts 127.0.0.1 as a proxy, so a browser "comes from" any
//! address by sending `X-Forwarded-For` (as behind a load balancer); without it, it comes from
//! 127.0.0.1.

use serde_json::{json, Value};
use testkit::pages::*;
use testkit::{db::backends, Browser, Options, TestApp};

const OFFICE: &str = "198.51.100.0/24\n2001:db8:abcd::/48";
const OUTSIDE: &str = "203.0.113.9";

fn behind_a_proxy() -> Options {
    Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Options::default()
    }
}

fn alert(body: &str) -> &str {
    body.split("role=\"alert\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or("")
        .trim()
}

/// The error shown under a form field.
fn field_error<'a>(body: &'a str, field: &str) -> &'a str {
    body.split(&format!("id=\"{field}-error\">"))
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or("")
}

/// Jane: an administrator with 2FA off and this IP Whitelist, set by the first administrator.
async fn jane(admin: &Browser, list: &str) -> i64 {
    create_user(admin, "jane@example.com", "Jane Doe", &["1"], false, false).await;
    disable_2fa(admin, "jane@example.com").await;
    let id = user_id(admin, "jane@example.com").await;
    let r = save_user(admin, id, &[("ip_whitelist", list)]).await;
    assert_eq!(r.status, 303, "set the whitelist: {}", r.body);
    id
}

/// A browser that comes from `from` and has tried the password step.
async fn sign_in_from(t: &TestApp, from: &str, email: &str, password: &str) -> (Browser, u16) {
    let b = t.browser();
    b.come_from(from);
    let r = b.sign_in(email, password).await;
    let status = r.status;
    if status != 303 {
        return (b, status);
    }
    choose_own_password(&b).await;
    (b, status)
}

#[tokio::test]
async fn sign_in_from_outside_is_refused_like_a_wrong_password_and_names_the_address() {
    for backend in backends() {
        let t = TestApp::start_with_options(backend, behind_a_proxy()).await;
        let admin = t.admin().await;
        jane(&admin, OFFICE).await;

        let wrong = t.browser();
        wrong.come_from(OUTSIDE);
        let wrong = wrong.sign_in("jane@example.com", "not her password").await;
        let outside = t.browser();
        outside.come_from(OUTSIDE);
        let outside = outside.sign_in("jane@example.com", USER_PASSWORD).await;
        assert_eq!(outside.status, 401, "{backend}");
        assert_eq!(outside.status, wrong.status, "{backend}");
        assert_eq!(
            alert(&outside.body),
            "Invalid email or password",
            "{backend}"
        );
        assert_eq!(alert(&outside.body), alert(&wrong.body), "{backend}");
        assert!(outside
            .headers
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("bo_session=")));
        assert_eq!(
            events_with(&t, "address 203.0.113.9 not in the IP Whitelist").await,
            1,
            "{backend}: the refusal is an event naming the address"
        );

        // Inside: an IPv4 address of the /24, an IPv6 address of the /48.
        // (The first sign-in chooses her own password.)
        for (from, password) in [
            ("198.51.100.77", USER_PASSWORD),
            ("2001:db8:abcd:12::5", NEW_PASSWORD),
        ] {
            let (b, status) = sign_in_from(&t, from, "jane@example.com", password).await;
            assert_eq!(status, 303, "{backend} {from}");
            let profile = b.get("/profile").await;
            assert!(
                profile
                    .body
                    .contains("IP Whitelist: 198.51.100.0/24, 2001:db8:abcd::/48"),
                "{backend} {from}: {}",
                profile.body
            );
        }
        // Without the proxy's word the address is the peer's, 127.0.0.1: outside.
        let direct = t.browser().sign_in("jane@example.com", NEW_PASSWORD).await;
        assert_eq!(direct.status, 401, "{backend}");
    }
}

#[tokio::test]
async fn a_session_used_from_outside_is_ended_and_the_event_says_so() {
    for backend in backends() {
        let t = TestApp::start_with_options(backend, behind_a_proxy()).await;
        let admin = t.admin().await;
        jane(&admin, OFFICE).await;
        let (b, _) = sign_in_from(&t, "198.51.100.7", "jane@example.com", USER_PASSWORD).await;
        assert_eq!(b.get("/users").await.status, 200, "{backend}");

        b.come_from(OUTSIDE);
        let r = b.get("/users").await;
        assert_eq!(r.status, 303, "{backend}");
        assert!(r.location.unwrap().starts_with("/login"), "{backend}");
        assert_eq!(
            events_with(&t, "Session refused: address not in the IP Whitelist").await,
            1,
            "{backend}"
        );
        assert_eq!(
            events_with(&t, OUTSIDE).await,
            1,
            "{backend}: names the address"
        );
        // The session is over, even back in the office.
        b.come_from("198.51.100.7");
        assert_eq!(b.get("/users").await.status, 303, "{backend}");

        // The API answers 401 to a session cookie from outside.
        let (b, _) = sign_in_from(&t, "198.51.100.7", "jane@example.com", NEW_PASSWORD).await;
        let me = |from: &'static str| {
            b.client
                .get(t.url("/api/v1/me"))
                .header("x-forwarded-for", from)
                .send()
        };
        assert_eq!(me("198.51.100.7").await.unwrap().status(), 200, "{backend}");
        assert_eq!(me(OUTSIDE).await.unwrap().status(), 401, "{backend}");
        assert_eq!(events_with(&t, "Session refused").await, 2, "{backend}");
    }
}

#[tokio::test]
async fn an_api_token_used_from_outside_gets_401_and_an_event() {
    for backend in backends() {
        let t = TestApp::start_with_options(backend, behind_a_proxy()).await;
        let admin = t.admin().await;
        jane(&admin, OFFICE).await;
        let (b, _) = sign_in_from(&t, "198.51.100.7", "jane@example.com", USER_PASSWORD).await;
        let token = token_for(&t, &b).await;
        let http = reqwest::Client::new();
        let call = |from: &'static str| {
            http.get(t.url("/api/v1/users"))
                .bearer_auth(&token)
                .header("x-forwarded-for", from)
                .send()
        };
        assert_eq!(
            call("2001:db8:abcd::1").await.unwrap().status(),
            200,
            "{backend}"
        );
        for _ in 0..3 {
            assert_eq!(call(OUTSIDE).await.unwrap().status(), 401, "{backend}");
        }
        assert_eq!(
            events_with(&t, "API token refused: address not in the IP Whitelist").await,
            1,
            "{backend}: one event a minute, however often the script calls"
        );
        assert_eq!(
            events_with(&t, OUTSIDE).await,
            1,
            "{backend}: names the address"
        );
        // Inside again, the token works: it was the address that was refused.
        assert_eq!(
            call("198.51.100.200").await.unwrap().status(),
            200,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn the_whitelist_holds_at_the_code_step() {
    for backend in backends() {
        let t = TestApp::start_with_options(backend, behind_a_proxy()).await;
        let admin = t.admin().await;
        create_user(&admin, "kim@example.com", "Kim Lee", &["1"], false, false).await;
        let id = user_id(&admin, "kim@example.com").await;
        let r = save_user(&admin, id, &[("ip_whitelist", "198.51.100.0/24")]).await;
        assert_eq!(r.status, 303, "{}", r.body);
        let b = t.browser();
        b.come_from("198.51.100.1");
        let r = b.sign_in("kim@example.com", USER_PASSWORD).await;
        assert_eq!(r.location.as_deref(), Some("/login/code"), "{backend}");
        let code = t.smtp().latest_code("kim@example.com");
        b.come_from(OUTSIDE);
        let r = b.enter_code(&code).await;
        assert_eq!(r.status, 401, "{backend}");
        assert_eq!(alert(&r.body), "Invalid email or password", "{backend}");
        assert_eq!(
            events_with(&t, "address 203.0.113.9 not in the IP Whitelist").await,
            1,
            "{backend}"
        );
        // The pending sign-in is gone: the code doesn't work from the office either now.
        b.come_from("198.51.100.1");
        assert_ne!(
            b.enter_code(&code).await.location.as_deref(),
            Some("/"),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn bad_lines_are_named_and_change_nothing() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let id = jane(&admin, "198.51.100.0/24").await;

        let r = save_user(
            &admin,
            id,
            &[(
                "ip_whitelist",
                "198.51.100.1\n10.0.0.0/33\n\nnot-an-address",
            )],
        )
        .await;
        assert_eq!(r.status, 422, "{backend}");
        let error = field_error(&r.body, "ip_whitelist");
        assert!(
            error.contains("Line 2: “10.0.0.0/33”"),
            "{backend}: {error}"
        );
        assert!(
            error.contains("Line 4: “not-an-address”"),
            "{backend}: {error}"
        );
        assert!(
            r.body.contains("not-an-address</textarea>"),
            "{backend}: typed text kept"
        );
        let page = admin.get(&format!("/users/{id}")).await;
        assert!(
            page.body.contains(">198.51.100.0/24</textarea>"),
            "{backend}: unchanged"
        );

        let before = user_count(&t).await;
        let r = create_user_with_whitelist(&admin, "new@example.com", "::ffff:10.0.0.1").await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(
            field_error(&r.body, "ip_whitelist").contains("IPv4-mapped"),
            "{backend}"
        );
        assert_eq!(user_count(&t).await, before, "{backend}: nobody created");

        // Saved normalised: host bits cleared, duplicates and covered ranges dropped.
        let r = create_user_with_whitelist(
            &admin,
            "new@example.com",
            " 10.1.2.3/16\n10.1.0.0/24\n2001:DB8::1\n",
        )
        .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.body);
        let list = admin.get("/users?ip_whitelist=yes").await;
        assert!(
            list.body
                .contains("<span>10.1.0.0/16</span><span>2001:db8::1</span>"),
            "{backend}: {}",
            list.body
        );
        assert_eq!(
            events_with(&t, "10.1.0.0/16, 2001:db8::1").await,
            1,
            "{backend}"
        );
    }
}

async fn create_user_with_whitelist(admin: &Browser, email: &str, list: &str) -> testkit::Page {
    admin.get("/users/new").await;
    admin
        .post(
            "/users/new",
            &[
                ("email", email),
                ("password", USER_PASSWORD),
                ("status", "enabled"),
                ("name", "New Person"),
                ("groups", "1"),
                ("ip_whitelist", list),
            ],
        )
        .await
}

#[tokio::test]
async fn ones_own_list_only_narrows_and_leaving_out_ones_address_needs_a_confirmation() {
    for backend in backends() {
        let t = TestApp::start_with_options(backend, behind_a_proxy()).await;
        let admin = t.admin().await;
        let root = user_id(&admin, &t.admin_email).await;
        admin.come_from("198.51.100.7");
        // From anywhere to the office: a narrowing that keeps the current address.
        let r = save_user(&admin, root, &[("ip_whitelist", "198.51.100.0/24")]).await;
        assert_eq!(r.status, 303, "{backend}: {}", r.body);

        for (list, says) in [
            ("198.51.100.0/23", "the new list admits 198.51.101.0"),
            (
                "198.51.100.0/24\n203.0.113.0/24",
                "the new list admits 203.0.113.0",
            ),
            ("", "an empty list admits every address"),
        ] {
            let r = save_user(&admin, root, &[("ip_whitelist", list)]).await;
            assert_eq!(r.status, 403, "{backend} {list:?}");
            assert!(
                r.body
                    .contains("You can&#39;t widen or remove your own IP Whitelist"),
                "{backend}: {}",
                r.body
            );
            assert!(r.body.contains(says), "{backend}: {}", r.body);
        }
        assert_eq!(
            events_with(&t, "widen or remove own IP Whitelist").await,
            3,
            "{backend}"
        );

        // Narrowing that keeps the current address saves at once.
        let r = save_user(&admin, root, &[("ip_whitelist", "198.51.100.0/28")]).await;
        assert_eq!(r.status, 303, "{backend}");
        // Narrowing that leaves it out asks first, and changes nothing until confirmed.
        let r = save_user(&admin, root, &[("ip_whitelist", "198.51.100.8")]).await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(
            r.body
                .contains("You will be signed out and can&#39;t sign back in from 198.51.100.7"),
            "{backend}: {}",
            r.body
        );
        assert!(r.body.contains("name=\"confirm_lockout\""), "{backend}");
        assert_eq!(
            admin.get("/users").await.status,
            200,
            "{backend}: still signed in"
        );
        let r = save_user(
            &admin,
            root,
            &[("ip_whitelist", "198.51.100.8"), ("confirm_lockout", "1")],
        )
        .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.body);
        let r = admin.get("/users").await;
        assert!(
            r.location.unwrap_or_default().starts_with("/login"),
            "{backend}: signed out"
        );
        let (_, status) = sign_in_from(&t, "198.51.100.8", &t.admin_email, &t.admin_password).await;
        assert_eq!(status, 303, "{backend}: the one address left still works");
    }
}

#[tokio::test]
async fn an_administrator_sets_another_users_list_shown_in_the_list_and_the_api() {
    for backend in backends() {
        let t = TestApp::start_with_options(backend, behind_a_proxy()).await;
        let admin = t.admin().await;
        let id = jane(&admin, OFFICE).await;
        create_user(
            &admin,
            "open@example.com",
            "Open Door",
            &["1"],
            false,
            false,
        )
        .await;

        let list = admin.get("/users").await;
        let headers: Vec<&str> = list
            .body
            .split("<th ")
            .skip(1)
            .map(|th| {
                th.split("\">")
                    .nth(2)
                    .unwrap()
                    .split(['<', ' '])
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            headers,
            [
                "ID", "Name", "Email", "Allowed", "Status", "Two", "IP", "Groups", "Creator",
                "Created", "Mask", "Last"
            ],
            "{backend}: the vendor's order"
        );
        assert!(list.body.contains("Two Factor Authentication"));
        assert!(list.body.contains("Created At"));
        let only = admin.get("/users?ip_whitelist=yes").await;
        assert!(
            only.body.contains("jane@example.com") && !only.body.contains("open@example.com"),
            "{backend}"
        );
        let none = admin
            .get("/users?ip_whitelist=no&sort=ip_whitelist&dir=desc")
            .await;
        assert!(
            !none.body.contains("jane@example.com") && none.body.contains("open@example.com"),
            "{backend}"
        );
        let by_creator = admin
            .get(&format!(
                "/users?creator={}",
                user_id(&admin, &t.admin_email).await
            ))
            .await;
        assert!(
            by_creator.body.contains("<p>2 users</p>"),
            "{backend}: {}",
            by_creator.body
        );
        let password_only = admin.get("/users?two_factor=disabled").await;
        assert!(
            password_only.body.contains("jane@example.com")
                && !password_only.body.contains("open@example.com"),
            "{backend}"
        );

        // The API: the list as entries, filters, and the same rules.
        let token = token_for(&t, &admin).await;
        let http = reqwest::Client::new();
        let api = |method: &str, path: String, body: Option<Value>| {
            let mut req = http
                .request(method.parse().unwrap(), t.url(&path))
                .bearer_auth(&token)
                .header("x-forwarded-for", "198.51.100.7");
            if let Some(b) = body {
                req = req.json(&b);
            }
            async move {
                let r = req.send().await.unwrap();
                (
                    r.status().as_u16(),
                    r.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        let (s, u) = api("GET", format!("/api/v1/users/{id}"), None).await;
        assert_eq!(s, 200);
        assert_eq!(
            u["ip_whitelist"],
            json!(["198.51.100.0/24", "2001:db8:abcd::/48"]),
            "{backend}"
        );
        let (_, page) = api("GET", "/api/v1/users?ip_whitelist=true".into(), None).await;
        assert_eq!(page["total"], 1, "{backend}");
        let (s, e) = api(
            "PATCH",
            format!("/api/v1/users/{id}"),
            Some(json!({"ip_whitelist": ["10.0.0.1", "10.0.0.999"]})),
        )
        .await;
        assert_eq!(s, 422, "{backend}");
        assert!(
            e["fields"]["ip_whitelist"]
                .as_str()
                .unwrap()
                .starts_with("Line 2:"),
            "{backend}: {e}"
        );
        let (s, u) = api(
            "PATCH",
            format!("/api/v1/users/{id}"),
            Some(json!({"ip_whitelist": []})),
        )
        .await;
        assert_eq!(
            (s, u["ip_whitelist"].clone()),
            (200, json!([])),
            "{backend}: an administrator removes another's list"
        );
        let (s, u) = api("POST", "/api/v1/users".into(), Some(json!({
            "email": "api@example.com", "password": USER_PASSWORD, "status": "enabled", "groups": [1],
            "name": "Api Person", "ip_whitelist": ["2001:db8::5/64"]}))).await;
        assert_eq!(s, 201, "{backend}: {u}");
        assert_eq!(u["ip_whitelist"], json!(["2001:db8::/64"]), "{backend}");

        // One's own list through the API: narrowing without one's address needs the flag;
        // widening is refused whatever the flag.
        let root = user_id(&admin, &t.admin_email).await;
        let (s, _) = api(
            "PATCH",
            format!("/api/v1/users/{root}"),
            Some(json!({"ip_whitelist": ["198.51.100.0/24"]})),
        )
        .await;
        assert_eq!(s, 200, "{backend}");
        let (s, e) = api(
            "PATCH",
            format!("/api/v1/users/{root}"),
            Some(json!({"ip_whitelist": ["198.51.100.0/23"], "confirm_lockout": true})),
        )
        .await;
        assert_eq!(s, 403, "{backend}: {e}");
        let (s, e) = api(
            "PATCH",
            format!("/api/v1/users/{root}"),
            Some(json!({"ip_whitelist": ["198.51.100.9"]})),
        )
        .await;
        assert_eq!(s, 422, "{backend}");
        assert!(
            e["fields"]["confirm_lockout"]
                .as_str()
                .unwrap()
                .starts_with("You will be signed out and can't sign back in from 198.51.100.7"),
            "{backend}: {e}"
        );
        let (_, me) = api("GET", "/api/v1/me".into(), None).await;
        assert_eq!(
            me["user"]["ip_whitelist"],
            json!(["198.51.100.0/24"]),
            "{backend}: unchanged: {me}"
        );
        let (s, _) = api(
            "PATCH",
            format!("/api/v1/users/{root}"),
            Some(json!({"ip_whitelist": ["198.51.100.9"], "confirm_lockout": true})),
        )
        .await;
        assert_eq!(s, 200, "{backend}");
        let (s, _) = api("GET", "/api/v1/me".into(), None).await;
        assert_eq!(s, 401, "{backend}: the token no longer works from here");
    }
}
