//! Edits made at the same moment, on both databases: no lost update (each field keeps its last
//! value, or the late writer is told with a 409/412), no false history (each event's "before" is
//! the previous event's "after"), retries with an Idempotency-Key carried out once across
//! instances, and no lock held across an SMTP conversation. PostgreSQL only: a network path to
//! the database that goes silent answers 503 in time and recovers (a black-holing proxy).

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::pages::*;
use testkit::{db::backends, SmtpMode, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// A JSON client with a bearer token (cheap to clone into concurrent tasks).
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn etag(&self) -> String {
        self.headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

impl Api {
    async fn new(t: &TestApp) -> Self {
        let admin = t.admin().await;
        Self::with_token(t, token_for(t, &admin).await)
    }

    fn with_token(t: &TestApp, token: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: t.url(""),
            token,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }
}

fn client_json(n: &str) -> Value {
    json!({"first_name": "Ann", "last_name": format!("Lee {n}"), "email": format!("ann.{n}@example.com"),
        "phone": "+44 20 7946 0000", "country": "GB", "city": "York", "role": "investor", "status": "active",
        "language": "en"})
}

async fn new_client(api: &Api, n: &str) -> i64 {
    let r = api
        .send("POST", "/api/v1/clients", &[], Some(client_json(n)))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

/// One event: its name and its changes as (field, before, after).
type Entry = (String, Vec<(String, String, String)>);

/// The events of one target in the order they were written.
async fn history_of(t: &TestApp, kind: &str, id: i64) -> Vec<Entry> {
    let store = store::connect(&t.db_url).await.unwrap();
    let mut events = store
        .list_events(
            &store::EventVisibility {
                viewer_id: 0,
                client_scope: domain::ClientScope::All,
            },
            &store::EventQuery {
                target_type: Some(kind.into()),
                target_id: Some(id),
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    events.reverse();
    events
        .into_iter()
        .map(|e| {
            let changes: Vec<Value> = serde_json::from_str(&e.details).unwrap();
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            let changes = changes
                .iter()
                .map(|c| (s(&c["field"]), s(&c["before"]), s(&c["after"])))
                .collect();
            (e.event, changes)
        })
        .collect()
}

/// Every event's "before" is what the events before it left: the history tells the truth.
/// Returns the values the history ends with.
fn assert_history_chains(history: &[Entry], what: &str) -> HashMap<String, String> {
    let mut now: HashMap<String, String> = HashMap::new();
    for (i, (name, changes)) in history.iter().enumerate() {
        for (field, before, after) in changes {
            let held = now.get(field).cloned().unwrap_or_default();
            assert_eq!(
                &held, before,
                "{what}: event {i} ({name}) says {field} was {before:?}, but the events before it left {held:?}"
            );
            now.insert(field.clone(), after.clone());
        }
    }
    now
}

#[tokio::test]
async fn concurrent_patches_of_different_fields_all_stay_and_the_history_chains() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let api = Api::new(&t).await;
        let id = new_client(&api, "0").await;
        let path = format!("/api/v1/clients/{id}");
        // Six writers, each changing its own field three times, all at once: 18 changes.
        let fields = [
            ("first_name", "first name"),
            ("last_name", "last name"),
            ("city", "city"),
            ("phone", "phone"),
            ("email", "email"),
            ("language", "language"),
        ];
        let value = |field: &str, round: usize| match field {
            "phone" => format!("+44 20 7946 10{round}{}", field.len()),
            "email" => format!("ann.{round}.new@example.com"),
            "language" => ["de", "fr", "es"][round].to_string(),
            _ => format!("{field}-{round}"),
        };
        let mut writers = JoinSet::new();
        for (field, _) in fields {
            let (api, path) = (api.clone(), path.clone());
            writers.spawn(async move {
                for round in 0..3 {
                    let body = json!({ field: value(field, round) });
                    let r = api.send("PATCH", &path, &[], Some(body)).await;
                    assert_eq!(r.status, 200, "{field} round {round}: {}", r.body);
                }
            });
        }
        while let Some(done) = writers.join_next().await {
            done.unwrap();
        }
        let got = api.send("GET", &path, &[], None).await.body;
        assert_eq!(got["first_name"], "first_name-2", "{backend}: {got}");
        assert_eq!(got["last_name"], "last_name-2", "{backend}: {got}");
        assert_eq!(got["city"], "city-2", "{backend}: {got}");
        assert_eq!(got["email"], "ann.2.new@example.com", "{backend}: {got}");
        assert_eq!(got["language"], "es", "{backend}: {got}");
        assert!(
            got["phone"].as_str().unwrap().starts_with("+44207946102"),
            "{backend}: {got}"
        );
        let history = history_of(&t, "client", id).await;
        assert_eq!(history.len(), 19, "{backend}: one creation and 18 changes");
        let end = assert_history_chains(&history, backend);
        assert_eq!(end["city"], "city-2");
        // Twenty writers of one field at once: every event's "before" is the value the one
        // before it wrote.
        let mut writers = JoinSet::new();
        for n in 0..20 {
            let (api, path) = (api.clone(), path.clone());
            writers.spawn(async move {
                let r = api
                    .send(
                        "PATCH",
                        &path,
                        &[],
                        Some(json!({"city": format!("City {n}")})),
                    )
                    .await;
                assert_eq!(r.status, 200, "{}", r.body);
            });
        }
        while let Some(done) = writers.join_next().await {
            done.unwrap();
        }
        let history = history_of(&t, "client", id).await;
        assert_eq!(history.len(), 39, "{backend}: every change is an event");
        let end = assert_history_chains(&history, backend);
        let got = api.send("GET", &path, &[], None).await.body;
        assert_eq!(got["city"].as_str(), end.get("city").map(String::as_str));
        let store::ChainReport::Ok { .. } = t.app.verify_audit_chain().await.unwrap() else {
            panic!("{backend}: chain broken")
        };
    }
}

#[tokio::test]
async fn concurrent_patches_of_a_user_keep_every_field() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(&admin, "jane@example.com", "Jane Doe", &["1"], false, false).await;
        let id = user_id(&admin, "jane@example.com").await;
        let group = create_group(&admin, "Support", &["users.view"]).await;
        let api = Api::with_token(&t, token_for(&t, &admin).await);
        let path = format!("/api/v1/users/{id}");
        let changes = [
            json!({"name": "Jane Roe"}),
            json!({"mask_data": true}),
            json!({"status": "disabled"}),
            json!({"groups": [1, group]}),
            json!({"email": "jane.roe@example.com"}),
        ];
        let mut writers = JoinSet::new();
        for body in changes {
            let (api, path) = (api.clone(), path.clone());
            writers.spawn(async move {
                let r = api.send("PATCH", &path, &[], Some(body.clone())).await;
                assert_eq!(r.status, 200, "{body}: {}", r.body);
            });
        }
        while let Some(done) = writers.join_next().await {
            done.unwrap();
        }
        let got = api.send("GET", &path, &[], None).await.body;
        assert_eq!(got["name"], "Jane Roe", "{backend}: {got}");
        assert_eq!(got["mask_data"], true, "{backend}: {got}");
        assert_eq!(got["status"], "disabled", "{backend}: {got}");
        assert_eq!(got["email"], "jane.roe@example.com", "{backend}: {got}");
        assert_eq!(
            got["groups"].as_array().unwrap().len(),
            2,
            "{backend}: {got}"
        );
        let history = history_of(&t, "user", id).await;
        assert_eq!(history.len(), 1 + 5, "{backend}: created, five changes");
        assert_history_chains(&history, backend);
    }
}

#[tokio::test]
async fn if_match_on_an_older_version_answers_412_saying_who_changed_it_and_when() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let api = Api::new(&t).await;
        let id = new_client(&api, "1").await;
        let path = format!("/api/v1/clients/{id}");
        let first = api.send("GET", &path, &[], None).await;
        let v1 = first.etag();
        assert_eq!(v1, "\"1\"", "{backend}");
        let r = api
            .send(
                "PATCH",
                &path,
                &[("if-match", &v1)],
                Some(json!({"city": "Leeds"})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v2 = r.etag();
        assert_eq!(v2, "\"2\"");
        // Another writer's copy is version 1: refused, nothing changed, told who and when.
        let r = api
            .send(
                "PATCH",
                &path,
                &[("if-match", &v1)],
                Some(json!({"city": "Hull"})),
            )
            .await;
        assert_eq!(r.status, 412, "{backend}: {}", r.body);
        let message = r.body["error"].as_str().unwrap();
        assert!(message.contains(&t.admin_email), "{message}");
        assert!(message.contains(" at 20"), "a time: {message}");
        assert_eq!(
            api.send("GET", &path, &[], None).await.body["city"],
            "Leeds"
        );
        let r = api
            .send(
                "PATCH",
                &path,
                &[("if-match", "\"x\"")],
                Some(json!({"city": "Hull"})),
            )
            .await;
        assert_eq!(r.status, 400, "not an ETag of this API: {}", r.body);
        let r = api
            .send(
                "PATCH",
                &path,
                &[("if-match", "*")],
                Some(json!({"city": "Hull"})),
            )
            .await;
        assert_eq!(r.status, 200);
        // Two writers with the same ETag at once: one wins, the other gets 412.
        let v3 = r.etag();
        let mut writers = JoinSet::new();
        for city in ["Bath", "Ely"] {
            let (api, path, tag) = (api.clone(), path.clone(), v3.clone());
            writers.spawn(async move {
                api.send(
                    "PATCH",
                    &path,
                    &[("if-match", &tag)],
                    Some(json!({"city": city})),
                )
                .await
                .status
            });
        }
        let mut statuses = Vec::new();
        while let Some(s) = writers.join_next().await {
            statuses.push(s.unwrap());
        }
        statuses.sort_unstable();
        assert_eq!(statuses, vec![200, 412], "{backend}");

        // Users and groups the same way.
        let admin = t.admin().await;
        let gid = create_group(&admin, "Desk", &["users.view"]).await;
        let gpath = format!("/api/v1/groups/{gid}");
        let g = api.send("GET", &gpath, &[], None).await;
        let gtag = g.etag();
        let put = |caption: &str| json!({"caption": caption, "permissions": ["users.view"]});
        let r = api
            .send("PUT", &gpath, &[("if-match", &gtag)], Some(put("Desk 2")))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = api
            .send("PUT", &gpath, &[("if-match", &gtag)], Some(put("Desk 3")))
            .await;
        assert_eq!(r.status, 412, "{backend}: {}", r.body);
        create_user(&admin, "ivy@example.com", "Ivy Poe", &["1"], false, false).await;
        let uid = user_id(&admin, "ivy@example.com").await;
        let upath = format!("/api/v1/users/{uid}");
        let utag = api.send("GET", &upath, &[], None).await.etag();
        let r = api
            .send(
                "PATCH",
                &upath,
                &[("if-match", &utag)],
                Some(json!({"name": "Ivy Roe"})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = api
            .send(
                "PATCH",
                &upath,
                &[("if-match", &utag)],
                Some(json!({"name": "Ivy Loe"})),
            )
            .await;
        assert_eq!(r.status, 412, "{backend}: {}", r.body);
    }
}

/// The value of a form's hidden `version` field.
fn version_in(body: &str) -> String {
    let key = "name=\"version\" value=\"";
    let at = body.find(key).expect("a version field") + key.len();
    body[at..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn concurrent_form_saves_keep_one_and_bring_the_others_back_with_both_values() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let api = Api::new(&t).await;
        let id = new_client(&api, "2").await;
        let edit = format!("/clients/{id}/edit");
        // Four people open the form at the same version, each changes another field.
        let changes = [
            ("first_name", "Anne"),
            ("city", "Leeds"),
            ("country", "DE"),
            ("last_name", "Lea"),
        ];
        let mut people = Vec::new();
        for _ in changes {
            let b = t.admin().await;
            let page = b.get(&edit).await;
            assert_eq!(version_in(&page.body), "1");
            people.push(b);
        }
        let form = |field: &str, value: &str| {
            let mut f = vec![
                ("version", "1".to_string()),
                ("first_name", "Ann".to_string()),
                ("last_name", "Lee 2".to_string()),
                ("email", "ann.2@example.com".to_string()),
                ("phone", "+44 20 7946 0000".to_string()),
                ("country", "GB".to_string()),
                ("city", "York".to_string()),
                ("role", "investor".to_string()),
                ("status", "active".to_string()),
                ("language", "en".to_string()),
            ];
            for (k, v) in f.iter_mut() {
                if *k == field {
                    *v = value.to_string();
                }
            }
            f
        };
        let saves = people.iter().zip(changes).map(|(b, (field, value))| {
            let fields = form(field, value);
            let edit = edit.clone();
            async move {
                let pairs: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                (field, value, b.post(&edit, &pairs).await)
            }
        });
        let results = futures_join_all(saves).await;
        let saved: Vec<_> = results.iter().filter(|(_, _, p)| p.status == 303).collect();
        let refused: Vec<_> = results.iter().filter(|(_, _, p)| p.status == 409).collect();
        assert_eq!(saved.len(), 1, "{backend}: exactly one save wins");
        assert_eq!(refused.len(), 3, "{backend}: the others are told");
        let (won_field, won_value, _) = saved[0];
        let got = api
            .send("GET", &format!("/api/v1/clients/{id}"), &[], None)
            .await
            .body;
        assert_eq!(got[won_field], *won_value, "{backend}: {got}");
        for (field, value, page) in &refused {
            assert!(
                page.body.contains("was changed by root@example.com at "),
                "{backend}: who and when: {}",
                page.body
            );
            // Theirs beside the field they changed, yours in the fields.
            assert!(
                page.body.contains(&format!("id=\"{won_field}-theirs\"")),
                "{backend}: the value saved meanwhile"
            );
            assert!(page.body.contains(&format!("value=\"{value}\"")) || *field == "country");
            assert_eq!(
                version_in(&page.body),
                "2",
                "the form now carries the current version"
            );
        }
        // Saving the form that came back (now at version 2) goes through.
        let (field, value, _) = refused[0];
        let b = &people[results.iter().position(|(f, _, _)| f == field).unwrap()];
        let mut fields = form(field, value);
        fields[0].1 = "2".into();
        fields.retain(|(k, _)| k != won_field);
        fields.push((won_field, won_value.to_string()));
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = b.post(&edit, &pairs).await;
        assert_eq!(r.status, 303, "{backend}: {}", r.body);
        let got = api
            .send("GET", &format!("/api/v1/clients/{id}"), &[], None)
            .await
            .body;
        assert_eq!(got[field], *value);
        assert_eq!(got[won_field], *won_value, "both kept");
        assert_history_chains(&history_of(&t, "client", id).await, backend);

        // The user and group forms carry their version too.
        let admin = t.admin().await;
        create_user(&admin, "kim@example.com", "Kim Lo", &["1"], false, false).await;
        let uid = user_id(&admin, "kim@example.com").await;
        let page = admin.get(&format!("/users/{uid}")).await;
        let v = version_in(&page.body);
        let other = t.admin().await;
        assert_eq!(
            save_user(&other, uid, &[("name", "Kim Other")])
                .await
                .status,
            303
        );
        let r = save_user(
            &admin,
            uid,
            &[("version", v.as_str()), ("name", "Kim Mine")],
        )
        .await;
        assert_eq!(r.status, 409, "{backend}: {}", r.body);
        assert!(r.body.contains("id=\"name-theirs\""), "{}", r.body);
        assert!(r.body.contains("Kim Other") && r.body.contains("Kim Mine"));
        let gid = create_group(&admin, "Desk", &["users.view"]).await;
        let page = admin.get(&format!("/groups/{gid}")).await;
        let v = version_in(&page.body);
        let r = other
            .post(
                &format!("/groups/{gid}"),
                &[("caption", "Desk A"), ("perm", "users.view")],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let r = admin
            .post(
                &format!("/groups/{gid}"),
                &[
                    ("version", v.as_str()),
                    ("caption", "Desk B"),
                    ("perm", "users.view"),
                ],
            )
            .await;
        assert_eq!(r.status, 409, "{backend}: {}", r.body);
        assert!(r.body.contains("id=\"caption-theirs\""), "{}", r.body);
    }
}

/// Runs the futures concurrently and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut pending: Vec<_> = futures.into_iter().enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => {
                out[*i] = Some(v);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn an_idempotent_retry_on_another_instance_gets_the_first_answer_and_changes_nothing() {
    for backend in backends() {
        let a = TestApp::start(backend).await;
        let b = a.another_instance().await;
        let on_a = Api::new(&a).await;
        let on_b = Api::with_token(&b, on_a.token.clone());
        let key = [("idempotency-key", "4f1c-retry-1")];
        let first = on_a
            .send("POST", "/api/v1/clients", &key, Some(client_json("9")))
            .await;
        assert_eq!(first.status, 201, "{}", first.body);
        let retry = on_b
            .send("POST", "/api/v1/clients", &key, Some(client_json("9")))
            .await;
        assert_eq!(retry.status, 201, "{backend}: {}", retry.body);
        assert_eq!(retry.body, first.body, "{backend}: the first answer");
        assert_eq!(retry.headers.get("idempotent-replayed").unwrap(), "true");
        assert_eq!(
            events_with(&a, "Client created").await,
            1,
            "{backend}: one change"
        );
        // The same key with another body is refused, and says why.
        let other = on_b
            .send("POST", "/api/v1/clients", &key, Some(client_json("10")))
            .await;
        assert_eq!(other.status, 422, "{backend}: {}", other.body);
        assert!(other.body["error"]
            .as_str()
            .unwrap()
            .contains("different request"));
        // A refused request (a duplicate email) is answered the same way again, still once.
        let key2 = [("idempotency-key", "4f1c-retry-2")];
        let dup = on_a
            .send("POST", "/api/v1/clients", &key2, Some(client_json("9")))
            .await;
        assert_eq!(dup.status, 409);
        let again = on_b
            .send("POST", "/api/v1/clients", &key2, Some(client_json("9")))
            .await;
        assert_eq!((again.status, again.body), (409, dup.body));
        // Another caller's same key is another key.
        let on_b2 = Api::new(&b).await;
        let mine = on_b2
            .send("POST", "/api/v1/clients", &key, Some(client_json("11")))
            .await;
        assert_eq!(mine.status, 201, "{}", mine.body);
        assert!(mine.headers.get("idempotent-replayed").is_none());
        // Without a key, two posts are two requests.
        assert_eq!(
            on_a.send("POST", "/api/v1/clients", &[], Some(client_json("12")))
                .await
                .status,
            201
        );
        assert_eq!(events_with(&a, "Client created").await, 3, "{backend}");
    }
}

#[tokio::test]
async fn a_create_waiting_on_a_hanging_smtp_server_blocks_no_create_on_another_instance() {
    for backend in backends() {
        let a = TestApp::start(backend).await;
        let b = a.another_instance().await;
        let admin_a = a.admin().await;
        let api_b = Api::new(&b).await;
        a.smtp().set_mode(SmtpMode::Hang);
        let slow = async {
            let started = Instant::now();
            let r = create_user_with(
                &admin_a,
                "waiting@example.com",
                "Wai Ting",
                USER_PASSWORD,
                &["1"],
                true,
                false,
            )
            .await;
            (r, started.elapsed())
        };
        let meanwhile = async {
            // Let the slow create reach the SMTP server first.
            tokio::time::sleep(Duration::from_millis(500)).await;
            // The reserved email is taken meanwhile, for everyone.
            let body = json!({"email": "Waiting@example.com", "password": USER_PASSWORD,
                "status": "enabled", "groups": [1], "name": "Same Email"});
            let r = api_b.send("POST", "/api/v1/users", &[], Some(body)).await;
            assert_eq!(r.status, 409, "{}", r.body);
            let mut took = Vec::new();
            for n in 0..3 {
                let body = json!({"email": format!("quick{n}@example.com"), "password": USER_PASSWORD,
                    "status": "enabled", "groups": [1], "name": "Quick Create"});
                let t = Instant::now();
                let r = api_b.send("POST", "/api/v1/users", &[], Some(body)).await;
                took.push(t.elapsed());
                assert_eq!(r.status, 201, "{}", r.body);
            }
            took
        };
        let ((slow, slow_took), took) = tokio::join!(slow, meanwhile);
        let fastest = took.iter().min().unwrap();
        assert!(
            *fastest < Duration::from_millis(200),
            "{backend}: a create on the other instance took {took:?} while one waited on SMTP"
        );
        assert!(
            slow_took >= Duration::from_secs(2),
            "{backend}: it did wait"
        );
        assert_eq!(slow.status, 422, "{backend}: {}", slow.body);
        assert!(slow.body.contains("so the user was not created"));
        assert_eq!(
            user_count(&a).await,
            4,
            "{backend}: the three quick ones and root"
        );
        // The failed create released the email: it can be created now.
        a.smtp().set_mode(SmtpMode::Accept);
        create_user(
            &admin_a,
            "waiting@example.com",
            "Wai Ting",
            &["1"],
            true,
            false,
        )
        .await;
        assert_eq!(user_count(&a).await, 5);
    }
}

/// The status a request got, and how long it took.
async fn timed(request: impl std::future::Future<Output = u16>) -> (u16, Duration) {
    let started = Instant::now();
    (request.await, started.elapsed())
}

/// A TCP proxy to PostgreSQL that can black-hole the path: while `silent`, nothing is forwarded
/// either way and nothing is closed (as when a network drops packets without a reset).
struct BlackHole {
    port: u16,
    silent: Arc<AtomicBool>,
}

impl BlackHole {
    async fn to(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = Arc::new(AtomicBool::new(false));
        let flag = silent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (flag, upstream) = (flag.clone(), upstream.clone());
                tokio::spawn(async move {
                    // A connection opened during the silence hears nothing until it ends.
                    while flag.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pump(cr, sw, flag.clone()));
                    tokio::spawn(pump(sr, cw, flag));
                });
            }
        });
        Self { port, silent }
    }

    fn silence(&self, on: bool) {
        self.silent.store(on, Ordering::SeqCst);
    }
}

/// Copies `from` to `to`, holding what it read while the path is silent.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silent: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while silent.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while silent.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set BACKOFFICE_TEST_POSTGRES_URL and run with --ignored"]
async fn a_silent_network_to_postgresql_answers_503_in_time_and_recovers() {
    testkit::db::require_postgres();
    let direct = testkit::db::fresh("postgres").await;
    let (head, db) = direct.rsplit_once('/').unwrap();
    let upstream = head
        .rsplit_once('@')
        .map_or(head, |(_, hp)| hp)
        .trim_start_matches("postgres://")
        .to_string();
    let upstream = if upstream.contains(':') {
        upstream
    } else {
        format!("{upstream}:5432")
    };
    let proxy = BlackHole::to(upstream.clone()).await;
    let via_proxy = direct.replacen(&upstream, &format!("127.0.0.1:{}", proxy.port), 1);
    assert!(
        via_proxy.ends_with(db) && via_proxy != direct,
        "{via_proxy}"
    );
    let t = TestApp::start_on(via_proxy, testkit::spawn::Options::default()).await;
    let api = Api::new(&t).await;
    let page = t.admin().await;
    assert_eq!(
        api.send("GET", "/api/v1/clients", &[], None).await.status,
        200
    );
    let http = reqwest::Client::new();
    let ready = || async {
        let started = Instant::now();
        let s = http
            .get(t.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        (s, started.elapsed())
    };
    assert_eq!(ready().await.0, 200);

    proxy.silence(true);
    let key = [("idempotency-key", "write-during-silence")];
    let (readyz, list, write, html) = tokio::join!(
        ready(),
        timed(async { api.send("GET", "/api/v1/clients", &[], None).await.status }),
        timed(async {
            api.send("POST", "/api/v1/clients", &key, Some(client_json("bh")))
                .await
                .status
        }),
        timed(async { page.get("/clients").await.status }),
    );
    assert_eq!(readyz.0, 503, "readyz");
    assert!(
        readyz.1 < Duration::from_secs(2),
        "readyz took {:?}",
        readyz.1
    );
    for (what, (status, took)) in [("API read", list), ("API write", write), ("page", html)] {
        assert_eq!(status, 503, "{what}");
        assert!(took < Duration::from_secs(5), "{what} took {took:?}");
    }
    // Still silent: new requests too.
    let (status, took) =
        timed(async { api.send("GET", "/api/v1/users", &[], None).await.status }).await;
    assert_eq!(status, 503);
    assert!(took < Duration::from_secs(5), "took {took:?}");

    proxy.silence(false);
    let back = Instant::now();
    loop {
        let r = api.send("GET", "/api/v1/clients", &[], None).await.status;
        if r == 200 && ready().await.0 == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "the pool did not recover: {r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = api
        .send("POST", "/api/v1/clients", &[], Some(client_json("after")))
        .await;
    assert_eq!(r.status, 201, "writes work again: {}", r.body);
    // The write that got a 503 is retried with its key: carried out once, then replayed.
    let retried = loop {
        let r = api
            .send("POST", "/api/v1/clients", &key, Some(client_json("bh")))
            .await;
        if r.status != 409 {
            break r;
        }
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "the key stayed taken"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(retried.status, 201, "{}", retried.body);
    let again = api
        .send("POST", "/api/v1/clients", &key, Some(client_json("bh")))
        .await;
    assert_eq!((again.status, &again.body), (201, &retried.body));
    assert_eq!(events_with(&t, "ann.bh@example.com").await, 1);
}

#[tokio::test]
async fn tags_and_bulk_changes_go_through_the_same_versions() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let api = Api::with_token(&t, token_for(&t, &admin).await);
        let tag = api
            .send("POST", "/api/v1/tags", &[], Some(json!({"caption": "VIP"})))
            .await;
        assert_eq!(tag.status, 201, "{}", tag.body);
        let vip = tag.body["id"].as_i64().unwrap();
        // Renames at once: each event's "before" is the caption the one before it left.
        let mut renames = JoinSet::new();
        for n in 0..5 {
            let api = api.clone();
            renames.spawn(async move {
                let body = json!({"caption": format!("VIP {n}")});
                let r = api
                    .send("PUT", &format!("/api/v1/tags/{vip}"), &[], Some(body))
                    .await;
                assert_eq!(r.status, 200, "{}", r.body);
            });
        }
        while let Some(done) = renames.join_next().await {
            done.unwrap();
        }
        let history = history_of(&t, "tag", vip).await;
        assert_eq!(history.len(), 6, "{backend}: created and five renames");
        assert_history_chains(&history, backend);
        let r = api
            .send(
                "PUT",
                &format!("/api/v1/tags/{vip}"),
                &[],
                Some(json!({"caption": "VIP"})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let id = new_client(&api, "3").await;
        let path = format!("/api/v1/clients/{id}");
        // A tag change and a field change at once: both stay, and the history chains.
        let (tags, city) = tokio::join!(
            api.send("PATCH", &path, &[], Some(json!({"tag_ids": [vip]}))),
            api.send("PATCH", &path, &[], Some(json!({"city": "Leeds"}))),
        );
        assert_eq!((tags.status, city.status), (200, 200), "{backend}");
        let got = api.send("GET", &path, &[], None).await;
        assert_eq!(got.body["city"], "Leeds", "{backend}: {}", got.body);
        assert_eq!(
            got.body["tags"][0]["caption"], "VIP",
            "{backend}: {}",
            got.body
        );
        assert_eq!(got.etag(), "\"3\"", "{backend}: two edits, two versions");
        let end = assert_history_chains(&history_of(&t, "client", id).await, backend);
        assert_eq!(end["tags"], "VIP");
        // A bulk change is another version: a form opened before it is refused with both values.
        let edit = format!("/clients/{id}/edit");
        let form = admin.get(&edit).await;
        let v = version_in(&form.body);
        admin.get("/clients?select=1").await;
        let sid = id.to_string();
        let r = admin
            .post(
                "/clients/bulk",
                &[
                    ("selection", "ticked"),
                    ("id", sid.as_str()),
                    ("action", "set_status"),
                    ("new_status", "blocked"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}: {}", r.body);
        admin.get(&edit).await;
        let vip_s = vip.to_string();
        let r = admin
            .post(
                &edit,
                &[
                    ("version", v.as_str()),
                    ("first_name", "Ann"),
                    ("last_name", "Lee 3"),
                    ("email", "ann.3@example.com"),
                    ("phone", "+44 20 7946 0000"),
                    ("country", "GB"),
                    ("city", "Hull"),
                    ("role", "investor"),
                    ("status", "active"),
                    ("language", "en"),
                    ("tag", vip_s.as_str()),
                ],
            )
            .await;
        assert_eq!(r.status, 409, "{backend}: {}", r.body);
        assert!(r.body.contains("id=\"status-theirs\""), "{}", r.body);
        assert!(r.body.contains("id=\"city-theirs\""), "{}", r.body);
        let got = api.send("GET", &path, &[], None).await.body;
        assert_eq!(
            (got["status"].as_str(), got["city"].as_str()),
            (Some("blocked"), Some("Leeds"))
        );
    }
}
