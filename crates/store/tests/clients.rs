//! The client store's contract, on SQLite always and on PostgreSQL when
//! BACKOFFICE_TEST_POSTGRES_URL is set: uniqueness, keyset pages, prefix search, filters,
//! sorts, counts, and all-or-nothing bulk inserts with their event.

use domain::audit::{AuditAction, Category, Event};
use domain::client::{ClientRole, ClientStatus};
use domain::Timestamp;
use rand::Rng;
use sqlx::Connection;
use std::sync::Arc;
use store::*;

/// As testkit's (which this crate can't use: testkit depends on it): SQLite always, PostgreSQL
/// when configured, and a failure when CI requires PostgreSQL but none is configured.
fn backends() -> Vec<&'static str> {
    let mut b = vec!["sqlite"];
    if std::env::var("BACKOFFICE_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
        b.push("postgres");
    } else if std::env::var("BACKOFFICE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!("BACKOFFICE_REQUIRE_POSTGRES=1 but BACKOFFICE_TEST_POSTGRES_URL is not set");
    }
    b
}

/// A fresh database, named like testkit's (`bo_test_…`) so `.ci/run` drops it afterwards.
async fn fresh(backend: &str) -> Arc<dyn Store> {
    let name = format!("bo_test_store_{:016x}", rand::thread_rng().gen::<u64>());
    let url = match backend {
        "sqlite" => {
            let dir = std::env::temp_dir().join("backoffice-tests");
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite://{}", dir.join(format!("{name}.db")).display())
        }
        _ => {
            let admin = std::env::var("BACKOFFICE_TEST_POSTGRES_URL").unwrap();
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
        }
    };
    let s = connect(&url).await.unwrap();
    s.migrate().await.unwrap();
    s
}

fn entry(event: Event) -> AuditEntry {
    AuditEntry {
        at: Timestamp(1_700_000_000_000),
        actor_id: None,
        actor_email: None,
        actor_groups: String::new(),
        ip: None,
        event,
        idempotency: None,
    }
}

/// An edit that writes `fields` whatever the row holds.
fn write(fields: ClientFields, entry: AuditEntry) -> Edit<'static, ClientRecord, ClientFields> {
    Box::new(move |_| Ok(Decision::Write(fields, entry)))
}

fn client(first: &str, last: &str, email: &str, phone: &str, country: &str, day: i64) -> NewClient {
    NewClient {
        fields: ClientFields {
            first_name: first.into(),
            last_name: last.into(),
            email: email.into(),
            email_key: email.to_lowercase(),
            phone: phone.into(),
            country: country.into(),
            city: "Somewhere".into(),
            role: if day % 2 == 0 {
                ClientRole::Investor
            } else {
                ClientRole::StrategyProvider
            },
            status: if day % 3 == 0 {
                ClientStatus::Blocked
            } else {
                ClientStatus::Active
            },
            language: "en".into(),
        },
        registered_at: Timestamp(day * 86_400_000),
    }
}

fn query(filter: ClientFilter, sort: ClientSort, limit: i64) -> ClientQuery {
    ClientQuery {
        filter,
        sort,
        limit,
        ..Default::default()
    }
}

async fn ids(s: &dyn Store, q: &ClientQuery) -> Vec<i64> {
    s.list_clients(q)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect()
}

#[tokio::test]
async fn clients_story() {
    for backend in backends() {
        let s = fresh(backend).await;
        let s = s.as_ref();
        // 60 clients in one bulk insert, with one event.
        let mut batch = Vec::new();
        for i in 0..60i64 {
            let (first, last) = match i % 4 {
                0 => ("Ann", "Lee"),
                1 => ("Łukasz", "Żak"),
                2 => ("Bob", "Annand"),
                _ => ("Zoë", "Brown"),
            };
            batch.push(client(
                first,
                last,
                &format!("{}.{i}@Example.com", first.to_lowercase()),
                &format!("+44{:08}", 20_000_000 + i),
                if i < 20 { "GB" } else { "DE" },
                i,
            ));
        }
        let e = Event::new(Category::Clients, AuditAction::Import, "Clients imported");
        assert_eq!(s.insert_clients(&batch, Some(entry(e))).await.unwrap(), 60);
        assert_eq!(
            s.count_clients(&ClientFilter::default(), 10_000)
                .await
                .unwrap(),
            60,
            "{backend}"
        );
        let events = s
            .list_events(&EventQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(events[0].event, "Clients imported");

        // Keyset pages in both directions cover every row once, in order.
        for desc in [false, true] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let q = ClientQuery {
                    after_id: after,
                    descending: desc,
                    ..query(ClientFilter::default(), ClientSort::Id, 7)
                };
                let page = ids(s, &q).await;
                if page.is_empty() {
                    break;
                }
                after = page.last().copied();
                seen.extend(page);
            }
            let mut expected = seen.clone();
            expected.sort_unstable();
            if desc {
                expected.reverse();
            }
            expected.dedup();
            assert_eq!(seen, expected, "{backend} desc={desc}");
            assert_eq!(seen.len(), 60);
        }

        // Prefix searches: "first last", last name, email, phone — case-insensitive, Unicode.
        let count = |search: ClientSearch| ClientFilter {
            search: Some(search),
            ..Default::default()
        };
        let n = |f: ClientFilter| async move { s.count_clients(&f, 10_000).await.unwrap() };
        // A filtered count stops one past its cap.
        let ann = count(ClientSearch::Name("ann".into()));
        assert_eq!(s.count_clients(&ann, 10).await.unwrap(), 11, "{backend}");
        assert_eq!(s.count_clients(&ann, 30).await.unwrap(), 30, "{backend}");
        assert_eq!(
            n(count(ClientSearch::Name("ann".into()))).await,
            30,
            "{backend}: Ann Lee + Bob Annand"
        );
        assert_eq!(n(count(ClientSearch::Name("ann lee".into()))).await, 15);
        assert_eq!(
            n(count(ClientSearch::Name("łukasz ż".into()))).await,
            15,
            "{backend}"
        );
        assert_eq!(
            n(count(ClientSearch::Name("żak".into()))).await,
            15,
            "{backend}"
        );
        assert_eq!(n(count(ClientSearch::Email("zoë.3@".into()))).await, 1);
        assert_eq!(n(count(ClientSearch::Email("ann.".into()))).await, 15);
        assert_eq!(n(count(ClientSearch::Phone("+442000000".into()))).await, 10);
        assert_eq!(n(count(ClientSearch::Phone("+49".into()))).await, 0);
        assert_eq!(
            n(count(ClientSearch::Name("%".into()))).await,
            0,
            "no wildcard"
        );

        // Filters, alone and together.
        let f = ClientFilter {
            country: Some("GB".into()),
            role: Some(ClientRole::Investor),
            ..Default::default()
        };
        assert_eq!(n(f).await, 10);
        let f = ClientFilter {
            status: Some(ClientStatus::Blocked),
            registered_from: Some(Timestamp(10 * 86_400_000)),
            registered_before: Some(Timestamp(20 * 86_400_000)),
            ..Default::default()
        };
        assert_eq!(n(f.clone()).await, 3, "days 12, 15, 18");
        let blocked = s
            .list_clients(&query(f, ClientSort::Registered, 10))
            .await
            .unwrap();
        assert!(blocked.iter().all(|c| c.status == ClientStatus::Blocked));

        // Sorts, with OFFSET pages.
        let by_name = s
            .list_clients(&query(ClientFilter::default(), ClientSort::Name, 60))
            .await
            .unwrap();
        let names: Vec<String> = by_name
            .iter()
            .map(|c| c.full_name().to_lowercase())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "{backend}");
        let by_email = s
            .list_clients(&ClientQuery {
                descending: true,
                ..query(ClientFilter::default(), ClientSort::Email, 5)
            })
            .await
            .unwrap();
        assert_eq!(
            by_email[0].email, "łukasz.9@Example.com",
            "{backend}: bytewise order"
        );
        let second = s
            .list_clients(&ClientQuery {
                offset: 5,
                ..query(ClientFilter::default(), ClientSort::Registered, 5)
            })
            .await
            .unwrap();
        assert_eq!(
            second
                .iter()
                .map(|c| c.registered_at.0 / 86_400_000)
                .collect::<Vec<_>>(),
            vec![5, 6, 7, 8, 9]
        );

        // Email unique case-insensitively, on insert and on update; a failing bulk insert
        // writes nothing.
        let dup = client("Ann", "Again", "ANN.0@example.COM", "+4420999999", "GB", 1);
        let e = Event::new(Category::Clients, AuditAction::Add, "Client created");
        assert!(matches!(
            s.insert_client(&dup, entry(e.clone())).await,
            Err(StoreError::Duplicate { field: "email" })
        ));
        let fresh_one = client("New", "One", "new.one@example.com", "+4420999998", "GB", 1);
        let r = s
            .insert_clients(&[fresh_one.clone(), dup.clone()], Some(entry(e.clone())))
            .await;
        assert!(
            matches!(r, Err(StoreError::Duplicate { field: "email" })),
            "{backend}"
        );
        assert_eq!(
            s.count_clients(&ClientFilter::default(), 10_000)
                .await
                .unwrap(),
            60,
            "all or nothing"
        );
        let id = s.insert_client(&fresh_one, entry(e)).await.unwrap();
        assert_eq!(
            s.count_clients(&ClientFilter::default(), 10_000)
                .await
                .unwrap(),
            61,
            "{backend}: the kept total follows single inserts too"
        );
        let mut fields = fresh_one.fields.clone();
        fields.email = "Ann.0@example.com".into();
        fields.email_key = "ann.0@example.com".into();
        let upd = Event::new(Category::Clients, AuditAction::Update, "Client updated");
        assert!(matches!(
            s.update_client(id, write(fields.clone(), entry(upd.clone())))
                .await,
            Err(StoreError::Duplicate { field: "email" })
        ));
        fields = fresh_one.fields.clone();
        fields.city = "Leeds".into();
        fields.status = ClientStatus::Blocked;
        let saved = s
            .update_client(id, write(fields.clone(), entry(upd.clone())))
            .await
            .unwrap();
        let got = s.client_by_id(id).await.unwrap().unwrap();
        assert_eq!(saved, got, "{backend}: the answer is the row as written");
        assert_eq!(got.version, 2, "{backend}: one edit, one version up");
        assert_eq!(
            (got.city.as_str(), got.status),
            ("Leeds", ClientStatus::Blocked)
        );
        assert!(matches!(
            s.update_client(999_999, write(fields, entry(upd))).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(s.client_by_id(999_999).await.unwrap(), None);

        let taken = s
            .taken_client_emails(&["ann.0@example.com".into(), "nobody@example.com".into()])
            .await
            .unwrap();
        assert_eq!(taken, vec!["ann.0@example.com".to_string()]);
        assert_eq!(s.max_client_id().await.unwrap(), id);
    }
}
