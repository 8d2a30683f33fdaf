//! A Back Office served on port 0 with a fresh database, a real SMTP server (or none, for a
//! standalone install), an adjustable clock, and a cookie-keeping client that acts like a browser.

use crate::{db, SmtpServer};
use app::mail::{Mailer, SmtpConfig};
use app::{App, Clock, Settings};
use domain::Timestamp;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// System time plus an offset that a test can move forward.
#[derive(Default, Clone)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp(Timestamp::now().millis() + self.0.load(Ordering::SeqCst))
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub smtp: Option<SmtpServer>,
    pub clock: TestClock,
    pub db_url: String,
    /// Email and password of the first administrator (2FA disabled, password already chosen).
    pub admin_email: String,
    pub admin_password: String,
    pub options: Options,
}

/// How a test Back Office is set up; the default is what [`TestApp::start`] gives.
#[derive(Clone)]
pub struct Options {
    pub smtp: bool,
    /// The public URL is https (`Secure`, `__Host-` cookies, HSTS); the test still speaks http,
    /// so the browser can't send the `Secure` cookie back and the administrator keeps the initial
    /// password.
    pub https: bool,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    pub sign_in_attempts_per_ip: u32,
    /// The public URL names `localhost` instead of 127.0.0.1: a domain name, which passkeys
    /// (WebAuthn) need; the server still listens on 127.0.0.1.
    pub localhost: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            smtp: true,
            https: false,
            trusted_proxies: Vec::new(),
            // Every test signs in from 127.0.0.1, many times: tests of the per-address limit
            // set one.
            sign_in_attempts_per_ip: 0,
            localhost: false,
        }
    }
}

pub const ADMIN_INITIAL_PASSWORD: &str = "Initial-Copper-Meadow-17";
pub const ADMIN_PASSWORD: &str = "Quiet-Harbour-Lantern-42";

impl TestApp {
    /// A Back Office on `backend` with an SMTP server.
    pub async fn start(backend: &str) -> Self {
        Self::start_with(backend, true).await
    }

    pub async fn start_with(backend: &str, with_smtp: bool) -> Self {
        Self::start_with_options(
            backend,
            Options {
                smtp: with_smtp,
                ..Options::default()
            },
        )
        .await
    }

    pub async fn start_with_options(backend: &str, options: Options) -> Self {
        Self::start_on(db::fresh(backend).await, options).await
    }

    /// A Back Office on the database at `db_url` (e.g. a fresh one reached through a proxy).
    pub async fn start_on(db_url: String, options: Options) -> Self {
        let with_smtp = options.smtp;
        let store = store::connect(&db_url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let smtp = if with_smtp {
            Some(SmtpServer::start().await)
        } else {
            None
        };
        let mailer = smtp.as_ref().map(|s| {
            let mut c = SmtpConfig::from_url(&s.url(), "backoffice@example.com").unwrap();
            c.connect_timeout = Duration::from_secs(2);
            c.total_timeout = Duration::from_secs(3);
            Mailer::new(c).unwrap()
        });
        let clock = TestClock::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let settings = Settings {
            public_url: public_url(addr, &options),
            sign_in_attempts_per_ip: options.sign_in_attempts_per_ip,
            ..Settings::default()
        };
        let app = Arc::new(App::with_clock(
            store,
            mailer,
            settings,
            Arc::new(clock.clone()),
        ));
        app.seed().await.unwrap();
        let admin_email = "root@example.com".to_string();
        app.create_admin(
            &admin_email,
            "Root Admin",
            Some(ADMIN_INITIAL_PASSWORD),
            Some(domain::TwoFactor::Disabled),
        )
        .await
        .unwrap();
        serve(listener, app.clone(), addr, &options);
        let t = Self {
            addr,
            app,
            smtp,
            clock,
            db_url,
            admin_email,
            admin_password: ADMIN_PASSWORD.into(),
            options,
        };
        if t.options.https {
            return Self {
                admin_password: ADMIN_INITIAL_PASSWORD.into(),
                ..t
            };
        }
        // The first administrator chooses their own password, as a person would.
        let b = t.browser();
        assert_eq!(
            b.sign_in(&t.admin_email, ADMIN_INITIAL_PASSWORD)
                .await
                .status,
            303
        );
        b.get("/password/change").await;
        let r = b
            .post(
                "/password/change",
                &[
                    ("new_password", ADMIN_PASSWORD),
                    ("confirm_password", ADMIN_PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "forced password change: {}", r.body);
        t
    }

    /// A second Back Office instance on the same database and SMTP server (scale-out tests).
    pub async fn another_instance(&self) -> TestApp {
        let store = store::connect(&self.db_url).await.expect("connect");
        let mailer = self.smtp.as_ref().map(|s| {
            let c = SmtpConfig::from_url(&s.url(), "backoffice@example.com").unwrap();
            Mailer::new(c).unwrap()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let settings = Settings {
            public_url: public_url(addr, &self.options),
            sign_in_attempts_per_ip: self.options.sign_in_attempts_per_ip,
            // Every instance of one database shares the key that seals its secrets.
            secret_key: self.app.settings().secret_key.clone(),
            ..Settings::default()
        };
        let app = Arc::new(App::with_clock(
            store,
            mailer,
            settings,
            Arc::new(self.clock.clone()),
        ));
        serve(listener, app.clone(), addr, &self.options);
        TestApp {
            addr,
            app,
            smtp: self.smtp.clone(),
            clock: self.clock.clone(),
            db_url: self.db_url.clone(),
            admin_email: self.admin_email.clone(),
            admin_password: self.admin_password.clone(),
            options: self.options.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn smtp(&self) -> &SmtpServer {
        self.smtp
            .as_ref()
            .expect("this test app has an SMTP server")
    }

    pub fn browser(&self) -> Browser {
        Browser::new(self)
    }

    /// A browser signed in as the first administrator.
    pub async fn admin(&self) -> Browser {
        let b = self.browser();
        let r = b.sign_in(&self.admin_email, &self.admin_password).await;
        assert_eq!(r.status(), 303, "admin sign-in");
        b
    }
}

/// The public URL of a test app listening on `addr`.
fn public_url(addr: SocketAddr, options: &Options) -> String {
    let scheme = if options.https { "https" } else { "http" };
    if options.localhost {
        format!("{scheme}://localhost:{}", addr.port())
    } else {
        format!("{scheme}://{addr}")
    }
}

fn serve(listener: tokio::net::TcpListener, app: Arc<App>, addr: SocketAddr, options: &Options) {
    let state = web::AppState::new(
        app,
        web::WebConfig {
            secure_cookies: options.https,
            public_origin: public_url(addr, options),
            trusted_proxies: options.trusted_proxies.clone(),
            api_rate_per_credential: 0,
            api_rate_per_ip: 0,
        },
    );
    let router = web::router(state);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
}

/// A cookie-keeping HTTP client that does not follow redirects and remembers the last CSRF
/// token it saw in a page, like a person's browser tab.
pub struct Browser {
    pub client: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    base: String,
    csrf: std::sync::Mutex<String>,
    /// The client address its requests claim through `X-Forwarded-For` (see [`Browser::come_from`]).
    from: std::sync::Mutex<Option<String>>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    pub fn status(&self) -> u16 {
        self.status
    }
}

fn extract_csrf(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    body[at..].split('"').next().map(str::to_string)
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self::at(&format!("http://{}", app.addr))
    }

    /// A browser for a Back Office at `base` (e.g. the real binary started by a test).
    pub fn at(base: &str) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            client,
            jar,
            base: base.trim_end_matches('/').to_string(),
            csrf: Default::default(),
            from: Default::default(),
        }
    }

    /// From now on, `get` and `post` come "from" `ip`: they carry `X-Forwarded-For: ip`, which
    /// the Back Office believes when the test app trusts 127.0.0.1 as a proxy
    /// ([`Options::trusted_proxies`]), as behind a load balancer.
    pub fn come_from(&self, ip: &str) {
        *self.from.lock().unwrap() = Some(ip.to_string());
    }

    /// A request to `path` with this browser's cookies and client address, to finish as one
    /// likes (a JSON body, headers).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.forwarded(self.client.request(method, format!("{}{path}", self.base)))
    }

    fn forwarded(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.from.lock().unwrap().clone() {
            Some(ip) => req.header("x-forwarded-for", ip),
            None => req,
        }
    }

    /// The value of a cookie this browser holds.
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let header = self.jar.cookies(&self.base.parse().unwrap())?;
        header
            .to_str()
            .ok()?
            .split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    /// The session id this browser holds, if any.
    pub fn session_id(&self) -> Option<String> {
        self.cookie("bo_session").filter(|v| !v.is_empty())
    }

    /// Replaces the session cookie (to replay an old or foreign id).
    pub fn set_session_id(&self, id: &str) {
        self.jar.add_cookie_str(
            &format!("bo_session={id}; Path=/"),
            &self.base.parse().unwrap(),
        );
    }

    async fn page(&self, r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = r.text().await.unwrap_or_default();
        if let Some(t) = extract_csrf(&body) {
            *self.csrf.lock().unwrap() = t;
        }
        Page {
            status,
            location,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        let r = self
            .forwarded(self.client.get(format!("{}{path}", self.base)))
            .send()
            .await
            .unwrap();
        self.page(r).await
    }

    /// Posts a form with the CSRF token of the last page seen and a same-origin `Origin`.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf.lock().unwrap().clone();
        let mut all: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, Some(&self.base.clone())).await
    }

    /// Posts exactly these fields, with the given `Origin` (or none).
    pub async fn post_raw(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut req = self
            .forwarded(self.client.post(format!("{}{path}", self.base)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let r = req.send().await.unwrap();
        self.page(r).await
    }

    pub fn csrf(&self) -> String {
        self.csrf.lock().unwrap().clone()
    }

    /// The password step: loads /login (for the CSRF cookie and token) and posts the form.
    pub async fn sign_in(&self, email: &str, password: &str) -> Page {
        self.get("/login").await;
        self.post(
            "/login",
            &[("email", email), ("password", password), ("next", "/")],
        )
        .await
    }

    /// The code step.
    pub async fn enter_code(&self, code: &str) -> Page {
        self.get("/login/code").await;
        self.post("/login/code", &[("code", code)]).await
    }

    /// The forced first password change after signing in with a one-time password.
    pub async fn choose_password(&self, password: &str) -> Page {
        self.get("/password/change").await;
        self.post(
            "/password/change",
            &[("new_password", password), ("confirm_password", password)],
        )
        .await
    }

    /// A personal API token made through `POST /api/v1/me/tokens` (session + CSRF), as the
    /// Profile page's script does.
    pub async fn api_token(&self, name: &str) -> String {
        self.get("/profile").await;
        let r = self
            .request(reqwest::Method::POST, "/api/v1/me/tokens")
            .header("x-csrf-token", self.csrf())
            .header("origin", &self.base)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "token creation");
        let v: serde_json::Value = r.json().await.unwrap();
        v["token"].as_str().unwrap().to_string()
    }
}
