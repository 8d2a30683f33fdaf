//! System › Event log: the page, filters, export, history, completeness, and the tamper-evident
//! chain (verified by `backoffice audit verify` after edits made with plain SQL).

use crate::BIN;
use std::process::Command;
use testkit::pages::*;
use testkit::{db::backends, TestApp};

fn verify(db_url: &str) -> (i32, String) {
    let o = Command::new(BIN)
        .args(["audit", "verify"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BACKOFFICE_DATABASE_URL", db_url)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Runs plain SQL against the test database, as someone with database access would.
async fn sql(db_url: &str, statements: &[&str]) {
    if db_url.starts_with("sqlite:") {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(db_url).await.unwrap();
        for s in statements {
            sqlx::query(s).execute(&mut c).await.unwrap();
        }
    } else {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(db_url).await.unwrap();
        for s in statements {
            sqlx::query(s).execute(&mut c).await.unwrap();
        }
    }
}

#[tokio::test]
async fn the_log_page_filters_pages_and_shows_history() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let support = create_group(&admin, "Support", &["users.view", "event_log.view"]).await;
        create_user(
            &admin,
            "jane@example.com",
            "Jane Doe",
            &[&support.to_string()],
            false,
            false,
        )
        .await;
        let jane = user_id(&admin, "jane@example.com").await;
        for _ in 0..60 {
            t.browser()
                .sign_in("nobody@example.com", "whatever password")
                .await;
        }
        let page = admin.get("/events").await;
        for col in [
            "Time",
            "Actor",
            "Actor's groups",
            "Category",
            "Action",
            "Event",
            "Target",
            "Details",
            "IP address",
        ] {
            assert!(
                page.body
                    .contains(&format!(">{}", col.replace('\'', "&#x27;")))
                    || page.body.contains(&format!(">{col}")),
                "column {col}"
            );
        }
        let first = page
            .body
            .find("<td>Sign-in failed</td>")
            .expect("sign-in failures listed");
        assert!(
            first
                < page
                    .body
                    .find("<td>User created</td>")
                    .unwrap_or(usize::MAX),
            "newest first"
        );
        assert!(page.body.contains("Next ›"), "keyset pagination");
        let older = page
            .body
            .split("href=\"/events?")
            .filter(|s| s.contains("before="))
            .count();
        assert_eq!(older, 1, "a Next link carrying the cursor");
        // Filters: category and event; actor; target; time range.
        let users = admin.get("/events?category=users").await;
        assert!(users.body.contains("User created") && !users.body.contains("Sign-in failed"));
        let by_actor = admin
            .get("/events?actor=root%40example.com&event=Group+created")
            .await;
        assert!(by_actor.body.contains("Group created") && by_actor.body.contains("Support"));
        let target = admin
            .get(&format!("/events?target_type=user&target_id={jane}"))
            .await;
        assert!(target.body.contains("User created") && target.body.contains("jane@example.com"));
        assert!(
            target.body.contains("groups: Support"),
            "details show the changed fields"
        );
        let future = admin.get("/events?from=2999-01-01").await;
        assert!(future.body.contains("No events match"));
        let bad = admin
            .get("/events?from=yesterday&actor=ghost%40example.com")
            .await;
        assert_eq!(bad.status, 422);
        assert!(
            bad.body.contains("Enter a date like") && bad.body.contains("No user has this email")
        );
        // The user's own page shows their history.
        let edit = admin.get(&format!("/users/{jane}")).await;
        assert!(edit.body.contains("History") && edit.body.contains("User created"));
        // Without Event log View the page is refused.
        let b = sign_in_fully(&t, "jane@example.com", USER_PASSWORD).await;
        assert_eq!(
            b.get("/events").await.status,
            200,
            "Support has Event log View"
        );
        assert_eq!(
            b.get("/events/export?format=csv").await.status,
            403,
            "but not Export"
        );
        let _ = backend;
    }
}

#[tokio::test]
async fn export_is_formula_safe_and_logged() {
    let t = TestApp::start("sqlite").await;
    let admin = t.admin().await;
    create_group(&admin, "=HYPERLINK(\"http://evil\")", &["users.view"]).await;
    let csv = admin.get("/events/export?format=csv&category=groups").await;
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 1);
    for cell in rows[0].iter() {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "unsafe cell {cell:?}"
        );
    }
    assert!(
        rows[0].iter().any(|c| c == "'=HYPERLINK(\"http://evil\")"),
        "{:?}",
        rows[0]
    );
    let jsonl = admin.get("/events/export?format=jsonl").await;
    let lines: Vec<serde_json::Value> = jsonl
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|e| e["event"] == "Group created"));
    let log = admin.get("/events?event=Event+log+exported").await;
    assert!(
        log.body.contains("Event log exported") && log.body.contains("count:"),
        "exports are logged"
    );
}

/// Every state-changing use case writes at least one event. Add new use cases here.
#[tokio::test]
async fn every_state_changing_use_case_writes_an_event() {
    let t = TestApp::start("sqlite").await;
    let store = store::connect(&t.db_url).await.unwrap();
    let count = || async { store.chain_head().await.unwrap().0 };
    let admin = t.admin().await;
    let mut missing = Vec::new();
    macro_rules! case {
        ($name:expr, $body:expr) => {{
            let before = count().await;
            $body;
            if count().await <= before {
                missing.push($name);
            }
        }};
    }
    case!(
        "create group",
        create_group(&admin, "Desk", &["users.view"]).await
    );
    let desk = admin.get("/groups").await.body;
    let desk_id: i64 = desk[desk
        .find(">Desk</a>")
        .map(|i| desk[..i].rfind("/groups/").unwrap() + 8)
        .unwrap()..]
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    case!("update group", {
        admin.get(&format!("/groups/{desk_id}")).await;
        admin
            .post(
                &format!("/groups/{desk_id}"),
                &[("caption", "Desk"), ("perm", "users.create")],
            )
            .await;
    });
    case!("export groups", admin.get("/groups/export").await);
    case!(
        "create user",
        create_user(&admin, "jane@example.com", "Jane", &["1"], true, false).await
    );
    let jane = user_id(&admin, "jane@example.com").await;
    case!(
        "update user",
        save_user(&admin, jane, &[("name", "Jane Doe")]).await
    );
    case!("disable 2FA", disable_2fa(&admin, "jane@example.com").await);
    case!("enable 2FA", {
        admin.get(&format!("/users/{jane}")).await;
        admin
            .post(&format!("/users/{jane}/two-factor/enable"), &[])
            .await;
    });
    case!("unlock", {
        admin.get(&format!("/users/{jane}")).await;
        admin.post(&format!("/users/{jane}/unlock"), &[]).await;
    });
    case!("sign out everywhere", {
        admin.get(&format!("/users/{jane}")).await;
        admin.post(&format!("/users/{jane}/sign-out"), &[]).await;
    });
    case!(
        "sign-in failure",
        t.browser()
            .sign_in("jane@example.com", "wrong password!")
            .await
    );
    case!(
        "code sent + sign-in",
        sign_in_fully(&t, "jane@example.com", USER_PASSWORD).await
    );
    case!("password change", {
        admin.get("/profile").await;
        admin
            .post(
                "/profile/password",
                &[
                    ("current_password", &t.admin_password),
                    ("new_password", NEW_PASSWORD),
                    ("confirm_password", NEW_PASSWORD),
                ],
            )
            .await;
    });
    let admin = sign_in_fully(&t, &t.admin_email, NEW_PASSWORD).await;
    let other = sign_in_fully(&t, &t.admin_email, NEW_PASSWORD).await;
    case!("end own session", {
        let page = admin.get("/profile").await;
        let key = page
            .body
            .split("/profile/sessions/")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        admin
            .post(&format!("/profile/sessions/{key}/end"), &[])
            .await;
    });
    drop(other);
    case!("test email", {
        admin.get("/settings").await;
        admin
            .post("/settings/test-email", &[("to", "ops@example.com")])
            .await;
    });
    case!("refused action", {
        let jane_browser = sign_in_fully(&t, "jane@example.com", NEW_PASSWORD).await;
        jane_browser.get("/groups/new").await;
    });
    case!("import groups", {
        admin.get("/groups/import").await;
        let form = reqwest::multipart::Form::new()
            .text("csrf", admin.csrf())
            .text("replace", "disabled")
            .part(
                "file",
                reqwest::multipart::Part::bytes(br#"{"version":1,"groups":[]}"#.to_vec())
                    .file_name("g.json"),
            );
        admin
            .client
            .post(t.url("/groups/import"))
            .header("origin", t.url(""))
            .multipart(form)
            .send()
            .await
            .unwrap();
    });
    case!("delete group", {
        admin.get(&format!("/groups/{desk_id}/delete")).await;
        admin.post(&format!("/groups/{desk_id}/delete"), &[]).await;
    });
    case!("sign out", {
        admin.get("/").await;
        admin.post("/logout", &[]).await;
    });
    assert!(
        missing.is_empty(),
        "use cases that wrote no event: {missing:?}"
    );
    // And none of them wrote a secret.
    let rows = store.all_events(0, 10_000).await.unwrap();
    for r in rows {
        for secret in [USER_PASSWORD, NEW_PASSWORD, &t.admin_password] {
            assert!(!r.details.contains(secret), "secret in event {}", r.id);
        }
    }
}

#[tokio::test]
async fn audit_verify_finds_edited_deleted_and_inserted_rows() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_group(&admin, "Desk", &["users.view"]).await;
        create_user(&admin, "jane@example.com", "Jane", &["1"], false, false).await;
        let (code, out) = verify(&t.db_url);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("OK"), "{out}");
        let n: i64 = out.split_whitespace().next().unwrap().parse().unwrap();
        assert!(n >= 4);

        // The database itself refuses edits through the normal path.
        let refused = {
            let url = t.db_url.clone();
            tokio::spawn(
                async move { sql(&url, &["UPDATE events SET event = 'x' WHERE id = 1"]).await },
            )
            .await
        };
        assert!(refused.is_err(), "append-only trigger");

        // Someone with database access removes the guard and edits a row.
        let (drop_guard, restore) = if backend == "sqlite" {
            (
                vec!["DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete"],
                vec![
                    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'append-only'); END",
                    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'append-only'); END",
                ],
            )
        } else {
            (
                vec!["ALTER TABLE events DISABLE TRIGGER events_no_update"],
                vec!["ALTER TABLE events ENABLE TRIGGER events_no_update"],
            )
        };
        sql(&t.db_url, &drop_guard).await;
        sql(
            &t.db_url,
            &["UPDATE events SET actor_email = 'someone@else.com' WHERE id = 3"],
        )
        .await;
        let (code, out) = verify(&t.db_url);
        assert_eq!(code, 1);
        assert!(
            out.contains("broken at row 3") && out.contains("content"),
            "{out}"
        );

        sql(&t.db_url, &["DELETE FROM events WHERE id = 2"]).await;
        let (code, out) = verify(&t.db_url);
        assert_eq!(code, 1);
        assert!(out.contains("row 2 is missing"), "{out}");

        sql(
            &t.db_url,
            &["INSERT INTO events (id, at, actor_groups, category, action, event, details, prev_hash, hash) \
               VALUES (2, 0, '', 'users', 'ADD', 'Forged', '[]', 'x', 'y')"],
        )
        .await;
        let (code, out) = verify(&t.db_url);
        assert_eq!(code, 1);
        assert!(out.contains("broken at row 2"), "{out}");
        sql(&t.db_url, &restore).await;
    }
}

#[tokio::test]
async fn concurrent_writers_on_two_instances_keep_the_chain_linear() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let second = t.another_instance().await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let b = if i % 2 == 0 {
                t.browser()
            } else {
                second.browser()
            };
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    b.sign_in("nobody@example.com", "whatever password").await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let (code, out) = verify(&t.db_url);
        assert_eq!(code, 0, "{backend}: {out}");
    }
}

/// A link's address by the start of its text, with the escaped `&` undone.
fn link(body: &str, label: &str) -> Option<String> {
    body.split("<a href=\"")
        .find(|s| {
            s.split_once("\">")
                .is_some_and(|(_, t)| t.starts_with(label))
        })
        .map(|s| {
            s.split('"')
                .next()
                .unwrap()
                .replace("&#38;", "&")
                .replace("&amp;", "&")
        })
}

/// The rows of the events table, as their HTML.
fn rows(body: &str) -> Vec<String> {
    body.split("<tbody>")
        .nth(1)
        .map(|t| t.split("</tbody>").next().unwrap())
        .unwrap_or("")
        .split("<tr>")
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_log_pages_first_previous_next_last_with_a_page_size_and_chosen_columns() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        // Each event different (the email tried is in its details), so pages can be told apart.
        for n in 0..60 {
            t.browser()
                .sign_in(&format!("nobody{n}@example.com"), "whatever password")
                .await;
        }
        let first = admin.get("/events?per_page=25").await;
        assert_eq!(first.status, 200);
        assert_eq!(rows(&first.body).len(), 25, "{backend}");
        // The whole log's size is known (the chain's length), so it is shown.
        let total: i64 = first
            .body
            .split(" events in the log")
            .next()
            .and_then(|s| s.rsplit('>').next())
            .and_then(|n| n.trim().parse().ok())
            .expect("the total of the whole log");
        assert!(total > 60, "{backend}: {total}");
        assert!(
            link(&first.body, "« First").is_none() && link(&first.body, "‹ Previous").is_none()
        );
        let next = link(&first.body, "Next ›").unwrap();
        assert!(
            next.contains("before=") && next.contains("per_page=25"),
            "{next}"
        );
        let second = admin.get(&next).await;
        assert_eq!(rows(&second.body).len(), 25);
        assert!(
            rows(&second.body)
                .iter()
                .all(|r| !rows(&first.body).contains(r)),
            "{backend}: the second page has other events"
        );
        let back = link(&second.body, "‹ Previous").expect("Previous");
        assert!(
            back.contains("after=") && back.contains("per_page=25"),
            "{back}"
        );
        assert_eq!(
            rows(&admin.get(&back).await.body),
            rows(&first.body),
            "{backend}: Previous comes back to the first page"
        );
        // Last reads the log from its oldest end; walking Next ends on the same oldest row.
        let last_path = link(&first.body, "Last »").unwrap();
        assert!(last_path.contains("last=1"), "{last_path}");
        let last = admin.get(&last_path).await;
        assert_eq!(rows(&last.body).len(), 25);
        assert!(link(&last.body, "Next ›").is_none() && link(&last.body, "Last »").is_none());
        let mut walked = second.body;
        let mut counted = 50;
        while let Some(n) = link(&walked, "Next ›") {
            walked = admin.get(&n).await.body;
            counted += rows(&walked).len() as i64;
        }
        assert_eq!(
            counted, total,
            "{backend}: the total is every event, each on one page"
        );
        assert_eq!(
            rows(&last.body).last(),
            rows(&walked).last(),
            "{backend}: the oldest event ends both"
        );
        // The page size is checked on the server: 7 is not offered, 50 is used.
        let odd = admin.get("/events?per_page=7").await;
        assert_eq!(rows(&odd.body).len(), 50, "{backend}");
        assert!(odd.body.contains("<option value=\"50\" selected>"));
        // A filtered view says it is not counted rather than counting a million rows.
        let filtered = admin.get("/events?category=auth").await;
        assert!(filtered.body.contains("not counted"), "{backend}");
        // Columns: Details and IP address hidden for this viewer, kept after the save.
        let saved = admin
            .post(
                "/events/columns",
                &[
                    ("col", "time"),
                    ("col", "actor"),
                    ("col", "event"),
                    ("back", "per_page=25"),
                ],
            )
            .await;
        assert_eq!(saved.location.as_deref(), Some("/events?per_page=25"));
        let narrow = admin.get("/events").await.body;
        let head = narrow
            .split("<thead>")
            .nth(1)
            .unwrap()
            .split("</thead>")
            .next()
            .unwrap();
        assert!(
            head.contains(">Time<")
                && head.contains(">Event<")
                && !head.contains(">Details<")
                && !head.contains(">IP address<"),
            "{backend}: {head}"
        );
        let bad = admin
            .post("/events/columns", &[("col", "hash"), ("back", "")])
            .await;
        assert_eq!(
            bad.status, 303,
            "an unknown column is refused with a message"
        );
        assert!(admin
            .get("/events")
            .await
            .body
            .contains("Columns not saved"));
    }
}
