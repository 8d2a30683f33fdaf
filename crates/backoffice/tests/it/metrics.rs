//! `/metrics` (issue 27): served by the real binary on `BACKOFFICE_METRICS_LISTEN` and not on the
//! public port, in the Prometheus text format with the series operators watch (HTTP by route
//! template and status with latency buckets, sign-ins by outcome, mails, the database pool, the
//! hashing queue, event-log appends), and accepted by a real parser: `promtool check metrics`
//! (Debian's `prometheus`; `.ci/run` installs it and sets `BACKOFFICE_REQUIRE_PROMTOOL=1`).

use crate::BIN;
use std::io::Write;
use std::process::{Command, Stdio};
use testkit::process;

/// The value of the sample `name{labels…}` (labels in any order), if it is there.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        if metric != name {
            return None;
        }
        let have: Vec<&str> = rest.trim_end_matches('}').split(',').collect();
        let all = labels
            .iter()
            .all(|(k, v)| have.contains(&format!("{k}=\"{v}\"").as_str()));
        (all && have.len() >= labels.len()).then(|| value.parse().ok())?
    })
}

fn csrf_of(body: &str) -> String {
    let k = "name=\"csrf\" value=\"";
    body[body.find(k).unwrap() + k.len()..]
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_their_own_address_and_parse() {
    let smtp = testkit::SmtpServer::start().await;
    let dir = process::temp_dir("metrics");
    let db = format!("sqlite://{}/bo.db", dir.display());
    let password = "Lantern-Orchid-Basalt-27";
    let mut create = process::command(BIN, &dir);
    create
        .env("BACKOFFICE_DATABASE_URL", &db)
        .env("BACKOFFICE_SMTP_URL", smtp.url());
    process::create_admin(create, "ops@example.com", password, None);
    // A syslog destination that refuses connections: forwarding falls behind and fails.
    let refusing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let syslog = format!("tcp://{}", refusing.local_addr().unwrap());
    drop(refusing);
    let mut c = process::command(BIN, &dir);
    c.env("BACKOFFICE_DATABASE_URL", &db)
        .env("BACKOFFICE_SMTP_URL", smtp.url())
        .env("BACKOFFICE_EVENTS_SYSLOG_URL", &syslog)
        .env("BACKOFFICE_METRICS_LISTEN", "127.0.0.1:0");
    let s = process::serve(c, Stdio::null());
    let metrics_url = s
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Metrics on "))
        .unwrap_or_else(|| panic!("no metrics address in {}", s.stdout))
        .to_string();
    assert!(metrics_url.ends_with("/metrics"), "{metrics_url}");
    assert_ne!(
        metrics_url,
        format!("{}/metrics", s.url),
        "an address of its own"
    );

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| client.get(format!("{}{path}", s.url)).send();
    // Not on the public port.
    assert_eq!(get("/metrics").await.unwrap().status(), 404);

    let sign_in = |email: &'static str, password: &'static str| {
        let client = &client;
        let url = s.url.clone();
        async move {
            let login = client.get(format!("{url}/login")).send().await.unwrap();
            let csrf = csrf_of(&login.text().await.unwrap());
            client
                .post(format!("{url}/login"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", email),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    sign_in("ops@example.com", "Wrong-Password-Entirely-1").await;
    sign_in("nobody@example.com", "Wrong-Password-Entirely-1").await;
    let r = sign_in("ops@example.com", password).await;
    assert_eq!(r.headers()["location"], "/login/code");
    smtp.wait_for("ops@example.com", 1).await;
    let code = smtp.latest_code("ops@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for answer in [wrong, code.as_str()] {
        let page = get("/login/code").await.unwrap().text().await.unwrap();
        client
            .post(format!("{}/login/code", s.url))
            .form(&[("csrf", csrf_of(&page).as_str()), ("code", answer)])
            .send()
            .await
            .unwrap();
    }
    assert_eq!(get("/clients/424242").await.unwrap().status(), 303);

    let scraped = reqwest::get(&metrics_url).await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = scraped.text().await.unwrap();

    for (outcome, n) in [
        ("wrong_password", 1.0),
        ("unknown_email", 1.0),
        ("wrong_code", 1.0),
        ("ok", 1.0),
    ] {
        assert_eq!(
            sample(&text, "backoffice_sign_ins_total", &[("outcome", outcome)]),
            Some(n),
            "{outcome}: {text}"
        );
    }
    assert_eq!(
        sample(&text, "backoffice_mails_total", &[("result", "sent")]),
        Some(1.0)
    );
    // By route template, never by path: the id asked for is not a label.
    assert!(
        sample(
            &text,
            "backoffice_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/clients/{id}"),
                ("status", "303")
            ]
        ) == Some(1.0),
        "{text}"
    );
    assert!(!text.contains("424242"), "a path leaked into a label");
    assert!(
        sample(
            &text,
            "backoffice_http_request_duration_seconds_bucket",
            &[("method", "POST"), ("route", "/login"), ("le", "+Inf")]
        ) == Some(3.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "backoffice_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        )
        .is_some(),
        "{text}"
    );
    let in_use = sample(
        &text,
        "backoffice_db_pool_connections",
        &[("state", "in_use")],
    );
    let idle = sample(
        &text,
        "backoffice_db_pool_connections",
        &[("state", "idle")],
    );
    assert!(in_use.is_some() && idle.unwrap() >= 1.0, "{text}");
    assert_eq!(
        sample(&text, "backoffice_db_pool_max_connections", &[]),
        Some(8.0)
    );
    // Nobody waits for a connection on an idle server (the queueing itself: store's pool tests).
    assert_eq!(sample(&text, "backoffice_db_pool_waiting", &[]), Some(0.0));
    assert_eq!(
        sample(&text, "backoffice_hashing_queue_depth", &[]),
        Some(0.0)
    );
    assert!(sample(&text, "backoffice_hashing_seconds_count", &[]).unwrap() >= 3.0);
    assert!(sample(&text, "backoffice_hashing_wait_seconds_count", &[]).unwrap() >= 3.0);
    assert!(sample(&text, "backoffice_event_log_appends_total", &[]).unwrap() >= 5.0);
    // The destination's lag and failures, labelled by the destination.
    let sink = text
        .lines()
        .find_map(|l| l.strip_prefix("backoffice_events_forwarding_behind{sink=\""))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no forwarding lag: {text}"))
        .to_string();
    assert!(sink.contains(&syslog), "{sink}");
    let behind = sample(
        &text,
        "backoffice_events_forwarding_behind",
        &[("sink", &sink)],
    );
    assert!(behind.unwrap() >= 5.0, "{text}");
    assert!(
        sample(
            &text,
            "backoffice_events_forwarding_consecutive_failures",
            &[("sink", &sink)]
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        sample(
            &text,
            "backoffice_events_forwarding_failures_total",
            &[("sink", &sink)]
        )
        .unwrap()
            >= 1.0
    );

    // A real parser: promtool, where it is installed (CI requires it).
    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool: {}{}\n{text}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(e) => {
            assert!(
                std::env::var("BACKOFFICE_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
                "BACKOFFICE_REQUIRE_PROMTOOL=1 but promtool can't run: {e}"
            );
            eprintln!("promtool not installed ({e}): the text was checked by this test alone");
        }
    }
    s.stop();
}
