//! The JSON API: tokens, the OpenAPI document, the role matrix, and its error contract.

use serde_json::{json, Value};
use testkit::pages::*;
use testkit::{db::backends, TestApp};

/// A JSON client with a bearer token.
struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(t: &TestApp, token: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: t.url(""),
            token: token.map(str::to_string),
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

#[tokio::test]
async fn tokens_are_shown_once_act_as_their_owner_and_can_be_revoked() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        // Without the CSRF header, a session can't create a token.
        let r = admin
            .client
            .post(t.url("/api/v1/me/tokens"))
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let token = token_for(&t, &admin).await;
        assert!(token.starts_with("bo_") && token.len() == 67);
        let api = Api::new(&t, Some(&token));
        let (s, me) = api.send("GET", "/api/v1/me", None).await;
        assert_eq!(s, 200);
        assert_eq!(me["user"]["email"], "root@example.com");
        assert_eq!(me["is_admin"], true);
        // A token can't mint another token.
        let (s, _) = api
            .send("POST", "/api/v1/me/tokens", Some(json!({"name": "child"})))
            .await;
        assert_eq!(s, 403);
        let (s, list) = api.send("GET", "/api/v1/me/tokens", None).await;
        assert_eq!(s, 200);
        assert!(
            list.to_string().find(&token).is_none(),
            "the secret is never shown again"
        );
        let id = list[0]["id"].as_i64().unwrap();
        let store = store::connect(&t.db_url).await.unwrap();
        let tok = store.tokens_of_user(1).await.unwrap();
        assert_eq!(tok.len(), 1);
        let (s, _) = api
            .send("DELETE", &format!("/api/v1/me/tokens/{id}"), None)
            .await;
        assert_eq!(s, 204);
        assert_eq!(api.send("GET", "/api/v1/me", None).await.0, 401, "revoked");
        // A token dies with its owner's account.
        create_user(&admin, "jane@example.com", "Jane", &["1"], false, false).await;
        disable_2fa(&admin, "jane@example.com").await;
        let jane = sign_in_fully(&t, "jane@example.com", USER_PASSWORD).await;
        let jane_token = token_for(&t, &jane).await;
        let jane_api = Api::new(&t, Some(&jane_token));
        assert_eq!(jane_api.send("GET", "/api/v1/me", None).await.0, 200);
        disable_user(&admin, "jane@example.com").await;
        assert_eq!(jane_api.send("GET", "/api/v1/me", None).await.0, 401);
        // Another instance may remember a token for up to a second (its token cache), so a
        // revocation made elsewhere is honoured within a second.
        let other = t.another_instance().await;
        let token = token_for(&t, &admin).await;
        let here = Api::new(&t, Some(&token));
        let there = Api::new(&other, Some(&token));
        assert_eq!(there.send("GET", "/api/v1/me", None).await.0, 200);
        let (_, list) = here.send("GET", "/api/v1/me/tokens", None).await;
        let id = list[0]["id"].as_i64().unwrap();
        let (s, _) = here
            .send("DELETE", &format!("/api/v1/me/tokens/{id}"), None)
            .await;
        assert_eq!(s, 204);
        assert_eq!(here.send("GET", "/api/v1/me", None).await.0, 401);
        tokio::time::sleep(app::tokens::CACHE_TTL + std::time::Duration::from_millis(100)).await;
        assert_eq!(
            there.send("GET", "/api/v1/me", None).await.0,
            401,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_lists_every_route() {
    let t = TestApp::start("sqlite").await;
    let (s, doc) = Api::new(&t, None)
        .send("GET", "/api/openapi.json", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if let Some(op) = item.get(method) {
                documented.push(format!("{} {path}", method.to_uppercase()));
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{method} {path} has responses"
                );
            }
        }
    }
    documented.sort();
    let mut served = vec![
        "GET /api/v1/me",
        "GET /api/v1/me/tokens",
        "POST /api/v1/me/tokens",
        "DELETE /api/v1/me/tokens/{id}",
        "GET /api/v1/permissions",
        "GET /api/v1/users",
        "POST /api/v1/users",
        "GET /api/v1/users/{id}",
        "PATCH /api/v1/users/{id}",
        "POST /api/v1/users/{id}/two-factor/disable",
        "POST /api/v1/users/{id}/two-factor/enable",
        "POST /api/v1/users/{id}/unlock",
        "POST /api/v1/users/{id}/sign-out",
        "GET /api/v1/groups",
        "POST /api/v1/groups",
        "GET /api/v1/groups/export",
        "POST /api/v1/groups/import",
        "GET /api/v1/groups/{id}",
        "PUT /api/v1/groups/{id}",
        "DELETE /api/v1/groups/{id}",
        "GET /api/v1/events",
        "GET /api/v1/events/export",
        "GET /api/v1/clients",
        "POST /api/v1/clients",
        "GET /api/v1/clients/export",
        "GET /api/v1/clients/{id}",
        "PATCH /api/v1/clients/{id}",
        "POST /api/v1/clients/{id}/block",
        "GET /api/v1/tags",
        "POST /api/v1/tags",
        "PUT /api/v1/tags/{id}",
        "DELETE /api/v1/tags/{id}",
    ];
    served.sort();
    assert_eq!(documented, served);
    // Every $ref resolves.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = r.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
    // And every documented route is really served (anything but 404/405 without credentials).
    let api = Api::new(&t, None);
    for route in &served {
        let (method, path) = route.split_once(' ').unwrap();
        let (s, _) = api.send(method, &path.replace("{id}", "1"), None).await;
        assert_eq!(s, 401, "{route} answers 401 without credentials");
    }
    let docs = reqwest::get(t.url("/api/docs")).await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger-ui-bundle.js"));
    assert_eq!(
        reqwest::get(t.url("/api/docs/swagger-ui-bundle.js"))
            .await
            .unwrap()
            .status(),
        200
    );
}

/// What a generator needs of the document (OpenAPI requires some of it, generators the rest):
/// unique operationIds that name what they do, a description on every response, references
/// that resolve, the server, a licence, described tags, and both ways to authenticate.
#[tokio::test]
async fn the_openapi_document_is_what_client_generators_need() {
    let t = TestApp::start("sqlite").await;
    let (_, doc) = Api::new(&t, None)
        .send("GET", "/api/openapi.json", None)
        .await;
    assert_eq!(doc["servers"][0]["url"], t.url(""));
    assert!(doc["info"]["license"]["name"]
        .as_str()
        .is_some_and(|n| !n.is_empty()));
    let resolve = |v: &Value| -> Value {
        match v["$ref"].as_str() {
            Some(r) => doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {r}"))
                .clone(),
            None => v.clone(),
        }
    };
    let mut ids = std::collections::BTreeSet::new();
    let mut tags = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default();
            let camel = id.starts_with(|c: char| c.is_ascii_lowercase())
                && id.contains(|c: char| c.is_ascii_uppercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric());
            assert!(
                camel,
                "{method} {path}: operationId {id:?} is a verb and a noun, camelCase"
            );
            assert!(
                ids.insert(id.to_string()),
                "{method} {path}: operationId {id} repeats"
            );
            for (status, response) in op["responses"].as_object().unwrap() {
                let response = resolve(response);
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path}: response {status} has no description"
                );
            }
            tags.extend(op["tags"].as_array().unwrap().iter().map(|t| t.to_string()));
            let security = op["security"].as_array().unwrap();
            for name in security.iter().flat_map(|s| s.as_object().unwrap().keys()) {
                let declared = &doc["components"]["securitySchemes"][name];
                assert!(
                    declared.is_object(),
                    "{method} {path}: undeclared scheme {name}"
                );
            }
            if method != "get" {
                let with_cookie = security.iter().find(|s| s.get("session").is_some());
                assert!(
                    with_cookie.is_some_and(|s| s.get("csrf").is_some()),
                    "{method} {path}: a change with the session cookie needs X-CSRF-Token"
                );
            }
        }
    }
    for tag in doc["tags"].as_array().unwrap() {
        assert!(
            tag["description"].is_string(),
            "tag {} has a description",
            tag["name"]
        );
        tags.remove(&tag["name"].to_string());
    }
    assert!(tags.is_empty(), "every tag used is declared: {tags:?}");
    // Every reference resolves, to schemas and shared responses alike.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"").skip(1) {
        resolve(&json!({"$ref": r.split('"').next().unwrap()}));
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(
        (
            schemes["session"]["in"].as_str(),
            schemes["session"]["name"].as_str()
        ),
        (Some("cookie"), Some("bo_session"))
    );
    assert_eq!(schemes["csrf"]["name"], "X-CSRF-Token");
    let export = &doc["paths"]["/api/v1/events/export"]["get"]["responses"]["200"]["content"];
    assert!(export["application/x-ndjson"].is_object());
}

#[tokio::test]
async fn the_role_matrix() {
    let t = TestApp::start("sqlite").await;
    let admin = t.admin().await;
    let viewer_group = create_group(
        &admin,
        "Viewers",
        &["users.view", "groups.view", "event_log.view"],
    )
    .await;
    create_user(
        &admin,
        "viewer@example.com",
        "Vi Ewer",
        &[&viewer_group.to_string()],
        false,
        true,
    )
    .await;
    disable_2fa(&admin, "viewer@example.com").await;
    create_user(
        &admin,
        "pending@example.com",
        "Pen Ding",
        &["1"],
        false,
        false,
    )
    .await;
    let viewer = sign_in_fully(&t, "viewer@example.com", USER_PASSWORD).await;
    let admin_api = Api::new(&t, Some(&token_for(&t, &admin).await));
    let viewer_api = Api::new(&t, Some(&token_for(&t, &viewer).await));
    let anonymous = Api::new(&t, None);
    // A pre-2FA session reaches no API route.
    let pending = t.browser();
    assert_eq!(
        pending
            .sign_in("pending@example.com", USER_PASSWORD)
            .await
            .location
            .as_deref(),
        Some("/login/code")
    );
    let pre = pending
        .client
        .get(t.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 401);

    let cases: Vec<(&str, String, Option<Value>, u16, u16)> = vec![
        // method, path, body, viewer status, admin status
        ("GET", "/api/v1/users".into(), None, 200, 200),
        ("GET", "/api/v1/users/1".into(), None, 200, 200),
        (
            "POST",
            "/api/v1/users".into(),
            Some(
                json!({"email": "n@example.com", "password": USER_PASSWORD, "status": "enabled", "groups": [1], "name": "N"}),
            ),
            403,
            201,
        ),
        (
            "PATCH",
            "/api/v1/users/2".into(),
            Some(json!({"name": "Renamed"})),
            403,
            200,
        ),
        ("POST", "/api/v1/users/2/unlock".into(), None, 403, 200),
        (
            "POST",
            "/api/v1/users/2/two-factor/enable".into(),
            None,
            403,
            200,
        ),
        ("POST", "/api/v1/users/2/sign-out".into(), None, 403, 204),
        ("GET", "/api/v1/groups".into(), None, 200, 200),
        (
            "POST",
            "/api/v1/groups".into(),
            Some(json!({"caption": "Desk", "permissions": ["users.view"]})),
            403,
            201,
        ),
        ("GET", "/api/v1/groups/export".into(), None, 200, 200),
        ("GET", "/api/v1/events".into(), None, 200, 200),
        ("GET", "/api/v1/events/export".into(), None, 403, 200),
        ("GET", "/api/v1/permissions".into(), None, 200, 200),
        (
            "DELETE",
            format!("/api/v1/groups/{viewer_group}"),
            None,
            403,
            204,
        ),
    ];
    for (method, path, body, viewer_status, admin_status) in cases {
        assert_eq!(
            anonymous.send(method, &path, body.clone()).await.0,
            401,
            "anonymous {method} {path}"
        );
        let (s, v) = viewer_api.send(method, &path, body.clone()).await;
        assert_eq!(s, viewer_status, "viewer {method} {path}: {v}");
        let (s, v) = admin_api.send(method, &path, body).await;
        assert_eq!(s, admin_status, "admin {method} {path}: {v}");
    }
}

#[tokio::test]
async fn errors_follow_the_contract() {
    let t = TestApp::start("sqlite").await;
    let admin = t.admin().await;
    let token = token_for(&t, &admin).await;
    let api = Api::new(&t, Some(&token));
    let raw = |body: &'static str, ctype: &'static str| {
        let http = api.http.clone();
        let url = t.url("/api/v1/groups");
        let token = token.clone();
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", ctype)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = raw("{not json", "application/json").await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].is_string());
    assert_eq!(raw("{}", "text/plain").await.0, 415);
    let (s, v) = raw(
        r#"{"caption": "X", "permissions": [], "builtin": true}"#,
        "application/json",
    )
    .await;
    assert_eq!(s, 422, "unknown fields are refused: {v}");
    let big = Box::leak(
        format!(
            "{{\"caption\": \"{}\", \"permissions\": []}}",
            "x".repeat(1_100_000)
        )
        .into_boxed_str(),
    );
    assert_eq!(raw(big, "application/json").await.0, 413);
    let (s, v) = api.send("POST", "/api/v1/users", Some(json!({"email": "bad", "password": "short", "status": "enabled", "groups": [], "name": ""}))).await;
    assert_eq!(s, 422);
    for f in ["email", "password", "groups", "name"] {
        assert!(v["fields"][f].is_string(), "field {f}: {v}");
    }
    let user = json!({"email": "dup@example.com", "password": USER_PASSWORD, "status": "enabled", "groups": [1], "name": "Dup"});
    assert_eq!(
        api.send("POST", "/api/v1/users", Some(user.clone()))
            .await
            .0,
        201
    );
    let mut upper = user.clone();
    upper["email"] = json!("DUP@example.com");
    let (s, v) = api.send("POST", "/api/v1/users", Some(upper)).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(api.send("GET", "/api/v1/users/999999", None).await.0, 404);
    assert_eq!(
        api.send("GET", "/api/v1/users?limit=1000", None).await.0,
        422
    );
    assert_eq!(api.send("GET", "/api/v1/users?bogus=1", None).await.0, 400);
    assert_eq!(api.send("GET", "/api/v1/nowhere", None).await.0, 404);
    // A method a path doesn't have: 405 with the JSON error and Allow.
    let r = api
        .http
        .put(t.url("/api/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET,HEAD,POST");
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    // In a PATCH, absent means unchanged and null is no value at all.
    let (s, v) = api
        .send("PATCH", "/api/v1/users/1", Some(json!({"name": null})))
        .await;
    assert_eq!(s, 422, "{v}");
    // A present query parameter holds a value of its type; empty is not absent.
    for query in ["status=", "sort=Name", "dir=", "limit=0"] {
        let (s, v) = api
            .send("GET", &format!("/api/v1/users?{query}"), None)
            .await;
        assert_eq!(s, 422, "{query}: {v}");
    }
    for query in ["from=", "to=2026-1-1", "in=", "role=Investor", "limit=30"] {
        let (s, v) = api
            .send("GET", &format!("/api/v1/clients?{query}"), None)
            .await;
        assert_eq!(s, 422, "{query}: {v}");
    }
    assert_eq!(api.send("GET", "/api/v1/events?from=", None).await.0, 422);
    // Escalation through the API is refused like through the pages.
    let g = create_group(&admin, "Creators", &["users.view", "users.create"]).await;
    create_user(
        &admin,
        "creator@example.com",
        "Cre Ator",
        &[&g.to_string()],
        false,
        false,
    )
    .await;
    disable_2fa(&admin, "creator@example.com").await;
    let creator = sign_in_fully(&t, "creator@example.com", USER_PASSWORD).await;
    let creator_api = Api::new(&t, Some(&token_for(&t, &creator).await));
    let climb = json!({"email": "climb@example.com", "password": USER_PASSWORD, "status": "enabled", "groups": [1], "name": "Climb"});
    let (s, v) = creator_api.send("POST", "/api/v1/users", Some(climb)).await;
    assert_eq!(s, 403, "{v}");
}

#[tokio::test]
async fn tokens_from_the_profile_page() {
    let t = TestApp::start("sqlite").await;
    let admin = t.admin().await;
    admin.get("/profile").await;
    let r = admin
        .post(
            "/profile/tokens",
            &[("token_name", "reporting"), ("expires_in_days", "400")],
        )
        .await;
    assert_eq!(r.status, 422, "at most a year");
    let r = admin
        .post(
            "/profile/tokens",
            &[("token_name", "reporting"), ("expires_in_days", "30")],
        )
        .await;
    assert_eq!(r.status, 200);
    let token = r
        .body
        .split("<code>")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        Api::new(&t, Some(&token))
            .send("GET", "/api/v1/me", None)
            .await
            .0,
        200
    );
    let page = admin.get("/profile").await;
    assert!(
        page.body.contains("reporting") && !page.body.contains(&token),
        "listed, secret not shown again"
    );
    let id = page
        .body
        .split("/profile/tokens/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        admin
            .post(&format!("/profile/tokens/{id}/revoke"), &[])
            .await
            .status,
        303
    );
    assert_eq!(
        Api::new(&t, Some(&token))
            .send("GET", "/api/v1/me", None)
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn masked_callers_get_masks_and_cannot_search_personal_fields() {
    let t = TestApp::start("sqlite").await;
    let admin = t.admin().await;
    let admin_api = Api::new(&t, Some(&token_for(&t, &admin).await));
    let client = json!({"first_name": "Ottilie", "last_name": "Brackenridge", "email": "ottilie.b@example.com",
        "phone": "+44 20 7946 0321", "country": "GB", "city": "York", "role": "investor", "status": "active",
        "language": "en"});
    let (s, c) = admin_api
        .send("POST", "/api/v1/clients", Some(client))
        .await;
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_i64().unwrap();
    let (_, perms) = admin_api.send("GET", "/api/v1/permissions", None).await;
    let all: Vec<Value> = perms
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].clone())
        .collect();
    let (_, g) = admin_api
        .send(
            "POST",
            "/api/v1/groups",
            Some(json!({"caption": "All", "permissions": all})),
        )
        .await;
    create_user(
        &admin,
        "masked@example.com",
        "Mas Ked",
        &[&g["id"].to_string()],
        false,
        true,
    )
    .await;
    disable_2fa(&admin, "masked@example.com").await;
    let masked = sign_in_fully(&t, "masked@example.com", USER_PASSWORD).await;
    let api = Api::new(&t, Some(&token_for(&t, &masked).await));
    let (s, v) = api
        .send("GET", &format!("/api/v1/clients/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            v["first_name"].as_str(),
            v["email"].as_str(),
            v["phone"].as_str()
        ),
        (Some("O****"), Some("o****@e****.com"), Some("+*******21"))
    );
    for path in [
        "/api/v1/clients?in=name&q=Ott",
        "/api/v1/clients?in=email&q=ottilie",
        "/api/v1/clients?sort=name",
    ] {
        let (s, v) = api.send("GET", path, None).await;
        assert_eq!(s, 403, "{path}: {v}");
        assert!(
            !v.to_string().contains("Ott"),
            "the refusal doesn't echo the search"
        );
    }
    assert_eq!(
        api.send("GET", &format!("/api/v1/clients?in=id&q={id}"), None)
            .await
            .0,
        200
    );
    // Saving what a masked caller sees never overwrites the real values.
    let (s, _) = api
        .send(
            "PATCH",
            &format!("/api/v1/clients/{id}"),
            Some(json!({"first_name": "O****", "city": "Leeds"})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, real) = admin_api
        .send("GET", &format!("/api/v1/clients/{id}"), None)
        .await;
    assert_eq!(
        (real["first_name"].as_str(), real["city"].as_str()),
        (Some("Ottilie"), Some("Leeds"))
    );
}

/// Every route × {no credentials, pre-2FA session, a user without the permission, a user with it,
/// a masked user with every permission}: the documented status for each.
#[tokio::test]
async fn every_route_for_every_kind_of_caller() {
    let t = TestApp::start("sqlite").await;
    let admin = t.admin().await;
    let admin_api = Api::new(&t, Some(&token_for(&t, &admin).await));
    let client = json!({"first_name": "Rosalind", "last_name": "Featherstonehaugh", "email": "rosalind.f@example.com",
        "phone": "+44 20 7946 0555", "country": "GB", "city": "Bath", "role": "both", "status": "active", "language": "en"});
    let (_, c) = admin_api
        .send("POST", "/api/v1/clients", Some(client))
        .await;
    let client_id = c["id"].as_i64().unwrap();
    let nothing = create_group(&admin, "Nothing", &[]).await.to_string();
    let (_, perms) = admin_api.send("GET", "/api/v1/permissions", None).await;
    let all: Vec<Value> = perms
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].clone())
        .collect();
    let (_, everything) = admin_api
        .send(
            "POST",
            "/api/v1/groups",
            Some(json!({"caption": "Everything", "permissions": all})),
        )
        .await;
    let everything = everything["id"].to_string();
    // Masked like the target, so that the masked caller covers the members of "nothing".
    create_user(
        &admin,
        "none@example.com",
        "No Perm",
        &[&nothing],
        false,
        true,
    )
    .await;
    create_user(
        &admin,
        "masked@example.com",
        "Mas Ked",
        &[&everything],
        false,
        true,
    )
    .await;
    // Masked, so that the masked caller's authority covers it: this matrix is about
    // permissions (the authority order has its own test).
    create_user(
        &admin,
        "target@example.com",
        "Tar Get",
        &[&nothing],
        false,
        true,
    )
    .await;
    create_user(
        &admin,
        "pending@example.com",
        "Pen Ding",
        &[&everything],
        false,
        false,
    )
    .await;
    for u in ["none@example.com", "masked@example.com"] {
        disable_2fa(&admin, u).await;
    }
    let target = user_id(&admin, "target@example.com").await;
    let none_api = Api::new(
        &t,
        Some(
            &token_for(
                &t,
                &sign_in_fully(&t, "none@example.com", USER_PASSWORD).await,
            )
            .await,
        ),
    );
    let masked_api = Api::new(
        &t,
        Some(
            &token_for(
                &t,
                &sign_in_fully(&t, "masked@example.com", USER_PASSWORD).await,
            )
            .await,
        ),
    );
    let pending = t.browser();
    assert_eq!(
        pending
            .sign_in("pending@example.com", USER_PASSWORD)
            .await
            .location
            .as_deref(),
        Some("/login/code")
    );

    let user_body = |email: &str| json!({"email": email, "password": USER_PASSWORD, "status": "enabled", "groups": [nothing.parse::<i64>().unwrap()], "name": "New", "mask_data": true});
    let client_body = |email: &str| {
        json!({"first_name": "Ann", "last_name": "Lee", "email": email, "phone": "+44 20 7946 0999", "country": "GB",
            "city": "Hull", "role": "investor", "status": "active", "language": "en"})
    };
    /// method, path, body, status without the permission, status with it, status for the masked user
    type Route<'a> = (&'a str, String, Option<Value>, u16, u16, u16);
    let routes: Vec<Route> = vec![
        ("GET", "/api/v1/me".into(), None, 200, 200, 200),
        ("GET", "/api/v1/me/tokens".into(), None, 200, 200, 200),
        (
            "POST",
            "/api/v1/me/tokens".into(),
            Some(json!({"name": "x"})),
            403,
            403,
            403,
        ),
        (
            "DELETE",
            "/api/v1/me/tokens/999999".into(),
            None,
            404,
            404,
            404,
        ),
        ("GET", "/api/v1/permissions".into(), None, 200, 200, 200),
        ("GET", "/api/v1/users".into(), None, 403, 200, 200),
        (
            "POST",
            "/api/v1/users".into(),
            Some(user_body("a1@example.com")),
            403,
            201,
            201,
        ),
        (
            "GET",
            format!("/api/v1/users/{target}"),
            None,
            403,
            200,
            200,
        ),
        (
            "PATCH",
            format!("/api/v1/users/{target}"),
            Some(json!({"name": "Renamed"})),
            403,
            200,
            200,
        ),
        (
            "POST",
            format!("/api/v1/users/{target}/two-factor/disable"),
            Some(json!({"password": NEW_PASSWORD})),
            403,
            200,
            200,
        ),
        (
            "POST",
            format!("/api/v1/users/{target}/two-factor/enable"),
            None,
            403,
            200,
            200,
        ),
        (
            "POST",
            format!("/api/v1/users/{target}/unlock"),
            None,
            403,
            200,
            200,
        ),
        (
            "POST",
            format!("/api/v1/users/{target}/sign-out"),
            None,
            403,
            204,
            204,
        ),
        ("GET", "/api/v1/groups".into(), None, 403, 200, 200),
        (
            "POST",
            "/api/v1/groups".into(),
            Some(json!({"caption": "G1", "permissions": []})),
            403,
            201,
            201,
        ),
        ("GET", "/api/v1/groups/export".into(), None, 403, 200, 200),
        (
            "POST",
            "/api/v1/groups/import".into(),
            Some(json!({"version": 1, "groups": []})),
            403,
            200,
            200,
        ),
        (
            "GET",
            format!("/api/v1/groups/{nothing}"),
            None,
            403,
            200,
            200,
        ),
        (
            "PUT",
            format!("/api/v1/groups/{nothing}"),
            Some(json!({"caption": "Nothing", "permissions": []})),
            403,
            200,
            200,
        ),
        ("GET", "/api/v1/clients".into(), None, 403, 200, 200),
        (
            "GET",
            "/api/v1/clients?in=name&q=Ros".into(),
            None,
            403,
            200,
            403,
        ),
        (
            "POST",
            "/api/v1/clients".into(),
            Some(client_body("c1@example.com")),
            403,
            201,
            403,
        ),
        ("GET", "/api/v1/clients/export".into(), None, 403, 200, 200),
        (
            "GET",
            format!("/api/v1/clients/{client_id}"),
            None,
            403,
            200,
            200,
        ),
        (
            "PATCH",
            format!("/api/v1/clients/{client_id}"),
            Some(json!({"city": "Bristol"})),
            403,
            200,
            200,
        ),
        (
            "POST",
            format!("/api/v1/clients/{client_id}/block"),
            None,
            403,
            200,
            200,
        ),
        ("GET", "/api/v1/events".into(), None, 403, 200, 200),
        ("GET", "/api/v1/events/export".into(), None, 403, 200, 200),
        // The masked caller deletes it first; then it is gone for the administrator.
        (
            "DELETE",
            format!("/api/v1/groups/{nothing}"),
            None,
            403,
            404,
            204,
        ),
    ];
    let anonymous = Api::new(&t, None);
    for (i, (method, path, body, without, with, masked)) in routes.into_iter().enumerate() {
        // Unique values per caller, so creates don't collide.
        let vary = |b: &Option<Value>, who: &str| {
            b.as_ref().map(|v| {
                let mut s = v
                    .to_string()
                    .replace("a1@", &format!("a1{who}@"))
                    .replace("c1@", &format!("c1{who}@"));
                if who == "a" {
                    s = s.replace(NEW_PASSWORD, testkit::spawn::ADMIN_PASSWORD);
                }
                serde_json::from_str::<Value>(&s.replace("\"G1\"", &format!("\"G1{who}\"")))
                    .unwrap()
            })
        };
        assert_eq!(
            anonymous.send(method, &path, body.clone()).await.0,
            401,
            "anonymous {method} {path}"
        );
        let r = pending
            .client
            .request(method.parse().unwrap(), t.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "pre-2FA {method} {path}");
        let (s, v) = none_api.send(method, &path, vary(&body, "n")).await;
        assert_eq!(s, without, "#{i} without permission {method} {path}: {v}");
        let (s, v) = masked_api.send(method, &path, vary(&body, "m")).await;
        assert_eq!(s, masked, "#{i} masked {method} {path}: {v}");
        assert!(
            !v.to_string().contains("Featherstonehaugh") && !v.to_string().contains("rosalind.f"),
            "{path}: {v}"
        );
        let (s, v) = admin_api.send(method, &path, vary(&body, "a")).await;
        assert_eq!(s, with, "#{i} with permission {method} {path}: {v}");
    }
}

#[tokio::test]
async fn refusals_and_failed_sign_ins_leave_the_token_cache_alone() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let group = create_group(&admin, "Clients only", &["clients.view"])
            .await
            .to_string();
        create_user(&admin, "weak@example.com", "Weak", &[&group], false, false).await;
        let weak = sign_in_fully(&t, "weak@example.com", USER_PASSWORD).await;
        let weak_api = Api::new(&t, Some(&token_for(&t, &weak).await));
        let api = Api::new(&t, Some(&token_for(&t, &admin).await));
        assert_eq!(api.send("GET", "/api/v1/me", None).await.0, 200);
        let clears = t.app.token_cache_clears();
        let refusals = events_with(&t, "Action refused").await;
        // Refused actions, through a page and through the API.
        assert_eq!(weak.get("/users").await.status, 403);
        assert_eq!(weak_api.send("GET", "/api/v1/users", None).await.0, 403);
        // Failed sign-ins: a wrong password, an unknown email.
        for (email, password) in [
            ("weak@example.com", "not the password"),
            ("nobody.at.all@example.com", "whatever"),
        ] {
            assert_eq!(t.browser().sign_in(email, password).await.status, 401);
        }
        assert_eq!(events_with(&t, "Action refused").await, refusals + 2);
        assert_eq!(events_with(&t, "Sign-in failed").await, 2);
        assert_eq!(
            t.app.token_cache_clears(),
            clears,
            "{backend}: none of these can change what a token resolves to"
        );
        assert_eq!(api.send("GET", "/api/v1/me", None).await.0, 200);
        // A change to a user does empty it.
        disable_user(&admin, "weak@example.com").await;
        assert!(t.app.token_cache_clears() > clears, "{backend}");
        assert_eq!(weak_api.send("GET", "/api/v1/me", None).await.0, 401);
    }
}

/// The review's hole through the API: a manager with Mask data on can't create an unmasked user,
/// switch Mask data off (`PATCH {"mask_data": false}`), touch an unmasked colleague's account,
/// or change a group stronger than themself; an administrator can't disable their own 2FA.
#[tokio::test]
async fn every_escalation_path_is_refused_through_the_api() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let managers = create_group(
            &admin,
            "Managers",
            &[
                "users.view",
                "users.create",
                "users.update",
                "groups.view",
                "groups.update",
                "groups.delete",
                "clients.view",
            ],
        )
        .await;
        let viewers = create_group(&admin, "Viewers", &["clients.view"]).await;
        let exporters =
            create_group(&admin, "Exporters", &["clients.view", "clients.export"]).await;
        create_user(
            &admin,
            "colleague@example.com",
            "Open Colleague",
            &[&viewers.to_string()],
            false,
            false,
        )
        .await;
        let colleague = user_id(&admin, "colleague@example.com").await;
        let m = staff_member(
            &t,
            &admin,
            "masked@example.com",
            "Masked Manager",
            &[&managers.to_string()],
            true,
        )
        .await;
        let me = user_id(&admin, "masked@example.com").await;
        let api = Api::new(&t, Some(&token_for(&t, &m).await));
        let before = events_with(&t, "Action refused").await;

        let new_user = |email: &str, mask: bool| {
            json!({"email": email, "password": USER_PASSWORD, "status": "enabled",
                   "groups": [viewers], "name": "New Person", "mask_data": mask})
        };
        let (s, body) = api
            .send(
                "POST",
                "/api/v1/users",
                Some(new_user("open@example.com", false)),
            )
            .await;
        assert_eq!(s, 403, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("unmasked client personal data"),
            "{body}"
        );
        let (s, body) = api
            .send(
                "POST",
                "/api/v1/users",
                Some(new_user("shut@example.com", true)),
            )
            .await;
        assert_eq!(s, 201, "{body}");
        let shut = body["id"].as_i64().unwrap();
        let (s, _) = api
            .send(
                "PATCH",
                &format!("/api/v1/users/{shut}"),
                Some(json!({"mask_data": false})),
            )
            .await;
        assert_eq!(s, 403, "switching Mask data off for someone");
        let (s, _) = api
            .send(
                "PATCH",
                &format!("/api/v1/users/{me}"),
                Some(json!({"mask_data": false})),
            )
            .await;
        assert_eq!(s, 403, "switching one's own Mask data off");
        for (method, path, body) in [
            (
                "PATCH",
                format!("/api/v1/users/{colleague}"),
                Some(json!({"name": "Renamed"})),
            ),
            (
                "PATCH",
                format!("/api/v1/users/{colleague}"),
                Some(json!({"password": "Hijacked-Password-Value-1"})),
            ),
            ("POST", format!("/api/v1/users/{colleague}/sign-out"), None),
            ("POST", format!("/api/v1/users/{colleague}/unlock"), None),
            (
                "POST",
                format!("/api/v1/users/{colleague}/two-factor/enable"),
                None,
            ),
            (
                "POST",
                format!("/api/v1/users/{colleague}/two-factor/disable"),
                Some(json!({"password": NEW_PASSWORD})),
            ),
            (
                "PUT",
                format!("/api/v1/groups/{exporters}"),
                Some(json!({"caption": "Exporters", "permissions": ["clients.view"]})),
            ),
            ("DELETE", format!("/api/v1/groups/{exporters}"), None),
        ] {
            let (s, body) = api.send(method, &path, body).await;
            assert_eq!(s, 403, "{method} {path}: {body}");
        }
        assert!(events_with(&t, "Action refused").await >= before + 11);
        let (_, c) = api
            .send("GET", &format!("/api/v1/users/{colleague}"), None)
            .await;
        assert_eq!(c["name"], "Open Colleague");
        assert_eq!(c["mask_data"], false);
        let (_, g) = api
            .send("GET", &format!("/api/v1/groups/{exporters}"), None)
            .await;
        assert_eq!(g["permissions"].as_array().unwrap().len(), 2);

        // The administrator's own 2FA, through the API.
        let admin_api = Api::new(&t, Some(&token_for(&t, &admin).await));
        let root = user_id(&admin, "root@example.com").await;
        let (s, body) = admin_api
            .send(
                "POST",
                &format!("/api/v1/users/{root}/two-factor/disable"),
                Some(json!({"password": testkit::spawn::ADMIN_PASSWORD})),
            )
            .await;
        assert_eq!(s, 403, "{body}");
        // A duplicate is a 409 from its type, with the field named.
        let (s, body) = admin_api
            .send(
                "POST",
                "/api/v1/users",
                Some(new_user("colleague@example.com", true)),
            )
            .await;
        assert_eq!(s, 409, "{body}");
        assert!(body["fields"]["email"].is_string(), "{body}");
    }
}
