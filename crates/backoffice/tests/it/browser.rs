//! The seed's flows in a real browser: Debian's Chromium driven over WebDriver (chromedriver),
//! against the real binary on a temporary SQLite database with a real SMTP server. Elements are
//! found as a person finds them: by label, button and link text.
//!
//! Ignored unless asked for: `cargo test -- --ignored browser` with chromium and
//! chromium-driver installed (`.ci/run` installs them and runs these tests).

use crate::BIN;
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::{process, SmtpServer};

const ADMIN_PASSWORD: &str = "Granite-Willow-Beacon-35";
const USER_PASSWORD: &str = "Saffron-Glacier-Mosaic-72";

fn temp_dir(tag: &str) -> PathBuf {
    process::temp_dir(&format!("browser-{tag}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Child processes that are killed when the test ends, whatever happens.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real binary, its first-start output, and its URL.
struct Backoffice {
    _server: process::Server,
    url: String,
    admin_email: String,
    admin_password: String,
}

fn start_backoffice(dir: &Path, smtp: &SmtpServer) -> Backoffice {
    start_backoffice_with(dir, smtp, &[])
}

/// The real binary with some more environment (e.g. `BACKOFFICE_TRUSTED_PROXIES`), which may
/// also replace the defaults (e.g. `BACKOFFICE_LISTEN`).
fn start_backoffice_with(dir: &Path, smtp: &SmtpServer, env: &[(&str, &str)]) -> Backoffice {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .envs(env.iter().copied())
        .env("BACKOFFICE_SMTP_URL", smtp.url())
        .env("BACKOFFICE_MAIL_FROM", "backoffice@example.com")
        .env_remove("BACKOFFICE_DATABASE_URL");
    let server = process::serve(c, Stdio::null());
    let printed = |prefix: &str| {
        server
            .stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_default()
            .to_string()
    };
    Backoffice {
        admin_email: printed("Email: "),
        admin_password: printed("One-time password: "),
        url: server.url.clone(),
        _server: server,
    }
}

/// A person at a browser.
struct Person {
    c: Client,
    base: String,
    shots: PathBuf,
    _driver: Kill,
}

async fn open_browser(base: &str, downloads: &Path) -> Person {
    open_browser_with(base, downloads, true).await
}

/// A browser, with JavaScript on or (`javascript` false) switched off by the profile's
/// content settings, as for a person who blocks scripts.
async fn open_browser_with(base: &str, downloads: &Path, javascript: bool) -> Person {
    let port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian package chromium-driver)");
    let driver = Kill(driver);
    let profile = downloads.join("profile");
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--window-size=1400,1000", format!("--user-data-dir={}", profile.display())],
            "prefs": {"download.default_directory": downloads.display().to_string(), "download.prompt_for_download": false,
                      "profile.managed_default_content_settings.javascript": if javascript { 1 } else { 2 }}
        }
    });
    let caps = caps.as_object().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    let c = loop {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => panic!("no WebDriver session: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    Person {
        c,
        base: base.to_string(),
        shots,
        _driver: driver,
    }
}

/// A Chrome DevTools Protocol command, sent through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp(serde_json::Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.0.to_string()))
    }
}

fn lit(s: &str) -> String {
    if s.contains('\'') {
        format!("\"{s}\"")
    } else {
        format!("'{s}'")
    }
}

impl Person {
    async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn path(&self) -> String {
        self.c.current_url().await.unwrap().path().to_string()
    }

    async fn text(&self) -> String {
        self.c
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The form control a `<label>` with this text names.
    async fn field(&self, label: &str) -> Element {
        let l = self
            .c
            .wait()
            .for_element(Locator::XPath(&format!(
                "//label[normalize-space(.)={}]",
                lit(label)
            )))
            .await
            .unwrap_or_else(|e| panic!("no label {label:?}: {e}"));
        match l.attr("for").await.unwrap() {
            Some(id) => self.c.find(Locator::Id(&id)).await.unwrap(),
            None => l
                .find(Locator::Css("input, select, textarea"))
                .await
                .unwrap(),
        }
    }

    async fn fill(&self, label: &str, value: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let f = self.field(label).await;
            match f.clear().await {
                Ok(()) => return f.send_keys(value).await.unwrap(),
                Err(e) if Instant::now() > deadline => panic!("can't type into {label:?}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    async fn value(&self, label: &str) -> String {
        self.field(label)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    async fn check(&self, label: &str) {
        let f = self.field(label).await;
        if f.prop("checked").await.unwrap().as_deref() != Some("true") {
            f.click().await.unwrap();
        }
    }

    async fn choose(&self, label: &str, option: &str) {
        let f = self.field(label).await;
        f.find(Locator::XPath(&format!(
            ".//option[starts-with(normalize-space(.), {})]",
            lit(option)
        )))
        .await
        .unwrap_or_else(|e| panic!("no option {option:?} in {label:?}: {e}"))
        .click()
        .await
        .unwrap();
    }

    /// Clicks a button (or an element with role=button) by its text.
    async fn press(&self, text: &str) {
        eprintln!("press {text:?} on {}", self.path().await);
        let xpath = format!(
            "//button[not(@aria-hidden='true')][normalize-space(.)={t}] | //*[@role='button'][normalize-space(.)={t}] | //input[@type='submit'][@value={t}]",
            t = lit(text)
        );
        self.click(&xpath, text).await;
    }

    /// Clicks the element at `xpath`, waiting while the page is still settling (a loaded
    /// machine can report an element before it can take a click). When the element submits a
    /// form or follows a link, waits until the next page has loaded.
    async fn click(&self, xpath: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let el = self
                .c
                .wait()
                .for_element(Locator::XPath(xpath))
                .await
                .unwrap_or_else(|e| panic!("no {what:?}: {e}"));
            let tag = el.tag_name().await.unwrap_or_default();
            let kind = el
                .attr("type")
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| "submit".into());
            // A link within the page (an error summary's) moves the focus, not the page:
            // waiting for a next page there waited out settle's whole 15 s.
            let href = el.attr("href").await.ok().flatten().unwrap_or_default();
            let navigates =
                (tag == "a" && !href.starts_with('#')) || (tag == "button" && kind == "submit");
            if navigates {
                self.c
                    .execute("window.__boMark = true;", vec![])
                    .await
                    .unwrap();
            }
            match el.click().await {
                Ok(()) => {
                    if navigates {
                        self.settle().await;
                    }
                    return;
                }
                Err(e) if Instant::now() > deadline => panic!("can't click {what:?}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Waits for a new document (the mark set before the click is gone) that has loaded.
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let state = self
                .c
                .execute(
                    "return (window.__boMark ? 'old' : document.readyState);",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            if state == "complete" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn follow(&self, text: &str) {
        let xpath = format!("//a[normalize-space(.)={}]", lit(text));
        self.click(&xpath, text).await;
    }

    async fn keys(&self, keys: &str) {
        self.c
            .active_element()
            .await
            .unwrap()
            .send_keys(keys)
            .await
            .unwrap();
    }

    /// Presses Enter on the focused link or button and waits for the next page.
    async fn enter(&self) {
        self.c
            .execute("window.__boMark = true;", vec![])
            .await
            .unwrap();
        self.keys(&Key::Enter.to_string()).await;
        self.settle().await;
    }

    /// Presses Tab until the focused element is the control named by `label`.
    async fn tab_to(&self, label: &str) {
        let target = self
            .field(label)
            .await
            .attr("id")
            .await
            .unwrap()
            .expect("labelled control has an id");
        for _ in 0..60 {
            let active = self.c.active_element().await.unwrap();
            if active.attr("id").await.unwrap().as_deref() == Some(target.as_str()) {
                return;
            }
            self.keys(&Key::Tab.to_string()).await;
        }
        panic!("Tab never reached {label:?}");
    }

    /// Presses Tab until the focused element is the button or link with this text.
    async fn tab_to_text(&self, text: &str) {
        for _ in 0..150 {
            let active = self.c.active_element().await.unwrap();
            if active.text().await.unwrap_or_default().trim() == text {
                return;
            }
            self.keys(&Key::Tab.to_string()).await;
        }
        panic!("Tab never reached {text:?} on {}", self.path().await);
    }

    /// From now on every request of this browser carries `X-Forwarded-For: ip`: with
    /// `BACKOFFICE_TRUSTED_PROXIES=127.0.0.1` the Back Office takes it for the client address,
    /// as behind a load balancer.
    async fn come_from(&self, ip: &str) {
        for cmd in [
            serde_json::json!({"cmd": "Network.enable", "params": {}}),
            serde_json::json!({"cmd": "Network.setExtraHTTPHeaders",
                "params": {"headers": {"X-Forwarded-For": ip}}}),
        ] {
            self.c.issue_cmd(Cdp(cmd)).await.unwrap();
        }
    }

    /// The page as a phone (390×844) or a laptop (1366×768) shows it.
    async fn viewport(&self, width: u32, height: u32) {
        self.c
            .issue_cmd(Cdp(serde_json::json!({
                "cmd": "Emulation.setDeviceMetricsOverride",
                "params": {"width": width, "height": height, "deviceScaleFactor": 1,
                           "mobile": width < 600}
            })))
            .await
            .unwrap();
    }

    /// The page doesn't scroll sideways: what is wider than the window (a wide table) scrolls
    /// inside its own box.
    async fn assert_no_sideways_scroll(&self, what: &str) {
        let sizes = self
            .c
            .execute(
                "var d = document.documentElement, m = document.querySelector('main');\
                 return [d.scrollWidth, d.clientWidth, m ? m.scrollWidth - m.clientWidth : 0];",
                vec![],
            )
            .await
            .unwrap();
        let v: Vec<i64> = serde_json::from_value(sizes).unwrap();
        assert!(
            v[0] <= v[1] && v[2] <= 0,
            "{what}: the page scrolls sideways (page {} px in a {} px window, main {} px too wide)",
            v[0],
            v[1],
            v[2]
        );
    }

    /// axe-core (vendored, see `axe/README.md`) finds no violation on this page.
    async fn assert_accessible(&self, what: &str) {
        const AXE: &str = include_str!("axe/axe.min.js");
        self.c
            .execute(&format!("{AXE}\nreturn typeof window.axe;"), vec![])
            .await
            .unwrap();
        let found = self
            .c
            .execute_async(
                "var done = arguments[arguments.length - 1];\
                 axe.run(document, {resultTypes: ['violations']}).then(function (r) {\
                   done(r.violations.map(function (v) {\
                     return v.id + ' (' + v.impact + '): ' + v.help + '\\n    ' +\
                       v.nodes.slice(0, 5).map(function (n) { return n.target.join(' ') + ' | ' + n.failureSummary.replace(/\\n/g, ' '); }).join('\\n    ');\
                   }));\
                 }, function (e) { done(['axe failed: ' + e]); });",
                vec![],
            )
            .await
            .unwrap();
        let violations: Vec<String> = serde_json::from_value(found).unwrap();
        assert!(
            violations.is_empty(),
            "{what}: axe-core found {} violation(s):\n  {}",
            violations.len(),
            violations.join("\n  ")
        );
    }

    /// Presses Enter in the control named by `label` and waits for the next page.
    async fn enter_in(&self, label: &str) {
        let f = self.field(label).await;
        self.c
            .execute("window.__boMark = true;", vec![])
            .await
            .unwrap();
        f.send_keys(&Key::Enter.to_string()).await.unwrap();
        self.settle().await;
    }

    /// Runs a script and returns its answer.
    async fn js(&self, script: &str) -> serde_json::Value {
        self.c.execute(script, vec![]).await.unwrap()
    }

    /// The id of the focused element ("" when it has none).
    async fn focused_id(&self) -> String {
        self.js("return document.activeElement ? document.activeElement.id : '';")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn checked(&self, label: &str) -> bool {
        self.field(label)
            .await
            .prop("checked")
            .await
            .unwrap()
            .as_deref()
            == Some("true")
    }

    async fn screenshot(&self, name: &str) {
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// The password step, the code from the mail when one is asked for, and the forced change.
    async fn sign_in(
        &self,
        smtp: &SmtpServer,
        email: &str,
        password: &str,
        new_password: Option<&str>,
    ) {
        self.goto("/login").await;
        let before = smtp.messages_to(email).len();
        self.fill("Email", email).await;
        self.fill("Password", password).await;
        self.press("Sign in").await;
        if self.path().await == "/login/code" {
            let _ = smtp.wait_for(email, before + 1).await;
            self.fill("Code", &smtp.latest_code(email)).await;
            self.press("Verify").await;
        }
        if let Some(np) = new_password {
            assert_eq!(
                self.path().await,
                "/password/change",
                "{}",
                self.text().await
            );
            self.fill("New password", np).await;
            self.fill("Repeat the new password", np).await;
            self.press("Save password").await;
        }
        assert_eq!(self.path().await, "/", "{}", self.text().await);
    }

    /// Opens the top bar's profile menu (the button showing the signed-in email).
    async fn open_profile_menu(&self) {
        self.click(
            "//details[contains(@class,'profile-menu')]/summary",
            "profile menu",
        )
        .await;
    }

    /// The password step alone (the second step is the test's own).
    async fn enter_password(&self, email: &str, password: &str) {
        self.goto("/login").await;
        self.fill("Email", email).await;
        self.fill("Password", password).await;
        self.press("Sign in").await;
    }

    async fn sign_out(&self) {
        self.open_profile_menu().await;
        self.press("Sign out").await;
        assert_eq!(self.path().await, "/login");
    }

    /// The table row that mentions `text`.
    async fn row(&self, text: &str) -> String {
        let xpath = format!("//tr[td[normalize-space(.)={}]]", lit(text));
        self.c
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no row with {text:?}: {e}"))
            .text()
            .await
            .unwrap()
    }
}

/// Creates a group through its page; used by the flows that need groups.
async fn create_group(p: &Person, caption: &str, rights: &[&str]) {
    p.goto("/groups").await;
    p.follow("+Create").await;
    p.fill("Caption", caption).await;
    for r in rights {
        p.check(r).await;
    }
    p.press("Save").await;
    assert!(p.text().await.contains("Group created"));
}

#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver: run with --ignored browser"]
async fn the_seed_flows_in_chromium() {
    let smtp = SmtpServer::start().await;
    let dir = temp_dir("seed");
    let bo = start_backoffice(&dir, &smtp);
    let p = open_browser(&bo.url, &dir).await;

    // Flow 1: first start — the printed one-time password, a code by mail, a new password.
    assert_eq!(bo.admin_email, "admin@backoffice.local");
    p.sign_in(
        &smtp,
        &bo.admin_email,
        &bo.admin_password,
        Some(ADMIN_PASSWORD),
    )
    .await;
    assert!(p.text().await.contains("Dashboard"));
    p.screenshot("flow1-dashboard").await;

    // Flow 5: groups with the Check menu, export, import with Replace Disabled.
    p.goto("/groups").await;
    p.follow("+Create").await;
    p.fill("Caption", "Support").await;
    p.press("Check").await;
    p.press("View").await;
    assert_eq!(
        p.field("Users View")
            .await
            .prop("checked")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert_ne!(
        p.field("Users Create")
            .await
            .prop("checked")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    p.press("Uncheck all").await;
    assert_ne!(
        p.field("Users View")
            .await
            .prop("checked")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    p.press("Check").await;
    p.press("All").await;
    assert_eq!(
        p.field("Settings Update")
            .await
            .prop("checked")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    p.press("Save").await;
    assert!(p.text().await.contains("Group created"));
    create_group(&p, "Desk", &["Clients View", "Users View"]).await;
    p.goto("/groups").await;
    p.follow("Export").await;
    let exported = dir.join("groups.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exported.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(exported.exists(), "the export was downloaded");
    p.goto("/groups").await;
    p.follow("Import").await;
    p.field("File")
        .await
        .send_keys(&exported.display().to_string())
        .await
        .unwrap();
    p.choose("Replace", "Disabled").await;
    p.press("Import").await;
    let text = p.text().await;
    assert!(
        text.contains("group(s) imported")
            && text.contains("Support (1)")
            && text.contains("Desk (1)"),
        "{text}"
    );
    p.screenshot("flow5-groups").await;

    // Two clients, entered by the administrator through Clients › +Create.
    let clients = [
        (
            "Johanna",
            "Quickfeather",
            "johanna.quickfeather@example.com",
            "+44 20 7946 0188",
        ),
        (
            "Marek",
            "Zylberstein",
            "marek.zylberstein@example.org",
            "+48 22 555 0142",
        ),
    ];
    for (first, last, email, phone) in clients {
        p.goto("/").await;
        p.follow("Clients").await;
        p.follow("+Create").await;
        p.fill("First name", first).await;
        p.fill("Last name", last).await;
        p.fill("Email", email).await;
        p.fill("Phone", phone).await;
        p.choose("Country", "United Kingdom").await;
        p.fill("City", "London").await;
        p.choose("Role", "Investor").await;
        p.choose("Status", "Active").await;
        p.choose("Communication language", "English").await;
        p.press("Save").await;
        assert!(p.text().await.contains(last), "{}", p.text().await);
    }

    // Flow 2: the seed, step by step.
    p.goto("/").await;
    p.follow("Users").await;
    p.follow("+Create").await;
    assert!(p.text().await.contains("Create user"));
    p.fill("Email", "nora.newman@example.com").await;
    p.press("Generate").await;
    assert_eq!(
        p.field("Password")
            .await
            .attr("type")
            .await
            .unwrap()
            .as_deref(),
        Some("password"),
        "hidden until shown"
    );
    p.check("Show password").await;
    assert_eq!(
        p.field("Password")
            .await
            .attr("type")
            .await
            .unwrap()
            .as_deref(),
        Some("text")
    );
    let generated = p.value("Password").await;
    assert_eq!(
        generated.len(),
        20,
        "generated password read from the field"
    );
    p.choose("Status", "Enabled").await;
    p.check("Desk").await;
    p.check("Support").await;
    p.fill("Name", "Nora Newman").await;
    p.check("Send to email").await;
    p.check("Mask data").await;
    p.press("Save").await;
    assert_eq!(p.path().await, "/users");
    assert!(p.text().await.contains("User created"));
    let row = p.row("nora.newman@example.com").await;
    for cell in [
        "Nora Newman",
        "Enabled",
        "Email",
        "Desk, Support",
        "Yes",
        "admin@backoffice.local",
        "Never",
    ] {
        assert!(row.contains(cell), "row lacks {cell:?}: {row}");
    }
    p.screenshot("flow2-user-listed").await;

    // Flow 6: field errors next to their fields, with what was typed kept.
    p.follow("+Create").await;
    p.fill("Email", "NORA.newman@example.com").await;
    p.fill("Password", "short").await;
    p.fill("Name", "Second Nora").await;
    p.press("Save").await;
    let text = p.text().await;
    assert!(
        text.contains("This email is already used by another user"),
        "{text}"
    );
    assert!(text.contains("Password must be at least 12 characters long"));
    assert!(text.contains("Choose at least one group"));
    assert_eq!(p.value("Name").await, "Second Nora");
    assert_eq!(p.value("Email").await, "NORA.newman@example.com");
    p.screenshot("flow6-field-errors").await;
    p.sign_out().await;

    // Flow 3 (the part without clients): the new user reads the mail, signs in with it and the
    // emailed code, and chooses a new password.
    let mail = smtp.wait_for("nora.newman@example.com", 1).await.body();
    assert!(mail.contains(&generated));
    p.sign_in(
        &smtp,
        "nora.newman@example.com",
        &generated,
        Some(USER_PASSWORD),
    )
    .await;
    p.follow("Clients").await;
    let text = p.text().await;
    assert!(
        text.contains("J**** Q****")
            && text.contains("j****@e****.com")
            && text.contains("+*******88"),
        "{text}"
    );
    let source = p.c.source().await.unwrap();
    for (first, last, email, phone) in clients {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        for real in [first, last, email, &digits[..digits.len() - 2]] {
            assert!(
                !source.contains(real),
                "{real} is in the page source of a masked user"
            );
        }
    }
    p.screenshot("flow3-masked-clients").await;
    p.sign_out().await;

    // Flow 4: Actions › Disable 2FA, confirmed; the column says Disabled; no code any more.
    p.sign_in(&smtp, &bo.admin_email, ADMIN_PASSWORD, None)
        .await;
    p.goto("/users").await;
    p.follow("Nora Newman").await;
    p.press("Actions").await;
    p.follow("Disable 2FA").await;
    p.fill("Your password", ADMIN_PASSWORD).await;
    p.press("Save").await;
    assert!(p.text().await.contains("2FA disabled"));
    p.goto("/users").await;
    let row = p.row("nora.newman@example.com").await;
    assert!(row.contains("Disabled"), "{row}");
    p.sign_out().await;
    let codes_before = smtp.messages_to("nora.newman@example.com").len();
    p.goto("/login").await;
    p.fill("Email", "nora.newman@example.com").await;
    p.fill("Password", USER_PASSWORD).await;
    p.press("Sign in").await;
    assert_eq!(p.path().await, "/", "signed in without a code");
    assert_eq!(
        smtp.messages_to("nora.newman@example.com").len(),
        codes_before,
        "no code was sent"
    );
    p.screenshot("flow4-no-code").await;
    p.sign_out().await;
    p.c.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver: run with --ignored browser"]
async fn the_seed_flow_with_the_keyboard_alone() {
    let smtp = SmtpServer::start().await;
    let dir = temp_dir("keys");
    let bo = start_backoffice(&dir, &smtp);
    let p = open_browser(&bo.url, &dir).await;
    p.sign_in(
        &smtp,
        &bo.admin_email,
        &bo.admin_password,
        Some(ADMIN_PASSWORD),
    )
    .await;
    create_group(&p, "Desk", &["Clients View"]).await;
    create_group(&p, "Support", &["Users View"]).await;

    p.goto("/").await;
    p.tab_to_text("Users").await;
    p.enter().await;
    assert_eq!(p.path().await, "/users");
    p.tab_to_text("+Create").await;
    p.enter().await;
    assert_eq!(p.path().await, "/users/new");
    p.tab_to("Email").await;
    p.keys("kim.keys@example.com").await;
    p.tab_to_text("Generate").await;
    p.enter().await;
    p.tab_to("Show password").await;
    p.keys(&Key::Space.to_string()).await;
    let generated = p.value("Password").await;
    assert_eq!(generated.len(), 20);
    // Groups are checkboxes (issue 24): Space ticks each.
    p.tab_to("Desk").await;
    p.keys(&Key::Space.to_string()).await;
    p.tab_to("Support").await;
    p.keys(&Key::Space.to_string()).await;
    p.tab_to("Name").await;
    p.keys("Kim Keys").await;
    // Send to email is ticked already where SMTP is configured.
    assert!(p.checked("Send to email").await);
    p.tab_to("Mask data").await;
    p.keys(&Key::Space.to_string()).await;
    p.tab_to_text("Save").await;
    p.enter().await;
    assert_eq!(p.path().await, "/users", "{}", p.text().await);
    let row = p.row("kim.keys@example.com").await;
    assert!(row.contains("Kim Keys") && row.contains("Yes"), "{row}");
    assert!(
        row.contains("Desk") && row.contains("Support"),
        "two groups chosen with the keyboard: {row}"
    );
    assert!(smtp
        .wait_for("kim.keys@example.com", 1)
        .await
        .body()
        .contains(&generated));
    p.screenshot("flow7-keyboard").await;
    p.c.close().await.unwrap();
}

/// Forgot password, as a person does it: the link on the sign-in page, the mail, Choose a new
/// password, and the code that is still asked.
#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver: run with --ignored browser"]
async fn forgot_password_in_chromium() {
    let smtp = SmtpServer::start().await;
    let dir = temp_dir("forgot");
    let bo = start_backoffice(&dir, &smtp);
    let p = open_browser(&bo.url, &dir).await;
    p.sign_in(
        &smtp,
        &bo.admin_email,
        &bo.admin_password,
        Some(ADMIN_PASSWORD),
    )
    .await;
    p.sign_out().await;

    p.goto("/login").await;
    p.follow("Forgot password?").await;
    assert_eq!(p.path().await, "/login/forgot");
    p.fill("Email", &bo.admin_email).await;
    p.press("Send link").await;
    assert!(
        p.text()
            .await
            .contains("If an account exists for that address"),
        "{}",
        p.text().await
    );
    let mut link = None;
    for _ in 0..100 {
        link = smtp.messages_to(&bo.admin_email).iter().find_map(|m| {
            let body = m.body();
            let at = body.find("/password/reset?token=")?;
            Some(body[at..at + 22 + 64].to_string())
        });
        if link.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let link = link.expect("a reset mail");
    p.goto(&link).await;
    assert_eq!(
        p.path().await,
        "/password/reset",
        "the token left the address bar"
    );
    p.fill("New password", "Juniper-Atlas-Ember-64").await;
    p.fill("Repeat the new password", "Juniper-Atlas-Ember-64")
        .await;
    let codes_before = smtp.messages_to(&bo.admin_email).len();
    p.press("Save password").await;
    assert_eq!(p.path().await, "/login/code", "{}", p.text().await);
    let _ = smtp.wait_for(&bo.admin_email, codes_before + 1).await;
    p.fill("Code", &smtp.latest_code(&bo.admin_email)).await;
    p.press("Verify").await;
    assert_eq!(p.path().await, "/", "{}", p.text().await);
    p.screenshot("flow8-forgot-password").await;
    p.sign_out().await;
    p.sign_in(&smtp, &bo.admin_email, "Juniper-Atlas-Ember-64", None)
        .await;
    p.c.close().await.unwrap();
}

/// Clients › Tags and Select › Edit selected clients › Assign Tags, as a person clicks them:
/// two ticked rows first, then every client matching the list (a job whose page reports it).
#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver: run with --ignored browser"]
async fn bulk_assign_tags_in_chromium() {
    let smtp = SmtpServer::start().await;
    let dir = temp_dir("bulk");
    let seeded = Command::new(BIN)
        .current_dir(&dir)
        .env_remove("BACKOFFICE_DATABASE_URL")
        .args(["demo", "seed", "--clients", "30"])
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{seeded:?}");
    let bo = start_backoffice(&dir, &smtp);
    let p = open_browser(&bo.url, &dir).await;
    p.sign_in(
        &smtp,
        &bo.admin_email,
        &bo.admin_password,
        Some(ADMIN_PASSWORD),
    )
    .await;
    // A new tag under Clients › Tags.
    p.follow("Tags").await;
    assert_eq!(p.path().await, "/clients/tags");
    p.follow("+Create").await;
    p.fill("Caption", "VIP").await;
    p.press("Save").await;
    assert!(
        p.text().await.contains("Tag VIP created"),
        "{}",
        p.text().await
    );

    // Two ticked rows.
    p.goto("/clients").await;
    p.follow("Select").await;
    for id in [1, 2] {
        p.click(
            &format!("//input[@aria-label='Select client {id}']"),
            "a row's checkbox",
        )
        .await;
    }
    let in_bulk = |label: &str| {
        format!(
            "//fieldset[contains(@class,'bulk')]//label[normalize-space(.)={}]/input",
            lit(label)
        )
    };
    p.click(&in_bulk("Assign Tags"), "Assign Tags").await;
    p.click(&in_bulk("VIP"), "VIP").await;
    p.press("Edit selected clients").await;
    let confirm = p.text().await;
    assert!(
        confirm.contains("Assign Tags: VIP for 2 client(s)"),
        "{confirm}"
    );
    p.press("Change 2 client(s)").await;
    assert!(
        p.text().await.contains("2 of 2 selected client(s) changed"),
        "{}",
        p.text().await
    );
    p.screenshot("bulk-1-ticked").await;
    for id in ["1", "2"] {
        assert!(p.row(id).await.contains("VIP"), "client {id} carries VIP");
    }

    // Select all: every client matching the list (no filter: all 30).
    p.goto("/clients?select=1").await;
    p.click(
        "//label[starts-with(normalize-space(.),'Select all: every client matching')]/input",
        "Select all matching",
    )
    .await;
    p.click(&in_bulk("Assign Tags"), "Assign Tags").await;
    p.click(&in_bulk("VIP"), "VIP").await;
    p.press("Edit selected clients").await;
    assert!(
        p.text().await.contains("for 30 client(s)"),
        "{}",
        p.text().await
    );
    p.press("Change 30 client(s)").await;
    assert!(p.path().await.starts_with("/clients/bulk/"));
    let mut text = String::new();
    for _ in 0..60 {
        p.c.refresh().await.unwrap();
        text = p.text().await;
        if text.contains("Done:") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(text.contains("Done: 28 client(s) changed"), "{text}");
    assert!(text.contains("30 of 30 looked at"), "{text}");
    p.screenshot("bulk-2-job").await;
    p.goto("/clients/tags").await;
    assert!(p.row("VIP").await.contains("30"), "the tag's count follows");
    p.c.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver: run with --ignored browser"]
async fn ip_whitelist_in_chromium() {
    let smtp = SmtpServer::start().await;
    let dir = temp_dir("ipw");
    let bo = start_backoffice_with(&dir, &smtp, &[("BACKOFFICE_TRUSTED_PROXIES", "127.0.0.1")]);
    let p = open_browser(&bo.url, &dir).await;
    p.come_from("198.51.100.7").await;
    p.sign_in(
        &smtp,
        &bo.admin_email,
        &bo.admin_password,
        Some(ADMIN_PASSWORD),
    )
    .await;

    // A new user with a whitelist: a bad line is named, and nothing is created until it's fixed.
    p.goto("/users").await;
    p.follow("+Create").await;
    p.fill("Email", "desk@example.com").await;
    p.fill("Password", USER_PASSWORD).await;
    p.check("Administrators").await;
    p.fill("Name", "Desk Person").await;
    p.fill(
        "IP Whitelist",
        "203.0.113.0/24\n2001:db8:77::/48\n203.0.113.300",
    )
    .await;
    p.press("Save").await;
    let text = p.text().await;
    assert!(text.contains("Line 3: “203.0.113.300”"), "{text}");
    p.fill("IP Whitelist", "203.0.113.0/24\n2001:db8:77::/48")
        .await;
    // The typed password is never sent back into the page (issue 24): typed again.
    p.fill("Password", USER_PASSWORD).await;
    p.press("Save").await;
    assert!(p.text().await.contains("User created"));

    // The list shows each user's whitelist in the vendor's column order.
    p.goto("/users").await;
    let row = p.row("desk@example.com").await;
    assert!(
        row.contains("203.0.113.0/24") && row.contains("2001:db8:77::/48"),
        "{row}"
    );
    assert!(p.row(&bo.admin_email).await.contains("Anywhere"));
    // Every column fits a 1366-pixel screen.
    p.c.set_window_size(1366, 900).await.unwrap();
    p.goto("/users").await;
    let overflow = p
        .c
        .execute("return document.querySelector('main').scrollWidth - document.querySelector('main').clientWidth;", vec![])
        .await
        .unwrap();
    p.screenshot("ipw-users-list").await;
    assert_eq!(
        overflow.as_i64(),
        Some(0),
        "the Users list scrolls sideways at 1366 px"
    );

    // One's own list: narrowing to the office saves at once; leaving out this address asks.
    p.follow("Administrator").await;
    p.fill("IP Whitelist", "198.51.100.0/24").await;
    p.press("Save").await;
    assert!(p.text().await.contains("User saved"));
    p.fill("IP Whitelist", "198.51.100.8").await;
    p.press("Save").await;
    let text = p.text().await;
    assert!(
        text.contains("You will be signed out and can't sign back in from 198.51.100.7"),
        "{text}"
    );
    p.screenshot("ipw-confirm").await;
    p.check("Yes, save this IP Whitelist and sign me out").await;
    p.press("Save").await;
    assert_eq!(p.path().await, "/login", "signed out: {}", p.text().await);

    // From the one address left the administrator signs in; from elsewhere the answer is a
    // wrong password's.
    p.come_from("203.0.113.9").await;
    p.fill("Email", &bo.admin_email).await;
    p.fill("Password", ADMIN_PASSWORD).await;
    p.press("Sign in").await;
    assert!(p.text().await.contains("Invalid email or password"));
    p.come_from("198.51.100.8").await;
    p.sign_in(&smtp, &bo.admin_email, ADMIN_PASSWORD, None)
        .await;
    p.goto("/events").await;
    let text = p.text().await;
    assert!(
        text.contains("address 203.0.113.9 not in the IP Whitelist"),
        "{text}"
    );
}

/// A WebDriver command of the WebAuthn spec's extension (chromedriver implements them), which
/// fantoccini has no call for: `POST` or `DELETE /session/{id}/{path}`, with a JSON body or none.
#[derive(Debug)]
struct WebAuthnCommand(http::Method, String, Option<serde_json::Value>);

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.1
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (self.0.clone(), self.2.as_ref().map(|b| b.to_string()))
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Waits for the next 30-second step (the enrolment spent the current one), plus a second.
async fn next_step() {
    let wait = 30 - unix_now().rem_euclid(30) + 1;
    tokio::time::sleep(Duration::from_secs(wait as u64)).await;
}

/// Profile menu › Enable 2FA (named "Two-factor authentication" once a method is set, as the
/// first administrator's email codes are here) › a method › OK.
async fn enable_2fa(p: &Person, method: &str) {
    p.open_profile_menu().await;
    p.click(
        "//details[contains(@class,'profile-menu')]//li[1]/a",
        "Two-factor authentication",
    )
    .await;
    assert_eq!(p.path().await, "/two-factor");
    p.check(method).await;
    p.press("OK").await;
}

#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver: run with --ignored browser"]
async fn totp_enrolment_and_sign_in_in_chromium() {
    let smtp = SmtpServer::start().await;
    let dir = temp_dir("totp");
    let bo = start_backoffice(&dir, &smtp);
    let p = open_browser(&bo.url, &dir).await;
    p.sign_in(
        &smtp,
        &bo.admin_email,
        &bo.admin_password,
        Some(ADMIN_PASSWORD),
    )
    .await;
    // The top bar's profile button shows the email; its menu offers Enable 2FA.
    let menu =
        p.c.find(Locator::Css("details.profile-menu summary"))
            .await
            .unwrap();
    assert_eq!(menu.text().await.unwrap().trim(), bo.admin_email);
    enable_2fa(&p, "TOTP (authenticator app)").await;
    assert_eq!(p.path().await, "/two-factor/totp");
    assert!(p.c.find(Locator::Css(".qr svg")).await.is_ok(), "a QR code");
    let shown =
        p.c.find(Locator::Id("secret_key"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    let secret = testkit::base32_decode(&shown);
    assert_eq!(secret.len(), 20);
    p.screenshot("totp-setup").await;
    let code = domain::totp::code_at(&secret, domain::totp::step_at(unix_now()));
    p.fill("Code", &code).await;
    p.fill("Password", ADMIN_PASSWORD).await;
    p.press("Verify").await;
    let text = p.text().await;
    assert!(
        text.contains("Recovery codes") && text.contains("Download"),
        "{text}"
    );
    let codes =
        p.c.find_all(Locator::Css("ol.recovery-codes code"))
            .await
            .unwrap();
    assert_eq!(codes.len(), 10);
    p.follow("I have saved them").await;
    p.open_profile_menu().await;
    assert!(p.text().await.contains("Two-factor authentication"));
    p.goto("/users").await;
    assert!(p.row(&bo.admin_email).await.contains("TOTP"));

    // Sign-in: the password, then the app's code (of the next step: the enrolment spent this one).
    p.sign_out().await;
    p.enter_password(&bo.admin_email, ADMIN_PASSWORD).await;
    assert_eq!(p.path().await, "/login/code");
    assert!(p.text().await.contains("authenticator app"));
    next_step().await;
    let code = domain::totp::code_at(&secret, domain::totp::step_at(unix_now()));
    p.fill("Code", &code).await;
    p.press("Verify").await;
    assert_eq!(p.path().await, "/", "{}", p.text().await);
    assert!(
        smtp.messages_to(&bo.admin_email).len() <= 2,
        "no code was mailed for this sign-in"
    );
}

/// Chromium's virtual authenticator: a platform authenticator that verifies the user. Returns
/// its id.
async fn add_virtual_authenticator(p: &Person) -> String {
    let added =
        p.c.issue_cmd(WebAuthnCommand(
            http::Method::POST,
            "webauthn/authenticator".into(),
            Some(serde_json::json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
            })),
        ))
        .await
        .unwrap();
    added.as_str().expect("an authenticator id").to_string()
}

#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver: run with --ignored browser"]
async fn passkeys_in_chromium_with_a_virtual_authenticator() {
    let smtp = SmtpServer::start().await;
    let dir = temp_dir("passkey");
    // Passkeys need a domain name. A default install (no BACKOFFICE_PUBLIC_URL) listening on
    // loopback names itself localhost, so it offers them.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let public = format!("http://localhost:{port}");
    let bo = start_backoffice_with(&dir, &smtp, &[("BACKOFFICE_LISTEN", &listen)]);
    let p = open_browser(&public, &dir).await;
    let _ = bo.url;
    let first = add_virtual_authenticator(&p).await;
    p.sign_in(
        &smtp,
        &bo.admin_email,
        &bo.admin_password,
        Some(ADMIN_PASSWORD),
    )
    .await;
    enable_2fa(&p, "Passkey").await;
    assert_eq!(p.path().await, "/two-factor/passkey");
    p.fill("Passkey name", "Virtual key").await;
    p.fill("Password", ADMIN_PASSWORD).await;
    p.press("Create passkey").await;
    // The script answers the prompt and submits; the recovery codes follow.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.text().await.contains("I have saved them") {
        assert!(Instant::now() < deadline, "no passkey: {}", p.text().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    p.screenshot("passkey-added").await;
    p.follow("I have saved them").await;
    p.goto("/two-factor").await;
    let text = p.text().await;
    assert!(
        text.contains("Virtual key") && text.contains("Passkey"),
        "{text}"
    );
    p.goto("/users").await;
    assert!(p.row(&bo.admin_email).await.contains("Passkey"));

    // Sign-in with the passkey.
    p.sign_out().await;
    p.enter_password(&bo.admin_email, ADMIN_PASSWORD).await;
    assert_eq!(p.path().await, "/login/code");
    p.click("//button[normalize-space(.)='Use passkey']", "Use passkey")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while p.path().await != "/" {
        assert!(
            Instant::now() < deadline,
            "not signed in: {}",
            p.text().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    p.goto("/two-factor").await;
    let row = p.row("Virtual key").await;
    assert!(
        !row.contains("Never"),
        "the passkey's last use is shown: {row}"
    );

    // A second passkey (on another authenticator: the page excludes the one that has a passkey
    // for this account already), then Remove the first.
    p.c.issue_cmd(WebAuthnCommand(
        http::Method::DELETE,
        format!("webauthn/authenticator/{first}"),
        None,
    ))
    .await
    .unwrap();
    add_virtual_authenticator(&p).await;
    p.goto("/two-factor/passkey").await;
    p.fill("Passkey name", "Second key").await;
    p.fill("Password", ADMIN_PASSWORD).await;
    p.click(
        "//button[normalize-space(.)='Create passkey']",
        "Create passkey",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.text().await.contains("The passkey was added") {
        assert!(
            Instant::now() < deadline,
            "no second passkey: {}",
            p.text().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let remove_password =
        p.c.find(Locator::XPath(
            "//tr[td[normalize-space(.)='Virtual key']]//input[@type='password']",
        ))
        .await
        .unwrap();
    remove_password.send_keys(ADMIN_PASSWORD).await.unwrap();
    p.click(
        "//tr[td[normalize-space(.)='Virtual key']]//button",
        "Remove",
    )
    .await;
    let text = p.text().await;
    assert!(
        text.contains("The passkey was removed") && !text.contains("Virtual key"),
        "{text}"
    );

    // Opened by its IP address instead, the page says where passkeys work rather than showing
    // the browser's bare refusal.
    let by_ip = Person {
        base: format!("http://{listen}"),
        ..p
    };
    by_ip.enter_password(&bo.admin_email, ADMIN_PASSWORD).await;
    assert_eq!(by_ip.path().await, "/login/code");
    by_ip
        .click("//button[normalize-space(.)='Use passkey']", "Use passkey")
        .await;
    let text = by_ip.text().await;
    assert!(
        text.contains("Passkeys work only where the address shows localhost"),
        "{text}"
    );
}

/// Whether the element at `css` is shown (laid out with a size).
async fn shown(p: &Person, css: &str) -> bool {
    p.js(&format!(
        "var e = document.querySelector({css:?}); return !!e && e.getClientRects().length > 0 && getComputedStyle(e).display !== 'none';"
    ))
    .await
    .as_bool()
    .unwrap_or(false)
}

/// The contrast of the focused element's focus ring against the colour behind it (WCAG's
/// relative luminance), and the ring's width in pixels.
async fn focus_ring(p: &Person) -> (f64, f64) {
    let v = p
        .js("var e = document.activeElement; if (e.id === 'menu-toggle') e = e.nextElementSibling; var s = getComputedStyle(e);\
             var rgb = function (c) { var m = c.match(/[\\d.]+/g).map(Number); return m.length > 3 && m[3] === 0 ? null : m.slice(0, 3); };\
             var lum = function (c) { var a = c.map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2]; };\
             var bg = null, n = e.parentElement;\
             while (n && !bg) { bg = rgb(getComputedStyle(n).backgroundColor); n = n.parentElement; }\
             bg = bg || [255, 255, 255];\
             var ring = rgb(s.outlineColor) || [0, 0, 0];\
             var a = lum(ring), b = lum(bg);\
             return [(Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), parseFloat(s.outlineWidth) || 0, s.outlineStyle === 'none' ? 0 : 1];")
        .await;
    let v: Vec<f64> = serde_json::from_value(v).unwrap();
    (v[0], v[1] * v[2])
}

/// The usability review's findings (issue 24), one by one, in a real browser.
#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver: run with --ignored browser"]
async fn usability_review_findings_in_chromium() {
    let smtp = SmtpServer::start().await;
    let dir = temp_dir("usability");
    let bo = start_backoffice(&dir, &smtp);
    let p = open_browser(&bo.url, &dir).await;
    p.sign_in(
        &smtp,
        &bo.admin_email,
        &bo.admin_password,
        Some(ADMIN_PASSWORD),
    )
    .await;
    create_group(&p, "Support", &["Clients View"]).await;
    create_group(&p, "Desk", &["Users View"]).await;

    // 4. Where am I: the skip link comes first and leads to the content; the current page is
    // marked in the menu; breadcrumbs show the path.
    p.goto("/users/new").await;
    p.keys(&Key::Tab.to_string()).await;
    let first = p.c.active_element().await.unwrap().text().await.unwrap();
    assert_eq!(first.trim(), "Skip to main content");
    p.keys(&Key::Enter.to_string()).await;
    assert_eq!(p.focused_id().await, "content");
    let current = p
        .js("return Array.from(document.querySelectorAll('nav.menu a[aria-current=page]')).map(function (a) { return a.textContent; });")
        .await;
    assert_eq!(current, serde_json::json!(["Users"]));
    let crumbs = p
        .js("return Array.from(document.querySelectorAll('nav.breadcrumbs li')).map(function (l) { return l.textContent.trim(); }).join(' › ');")
        .await;
    assert_eq!(crumbs, "System › Users › Users › Create user");

    // 11. Send to email is ticked when SMTP is configured.
    assert!(p.checked("Send to email").await);

    // 6. Groups: checkboxes with a filter box and the chosen ones as chips.
    p.fill("Filter groups", "sup").await;
    let visible = p
        .js("return Array.from(document.querySelectorAll('#groups-list label')).filter(function (l) { return !l.hidden; }).map(function (l) { return l.textContent.trim(); });")
        .await;
    assert_eq!(visible, serde_json::json!(["Support"]), "the filter box");
    p.check("Support").await;
    p.fill("Filter groups", "").await;
    p.check("Desk").await;
    p.click("//button[@aria-label='Remove Desk']", "the Desk chip")
        .await;
    assert!(!p.checked("Desk").await, "removing the chip unticks Desk");
    let chips = p
        .js("return Array.from(document.querySelectorAll('[data-picker-chips] button')).map(function (b) { return b.getAttribute('aria-label'); });")
        .await;
    assert_eq!(chips, serde_json::json!(["Remove Support"]));

    // 5. A failed submit: focus on the error summary, each problem a link to its field, the
    // fields marked, and the typed password not sent back.
    p.fill("Password", "Tiny-9").await;
    p.fill("Name", "Pat Keyboard").await;
    p.press("Save").await;
    assert_eq!(p.focused_id().await, "error-summary");
    let links = p
        .js("return Array.from(document.querySelectorAll('#error-summary a')).map(function (a) { return a.getAttribute('href') + ' ' + a.textContent; });")
        .await;
    let links: Vec<String> = serde_json::from_value(links).unwrap();
    assert!(
        links.len() == 2
            && links[0].starts_with("#email ")
            && links[1].starts_with("#password Password must be at least 12"),
        "{links:?}"
    );
    p.click(
        "//div[@id='error-summary']//a[@href='#email']",
        "the Email problem",
    )
    .await;
    assert_eq!(p.focused_id().await, "email");
    let email = p.field("Email").await;
    assert_eq!(
        email.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    let described = email.attr("aria-describedby").await.unwrap().unwrap();
    for id in described.split_whitespace() {
        assert!(
            p.c.find(Locator::Id(id)).await.is_ok(),
            "aria-describedby names {id}, which exists"
        );
    }
    assert_eq!(
        p.value("Password").await,
        "",
        "the typed password is dropped"
    );
    assert!(!p.c.source().await.unwrap().contains("Tiny-9"));
    assert!(p.checked("Support").await, "the chosen group is kept");
    p.screenshot("usability-error-summary").await;

    // 1. Enter in a field saves (it used to run Generate and replace the typed password).
    p.fill("Email", "pat.keyboard@example.com").await;
    p.fill("Password", USER_PASSWORD).await;
    p.enter_in("Name").await;
    assert_eq!(p.path().await, "/users", "{}", p.text().await);
    // 8. The message says what happened.
    assert!(
        p.text()
            .await
            .contains("User created; credentials emailed to pat.keyboard@example.com"),
        "{}",
        p.text().await
    );
    let mail = smtp.wait_for("pat.keyboard@example.com", 1).await.body();
    assert!(mail.contains(USER_PASSWORD), "the typed password was saved");

    // 3. The Columns menu: hidden columns stay hidden for this user, after signing in again.
    p.press("Columns").await;
    p.click(
        "//details[contains(@class,'columns')]//label[normalize-space(.)='Created At']/input",
        "Created At",
    )
    .await;
    p.click(
        "//details[contains(@class,'columns')]//label[normalize-space(.)='IP Whitelist']/input",
        "IP Whitelist",
    )
    .await;
    p.press("Show these columns").await;
    let heads = || async {
        p.js("return Array.from(document.querySelectorAll('table.users th')).map(function (t) { return t.textContent.trim(); });")
            .await
    };
    let h: Vec<String> = serde_json::from_value(heads().await).unwrap();
    assert!(
        !h.iter()
            .any(|c| c.starts_with("Created At") || c.starts_with("IP Whitelist"))
            && h.iter().any(|c| c.starts_with("Last sign-in")),
        "{h:?}"
    );
    p.sign_out().await;
    p.sign_in(&smtp, &bo.admin_email, ADMIN_PASSWORD, None)
        .await;
    p.goto("/users").await;
    let h: Vec<String> = serde_json::from_value(heads().await).unwrap();
    assert!(!h.iter().any(|c| c.starts_with("Created At")), "{h:?}");

    // 9. The pager: numbered pages; here one page, the current one marked.
    let pager = p
        .js("return document.querySelector('nav.pager [aria-current=page]').textContent;")
        .await;
    assert_eq!(pager, "Page 1");

    // 8. Account state on the user page; disabling asks first.
    p.follow("Pat Keyboard").await;
    let state = p
        .js("return Array.from(document.querySelectorAll('dl.state div')).map(function (d) { return d.querySelector('dt').textContent + ': ' + d.querySelector('dd').textContent.trim(); });")
        .await;
    let state: Vec<String> = serde_json::from_value(state).unwrap();
    for line in [
        "Two Factor Authentication: Email",
        "Locked: No",
        "Last sign-in: Never",
        "Active sessions: 0",
    ] {
        assert!(state.iter().any(|s| s == line), "{line:?} in {state:?}");
    }
    p.choose("Status", "Disabled").await;
    p.press("Save").await;
    assert!(p
        .text()
        .await
        .contains("ends their sessions and stops them signing in"));
    p.goto("/users").await;
    assert!(
        p.row("pat.keyboard@example.com").await.contains("Enabled"),
        "nothing saved yet"
    );
    p.follow("Pat Keyboard").await;
    p.choose("Status", "Disabled").await;
    p.press("Save").await;
    p.check("Yes, disable this user").await;
    p.press("Save").await;
    assert!(p.text().await.contains("User saved"), "{}", p.text().await);

    // 11. Menus close on Escape and give the focus back to their button.
    p.press("Actions").await;
    assert!(shown(&p, "details.actions[open] .menu-items").await);
    p.keys(&Key::Escape.to_string()).await;
    assert!(!shown(&p, "details.actions[open]").await, "closed");
    let focused = p
        .js("return document.activeElement.tagName + ' ' + document.activeElement.textContent.trim();")
        .await;
    assert_eq!(focused, "SUMMARY Actions");

    // 11. The focus ring: at least 3:1 against what is behind it, on links, buttons, fields
    // and the top bar.
    p.goto("/users/new").await;
    for _ in 0..60 {
        p.keys(&Key::Tab.to_string()).await;
        if p.js("return document.activeElement === document.body;")
            .await
            == true
        {
            break;
        }
        let (contrast, width) = focus_ring(&p).await;
        let what = p
            .js("var e = document.activeElement; return e.tagName + '#' + e.id + ' ' + (e.textContent || '').trim().slice(0, 30);")
            .await;
        assert!(
            contrast >= 3.0 && width >= 2.0,
            "focus ring of {what}: contrast {contrast:.2}, width {width}"
        );
    }

    // 7. The rights matrix: a toggle per row and column, Export in the Check menu, and
    // Update/Create/Delete bring View along; no Users › Delete; Clients › Delete is Block.
    p.goto("/groups/new").await;
    p.fill("Caption", "Matrix").await;
    p.click("//button[@aria-label='Toggle the Users row']", "Users row")
        .await;
    for r in ["Users View", "Users Create", "Users Update"] {
        assert!(p.checked(r).await, "{r}");
    }
    p.click(
        "//button[@aria-label='Toggle the Export column']",
        "Export column",
    )
    .await;
    assert!(p.checked("Clients Export").await && p.checked("Event log Export").await);
    p.press("Uncheck all").await;
    p.press("Check").await;
    p.press("Export").await;
    assert!(p.checked("Clients Export").await && !p.checked("Clients View").await);
    p.check("Groups Update").await;
    assert!(p.checked("Groups View").await, "Update brings View along");
    let text = p.text().await;
    assert!(!p.c.source().await.unwrap().contains("Users Delete"));
    assert!(text.contains("Block"), "{text}");
    p.field("Clients Block").await;
    p.enter_in("Caption").await;
    assert!(
        p.text().await.contains("Group created"),
        "Enter saves the group"
    );

    // 9. A date range that ends before it starts is an error, not an empty list.
    p.goto("/events?from=2026-12-02&to=2026-12-01").await;
    assert_eq!(p.focused_id().await, "error-summary");
    assert!(p
        .text()
        .await
        .contains("To must be the same day as From or later"));

    // 10. Times in the browser's zone with how long ago, UTC on hover; events in words.
    p.c.issue_cmd(Cdp(serde_json::json!({
        "cmd": "Emulation.setTimezoneOverride", "params": {"timezoneId": "Asia/Tokyo"}
    })))
    .await
    .unwrap();
    p.goto("/events").await;
    let t = p
        .js("var t = document.querySelector('td time'); return [t.getAttribute('datetime'), t.title, t.textContent];")
        .await;
    let t: Vec<String> = serde_json::from_value(t).unwrap();
    assert!(t[1].starts_with("UTC: ") && t[1].ends_with(" UTC"), "{t:?}");
    let utc_hour: u32 = t[0][11..13].parse().unwrap();
    let local_hour: u32 = t[2][11..13].parse().unwrap();
    assert_eq!(local_hour, (utc_hour + 9) % 24, "Tokyo time: {t:?}");
    assert!(t[2].contains("ago") || t[2].contains("just now"), "{t:?}");
    let text = p.text().await;
    assert!(
        text.contains("Signed in") && text.contains("Added group") && !text.contains("SIGN_IN"),
        "{text}"
    );

    // 3. The Event log's Columns menu: Details and IP address can be hidden (and come back
    // from the menu); long values wrap in their own column.
    p.viewport(1366, 768).await;
    p.goto("/events").await;
    let details_width = p
        .js("var d = document.querySelector('table.events td.details'); return d ? d.getBoundingClientRect().width / parseFloat(getComputedStyle(d).fontSize) : 0;")
        .await
        .as_f64()
        .unwrap();
    assert!(
        details_width <= 33.0,
        "Details wraps within 32em: {details_width}em"
    );
    p.press("Columns").await;
    for col in ["Details", "IP address", "Actor's groups"] {
        p.click(
            &format!(
                "//details[contains(@class,'columns')]//label[normalize-space(.)={}]/input",
                lit(col)
            ),
            col,
        )
        .await;
    }
    p.press("Show these columns").await;
    let heads: Vec<String> = serde_json::from_value(
        p.js("return Array.from(document.querySelectorAll('table.events th')).map(function (t) { return t.textContent.trim(); });")
            .await,
    )
    .unwrap();
    assert!(
        !heads.iter().any(|h| h == "Details" || h == "IP address")
            && heads.iter().any(|h| h == "Event"),
        "{heads:?}"
    );
    let fits = p
        .js("var b = document.querySelector('.table-scroll'); return b.scrollWidth <= b.clientWidth;")
        .await;
    assert_eq!(fits, true, "the chosen columns fit a 1366 px laptop");
    p.assert_no_sideways_scroll("Event log at 1366 px").await;
    // 9. The Event log's pager and page size.
    p.choose("Page size", "25").await;
    p.press("Filter").await;
    let pager = p
        .js("return document.querySelector('nav.pager').textContent;")
        .await;
    assert!(pager.as_str().unwrap().contains("25 a page"), "{pager}");

    // 5. The profile's password form: the error summary takes the focus, its link the field's.
    p.goto("/profile").await;
    p.fill("Current password", "Not-The-Password-1").await;
    p.fill("New password", "Another-Long-Password-2").await;
    p.fill("Repeat the new password", "Another-Long-Password-2")
        .await;
    p.press("Change password").await;
    assert_eq!(p.focused_id().await, "error-summary");
    p.click(
        "//div[@id='error-summary']//a[@href='#current_password']",
        "the Current password problem",
    )
    .await;
    assert_eq!(p.focused_id().await, "current_password");
    assert!(!p.c.source().await.unwrap().contains("Not-The-Password-1"));
    p.assert_accessible("Profile with an error summary").await;

    // Bulk actions: tick rows, choose, confirm on a page naming the count, read the result.
    p.goto("/users").await;
    p.click(
        "//input[@aria-label='Select pat.keyboard@example.com']",
        "Pat's checkbox",
    )
    .await;
    p.click(
        &format!("//input[@aria-label='Select {}']", bo.admin_email),
        "the admin's checkbox",
    )
    .await;
    p.choose("Action", "Enable").await;
    p.press("Apply to the chosen users").await;
    assert!(
        p.text().await.contains("Enable: 2 users?"),
        "{}",
        p.text().await
    );
    p.press("Enable: 2 users").await;
    let text = p.text().await;
    assert!(
        text.contains("1 of 2 users changed; 1 already as asked"),
        "{text}"
    );
    p.goto("/users").await;
    assert!(p.row("pat.keyboard@example.com").await.contains("Enabled"));

    // 2. The ☰ menu on a phone: closed until asked for.
    p.viewport(390, 844).await;
    p.goto("/users").await;
    assert!(
        !shown(&p, "nav.menu").await,
        "the menu is folded away on a phone"
    );
    p.click("//label[normalize-space(.)='☰ Menu']", "☰ Menu")
        .await;
    assert!(shown(&p, "nav.menu").await, "☰ opens it");
    p.assert_no_sideways_scroll("Users at 390 px").await;
    // The wide table scrolls in its own box; its first column and header row stay in view.
    let kept = p
        .js("var box = document.querySelector('.table-scroll'); box.scrollLeft = 200;\
             var cell = box.querySelector('tbody td'), head = box.querySelector('thead th');\
             return [box.scrollLeft, cell.getBoundingClientRect().left - box.getBoundingClientRect().left,\
                     getComputedStyle(head).position];")
        .await;
    assert_eq!(kept[0], 200, "the table box scrolls: {kept}");
    assert!(
        kept[1].as_f64().unwrap().abs() < 2.0,
        "the first column stays: {kept}"
    );
    assert_eq!(kept[2], "sticky", "the header row stays: {kept}");
    // The Create user form takes the phone's width.
    p.goto("/users/new").await;
    let width = p
        .js("return document.querySelector('form.card').getBoundingClientRect().width;")
        .await
        .as_f64()
        .unwrap();
    assert!(
        width > 340.0,
        "Create user is {width} px wide on a 390 px phone"
    );
}

/// Every main page at a phone's and a laptop's size: no sideways page scroll, the primary
/// action reachable with the keyboard, no axe-core violation, and a screenshot of each under
/// `target/browser-screenshots/` for the reviewer.
#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver: run with --ignored browser"]
async fn every_main_page_at_both_sizes_in_chromium() {
    let smtp = SmtpServer::start().await;
    let dir = temp_dir("pages");
    let seeded = Command::new(BIN)
        .current_dir(&dir)
        .args(["demo", "seed", "--clients", "60"])
        .env_remove("BACKOFFICE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{seeded:?}");
    let bo = start_backoffice(&dir, &smtp);
    let p = open_browser(&bo.url, &dir).await;
    // Signed out: the sign-in page.
    for (w, h) in [(390, 844), (1366, 768)] {
        p.viewport(w, h).await;
        p.goto("/login").await;
        p.assert_no_sideways_scroll(&format!("/login at {w}x{h}"))
            .await;
        p.assert_accessible(&format!("/login at {w}x{h}")).await;
        p.screenshot(&format!("page-login-{w}x{h}")).await;
    }
    p.sign_in(
        &smtp,
        &bo.admin_email,
        &bo.admin_password,
        Some(ADMIN_PASSWORD),
    )
    .await;
    create_group(&p, "Desk", &["Clients View", "Users View"]).await;
    p.goto("/clients/tags/new").await;
    p.fill("Caption", "VIP").await;
    p.press("Save").await;
    // (path, screenshot name, the primary action's text, if the page has one)
    let pages: [(&str, &str, Option<&str>); 21] = [
        ("/", "dashboard", None),
        ("/clients", "clients", Some("+Create")),
        ("/clients/new", "client-create", Some("Save")),
        ("/clients/1", "client-detail", Some("Edit")),
        ("/clients/1/edit", "client-edit", Some("Save")),
        ("/clients/tags", "tags", Some("+Create")),
        ("/users", "users", Some("+Create")),
        ("/users/new", "user-create", Some("Save")),
        ("/users/1", "user-edit", Some("Save")),
        (
            "/users/1/reset-password",
            "user-reset-password",
            Some("Save"),
        ),
        ("/groups", "groups", Some("+Create")),
        ("/groups/new", "group-create", Some("Save")),
        ("/groups/2", "group-edit", Some("Save")),
        ("/events", "events", Some("Filter")),
        (
            "/events?per_page=25&last=1",
            "events-last-page",
            Some("Filter"),
        ),
        (
            "/clients?per_page=25&last=1",
            "clients-last-page",
            Some("+Create"),
        ),
        ("/settings", "settings", Some("Save")),
        ("/profile", "profile", Some("Change password")),
        ("/two-factor", "two-factor", None),
        ("/two-factor/totp", "two-factor-totp", Some("Verify")),
        ("/two-factor/email", "two-factor-email", Some("Save")),
    ];
    for (w, h) in [(390, 844), (1366, 768)] {
        p.viewport(w, h).await;
        for (path, name, primary) in pages {
            p.goto(path).await;
            let what = format!("{path} at {w}x{h}");
            assert!(
                !p.text().await.contains("Not found"),
                "{what}: {}",
                p.text().await
            );
            p.assert_no_sideways_scroll(&what).await;
            p.assert_accessible(&what).await;
            if let Some(label) = primary {
                p.tab_to_text(label).await;
            }
            p.screenshot(&format!("page-{name}-{w}x{h}")).await;
        }
        if w > 1000 {
            // Dark mode follows the system setting, readable too; print shows the record.
            p.c.issue_cmd(Cdp(serde_json::json!({"cmd": "Emulation.setEmulatedMedia",
                "params": {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}})))
                .await
                .unwrap();
            for (path, name) in [
                ("/users", "users"),
                ("/users/1", "user-edit"),
                ("/groups/new", "group-create"),
                ("/clients", "clients"),
                ("/clients/1", "client-detail"),
                ("/events", "events"),
                ("/profile", "profile"),
                ("/settings", "settings"),
            ] {
                p.goto(path).await;
                let bg = p
                    .js("return getComputedStyle(document.body).backgroundColor;")
                    .await;
                assert_eq!(bg, "rgb(15, 21, 34)", "{path}: dark background");
                p.assert_accessible(&format!("{path} in dark mode")).await;
                p.screenshot(&format!("dark-{name}-{w}x{h}")).await;
            }
            // Swagger UI follows the system setting too (its own dark theme, vendored).
            p.goto("/api/docs").await;
            p.c.wait()
                .for_element(Locator::Css(".swagger-ui .info"))
                .await
                .unwrap();
            let bg = p
                .js("return getComputedStyle(document.querySelector('.swagger-ui')).backgroundColor;")
                .await;
            assert_eq!(bg, "rgb(28, 32, 34)", "Swagger UI: dark background");
            p.assert_accessible("Swagger UI in dark mode").await;
            p.screenshot(&format!("dark-api-docs-{w}x{h}")).await;
            p.c.issue_cmd(Cdp(serde_json::json!({"cmd": "Emulation.setEmulatedMedia",
                "params": {"media": "print", "features": []}})))
                .await
                .unwrap();
            for path in ["/users/1", "/clients/1"] {
                p.goto(path).await;
                assert!(
                    !shown(&p, "nav.menu").await && !shown(&p, "header.topbar").await,
                    "{path} printed without menus"
                );
                assert!(shown(&p, "main h1").await, "{path} printed with its record");
            }
            p.c.issue_cmd(Cdp(serde_json::json!({"cmd": "Emulation.setEmulatedMedia",
                "params": {"media": "", "features": []}})))
                .await
                .unwrap();
        }
        p.goto("/api/docs").await;
        // Swagger UI draws the page from its script.
        p.c.wait()
            .for_element(Locator::Css(".swagger-ui .info"))
            .await
            .unwrap();
        p.assert_no_sideways_scroll(&format!("Swagger UI at {w}x{h}"))
            .await;
        p.assert_accessible(&format!("Swagger UI at {w}x{h}")).await;
        p.screenshot(&format!("page-api-docs-{w}x{h}")).await;
    }
}

/// The groups picker without JavaScript (issue 24, finding 6): the checkboxes alone choose the
/// groups; the filter box and chips, which need the script, stay hidden.
#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver: run with --ignored browser"]
async fn groups_picker_without_javascript_in_chromium() {
    let smtp = SmtpServer::start().await;
    let dir = temp_dir("no-js");
    let bo = start_backoffice(&dir, &smtp);
    let p = open_browser_with(&bo.url, &dir, false).await;
    p.sign_in(
        &smtp,
        &bo.admin_email,
        &bo.admin_password,
        Some(ADMIN_PASSWORD),
    )
    .await;
    assert_eq!(
        p.js("return document.querySelector('time[datetime] .ago') === null;")
            .await,
        true,
        "app.js did not run"
    );
    create_group(&p, "Support", &["Clients View"]).await;
    create_group(&p, "Desk", &["Users View"]).await;
    p.goto("/users/new").await;
    assert!(
        !shown(&p, "[data-picker-tools]").await,
        "no filter box without the script"
    );
    p.fill("Email", "no.script@example.com").await;
    p.fill("Password", USER_PASSWORD).await;
    p.fill("Name", "No Script").await;
    p.check("Desk").await;
    p.press("Save").await;
    assert_eq!(p.path().await, "/users", "{}", p.text().await);
    assert!(p.row("no.script@example.com").await.contains("Desk"));
    p.follow("No Script").await;
    assert!(p.checked("Desk").await && !p.checked("Support").await);
    p.screenshot("no-js-user-groups").await;
}
