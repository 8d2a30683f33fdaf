//! Two-factor authentication with an authenticator app (TOTP), recovery codes, Require 2FA and
//! the administrator's reset, through the pages as a person would: enrolment, sign-in, replay
//! (also across two instances on PostgreSQL), clock skew with the test clock, lockout, recovery
//! codes, the API's `two_factor` values, and the secret key at start-up (the real binary).

use crate::BIN;
use domain::totp;
use std::time::Duration;
use testkit::pages::*;
use testkit::spawn::ADMIN_PASSWORD;
use testkit::{base32_decode, db::backends, process, Browser, TestApp};

/// The secret key shown on the TOTP set-up page.
fn shown_secret(page: &str) -> Vec<u8> {
    let at = page.find("class=\"secret-key\">").expect("a Secret key") + 19;
    base32_decode(page[at..].split('<').next().unwrap())
}

/// The recovery codes shown once.
fn shown_codes(page: &str) -> Vec<String> {
    let list = page
        .split("<ol class=\"recovery-codes\">")
        .nth(1)
        .expect("recovery codes")
        .split("</ol>")
        .next()
        .unwrap();
    list.split("<code>")
        .skip(1)
        .map(|c| c.split("</code>").next().unwrap().to_string())
        .collect()
}

/// The app's current time step.
fn step_now(t: &TestApp) -> i64 {
    totp::step_at(t.app.now().millis().div_euclid(1000))
}

/// The app's code `offset` steps from now.
fn code(t: &TestApp, secret: &[u8], offset: i64) -> String {
    totp::code_at(secret, step_now(t) + offset)
}

/// Moves the test clock one second into the next step, so a test has 29 s before a step ends.
fn align(t: &TestApp) {
    let ms = t.app.now().millis().rem_euclid(30_000);
    t.clock.advance((30_000 - ms) / 1000 + 1);
}

/// Enrols an authenticator app for the signed-in `b`: returns the secret and recovery codes.
async fn enrol_totp(t: &TestApp, b: &Browser, password: &str) -> (Vec<u8>, Vec<String>) {
    let dialog = b.get("/two-factor").await;
    assert_eq!(dialog.status, 200);
    assert!(
        dialog.body.contains("TOTP (authenticator app)"),
        "{}",
        dialog.body
    );
    let chosen = b.get("/two-factor/setup?method=totp").await;
    assert_eq!(chosen.location.as_deref(), Some("/two-factor/totp"));
    let setup = b.get("/two-factor/totp").await;
    assert_eq!(setup.status, 200);
    assert!(setup.body.contains("<svg"), "a QR code made by the server");
    assert!(setup.body.contains("Secret key"));
    let secret = shown_secret(&setup.body);
    assert_eq!(secret.len(), 20);
    // A wrong code switches nothing.
    let wrong = code(t, &secret, 3);
    let r = b
        .post(
            "/two-factor/totp",
            &[("code", &wrong), ("password", password)],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // The right code with a wrong password neither.
    let r = b
        .post(
            "/two-factor/totp",
            &[("code", &code(t, &secret, 0)), ("password", "not it")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("The password is not correct"));
    let r = b
        .post(
            "/two-factor/totp",
            &[("code", &code(t, &secret, 0)), ("password", password)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("I have saved them") && r.body.contains("Download"));
    let codes = shown_codes(&r.body);
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

/// Signs out and back in up to the second step.
async fn password_step(t: &TestApp, email: &str, password: &str) -> Browser {
    let b = t.browser();
    let r = b.sign_in(email, password).await;
    assert_eq!(r.location.as_deref(), Some("/login/code"), "{}", r.body);
    b
}

async fn two_factor_of(admin: &Browser, email: &str) -> String {
    let user = testkit::pages::user_json(admin, email).await;
    user["two_factor"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn totp_enrolment_then_sign_in_with_the_app_code() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        align(&t);
        let admin = t.admin().await;
        // The top bar's profile menu offers Enable 2FA.
        let home = admin.get("/").await;
        assert!(home.body.contains("Enable 2FA") && home.body.contains(&t.admin_email));
        let (secret, _) = enrol_totp(&t, &admin, ADMIN_PASSWORD).await;
        let home = admin.get("/").await;
        assert!(home.body.contains("Two-factor authentication</a>"));
        assert_eq!(two_factor_of(&admin, &t.admin_email).await, "totp");
        assert_eq!(events_with(&t, "Two-factor authentication set up").await, 1);
        // The secret is stored sealed: the database holds no base32 or raw form of it.
        let dump = db_text(&t, "SELECT secret FROM totp_secrets").await;
        assert!(dump.starts_with("v2:") && !dump.contains(&hex(&secret)));

        // Sign-in: password, then the app's code. The code that enrolled is spent.
        let b = password_step(&t, &t.admin_email, ADMIN_PASSWORD).await;
        let page = b.get("/login/code").await;
        assert!(page.body.contains("authenticator app"), "{}", page.body);
        assert!(page.body.contains("Use a recovery code"));
        // No emailed code for an app account: no Resend, and asking anyway mails nothing.
        assert!(!page.body.contains("Resend code"));
        let mails = t.smtp().messages_to(&t.admin_email).len();
        assert_eq!(b.post("/login/code/resend", &[]).await.status, 409);
        assert_eq!(t.smtp().messages_to(&t.admin_email).len(), mails);
        let r = b.enter_code(&code(&t, &secret, 0)).await;
        assert_eq!(r.status, 422, "the enrolment's step is spent");
        t.clock.advance(30);
        let r = b.enter_code(&code(&t, &secret, 0)).await;
        assert_eq!(r.location.as_deref(), Some("/"), "{}", r.body);
        assert_eq!(b.get("/users").await.status, 200);
        assert!(events_with(&t, "authenticator app").await >= 1);
        // The Users list shows TOTP and filters by it.
        let list = b.get("/users?two_factor=totp").await;
        assert!(list.body.contains("<td>TOTP</td>") && list.body.contains(&t.admin_email));
        assert!(!b
            .get("/users?two_factor=email")
            .await
            .body
            .contains(&format!("<td>{}</td>", t.admin_email)));
        // The OpenAPI document names the new values.
        let doc = b.get("/api/openapi.json").await.body;
        assert!(doc.contains("\"totp\"") && doc.contains("\"passkey\""));
    }
}

/// Text of one column of the test database (for "what a dump holds").
async fn db_text(t: &TestApp, sql: &str) -> String {
    use sqlx::Row;
    if t.db_url.starts_with("sqlite") {
        let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&t.db_url)
            .await
            .unwrap();
        sqlx::query(sql)
            .fetch_one(&mut c)
            .await
            .unwrap()
            .get::<String, _>(0)
    } else {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&t.db_url)
            .await
            .unwrap();
        sqlx::query(sql)
            .fetch_one(&mut c)
            .await
            .unwrap()
            .get::<String, _>(0)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn a_code_is_accepted_once_and_one_step_either_side_of_the_clock() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        align(&t);
        let admin = t.admin().await;
        let (secret, _) = enrol_totp(&t, &admin, ADMIN_PASSWORD).await;
        t.clock.advance(60);
        // Two steps off either way: refused (each counts as a failure).
        let b = password_step(&t, &t.admin_email, ADMIN_PASSWORD).await;
        assert_eq!(b.enter_code(&code(&t, &secret, 2)).await.status, 422);
        assert_eq!(b.enter_code(&code(&t, &secret, -2)).await.status, 422);
        // One step behind (a phone whose clock is slow, or a slow typist): accepted.
        let r = b.enter_code(&code(&t, &secret, -1)).await;
        assert_eq!(r.location.as_deref(), Some("/"));
        // The same code again, in another sign-in: refused (replay).
        let again = password_step(&t, &t.admin_email, ADMIN_PASSWORD).await;
        assert_eq!(again.enter_code(&code(&t, &secret, -1)).await.status, 422);
        // One step ahead (a fast phone clock): accepted; then the current step is spent too.
        let r = again.enter_code(&code(&t, &secret, 1)).await;
        assert_eq!(r.location.as_deref(), Some("/"));
        let third = password_step(&t, &t.admin_email, ADMIN_PASSWORD).await;
        assert_eq!(third.enter_code(&code(&t, &secret, 0)).await.status, 422);
        // The test clock moves on 31 s: the code shown before is one step behind and still works
        // if unspent; a new step's code works.
        t.clock.advance(60);
        let shown = code(&t, &secret, 0);
        t.clock.advance(31);
        let r = third.enter_code(&shown).await;
        assert_eq!(r.location.as_deref(), Some("/"), "{}", r.body);
    }
}

#[tokio::test]
async fn wrong_codes_count_toward_the_lockout() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        align(&t);
        let admin = t.admin().await;
        let (secret, _) = enrol_totp(&t, &admin, ADMIN_PASSWORD).await;
        t.clock.advance(30);
        // The wrong password the set-up was given counts too (changing two-factor settings
        // takes a sign-in attempt): four wrong codes make the fifth failure.
        assert_eq!(
            events_with(&t, "wrong password (two-factor settings)").await,
            1
        );
        let b = password_step(&t, &t.admin_email, ADMIN_PASSWORD).await;
        for _ in 0..3 {
            assert_eq!(b.enter_code("000000").await.status, 422);
        }
        let fifth = b.enter_code("000000").await;
        assert_eq!(fifth.status, 401, "the sign-in ends at the fifth failure");
        assert_eq!(events_with(&t, "Account locked").await, 1);
        // Locked: even the right password and code don't get in for a minute.
        let r = t.browser().sign_in(&t.admin_email, ADMIN_PASSWORD).await;
        assert_eq!(r.status, 401);
        t.clock.advance(61);
        let b = password_step(&t, &t.admin_email, ADMIN_PASSWORD).await;
        let r = b.enter_code(&code(&t, &secret, 0)).await;
        assert_eq!(r.location.as_deref(), Some("/"));
        assert!(events_with(&t, "wrong code").await >= 4);
    }
}

#[tokio::test]
async fn recovery_codes_work_once_and_regenerating_voids_the_old_ones() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        align(&t);
        let admin = t.admin().await;
        let (_, codes) = enrol_totp(&t, &admin, ADMIN_PASSWORD).await;
        // Stored hashed: no code appears in the database.
        let stored = db_text(&t, "SELECT code_hash FROM recovery_codes").await;
        assert!(!codes.iter().any(|c| stored.contains(&c.replace('-', ""))));

        let b = password_step(&t, &t.admin_email, ADMIN_PASSWORD).await;
        assert_eq!(b.get("/login/recovery").await.status, 200);
        let r = b
            .post(
                "/login/recovery",
                &[("recovery_code", &codes[0].to_uppercase())],
            )
            .await;
        assert_eq!(r.location.as_deref(), Some("/"), "{}", r.body);
        assert_eq!(events_with(&t, "Recovery code used").await, 1);
        let overview = b.get("/two-factor").await;
        assert!(overview
            .body
            .contains("Recovery codes left: <strong>9</strong>"));

        // Used once: the same code is refused, and the refusal counts as a failure.
        let again = password_step(&t, &t.admin_email, ADMIN_PASSWORD).await;
        again.get("/login/recovery").await;
        let r = again
            .post("/login/recovery", &[("recovery_code", &codes[0])])
            .await;
        assert_eq!(r.status, 422);
        assert!(events_with(&t, "wrong recovery code").await >= 1);

        // Regenerating needs the password and voids the old set.
        b.get("/two-factor").await;
        let r = b
            .post("/two-factor/recovery-codes", &[("password", "wrong")])
            .await;
        assert_eq!(r.status, 422);
        // The error summary names the regenerate form's own password field.
        assert!(
            r.body.contains("id=\"error-summary\"") && r.body.contains("href=\"#regen_password\""),
            "{}",
            r.body
        );
        assert!(r.body.contains("aria-invalid=\"true\""), "{}", r.body);
        let r = b
            .post(
                "/two-factor/recovery-codes",
                &[("password", ADMIN_PASSWORD)],
            )
            .await;
        assert_eq!(r.status, 200);
        let fresh = shown_codes(&r.body);
        assert_eq!(fresh.len(), 10);
        assert_eq!(events_with(&t, "Recovery codes regenerated").await, 1);
        let r = again
            .post("/login/recovery", &[("recovery_code", &codes[1])])
            .await;
        assert_eq!(r.status, 422, "an old code no longer works");
        let r = again
            .post("/login/recovery", &[("recovery_code", &fresh[0])])
            .await;
        assert_eq!(r.location.as_deref(), Some("/"));
        // No code reached the event log.
        assert_eq!(events_with(&t, &fresh[0]).await, 0);
        assert_eq!(events_with(&t, &codes[0]).await, 0);
    }
}

#[tokio::test]
async fn require_2fa_keeps_an_account_without_it_out_of_everything_until_it_enrols() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        align(&t);
        let admin = t.admin().await;
        // Off (the default): the prompt with Enable 2FA, which can be dismissed.
        let home = admin.get("/").await;
        assert!(home.body.contains("has no two-factor authentication"));
        let r = admin.post("/two-factor/prompt/dismiss", &[]).await;
        assert_eq!(r.status, 303);
        assert!(!admin
            .get("/")
            .await
            .body
            .contains("has no two-factor authentication"));

        // An API token made before Require 2FA: it is no way around it.
        let api_token = token_for(&t, &admin).await;
        let with_token = |path: &str| admin.client.get(t.url(path)).bearer_auth(&api_token).send();
        assert_eq!(with_token("/api/v1/me").await.unwrap().status(), 200);
        admin.get("/settings").await;
        let r = admin
            .post("/settings/two-factor", &[("require_two_factor", "on")])
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(events_with(&t, "Require 2FA").await, 1);
        assert_eq!(with_token("/api/v1/me").await.unwrap().status(), 403);
        assert_eq!(with_token("/api/v1/users").await.unwrap().status(), 403);
        // Nor can a new token be made before enrolling.
        let made = admin
            .request(reqwest::Method::POST, "/api/v1/me/tokens")
            .header("x-csrf-token", admin.csrf())
            .header("origin", t.url(""))
            .json(&serde_json::json!({"name": "around 2FA"}))
            .send()
            .await
            .unwrap();
        assert_eq!(made.status(), 403);
        let session = {
            // A session signed in before enrolling: held at the set-up too.
            let b = t.browser();
            b.sign_in(&t.admin_email, ADMIN_PASSWORD).await;
            assert_eq!(
                b.get("/users").await.location.as_deref(),
                Some("/two-factor")
            );
            b
        };
        // Every page leads to the set-up; the API refuses.
        assert_eq!(
            admin.get("/users").await.location.as_deref(),
            Some("/two-factor")
        );
        assert_eq!(
            admin.get("/").await.location.as_deref(),
            Some("/two-factor")
        );
        let api = admin
            .request(reqwest::Method::GET, "/api/v1/me")
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), 403);
        let page = admin.get("/two-factor").await;
        assert!(page.body.contains("Two-factor authentication is required"));
        enrol_totp(&t, &admin, ADMIN_PASSWORD).await;
        assert_eq!(admin.get("/users").await.status, 200);
        assert_eq!(session.get("/users").await.status, 200);
        assert_eq!(with_token("/api/v1/me").await.unwrap().status(), 200);

        // A user whose 2FA an administrator reset is held at the set-up after the password.
        let group = create_group(&admin, "Readers", &["users.view"])
            .await
            .to_string();
        staff_member(&t, &admin, "nia@example.com", "Nia Ray", &[&group], false).await;
        let nia = t.browser();
        let r = nia.sign_in("nia@example.com", NEW_PASSWORD).await;
        assert_eq!(r.status, 303);
        assert_eq!(
            nia.get("/clients").await.location.as_deref(),
            Some("/two-factor")
        );
        let choices = nia.get("/two-factor").await.body;
        assert!(choices.contains("TOTP") && choices.contains("Enable 2FA"));
        // Off again: the prompt, not the wall.
        admin.get("/settings").await;
        admin.post("/settings/two-factor", &[]).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(nia.get("/").await.status, 200);
    }
}

#[tokio::test]
async fn an_administrator_resets_whatever_method_a_user_has() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        align(&t);
        let admin = t.admin().await;
        let users_group = create_group(&admin, "Viewers", &["users.view"])
            .await
            .to_string();
        let b = staff_member(
            &t,
            &admin,
            "omar@example.com",
            "Omar Lee",
            &[&users_group],
            false,
        )
        .await;
        let (secret, _) = enrol_totp(&t, &b, NEW_PASSWORD).await;
        assert_eq!(two_factor_of(&admin, "omar@example.com").await, "totp");
        // Changing the method asks for a current code when the sign-in is not recent.
        t.clock.advance(16 * 60);
        let b = password_step(&t, "omar@example.com", NEW_PASSWORD).await;
        b.enter_code(&code(&t, &secret, 0)).await;
        t.clock.advance(16 * 60);
        b.get("/two-factor/totp").await;
        assert!(b
            .get("/two-factor/totp")
            .await
            .body
            .contains("Current code"));

        // The administrator's session idled out meanwhile: sign in again.
        let admin = t.admin().await;
        let id = user_id(&admin, "omar@example.com").await;
        let edit = admin.get(&format!("/users/{id}")).await;
        assert!(edit.body.contains("Disable 2FA"));
        disable_2fa(&admin, "omar@example.com").await;
        assert_eq!(two_factor_of(&admin, "omar@example.com").await, "disabled");
        assert_eq!(
            events_with(&t, "2FA disabled").await,
            2,
            "the staff member's, and this one"
        );
        // Password only now; the old secret is gone (a new set-up shows a new one).
        let again = sign_in_fully(&t, "omar@example.com", NEW_PASSWORD).await;
        let setup = again.get("/two-factor/totp").await;
        assert_ne!(shown_secret(&setup.body), secret);
        // Nobody resets their own.
        let own = admin
            .post(
                &format!(
                    "/users/{}/two-factor/disable",
                    user_id(&admin, &t.admin_email).await
                ),
                &[("actor_password", ADMIN_PASSWORD)],
            )
            .await;
        assert_eq!(own.status, 403);
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL (two instances on one database): set BACKOFFICE_TEST_POSTGRES_URL and run with --ignored"]
async fn a_code_is_accepted_once_whichever_instance_checks_it() {
    let a = TestApp::start("postgres").await;
    let b = a.another_instance().await;
    align(&a);
    let admin = a.admin().await;
    let (secret, _) = enrol_totp(&a, &admin, ADMIN_PASSWORD).await;
    a.clock.advance(30);
    // The secret sealed on A opens on B (one key for every instance).
    for round in 0..3 {
        let on_a = password_step(&a, &a.admin_email, ADMIN_PASSWORD).await;
        let on_b = password_step(&b, &b.admin_email, ADMIN_PASSWORD).await;
        on_a.get("/login/code").await;
        on_b.get("/login/code").await;
        let c = code(&a, &secret, 0);
        let fields = [("code", c.as_str())];
        let (ra, rb) = tokio::join!(
            on_a.post("/login/code", &fields),
            on_b.post("/login/code", &fields)
        );
        let ok = [&ra, &rb]
            .iter()
            .filter(|r| r.location.as_deref() == Some("/"))
            .count();
        assert_eq!(
            ok, 1,
            "round {round}: exactly one instance accepts the code"
        );
        a.clock.advance(30);
    }
}

/// The real binary: a missing or wrong key stops start-up with exit code 2.
#[test]
fn a_missing_or_wrong_secret_key_stops_start_up() {
    use std::process::Stdio;
    let dir = process::temp_dir("secret-key");
    let db = format!("sqlite://{}/bo.db", dir.display());
    let run = |envs: &[(&str, String)]| {
        let mut c = process::command(BIN, &dir);
        c.env("BACKOFFICE_DATABASE_URL", &db)
            .env("BACKOFFICE_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            c.env(k, v);
        }
        let mut child = c.arg("serve").spawn().unwrap();
        // A server that started is stopped at once; one that refused has exited.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut printed = String::new();
        loop {
            while let Ok(line) = rx.try_recv() {
                printed.push_str(&line);
                printed.push('\n');
            }
            if printed.contains("Back Office listening") {
                let _ = child.kill();
                let _ = child.wait();
                return (None, printed);
            }
            if let Some(status) = child.try_wait().unwrap() {
                let out = child.wait_with_output().unwrap();
                return (
                    status.code(),
                    printed + &String::from_utf8_lossy(&out.stderr),
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "neither started nor stopped: {printed}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // First start: the key file is made next to the database, readable by its owner only.
    let (code, out) = run(&[]);
    assert_eq!(code, None, "the server runs: {out}");
    let key_file = dir.join("secret.key");
    let first = std::fs::read_to_string(&key_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Missing: not silently replaced.
    std::fs::remove_file(&key_file).unwrap();
    let (code, out) = run(&[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("BACKOFFICE_SECRET_KEY_FILE") && out.contains("missing"),
        "{out}"
    );
    // Another key: refused.
    let other = dir.join("other.key");
    std::fs::write(
        &other,
        app::secret_box::SecretKey::generate().to_file_contents(),
    )
    .unwrap();
    let (code, out) = run(&[("BACKOFFICE_SECRET_KEY_FILE", other.display().to_string())]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("not the one this database"), "{out}");
    // Not a key at all.
    std::fs::write(&other, "hello").unwrap();
    let (code, out) = run(&[("BACKOFFICE_SECRET_KEY_FILE", other.display().to_string())]);
    assert_eq!(code, Some(2), "{out}");
    // The right one, named explicitly: runs.
    std::fs::write(&other, &first).unwrap();
    let (code, out) = run(&[("BACKOFFICE_SECRET_KEY_FILE", other.display().to_string())]);
    assert_eq!(code, None, "{out}");
    // PostgreSQL without the setting: refused before anything else.
    let (code, out) = {
        let out = process::command(BIN, &dir)
            .env(
                "BACKOFFICE_DATABASE_URL",
                "postgres://nobody@127.0.0.1:1/none",
            )
            .env("BACKOFFICE_LISTEN", "127.0.0.1:0")
            .arg("serve")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("BACKOFFICE_SECRET_KEY_FILE: required with PostgreSQL"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The store's half of "accepted once": many concurrent spends of one step, exactly one wins;
/// a later step still can, an earlier one can't. And a method switch leaves nothing of the
/// previous method behind.
#[tokio::test]
async fn the_store_spends_a_step_once_and_a_switch_leaves_no_old_secret() {
    use store::{MethodChange, Store};
    for backend in backends() {
        let t = TestApp::start(backend).await;
        align(&t);
        let admin = t.admin().await;
        let (_, _) = enrol_totp(&t, &admin, ADMIN_PASSWORD).await;
        let s: std::sync::Arc<dyn Store> = store::connect(&t.db_url).await.unwrap();
        let id = user_id(&admin, &t.admin_email).await;
        let step = step_now(&t) + 1;
        let tries = (0..16).map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.spend_totp_step(id, step).await.unwrap() })
        });
        let won = futures_count(tries).await;
        assert_eq!(won, 1, "{backend}");
        assert!(!s.spend_totp_step(id, step - 1).await.unwrap());
        assert!(s.spend_totp_step(id, step + 1).await.unwrap());

        let entry = store::AuditEntry {
            at: t.app.now(),
            actor_id: None,
            actor_email: None,
            actor_groups: String::new(),
            ip: None,
            event: domain::audit::Event::new(
                domain::audit::Category::Auth,
                domain::audit::AuditAction::Update,
                "test",
            ),
            idempotency: None,
        };
        let change = |expect| MethodChange {
            method: domain::TwoFactor::Disabled,
            expect,
            totp: None,
            confirms_enrolment: None,
            passkey: None,
            recovery_hashes: Vec::new(),
            at: t.app.now(),
        };
        // Expecting a method the account no longer has: refused, nothing changes.
        let stale = s
            .set_two_factor_method(id, change(Some(domain::TwoFactor::Email)), entry.clone())
            .await;
        assert!(
            matches!(stale, Err(store::StoreError::Conflict(_))),
            "{stale:?}"
        );
        assert!(s.totp_secret(id).await.unwrap().is_some());
        s.set_two_factor_method(id, change(Some(domain::TwoFactor::Totp)), entry)
            .await
            .unwrap();
        assert!(s.totp_secret(id).await.unwrap().is_none());
        assert_eq!(s.recovery_codes_left(id).await.unwrap(), 0);
    }
}

/// How many of the spawned tries returned true.
async fn futures_count(tries: impl Iterator<Item = tokio::task::JoinHandle<bool>>) -> usize {
    let mut won = 0;
    for t in tries.collect::<Vec<_>>() {
        won += usize::from(t.await.unwrap());
    }
    won
}

/// Opening the TOTP set-up makes a new secret each time: one planted by someone else who knew
/// the password (and opened the set-up first) is replaced before the owner scans it.
#[tokio::test]
async fn opening_the_totp_set_up_replaces_a_secret_planted_before() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        align(&t);
        let owner = t.admin().await;
        let intruder = t.admin().await;
        let planted = shown_secret(&intruder.get("/two-factor/totp").await.body);
        let setup = owner.get("/two-factor/totp").await;
        let scanned = shown_secret(&setup.body);
        assert_ne!(planted, scanned, "{backend}");
        // The planted secret's code no longer enrols; the scanned one's does.
        let r = owner
            .post(
                "/two-factor/totp",
                &[
                    ("code", &code(&t, &planted, 0)),
                    ("password", ADMIN_PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status, 422, "{backend}");
        let r = owner
            .post(
                "/two-factor/totp",
                &[
                    ("code", &code(&t, &scanned, 0)),
                    ("password", ADMIN_PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.body);
    }
}

/// Changing the method asks for the current factor once the sign-in is no longer recent; wrong
/// guesses there count toward the account's lockout like wrong codes at sign-in.
#[tokio::test]
async fn guessing_the_current_factor_to_change_the_method_counts_toward_the_lockout() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        align(&t);
        let admin = t.admin().await;
        // One wrong password during this set-up already counts.
        let _ = enrol_totp(&t, &admin, ADMIN_PASSWORD).await;
        t.clock.advance(16 * 60);
        let secret = shown_secret(&admin.get("/two-factor/totp").await.body);
        for _ in 0..4 {
            let r = admin
                .post(
                    "/two-factor/totp",
                    &[
                        ("code", &code(&t, &secret, 0)),
                        ("password", ADMIN_PASSWORD),
                        ("current_code", "000000"),
                    ],
                )
                .await;
            assert_eq!(r.status, 422, "{backend}: {}", r.body);
        }
        assert_eq!(events_with(&t, "Account locked").await, 1, "{backend}");
        assert!(
            events_with(&t, "wrong code (two-factor settings)").await >= 4,
            "{backend}"
        );
    }
}

/// Two confirmations of one TOTP set-up racing (a double submit, two tabs): one switches the
/// app and shows recovery codes, the other is refused, and the codes shown are the ones that work.
#[tokio::test]
async fn one_totp_set_up_is_confirmed_once() {
    for backend in backends() {
        let t = TestApp::start(backend).await;
        align(&t);
        let admin = std::sync::Arc::new(t.admin().await);
        enrol_totp(&t, &admin, ADMIN_PASSWORD).await;
        // Moving to a new app: the sign-in a moment ago proves the current factor.
        let secret = shown_secret(&admin.get("/two-factor/totp").await.body);
        let typed = code(&t, &secret, 0);
        let tries = (0..4).map(|_| {
            let (admin, typed) = (admin.clone(), typed.clone());
            tokio::spawn(async move {
                admin
                    .post(
                        "/two-factor/totp",
                        &[("code", typed.as_str()), ("password", ADMIN_PASSWORD)],
                    )
                    .await
            })
        });
        let mut shown = Vec::new();
        let mut refused = 0;
        for r in tries.collect::<Vec<_>>() {
            let r = r.await.unwrap();
            match r.status {
                200 => shown.push(shown_codes(&r.body)),
                409 => refused += 1,
                s => panic!("{backend}: {s} {}", r.body),
            }
        }
        assert_eq!((shown.len(), refused), (1, 3), "{backend}");
        assert_eq!(
            events_with(&t, "Two-factor authentication method changed").await,
            1,
            "{backend}"
        );
        // The codes shown are the account's: one of them signs in.
        let b = password_step(&t, &t.admin_email, ADMIN_PASSWORD).await;
        b.get("/login/recovery").await;
        let r = b
            .post(
                "/login/recovery",
                &[("recovery_code", shown[0][0].as_str())],
            )
            .await;
        assert_eq!(r.location.as_deref(), Some("/"), "{backend}: {}", r.body);
    }
}
