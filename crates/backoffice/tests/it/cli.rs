//! The binary as an operator uses it: --help, admin create, migrate, first start, bad
//! configuration, graceful shutdown, and logs that never carry a secret.

use crate::BIN;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use testkit::db::{backends, fresh};
use testkit::process::{self, run, Server};

/// The binary in `dir` with a clean environment (only what the test sets) and `db`.
fn bo(dir: &Path, db: Option<&str>) -> Command {
    let mut c = process::command(BIN, dir);
    c.env("RUST_LOG", "info");
    if let Some(db) = db {
        c.env("BACKOFFICE_DATABASE_URL", db);
    }
    c
}

fn temp_dir(tag: &str) -> PathBuf {
    process::temp_dir(&format!("cli-{tag}"))
}

fn text(o: &Output) -> String {
    process::output_text(o)
}

async fn users_in(db: &str) -> i64 {
    store::connect(db)
        .await
        .unwrap()
        .count_users()
        .await
        .unwrap()
}

#[test]
fn help_explains_every_command() {
    let dir = temp_dir("help");
    let o = run(
        {
            let mut c = bo(&dir, None);
            c.arg("--help");
            c
        },
        None,
    );
    let out = text(&o);
    for cmd in [
        "serve",
        "migrate",
        "admin",
        "mail",
        "audit",
        "backup",
        "BACKOFFICE_DATABASE_URL",
    ] {
        assert!(out.contains(cmd), "--help lacks {cmd}: {out}");
    }
    for sub in [
        vec!["admin", "create", "--help"],
        vec!["mail", "test", "--help"],
        vec!["audit", "verify", "--help"],
    ] {
        let o = run(
            {
                let mut c = bo(&dir, None);
                c.args(&sub);
                c
            },
            None,
        );
        assert!(o.status.success(), "{sub:?}");
        assert!(text(&o).contains("Usage"), "{sub:?}");
    }
    let o = run(
        {
            let mut c = bo(&dir, None);
            c.args(["admin", "create", "--help"]);
            c
        },
        None,
    );
    let out = text(&o);
    for opt in ["--email", "--name", "--password-stdin", "--two-factor"] {
        assert!(out.contains(opt), "admin create --help lacks {opt}");
    }
}

#[tokio::test]
async fn admin_create_accepts_good_input_and_refuses_bad_input_writing_nothing() {
    for backend in backends() {
        let db = fresh(backend).await;
        let dir = temp_dir("admin");
        let create = |email: &str, pw: Option<&str>| {
            let mut c = bo(&dir, Some(&db));
            c.args(["admin", "create", "--email", email, "--name", "Ann Admin"]);
            if pw.is_some() {
                c.arg("--password-stdin");
            }
            run(c, pw)
        };
        let o = create("Ann@Example.com", None);
        assert!(o.status.success(), "{}", text(&o));
        let out = text(&o);
        assert!(out.contains("One-time password: "), "{out}");
        assert!(
            out.contains("two-factor authentication is disabled"),
            "standalone warning: {out}"
        );
        assert_eq!(users_in(&db).await, 1);

        for (email, pw, expect) in [
            ("ann@EXAMPLE.com", None, "already used"),
            ("not-an-email", None, "valid email"),
            ("bob@example.com", Some("short\n"), "at least 12 characters"),
            (
                "bob@example.com",
                Some("passwordpassword\n"),
                "too easy to guess",
            ),
        ] {
            let o = create(email, pw);
            assert_eq!(o.status.code(), Some(1), "{email}: {}", text(&o));
            assert!(text(&o).contains(expect), "{email}: {}", text(&o));
        }
        assert_eq!(users_in(&db).await, 1, "refusals wrote nothing");

        let o = create("carol@example.com", Some("Sturdy-Pebble-Compass-61\n"));
        assert!(o.status.success(), "{}", text(&o));
        assert!(!text(&o).contains("One-time password"));
        assert!(
            !text(&o).contains("Sturdy-Pebble-Compass-61"),
            "a chosen password is never echoed"
        );
    }
}

#[tokio::test]
async fn twenty_concurrent_admin_creates_make_exactly_one_account() {
    for backend in backends() {
        let db = fresh(backend).await;
        let dir = temp_dir("race");
        // Migrate first so the race is about the email, not about creating tables.
        assert!(run(
            {
                let mut c = bo(&dir, Some(&db));
                c.arg("migrate");
                c
            },
            None
        )
        .status
        .success());
        let children: Vec<Child> = (0..20)
            .map(|_| {
                let mut c = bo(&dir, Some(&db));
                c.args([
                    "admin",
                    "create",
                    "--email",
                    "race@example.com",
                    "--name",
                    "Race Admin",
                ]);
                c.stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let ok = outputs.iter().filter(|o| o.status.success()).count();
        assert_eq!(ok, 1, "{backend}: exactly one succeeds");
        for o in outputs.iter().filter(|o| !o.status.success()) {
            assert_eq!(o.status.code(), Some(1));
            assert!(
                text(o).contains("already used"),
                "{backend}: clean refusal: {}",
                text(o)
            );
        }
        assert_eq!(users_in(&db).await, 1);
    }
}

#[test]
fn migrate_says_what_it_did() {
    let dir = temp_dir("migrate");
    let db = format!("sqlite://{}/m.db", dir.display());
    let first = run(
        {
            let mut c = bo(&dir, Some(&db));
            c.arg("migrate");
            c
        },
        None,
    );
    assert!(first.status.success());
    assert!(
        text(&first).contains("Applied") && text(&first).contains("initial"),
        "{}",
        text(&first)
    );
    let second = run(
        {
            let mut c = bo(&dir, Some(&db));
            c.arg("migrate");
            c
        },
        None,
    );
    assert!(text(&second).contains("up to date"), "{}", text(&second));
}

#[test]
fn bad_configuration_exits_2_naming_the_setting() {
    let dir = temp_dir("badcfg");
    std::fs::write(dir.join("a-file"), b"x").unwrap();
    let file_as_folder = format!("sqlite://{}/a-file/db.sqlite", dir.display());
    // A good key, so that each case is about its own setting (PostgreSQL needs one named).
    let key = dir.join("secret.key");
    std::fs::write(
        &key,
        app::secret_box::SecretKey::generate().to_file_contents(),
    )
    .unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "BACKOFFICE_DATABASE_URL",
            "mysql://localhost/bo".into(),
            "BACKOFFICE_DATABASE_URL",
        ),
        (
            "BACKOFFICE_DATABASE_URL",
            file_as_folder,
            "BACKOFFICE_DATABASE_URL",
        ),
        (
            "BACKOFFICE_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/none".into(),
            "BACKOFFICE_DATABASE_URL",
        ),
        (
            "BACKOFFICE_LISTEN",
            "not-an-address".into(),
            "BACKOFFICE_LISTEN",
        ),
        (
            "BACKOFFICE_DATABASE_MAX_CONNECTIONS",
            "5000".into(),
            "BACKOFFICE_DATABASE_MAX_CONNECTIONS",
        ),
        (
            "BACKOFFICE_DATABASE_MAX_CONNECTIONS",
            "many".into(),
            "BACKOFFICE_DATABASE_MAX_CONNECTIONS",
        ),
        (
            "BACKOFFICE_SMTP_URL",
            "http://mail.example.com".into(),
            "BACKOFFICE_SMTP_URL",
        ),
        (
            "BACKOFFICE_PUBLIC_URL",
            "ftp://x".into(),
            "BACKOFFICE_PUBLIC_URL",
        ),
        (
            "BACKOFFICE_SESSION_IDLE_MINUTES",
            "soon".into(),
            "BACKOFFICE_SESSION_IDLE_MINUTES",
        ),
        (
            "BACKOFFICE_METRICS_LISTEN",
            "everywhere".into(),
            "BACKOFFICE_METRICS_LISTEN",
        ),
        (
            "BACKOFFICE_METRICS_LISTEN",
            // An address this machine doesn't have: it can't be listened on.
            "192.0.2.1:9464".into(),
            "BACKOFFICE_METRICS_LISTEN",
        ),
    ];
    for (var, value, named) in cases {
        let mut c = bo(&dir, None);
        c.env(var, &value)
            .env("BACKOFFICE_LISTEN_UNUSED", "1")
            .env("BACKOFFICE_SECRET_KEY_FILE", &key);
        if var != "BACKOFFICE_DATABASE_URL" {
            c.env(
                "BACKOFFICE_DATABASE_URL",
                format!("sqlite://{}/ok.db", dir.display()),
            );
        }
        if var != "BACKOFFICE_LISTEN" {
            c.env("BACKOFFICE_LISTEN", "127.0.0.1:0");
        }
        c.arg("serve");
        let o = run(c, None);
        assert_eq!(o.status.code(), Some(2), "{var}={value}: {}", text(&o));
        assert!(text(&o).contains(named), "{var}={value}: {}", text(&o));
    }
}

/// `serve` in `dir` with `envs`, its stderr kept for [`Server::stop`].
fn serve(dir: &Path, envs: &[(&str, &str)]) -> Server {
    let mut c = bo(dir, None);
    c.envs(envs.iter().copied());
    process::serve(c, Stdio::piped())
}

#[tokio::test]
async fn first_start_on_an_empty_folder_creates_everything_once() {
    let dir = temp_dir("first");
    let s = serve(&dir, &[]);
    assert!(
        dir.join("data/backoffice.db").exists(),
        "database created under ./data"
    );
    assert!(
        s.stdout.contains("Email: admin@backoffice.local"),
        "{}",
        s.stdout
    );
    assert!(s.stdout.contains("One-time password: "), "{}", s.stdout);
    let health = reqwest::get(format!("{}/healthz", s.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        reqwest::get(format!("{}/readyz", s.url))
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, _) = s.stop();
    assert!(status.success(), "graceful stop on SIGTERM: {status:?}");

    let again = serve(&dir, &[]);
    assert!(
        !again.stdout.contains("One-time password"),
        "second start prints nothing: {}",
        again.stdout
    );
    again.stop();
    let db = format!("sqlite://{}/data/backoffice.db", dir.display());
    assert_eq!(users_in(&db).await, 1, "no second administrator");
    let store = store::connect(&db).await.unwrap();
    let groups = store.list_groups().await.unwrap();
    assert_eq!(
        groups.iter().filter(|g| g.builtin).count(),
        1,
        "Administrators seeded once"
    );
}

#[tokio::test]
async fn a_whole_sign_in_leaves_no_secret_in_the_logs() {
    let smtp = testkit::SmtpServer::start().await;
    let dir = temp_dir("logs");
    let db = format!("sqlite://{}/bo.db", dir.display());
    let initial = "Lantern-Orchid-Basalt-27";
    let chosen = "Meadow-Quartz-Harbor-84";
    let o = run(
        {
            let mut c = bo(&dir, Some(&db));
            c.env("BACKOFFICE_SMTP_URL", smtp.url());
            c.args([
                "admin",
                "create",
                "--email",
                "ops@example.com",
                "--name",
                "Ops",
                "--password-stdin",
            ]);
            c
        },
        Some(initial),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("sign-in codes are sent by email"));
    let s = serve(
        &dir,
        &[
            ("BACKOFFICE_DATABASE_URL", &db),
            ("BACKOFFICE_SMTP_URL", &smtp.url()),
            ("RUST_LOG", "debug"),
        ],
    );
    let b = testkit::Browser::at(&s.url);
    let r = b.sign_in("ops@example.com", initial).await;
    assert_eq!(r.location.as_deref(), Some("/login/code"));
    smtp.wait_for("ops@example.com", 1).await;
    let code = smtp.latest_code("ops@example.com");
    let r = b.enter_code(&code).await;
    assert_eq!(r.location.as_deref(), Some("/"));
    let session = b.session_id().expect("a session");
    assert_eq!(b.choose_password(chosen).await.status, 303);
    let stdout = s.stdout.clone();
    let (_, stderr) = s.stop();
    let logs = format!("{stdout}{stderr}");
    assert!(
        logs.contains("sign-in code sent"),
        "the run was logged: {logs}"
    );
    for secret in [initial, chosen, code.as_str()] {
        assert!(!logs.contains(secret), "secret {secret:?} in logs");
    }
    assert!(!logs.contains(&session), "the session id in logs");
    if let Some(csrf) = b.cookie("bo_csrf").filter(|v| v.len() >= 16) {
        assert!(!logs.contains(&csrf), "the CSRF cookie in logs");
    }
    let _ = std::io::stdout().flush();
}

/// Multi-threaded: the test blocks on the child process while its SMTP server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_test_reports_the_smtp_answer_or_the_failure() {
    let smtp = testkit::SmtpServer::start().await;
    let dir = temp_dir("mail");
    let db = format!("sqlite://{}/bo.db", dir.display());
    let mail = |url: Option<&str>| {
        let mut c = bo(&dir, Some(&db));
        if let Some(u) = url {
            c.env("BACKOFFICE_SMTP_URL", u);
        }
        c.args(["mail", "test", "--to", "ops@example.com"]);
        run(c, None)
    };
    let o = mail(Some(&smtp.url()));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("The SMTP server answered: 250"),
        "{}",
        text(&o)
    );
    assert_eq!(smtp.messages_to("ops@example.com").len(), 1);
    smtp.set_mode(testkit::SmtpMode::Reject);
    let o = mail(Some(&smtp.url()));
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("550"), "{}", text(&o));
    let o = mail(None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("No SMTP server is configured"),
        "{}",
        text(&o)
    );
}

/// `BACKOFFICE_SMTP_CA_FILE`: a relay whose certificate comes from the company's own CA is
/// trusted with the file, refused clearly without it, and a bad file stops start-up (exit 2).
/// Multi-threaded: the test blocks on the child process while its SMTP server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_through_a_relay_with_a_private_ca() {
    let ca = testkit::TestCa::new();
    let smtp = testkit::SmtpServer::start_tls(&ca).await;
    let dir = temp_dir("mail-ca");
    let db = format!("sqlite://{}/bo.db", dir.display());
    let ca_file = dir.join("company-ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let junk_file = dir.join("junk.pem");
    std::fs::write(&junk_file, "not a certificate\n").unwrap();
    let mail = |ca: Option<&Path>| {
        let mut c = bo(&dir, Some(&db));
        c.env("BACKOFFICE_SMTP_URL", smtp.tls_url());
        if let Some(path) = ca {
            c.env("BACKOFFICE_SMTP_CA_FILE", path);
        }
        c.args(["mail", "test", "--to", "ops@example.com"]);
        run(c, None)
    };
    let o = mail(None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).to_lowercase().contains("certificate"),
        "the failure names the certificate: {}",
        text(&o)
    );
    assert!(smtp.messages().is_empty());

    let o = mail(Some(&ca_file));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("The SMTP server answered: 250"),
        "{}",
        text(&o)
    );
    assert_eq!(smtp.messages_to("ops@example.com").len(), 1);

    let o = mail(Some(&junk_file));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("BACKOFFICE_SMTP_CA_FILE"), "{}", text(&o));
    let o = mail(Some(&dir.join("missing.pem")));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("can't read"), "{}", text(&o));
}
