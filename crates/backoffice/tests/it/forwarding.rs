//! Forwarding the event log to a SIEM, with the real binary: to a real rsyslog over TCP that is
//! stopped and started again mid-stream, and to an HTTPS webhook in the test that fails for a
//! while. Every event arrives, in chain order (a receiver drops the duplicates by id), with the
//! hash the database holds; the webhook's are signed, and masked when asked.

use crate::BIN;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::process::{self, Server};
use testkit::{Browser, TestCa};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "siem@example.com";
const PASSWORD: &str = "Harbour-Quartz-Violin-31";
const WEBHOOK_SECRET: &str = "Webhook-Secret-For-The-Test-42";

fn temp_dir(tag: &str) -> PathBuf {
    process::temp_dir(&format!("forwarding-{tag}"))
}

/// The binary on a fresh SQLite database in `dir`, with an administrator, serving with `envs`.
fn start(dir: &Path, envs: &[(&str, &str)]) -> Server {
    let db = format!("sqlite://{}/bo.db", dir.display());
    let mut c = process::command(BIN, dir);
    c.env("BACKOFFICE_DATABASE_URL", &db);
    process::create_admin(c, ADMIN, PASSWORD, Some("disabled"));
    let mut c = process::command(BIN, dir);
    c.env("BACKOFFICE_DATABASE_URL", &db)
        .env("BACKOFFICE_API_RATE_PER_MINUTE", "0")
        .env("BACKOFFICE_API_RATE_PER_IP_PER_MINUTE", "0")
        .env("RUST_LOG", "warn");
    c.envs(envs.iter().copied());
    process::serve(c, Stdio::inherit())
}

/// Signs the administrator in (choosing a new password) and returns an API token.
async fn token(s: &Server) -> (Browser, String) {
    let b = Browser::at(&s.url);
    assert_eq!(b.sign_in(ADMIN, PASSWORD).await.status, 303);
    assert_eq!(
        b.choose_password("Lantern-Basalt-Orchid-58").await.status,
        303
    );
    let t = b.api_token("siem").await;
    (b, t)
}

/// Creates `n` clients through the API (one event each).
async fn add_clients(url: &str, token: &str, from: usize, n: usize) {
    let http = reqwest::Client::new();
    for i in from..from + n {
        let r = http
            .post(format!("{url}/api/v1/clients"))
            .bearer_auth(token)
            .json(&json!({
                "first_name": "Ada", "last_name": format!("Client{i}"),
                "email": format!("private.person{i}@example.com"),
                "phone": format!("+4420794600{:02}", i % 100), "country": "GB", "city": "London",
                "role": "investor", "status": "active", "language": "en", "tag_ids": []
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
}

/// Every event in the database: (id, hash), in chain order.
async fn stored_events(dir: &Path) -> Vec<(i64, String)> {
    let store = store::connect(&format!("sqlite://{}/bo.db", dir.display()))
        .await
        .unwrap();
    store
        .all_events(0, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.hash))
        .collect()
}

/// The events a receiver got, duplicates dropped by id (the first copy kept), in arrival order,
/// with their hashes (none when masked).
fn deduplicated(received: &[Value]) -> Vec<(i64, Option<String>)> {
    let mut seen = std::collections::HashSet::new();
    received
        .iter()
        .filter(|e| seen.insert(e["id"].as_i64().unwrap()))
        .map(|e| {
            (
                e["id"].as_i64().unwrap(),
                e["hash"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// Waits (at most `secs`) until `received` holds every stored event; then checks they came in
/// chain order, with the stored hashes (or, `masked`, with none).
async fn wait_for_all(
    dir: &Path,
    secs: u64,
    masked: bool,
    received: impl Fn() -> Vec<Value>,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let stored: Vec<(i64, Option<String>)> = stored_events(dir)
            .await
            .into_iter()
            .map(|(id, hash)| (id, (!masked).then_some(hash)))
            .collect();
        let got = received();
        let unique = deduplicated(&got);
        if unique.len() >= stored.len() {
            assert_eq!(unique, stored, "every event, in chain order, with its hash");
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} events arrived",
            unique.len(),
            stored.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A real rsyslog listening on TCP `port`, writing each message's text (the event's JSON) as a
/// line of `out`.
struct Rsyslog {
    child: Child,
}

impl Rsyslog {
    fn start(dir: &Path, port: u16, out: &Path) -> Self {
        let work = dir.join("rsyslog-work");
        std::fs::create_dir_all(&work).unwrap();
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\")\n\
                 module(load=\"imtcp\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
                 template(name=\"text\" type=\"string\" string=\"%msg%\\n\")\n\
                 *.* action(type=\"omfile\" file=\"{out}\" template=\"text\")\n",
                work = work.display(),
                out = out.display()
            ),
        )
        .unwrap();
        let child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("rsyslogd (Debian's rsyslog package; .ci/run installs it)");
        // Listening?
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rsyslog did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Rsyslog { child }
    }

    /// SIGTERM, as an operator stops it, and wait for it to exit.
    fn stop(mut self) {
        process::signal(&self.child, "-TERM");
        let _ = self.child.wait();
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn lines_of(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l.trim()).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[tokio::test]
#[ignore = "needs rsyslog (Debian's rsyslog package): run with --ignored forwarding"]
async fn every_event_reaches_a_real_rsyslog_in_order_though_it_restarts_mid_stream() {
    let dir = temp_dir("rsyslog");
    let port = free_port();
    let out = dir.join("received.log");
    let rsyslog = Rsyslog::start(&dir, port, &out);
    let s = start(
        &dir,
        &[(
            "BACKOFFICE_EVENTS_SYSLOG_URL",
            &format!("tcp://127.0.0.1:{port}"),
        )],
    );
    let (_, token) = token(&s).await;
    add_clients(&s.url, &token, 0, 20).await;
    wait_for_all(&dir, 30, false, || lines_of(&out)).await;

    // The receiver stops while events keep coming, and comes back.
    let writing = {
        let (url, token) = (s.url.clone(), token.clone());
        tokio::spawn(async move { add_clients(&url, &token, 20, 40).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    rsyslog.stop();
    writing.await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _rsyslog = Rsyslog::start(&dir, port, &out);
    let received = wait_for_all(&dir, 90, false, || lines_of(&out)).await;
    assert!(received.iter().any(|e| e["event"] == "Signed in"));
    // As stored: the client's email is there (no masking asked for).
    assert!(received
        .iter()
        .any(|e| e.to_string().contains("private.person3@example.com")));
}

/// An HTTPS receiver that answers 503 to its first `failing` posts, then 200; it keeps what
/// each post carried and whether its signature was right.
struct Webhook {
    url: String,
    ca_file: PathBuf,
    posts: Arc<Mutex<Vec<(String, bool)>>>,
}

impl Webhook {
    async fn start(dir: &Path, failing: usize) -> Self {
        let ca = TestCa::new();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &ca.ca_pem).unwrap();
        let acceptor = ca.acceptor();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let posts: Arc<Mutex<Vec<(String, bool)>>> = Default::default();
        let seen = posts.clone();
        tokio::spawn(async move {
            let mut answered = 0;
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let Some((signature, body)) = read_post(&mut tls).await else {
                    continue;
                };
                answered += 1;
                let ok = answered > failing;
                if ok {
                    let valid = signature
                        == app::forwarding::webhook::signature(WEBHOOK_SECRET, body.as_bytes());
                    seen.lock().unwrap().push((body, valid));
                }
                let status = if ok {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let _ = tls
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
                let _ = tls.shutdown().await;
            }
        });
        Webhook {
            url: format!("https://localhost:{port}/siem/events"),
            ca_file,
            posts,
        }
    }

    fn received(&self) -> Vec<Value> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(body, _)| {
                body.lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect::<Vec<Value>>()
            })
            .collect()
    }
}

/// One HTTP/1.1 request: its signature header and body (the test's receiver only).
async fn read_post<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<(String, String)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.strip_prefix(&format!("{name}:"))
                .map(|v| v.trim().to_string())
        })
    };
    let len: usize = header("content-length")?.parse().ok()?;
    while data.len() < head_end + len {
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some((
        header(app::forwarding::webhook::SIGNATURE_HEADER).unwrap_or_default(),
        String::from_utf8(data[head_end..head_end + len].to_vec()).ok()?,
    ))
}

#[tokio::test]
async fn every_event_reaches_an_https_webhook_signed_and_masked_after_its_outage() {
    let dir = temp_dir("webhook");
    let hook = Webhook::start(&dir, 3).await;
    let ca_file = hook.ca_file.display().to_string();
    let s = start(
        &dir,
        &[
            ("BACKOFFICE_EVENTS_WEBHOOK_URL", &hook.url),
            ("BACKOFFICE_EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("BACKOFFICE_EVENTS_CA_FILE", &ca_file),
            ("BACKOFFICE_EVENTS_MASK_PERSONAL", "true"),
        ],
    );
    let (admin, token) = token(&s).await;
    add_clients(&s.url, &token, 0, 15).await;
    // While the receiver fails, System › Settings says so.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = admin.get("/settings").await.body;
        if page.contains("webhook answered 503") {
            break;
        }
        assert!(Instant::now() < deadline, "no failure shown: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let received = wait_for_all(&dir, 60, true, || hook.received()).await;
    assert!(
        hook.posts.lock().unwrap().iter().all(|(_, valid)| *valid),
        "every post signed"
    );
    // Client personal data left masked; the rest as stored.
    let text = serde_json::to_string(&received).unwrap();
    assert!(
        !text.contains("private.person"),
        "a client's email left unmasked"
    );
    assert!(!text.contains("Client3"), "a client's name left unmasked");
    assert!(text.contains(ADMIN), "staff emails are not client data");
    let page = admin.get("/settings").await.body;
    assert!(
        page.contains("Event forwarding") && page.contains("webhook"),
        "{page}"
    );
}

#[test]
fn bad_forwarding_settings_stop_start_up_naming_the_setting() {
    let dir = temp_dir("config");
    for (envs, setting) in [
        (
            vec![("BACKOFFICE_EVENTS_SYSLOG_URL", "udp://127.0.0.1:514")],
            "BACKOFFICE_EVENTS_SYSLOG_URL",
        ),
        (
            vec![
                (
                    "BACKOFFICE_EVENTS_WEBHOOK_URL",
                    "http://siem.example.com/in",
                ),
                ("BACKOFFICE_EVENTS_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ],
            "BACKOFFICE_EVENTS_WEBHOOK_URL",
        ),
        (
            vec![(
                "BACKOFFICE_EVENTS_WEBHOOK_URL",
                "https://siem.example.com/in",
            )],
            "BACKOFFICE_EVENTS_WEBHOOK_SECRET",
        ),
        (
            vec![
                (
                    "BACKOFFICE_EVENTS_SYSLOG_URL",
                    "tls://siem.example.com:6514",
                ),
                ("BACKOFFICE_EVENTS_CA_FILE", "/nonexistent/ca.pem"),
            ],
            "BACKOFFICE_EVENTS_CA_FILE",
        ),
    ] {
        let mut c = process::command(BIN, &dir);
        c.env(
            "BACKOFFICE_DATABASE_URL",
            format!("sqlite://{}/bo.db", dir.display()),
        )
        .env("BACKOFFICE_LISTEN", "127.0.0.1:0")
        .envs(envs.iter().copied())
        .arg("serve");
        let o = process::run(c, None);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{envs:?}: {}",
            process::output_text(&o)
        );
        assert!(
            process::output_text(&o).contains(setting),
            "{envs:?}: {}",
            process::output_text(&o)
        );
    }
}

/// A syslog receiver over TLS (certificate from the operator's CA) in the test: reads each
/// connection to its end, then closes it, keeping the octet-counted messages' JSON.
async fn tls_syslog_receiver(ca: &TestCa) -> (u16, Arc<Mutex<Vec<Value>>>) {
    let acceptor = ca.acceptor();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Arc<Mutex<Vec<Value>>> = Default::default();
    let keep = got.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut data = Vec::new();
            if tls.read_to_end(&mut data).await.is_err() {
                continue;
            }
            let text = String::from_utf8(data).unwrap();
            let mut rest = text.as_str();
            while let Some((len, after)) = rest.split_once(' ') {
                let len: usize = len.parse().unwrap();
                let (msg, next) = after.split_at(len);
                assert!(msg.starts_with("<110>1 "), "{msg}");
                let json = msg.split_once(" event - ").unwrap().1;
                keep.lock()
                    .unwrap()
                    .push(serde_json::from_str(json).unwrap());
                rest = next;
            }
            let _ = tls.shutdown().await;
        }
    });
    (port, got)
}

#[tokio::test]
async fn syslog_over_tls_trusts_the_operators_ca() {
    let dir = temp_dir("syslog-tls");
    let ca = TestCa::new();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let (port, got) = tls_syslog_receiver(&ca).await;
    let s = start(
        &dir,
        &[
            (
                "BACKOFFICE_EVENTS_SYSLOG_URL",
                &format!("tls://localhost:{port}"),
            ),
            ("BACKOFFICE_EVENTS_CA_FILE", &ca_file.display().to_string()),
        ],
    );
    let (_, token) = token(&s).await;
    add_clients(&s.url, &token, 0, 5).await;
    wait_for_all(&dir, 30, false, || got.lock().unwrap().clone()).await;
}
