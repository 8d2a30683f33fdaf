//! Users: unique emails, lists, IP Whitelists, failed attempts and the sign-in lookup.

use crate::support::*;
use domain::{IpWhitelist, Permission, PermissionSet, Timestamp, TwoFactor, UserStatus};
use store::*;

async fn migrations_are_idempotent_and_the_admin_group_is_seeded_once(b: &'static str) {
    let s = open(b).await;
    assert!(
        s.migrate().await.unwrap().is_empty(),
        "{b}: nothing left to apply"
    );
    let a = s.ensure_admin_group().await.unwrap();
    assert_eq!(s.ensure_admin_group().await.unwrap(), a);
    let groups = s.list_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert!(groups[0].builtin && groups[0].caption == "Administrators");
    assert_eq!(
        s.group_by_id(a).await.unwrap().unwrap().permissions,
        PermissionSet::all()
    );
}

async fn emails_are_unique_case_insensitively_and_uncommitted_users_vanish(b: &'static str) {
    let s = open(b).await;
    add_user(&s, "Ann@Example.com", vec![1]).await;
    let dup = s
        .insert_user(new_user("ann@EXAMPLE.com", vec![1]), None, entry("dup"))
        .await;
    assert!(
        matches!(dup, Err(StoreError::Duplicate { field: "email" })),
        "{b}"
    );
    // A reserved email (a create waiting on the SMTP server) is taken for everyone but its
    // holder, and a reservation leaves no user and no event behind.
    let events_before = s.chain_head().await.unwrap().0;
    let now = Timestamp::now();
    let until = now.plus_secs(600);
    s.reserve_email("bob@example.com", "create-1", now, until)
        .await
        .unwrap();
    assert!(matches!(
        s.reserve_email("bob@example.com", "create-2", now, until)
            .await,
        Err(StoreError::Duplicate { field: "email" })
    ));
    assert!(matches!(
        s.reserve_email("ann@example.com", "create-3", now, until)
            .await,
        Err(StoreError::Duplicate { field: "email" })
    ));
    assert!(matches!(
        s.insert_user(new_user("Bob@example.com", vec![1]), None, entry("x"))
            .await,
        Err(StoreError::Duplicate { field: "email" })
    ));
    assert!(s
        .user_by_email_key("bob@example.com")
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.chain_head().await.unwrap().0, events_before, "{b}");
    assert_eq!(s.count_users().await.unwrap(), 1);
    // Released, it is free again; the holder's insert takes it.
    s.release_email("bob@example.com", "create-1")
        .await
        .unwrap();
    s.reserve_email("bob@example.com", "create-2", now, until)
        .await
        .unwrap();
    s.insert_user(
        new_user("bob@example.com", vec![1]),
        Some("create-2"),
        entry("User created"),
    )
    .await
    .unwrap();
    // A lapsed reservation is anyone's.
    s.reserve_email("carl@example.com", "create-4", now, now)
        .await
        .unwrap();
    s.insert_user(new_user("carl@example.com", vec![1]), None, entry("x"))
        .await
        .unwrap();
    assert_eq!(s.count_users().await.unwrap(), 3);
}

async fn list_users_filters_sorts_and_pages(b: &'static str) {
    let s = open(b).await;
    let mut perms = PermissionSet::default();
    perms.insert(Permission::new(
        domain::Section::Users,
        domain::Action::View,
    ));
    let g = s
        .insert_group("Viewers", &perms, &[], entry("Group created"))
        .await
        .unwrap();
    for (i, email) in ["carol@x.com", "alice@x.com", "bob@y.com", "dave_1@x.com"]
        .iter()
        .enumerate()
    {
        add_user(&s, email, if i % 2 == 0 { vec![g] } else { vec![1] }).await;
    }
    let q = |text: Option<&str>, sort, desc| UserQuery {
        text: text.map(str::to_string),
        sort,
        descending: desc,
        limit: 2,
        ..Default::default()
    };
    let page = s
        .list_users(&q(None, UserSort::Email, false))
        .await
        .unwrap();
    assert_eq!(page.total, 4);
    assert_eq!(
        page.items
            .iter()
            .map(|u| u.email.as_str())
            .collect::<Vec<_>>(),
        ["alice@x.com", "bob@y.com"]
    );
    let page = s
        .list_users(&q(Some("X.COM"), UserSort::Email, true))
        .await
        .unwrap();
    assert_eq!(page.total, 3, "{b}: case-insensitive contains");
    assert_eq!(page.items[0].email, "dave_1@x.com");
    let page = s
        .list_users(&q(Some("_"), UserSort::Id, false))
        .await
        .unwrap();
    assert_eq!(page.total, 1, "{b}: LIKE wildcards are literal");
    let in_group = s
        .list_users(&UserQuery {
            group_id: Some(g),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(in_group.total, 2);
    assert!(in_group
        .items
        .iter()
        .all(|u| u.groups.iter().any(|r| r.caption == "Viewers")));
    let (admin, held) = s.permissions_of_user(in_group.items[0].id).await.unwrap();
    assert!(!admin && held == perms);
}

async fn ip_whitelists_are_stored_normalised_and_the_list_filters_by_each_column(b: &'static str) {
    let s = open(b).await;
    let office = IpWhitelist::parse("198.51.100.0/24\n2001:db8::/32").unwrap();
    let creator = add_user(&s, "creator@x.com", vec![1]).await;
    let restricted = s
        .insert_user(
            NewUser {
                ip_whitelist: office.clone(),
                created_by: Some(creator),
                two_factor: TwoFactor::Disabled,
                ..new_user("restricted@x.com", vec![1])
            },
            None,
            entry("User created"),
        )
        .await
        .unwrap();
    let open_user = add_user(&s, "open@x.com", vec![1]).await;
    let stored = s.user_by_id(restricted).await.unwrap().unwrap();
    assert_eq!(stored.ip_whitelist, office, "{b}");
    let by_email = s
        .user_by_email_key("restricted@x.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_email.ip_whitelist, office, "{b}");

    let ids = |q: UserQuery| {
        let s = s.clone();
        async move {
            let page = s.list_users(&UserQuery { limit: 10, ..q }).await.unwrap();
            assert_eq!(page.total as usize, page.items.len());
            page.items.iter().map(|u| u.id).collect::<Vec<_>>()
        }
    };
    let with = UserQuery {
        has_ip_whitelist: Some(true),
        ..Default::default()
    };
    assert_eq!(ids(with).await, [restricted], "{b}");
    let without = UserQuery {
        has_ip_whitelist: Some(false),
        ..Default::default()
    };
    assert_eq!(ids(without).await, [creator, open_user], "{b}");
    let password_only = UserQuery {
        two_factor: Some(TwoFactor::Disabled),
        ..Default::default()
    };
    assert_eq!(ids(password_only).await, [restricted], "{b}");
    let by_creator = UserQuery {
        creator_id: Some(creator),
        ..Default::default()
    };
    assert_eq!(ids(by_creator).await, [restricted], "{b}");
    let unmasked = UserQuery {
        mask_data: Some(false),
        ..Default::default()
    };
    assert_eq!(ids(unmasked).await.len(), 3, "{b}");
    let sorted = UserQuery {
        sort: UserSort::IpWhitelist,
        descending: true,
        ..Default::default()
    };
    assert_eq!(ids(sorted).await[0], restricted, "{b}");
    assert_eq!(
        s.creators().await.unwrap(),
        [(creator, "creator@x.com".to_string())]
    );

    // A change writes the list, and only when given.
    let narrower = IpWhitelist::parse("198.51.100.7").unwrap();
    let changes = [
        UserChange {
            ip_whitelist: Some(narrower.clone()),
            ..Default::default()
        },
        UserChange {
            name: Some("Renamed".into()),
            ..Default::default()
        },
    ];
    for change in changes {
        let change = UserChange {
            at: Timestamp::now(),
            ..change
        };
        s.update_user(restricted, write(change, entry("User updated")))
            .await
            .unwrap();
    }
    let stored = s.user_by_id(restricted).await.unwrap().unwrap();
    assert_eq!(stored.ip_whitelist, narrower, "{b}");
}

async fn attempts_are_reserved_atomically_and_lock_with_doubling(b: &'static str) {
    let s = open(b).await;
    let id = add_user(&s, "lock@example.com", vec![1]).await;
    let now = Timestamp::now();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.reserve_attempt(id, now).await.unwrap()
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(granted, 5, "{b}: the fifth reservation locks");
    let u = s.user_by_id(id).await.unwrap().unwrap();
    assert_eq!(u.locked_until, Some(now.plus_secs(60)));
    let later = now.plus_secs(61);
    assert_eq!(s.reserve_attempt(id, later).await.unwrap(), Some(6));
    assert_eq!(
        s.user_by_id(id).await.unwrap().unwrap().locked_until,
        Some(later.plus_secs(120))
    );
    s.open_session(
        None,
        &session_record(id, "signed-in", SessionStage::Full, later),
        entry("Signed in"),
    )
    .await
    .unwrap();
    let u = s.user_by_id(id).await.unwrap().unwrap();
    assert_eq!(
        (u.failed_attempts, u.locked_until, u.last_sign_in_at),
        (0, None, Some(later))
    );
}

async fn the_sign_in_lookup_reserves_an_attempt_only_for_enabled_unlocked_accounts(
    b: &'static str,
) {
    let s = open(b).await;
    let creator = add_user(&s, "creator@example.com", vec![1]).await;
    let user = NewUser {
        created_by: Some(creator),
        ..new_user("Signer@Example.com", vec![])
    };
    let id = s
        .insert_user(user, None, entry("User created"))
        .await
        .unwrap();
    let now = Timestamp::now();
    assert!(s
        .sign_in_attempt("nobody@example.com", "192.0.2.1", i64::MAX, now)
        .await
        .unwrap()
        .account
        .is_none());

    let found = s
        .sign_in_attempt("signer@example.com", "192.0.2.1", i64::MAX, now)
        .await
        .unwrap()
        .account
        .unwrap();
    assert_eq!(found.attempt, Some(1), "{b}");
    assert_eq!(found.user.failed_attempts, 1, "{b}: the record as reserved");
    let expected = s.user_by_id(id).await.unwrap().unwrap();
    assert_eq!(
        format!("{:?}", found.user),
        format!("{expected:?}"),
        "{b}: the same record as a plain lookup, creator's email included"
    );
    assert_eq!(
        found.user.created_by_email.as_deref(),
        Some("creator@example.com")
    );

    for n in 2..=5 {
        let a = s.sign_in_attempt("signer@example.com", "192.0.2.1", i64::MAX, now);
        assert_eq!(a.await.unwrap().account.unwrap().attempt, Some(n), "{b}");
    }
    let locked = s
        .sign_in_attempt("signer@example.com", "192.0.2.1", i64::MAX, now)
        .await
        .unwrap()
        .account
        .unwrap();
    assert_eq!(locked.attempt, None, "{b}: locked after the fifth");
    assert_eq!(locked.user.failed_attempts, 5, "{b}: nothing counted");
    let unlocked = now.plus_secs(61);
    let again = s.sign_in_attempt("signer@example.com", "192.0.2.1", i64::MAX, unlocked);
    assert_eq!(
        again.await.unwrap().account.unwrap().attempt,
        Some(6),
        "{b}"
    );

    let disable = UserChange {
        status: Some(UserStatus::Disabled),
        at: now,
        ..Default::default()
    };
    s.update_user(id, write(disable, entry("User disabled")))
        .await
        .unwrap();
    let later = now.plus_secs(3600);
    let disabled = s
        .sign_in_attempt("signer@example.com", "192.0.2.1", i64::MAX, later)
        .await
        .unwrap()
        .account
        .unwrap();
    assert_eq!(disabled.attempt, None, "{b}");
    assert_eq!(disabled.user.status, UserStatus::Disabled);
    assert_eq!(
        s.user_by_id(id).await.unwrap().unwrap().failed_attempts,
        6,
        "{b}: a disabled account counts nothing"
    );
}

async fn sign_in_attempts_are_counted_per_address_and_over_the_limit_reach_no_account(
    b: &'static str,
) {
    let s = open(b).await;
    let id = add_user(&s, "signer@example.com", vec![]).await;
    let now = Timestamp::now();
    let attempt = |email: &'static str, address: &'static str, at: Timestamp| {
        let s = s.clone();
        async move { s.sign_in_attempt(email, address, 2, at).await.unwrap() }
    };
    let first = attempt("nobody@example.com", "198.51.100.9", now).await;
    assert_eq!(first.address_attempts, 1, "{b}");
    assert!(first.account.is_none(), "{b}");
    assert_eq!(first.address_window_ends, now.plus_secs(600), "{b}");
    let second = attempt("signer@example.com", "198.51.100.9", now.plus_secs(5)).await;
    assert_eq!(second.address_attempts, 2, "{b}");
    assert_eq!(second.account.unwrap().attempt, Some(1), "{b}");
    // The third from that address finds the account but reserves nothing on it.
    let third = attempt("signer@example.com", "198.51.100.9", now.plus_secs(10)).await;
    assert_eq!(third.address_attempts, 3, "{b}");
    assert_eq!(third.address_window_ends, now.plus_secs(600), "{b}");
    let account = third.account.unwrap();
    assert_eq!((account.user.id, account.attempt), (id, None), "{b}");
    assert_eq!(
        s.user_by_id(id).await.unwrap().unwrap().failed_attempts,
        1,
        "{b}"
    );
    // Other addresses have their own count; an ended window starts over.
    let other = attempt("signer@example.com", "2001:db8::1", now.plus_secs(10)).await;
    assert_eq!(other.address_attempts, 1, "{b}");
    assert_eq!(other.account.unwrap().attempt, Some(2), "{b}");
    let later = now.plus_secs(601);
    let again = attempt("signer@example.com", "198.51.100.9", later).await;
    assert_eq!(
        (again.address_attempts, again.address_window_ends),
        (1, later.plus_secs(600)),
        "{b}"
    );
    assert_eq!(again.account.unwrap().attempt, Some(3), "{b}");
    // Housekeeping forgets ended windows only.
    assert_eq!(s.purge_sign_in_addresses(later).await.unwrap(), 0, "{b}");
    assert_eq!(
        s.purge_sign_in_addresses(now.plus_secs(611)).await.unwrap(),
        1,
        "{b}: the other address's window ended"
    );
}

async fn preferences_are_per_user_and_replaced(b: &'static str) {
    let s = open(b).await;
    let ann = add_user(&s, "ann@example.com", vec![1]).await;
    let bob = add_user(&s, "bob@example.com", vec![1]).await;
    assert_eq!(s.preference(ann, "users.columns").await.unwrap(), None);
    s.set_preference(ann, "users.columns", "id,name")
        .await
        .unwrap();
    s.set_preference(ann, "users.columns", "id,email")
        .await
        .unwrap();
    s.set_preference(bob, "users.columns", "name")
        .await
        .unwrap();
    assert_eq!(
        s.preference(ann, "users.columns").await.unwrap().as_deref(),
        Some("id,email"),
        "{b}: replaced"
    );
    assert_eq!(
        s.preference(bob, "users.columns").await.unwrap().as_deref(),
        Some("name"),
        "{b}: each user their own"
    );
    assert_eq!(s.preference(ann, "events.columns").await.unwrap(), None);
}

testkit::on_each_backend!(
    preferences_are_per_user_and_replaced,
    migrations_are_idempotent_and_the_admin_group_is_seeded_once,
    emails_are_unique_case_insensitively_and_uncommitted_users_vanish,
    list_users_filters_sorts_and_pages,
    ip_whitelists_are_stored_normalised_and_the_list_filters_by_each_column,
    attempts_are_reserved_atomically_and_lock_with_doubling,
    the_sign_in_lookup_reserves_an_attempt_only_for_enabled_unlocked_accounts,
    sign_in_attempts_are_counted_per_address_and_over_the_limit_reach_no_account,
);
