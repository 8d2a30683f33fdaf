//! Several Back Office instances on one PostgreSQL database, each on its own port, as behind a
//! load balancer: sessions, sign-out, disabling, lockout counters and one-time codes are shared
//! through the database; concurrent creates of one email make exactly one user; the event-log
//! chain stays verifiable under writes from every instance.
//!
//! SQLite is single-instance only, so these tests need PostgreSQL: they are ignored unless
//! asked for (`cargo test -- --ignored scale_out` with `BACKOFFICE_TEST_POSTGRES_URL` set, as
//! `.ci/run` does).

use std::sync::Arc;
use testkit::pages::*;
use testkit::{Browser, TestApp};

/// Three instances on one fresh PostgreSQL database.
async fn cluster() -> Vec<TestApp> {
    let a = TestApp::start("postgres").await;
    let b = a.another_instance().await;
    let c = a.another_instance().await;
    assert!(a.addr != b.addr && b.addr != c.addr && a.addr != c.addr);
    vec![a, b, c]
}

/// A browser on `on` that carries the session id of `from` (as a load balancer would route the
/// same person's next request to another instance).
fn same_person_on(on: &TestApp, from: &Browser) -> Browser {
    let b = on.browser();
    b.set_session_id(&from.session_id().expect("a session"));
    b
}

/// True when the session is fully signed in: the dashboard, or the forced password change
/// (which only a fully signed-in session reaches), not a redirect to a sign-in step.
async fn signed_in(b: &Browser) -> bool {
    let r = b.get("/").await;
    match r.location.as_deref() {
        None => r.status == 200,
        Some(l) => l == "/password/change",
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set BACKOFFICE_TEST_POSTGRES_URL and run with --ignored scale_out"]
async fn a_session_made_on_one_instance_works_on_all_and_sign_out_ends_it_everywhere() {
    let n = cluster().await;
    let on_a = n[0].admin().await;
    let on_b = same_person_on(&n[1], &on_a);
    let on_c = same_person_on(&n[2], &on_a);
    assert!(signed_in(&on_a).await && signed_in(&on_b).await && signed_in(&on_c).await);
    // A change made through instance B with the session made on A (CSRF token from the shared
    // session) is visible through C.
    let gid = create_group(&on_b, "Made on B", &["users.view"]).await;
    let page = on_c.get(&format!("/groups/{gid}")).await;
    assert!(page.body.contains("Made on B"), "{}", page.body);
    // Sign out on B: the same session is refused on A and C at their next request.
    on_b.get("/").await;
    let r = on_b.post("/logout", &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    for (name, b) in [("A", &on_a), ("B", &on_b), ("C", &on_c)] {
        let r = b.get("/").await;
        assert!(
            r.location
                .as_deref()
                .is_some_and(|l| l.starts_with("/login")),
            "instance {name} still accepts a signed-out session: {} {:?}",
            r.status,
            r.location
        );
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set BACKOFFICE_TEST_POSTGRES_URL and run with --ignored scale_out"]
async fn a_user_disabled_on_one_instance_is_refused_on_all_at_the_next_request() {
    let n = cluster().await;
    let admin_c = n[2].admin().await;
    create_user(
        &admin_c,
        "jane@example.com",
        "Jane Doe",
        &["1"],
        false,
        false,
    )
    .await;
    disable_2fa(&admin_c, "jane@example.com").await;
    let jane_a = sign_in_fully(&n[0], "jane@example.com", USER_PASSWORD).await;
    let jane_b = same_person_on(&n[1], &jane_a);
    assert!(signed_in(&jane_a).await && signed_in(&jane_b).await);
    disable_user(&admin_c, "jane@example.com").await;
    for (name, b) in [("A", &jane_a), ("B", &jane_b)] {
        assert!(
            !signed_in(b).await,
            "instance {name} still serves a disabled user"
        );
    }
    // And she can't sign in again anywhere.
    for t in &n {
        assert_eq!(
            t.browser()
                .sign_in("jane@example.com", NEW_PASSWORD)
                .await
                .status,
            401
        );
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set BACKOFFICE_TEST_POSTGRES_URL and run with --ignored scale_out"]
async fn failed_attempts_spread_across_instances_lock_at_the_same_count_as_on_one() {
    let n = cluster().await;
    let admin = n[0].admin().await;
    for email in ["four@example.com", "five@example.com"] {
        create_user(&admin, email, "Some One", &["1"], false, false).await;
        disable_2fa(&admin, email).await;
    }
    // Four failures spread over three instances: not locked, the right password still works.
    for i in 0..4 {
        let r = n[i % 3]
            .browser()
            .sign_in("four@example.com", "wrong password entirely")
            .await;
        assert_eq!(r.status, 401);
    }
    let r = n[1]
        .browser()
        .sign_in("four@example.com", USER_PASSWORD)
        .await;
    assert_eq!(r.status, 303, "four failures must not lock: {}", r.body);
    // Five failures spread over three instances: locked everywhere, even for the right password.
    for i in 0..5 {
        n[i % 3]
            .browser()
            .sign_in("five@example.com", "wrong password entirely")
            .await;
    }
    for t in &n {
        let r = t.browser().sign_in("five@example.com", USER_PASSWORD).await;
        assert_eq!(r.status, 401, "locked after the fifth failure");
    }
    assert_eq!(events_with(&n[0], "wrong password").await, 9);
    assert!(events_with(&n[0], "account locked").await >= 3);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set BACKOFFICE_TEST_POSTGRES_URL and run with --ignored scale_out"]
async fn a_code_sent_by_one_instance_is_accepted_by_another_exactly_once() {
    let n = cluster().await;
    let admin = n[0].admin().await;
    create_user(&admin, "jane@example.com", "Jane Doe", &["1"], false, false).await;
    let on_a = n[0].browser();
    let r = on_a.sign_in("jane@example.com", USER_PASSWORD).await;
    assert_eq!(r.location.as_deref(), Some("/login/code"), "{}", r.body);
    let code = n[0].smtp().latest_code("jane@example.com");
    // The same pre-2FA session enters the code on B and C at the same time.
    let tries: Vec<_> = [&n[1], &n[2], &n[1], &n[2]]
        .iter()
        .map(|t| Arc::new(same_person_on(t, &on_a)))
        .collect();
    let mut tasks = Vec::new();
    for b in &tries {
        let (b, code) = (b.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            let r = b.enter_code(&code).await;
            r.location.as_deref() == Some("/")
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap());
    }
    assert_eq!(accepted, 1, "the code must be accepted exactly once");
    let mut signed = 0;
    for b in &tries {
        signed += usize::from(signed_in(b).await);
    }
    assert_eq!(signed, 1, "exactly one browser ends up signed in");
    // Replaying the code on A with the old pre-2FA session gets nothing.
    let r = on_a.enter_code(&code).await;
    assert_ne!(r.location.as_deref(), Some("/"));
    assert!(!signed_in(&on_a).await);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set BACKOFFICE_TEST_POSTGRES_URL and run with --ignored scale_out"]
async fn concurrent_creates_of_one_email_through_different_instances_make_one_user() {
    let n = cluster().await;
    let mut admins = Vec::new();
    for t in &n {
        admins.push(Arc::new(t.admin().await));
    }
    let spellings = [
        "dup@example.com",
        "Dup@Example.com",
        "DUP@EXAMPLE.COM",
        "dUp@example.COM",
    ];
    let mut tasks = Vec::new();
    for (i, admin) in admins.iter().enumerate() {
        for email in spellings {
            let admin = admin.clone();
            tasks.push(tokio::spawn(async move {
                let r = create_user_with(
                    &admin,
                    email,
                    &format!("Dup {i}"),
                    USER_PASSWORD,
                    &["1"],
                    false,
                    false,
                )
                .await;
                (r.status, r.body)
            }));
        }
    }
    let mut created = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            303 => created += 1,
            422 => assert!(body.contains("already used"), "{body}"),
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert_eq!(created, 1, "exactly one create succeeds");
    assert_eq!(user_count(&n[0]).await, 2, "the administrator and one user");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set BACKOFFICE_TEST_POSTGRES_URL and run with --ignored scale_out"]
async fn the_event_chain_stays_verifiable_under_writes_from_every_instance() {
    let n = cluster().await;
    let mut tasks = Vec::new();
    for (i, t) in n.iter().enumerate() {
        let admin = Arc::new(t.admin().await);
        for j in 0..8 {
            let admin = admin.clone();
            tasks.push(tokio::spawn(async move {
                admin.get("/groups/new").await;
                let caption = format!("Group {i}-{j}");
                let r = admin
                    .post(
                        "/groups/new",
                        &[("caption", caption.as_str()), ("perm", "users.view")],
                    )
                    .await;
                assert_eq!(r.status, 303, "{}", r.body);
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = n[1].app.verify_audit_chain().await.unwrap();
    let store::ChainReport::Ok { rows } = report else {
        panic!("chain broken: {report:?}")
    };
    assert!(rows >= 24, "{rows} rows");
    assert_eq!(
        events_with(&n[0], "Group ").await,
        24,
        "one event per group"
    );
}
