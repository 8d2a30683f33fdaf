//! Backups (issue 27): `backoffice backup --to FILE` copies the SQLite database while the server
//! runs and others write, the copy's event-log chain verifies with `audit verify --database`,
//! and a server started on the copy serves it; bad input changes nothing; a tampered copy is
//! caught. On PostgreSQL (pg_dump is the backup there) `audit verify --database URL` checks a
//! restored database the same way.

use crate::BIN;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testkit::db::{backends, fresh};
use testkit::process::{self, run};

fn bo(dir: &Path, db: &str) -> Command {
    let mut c = process::command(BIN, dir);
    c.env("BACKOFFICE_DATABASE_URL", db);
    c
}

fn text(o: &Output) -> String {
    process::output_text(o)
}

fn verify_copy(dir: &Path, copy: &str) -> Output {
    let mut c = process::command(BIN, dir);
    c.args(["audit", "verify", "--database", copy]);
    run(c, None)
}

/// The number of events in a chain that verified ("N event(s) checked: OK").
fn checked(o: &Output) -> u64 {
    let out = text(o);
    assert!(o.status.success(), "{out}");
    out.split(" event(s) checked: OK")
        .next()
        .and_then(|n| n.trim().rsplit('\n').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_write_load_verifies_and_serves() {
    let dir = process::temp_dir("backup");
    let db = format!("sqlite://{}/bo.db", dir.display());
    let server = process::serve(bo(&dir, &db), Stdio::null());

    // Write load: the server appends an event for each failed sign-in, and a second process
    // appends 120,000 events in batches of 10,000, while the backup runs.
    let load = {
        let url = server.url.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap();
            let page = client.get(format!("{url}/login")).send().await.unwrap();
            let body = page.text().await.unwrap();
            let k = "name=\"csrf\" value=\"";
            let csrf = body[body.find(k).unwrap() + k.len()..]
                .split('"')
                .next()
                .unwrap()
                .to_string();
            let mut n = 0;
            let until = Instant::now() + Duration::from_secs(4);
            while Instant::now() < until {
                let r = client
                    .post(format!("{url}/login"))
                    .form(&[
                        ("csrf", csrf.as_str()),
                        ("email", &format!("nobody{n}@example.com")),
                        ("password", "Not-The-Password-1"),
                    ])
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_client_error(), "{}", r.status());
                n += 1;
            }
            n
        })
    };
    let mut seed = bo(&dir, &db);
    seed.args(["demo", "seed", "--events", "120000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut seeding = seed.spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;

    let copy = dir.join("copy.db");
    let mut c = bo(&dir, &db);
    c.args(["backup", "--to", copy.to_str().unwrap()]);
    let o = run(c, None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("quick_check: ok"), "{}", text(&o));
    assert!(!dir.join("copy.db.partial").exists());
    let still_seeding = seeding.try_wait().unwrap().is_none();

    let failed_sign_ins = load.await.unwrap();
    assert!(seeding.wait().unwrap().success());
    assert!(failed_sign_ins > 0);
    // The copy is a consistent snapshot: its chain verifies, whatever moment it caught.
    let in_copy = checked(&verify_copy(&dir, copy.to_str().unwrap()));
    let mut c = bo(&dir, &db);
    c.args(["audit", "verify"]);
    let in_live = checked(&run(c, None));
    assert!(in_copy > 0 && in_copy <= in_live, "{in_copy} vs {in_live}");
    if still_seeding {
        assert!(in_copy < in_live, "taken mid-load: {in_copy} vs {in_live}");
    }
    server.stop();

    // Restored: a server on the copy (with the key file it was made with) serves it.
    let restored_dir = process::temp_dir("restored");
    std::fs::copy(&copy, restored_dir.join("bo.db")).unwrap();
    std::fs::copy(dir.join("secret.key"), restored_dir.join("secret.key")).unwrap();
    let restored_db = format!("sqlite://{}/bo.db", restored_dir.display());
    let restored = process::serve(bo(&restored_dir, &restored_db), Stdio::null());
    let ready = reqwest::get(format!("{}/readyz", restored.url))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    restored.stop();
    let mut c = bo(&restored_dir, &restored_db);
    c.args(["audit", "verify"]);
    assert!(checked(&run(c, None)) >= in_copy);
}

#[tokio::test]
async fn bad_backup_requests_change_nothing_and_a_tampered_copy_is_caught() {
    let dir = process::temp_dir("backup-bad");
    let db = format!("sqlite://{}/bo.db", dir.display());
    let mut c = bo(&dir, &db);
    c.arg("migrate");
    assert!(run(c, None).status.success());
    let mut c = bo(&dir, &db);
    c.args(["admin", "create", "--email", "a@example.com", "--name", "A"]);
    assert!(run(c, None).status.success());

    // An existing file is never overwritten.
    let taken = dir.join("taken.db");
    std::fs::write(&taken, b"keep me").unwrap();
    let mut c = bo(&dir, &db);
    c.args(["backup", "--to", taken.to_str().unwrap()]);
    let o = run(c, None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("already exists"), "{}", text(&o));
    assert_eq!(std::fs::read(&taken).unwrap(), b"keep me");
    // A folder that doesn't exist: a clear error, no file.
    let mut c = bo(&dir, &db);
    c.args(["backup", "--to", "/nonexistent-folder/x.db"]);
    let o = run(c, None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("can't open"), "{}", text(&o));
    // PostgreSQL is backed up with pg_dump.
    let mut c = bo(&dir, "postgres://nobody@127.0.0.1:1/none");
    c.args(["backup", "--to", dir.join("pg.db").to_str().unwrap()]);
    let o = run(c, None);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("pg_dump"), "{}", text(&o));
    assert!(!dir.join("pg.db").exists());
    // Verifying a file that isn't there creates nothing.
    let missing = dir.join("missing.db");
    let o = verify_copy(&dir, missing.to_str().unwrap());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!missing.exists());
    // A file that is no database.
    let o = verify_copy(&dir, taken.to_str().unwrap());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // A good copy verifies; the same copy with one event changed does not, and says where.
    let copy = dir.join("copy.db");
    let mut c = bo(&dir, &db);
    c.args(["backup", "--to", copy.to_str().unwrap()]);
    assert!(run(c, None).status.success());
    let before = std::fs::read(&copy).unwrap();
    let events = checked(&verify_copy(&dir, copy.to_str().unwrap()));
    assert!(events >= 1);
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        before,
        "verifying a copy writes nothing to it"
    );
    let copy_url = format!("sqlite://{}", copy.display());
    let pool = sqlx::SqlitePool::connect(&copy_url).await.unwrap();
    // Someone with the file (not the application: the log is append-only by trigger).
    sqlx::raw_sql(
        "DROP TRIGGER events_no_update; \
         UPDATE events SET event = 'Nothing happened' WHERE id = 1",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let o = verify_copy(&dir, copy.to_str().unwrap());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("broken at row 1"), "{}", text(&o));
}

/// On PostgreSQL a backup is pg_dump's; what `audit verify --database` checks after a restore is
/// the same chain, read without migrating or writing.
#[tokio::test]
async fn audit_verify_checks_a_postgres_database_by_url() {
    if !backends().contains(&"postgres") {
        return;
    }
    let url = fresh("postgres").await;
    let store = store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    drop(store);
    let dir = process::temp_dir("verify-pg");
    let mut c = bo(&dir, &url);
    c.env("BACKOFFICE_SECRET_KEY_FILE", dir.join("none.key"));
    c.args(["admin", "create", "--email", "a@example.com", "--name", "A"]);
    // No key file is needed to create an administrator.
    let o = run(c, None);
    assert!(o.status.success(), "{}", text(&o));
    let rows = checked(&verify_copy(&dir, &url));
    assert!(rows >= 1);
}
