//! System › Users › Users and Groups over HTTP: the seed's flow with real mail, every field
//! error, concurrency, SMTP failure, the escalation guards, import and export.

use testkit::pages::*;
use testkit::{db::backends, SmtpMode, TestApp};

#[tokio::test]
async fn the_seed_flow_end_to_end_with_real_mail() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let support = create_group(&admin, "Support", &["clients.view", "users.view"]).await;
        let auditors = create_group(&admin, "Auditors", &["event_log.view"]).await;

        // System › Users › Users → +Create.
        let list = admin.get("/users").await;
        assert!(list.body.contains(">+Create</a>"));
        let form = admin.get("/users/new").await;
        for label in [
            ">Email</label>",
            ">Password</label>",
            "Generate",
            "Show password",
            ">Status</label>",
            ">Groups</label>",
            ">Name</label>",
            "Send to email",
            "Mask data",
            ">Save</button>",
        ] {
            assert!(form.body.contains(label), "Create user lacks {label}");
        }
        assert!(form
            .body
            .contains("The Administrators group grants all the available permissions"));
        // Generate fills a policy-passing password (no JavaScript needed).
        let generated = admin
            .post(
                "/users/new",
                &[
                    ("email", "new.user@example.com"),
                    ("status", "enabled"),
                    ("generate", "1"),
                    ("show_password", "1"),
                ],
            )
            .await;
        let at = generated
            .body
            .find("id=\"password\" name=\"password\" type=\"text\" value=\"")
            .expect("shown password field")
            + "id=\"password\" name=\"password\" type=\"text\" value=\"".len();
        let password: String = generated.body[at..].split('"').next().unwrap().to_string();
        assert_eq!(password.len(), 20);
        assert!(
            generated.body.contains("value=\"new.user@example.com\""),
            "typed email kept"
        );

        let (s, a) = (support.to_string(), auditors.to_string());
        let r = create_user_with(
            &admin,
            "new.user@example.com",
            "Nora Newman",
            &password,
            &[&s, &a],
            true,
            true,
        )
        .await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (303, Some("/users")),
            "{}",
            r.body
        );
        let list = admin.get("/users").await;
        assert!(list.body.contains("User created"), "flash");
        for col in [
            "ID",
            "Name",
            "Email",
            "Status",
            "Two Factor Authentication",
            "IP Whitelist",
            "Groups",
            "Creator",
            "Created At",
            "Mask data",
            "Last sign-in",
        ] {
            assert!(list.body.contains(&format!(">{col}")), "column {col}");
        }
        let row_at = list
            .body
            .find("<td>new.user@example.com</td>")
            .expect("listed");
        let row = &list.body[row_at..row_at + list.body[row_at..].find("</tr>").unwrap()];
        assert!(
            row.contains("Enabled")
                && row.contains("Email")
                && row.contains("Auditors, Support")
                && row.contains("Yes"),
            "{row}"
        );
        // (A narrow column may break the creator's email before its @.)
        assert!(
            row.contains("root<wbr>@example.com"),
            "creator shown: {row}"
        );

        // The credentials mail, then sign-in with the emailed code and the forced change.
        let mail = t.smtp().wait_for("new.user@example.com", 1).await;
        let body = mail.body();
        assert!(
            body.contains(&password)
                && body.contains("new.user@example.com")
                && body.contains("/login")
        );
        assert!(body.contains("choose a new password") && body.contains("sign-in code"));
        let b = t.browser();
        assert_eq!(
            b.sign_in("new.user@example.com", &password)
                .await
                .location
                .as_deref(),
            Some("/login/code")
        );
        let code = t.smtp().latest_code("new.user@example.com");
        assert_eq!(b.enter_code(&code).await.location.as_deref(), Some("/"));
        assert_eq!(
            b.get("/").await.location.as_deref(),
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
        assert_eq!(r.status, 303);
        // Their groups give Users View but not Create: the list shows, "+Create" doesn't.
        let list = b.get("/users").await;
        assert_eq!(list.status, 200);
        assert!(!list.body.contains("+Create"));
        assert_eq!(b.get("/users/new").await.status, 403);
        assert_eq!(b.get("/groups").await.status, 403);
    }
}

#[tokio::test]
async fn every_field_error_is_shown_next_to_its_field_and_input_is_kept() {
    let t = TestApp::start("sqlite").await;
    let admin = t.admin().await;
    create_user(&admin, "taken@example.com", "Taken", &["1"], false, false).await;
    /// email, password, name, groups, the field in error, and what its message says.
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<&'a str>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "not-an-email",
            USER_PASSWORD,
            "Ann Lee",
            vec!["1"],
            "email",
            "valid email",
        ),
        (
            "TAKEN@example.COM",
            USER_PASSWORD,
            "Ann Lee",
            vec!["1"],
            "email",
            "already used",
        ),
        (
            "ann@example.com",
            "short",
            "Ann Lee",
            vec!["1"],
            "password",
            "at least 12 characters",
        ),
        (
            "ann@example.com",
            "passwordpassword",
            "Ann Lee",
            vec!["1"],
            "password",
            "too easy to guess",
        ),
        (
            "ann@example.com",
            "ann-Rides-7-Horses-West",
            "Ann Lee",
            vec!["1"],
            "password",
            "must not contain the email",
        ),
        (
            "ann@example.com",
            USER_PASSWORD,
            "Ann Lee",
            vec![],
            "groups",
            "at least one group",
        ),
        (
            "ann@example.com",
            USER_PASSWORD,
            "   ",
            vec!["1"],
            "name",
            "first and last names",
        ),
    ];
    let long_name = "N".repeat(201);
    let mut all = cases;
    all.push((
        "ann@example.com",
        USER_PASSWORD,
        long_name.as_str(),
        vec!["1"],
        "name",
        "at most 200",
    ));
    for (email, password, name, groups, field, message) in all {
        let r = create_user_with(&admin, email, name, password, &groups, false, true).await;
        assert_eq!(r.status, 422, "{field}: {message}");
        let err_id = format!("id=\"{field}-error\">");
        let at = r
            .body
            .find(&err_id)
            .unwrap_or_else(|| panic!("no error next to {field}: {}", r.body));
        assert!(r.body[at..at + 200].contains(message), "{field}: {message}");
        assert!(
            r.body.contains(&format!("value=\"{}\"", email)),
            "email kept"
        );
        assert!(
            r.body.contains("name=\"mask_data\" value=\"1\" checked"),
            "checkbox kept"
        );
    }
    assert_eq!(user_count(&t).await, 2, "nothing was created");
}

#[tokio::test]
async fn fifty_concurrent_creates_of_one_email_make_one_user() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = std::sync::Arc::new(t.admin().await);
        admin.get("/users/new").await;
        let mut tasks = Vec::new();
        for i in 0..50 {
            let admin = admin.clone();
            tasks.push(tokio::spawn(async move {
                let email = if i % 2 == 0 {
                    "Race@Example.com"
                } else {
                    "race@example.COM"
                };
                let fields = [
                    ("email", email),
                    ("password", USER_PASSWORD),
                    ("status", "enabled"),
                    ("name", "Race"),
                    ("groups", "1"),
                ];
                admin.post("/users/new", &fields).await
            }));
        }
        let mut created = 0;
        for task in tasks {
            let r = task.await.unwrap();
            match r.status {
                303 => created += 1,
                422 => assert!(r.body.contains("already used"), "{}", r.body),
                other => panic!("{backend}: unexpected status {other}: {}", r.body),
            }
        }
        assert_eq!(created, 1, "{backend}");
        assert_eq!(user_count(&t).await, 2);
    }
}

#[tokio::test]
async fn smtp_failure_with_send_to_email_creates_nothing_and_keeps_the_form() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        for mode in [SmtpMode::Refuse, SmtpMode::Reject, SmtpMode::Hang] {
            t.smtp().set_mode(mode);
            let r = create_user_with(
                &admin,
                "mailless@example.com",
                "Mail Less",
                USER_PASSWORD,
                &["1"],
                true,
                false,
            )
            .await;
            assert_eq!(r.status, 422, "{mode:?}");
            assert!(
                r.body
                    .contains("could not be sent, so the user was not created"),
                "{mode:?}: {}",
                r.body
            );
            assert!(
                r.body.contains("value=\"mailless@example.com\"")
                    && r.body.contains("value=\"Mail Less\"")
            );
            assert_eq!(user_count(&t).await, 1, "{mode:?}: nothing created");
        }
        t.smtp().set_mode(SmtpMode::Accept);
        create_user(
            &admin,
            "mailless@example.com",
            "Mail Less",
            &["1"],
            true,
            false,
        )
        .await;
        assert_eq!(user_count(&t).await, 2);
    }
}

#[tokio::test]
async fn standalone_install_disables_send_to_email_and_offers_disable_2fa() {
    let t = TestApp::start_with("sqlite", false).await;
    let admin = t.admin().await;
    let form = admin.get("/users/new").await;
    assert!(
        form.body
            .contains("name=\"send_to_email\" value=\"1\"  disabled"),
        "{}",
        form.body
    );
    assert!(form
        .body
        .contains("standalone install without an SMTP server"));
    let r = create_user_with(
        &admin,
        "solo@example.com",
        "Solo",
        USER_PASSWORD,
        &["1"],
        true,
        false,
    )
    .await;
    assert_eq!(r.status, 422, "a crafted Send to email is refused");
    let r = create_user(&admin, "solo@example.com", "Solo", &["1"], false, false).await;
    let page = admin.get(r.location.as_deref().unwrap()).await;
    assert!(
        page.body.contains("User created") && page.body.contains("can't receive sign-in codes")
    );
    assert!(page.body.contains("Disable 2FA"));
    disable_2fa(&admin, "solo@example.com").await;
    let list = admin.get("/users?q=solo").await;
    let row_at = list.body.find("<td>solo@example.com</td>").unwrap();
    assert!(list.body[row_at..]
        .split("</tr>")
        .next()
        .unwrap()
        .contains("<td>Disabled</td>"));
    assert_eq!(
        t.browser()
            .sign_in("solo@example.com", USER_PASSWORD)
            .await
            .status,
        303,
        "signs in without a code"
    );
}

/// A non-administrator with user-management rights, for the guard tests.
async fn manager(t: &TestApp, admin: &testkit::Browser, perms: &[&str]) -> testkit::Browser {
    let g = create_group(admin, "Managers", perms).await.to_string();
    create_user(
        admin,
        "manager@example.com",
        "Mona Manager",
        &[&g],
        false,
        false,
    )
    .await;
    disable_2fa(admin, "manager@example.com").await;
    sign_in_fully(t, "manager@example.com", USER_PASSWORD).await
}

#[tokio::test]
async fn nobody_grants_what_they_do_not_hold() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let m = manager(
            &t,
            &admin,
            &[
                "users.view",
                "users.create",
                "users.update",
                "groups.view",
                "groups.create",
                "groups.update",
            ],
        )
        .await;
        let powerful = create_group(&admin, "Exporters", &["clients.view", "clients.export"])
            .await
            .to_string();
        let before = events_with(&t, "Action refused").await;
        // Into Administrators, or into a group with permissions the manager lacks: 403, nothing written.
        for groups in [vec!["1"], vec![powerful.as_str()]] {
            let r = create_user_with(
                &m,
                "climber@example.com",
                "Climber",
                USER_PASSWORD,
                &groups,
                false,
                false,
            )
            .await;
            assert_eq!(r.status, 403, "{groups:?}");
            assert!(r.body.contains("permissions you don"), "{}", r.body);
        }
        assert_eq!(user_count(&t).await, 2);
        // A group edited or created with a permission the manager lacks.
        m.get("/groups/new").await;
        assert_eq!(
            m.post(
                "/groups/new",
                &[("caption", "Mine"), ("perm", "settings.update")]
            )
            .await
            .status,
            403
        );
        // Putting themselves into another group (their own edit page): refused.
        let me = user_id(&admin, "manager@example.com").await;
        let r = save_user(&m, me, &[("groups", "1")]).await;
        assert_eq!(r.status, 403);
        assert!(
            events_with(&t, "Action refused").await >= before + 4,
            "refusals are logged"
        );
        // Import that grants more than the manager holds: refused, nothing changes.
        let smuggle =
            r#"{"version":1,"groups":[{"caption":"Smuggled","permissions":["settings.update"]}]}"#;
        let problems = import(&t, &m, smuggle, "disabled").await.unwrap_err();
        assert!(problems.contains("permissions you don"), "{problems}");
        assert!(!admin.get("/groups").await.body.contains("Smuggled"));
    }
}

#[tokio::test]
async fn users_update_cannot_touch_a_more_powerful_account_or_oneself() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let m = manager(&t, &admin, &["users.view", "users.update"]).await;
        let root = user_id(&admin, "root@example.com").await;
        let me = user_id(&admin, "manager@example.com").await;
        // The administrator's account: every kind of change is refused.
        for change in [
            vec![("email", "hijack@example.com")],
            vec![("password", "Hijacked-Password-Value-1")],
            vec![("status", "disabled")],
            vec![("mask_data", "1")],
            vec![("name", "Renamed")],
        ] {
            assert_eq!(save_user(&m, root, &change).await.status, 403, "{change:?}");
        }
        for action in ["unlock", "sign-out", "two-factor/enable"] {
            m.get(&format!("/users/{me}")).await;
            assert_eq!(
                m.post(&format!("/users/{root}/{action}"), &[]).await.status,
                403,
                "{action}"
            );
        }
        m.get(&format!("/users/{me}")).await;
        let r = m
            .post(
                &format!("/users/{root}/two-factor/disable"),
                &[("actor_password", NEW_PASSWORD)],
            )
            .await;
        assert_eq!(r.status, 403);
        // Themselves: status, groups and Mask data are refused; crafted fields change nothing.
        assert_eq!(
            save_user(&m, me, &[("status", "disabled")]).await.status,
            403
        );
        assert_eq!(save_user(&m, me, &[("mask_data", "1")]).await.status, 403);
        let page = admin.get(&format!("/users/{root}")).await;
        assert!(
            page.body.contains("value=\"root@example.com\""),
            "administrator untouched"
        );
        // A crafted profile form with extra fields does not change groups or mask data.
        m.get("/profile").await;
        m.post(
            "/profile/password",
            &[
                ("current_password", "wrong-current-pw"),
                ("groups", "1"),
                ("mask_data", "1"),
                ("id", &root.to_string()),
            ],
        )
        .await;
        assert_eq!(m.get("/groups").await.status, 403, "still no Groups View");
    }
}

#[tokio::test]
async fn the_last_enabled_administrator_is_protected() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        create_user(
            &admin,
            "second@example.com",
            "Second Admin",
            &["1"],
            false,
            false,
        )
        .await;
        disable_2fa(&admin, "second@example.com").await;
        let second = sign_in_fully(&t, "second@example.com", USER_PASSWORD).await;
        let root = user_id(&admin, "root@example.com").await;
        let other = user_id(&admin, "second@example.com").await;
        // Root disables the second administrator: allowed (one remains).
        assert_eq!(
            save_user(&admin, other, &[("status", "disabled")])
                .await
                .status,
            303
        );
        assert!(
            second
                .get("/")
                .await
                .location
                .unwrap()
                .starts_with("/login"),
            "their live session ended at once"
        );
        // Re-enable, then the second one tries to disable root while root is the only other one.
        assert_eq!(
            save_user(&admin, other, &[("status", "enabled")])
                .await
                .status,
            303
        );
        let g = create_group(&admin, "Viewers", &["users.view"])
            .await
            .to_string();
        assert_eq!(
            save_user(&admin, other, &[("groups", &g)]).await.status,
            303,
            "second is no longer an administrator"
        );
        // Now root is the last enabled administrator; nobody can remove or disable them.
        let last = save_user(&admin, root, &[("status", "disabled")]).await;
        assert_eq!(last.status, 403, "self status change");
        create_user(
            &admin,
            "third@example.com",
            "Third Admin",
            &["1"],
            false,
            false,
        )
        .await;
        disable_2fa(&admin, "third@example.com").await;
        let third = sign_in_fully(&t, "third@example.com", USER_PASSWORD).await;
        let third_id = user_id(&admin, "third@example.com").await;
        assert_eq!(
            save_user(&third, root, &[("status", "disabled")])
                .await
                .status,
            303,
            "two admins: allowed"
        );
        let r = save_user(&admin, third_id, &[("status", "disabled")]).await;
        assert!(
            r.location.unwrap_or_default().starts_with("/login"),
            "root was disabled; their session is gone"
        );
        let r = save_user(&third, third_id, &[("groups", &g)]).await;
        assert_eq!(r.status, 403, "own groups");
        let store = store::connect(&t.db_url).await.unwrap();
        assert_eq!(store.count_enabled_admins().await.unwrap(), 1);
    }
}

#[tokio::test]
async fn groups_rights_matrix_delete_export_and_import() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let page = admin.get("/groups/new").await;
        for s in ["Clients", "Event log", "Groups", "Settings", "Users"] {
            assert!(
                page.body.contains(&format!("<td>{s}</td>")),
                "rights row {s}"
            );
        }
        assert!(page.body.contains(">Check</summary>") && page.body.contains("Uncheck all"));
        let id = create_group(&admin, "Support", &["clients.view", "users.view"]).await;
        // Captions are unique case-insensitively, 1–100 characters.
        admin.get("/groups/new").await;
        let r = admin.post("/groups/new", &[("caption", "SUPPORT")]).await;
        assert_eq!(r.status, 422);
        assert!(r.body.contains("already exists"));
        let r = admin
            .post("/groups/new", &[("caption", &"x".repeat(101))])
            .await;
        assert_eq!(r.status, 422);
        // Administrators: listed first, can't be edited or deleted.
        let list = admin.get("/groups").await;
        assert!(list.body.find("Administrators").unwrap() < list.body.find("Support").unwrap());
        admin.get("/groups/1").await;
        assert_eq!(
            admin
                .post(
                    "/groups/1",
                    &[("caption", "Admins"), ("perm", "users.view")]
                )
                .await
                .status,
            403
        );
        assert_eq!(admin.post("/groups/1/delete", &[]).await.status, 403);
        // Export → import with Replace Disabled gives " (1)" copies; Replace Enabled replaces.
        let export = admin.get("/groups/export").await;
        assert_eq!(export.headers["content-type"], "application/json");
        let file: serde_json::Value = serde_json::from_str(&export.body).unwrap();
        assert_eq!(file["groups"][0]["caption"], "Support");
        import(&t, &admin, &export.body, "disabled")
            .await
            .expect("import");
        assert!(admin.get("/groups").await.body.contains("Support (1)"));
        import(&t, &admin, &export.body, "disabled")
            .await
            .expect("import again");
        assert!(admin.get("/groups").await.body.contains("Support (2)"));
        let changed = export.body.replace("users.view", "users.create");
        import(&t, &admin, &changed, "enabled")
            .await
            .expect("replace");
        let support = admin.get(&format!("/groups/{id}")).await;
        assert!(support
            .body
            .contains("value=\"users.create\" data-action=\"Create\" checked"));
        // Round trip: export after a replace-import of the same file is identical.
        let before = admin.get("/groups/export").await.body;
        import(&t, &admin, &before, "enabled")
            .await
            .expect("round trip");
        assert_eq!(admin.get("/groups/export").await.body, before);
        // All or nothing: one bad entry and nothing changes; every problem is listed.
        let bad = r#"{"version":1,"groups":[{"caption":"Fine","permissions":["users.view"]},{"caption":"","permissions":["users.fly"]}]}"#;
        let problems = import(&t, &admin, bad, "disabled").await.unwrap_err();
        assert!(problems.contains("Enter a caption"), "{problems}");
        let problems = import(
            &t,
            &admin,
            r#"{"version":1,"groups":[{"caption":"X","permissions":["users.fly"]}]}"#,
            "disabled",
        )
        .await
        .unwrap_err();
        assert!(problems.contains("unknown permission"), "{problems}");
        assert!(import(&t, &admin, "not json", "disabled")
            .await
            .unwrap_err()
            .contains("Not a groups export file"));
        assert!(!admin.get("/groups").await.body.contains("Fine"));
        // Delete asks for confirmation, then members lose the permissions.
        let confirm = admin.get(&format!("/groups/{id}/delete")).await;
        assert!(confirm.body.contains("Delete group Support?"));
        assert_eq!(
            admin
                .post(&format!("/groups/{id}/delete"), &[])
                .await
                .status,
            303
        );
        assert!(!admin.get("/groups").await.body.contains(">Support</a>"));
    }
}

/// Posts the import form (multipart) and returns Ok on success or the listed problems.
async fn import(
    t: &TestApp,
    b: &testkit::Browser,
    json: &str,
    replace: &str,
) -> Result<(), String> {
    b.get("/groups/import").await;
    let form = reqwest::multipart::Form::new()
        .text("csrf", b.csrf())
        .text("replace", replace.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(json.as_bytes().to_vec()).file_name("groups.json"),
        );
    let r = b
        .client
        .post(t.url("/groups/import"))
        .header("origin", t.url(""))
        .multipart(form)
        .send()
        .await
        .unwrap();
    if r.status() == 303 {
        Ok(())
    } else {
        Err(r.text().await.unwrap())
    }
}

/// The review's hole: a manager with Mask data on could create (or edit) an account with Mask
/// data off, sign in as it and read every client unmasked. Every path is refused now, through
/// the pages, with a reason and an "Action refused" event.
#[tokio::test]
async fn a_masked_manager_can_not_unmask_anyone_or_touch_an_unmasked_account() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let managers = create_group(
            &admin,
            "Managers",
            &["users.view", "users.create", "users.update", "clients.view"],
        )
        .await
        .to_string();
        let viewers = create_group(&admin, "Viewers", &["clients.view"])
            .await
            .to_string();
        create_user(
            &admin,
            "colleague@example.com",
            "Open Colleague",
            &[&viewers],
            false,
            false,
        )
        .await;
        let m = staff_member(
            &t,
            &admin,
            "masked@example.com",
            "Masked Manager",
            &[&managers],
            true,
        )
        .await;
        let me = user_id(&admin, "masked@example.com").await;
        let colleague = user_id(&admin, "colleague@example.com").await;
        let before = events_with(&t, "Action refused").await;
        let users_before = user_count(&t).await;

        // Create user with Mask data off: refused, nothing written.
        let r = create_user_with(
            &m,
            "unmasked@example.com",
            "Un Masked",
            USER_PASSWORD,
            &[&viewers],
            false,
            false,
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(
            r.body.contains("unmasked client personal data"),
            "{}",
            r.body
        );
        assert_eq!(user_count(&t).await, users_before);

        // With Mask data on it is allowed; switching it off afterwards is not.
        create_user(
            &m,
            "newbie@example.com",
            "New Bie",
            &[&viewers],
            false,
            true,
        )
        .await;
        let newbie = user_id(&admin, "newbie@example.com").await;
        let r = save_user(&m, newbie, &[("mask_data", "")]).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(admin
            .get(&format!("/users/{newbie}"))
            .await
            .body
            .contains("name=\"mask_data\" value=\"1\" checked"));

        // The unmasked colleague's account: no change of any kind.
        for change in [
            vec![("name", "Renamed")],
            vec![("password", "Hijacked-Password-Value-1")],
            vec![("email", "hijack@example.com")],
            vec![("status", "disabled")],
            vec![("mask_data", "1")],
        ] {
            let r = save_user(&m, colleague, &change).await;
            assert_eq!(r.status, 403, "{change:?}: {}", r.body);
        }
        for action in ["unlock", "sign-out", "two-factor/enable"] {
            m.get(&format!("/users/{colleague}")).await;
            let r = m.post(&format!("/users/{colleague}/{action}"), &[]).await;
            assert_eq!(r.status, 403, "{action}");
        }
        m.get(&format!("/users/{colleague}")).await;
        let r = m
            .post(
                &format!("/users/{colleague}/two-factor/disable"),
                &[("actor_password", NEW_PASSWORD)],
            )
            .await;
        assert_eq!(r.status, 403, "disable 2FA of an unmasked colleague");

        // Their own Mask data stays on.
        let r = save_user(&m, me, &[("mask_data", "")]).await;
        assert_eq!(r.status, 403);
        assert!(
            events_with(&t, "Action refused").await >= before + 11,
            "each refusal is an event"
        );
        let page = admin.get(&format!("/users/{colleague}")).await;
        assert!(
            page.body.contains("value=\"Open Colleague\""),
            "colleague untouched"
        );
    }
}

/// Nobody edits, deletes or imports over a group whose rights they don't all hold, even to
/// take rights away; a group within their rights they may change.
#[tokio::test]
async fn nobody_changes_a_group_stronger_than_themself() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let m = manager(
            &t,
            &admin,
            &[
                "groups.view",
                "groups.create",
                "groups.update",
                "groups.delete",
                "clients.view",
            ],
        )
        .await;
        let strong = create_group(&admin, "Exporters", &["clients.view", "clients.export"]).await;
        let weak = create_group(&admin, "Readers", &["clients.view"]).await;
        let before = events_with(&t, "Action refused").await;

        m.get(&format!("/groups/{strong}")).await;
        let r = m
            .post(
                &format!("/groups/{strong}"),
                &[("caption", "Exporters"), ("perm", "clients.view")],
            )
            .await;
        assert_eq!(
            r.status, 403,
            "stripping rights from a stronger group: {}",
            r.body
        );
        m.get(&format!("/groups/{strong}")).await;
        let r = m.post(&format!("/groups/{strong}/delete"), &[]).await;
        assert_eq!(r.status, 403, "deleting a stronger group");
        let over =
            r#"{"version":1,"groups":[{"caption":"Exporters","permissions":["clients.view"]}]}"#;
        let problems = import(&t, &m, over, "enabled").await.unwrap_err();
        assert!(
            problems.contains("would replace a group that"),
            "{problems}"
        );
        let page = admin.get(&format!("/groups/{strong}")).await;
        assert!(
            page.body
                .contains("value=\"clients.export\" data-action=\"Export\" checked"),
            "Exporters keeps its rights"
        );
        assert!(events_with(&t, "Action refused").await >= before + 3);

        // Within their rights: allowed.
        m.get(&format!("/groups/{weak}")).await;
        let r = m
            .post(
                &format!("/groups/{weak}"),
                &[("caption", "Readers 2"), ("perm", "clients.view")],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        m.get(&format!("/groups/{weak}")).await;
        assert_eq!(
            m.post(&format!("/groups/{weak}/delete"), &[]).await.status,
            303
        );
    }
}

/// Nobody lifts a restriction on themself: the administrator can't disable their own 2FA
/// through Actions (enabling it is tightening, and allowed).
#[tokio::test]
async fn own_two_factor_can_not_be_disabled_through_actions() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let root = user_id(&admin, "root@example.com").await;
        admin.get(&format!("/users/{root}")).await;
        let r = admin
            .post(&format!("/users/{root}/two-factor/enable"), &[])
            .await;
        assert_eq!(r.status, 303, "enabling one's own 2FA tightens: {}", r.body);
        admin
            .get(&format!("/users/{root}/two-factor/disable"))
            .await;
        let r = admin
            .post(
                &format!("/users/{root}/two-factor/disable"),
                &[("actor_password", testkit::spawn::ADMIN_PASSWORD)],
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.body.contains("your own two-factor"), "{}", r.body);
    }
}

/// Holding every one of today's permissions is not being an administrator (Administrators also
/// holds the permissions later versions add): such a deputy can't touch an administrator's
/// account or make anyone one.
#[tokio::test]
async fn every_permission_does_not_make_an_administrator() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let all: Vec<String> = domain::Permission::catalogue().map(|p| p.code()).collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let everything = create_group(&admin, "Everything", &all).await.to_string();
        let deputy = staff_member(
            &t,
            &admin,
            "deputy@example.com",
            "Dep Uty",
            &[&everything],
            false,
        )
        .await;
        let root = user_id(&admin, "root@example.com").await;
        for change in [vec![("mask_data", "1")], vec![("status", "disabled")]] {
            let r = save_user(&deputy, root, &change).await;
            assert_eq!(r.status, 403, "{change:?}: {}", r.body);
            assert!(
                r.body.contains("membership of Administrators"),
                "{}",
                r.body
            );
        }
        let r = create_user_with(
            &deputy,
            "made@example.com",
            "Made Admin",
            USER_PASSWORD,
            &["1"],
            false,
            false,
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.body);
        let store = store::connect(&t.db_url).await.unwrap();
        assert_eq!(store.count_enabled_admins().await.unwrap(), 1);
    }
}

/// One's own sign-in email and password are the way back in: they change on the profile (with
/// the current password), never through the edit page or the API.
#[tokio::test]
async fn own_email_and_password_do_not_change_through_the_edit_page() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let root = user_id(&admin, "root@example.com").await;
        for change in [
            vec![("email", "taken.over@example.com")],
            vec![("password", "Hijacked-Password-Value-1")],
        ] {
            let r = save_user(&admin, root, &change).await;
            assert_eq!(r.status, 403, "{change:?}: {}", r.body);
        }
        assert_eq!(
            save_user(&admin, root, &[("name", "Root Renamed")])
                .await
                .status,
            303
        );
        assert!(admin
            .get(&format!("/users/{root}"))
            .await
            .body
            .contains("value=\"root@example.com\""));
    }
}

/// Changing a group changes its members: a masked manager can't add a right to (or strip one
/// from, or delete) a group an unmasked colleague is in.
#[tokio::test]
async fn a_group_with_stronger_members_is_refused() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let managers = create_group(
            &admin,
            "Managers",
            &[
                "groups.view",
                "groups.create",
                "groups.update",
                "groups.delete",
                "clients.view",
                "clients.export",
            ],
        )
        .await
        .to_string();
        let desk = create_group(&admin, "Desk", &["clients.view"]).await;
        create_user(
            &admin,
            "open@example.com",
            "Open Desk",
            &[&desk.to_string()],
            false,
            false,
        )
        .await;
        let m = staff_member(
            &t,
            &admin,
            "masked@example.com",
            "Mask Ed",
            &[&managers],
            true,
        )
        .await;
        m.get(&format!("/groups/{desk}")).await;
        let r = m
            .post(
                &format!("/groups/{desk}"),
                &[
                    ("caption", "Desk"),
                    ("perm", "clients.view"),
                    ("perm", "clients.export"),
                ],
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(
            r.body.contains("members hold more than you do"),
            "{}",
            r.body
        );
        m.get(&format!("/groups/{desk}")).await;
        assert_eq!(
            m.post(&format!("/groups/{desk}/delete"), &[]).await.status,
            403
        );
        let over = r#"{"version":1,"groups":[{"caption":"Desk","permissions":["clients.view","clients.export"]}]}"#;
        let refused = import(&t, &m, over, "enabled").await.unwrap_err();
        assert!(refused.contains("with its"), "{refused}");
        let page = admin.get(&format!("/groups/{desk}")).await;
        assert!(!page
            .body
            .contains("value=\"clients.export\" data-action=\"Export\" checked"));
    }
}

/// Actions › Reset password: posts the form (after loading it, for the CSRF token).
async fn reset_password(
    b: &testkit::Browser,
    id: i64,
    fields: &[(&str, &str)],
) -> testkit::spawn::Page {
    b.get(&format!("/users/{id}/reset-password")).await;
    b.post(&format!("/users/{id}/reset-password"), fields).await
}

#[tokio::test]
async fn an_administrators_reset_mails_the_credentials_or_changes_nothing() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        let admin = t.admin().await;
        let viewers = create_group(&admin, "Viewers", &["clients.view"])
            .await
            .to_string();
        let session =
            staff_member(&t, &admin, "dee@example.com", "Dee Fox", &[&viewers], false).await;
        let dee = user_id(&admin, "dee@example.com").await;
        let edit = admin.get(&format!("/users/{dee}")).await;
        assert!(edit.body.contains(">Reset password</a>"));

        // Generate fills in a password; a policy-failing one is refused.
        let g = reset_password(&admin, dee, &[("generate", "1")]).await;
        assert!(g
            .body
            .contains("id=\"password\" name=\"password\" type=\"text\" value=\""));
        let r = reset_password(&admin, dee, &[("password", "short")]).await;
        assert_eq!(r.status, 422);

        // The SMTP server refuses, or hangs: nothing changes, and the form says why.
        for mode in [SmtpMode::Reject, SmtpMode::Hang] {
            t.smtp().set_mode(mode);
            let r = reset_password(
                &admin,
                dee,
                &[
                    ("password", "Harbour-Copper-Violet-31"),
                    ("send_to_email", "1"),
                ],
            )
            .await;
            assert_eq!(r.status, 422, "{mode:?}: {}", r.body);
            assert!(
                r.body.contains("so the password was not reset"),
                "{}",
                r.body
            );
            assert_eq!(
                session.get("/").await.status,
                200,
                "{mode:?}: her session lives on"
            );
        }
        t.smtp().set_mode(SmtpMode::Accept);
        assert!(events_with(&t, "Credentials mail not sent; password not reset").await >= 2);

        // Accepted: the mail carries the new password, sessions end, a change is forced.
        let r = reset_password(
            &admin,
            dee,
            &[
                ("password", "Harbour-Copper-Violet-31"),
                ("send_to_email", "1"),
            ],
        )
        .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let mail = t
            .smtp()
            .messages_to("dee@example.com")
            .into_iter()
            .rfind(|m| m.body().contains("Harbour-Copper-Violet-31"))
            .expect("credentials mail");
        assert!(mail
            .body()
            .contains("choose a new password at your next sign-in"));
        assert!(session
            .get("/")
            .await
            .location
            .unwrap()
            .starts_with("/login"));
        let b = t.browser();
        b.sign_in("dee@example.com", "Harbour-Copper-Violet-31")
            .await;
        assert_eq!(
            b.get("/").await.location.as_deref(),
            Some("/password/change")
        );
        assert!(events_with(&t, "Password reset").await >= 1);

        // The guards: not one's own, not a stronger account.
        let root = user_id(&admin, "root@example.com").await;
        let r = reset_password(&admin, root, &[("password", "Harbour-Copper-Violet-32")]).await;
        assert_eq!(r.status, 403, "own password: on the profile");
        let m = manager(&t, &admin, &["users.view", "users.update"]).await;
        let r = reset_password(&m, root, &[("password", "Harbour-Copper-Violet-33")]).await;
        assert_eq!(r.status, 403, "an administrator's password");
    }
}
