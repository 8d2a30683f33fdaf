//! Sign-in over HTTP with a real SMTP server: the password step, emailed codes, lockout,
//! sessions, the forced password change and CSRF. Every test runs on SQLite, and on PostgreSQL
//! when BACKOFFICE_TEST_POSTGRES_URL is set.

use testkit::pages::*;
use testkit::{db::backends, SmtpMode, TestApp};

#[tokio::test]
async fn every_password_failure_looks_the_same() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(&admin, "jane@example.com", "Jane Doe", &["1"], false, false).await;
        create_user(&admin, "off@example.com", "Off User", &["1"], false, false).await;
        disable_user(&admin, "off@example.com").await;
        // Lock one account with five wrong passwords.
        create_user(
            &admin,
            "locked@example.com",
            "Lock Ed",
            &["1"],
            false,
            false,
        )
        .await;
        for _ in 0..5 {
            t.browser()
                .sign_in("locked@example.com", "wrong password entirely")
                .await;
        }
        let cases = [
            ("nobody@example.com", USER_PASSWORD),
            ("jane@example.com", "not the right password"),
            ("off@example.com", USER_PASSWORD),
            ("locked@example.com", USER_PASSWORD),
            ("not an email", USER_PASSWORD),
        ];
        let mut answers = Vec::new();
        for (email, password) in cases {
            let r = t.browser().sign_in(email, password).await;
            assert!(
                r.body.contains("Invalid email or password"),
                "{backend} {email}: {}",
                r.body
            );
            answers.push(r.status);
        }
        assert!(answers.iter().all(|s| *s == 401), "{backend}: {answers:?}");
        assert!(
            t.smtp().messages().is_empty(),
            "no code is sent on a failed password step"
        );
    }
}

#[tokio::test]
async fn code_flow_with_masked_address_and_new_session_ids() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(
            &admin,
            "jane.doe@example.com",
            "Jane Doe",
            &["1"],
            false,
            false,
        )
        .await;
        let b = t.browser();
        let r = b.sign_in("jane.doe@example.com", USER_PASSWORD).await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (303, Some("/login/code"))
        );
        let pre = b.session_id().expect("pre-2FA session");
        let page = b.get("/login/code").await;
        assert!(page.body.contains("j****@e****.com"), "{}", page.body);
        assert!(
            page.body.contains(">Code</label>")
                && page.body.contains("Verify")
                && page.body.contains("Resend code")
        );
        let mail = t.smtp().wait_for("jane.doe@example.com", 1).await;
        assert!(mail.body().contains("valid for 10 minutes"));
        let code = t.smtp().latest_code("jane.doe@example.com");
        // The pre-2FA session reaches nothing but the code page.
        for path in [
            "/",
            "/users",
            "/groups",
            "/profile",
            "/settings",
            "/password/change",
        ] {
            let r = b.get(path).await;
            assert_eq!(
                r.location.as_deref(),
                Some("/login/code"),
                "{path} from a pre-2FA session"
            );
        }
        let r = b.enter_code(&code).await;
        assert_eq!((r.status, r.location.as_deref()), (303, Some("/")));
        let full = b.session_id().expect("full session");
        assert_ne!(pre, full, "a new session id after the code step");
        // Forced password change first (the password was set by an administrator).
        assert_eq!(
            b.get("/users").await.location.as_deref(),
            Some("/password/change")
        );
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
        assert_eq!(b.get("/").await.status, 200);
        // The old pre-2FA id is dead; so is the full one after signing out.
        let other = t.browser();
        other.set_session_id(&pre);
        assert_eq!(
            other
                .get("/")
                .await
                .location
                .as_deref()
                .map(|l| l.starts_with("/login")),
            Some(true)
        );
        b.get("/").await;
        assert_eq!(b.post("/logout", &[]).await.status, 303);
        other.set_session_id(&full);
        assert!(
            other.get("/").await.location.unwrap().starts_with("/login"),
            "old id dead after sign-out"
        );
    }
}

#[tokio::test]
async fn codes_die_after_five_wrong_guesses_and_cannot_be_reused_or_shared() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(&admin, "jane@example.com", "Jane Doe", &["1"], false, false).await;

        // A code from another sign-in attempt is refused.
        let a = t.browser();
        a.sign_in("jane@example.com", USER_PASSWORD).await;
        let code_a = t.smtp().latest_code("jane@example.com");
        t.clock.advance(61);
        let c = t.browser();
        c.sign_in("jane@example.com", USER_PASSWORD).await;
        let code_c = t.smtp().latest_code("jane@example.com");
        if code_a != code_c {
            assert_eq!(
                c.enter_code(&code_a).await.status,
                422,
                "a code of another attempt is refused"
            );
        }
        assert_eq!(c.enter_code(&code_c).await.location.as_deref(), Some("/"));
        // Reuse: the same code, again, in the other attempt's browser, and after sign-out.
        assert_ne!(a.enter_code(&code_c).await.location.as_deref(), Some("/"));
        assert_eq!(
            a.enter_code(&code_a).await.location.as_deref(),
            Some("/"),
            "a's own code still works once"
        );
        // Reuse after the code was spent: a new attempt gets a new code, the old one is dead.
        a.get("/").await;
        a.post("/logout", &[]).await;
        t.clock.advance(61);
        let d = t.browser();
        d.sign_in("jane@example.com", USER_PASSWORD).await;
        let code_d = t.smtp().latest_code("jane@example.com");
        if code_d != code_a {
            assert_eq!(
                d.enter_code(&code_a).await.status,
                422,
                "a spent code is refused"
            );
        }
        assert_eq!(d.enter_code(&code_d).await.location.as_deref(), Some("/"));
        t.clock.advance(61);
        // Five wrong codes: the code dies and the right one then fails.
        let b = t.browser();
        b.sign_in("jane@example.com", USER_PASSWORD).await;
        let code = t.smtp().latest_code("jane@example.com");
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for i in 0..4 {
            let r = b.enter_code(wrong).await;
            assert_eq!(r.status, 422, "wrong code {i}");
        }
        let r = b.enter_code(wrong).await;
        assert_eq!(r.status, 401, "fifth wrong code ends the attempt");
        let r = b.enter_code(&code).await;
        assert_ne!(
            r.location.as_deref(),
            Some("/"),
            "the right code no longer works"
        );
    }
}

#[tokio::test]
async fn expired_codes_are_refused() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(&admin, "jane@example.com", "Jane Doe", &["1"], false, false).await;
        let b = t.browser();
        b.sign_in("jane@example.com", USER_PASSWORD).await;
        let code = t.smtp().latest_code("jane@example.com");
        b.get("/login/code").await;
        t.clock.advance(11 * 60);
        let r = b.post("/login/code", &[("code", code.as_str())]).await;
        assert_ne!(r.location.as_deref(), Some("/"), "expired code accepted");
        assert!(b.get("/").await.location.unwrap().starts_with("/login"));
    }
}

#[tokio::test]
async fn resend_is_limited_per_minute_and_per_quarter_hour() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(&admin, "jane@example.com", "Jane Doe", &["1"], false, false).await;
        let b = t.browser();
        b.sign_in("jane@example.com", USER_PASSWORD).await;
        let first = t.smtp().latest_code("jane@example.com");
        b.get("/login/code").await;
        let r = b.post("/login/code/resend", &[]).await;
        assert_eq!(r.status, 429, "resend within 60 s");
        assert!(r.body.contains("you can ask for another in"));
        for n in 2..=5 {
            t.clock.advance(61);
            let r = b.post("/login/code/resend", &[]).await;
            assert_eq!(r.status, 200, "resend #{n}: {}", r.body);
            assert_eq!(t.smtp().messages_to("jane@example.com").len(), n);
        }
        t.clock.advance(61);
        let r = b.post("/login/code/resend", &[]).await;
        assert_eq!(r.status, 429, "sixth code within 15 minutes");
        // The old code was replaced by the latest one.
        let latest = t.smtp().latest_code("jane@example.com");
        if first != latest {
            assert_eq!(b.enter_code(&first).await.status, 422);
        }
        assert_eq!(b.enter_code(&latest).await.location.as_deref(), Some("/"));
    }
}

#[tokio::test]
async fn lockout_after_five_failures_doubles_and_resets() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(&admin, "jane@example.com", "Jane Doe", &["1"], false, false).await;
        disable_2fa(&admin, "jane@example.com").await;
        for _ in 0..5 {
            assert_eq!(
                t.browser()
                    .sign_in("jane@example.com", "a wrong password!")
                    .await
                    .status,
                401
            );
        }
        assert_eq!(
            t.browser()
                .sign_in("jane@example.com", USER_PASSWORD)
                .await
                .status,
            401,
            "locked"
        );
        t.clock.advance(61);
        assert_eq!(
            t.browser()
                .sign_in("jane@example.com", "a wrong password!")
                .await
                .status,
            401
        );
        t.clock.advance(61);
        assert_eq!(
            t.browser()
                .sign_in("jane@example.com", USER_PASSWORD)
                .await
                .status,
            401,
            "6th failure: 2 minutes"
        );
        t.clock.advance(61);
        assert_eq!(
            t.browser()
                .sign_in("jane@example.com", USER_PASSWORD)
                .await
                .status,
            303,
            "unlocked after 2 minutes"
        );
        // A success resets the counter: four failures don't lock.
        for _ in 0..4 {
            t.browser()
                .sign_in("jane@example.com", "a wrong password!")
                .await;
        }
        assert_eq!(
            t.browser()
                .sign_in("jane@example.com", USER_PASSWORD)
                .await
                .status,
            303
        );
    }
}

#[tokio::test]
async fn concurrent_wrong_passwords_never_exceed_the_limit() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(&admin, "jane@example.com", "Jane Doe", &["1"], false, false).await;
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let b = t.browser();
            tasks.push(tokio::spawn(async move {
                b.sign_in("jane@example.com", "a wrong password!")
                    .await
                    .status
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), 401);
        }
        let events = events_with(&t, "wrong password").await;
        assert_eq!(events, 5, "{backend}: exactly the limit was evaluated");
        assert_eq!(
            events_with(&t, "account locked").await,
            45,
            "{backend}: the rest were refused as locked"
        );
        assert_eq!(
            t.browser()
                .sign_in("jane@example.com", USER_PASSWORD)
                .await
                .status,
            401,
            "locked"
        );
    }
}

#[tokio::test]
async fn smtp_down_gives_a_clear_message_and_is_not_counted() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(&admin, "jane@example.com", "Jane Doe", &["1"], false, false).await;
        for mode in [
            SmtpMode::Refuse,
            SmtpMode::TempFail,
            SmtpMode::Reject,
            SmtpMode::Hang,
        ] {
            t.smtp().set_mode(mode);
            let r = t.browser().sign_in("jane@example.com", USER_PASSWORD).await;
            assert_eq!(r.status, 503, "{mode:?}");
            assert!(
                r.body
                    .contains("The code could not be sent; try again in a minute"),
                "{mode:?}: {}",
                r.body
            );
        }
        t.smtp().set_mode(SmtpMode::Accept);
        // Four failed sends did not lock the account or use up the send limit.
        let b = t.browser();
        assert_eq!(
            b.sign_in("jane@example.com", USER_PASSWORD)
                .await
                .location
                .as_deref(),
            Some("/login/code")
        );
        let code = t.smtp().latest_code("jane@example.com");
        assert_eq!(b.enter_code(&code).await.location.as_deref(), Some("/"));
    }
}

#[tokio::test]
async fn standalone_install_says_plainly_that_codes_cannot_be_sent() {
    let t = TestApp::start_with("sqlite", false).await;
    let admin = t.admin().await;
    create_user(&admin, "jane@example.com", "Jane Doe", &["1"], false, false).await;
    let r = t.browser().sign_in("jane@example.com", USER_PASSWORD).await;
    assert!(
        r.body
            .contains("Ask an administrator to disable 2FA via email codes"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn forced_password_change_cannot_be_skipped() {
    let t = TestApp::start("sqlite").await;
    let admin = t.admin().await;
    create_user(&admin, "jane@example.com", "Jane Doe", &["1"], false, false).await;
    disable_2fa(&admin, "jane@example.com").await;
    let b = t.browser();
    assert_eq!(
        b.sign_in("jane@example.com", USER_PASSWORD).await.status,
        303
    );
    for path in [
        "/",
        "/users",
        "/users/new",
        "/groups",
        "/profile",
        "/settings",
        "/users/1",
    ] {
        assert_eq!(
            b.get(path).await.location.as_deref(),
            Some("/password/change"),
            "{path}"
        );
    }
    // A state change by a crafted POST is refused too.
    b.get("/password/change").await;
    let r = b
        .post(
            "/groups/new",
            &[("caption", "Sneaky"), ("perm", "users.view")],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/password/change"));
    // The policy applies and the form says which rule failed.
    let r = b
        .post(
            "/password/change",
            &[("new_password", "short"), ("confirm_password", "short")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("at least 12 characters"));
    let r = b
        .post(
            "/password/change",
            &[
                ("new_password", USER_PASSWORD),
                ("confirm_password", USER_PASSWORD),
            ],
        )
        .await;
    assert!(r.body.contains("different from the current one"));
    let r = b
        .post(
            "/password/change",
            &[
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(b.get("/users").await.status, 200);
}

#[tokio::test]
async fn csrf_token_and_origin_are_required_for_every_change() {
    let t = TestApp::start("sqlite").await;
    let admin = t.admin().await;
    admin.get("/groups/new").await;
    let token = admin.csrf();
    let origin = t.url("");
    let fields = |tok: &str| {
        vec![
            ("csrf".to_string(), tok.to_string()),
            ("caption".into(), "Support".into()),
        ]
    };
    let as_ref = |v: &Vec<(String, String)>| {
        v.iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect::<Vec<_>>()
    };
    for (name, token, origin) in [
        ("missing token", "", Some(origin.as_str())),
        ("wrong token", "0000", Some(origin.as_str())),
        (
            "foreign origin",
            token.as_str(),
            Some("https://evil.example"),
        ),
    ] {
        let f = as_ref(&fields(token));
        let pairs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let r = admin.post_raw("/groups/new", &pairs, origin).await;
        assert_eq!(r.status, 403, "{name}");
    }
    assert!(
        !admin.get("/groups").await.body.contains("Support"),
        "nothing was created"
    );
    // Sign-in itself needs the pre-session token.
    let b = t.browser();
    let r = b
        .post_raw(
            "/login",
            &[
                ("email", "root@example.com"),
                ("password", testkit::spawn::ADMIN_PASSWORD),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    // With the token, the same request works.
    let f = fields(&token);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        admin
            .post_raw("/groups/new", &pairs, Some(&origin))
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn profile_changes_password_and_ends_other_sessions() {
    let t = TestApp::start("sqlite").await;
    let first = t.admin().await;
    let second = t.admin().await;
    let page = first.get("/profile").await;
    assert!(page.body.contains("Active sessions") && page.body.contains("This session"));
    let r = first
        .post(
            "/profile/password",
            &[
                ("current_password", "wrong current pw"),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("The current password is not correct"));
    first.get("/profile").await;
    let r = first
        .post(
            "/profile/password",
            &[
                ("current_password", &t.admin_password),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(first.get("/").await.status, 200, "this session stays");
    assert!(
        second
            .get("/")
            .await
            .location
            .unwrap()
            .starts_with("/login"),
        "the other session ended"
    );
    assert_eq!(
        t.browser()
            .sign_in(&t.admin_email, NEW_PASSWORD)
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn a_name_with_cr_lf_cannot_add_a_header_or_recipient() {
    let smtp = testkit::SmtpServer::start().await;
    let mailer = app::mail::Mailer::new(
        app::mail::SmtpConfig::from_url(&smtp.url(), "bo@example.com").unwrap(),
    )
    .unwrap();
    mailer
        .send(app::mail::Mail {
            to_name: "Eve\r\nBcc: mallory@evil.example\r\nX-Injected: yes".into(),
            to: "eve@example.com".into(),
            subject: "Hello\r\nBcc: mallory@evil.example".into(),
            body: "body".into(),
        })
        .await
        .unwrap();
    let m = smtp.wait_for("eve@example.com", 1).await;
    assert_eq!(
        m.to,
        vec!["eve@example.com".to_string()],
        "no extra recipient"
    );
    let head = m.data.split("\r\n\r\n").next().unwrap().to_string();
    assert!(
        !head
            .lines()
            .any(|l| l.starts_with("Bcc:") || l.starts_with("X-Injected:")),
        "{head}"
    );
}

#[tokio::test]
async fn sessions_end_after_idle_and_absolute_timeouts() {
    let t = TestApp::start("sqlite").await;
    let b = t.admin().await;
    t.clock.advance(29 * 60);
    assert_eq!(
        b.get("/").await.status,
        200,
        "29 idle minutes: still signed in"
    );
    t.clock.advance(29 * 60);
    assert_eq!(
        b.get("/").await.status,
        200,
        "activity keeps the session alive"
    );
    t.clock.advance(31 * 60);
    assert!(
        b.get("/").await.location.unwrap().starts_with("/login"),
        "31 idle minutes end it"
    );
    let c = t.admin().await;
    for _ in 0..25 {
        t.clock.advance(29 * 60);
        c.get("/").await;
    }
    assert!(
        c.get("/").await.location.unwrap().starts_with("/login"),
        "12 hours end it whatever happens"
    );
}

#[tokio::test]
async fn settings_show_mail_configuration_and_send_a_test_email() {
    let t = TestApp::start("sqlite").await;
    let admin = t.admin().await;
    let page = admin.get("/settings").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("127.0.0.1") && page.body.contains("None (plain SMTP)"));
    assert!(page.body.contains("backoffice@example.com") && page.body.contains("Send test email"));
    let r = admin
        .post("/settings/test-email", &[("to", "ops@example.com")])
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("The SMTP server answered: 250"),
        "{}",
        r.body
    );
    assert_eq!(t.smtp().messages_to("ops@example.com").len(), 1);
    t.smtp().set_mode(SmtpMode::Reject);
    admin.get("/settings").await;
    let r = admin
        .post("/settings/test-email", &[("to", "ops@example.com")])
        .await;
    assert_eq!(r.status, 502);
    assert!(
        r.body.contains("Not sent") && r.body.contains("550"),
        "{}",
        r.body
    );

    let solo = TestApp::start_with("sqlite", false).await;
    let page = solo.admin().await.get("/settings").await;
    assert!(page
        .body
        .contains("Standalone install: no SMTP server is configured"));
}

/// The `next` field of a sign-in page, as the browser would post it back.
fn next_field(body: &str) -> String {
    let at = body.find("name=\"next\" value=\"").expect("a next field") + 19;
    body[at..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn next_is_dropped_unless_it_is_a_plain_same_site_path() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        // From the address bar: the query is percent-decoded before it is checked.
        for (query, kept) in [
            ("/%09/evil.example/", "/"),
            ("%2F%0D%0ASet-Cookie:%20x=1", "/"),
            ("/%0A/evil.example", "/"),
            ("//evil.example/", "/"),
            ("/%5Cevil.example", "/"),
            ("/%C2%85x", "/"),
            ("/users%3Fpage%3D2", "/users?page=2"),
        ] {
            let b = t.browser();
            let page = b.get(&format!("/login?next={query}")).await;
            assert_eq!(page.status, 200, "{backend} {query}");
            let next = next_field(&page.body);
            assert_eq!(next, kept, "{backend} {query}");
            // Posted back with the right password, it is where the browser goes (or "/").
            let r = b
                .post(
                    "/login",
                    &[
                        ("email", t.admin_email.as_str()),
                        ("password", t.admin_password.as_str()),
                        ("next", next.as_str()),
                    ],
                )
                .await;
            assert_eq!(
                (r.status, r.location.as_deref()),
                (303, Some(kept)),
                "{backend} {query}"
            );
        }
        // A crafted form: tabs, CR/LF and other control characters never reach `Location`
        // (CR/LF used to answer 500 after the session was made).
        for next in [
            "/\t/evil.example/",
            "/\r\nSet-Cookie: x=1",
            "/users\n",
            "/a\u{7f}",
            "/\u{0}x",
            "/ /evil.example",
            "/caf\u{e9}",
        ] {
            let b = t.browser();
            b.get("/login").await;
            let r = b
                .post(
                    "/login",
                    &[
                        ("email", t.admin_email.as_str()),
                        ("password", t.admin_password.as_str()),
                        ("next", next),
                    ],
                )
                .await;
            assert_eq!(
                (r.status, r.location.as_deref()),
                (303, Some("/")),
                "{backend} {next:?}"
            );
            assert!(b.session_id().is_some(), "{backend} {next:?}: signed in");
        }
        // And on a failed sign-in the form keeps only a safe value.
        let b = t.browser();
        b.get("/login").await;
        let r = b
            .post(
                "/login",
                &[
                    ("email", t.admin_email.as_str()),
                    ("password", "not the password at all"),
                    ("next", "/\t/evil.example/"),
                ],
            )
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(next_field(&r.body), "/");
    }
}

/// The password step from client address `from` (believed: 127.0.0.1 is a trusted proxy).
async fn sign_in_from(t: &TestApp, from: &str, email: &str, password: &str) -> testkit::Page {
    let b = t.browser();
    b.get("/login").await;
    let r = b
        .client
        .post(t.url("/login"))
        .header("x-forwarded-for", from)
        .header("origin", t.url(""))
        .form(&[
            ("csrf", b.csrf().as_str()),
            ("email", email),
            ("password", password),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    testkit::Page {
        status: r.status().as_u16(),
        location: r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

fn alert(body: &str) -> &str {
    body.split("role=\"alert\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or("")
}

#[tokio::test]
async fn password_attempts_are_limited_per_client_address_whatever_the_email() {
    for backend in backends() {
        let t = TestApp::start_with_options(
            backend,
            testkit::Options {
                trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
                sign_in_attempts_per_ip: 4,
                ..Default::default()
            },
        )
        .await;
        let admin = t.admin().await;
        create_user(&admin, "jane@example.com", "Jane Doe", &["1"], false, false).await;
        disable_2fa(&admin, "jane@example.com").await;
        let attacker = "203.0.113.7";
        for (email, password) in [
            ("jane@example.com", "not her password"),
            ("nobody@example.com", "whatever"),
            ("not an email", "whatever"),
            ("jane@example.com", "still not her password"),
        ] {
            let r = sign_in_from(&t, attacker, email, password).await;
            assert_eq!(r.status, 401, "{backend} {email}");
        }
        // Over the limit: the same answer for a known email (even with its right password) and
        // an unknown one, and no password is checked.
        let known = sign_in_from(&t, attacker, "jane@example.com", USER_PASSWORD).await;
        let unknown = sign_in_from(&t, attacker, "nobody@example.com", USER_PASSWORD).await;
        for r in [&known, &unknown] {
            assert_eq!(r.status, 429, "{backend}: {}", r.body);
            let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((590..=600).contains(&wait), "{backend}: Retry-After {wait}");
            assert_eq!(
                alert(&r.body),
                "Too many sign-in attempts from your network address; try again later"
            );
            assert!(r
                .headers
                .get("set-cookie")
                .is_none_or(|c| !c.to_str().unwrap().starts_with("bo_session")));
        }
        assert_eq!(
            events_with(&t, "too many attempts from this address").await,
            1,
            "{backend}: one event per address and window"
        );
        assert_eq!(
            events_with(&t, "wrong password").await,
            2,
            "{backend}: refused attempts reach no account"
        );
        // IPv6 addresses count per /64: a fresh address in the same network gets no fresh budget.
        for from in [
            "2001:db8:7:7::1",
            "2001:db8:7:7::2",
            "2001:db8:7:7:ffff::3",
            "2001:db8:7:7::4",
        ] {
            let r = sign_in_from(&t, from, "nobody@example.com", "x").await;
            assert_eq!(r.status, 401, "{backend} {from}");
        }
        let r = sign_in_from(&t, "2001:db8:7:7::5", "nobody@example.com", "x").await;
        assert_eq!(r.status, 429, "{backend}: the same /64");
        // Other addresses are not affected, and the account was not locked by the refusals.
        let other = sign_in_from(&t, "198.51.100.2", "jane@example.com", USER_PASSWORD).await;
        assert_eq!(other.status, 303, "{backend}: {}", alert(&other.body));
        // The window ends ten minutes after the address's first attempt.
        t.clock.advance(601);
        let again = sign_in_from(&t, attacker, "jane@example.com", USER_PASSWORD).await;
        assert_eq!(again.status, 303, "{backend}: {}", alert(&again.body));
        // The count is in the database: a second instance continues it.
        let second = t.another_instance().await;
        for _ in 0..3 {
            let r = sign_in_from(&second, attacker, "nobody@example.com", "x").await;
            assert_eq!(r.status, 401, "{backend}");
        }
        let r = sign_in_from(&second, attacker, "nobody@example.com", "x").await;
        assert_eq!(r.status, 429, "{backend}: the second instance counts on");
        // Housekeeping forgets ended windows.
        let rows = || count_rows(&t.db_url, "SELECT COUNT(*) FROM sign_in_addresses");
        assert_eq!(
            rows().await,
            4,
            "{backend}: 127.0.0.1 (the administrator), two others, one /64"
        );
        t.clock.advance(601);
        t.app.purge_expired_sessions().await.unwrap();
        assert_eq!(rows().await, 0, "{backend}");
    }
}

async fn count_rows(db_url: &str, sql: &str) -> i64 {
    use sqlx::Connection;
    if db_url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(db_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(db_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    }
}

/// Asks for a reset link through the page and returns the answer.
async fn forgot(b: &testkit::Browser, email: &str) -> testkit::spawn::Page {
    b.get("/login/forgot").await;
    b.post("/login/forgot", &[("email", email)]).await
}

/// The token of the `n`-th reset mail to `to` (1-based), waiting up to 5 s for it.
async fn reset_token(t: &TestApp, to: &str, n: usize) -> String {
    for _ in 0..100 {
        let links: Vec<String> = t
            .smtp()
            .messages_to(to)
            .iter()
            .map(|m| m.body())
            .filter_map(|b| {
                let at = b.find("/password/reset?token=")? + 22;
                Some(b[at..at + 64].to_string())
            })
            .collect();
        if links.len() >= n {
            return links[n - 1].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no reset mail #{n} to {to}");
}

/// Opens a reset link in `b`; returns the reset page.
async fn open_link(b: &testkit::Browser, token: &str) -> testkit::spawn::Page {
    let r = b.get(&format!("/password/reset?token={token}")).await;
    assert_eq!(
        r.location.as_deref(),
        Some("/password/reset"),
        "the token leaves the address bar"
    );
    b.get("/password/reset").await
}

/// Submits "Choose a new password" with the same password twice.
async fn choose_password(b: &testkit::Browser, password: &str) -> testkit::spawn::Page {
    b.post(
        "/password/reset",
        &[("new_password", password), ("confirm_password", password)],
    )
    .await
}

/// Waits until the background work of `n` reset requests is in the event log.
async fn wait_for_requests(t: &TestApp, n: usize) {
    for _ in 0..100 {
        if events_with(t, "Password reset requested").await >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{n} reset requests were not recorded");
}

#[tokio::test]
async fn forgot_password_answers_alike_and_its_link_works_once_then_asks_the_second_factor() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(&admin, "ann@example.com", "Ann Lee", &["1"], false, false).await;
        create_user(&admin, "off@example.com", "Off Line", &["1"], false, false).await;
        disable_user(&admin, "off@example.com").await;
        // Ann is signed in elsewhere (code by mail, then her own password).
        let elsewhere = sign_in_fully(&t, "ann@example.com", USER_PASSWORD).await;
        let mails_before = t.smtp().messages_to("ann@example.com").len();
        assert!(mails_before > 0, "her sign-in code");

        let b = t.browser();
        assert!(b
            .get("/login")
            .await
            .body
            .contains("href=\"/login/forgot\">Forgot password?</a>"));
        let answers: Vec<_> = [
            "ann@example.com",
            "nobody@example.com",
            "off@example.com",
            "not an email",
        ]
        .iter()
        .map(|e| (e, forgot(&b, e)))
        .collect();
        let mut statuses = Vec::new();
        for (email, answer) in answers {
            let r = answer.await;
            assert!(
                r.body
                    .contains("If an account exists for that address, we&#39;ve sent a link"),
                "{email}: {}",
                r.body
            );
            statuses.push(r.status);
        }
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        wait_for_requests(&t, 4).await;
        let token = reset_token(&t, "ann@example.com", 1).await;
        assert!(t
            .smtp()
            .messages_to("off@example.com")
            .iter()
            .all(|m| !m.body().contains("/password/reset")));
        assert_eq!(
            events_with(&t, &token).await,
            0,
            "no token in the event log"
        );

        // Choose a new password: the policy applies, then the second factor is asked.
        let page = open_link(&b, &token).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("a****@e****.com"),
            "whose password: masked"
        );
        let r = b
            .post(
                "/password/reset",
                &[("new_password", "short"), ("confirm_password", "short")],
            )
            .await;
        assert_eq!(r.status, 422);
        let r = b
            .post(
                "/password/reset",
                &[
                    ("new_password", "Brand-New-Lantern-77"),
                    ("confirm_password", "Brand-New-Lantern-78"),
                ],
            )
            .await;
        assert_eq!(r.status, 422);
        assert!(r.body.contains("not the same"));
        // The error summary links to the field, which says it is invalid; nothing typed is
        // sent back.
        assert!(
            r.body.contains("id=\"error-summary\"")
                && r.body.contains("href=\"#confirm_password\"")
                && r.body
                    .contains("aria-describedby=\"confirm_password-error\"")
                && !r.body.contains("Brand-New-Lantern"),
            "{}",
            r.body
        );
        let generated = b.post("/password/reset", &[("generate", "1")]).await;
        assert!(generated.body.contains("Generated password:"));
        let r = choose_password(&b, "Brand-New-Lantern-77").await;
        assert_eq!(r.location.as_deref(), Some("/login/code"), "{}", r.body);
        let code = t.smtp().latest_code("ann@example.com");
        assert_eq!(b.enter_code(&code).await.location.as_deref(), Some("/"));
        assert_eq!(b.get("/").await.status, 200, "signed in");
        assert_eq!(
            elsewhere
                .get("/")
                .await
                .location
                .as_deref()
                .map(|l| l.starts_with("/login")),
            Some(true),
            "every other session ended"
        );
        let notice = t.smtp().wait_for("ann@example.com", mails_before + 3).await;
        let notices: Vec<_> = t
            .smtp()
            .messages_to("ann@example.com")
            .into_iter()
            .filter(|m| {
                m.header("Subject")
                    .is_some_and(|s| s.contains("password was changed"))
            })
            .collect();
        assert_eq!(notices.len(), 1, "{:?}", notice.header("Subject"));
        assert!(notices[0].body().contains("127.0.0.1"));
        assert!(events_with(&t, "Password reset completed").await >= 1);

        // The link works once.
        let again = t.browser();
        let page = open_link(&again, &token).await;
        assert_eq!(page.status, 410);
        assert!(page.body.contains("invalid or has expired"));
    }
}

#[tokio::test]
async fn a_reset_link_dies_with_a_newer_link_a_sign_in_disabling_and_its_30_minutes() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(&admin, "bo@example.com", "Bo Ray", &["1"], false, false).await;
        disable_2fa(&admin, "bo@example.com").await;
        let b = t.browser();
        let live = |token: String| {
            let t = &t;
            async move { open_link(&t.browser(), &token).await.status == 200 }
        };

        forgot(&b, "bo@example.com").await;
        let first = reset_token(&t, "bo@example.com", 1).await;
        assert!(live(first.clone()).await);
        forgot(&b, "bo@example.com").await;
        let second = reset_token(&t, "bo@example.com", 2).await;
        assert!(!live(first).await, "voided by a newer request");
        assert!(live(second.clone()).await);

        // A successful sign-in voids it.
        sign_in_fully(&t, "bo@example.com", USER_PASSWORD).await;
        assert!(!live(second).await, "voided by a sign-in");

        // Thirty minutes.
        forgot(&b, "bo@example.com").await;
        let third = reset_token(&t, "bo@example.com", 3).await;
        t.clock.advance(31 * 60);
        assert!(!live(third).await, "expired");
        let admin = t.admin().await; // the clock moved past the idle timeout

        // Disabling the account.
        forgot(&b, "bo@example.com").await;
        let fourth = reset_token(&t, "bo@example.com", 4).await;
        assert!(live(fourth.clone()).await);
        let id = user_id(&admin, "bo@example.com").await;
        assert_eq!(
            save_user(&admin, id, &[("status", "disabled")])
                .await
                .status,
            303
        );
        assert_eq!(
            save_user(&admin, id, &[("status", "enabled")]).await.status,
            303
        );
        assert!(
            !live(fourth).await,
            "voided by disabling, even once enabled again"
        );

        // Moving the account to another address.
        forgot(&b, "bo@example.com").await;
        let fifth = reset_token(&t, "bo@example.com", 5).await;
        assert!(live(fifth.clone()).await);
        assert_eq!(
            save_user(&admin, id, &[("email", "bo.new@example.com")])
                .await
                .status,
            303
        );
        assert!(!live(fifth).await, "voided by an email change");
        let notice = t.smtp().wait_for("bo@example.com", 1).await;
        assert!(
            t.smtp()
                .messages_to("bo@example.com")
                .iter()
                .any(|m| m.body().contains("bo.new@example.com")),
            "the old address is told: {:?}",
            notice.header("Subject")
        );
    }
}

/// Someone locked out by wrong guesses who proves they hold the mailbox is unlocked by the reset.
#[tokio::test]
async fn a_reset_unlocks_a_locked_account() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(&admin, "lo@example.com", "Lo Cked", &["1"], false, false).await;
        disable_2fa(&admin, "lo@example.com").await;
        let b = t.browser();
        for _ in 0..5 {
            b.sign_in("lo@example.com", "Wrong-Password-Guess-1").await;
        }
        assert_eq!(
            b.sign_in("lo@example.com", USER_PASSWORD).await.status,
            401,
            "locked"
        );
        forgot(&b, "lo@example.com").await;
        let token = reset_token(&t, "lo@example.com", 1).await;
        open_link(&b, &token).await;
        let r = choose_password(&b, "Brand-New-Lantern-77").await;
        assert_eq!(r.location.as_deref(), Some("/"), "{}", r.body);
    }
}

#[tokio::test]
async fn reset_requests_are_limited_per_account_and_per_address_and_need_smtp() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(&admin, "cy@example.com", "Cy Ng", &["1"], false, false).await;
        let b = t.browser();
        for _ in 0..7 {
            assert_eq!(forgot(&b, "cy@example.com").await.status, 200);
        }
        wait_for_requests(&t, 7).await;
        let links = t
            .smtp()
            .messages_to("cy@example.com")
            .iter()
            .filter(|m| m.body().contains("/password/reset?token="))
            .count();
        assert_eq!(links, 5, "five links per account per 15 minutes");
        for i in 0..13 {
            let r = forgot(&b, &format!("x{i}@example.com")).await;
            assert_eq!(r.status, 200, "request {}", i + 8);
        }
        let over = forgot(&b, "y@example.com").await;
        assert_eq!(over.status, 429, "the 21st request from one address");
        assert!(over.headers.get("retry-after").is_some());
        assert!(events_with(&t, "Password reset refused").await >= 1);

        let standalone = TestApp::start_with(backend, false).await;
        let page = standalone.browser().get("/login").await;
        assert!(!page.body.contains("Forgot password?"));
        assert_eq!(standalone.browser().get("/login/forgot").await.status, 404);
    }
}
