//! Clients over HTTP, as people use them: the directory, and "Mask data" everywhere. Every test
//! runs on SQLite, and on PostgreSQL when BACKOFFICE_TEST_POSTGRES_URL is set.

use crate::BIN;
use domain::Permission;
use testkit::pages::*;
use testkit::spawn::Browser;
use testkit::{db::backends, TestApp};

/// Creates a client through Create client; returns its id.
async fn create_client(
    b: &Browser,
    first: &str,
    last: &str,
    email: &str,
    phone: &str,
    country: &str,
    city: &str,
) -> i64 {
    b.get("/clients/new").await;
    let r = b
        .post(
            "/clients/new",
            &[
                ("first_name", first),
                ("last_name", last),
                ("email", email),
                ("phone", phone),
                ("country", country),
                ("city", city),
                ("role", "investor"),
                ("status", "active"),
                ("language", "en"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "create client {email}: {}", r.body);
    r.location
        .unwrap()
        .trim_start_matches("/clients/")
        .parse()
        .unwrap()
}

/// A group holding every permission, and a user in it (with or without Mask data), signed in.
async fn staff_with_everything(t: &TestApp, admin: &Browser, email: &str, mask: bool) -> Browser {
    t.staff(email)
        .by(admin)
        .with_every_right()
        .masked(mask)
        .signed_in()
        .await
}

/// A signed-in user whose only group grants `perms`.
async fn staff_with(
    t: &TestApp,
    admin: &Browser,
    email: &str,
    perms: &[&str],
    mask: bool,
) -> Browser {
    t.staff(email)
        .by(admin)
        .with_rights(perms)
        .masked(mask)
        .signed_in()
        .await
}

/// Uploads a file to a multipart form, with the CSRF token of the last page seen.
async fn upload(t: &TestApp, b: &Browser, path: &str, file: &str) -> (u16, String) {
    let boundary = "----clients-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clients.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{file}\r\n--{boundary}--\r\n",
        b.csrf()
    );
    let r = b
        .client
        .post(t.url(path))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("origin", t.url(""))
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The total the list shows: `<p>N clients</p>`.
fn total(body: &str) -> i64 {
    body.match_indices("<p>")
        .find_map(|(at, _)| {
            let rest = &body[at + 3..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            (!digits.is_empty() && rest[digits.len()..].starts_with(" client"))
                .then(|| digits.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no total in {body}"))
}

/// HTML text as a person reads it (the entities askama writes, undone).
fn text(html: &str) -> String {
    html.replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// Everything a response shows: status line, headers and body.
fn everything(p: &testkit::Page) -> String {
    let headers: String = p
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("")))
        .collect();
    format!("{}\n{headers}\n{}", p.status, p.body)
}

#[tokio::test]
async fn masked_staff_never_see_client_personal_data() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        // Unique markers: nothing else on any page contains them.
        let mut ids = Vec::new();
        let mut markers = Vec::new();
        for i in 0..3 {
            let first = format!("Qxfirstmark{i}");
            let last = format!("Vylastmark{i}");
            let email = format!("leakmark{i}@markerdomain{i}.test");
            let phone = format!("+44 20 7946 13{i}7");
            ids.push(create_client(&admin, &first, &last, &email, &phone, "GB", "Leeds").await);
            markers.extend([
                first.clone(),
                last.clone(),
                email.clone(),
                format!("leakmark{i}"),
                format!("markerdomain{i}"),
                format!("+4420794613{i}7"),
                // Everything of the phone but the last two digits.
                "20794613".to_string(),
                format!("irstmark{i}"),
                format!("astmark{i}"),
            ]);
        }
        let masked = staff_with_everything(&t, &admin, "masked@example.com", true).await;
        let plain = staff_with_everything(&t, &admin, "plain@example.com", false).await;
        let id = ids[0];

        let paths: Vec<String> = vec![
            "/".to_string(),
            "/clients".into(),
            format!("/clients?by=id&q={id}"),
            "/clients?country=GB&role=investor&status=active&from=2000-01-01&to=2100-01-01".into(),
            "/clients?sort=registered&dir=desc".into(),
            "/clients?sort=id&dir=asc&per_page=25&after=0".into(),
            format!("/clients/{id}"),
            format!("/clients/{id}/edit"),
            format!("/clients/{id}/block"),
            "/clients/export".into(),
            format!("/clients/export?by=id&q={id}"),
            // Error pages: refused searches and sorts, bad filters, unknown ids.
            "/clients?by=name&q=qx".into(),
            "/clients?by=email&q=leak".into(),
            "/clients?by=phone&q=%2B44".into(),
            "/clients?sort=name".into(),
            "/clients?sort=email&dir=desc".into(),
            "/clients/export?by=email&q=l".into(),
            "/clients?from=not-a-date&country=XX".into(),
            "/clients/999999".into(),
            "/clients/999999/edit".into(),
            "/clients/new".into(),
            "/clients/import".into(),
            // The event log, where client changes are recorded.
            "/events".into(),
            "/events?category=clients".into(),
            format!("/events?target_type=client&target_id={id}"),
            "/events/export?format=csv".into(),
            "/events/export?format=jsonl".into(),
            // The JSON API (session-authenticated GETs).
            "/api/v1/clients".into(),
            format!("/api/v1/clients/{id}"),
            format!("/api/v1/clients?in=id&q={id}"),
            "/api/v1/clients?sort=registered&dir=desc&limit=50".into(),
            "/api/v1/clients/export".into(),
            "/api/v1/clients?in=name&q=qx".into(),
            "/api/v1/clients?in=email&q=leak".into(),
            "/api/v1/clients?sort=email".into(),
            "/api/v1/clients/999999".into(),
            "/api/v1/events".into(),
            format!("/api/v1/events?target_type=client&target_id={id}"),
            "/api/v1/events/export".into(),
        ];
        let mut seen_masked = String::new();
        let mut seen_plain = String::new();
        for path in &paths {
            let m = masked.get(path).await;
            assert!(m.status < 500, "{backend} {path}: {}", m.status);
            seen_masked.push_str(&everything(&m));
            let p = plain.get(path).await;
            seen_plain.push_str(&everything(&p));
        }
        // A save with a bad field comes back as a form: the error page of the edit form.
        masked.get(&format!("/clients/{id}/edit")).await;
        let r = masked
            .post(
                &format!("/clients/{id}/edit"),
                &[
                    ("first_name", "Q****"),
                    ("last_name", "V****"),
                    ("email", "l****@m****.test"),
                    ("phone", "+*******17"),
                    ("country", "XX"),
                    ("city", "Leeds"),
                    ("role", "investor"),
                    ("status", "active"),
                    ("language", "en"),
                ],
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.body);
        seen_masked.push_str(&everything(&r));
        // Block (a change) and the flash page after it.
        masked.get(&format!("/clients/{}/block", ids[2])).await;
        let r = masked
            .post(&format!("/clients/{}/block", ids[2]), &[])
            .await;
        assert_eq!(r.status, 303);
        seen_masked.push_str(&everything(&r));
        seen_masked.push_str(&everything(
            &masked.get(&format!("/clients/{}", ids[2])).await,
        ));

        for marker in &markers {
            assert!(
                !seen_masked.contains(marker.as_str()),
                "{backend}: {marker} leaked to a masked viewer"
            );
            assert!(
                seen_plain.contains(marker.as_str()),
                "{backend}: {marker} not shown to an unmasked viewer"
            );
        }
        // What the masked viewer does see: the masks.
        assert!(seen_masked.contains("Q**** V****"), "{backend}");
        assert!(seen_masked.contains("l****@m****.test"));
        assert!(seen_masked.contains("+*******17"));
        assert!(seen_masked.contains("Mask data"));
    }
}

#[tokio::test]
async fn masked_viewers_cannot_search_filter_or_sort_by_personal_fields() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let id = create_client(
            &admin,
            "Ann",
            "Lee",
            "ann.lee@example.com",
            "+44 20 7946 0958",
            "GB",
            "London",
        )
        .await;
        create_client(
            &admin,
            "Bob",
            "Stone",
            "bob@example.org",
            "+49 30 1234567",
            "DE",
            "Berlin",
        )
        .await;
        let masked = staff_with(
            &t,
            &admin,
            "masked@example.com",
            &["clients.view", "clients.export"],
            true,
        )
        .await;
        let plain = staff_with(
            &t,
            &admin,
            "plain@example.com",
            &["clients.view", "clients.export"],
            false,
        )
        .await;

        let personal = [
            "/clients?by=name&q=ann",
            "/clients?by=email&q=ann.lee%40",
            "/clients?by=phone&q=%2B4420",
            "/clients?sort=name",
            "/clients?sort=email&dir=desc",
            "/clients/export?by=name&q=ann",
            "/clients/export?by=phone&q=44",
        ];
        for path in personal {
            let r = masked.get(path).await;
            assert_eq!(r.status, 403, "{backend} {path}");
            assert!(text(&r.body).contains("With Mask data on you can't search, filter or sort clients by name, email or phone"), "{}", r.body);
            if !path.starts_with("/clients/export") {
                assert!(
                    r.body.contains("role=\"search\""),
                    "{path}: the refusal is shown on the list"
                );
            }
            let r = plain.get(path).await;
            assert_eq!(r.status, 200, "{backend} {path}: {}", r.body);
        }
        // The unmasked viewer's searches find what they should.
        assert_eq!(total(&plain.get("/clients?by=name&q=ann").await.body), 1);
        assert_eq!(
            total(&plain.get("/clients?by=name&q=STONE").await.body),
            1,
            "last-name prefix, any case"
        );
        assert_eq!(
            total(&plain.get("/clients?by=email&q=BOB%40").await.body),
            1
        );
        assert_eq!(
            total(&plain.get("/clients?by=phone&q=%2B44%2020").await.body),
            1
        );
        assert_eq!(
            total(&plain.get("/clients?by=phone&q=0049").await.body),
            1,
            "00 for +"
        );
        let export = plain.get("/clients/export?by=name&q=bob").await.body;
        assert!(
            export.contains("bob@example.org") && !export.contains("ann.lee"),
            "{export}"
        );

        // What a masked viewer may use: ID, country, role, status, dates; the page offers only those.
        let page = masked.get("/clients").await;
        assert!(
            page.body.contains("<option value=\"id\"")
                && !page.body.contains("<option value=\"name\"")
        );
        assert!(
            !page.body.contains("sort=name") && !page.body.contains("sort=email"),
            "no personal sort links"
        );
        assert_eq!(
            total(&masked.get(&format!("/clients?by=id&q={id}")).await.body),
            1
        );
        assert_eq!(total(&masked.get("/clients?country=DE").await.body), 1);
        assert_eq!(total(&masked.get("/clients?status=blocked").await.body), 0);
        assert_eq!(
            masked.get("/clients?sort=registered&dir=desc").await.status,
            200
        );
        // The refusals are in the event log, without the searched text.
        assert!(events_with(&t, "search clients by name").await >= 1);
        assert_eq!(
            masked.get("/clients?by=email&q=zzqsecret").await.status,
            403
        );
        assert_eq!(
            events_with(&t, "zzqsecret").await,
            0,
            "{backend}: the guess is not recorded"
        );
    }
}

#[tokio::test]
async fn list_filters_sorts_and_keyset_pages() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let mut ids = Vec::new();
        for i in 0..30 {
            let country = if i % 3 == 0 { "FR" } else { "GB" };
            ids.push(
                create_client(
                    &admin,
                    &format!("Name{i:02}"),
                    "Person",
                    &format!("p{i:02}@example.com"),
                    &format!("+44 20 7946 {:04}", 1000 + i),
                    country,
                    "",
                )
                .await,
            );
        }
        let first = admin.get("/clients").await;
        assert_eq!(total(&first.body), 30);
        assert!(first.body.contains("30 clients"));
        // "Next" carries the last id of the page; following it pages through everything once.
        let mut seen = Vec::new();
        let mut path = "/clients?per_page=25".to_string();
        for _ in 0..10 {
            let page = admin.get(&path).await;
            assert_eq!(page.status, 200);
            for id in &ids {
                if page
                    .body
                    .contains(&format!("<td><a href=\"/clients/{id}\">{id}</a></td>"))
                {
                    seen.push(*id);
                }
            }
            match page
                .body
                .split("<a href=\"")
                .filter(|s| s.contains(">Next ›"))
                .map(|s| text(s.split('"').next().unwrap()))
                .next()
            {
                Some(next) => {
                    assert!(next.contains("after="), "keyset link: {next}");
                    path = next;
                }
                None => break,
            }
        }
        assert_eq!(seen, ids, "{backend}");
        // First / Previous / Next / Last, all keyset: Last reads from the other end, Previous
        // the page before a client; the page size stays in every link.
        let shown = |body: &str| -> Vec<i64> {
            ids.iter()
                .copied()
                .filter(|id| body.contains(&format!("<td><a href=\"/clients/{id}\">{id}</a></td>")))
                .collect()
        };
        let link = |body: &str, label: &str| -> Option<String> {
            body.split("<a href=\"")
                .find(|s| {
                    s.split_once("\">")
                        .is_some_and(|(_, t)| t.starts_with(label))
                })
                .map(|s| text(s.split('"').next().unwrap()))
        };
        let first = admin.get("/clients?per_page=25").await.body;
        assert!(link(&first, "« First").is_none() && link(&first, "‹ Previous").is_none());
        let last_path = link(&first, "Last »").expect("a Last link");
        assert!(
            last_path.contains("last=1") && last_path.contains("per_page=25"),
            "{last_path}"
        );
        let last = admin.get(&last_path).await.body;
        assert_eq!(shown(&last), ids[5..].to_vec(), "{backend}: the last 25");
        assert!(link(&last, "Next ›").is_none() && link(&last, "Last »").is_none());
        let prev = link(&last, "‹ Previous").expect("Previous from the last page");
        assert!(prev.contains(&format!("before={}", ids[5])), "{prev}");
        assert_eq!(
            shown(&admin.get(&prev).await.body),
            ids[..25].to_vec(),
            "{backend}: fewer than a page before: the first page, whole"
        );
        let second = admin.get(&link(&first, "Next ›").unwrap()).await.body;
        assert_eq!(shown(&second), ids[25..].to_vec());
        assert!(link(&second, "« First").is_some());
        let back = link(&second, "‹ Previous").unwrap();
        assert!(back.contains(&format!("before={}", ids[25])), "{back}");
        assert_eq!(shown(&admin.get(&back).await.body), ids[..25].to_vec());
        // The page size is checked on the server: 7 is not offered, 25 is used.
        let odd = admin.get("/clients?per_page=7").await.body;
        assert_eq!(shown(&odd).len(), 25, "{backend}");
        // An order paged by number: Last is the last number when the total is known.
        let by_email = admin.get("/clients?sort=email&per_page=25").await.body;
        assert!(by_email.contains("Page 1 of 2"), "{backend}");
        let last_by_email = link(&by_email, "Last »").expect("Last by email");
        assert!(last_by_email.contains("page=2"), "{last_by_email}");
        // Select keeps the order, the page size and the page; Cancel selection too.
        let button = |body: &str, label: &str| -> Option<String> {
            let end = body.find(&format!("\">{label}</a>"))?;
            let start = body[..end].rfind("href=\"")? + 6;
            Some(text(&body[start..end]))
        };
        let select = button(&by_email, "Select").expect("Select");
        assert!(
            select.contains("sort=email")
                && select.contains("per_page=25")
                && select.contains("select=1"),
            "{select}"
        );
        let cancel = button(&admin.get(&select).await.body, "Cancel selection").expect("Cancel");
        assert!(
            cancel.contains("per_page=25") && !cancel.contains("select=1"),
            "{cancel}"
        );
        // Filters and a date range that excludes everything.
        assert_eq!(total(&admin.get("/clients?country=FR").await.body), 10);
        assert_eq!(
            total(
                &admin
                    .get("/clients?from=2000-01-01&to=2000-12-31")
                    .await
                    .body
            ),
            0
        );
        let bad = admin.get("/clients?from=31.12.2020&country=ZZ").await;
        assert_eq!(bad.status, 422);
        assert!(
            bad.body.contains("Enter a date as YYYY-MM-DD")
                && bad.body.contains("ZZ is not an ISO 3166 country code")
        );
        // Sort by email, descending.
        let page = admin.get("/clients?sort=email&dir=desc").await.body;
        assert!(
            page.find("p29@example.com").unwrap()
                < page
                    .find("p00@example.com")
                    .unwrap_or(usize::MAX)
                    .min(page.find("p05@example.com").unwrap())
        );
        // The Columns menu: a hidden column stays hidden for this viewer; ID always shows.
        admin.get("/clients").await;
        let saved = admin
            .post(
                "/clients/columns",
                &[("col", "name"), ("col", "country"), ("back", "per_page=25")],
            )
            .await;
        assert_eq!(saved.location.as_deref(), Some("/clients?per_page=25"));
        let narrow = admin.get("/clients?per_page=25").await.body;
        assert!(
            !narrow.contains("p00@example.com")
                && narrow.contains("Name00")
                && shown(&narrow).len() == 25,
            "{backend}: Email hidden, Name and ID shown"
        );
    }
}

#[tokio::test]
async fn create_edit_and_block_with_field_errors_and_events() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        admin.get("/clients/new").await;
        let r = admin
            .post(
                "/clients/new",
                &[
                    ("first_name", ""),
                    ("last_name", "Lee"),
                    ("email", "not-an-email"),
                    ("phone", "020 7946 0958"),
                    ("country", "UK"),
                    ("city", "London"),
                    ("role", "investor"),
                    ("status", "active"),
                    ("language", "en"),
                ],
            )
            .await;
        assert_eq!(r.status, 422);
        for message in [
            "Enter the client's first name",
            "Enter a valid email address",
            "Start the phone number with +",
            "UK is not an ISO 3166 country code",
        ] {
            assert!(text(&r.body).contains(message), "{message}: {}", r.body);
        }
        assert!(
            r.body.contains("value=\"not-an-email\""),
            "the form keeps what was typed"
        );
        let id = create_client(
            &admin,
            "Ann",
            "Lee",
            "Ann.Lee@Example.com",
            "+44 (20) 7946-0958",
            "gb",
            "London",
        )
        .await;
        let detail = admin.get(&format!("/clients/{id}")).await.body;
        assert!(
            detail.contains("+442079460958") && detail.contains("United Kingdom (GB)"),
            "normalised: {detail}"
        );
        // Emails are unique case-insensitively.
        admin.get("/clients/new").await;
        let r = admin
            .post(
                "/clients/new",
                &[
                    ("first_name", "Other"),
                    ("last_name", "Person"),
                    ("email", "ann.lee@EXAMPLE.com"),
                    ("phone", "+4420794600"),
                    ("country", "GB"),
                    ("role", "both"),
                    ("status", "active"),
                    ("language", "en"),
                ],
            )
            .await;
        assert_eq!(r.status, 422);
        assert!(r.body.contains("A client with this email already exists"));

        // A masked editor (Update, no Delete) changes the city; the personal data stays real.
        let editor = staff_with(
            &t,
            &admin,
            "editor@example.com",
            &["clients.view", "clients.update"],
            true,
        )
        .await;
        let form = editor.get(&format!("/clients/{id}/edit")).await.body;
        assert!(
            form.contains("value=\"A****\" maxlength=\"100\" autocomplete=\"off\" readonly"),
            "{form}"
        );
        let r = editor
            .post(
                &format!("/clients/{id}/edit"),
                &[
                    ("first_name", "A****"),
                    ("last_name", "L****"),
                    ("email", "attacker@evil.test"),
                    ("phone", "+*******58"),
                    ("country", "GB"),
                    ("city", "Manchester"),
                    ("role", "both"),
                    ("status", "active"),
                    ("language", "de"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let detail = admin.get(&format!("/clients/{id}")).await.body;
        for real in [
            "Ann Lee",
            "Ann.Lee@Example.com",
            "+442079460958",
            "Manchester",
            "German (de)",
            "Investor and strategy provider",
        ] {
            assert!(detail.contains(real), "{backend}: {real} in {detail}");
        }
        assert!(!detail.contains("attacker@evil.test") && !detail.contains("A****"));
        // Blocking needs Clients Delete, in the form and through Block.
        editor.get(&format!("/clients/{id}/edit")).await;
        let r = editor
            .post(
                &format!("/clients/{id}/edit"),
                &[
                    ("country", "GB"),
                    ("role", "both"),
                    ("status", "blocked"),
                    ("language", "de"),
                ],
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(
            editor.get(&format!("/clients/{id}/block")).await.status,
            403
        );
        admin.get(&format!("/clients/{id}/block")).await;
        assert_eq!(
            admin
                .post(&format!("/clients/{id}/block"), &[])
                .await
                .status,
            303
        );
        assert!(admin
            .get(&format!("/clients/{id}"))
            .await
            .body
            .contains(">Blocked<"));
        assert_eq!(events_with(&t, "Client blocked").await, 1);
        assert_eq!(events_with(&t, "Client created").await, 1);
        assert_eq!(
            events_with(&t, "Manchester").await,
            1,
            "the update event names the changed city"
        );
        // The masked editor can't create or import.
        assert_eq!(editor.get("/clients/new").await.status, 403);
    }
}

/// The export reads each page as one JSON value made by the database: its rows are the clients
/// the same viewer gets from the API list (the ClientView path), text of every kind included,
/// masked for a masked viewer, neutralised, and in id order, on both databases.
#[tokio::test]
async fn export_rows_are_the_clients_the_viewer_sees() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let eu = create_tag(&admin, "Zürich desk").await;
        let asia = create_tag(&admin, "Asia\\desk").await;
        let awkward = [
            ("Zoë \"Q\"", "O'Neil, Jr", "zoe@example.com", "=1+1"),
            ("日本語", "Łukasz 🎉", "jp@example.jp", "São Paulo"),
            ("Back\\slash", "-Minus", "back@example.org", "@home; \"x\""),
            ("[1,\"x\"]", "{\"a\":1}", "json@example.net", "+city"),
        ];
        for (i, (first, last, email, city)) in awkward.iter().enumerate() {
            admin.get("/clients/new").await;
            let (eu, asia) = (eu.to_string(), asia.to_string());
            let mut fields = vec![
                ("first_name", *first),
                ("last_name", last),
                ("email", email),
                ("phone", "+44 20 7946 0958"),
                ("country", "GB"),
                ("city", city),
                ("role", "investor"),
                ("status", "active"),
                ("language", "en"),
            ];
            if i % 2 == 0 {
                fields.extend([("tag", eu.as_str()), ("tag", asia.as_str())]);
            }
            let r = admin.post("/clients/new", &fields).await;
            assert_eq!(r.status, 303, "{first}: {}", r.body);
        }
        let masked = staff_with(
            &t,
            &admin,
            "masked@example.com",
            &["clients.view", "clients.export"],
            true,
        )
        .await;
        for (who, b) in [("unmasked", &admin), ("masked", &masked)] {
            let listed: serde_json::Value =
                serde_json::from_str(&b.get("/api/v1/clients?limit=100&sort=id").await.body)
                    .unwrap();
            let listed = listed["items"].as_array().unwrap().clone();
            assert_eq!(listed.len(), awkward.len(), "{backend} {who}");
            let export = b.get("/clients/export").await;
            assert_eq!(export.status, 200);
            let rows: Vec<Vec<String>> = csv::Reader::from_reader(export.body.as_bytes())
                .records()
                .map(|r| r.unwrap().iter().map(str::to_string).collect())
                .collect();
            let mut ids: Vec<i64> = listed.iter().map(|c| c["id"].as_i64().unwrap()).collect();
            ids.sort_unstable();
            let exported: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
            assert_eq!(
                exported, ids,
                "{backend} {who}: every client once, in id order"
            );
            for c in &listed {
                let row = rows
                    .iter()
                    .find(|r| r[0] == c["id"].as_i64().unwrap().to_string())
                    .unwrap();
                for cell in row {
                    assert!(
                        !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                        "{backend} {who}: {cell}"
                    );
                }
                let cells: Vec<&str> = row
                    .iter()
                    .map(|cell| app::csv_file::restore_cell(cell))
                    .collect();
                let text = |k: &str| c[k].as_str().unwrap().to_string();
                let captions: Vec<String> = c["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["caption"].as_str().unwrap().to_string())
                    .collect();
                assert_eq!(
                    cells[1..7],
                    [
                        text("first_name"),
                        text("last_name"),
                        text("email"),
                        text("phone"),
                        text("country"),
                        text("city")
                    ],
                    "{backend} {who}"
                );
                assert_eq!(cells[9], text("language"));
                assert_eq!(cells[10], text("registered_at"));
                assert_eq!(cells[11], captions.join(", "), "{backend} {who}");
            }
            let body = export.body;
            for (first, last, email, _) in awkward {
                let shown = [first, last, email]
                    .iter()
                    .any(|v| body.contains(v) || body.contains(&v.replace('"', "\"\"")));
                assert_eq!(shown, who == "unmasked", "{backend} {who}: {first}");
            }
        }
        // Tags in caption order, as the list gives them.
        assert!(
            admin
                .get("/clients/export")
                .await
                .body
                .contains("\"Asia\\desk, Zürich desk\""),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn export_is_rfc_4180_neutralised_and_needs_the_export_permission() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_client(
            &admin,
            "Ann",
            "Lee",
            "ann@example.com",
            "+44 20 7946 0958",
            "GB",
            "=HYPERLINK(\"http://x\",\"y\")",
        )
        .await;
        create_client(
            &admin,
            "Bob",
            "O'Neil, Jr",
            "bob@example.com",
            "+1 212 555 0100",
            "US",
            "@SUM(A1)",
        )
        .await;
        let r = admin.get("/clients/export").await;
        assert_eq!(r.status, 200);
        assert!(r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        assert!(r.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("clients.csv"));
        let rows: Vec<Vec<String>> = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(r.body.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0][..5],
            ["ID", "First name", "Last name", "Email", "Phone"]
        );
        for cell in rows.iter().flatten() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell}"
            );
        }
        assert_eq!(rows[1][6], "'=HYPERLINK(\"http://x\",\"y\")");
        assert_eq!(rows[1][4], "'+442079460958");
        assert_eq!(rows[2][2], "O'Neil, Jr");
        assert_eq!(events_with(&t, "Clients exported").await, 1);

        let viewer = staff_with(&t, &admin, "viewer@example.com", &["clients.view"], false).await;
        assert_eq!(viewer.get("/clients/export").await.status, 403);
        assert!(!viewer.get("/clients").await.body.contains("Export CSV"));
        // Masked export: the masks, neutralised too.
        let masked = staff_with(
            &t,
            &admin,
            "masked@example.com",
            &["clients.view", "clients.export"],
            true,
        )
        .await;
        let body = masked.get("/clients/export").await.body;
        assert!(
            body.contains("A****,L****,a****@e****.com,'+*******58"),
            "{body}"
        );
        assert!(!body.contains("ann@example.com"));
    }
}

#[tokio::test]
async fn import_is_all_or_nothing_with_a_row_report() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_client(
            &admin,
            "Existing",
            "Client",
            "taken@example.com",
            "+44 20 7946 0000",
            "GB",
            "",
        )
        .await;
        let header = "First name,Last name,Email,Phone,Country,City,Role,Status,Language\r\n";
        let bad = format!(
            "{header}Ann,Lee,ann@example.com,+44 20 7946 0958,GB,London,Investor,Active,en\r\n\
             Bob,Stone,bob@example.com,12345,GB,Leeds,Investor,Active,en\r\n\
             Cy,Ode,cy@example.com,+49 30 1234567,XX,Berlin,Trader,Active,de\r\n\
             Di,Ray,TAKEN@example.com,+49 30 7654321,DE,,Investor,,de\r\n"
        );
        admin.get("/clients/import").await;
        let (status, body) = upload(&t, &admin, "/clients/import", &bad).await;
        assert_eq!(status, 422, "{body}");
        assert!(body.contains("Nothing was imported"));
        assert!(
            body.contains("Row 3, Phone: Start the phone number with +"),
            "{body}"
        );
        assert!(
            body.contains("Row 4, Country: XX is not an ISO 3166 country code"),
            "{body}"
        );
        assert!(
            body.contains("Row 4, Role: Choose Investor, Strategy provider, or both"),
            "{body}"
        );
        assert_eq!(
            total(&admin.get("/clients").await.body),
            1,
            "{backend}: nothing imported"
        );
        // Only the duplicate left: it is reported against the stored client.
        let dup = format!("{header}Di,Ray,TAKEN@example.com,+49 30 7654321,DE,,Investor,,de\r\n");
        let (status, body) = upload(&t, &admin, "/clients/import", &dup).await;
        assert_eq!(status, 422);
        assert!(
            body.contains("Row 2, Email: a client with this email already exists"),
            "{body}"
        );

        let good = format!(
            "{header}Ann,Lee,ann@example.com,+44 20 7946 0958,GB,London,Investor,Active,en\r\n\
             Bob,Stone,bob@example.com,'+44 20 7946 0959,GB,Leeds,strategy_provider,Blocked,en\r\n\
             Cy,Ode,cy@example.com,0049 30 1234567,de,Berlin,Both,,DE\r\n"
        );
        admin.get("/clients/import").await;
        let (status, body) = upload(&t, &admin, "/clients/import", &good).await;
        assert_eq!(status, 303, "{body}");
        assert_eq!(total(&admin.get("/clients").await.body), 4);
        assert!(admin
            .get("/clients?by=phone&q=%2B4930")
            .await
            .body
            .contains("cy@example.com"));
        assert_eq!(events_with(&t, "Clients imported").await, 1);
        // An export of the directory imports cleanly into a fresh one (after the neutralising prefix).
        let export = admin.get("/clients/export?country=DE").await.body;
        let t2 = TestApp::start(backend).await;
        let admin2 = t2.admin().await;
        admin2.get("/clients/import").await;
        let (status, body) = upload(&t2, &admin2, "/clients/import", &export).await;
        assert_eq!(status, 303, "{body}");
        assert!(admin2.get("/clients").await.body.contains("cy@example.com"));
    }
}

/// Runs `backoffice demo seed` against the test's database, the staff password on stdin.
pub(crate) fn demo_seed(t: &TestApp, args: &[&str], staff_password: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(BIN)
        .args(["demo", "seed"])
        .args(args)
        .env_clear()
        .env("BACKOFFICE_DATABASE_URL", &t.db_url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(staff_password.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn big_lists_count_up_to_a_cap_and_email_searches_list_in_email_order() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let out = demo_seed(
            &t,
            &[
                "--staff",
                "5",
                "--staff-password-stdin",
                "--clients",
                "3000",
            ],
            "Copper-Meadow-Violin-77",
        );
        assert!(out.contains("Added 5 demo staff account(s)"), "{out}");
        assert!(out.contains("Added 3000 demo client(s)"), "{out}");
        // The unfiltered total is exact (a kept counter); a broad filter is counted to 1,001 ("at least").
        let all = admin.get("/clients").await;
        assert!(all.body.contains("<p>3,000 clients</p>"), "{backend}");
        let active = admin.get("/clients?status=active").await;
        assert!(
            active.body.contains("At least 1,001 clients match"),
            "{backend}"
        );
        let api: serde_json::Value =
            serde_json::from_str(&admin.get("/api/v1/clients?status=active").await.body).unwrap();
        assert_eq!(api["total"], 1001, "at least 1,001");
        assert_eq!(api["total_is_lower_bound"], true);
        let exact: serde_json::Value =
            serde_json::from_str(&admin.get("/api/v1/clients?country=IS").await.body).unwrap();
        assert_eq!(exact["total"], 0);
        assert_eq!(exact["total_is_lower_bound"], false);
        // A new client whose id is last but whose email sorts first among "p…" addresses.
        let early = create_client(
            &admin,
            "Pia",
            "Early",
            "p-early@example.com",
            "+44 20 7946 0001",
            "GB",
            "",
        )
        .await;
        let late = create_client(
            &admin,
            "Pia",
            "Late",
            "pz-late@example.com",
            "+44 20 7946 0002",
            "GB",
            "",
        )
        .await;
        let page = admin.get("/clients?by=email&q=p-").await.body;
        assert!(page.contains("p-early@example.com") && !page.contains("pz-late@example.com"));
        let json = |body: String| serde_json::from_str::<serde_json::Value>(&body).unwrap();
        let by_email = json(admin.get("/api/v1/clients?in=email&q=p").await.body);
        assert_eq!(
            by_email["items"][0]["id"], early,
            "{backend}: email order by default"
        );
        let by_id = json(
            admin
                .get("/api/v1/clients?in=email&q=p&sort=id&dir=desc")
                .await
                .body,
        );
        assert_eq!(
            by_id["items"][0]["id"], late,
            "{backend}: an explicit order still wins"
        );
        // Demo staff sign in with the password they were seeded with, straight to the dashboard.
        let staff = t.browser();
        staff
            .sign_in("staff-2@demo.example", "Copper-Meadow-Violin-77")
            .await;
        let home = staff.get("/").await;
        assert_eq!(home.status, 200, "{backend}");
        assert!(home.body.contains("staff-2@demo.example"), "{backend}");
        // A scoped viewer's broad filter is counted among the first 1,001 clients it selects
        // (staff-5 sees Desk 06, about 4% of them): the total is a lower bound, and never
        // fewer than the clients the page already lists.
        let scoped = t.browser();
        scoped
            .sign_in("staff-5@demo.example", "Copper-Meadow-Violin-77")
            .await;
        let page = json(
            scoped
                .get("/api/v1/clients?status=active&limit=100")
                .await
                .body,
        );
        let listed = page["items"].as_array().unwrap().len() as i64;
        assert_eq!(listed, 100, "{backend}: more than a page in scope");
        assert_eq!(page["total_is_lower_bound"], true, "{backend}");
        assert!(
            page["total"].as_i64().unwrap() > listed,
            "{backend}: {} for a full page with more",
            page["total"]
        );
    }
}

/// Creates a tag under Clients › Tags; returns its id (read from the list's filter link).
async fn create_tag(admin: &Browser, caption: &str) -> i64 {
    admin.get("/clients/tags/new").await;
    let r = admin
        .post("/clients/tags/new", &[("caption", caption)])
        .await;
    assert_eq!(r.status, 303, "create tag {caption}: {}", r.body);
    let list = admin.get("/clients/tags").await.body;
    let link = list
        .split("<a href=\"/clients?tag=")
        .skip(1)
        .find(|s| {
            s.split('<')
                .next()
                .unwrap_or("")
                .ends_with(&format!(">{caption}"))
        })
        .unwrap_or_else(|| panic!("tag {caption} not listed"));
    link.split('"').next().unwrap().parse().unwrap()
}

/// Creates a client with these tags through Create client.
async fn create_tagged(b: &Browser, first: &str, email: &str, tags: &[i64]) -> testkit::Page {
    b.get("/clients/new").await;
    let tags: Vec<String> = tags.iter().map(ToString::to_string).collect();
    let mut fields = vec![
        ("first_name", first),
        ("last_name", "Scopetest"),
        ("email", email),
        ("phone", "+44 20 7946 0000"),
        ("country", "GB"),
        ("city", "Leeds"),
        ("role", "investor"),
        ("status", "active"),
        ("language", "en"),
    ];
    for t in &tags {
        fields.push(("tag", t.as_str()));
    }
    b.post("/clients/new", &fields).await
}

fn id_of(r: &testkit::Page) -> i64 {
    assert_eq!(r.status, 303, "{}", r.body);
    r.location
        .as_deref()
        .unwrap()
        .trim_start_matches("/clients/")
        .parse()
        .unwrap()
}

/// A scoped staff member (Allowed Client Tags: EU) sees and acts on EU clients only, on every
/// page, API call and export; masking applies on top; and nobody widens a scope.
#[tokio::test]
async fn scoped_staff_see_and_touch_only_their_clients() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let eu = create_tag(&admin, "EU desk").await;
        let us = create_tag(&admin, "US desk").await;
        let inside = id_of(&create_tagged(&admin, "Insidemark", "insidemark@eu.test", &[eu]).await);
        let both = id_of(&create_tagged(&admin, "Bothmark", "bothmark@eu.test", &[eu, us]).await);
        let outside =
            id_of(&create_tagged(&admin, "Outsidemark", "outsidemark@us.test", &[us]).await);
        let untagged =
            id_of(&create_tagged(&admin, "Untaggedmark", "untaggedmark@no.test", &[]).await);
        // Every permission but Administrators, scoped to EU; one of them masked too.
        let all: Vec<String> = Permission::catalogue().map(|p| p.code()).collect();
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let gid = create_group(&admin, "Everything", &refs).await.to_string();
        let eu_s = eu.to_string();
        for (email, mask) in [
            ("scoped@example.com", false),
            ("scopedmasked@example.com", true),
        ] {
            let mut fields = vec![
                ("email", email),
                ("password", USER_PASSWORD),
                ("status", "enabled"),
                ("name", "Scoped Person"),
                ("groups", gid.as_str()),
                ("allowed_tag", eu_s.as_str()),
            ];
            if mask {
                fields.push(("mask_data", "1"));
            }
            admin.get("/users/new").await;
            assert_eq!(admin.post("/users/new", &fields).await.status, 303);
            disable_2fa(&admin, email).await;
        }
        let scoped = sign_in_fully(&t, "scoped@example.com", USER_PASSWORD).await;
        let masked = sign_in_fully(&t, "scopedmasked@example.com", USER_PASSWORD).await;
        // Events about each client: an edit by the administrator.
        for id in [inside, outside, untagged] {
            admin.get(&format!("/clients/{id}/edit")).await;
            let r = admin
                .post(
                    &format!("/clients/{id}/edit"),
                    &[
                        ("first_name", "Renamed"),
                        ("last_name", "Scopetest"),
                        ("email", &format!("renamed{id}@x.test")),
                        ("phone", "+44 20 7946 0000"),
                        ("country", "GB"),
                        ("city", "York"),
                        ("role", "investor"),
                        ("status", "active"),
                        ("language", "en"),
                        ("tag", if id == inside { &eu_s } else { "" }),
                    ],
                )
                .await;
            assert!(r.status == 303 || r.status == 422, "{}", r.body);
        }
        let forbidden_ids = [outside, untagged];
        let paths: Vec<String> = vec![
            "/clients".into(),
            "/clients?per_page=100".into(),
            "/clients?by=email&q=outside".into(),
            "/clients?by=name&q=outside".into(),
            format!("/clients?tag={us}"),
            "/clients?select=1".into(),
            "/clients/export".into(),
            "/events".into(),
            "/events?category=clients".into(),
            format!("/events?target_type=client&target_id={outside}"),
            "/events/export?format=jsonl".into(),
            "/api/v1/clients?limit=100".into(),
            format!("/api/v1/clients?tags={us}"),
            "/api/v1/clients/export".into(),
            "/api/v1/events".into(),
        ];
        for (who, b) in [("scoped", &scoped), ("scoped and masked", &masked)] {
            let mut seen = String::new();
            for path in &paths {
                let r = b.get(path).await;
                assert!(r.status < 500, "{backend} {who} {path}: {}", r.status);
                seen.push_str(&everything(&r));
            }
            for id in forbidden_ids {
                for pattern in [
                    format!("/clients/{id}\""),
                    format!("\"id\":{id},\"first_name\""),
                    format!("\"target_type\":\"client\",\"target_id\":{id}"),
                    format!("\n{id},"),
                ] {
                    assert!(
                        !seen.contains(&pattern),
                        "{backend} {who}: out-of-scope client {id} shows ({pattern})"
                    );
                }
                for p in [
                    format!("/clients/{id}"),
                    format!("/clients/{id}/edit"),
                    format!("/clients/{id}/block"),
                    format!("/api/v1/clients/{id}"),
                ] {
                    assert_eq!(
                        b.get(&p).await.status,
                        404,
                        "{backend} {who} {p}: out of scope is not found"
                    );
                }
            }
            let renamed = [format!("renamed{outside}@"), format!("renamed{untagged}@")];
            for marker in ["Outsidemark", "outsidemark", "Untaggedmark", "untaggedmark"]
                .iter()
                .map(|m| m.to_string())
                .chain(renamed)
            {
                assert!(!seen.contains(&marker), "{backend} {who}: {marker} leaked");
            }
            assert!(
                b.get(&format!("/clients/{inside}")).await.status == 200,
                "{backend} {who}"
            );
        }
        let list = scoped.get("/clients").await.body;
        assert_eq!(
            total(&list),
            2,
            "{backend}: the total counts the scope only"
        );
        assert!(list.contains("Bothmark"), "{backend}");
        // Masking applies on top of the scope.
        let m = masked.get(&format!("/clients/{both}")).await.body;
        assert!(!m.contains("Bothmark") && m.contains("B****"), "{backend}");

        // Changing an out-of-scope client through the API is a 404 too; a new client needs an EU tag.
        let r = scoped
            .client
            .patch(t.url(&format!("/api/v1/clients/{outside}")))
            .header("x-csrf-token", scoped.csrf())
            .header("origin", t.url(""))
            .json(&serde_json::json!({"city": "Oslo"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{backend}");
        let r = create_tagged(&scoped, "Nope", "nope@x.test", &[]).await;
        assert_eq!(
            r.status, 422,
            "{backend}: a scoped user's client must carry one of their tags"
        );
        let r = create_tagged(&scoped, "Nope", "nope@x.test", &[us]).await;
        assert_eq!(
            r.status, 403,
            "{backend}: nor may they put another desk's tag on it"
        );
        assert!(
            create_tagged(&scoped, "Mine", "mine@x.test", &[eu])
                .await
                .status
                == 303
        );
        // Import: a row without an EU tag is refused, and nothing is imported.
        scoped.get("/clients/import").await;
        let (status, body) = upload(
            &t,
            &scoped,
            "/clients/import",
            "First name,Last name,Email,Phone,Country,Role,Language,Tags\r\n\
             Ann,Lee,ann.import@x.test,+44 20 7946 0958,GB,Investor,en,EU desk\r\n\
             Bob,Ray,bob.import@x.test,+44 20 7946 0959,GB,Investor,en,US desk\r\n",
        )
        .await;
        assert_eq!(status, 422, "{backend}: {body}");
        assert!(
            text(&body).contains("Row 3, Tags: US desk is outside your Allowed Client Tags"),
            "{backend}: {body}"
        );
        assert_eq!(
            total(&admin.get("/clients?by=email&q=ann.import").await.body),
            0,
            "{backend}: nothing imported"
        );

        // The order of authorities: a scoped user can't create an unscoped user, a tagless
        // group, nor change the administrator; nor widen their own scope.
        let r = create_user_with(
            &scoped,
            "wide@example.com",
            "Wide",
            USER_PASSWORD,
            &[gid.as_str()],
            false,
            false,
        )
        .await;
        assert_eq!(r.status, 403, "{backend}: {}", r.body);
        assert!(
            r.body.contains("every client"),
            "{backend}: the refusal says why"
        );
        scoped.get("/groups/new").await;
        let r = scoped
            .post(
                "/groups/new",
                &[("caption", "Tagless"), ("perm", "clients.view")],
            )
            .await;
        assert_eq!(r.status, 403, "{backend}");
        let r = scoped
            .post(
                "/groups/new",
                &[
                    ("caption", "EU viewers"),
                    ("perm", "clients.view"),
                    ("allowed_tag", &eu_s),
                ],
            )
            .await;
        assert_eq!(
            r.status, 303,
            "{backend}: a group within their scope is fine"
        );
        let admin_id = user_id(&admin, "root@example.com").await;
        let r = save_user(&scoped, admin_id, &[("name", "Renamed Admin")]).await;
        assert_eq!(r.status, 403, "{backend}");
        let me = user_id(&admin, "scoped@example.com").await;
        let us_s = us.to_string();
        let r = save_user(&scoped, me, &[("allowed_tag", us_s.as_str())]).await;
        assert_eq!(r.status, 403, "{backend}: no widening one's own scope");
        // A tag in a scope can't be deleted; an unused one can, after its confirmation page.
        admin.get(&format!("/clients/tags/{eu}/delete")).await;
        assert_eq!(
            admin
                .post(&format!("/clients/tags/{eu}/delete"), &[])
                .await
                .status,
            409,
            "{backend}"
        );
        let spare = create_tag(&admin, "Spare").await;
        let confirm = admin.get(&format!("/clients/tags/{spare}/delete")).await;
        assert!(
            confirm.body.contains("0 client(s) carry this tag"),
            "{backend}"
        );
        assert_eq!(
            admin
                .post(&format!("/clients/tags/{spare}/delete"), &[])
                .await
                .status,
            303
        );
    }
}

/// Select › Edit selected clients: a page's ticks change at once; "every client matching"
/// runs as a job in batches and its page reports the result; both confirm with the count first.
#[tokio::test]
async fn bulk_assign_tags_and_status() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let vip = create_tag(&admin, "VIP").await;
        let vip_s = vip.to_string();
        let mut ids = Vec::new();
        for i in 0..6 {
            ids.push(id_of(
                &create_tagged(&admin, &format!("Bulk{i}"), &format!("bulk{i}@x.test"), &[]).await,
            ));
        }
        let list = admin.get("/clients?select=1").await;
        assert!(list.body.contains("Edit selected clients"), "{backend}");
        let (a, b) = (ids[0].to_string(), ids[1].to_string());
        let fields = [
            ("selection", "ticked"),
            ("id", a.as_str()),
            ("id", b.as_str()),
            ("action", "assign_tags"),
            ("bulk_tag", vip_s.as_str()),
        ];
        let confirm = admin.post("/clients/bulk", &fields).await;
        assert_eq!(confirm.status, 200, "{backend}: {}", confirm.body);
        assert!(
            text(&confirm.body).contains("Assign Tags: VIP</strong> for <strong>2</strong>"),
            "{backend}: {}",
            confirm.body
        );
        let mut confirmed = fields.to_vec();
        confirmed.push(("confirm", "yes"));
        let done = admin.post("/clients/bulk", &confirmed).await;
        assert_eq!(done.status, 303, "{backend}");
        assert_eq!(
            total(&admin.get(&format!("/clients?tag={vip}")).await.body),
            2,
            "{backend}"
        );
        // Every client matching (no filter): a job.
        admin.get("/clients?select=1").await;
        let fields = [
            ("selection", "matching"),
            ("action", "assign_tags"),
            ("bulk_tag", vip_s.as_str()),
            ("confirm", "yes"),
        ];
        let started = admin.post("/clients/bulk", &fields).await;
        assert_eq!(started.status, 303, "{backend}: {}", started.body);
        let job = started.location.unwrap();
        assert!(job.starts_with("/clients/bulk/"), "{job}");
        let mut page = String::new();
        for _ in 0..50 {
            page = admin.get(&job).await.body;
            if page.contains("Done:") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(
            page.contains("Done: 4 client(s) changed"),
            "{backend}: {page}"
        );
        assert_eq!(
            total(&admin.get(&format!("/clients?tag={vip}")).await.body),
            6,
            "{backend}"
        );
        // Select Status: Blocked needs Clients Delete, which the admin has; one event per batch.
        admin.get("/clients?select=1").await;
        let page_ids = ids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let r = admin
            .post(
                "/clients/bulk",
                &[
                    ("selection", "page"),
                    ("page_ids", page_ids.as_str()),
                    ("action", "set_status"),
                    ("new_status", "blocked"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}");
        assert_eq!(
            total(&admin.get("/clients?status=blocked").await.body),
            6,
            "{backend}"
        );
        assert_eq!(
            events_with(&t, "Clients changed in bulk").await,
            3,
            "{backend}"
        );
        // Another user can't read the job's page.
        let gid = create_group(&admin, "Viewers", &["clients.view", "clients.update"])
            .await
            .to_string();
        let other = staff_member(
            &t,
            &admin,
            "other@example.com",
            "Other",
            &[gid.as_str()],
            false,
        )
        .await;
        assert_eq!(other.get(&job).await.status, 404, "{backend}");
        // Nothing selected, or no action: back to the list with a message, nothing changed.
        other.get("/clients?select=1").await;
        let r = other
            .post(
                "/clients/bulk",
                &[
                    ("selection", "ticked"),
                    ("action", "assign_tags"),
                    ("bulk_tag", vip_s.as_str()),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{backend}");
        assert!(
            other
                .get(r.location.as_deref().unwrap())
                .await
                .body
                .contains("Select at least one client"),
            "{backend}"
        );
    }
}

/// A job interrupted after some batches (its row left running at a cursor, its lease run out,
/// as after a crash) is resumed by the next look for unfinished jobs, from its cursor: clients
/// before the cursor are not touched again.
#[tokio::test]
async fn an_interrupted_bulk_job_resumes_from_its_cursor() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let vip = create_tag(&admin, "VIP").await;
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(id_of(
                &create_tagged(
                    &admin,
                    &format!("Resume{i}"),
                    &format!("resume{i}@x.test"),
                    &[],
                )
                .await,
            ));
        }
        let admin_id = user_id(&admin, "root@example.com").await;
        let store = store::connect(&t.db_url).await.unwrap();
        let now = t.app.now();
        // What `apply_bulk` stores for "every client" and Assign Tags (see app::bulk), with
        // two clients already done.
        let job = store
            .insert_bulk_job(&store::BulkJob {
                id: 0,
                user_id: admin_id,
                request: r#"{"field":"name","text":"","country":"","role":"","status":"","from":"","to":"","tags":[]}"#.into(),
                change: format!(r#"{{"assign_tags":[{vip}]}}"#),
                upto_id: ids[4],
                total: 5,
                done: 2,
                changed: 2,
                cursor: ids[1],
                state: store::BulkState::Running,
                message: String::new(),
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
        t.app.resume_bulk_jobs().await;
        let stored = store.bulk_job(job).await.unwrap().unwrap();
        assert_eq!(
            stored.state,
            store::BulkState::Finished,
            "{backend}: {}",
            stored.message
        );
        assert_eq!((stored.done, stored.changed), (5, 5), "{backend}");
        let tagged = admin.get(&format!("/clients?tag={vip}")).await.body;
        assert_eq!(
            total(&tagged),
            3,
            "{backend}: only the clients after the cursor"
        );
        for id in &ids[2..] {
            assert!(tagged.contains(&format!("/clients/{id}\"")), "{backend}");
        }
        let page = admin.get(&format!("/clients/bulk/{job}")).await.body;
        assert!(
            page.contains("Done: 5 client(s) changed") && page.contains("5 of 5 looked at"),
            "{backend}: {page}"
        );
    }
}

/// Issue 24: a date range that ends before it starts is an error on the field, on the client
/// list and in the event log, not an empty result.
#[tokio::test]
async fn a_backwards_date_range_is_an_error() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let r = admin.get("/clients?from=2026-12-02&to=2026-12-01").await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(r
            .body
            .contains("Registered to must be the same day as Registered from or later"));
        assert!(
            r.body.contains("<a href=\"#to\">"),
            "linked from the summary"
        );
        assert_eq!(
            admin
                .get("/clients?from=2026-12-01&to=2026-12-01")
                .await
                .status,
            200
        );
        let r = admin.get("/events?from=2026-12-02&to=2026-12-01").await;
        assert_eq!(r.status, 422, "{backend}");
        assert!(r.body.contains("To must be the same day as From or later"));
    }
}
