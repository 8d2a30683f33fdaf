//! Clients and tags: uniqueness, keyset pages, prefix search, filters, sorts, counts,
//! all-or-nothing bulk inserts with their event, scopes and bulk changes.

use domain::audit::{AuditAction, Category, Event};
use domain::client::{ClientRole, ClientStatus};
use domain::{ClientScope, Timestamp};
use std::sync::Arc;
use store::*;

use crate::support::write;

/// A fresh, migrated store.
async fn fresh(backend: &str) -> Arc<dyn Store> {
    let s = connect(&testkit::db::fresh(backend).await).await.unwrap();
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
            tags: Vec::new(),
        },
        registered_at: Timestamp(day * 86_400_000),
    }
}

fn all_events() -> EventVisibility {
    EventVisibility {
        viewer_id: 0,
        client_scope: ClientScope::All,
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
    s.list_clients(&ClientScope::All, q)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect()
}

/// Every way a scope is applied agrees with the clients' tags: the plain scoped list (read from
/// the tags' index), a scoped email search and its count (read from the tags' email index) and a
/// scoped filter (checked on the row's copy of its tags) select exactly the clients that carry
/// one of the scope's tags: the copies the triggers keep never drift from `client_tags`.
async fn assert_scope_paths_agree(
    s: &dyn Store,
    backend: &str,
    scope: &ClientScope,
    email_prefix: &str,
) {
    let ClientScope::Tags(tags) = scope else {
        unreachable!("a tag scope")
    };
    let everyone = s
        .list_clients(
            &ClientScope::All,
            &query(ClientFilter::default(), ClientSort::Id, 10_000),
        )
        .await
        .unwrap();
    let expected: Vec<i64> = everyone
        .iter()
        .filter(|c| c.tags.iter().any(|t| tags.contains(&t.id)))
        .map(|c| c.id)
        .collect();
    let sorted_ids = |clients: Vec<ClientRecord>| {
        let mut ids: Vec<i64> = clients.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids
    };
    let plain = query(ClientFilter::default(), ClientSort::Id, 10_000);
    let search = query(
        ClientFilter {
            search: Some(ClientSearch::Email(email_prefix.into())),
            ..Default::default()
        },
        ClientSort::Email,
        10_000,
    );
    let filtered = query(
        ClientFilter {
            country: Some("GB".into()),
            ..Default::default()
        },
        ClientSort::Id,
        10_000,
    );
    let with_prefix: Vec<i64> = everyone
        .iter()
        .filter(|c| expected.contains(&c.id) && c.email.to_lowercase().starts_with(email_prefix))
        .map(|c| c.id)
        .collect();
    for (how, q, expected) in [
        ("list", plain, &expected),
        ("search", search.clone(), &with_prefix),
        ("filter", filtered, &expected),
    ] {
        let seen = sorted_ids(s.list_clients(scope, &q).await.unwrap());
        assert_eq!(&seen, expected, "{backend}: scoped {how} of {tags:?}");
    }
    // The search's count (read from the tags' email index) is exact here.
    assert_eq!(
        s.count_clients(scope, &search.filter, 1000).await.unwrap(),
        ClientCount {
            n: with_prefix.len() as i64,
            exact: true
        },
        "{backend}: scoped search count of {tags:?}"
    );
    for id in everyone.iter().map(|c| c.id) {
        assert_eq!(
            s.client_by_id(scope, id).await.unwrap().is_some(),
            expected.contains(&id),
            "{backend}: detail of {id} in {tags:?}"
        );
    }
}

async fn clients_story(backend: &'static str) {
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
        s.count_clients(&ClientScope::All, &ClientFilter::default(), 10_000)
            .await
            .unwrap()
            .n,
        60,
        "{backend}"
    );
    let events = s
        .list_events(
            &all_events(),
            &EventQuery {
                limit: 10,
                ..Default::default()
            },
        )
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
    let n = |f: ClientFilter| async move {
        s.count_clients(&ClientScope::All, &f, 10_000)
            .await
            .unwrap()
            .n
    };
    // A filtered count stops one past its cap.
    let ann = count(ClientSearch::Name("ann".into()));
    assert_eq!(
        s.count_clients(&ClientScope::All, &ann, 10)
            .await
            .unwrap()
            .n,
        11,
        "{backend}"
    );
    assert_eq!(
        s.count_clients(&ClientScope::All, &ann, 30)
            .await
            .unwrap()
            .n,
        30,
        "{backend}"
    );
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
        .list_clients(&ClientScope::All, &query(f, ClientSort::Registered, 10))
        .await
        .unwrap();
    assert!(blocked.iter().all(|c| c.status == ClientStatus::Blocked));

    // Sorts, with OFFSET pages.
    let by_name = s
        .list_clients(
            &ClientScope::All,
            &query(ClientFilter::default(), ClientSort::Name, 60),
        )
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
        .list_clients(
            &ClientScope::All,
            &ClientQuery {
                descending: true,
                ..query(ClientFilter::default(), ClientSort::Email, 5)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        by_email[0].email, "łukasz.9@Example.com",
        "{backend}: bytewise order"
    );
    let second = s
        .list_clients(
            &ClientScope::All,
            &ClientQuery {
                offset: 5,
                ..query(ClientFilter::default(), ClientSort::Registered, 5)
            },
        )
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
        s.count_clients(&ClientScope::All, &ClientFilter::default(), 10_000)
            .await
            .unwrap()
            .n,
        60,
        "all or nothing"
    );
    let id = s.insert_client(&fresh_one, entry(e)).await.unwrap();
    assert_eq!(
        s.count_clients(&ClientScope::All, &ClientFilter::default(), 10_000)
            .await
            .unwrap()
            .n,
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
    let got = s
        .client_by_id(&ClientScope::All, id)
        .await
        .unwrap()
        .unwrap();
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
    assert_eq!(
        s.client_by_id(&ClientScope::All, 999_999).await.unwrap(),
        None
    );

    let taken = s
        .taken_client_emails(&["ann.0@example.com".into(), "nobody@example.com".into()])
        .await
        .unwrap();
    assert_eq!(taken, vec!["ann.0@example.com".to_string()]);
    assert_eq!(s.max_client_id().await.unwrap(), id);
}

/// Tags: counters kept by every write, the scope applied to every read, scope holders protect
/// a tag from deletion, and a bulk batch changes exactly its clients with one event and moves
/// its job's cursor.
async fn tags_scope_and_bulk_story(backend: &'static str) {
    let s = fresh(backend).await;
    let s = s.as_ref();
    let tag = |c: &str| {
        Event::new(Category::Clients, AuditAction::Add, "Tag created").change("caption", "", c)
    };
    let eu = s
        .insert_tag("EU desk", entry(tag("EU desk")))
        .await
        .unwrap();
    let vip = s.insert_tag("VIP", entry(tag("VIP"))).await.unwrap();
    assert!(
        matches!(
            s.insert_tag("vip", entry(tag("vip"))).await,
            Err(StoreError::Duplicate { field: "caption" })
        ),
        "{backend}: captions are unique whatever the case"
    );
    // 30 clients: the first 10 carry EU, 5..15 VIP, the rest nothing.
    let batch: Vec<NewClient> = (0..30i64)
        .map(|i| {
            let mut c = client(
                "Ann",
                "Lee",
                &format!("t{i}@example.com"),
                &format!("+44{:08}", 30_000_000 + i),
                "GB",
                i,
            );
            if i < 10 {
                c.fields.tags.push(eu);
            }
            if (5..15).contains(&i) {
                c.fields.tags.push(vip);
            }
            c
        })
        .collect();
    s.insert_clients(&batch, None).await.unwrap();
    let counts = |tags: Vec<TagRecord>| {
        tags.iter()
            .map(|t| (t.caption.clone(), t.clients))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        counts(s.list_tags().await.unwrap()),
        vec![("EU desk".into(), 10), ("VIP".into(), 10)],
        "{backend}"
    );

    let eu_only = ClientScope::Tags([eu].into());
    let both = ClientScope::Tags([eu, vip].into());
    for scope in [&eu_only, &ClientScope::Tags([vip].into()), &both] {
        assert_scope_paths_agree(s, backend, scope, "t").await;
    }
    let all = query(ClientFilter::default(), ClientSort::Id, 100);
    let seen = ids(s, &all).await;
    let mut scoped = s.list_clients(&eu_only, &all).await.unwrap();
    assert_eq!(scoped.len(), 10, "{backend}");
    assert!(
        scoped.iter().all(|c| c.tags.iter().any(|t| t.id == eu)),
        "{backend}"
    );
    assert_eq!(
        s.count_clients(&eu_only, &ClientFilter::default(), 1000)
            .await
            .unwrap()
            .n,
        10,
        "{backend}"
    );
    assert_eq!(
        s.count_clients(&ClientScope::none(), &ClientFilter::default(), 1000)
            .await
            .unwrap()
            .n,
        0
    );
    let outside = seen[20];
    assert_eq!(
        s.client_by_id(&eu_only, outside).await.unwrap(),
        None,
        "{backend}: out of scope is not found"
    );
    assert!(s.client_by_id(&eu_only, seen[0]).await.unwrap().is_some());
    let vip_filter = ClientFilter {
        tags: vec![vip],
        ..Default::default()
    };
    assert_eq!(
        s.count_clients(&eu_only, &vip_filter, 1000)
            .await
            .unwrap()
            .n,
        5,
        "{backend}: scope and filter both hold"
    );

    // An edit replaces a client's tags and keeps the counters.
    let first = scoped.remove(0);
    let mut fields = batch[0].fields.clone();
    fields.tags = vec![vip];
    let event = Event::new(Category::Clients, AuditAction::Update, "Client updated");
    s.update_client(first.id, write(fields, entry(event)))
        .await
        .unwrap();
    assert_eq!(
        counts(s.list_tags().await.unwrap()),
        vec![("EU desk".into(), 9), ("VIP".into(), 11)],
        "{backend}"
    );
    for scope in [&eu_only, &ClientScope::Tags([vip].into()), &both] {
        assert_scope_paths_agree(s, backend, scope, "t").await;
    }
    // A scoped email search reads each tag's clients by email: it follows an email change.
    let mut moved = s
        .client_by_id(&ClientScope::All, first.id)
        .await
        .unwrap()
        .unwrap();
    let mut fields = batch[0].fields.clone();
    fields.tags = moved.tags.iter().map(|t| t.id).collect();
    fields.email = "moved@example.com".into();
    fields.email_key = "moved@example.com".into();
    let event = Event::new(Category::Clients, AuditAction::Update, "Client updated");
    s.update_client(first.id, write(fields, entry(event)))
        .await
        .unwrap();
    let by_email = |prefix: &str| {
        query(
            ClientFilter {
                search: Some(ClientSearch::Email(prefix.into())),
                ..Default::default()
            },
            ClientSort::Email,
            100,
        )
    };
    let vip_only = ClientScope::Tags([vip].into());
    moved = s
        .list_clients(&vip_only, &by_email("mov"))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(moved.id, first.id, "{backend}");
    assert_eq!(
        s.count_clients(&vip_only, &by_email("mov").filter, 1000)
            .await
            .unwrap(),
        ClientCount { n: 1, exact: true },
        "{backend}"
    );
    assert!(
        s.list_clients(&vip_only, &by_email("t0@"))
            .await
            .unwrap()
            .is_empty(),
        "{backend}: the old address is gone from the tag's email index"
    );
    for scope in [&eu_only, &vip_only, &both] {
        assert_scope_paths_agree(s, backend, scope, "t").await;
    }

    // A bulk batch: assign EU to every VIP client, 4 at a time, with a job's cursor.
    let job = BulkJob {
        id: 0,
        user_id: 0,
        request: "{}".into(),
        change: "{}".into(),
        upto_id: i64::MAX,
        total: 11,
        done: 0,
        changed: 0,
        cursor: 0,
        state: BulkState::Running,
        message: String::new(),
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    };
    // The job table references users: make one.
    let uid = s
        .insert_user(
            NewUser {
                email: "bulk@example.com".into(),
                email_key: "bulk@example.com".into(),
                name: "Bulk".into(),
                password_hash: "x".into(),
                status: domain::UserStatus::Enabled,
                two_factor: domain::TwoFactor::Email,
                mask_data: false,
                ip_whitelist: Default::default(),
                must_change_password: false,
                created_by: None,
                group_ids: vec![],
                allowed_tag_ids: vec![vip],
                created_at: Timestamp(0),
            },
            None,
            entry(Event::new(
                Category::Users,
                AuditAction::Add,
                "User created",
            )),
        )
        .await
        .unwrap();
    assert_eq!(
        s.scope_sources_of_user(uid).await.unwrap(),
        ScopeSources {
            own: vec![vip],
            groups: vec![]
        }
    );
    assert!(
        matches!(
            s.delete_tag(vip, write((), entry(tag("x")))).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: a tag in a scope stays"
    );
    let job_id = s
        .insert_bulk_job(&BulkJob {
            user_id: uid,
            ..job
        })
        .await
        .unwrap();
    let claimed = s
        .claim_bulk_job(Timestamp(1), Timestamp(60_001))
        .await
        .unwrap()
        .expect("claimable");
    assert_eq!(claimed.id, job_id);
    assert!(
        s.claim_bulk_job(Timestamp(2), Timestamp(60_002))
            .await
            .unwrap()
            .is_none(),
        "{backend}: leased"
    );
    let change = BulkChange::AssignTags(vec![eu]);
    let mut cursor = 0;
    let mut changed = 0;
    let mut batches = 0;
    loop {
        let b = Batch {
            scope: &ClientScope::All,
            filter: &vip_filter,
            ids: &[],
            after_id: cursor,
            upto_id: i64::MAX,
            limit: 4,
            change: &change,
            job_id: Some(job_id),
            at: Timestamp(5),
        };
        let ev = |o: &BatchOutcome| {
            entry(
                Event::new(
                    Category::Clients,
                    AuditAction::Update,
                    "Clients changed in bulk",
                )
                .change("clients changed", "", o.changed.to_string()),
            )
        };
        let o = s.apply_client_batch(b, &ev).await.unwrap();
        let Some(last) = o.last_id else { break };
        cursor = last;
        changed += o.changed;
        batches += 1;
    }
    assert_eq!(batches, 3, "{backend}: 11 clients in batches of 4");
    assert_eq!(changed, 6, "{backend}: 5 VIP clients already carried EU");
    let stored = s.bulk_job(job_id).await.unwrap().unwrap();
    assert_eq!(
        (stored.done, stored.changed, stored.cursor),
        (11, 6, cursor),
        "{backend}"
    );
    assert_eq!(
        counts(s.list_tags().await.unwrap()),
        vec![("EU desk".into(), 15), ("VIP".into(), 11)],
        "{backend}"
    );
    for scope in [&eu_only, &ClientScope::Tags([vip].into()), &both] {
        assert_scope_paths_agree(s, backend, scope, "t").await;
    }
    // Removing and setting status; only clients that change count.
    let remove = BulkChange::RemoveTags(vec![vip]);
    let b = Batch {
        scope: &eu_only,
        filter: &ClientFilter::default(),
        ids: &[],
        after_id: 0,
        upto_id: i64::MAX,
        limit: 100,
        change: &remove,
        job_id: None,
        at: Timestamp(6),
    };
    let ev = |_: &BatchOutcome| {
        entry(Event::new(
            Category::Clients,
            AuditAction::Update,
            "Clients changed in bulk",
        ))
    };
    let o = s.apply_client_batch(b, &ev).await.unwrap();
    assert_eq!((o.matched, o.changed), (15, 11), "{backend}");
    assert_eq!(
        counts(s.list_tags().await.unwrap()),
        vec![("EU desk".into(), 15), ("VIP".into(), 0)]
    );
    for scope in [&eu_only, &ClientScope::Tags([vip].into()), &both] {
        assert_scope_paths_agree(s, backend, scope, "t").await;
    }
    s.end_bulk_job(job_id, BulkState::Finished, "Done", Timestamp(7))
        .await
        .unwrap();
    assert!(s
        .claim_bulk_job(Timestamp(100_000), Timestamp(160_000))
        .await
        .unwrap()
        .is_none());

    // Events about out-of-scope clients are hidden from a scoped viewer.
    let about = |id: i64| {
        entry(
            Event::new(Category::Clients, AuditAction::Update, "Client updated")
                .target("client", id, "x"),
        )
    };
    s.append_event(about(seen[0])).await.unwrap();
    s.append_event(about(outside)).await.unwrap();
    let q = EventQuery {
        target_type: Some("client".into()),
        limit: 100,
        ..Default::default()
    };
    let visible = s
        .list_events(
            &EventVisibility {
                viewer_id: uid,
                client_scope: eu_only.clone(),
            },
            &q,
        )
        .await
        .unwrap();
    assert!(
        visible.iter().all(|e| e.target_id != Some(outside)),
        "{backend}"
    );
    assert!(
        visible.iter().any(|e| e.target_id == Some(seen[0])),
        "{backend}"
    );
    let bulk_q = EventQuery {
        event: Some("Clients changed in bulk".into()),
        limit: 100,
        ..Default::default()
    };
    assert!(
        s.list_events(
            &EventVisibility {
                viewer_id: uid,
                client_scope: eu_only.clone()
            },
            &bulk_q
        )
        .await
        .unwrap()
        .is_empty(),
        "{backend}: a change to many clients by someone else is hidden from a scoped viewer"
    );

    // Deleting a tag takes it off its clients everywhere a scope looks.
    s.delete_tag(eu, write((), entry(tag("x")))).await.unwrap();
    for scope in [&eu_only, &ClientScope::Tags([vip].into()), &both] {
        assert_scope_paths_agree(s, backend, scope, "t").await;
    }
    assert!(
        s.list_clients(&both, &all).await.unwrap().is_empty(),
        "{backend}"
    );
}

/// Counts by tags alone (read from the tags' index) agree with counting the clients, exactly up
/// to the cap and `cap + 1` beyond it, for every mix of scope and tag filter.
async fn counts_by_tags_match_counting_clients(backend: &'static str) {
    let s = fresh(backend).await;
    let s = s.as_ref();
    let tag = |c: &str| {
        entry(
            Event::new(Category::Clients, AuditAction::Add, "Tag created").change("caption", "", c),
        )
    };
    let a = s.insert_tag("A", tag("A")).await.unwrap();
    let b = s.insert_tag("B", tag("B")).await.unwrap();
    let c = s.insert_tag("C", tag("C")).await.unwrap();
    let batch: Vec<NewClient> = (0..40i64)
        .map(|i| {
            let mut n = client(
                "Ann",
                "Lee",
                &format!("c{i}@example.com"),
                &format!("+44{:08}", 40_000_000 + i),
                "GB",
                i,
            );
            for (t, every) in [(a, 2), (b, 3), (c, 5)] {
                if i % every == 0 {
                    n.fields.tags.push(t);
                }
            }
            n
        })
        .collect();
    s.insert_clients(&batch, None).await.unwrap();
    let clients = s
        .list_clients(
            &ClientScope::All,
            &query(ClientFilter::default(), ClientSort::Id, 100),
        )
        .await
        .unwrap();
    let scopes = [
        ClientScope::All,
        ClientScope::none(),
        ClientScope::Tags([a].into()),
        ClientScope::Tags([b, c].into()),
    ];
    let filters = [vec![], vec![a], vec![b, c], vec![c]];
    for scope in &scopes {
        for tags in &filters {
            let expected = clients
                .iter()
                .filter(|k| {
                    scope.admits(&k.tag_ids())
                        && (tags.is_empty() || tags.iter().any(|t| k.tag_ids().contains(t)))
                })
                .count() as i64;
            let f = ClientFilter {
                tags: tags.clone(),
                ..Default::default()
            };
            for cap in [3, 1000] {
                let counted = s.count_clients(scope, &f, cap).await.unwrap().n;
                // Tags alone are counted from the tags' index: exact up to the cap.
                // The unfiltered, unscoped total is a kept counter: always exact.
                let exact = scope.is_all() && tags.is_empty();
                let want = if exact {
                    expected
                } else {
                    expected.min(cap + 1)
                };
                assert_eq!(counted, want, "{backend}: {scope:?} {tags:?} cap {cap}");
            }
            assert_eq!(
                s.list_clients(scope, &query(f.clone(), ClientSort::Id, 100))
                    .await
                    .unwrap()
                    .len() as i64,
                expected,
                "{backend}: {scope:?} {tags:?}"
            );
        }
    }
}

/// A scoped count with an email search is exact up to the cap; with another search it looks at
/// the first `cap + 1` clients the search selects: exact when there are no more, otherwise a
/// lower bound that never counts an out-of-scope client.
async fn scoped_search_counts_are_exact_or_honest_lower_bounds(backend: &'static str) {
    let s = fresh(backend).await;
    let s = s.as_ref();
    let a = s
        .insert_tag(
            "A",
            entry(Event::new(
                Category::Clients,
                AuditAction::Add,
                "Tag created",
            )),
        )
        .await
        .unwrap();
    let batch: Vec<NewClient> = (0..50i64)
        .map(|i| {
            let mut c = client(
                "Ann",
                "Lee",
                &format!("s{i:02}@example.com"),
                &format!("+44{:08}", 50_000_000 + i),
                "GB",
                i,
            );
            if i % 5 == 0 {
                c.fields.tags.push(a);
            }
            c
        })
        .collect();
    s.insert_clients(&batch, None).await.unwrap();
    let scope = ClientScope::Tags([a].into());
    let search = ClientFilter {
        search: Some(ClientSearch::Email("s".into())),
        ..Default::default()
    };
    assert_eq!(
        s.count_clients(&scope, &search, 100).await.unwrap(),
        ClientCount { n: 10, exact: true },
        "{backend}"
    );
    // An email search is counted from the tags' email index: exact up to the cap.
    assert_eq!(
        s.count_clients(&scope, &search, 5).await.unwrap(),
        ClientCount { n: 6, exact: false },
        "{backend}"
    );
    // Any other search: the in-scope clients among the first cap + 1 it selects.
    let by_phone = ClientFilter {
        search: Some(ClientSearch::Phone("+44".into())),
        ..Default::default()
    };
    assert_eq!(
        s.count_clients(&scope, &by_phone, 100).await.unwrap(),
        ClientCount { n: 10, exact: true },
        "{backend}"
    );
    let low = s.count_clients(&scope, &by_phone, 20).await.unwrap();
    assert!(
        !low.exact && low.n <= 10 && low.n >= 4,
        "{backend}: {low:?}"
    );
    let narrow = ClientFilter {
        search: Some(ClientSearch::Email("s1".into())),
        ..Default::default()
    };
    assert_eq!(
        s.count_clients(&scope, &narrow, 100).await.unwrap(),
        ClientCount { n: 2, exact: true },
        "{backend}"
    );
}

/// A scoped list pages through the same clients, in the same order, whichever way it is read:
/// keyset pages (both directions) and numbered pages over two scope tags equal the whole list.
async fn scoped_pages_follow_the_whole_list(backend: &'static str) {
    let s = fresh(backend).await;
    let s = s.as_ref();
    let tag = |c: &str| {
        entry(
            Event::new(Category::Clients, AuditAction::Add, "Tag created").change("caption", "", c),
        )
    };
    let a = s.insert_tag("A", tag("A")).await.unwrap();
    let b = s.insert_tag("B", tag("B")).await.unwrap();
    let batch: Vec<NewClient> = (0..30i64)
        .map(|i| {
            let mut c = client(
                "Ann",
                "Lee",
                &format!("p{i}@example.com"),
                &format!("+44{:08}", 60_000_000 + i),
                "GB",
                i,
            );
            if i % 3 == 0 {
                c.fields.tags.push(a);
            }
            if i % 4 == 0 {
                c.fields.tags.push(b);
            }
            c
        })
        .collect();
    s.insert_clients(&batch, None).await.unwrap();
    let scope = ClientScope::Tags([a, b].into());
    for descending in [false, true] {
        let whole: Vec<i64> = s
            .list_clients(
                &scope,
                &ClientQuery {
                    descending,
                    ..query(ClientFilter::default(), ClientSort::Id, 100)
                },
            )
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(
            whole.len(),
            15,
            "{backend}: 10 with A, 8 with B, 3 with both"
        );
        let mut keyset = Vec::new();
        let mut after = None;
        loop {
            let q = ClientQuery {
                descending,
                after_id: after,
                ..query(ClientFilter::default(), ClientSort::Id, 4)
            };
            let page: Vec<i64> = s
                .list_clients(&scope, &q)
                .await
                .unwrap()
                .iter()
                .map(|c| c.id)
                .collect();
            if page.is_empty() {
                break;
            }
            after = page.last().copied();
            keyset.extend(page);
        }
        assert_eq!(
            keyset, whole,
            "{backend}: keyset pages, descending {descending}"
        );
        let mut numbered = Vec::new();
        for n in 0..4 {
            let q = ClientQuery {
                descending,
                offset: n * 4,
                ..query(ClientFilter::default(), ClientSort::Id, 4)
            };
            numbered.extend(
                s.list_clients(&scope, &q)
                    .await
                    .unwrap()
                    .iter()
                    .map(|c| c.id),
            );
        }
        assert_eq!(
            numbered, whole,
            "{backend}: numbered pages, descending {descending}"
        );
    }
}

/// Text that JSON must escape or carry as it is: quotes, backslashes, line breaks, tabs,
/// control characters, non-ASCII letters, emoji, and what looks like JSON or a formula.
const AWKWARD: [&str; 8] = [
    "Zoë \"the Quote\"",
    "O'Neil\nNew\tLine\\Back\r",
    "日本語 🎉 Łukasz",
    "\u{1}\u{1f}ctl\u{7f}",
    "[1,\"x\"]",
    "=HYPERLINK(\"http://x\",\"y\")",
    "\u{2028}sep\u{2029}",
    "",
];

/// An export page is one JSON value made by the database and decoded once: every client (and
/// event) comes back exactly as the list reads it, whatever its text holds, in the list's
/// order, within the same scope and filter, page after page.
async fn export_pages_hold_what_the_list_holds(backend: &'static str) {
    let s = fresh(backend).await;
    let s = s.as_ref();
    let tag = |c: &str| {
        Event::new(Category::Clients, AuditAction::Add, "Tag created").change("caption", "", c)
    };
    // Captions whose order differs from their ids' order.
    let zed = s.insert_tag("Zed \"desk\"", entry(tag("z"))).await.unwrap();
    let alpha = s.insert_tag("alpha ü", entry(tag("a"))).await.unwrap();
    let mid = s.insert_tag("Mid\\desk", entry(tag("m"))).await.unwrap();
    let mut clients = Vec::new();
    for (i, text) in AWKWARD.iter().enumerate() {
        let mut c = client(
            text,
            &format!("{text} Last"),
            &format!("c{i}@example.com"),
            &format!("+44 20 7946 0{i:03}"),
            if i % 2 == 0 { "GB" } else { "DE" },
            i as i64 + 1,
        );
        c.fields.city = text.to_string();
        c.fields.tags = match i % 4 {
            0 => vec![zed, alpha, mid],
            1 => vec![zed],
            2 => vec![mid, alpha],
            _ => vec![],
        };
        c.fields.tags.sort_unstable();
        clients.push(c);
    }
    s.insert_clients(&clients, Some(entry(tag("import"))))
        .await
        .unwrap();
    for (i, text) in AWKWARD.into_iter().enumerate() {
        let e = Event::new(Category::Clients, AuditAction::Update, text)
            .target("client", i as i64 + 1, text)
            .personal_change(
                "first name",
                domain::audit::PersonalKind::Name,
                text,
                "after \"x\"",
            )
            .change("city", "a\nb", text);
        let mut en = entry(e);
        en.actor_email = Some(format!("{text}@x"));
        en.actor_groups = text.to_string();
        en.ip = Some(text.to_string());
        s.append_event(en).await.unwrap();
    }

    let scopes = [ClientScope::All, ClientScope::Tags([zed].into())];
    let filters = [
        ClientFilter::default(),
        ClientFilter {
            country: Some("GB".into()),
            ..Default::default()
        },
    ];
    for scope in &scopes {
        for filter in &filters {
            let listed = s
                .list_clients(scope, &query(filter.clone(), ClientSort::Id, 100))
                .await
                .unwrap();
            assert!(!listed.is_empty());
            let mut exported = Vec::new();
            let mut after = None;
            loop {
                let page = s
                    .export_clients_page(scope, filter, after, 3)
                    .await
                    .unwrap();
                let rows = page.decode().unwrap();
                assert_eq!(page.rows, rows.clients.len());
                assert_eq!(page.last_id, rows.clients.last().map(|c| c.id));
                let mut order = Vec::new();
                for c in &rows.clients {
                    let tags: Vec<String> = rows.tags_of(c, &mut order).map(String::from).collect();
                    exported.push((
                        c.id,
                        [
                            c.first_name.to_string(),
                            c.last_name.to_string(),
                            c.email.to_string(),
                            c.phone.to_string(),
                            c.country.to_string(),
                            c.city.to_string(),
                            c.language.to_string(),
                        ],
                        c.role,
                        c.status,
                        c.registered_at,
                        tags,
                    ));
                }
                if page.rows < 3 {
                    break;
                }
                after = page.last_id;
            }
            let expected: Vec<_> = listed
                .iter()
                .map(|c| {
                    (
                        c.id,
                        [
                            c.first_name.clone(),
                            c.last_name.clone(),
                            c.email.clone(),
                            c.phone.clone(),
                            c.country.clone(),
                            c.city.clone(),
                            c.language.clone(),
                        ],
                        c.role,
                        c.status,
                        c.registered_at,
                        c.tags.iter().map(|t| t.caption.clone()).collect::<Vec<_>>(),
                    )
                })
                .collect();
            assert_eq!(exported, expected, "{backend} {scope:?} {filter:?}");
        }
    }
    // Tags in caption order: alpha ü, Mid\desk, Zed "desk".
    let first = s
        .export_clients_page(&ClientScope::All, &ClientFilter::default(), None, 1)
        .await
        .unwrap();
    let rows = first.decode().unwrap();
    let mut order = Vec::new();
    let tags: Vec<&str> = rows.tags_of(&rows.clients[0], &mut order).collect();
    assert_eq!(tags, ["alpha ü", "Mid\\desk", "Zed \"desk\""]);
    assert_eq!(rows.clients[0].first_name, AWKWARD[0]);

    for scope in &scopes {
        let visible = EventVisibility {
            viewer_id: 0,
            client_scope: scope.clone(),
        };
        let listed = s
            .list_events(
                &visible,
                &EventQuery {
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut exported = Vec::new();
        let mut before_id = None;
        loop {
            let q = EventQuery {
                limit: 4,
                before_id,
                ..Default::default()
            };
            let page = s.export_events_page(&visible, &q).await.unwrap();
            let rows = page.decode().unwrap();
            assert_eq!(page.rows, rows.len());
            assert_eq!(page.last_id, rows.last().map(|e| e.id));
            for e in &rows {
                exported.push((
                    e.id,
                    Timestamp(e.at),
                    e.actor_id,
                    e.actor_email.as_deref().map(String::from),
                    e.actor_groups.to_string(),
                    [
                        e.category.to_string(),
                        e.action.to_string(),
                        e.event.to_string(),
                    ],
                    e.target_type.as_deref().map(String::from),
                    e.target_id,
                    e.target_label.as_deref().map(String::from),
                    e.details.to_string(),
                    e.ip.as_deref().map(String::from),
                ));
            }
            if page.rows < 4 {
                break;
            }
            before_id = page.last_id;
        }
        let expected: Vec<_> = listed
            .into_iter()
            .map(|e| {
                (
                    e.id,
                    e.at,
                    e.actor_id,
                    e.actor_email,
                    e.actor_groups,
                    [e.category, e.action, e.event],
                    e.target_type,
                    e.target_id,
                    e.target_label,
                    e.details,
                    e.ip,
                )
            })
            .collect();
        // The scoped viewer sees the events about its scope's clients only.
        assert!(expected.len() >= 2, "{scope:?}");
        assert_eq!(exported, expected, "{backend} {scope:?}");
    }
}

/// The Dashboard's client figures, every client's and each scope's, agree with counting the
/// clients after every kind of write: bulk and single inserts, an edit of status, country and
/// tags, an edit of the email alone, bulk status and tag changes, and a tag deleted.
async fn dashboard_figures_follow_every_write(backend: &'static str) {
    let s = fresh(backend).await;
    let s = s.as_ref();
    let tag = |c: &str| {
        entry(
            Event::new(Category::Clients, AuditAction::Add, "Tag created").change("caption", "", c),
        )
    };
    let a = s.insert_tag("A", tag("A")).await.unwrap();
    let b = s.insert_tag("B", tag("B")).await.unwrap();
    let c = s.insert_tag("C", tag("C")).await.unwrap();
    let tags = [a, b, c];
    let batch: Vec<NewClient> = (0..30i64)
        .map(|i| {
            let mut n = client(
                "Ann",
                "Lee",
                &format!("f{i}@example.com"),
                &format!("+44{:08}", 50_000_000 + i),
                ["GB", "DE", "FR"][i as usize % 3],
                i / 2,
            );
            for (t, every) in [(a, 2), (b, 3), (c, 5)] {
                if i % every == 0 {
                    n.fields.tags.push(t);
                }
            }
            n
        })
        .collect();
    s.insert_clients(&batch, None).await.unwrap();
    assert_figures_agree(s, backend, &tags, "bulk insert").await;

    let mut one = client("Bo", "Ek", "one@example.com", "+4450999999", "SE", 1);
    one.fields.tags = vec![a, b];
    let id = s
        .insert_client(
            &one,
            entry(Event::new(
                Category::Clients,
                AuditAction::Add,
                "Client added",
            )),
        )
        .await
        .unwrap();
    assert_figures_agree(s, backend, &tags, "single insert").await;

    let edit = |fields: ClientFields| {
        write(
            fields,
            entry(Event::new(
                Category::Clients,
                AuditAction::Update,
                "Client updated",
            )),
        )
    };
    let mut fields = one.fields.clone();
    fields.status = ClientStatus::Blocked;
    fields.country = "NO".into();
    fields.tags = vec![c];
    s.update_client(id, edit(fields.clone())).await.unwrap();
    assert_figures_agree(s, backend, &tags, "status, country and tags edited").await;
    fields.email = "moved@example.com".into();
    fields.email_key = "moved@example.com".into();
    s.update_client(id, edit(fields)).await.unwrap();
    assert_figures_agree(s, backend, &tags, "email edited").await;

    let everyone = ClientScope::All;
    let no_filter = ClientFilter::default();
    let ev = |_: &BatchOutcome| {
        entry(Event::new(
            Category::Clients,
            AuditAction::Update,
            "Clients changed in bulk",
        ))
    };
    for (change, what) in [
        (BulkChange::SetStatus(ClientStatus::Blocked), "bulk blocked"),
        (BulkChange::AssignTags(vec![c]), "bulk tag assigned"),
        (BulkChange::RemoveTags(vec![a]), "bulk tag removed"),
        (
            BulkChange::SetStatus(ClientStatus::Active),
            "bulk activated",
        ),
    ] {
        let b = Batch {
            scope: &everyone,
            filter: &no_filter,
            ids: &[],
            after_id: 0,
            upto_id: i64::MAX,
            limit: 100,
            change: &change,
            job_id: None,
            at: Timestamp(6),
        };
        let o = s.apply_client_batch(b, &ev).await.unwrap();
        assert!(o.changed > 0, "{backend}: {what} changed clients");
        assert_figures_agree(s, backend, &tags, what).await;
    }
    s.delete_tag(b, write((), tag("x"))).await.unwrap();
    assert_figures_agree(s, backend, &[a, c], "tag deleted").await;
}

/// Compares the figures of every client and of every scope made of `tags` with counting the
/// clients one by one.
async fn assert_figures_agree(s: &dyn Store, backend: &str, tags: &[i64], after: &str) {
    use std::collections::BTreeMap;
    let everyone = s
        .list_clients(
            &ClientScope::All,
            &query(ClientFilter::default(), ClientSort::Id, 10_000),
        )
        .await
        .unwrap();
    let figures = |rows: Vec<(ClientStatus, String, i64)>| -> BTreeMap<(String, String), i64> {
        rows.into_iter()
            .map(|(status, country, n)| ((status.code().to_string(), country), n))
            .collect()
    };
    let counted = |scope: Option<&[i64]>| {
        let mut m: BTreeMap<(String, String), i64> = BTreeMap::new();
        for c in everyone
            .iter()
            .filter(|c| scope.is_none_or(|t| c.tags.iter().any(|tag| t.contains(&tag.id))))
        {
            *m.entry((c.status.code().to_string(), c.country.clone()))
                .or_default() += 1;
        }
        m
    };
    let all = figures(s.client_figures(None).await.unwrap());
    assert_eq!(all, counted(None), "{backend}: every client, after {after}");
    assert_eq!(
        all.values().sum::<i64>(),
        everyone.len() as i64,
        "{backend}: after {after}"
    );
    // Every non-empty combination of the tags, and none.
    for mask in 0..(1u32 << tags.len()) {
        let scope: Vec<i64> = (0..tags.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| tags[i])
            .collect();
        assert_eq!(
            figures(s.client_figures(Some(&scope)).await.unwrap()),
            counted(Some(&scope)),
            "{backend}: scope {scope:?}, after {after}"
        );
    }
}

testkit::on_each_backend!(
    clients_story,
    tags_scope_and_bulk_story,
    counts_by_tags_match_counting_clients,
    scoped_search_counts_are_exact_or_honest_lower_bounds,
    scoped_pages_follow_the_whole_list,
    export_pages_hold_what_the_list_holds,
    dashboard_figures_follow_every_write,
);
