//! Configuration: defaults → optional `backoffice.toml` → `BACKOFFICE_*` environment.
//! Every bad value ends start-up with a message naming the setting (exit code 2).

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A bad setting: which one, and why.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

fn bad(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        reason: reason.into(),
    }
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(default)]
pub struct Config {
    pub database_url: String,
    pub listen: String,
    pub smtp_url: Option<String>,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    /// A PEM file of CA certificates trusted for SMTP TLS besides the public roots.
    pub smtp_ca_file: Option<String>,
    pub mail_from: String,
    pub public_url: Option<String>,
    pub admin_email: String,
    pub log_format: String,
    pub session_idle_minutes: u64,
    pub session_absolute_hours: u64,
    pub trusted_proxies: String,
    pub api_rate_per_minute: u32,
    pub api_rate_per_ip_per_minute: u32,
    /// Password attempts per client address per 10 minutes; 0 = unlimited.
    pub sign_in_attempts_per_ip: u32,
    pub smtp_timeout_seconds: u64,
    pub shutdown_grace_seconds: u64,
    /// Pooled database connections per instance; 0 = automatic.
    pub database_max_connections: u32,
    /// The file holding the key that seals two-factor secrets; default `secret.key` next to the
    /// SQLite database (created on first start), required with PostgreSQL.
    pub secret_key_file: Option<String>,
    /// Forward the event log to syslog: `tcp://host:port` or `tls://host:port`.
    pub events_syslog_url: Option<String>,
    /// Forward the event log to a webhook: an `https://` URL, signed with the secret below.
    pub events_webhook_url: Option<String>,
    pub events_webhook_secret: Option<String>,
    /// Mask client personal data in forwarded events.
    pub events_mask_personal: bool,
    /// A PEM file of CA certificates trusted for forwarding over TLS besides the public roots.
    pub events_ca_file: Option<String>,
    /// Where `/metrics` is served (Prometheus text); unset = no metrics.
    pub metrics_listen: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://./data/backoffice.db".into(),
            listen: "127.0.0.1:8080".into(),
            smtp_url: None,
            smtp_username: None,
            smtp_password: None,
            smtp_ca_file: None,
            mail_from: "backoffice@localhost.localdomain".into(),
            public_url: None,
            admin_email: "admin@backoffice.local".into(),
            log_format: "text".into(),
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            trusted_proxies: String::new(),
            api_rate_per_minute: 600,
            api_rate_per_ip_per_minute: 1200,
            sign_in_attempts_per_ip: 30,
            smtp_timeout_seconds: 30,
            shutdown_grace_seconds: 30,
            database_max_connections: 0,
            secret_key_file: None,
            events_syslog_url: None,
            events_webhook_url: None,
            events_webhook_secret: None,
            events_mask_personal: false,
            events_ca_file: None,
            metrics_listen: None,
        }
    }
}

/// Secrets (database and SMTP passwords) never appear in `Debug` output.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("listen", &self.listen)
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field(
                "smtp_password",
                &self.smtp_password.as_ref().map(|_| "<redacted>"),
            )
            .field("mail_from", &self.mail_from)
            .field("public_url", &self.public_url)
            .field("events_syslog_url", &self.events_syslog_url)
            .field(
                "events_webhook_url",
                &self
                    .events_webhook_url
                    .as_deref()
                    .map(app::forwarding::webhook::origin_of),
            )
            .field(
                "events_webhook_secret",
                &self.events_webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***@{}", &url[..s], &url[at + 1..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Config {
    pub fn load() -> Result<Self, ConfigError> {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file("backoffice.toml"))
            .merge(Env::prefixed("BACKOFFICE_").ignore(&["test_postgres_url"]))
            .extract()
            .map_err(|e| {
                let setting = match e.path.first().map(String::as_str) {
                    Some("session_idle_minutes") => "BACKOFFICE_SESSION_IDLE_MINUTES",
                    Some("session_absolute_hours") => "BACKOFFICE_SESSION_ABSOLUTE_HOURS",
                    Some("smtp_timeout_seconds") => "BACKOFFICE_SMTP_TIMEOUT_SECONDS",
                    Some("shutdown_grace_seconds") => "BACKOFFICE_SHUTDOWN_GRACE_SECONDS",
                    Some("database_max_connections") => "BACKOFFICE_DATABASE_MAX_CONNECTIONS",
                    Some("sign_in_attempts_per_ip") => "BACKOFFICE_SIGN_IN_ATTEMPTS_PER_IP",
                    Some("events_mask_personal") => "BACKOFFICE_EVENTS_MASK_PERSONAL",
                    _ => "configuration",
                };
                bad(setting, e.to_string())
            })
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            bad(
                "BACKOFFICE_LISTEN",
                format!("{:?} is not an address like 127.0.0.1:8080", self.listen),
            )
        })
    }

    /// Where `/metrics` listens, if anywhere.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        match self.metrics_listen.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|_| {
                bad(
                    "BACKOFFICE_METRICS_LISTEN",
                    format!("{s:?} is not an address like 127.0.0.1:9464"),
                )
            }),
        }
    }

    /// `BACKOFFICE_PUBLIC_URL`, or else the listen address; one on loopback (the default) is
    /// named `localhost`: only this machine reaches it, where that name means it, and browsers
    /// take `http://localhost` as a secure context and a passkey relying party, which an IP
    /// address can never be, so the standalone default install offers passkeys.
    pub fn public_url(&self) -> Result<String, ConfigError> {
        let url = match (&self.public_url, self.listen_addr()) {
            (Some(u), _) => u.trim_end_matches('/').to_string(),
            (None, Ok(addr)) if addr.ip().is_loopback() => {
                format!("http://localhost:{}", addr.port())
            }
            (None, _) => format!("http://{}", self.listen),
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad(
                "BACKOFFICE_PUBLIC_URL",
                format!("{url:?} must start with http:// or https://"),
            ));
        }
        Ok(url)
    }

    /// The origin part of the public URL (scheme://host:port), as browsers send it.
    pub fn public_origin(&self) -> Result<String, ConfigError> {
        let url = self.public_url()?;
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", &url));
        let host = rest.split('/').next().unwrap_or("");
        Ok(format!("{scheme}://{host}"))
    }

    pub fn trusted_proxies(&self) -> Result<Vec<IpAddr>, ConfigError> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse().map_err(|_| {
                    bad(
                        "BACKOFFICE_TRUSTED_PROXIES",
                        format!("{s:?} is not an IP address"),
                    )
                })
            })
            .collect()
    }

    pub fn smtp(&self) -> Result<Option<app::mail::SmtpConfig>, ConfigError> {
        let Some(url) = self.smtp_url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let mut c = app::mail::SmtpConfig::from_url(url.trim(), &self.mail_from).map_err(|e| {
            let setting = if e.contains("sender") {
                "BACKOFFICE_MAIL_FROM"
            } else {
                "BACKOFFICE_SMTP_URL"
            };
            bad(setting, e)
        })?;
        if let Some(u) = &self.smtp_username {
            c.username = Some(u.clone());
        }
        if let Some(p) = &self.smtp_password {
            c.password = Some(p.clone());
        }
        if let Some(path) = self
            .smtp_ca_file
            .as_deref()
            .filter(|p| !p.trim().is_empty())
        {
            let pem = std::fs::read(path)
                .map_err(|e| bad("BACKOFFICE_SMTP_CA_FILE", format!("can't read {path}: {e}")))?;
            c.set_extra_roots(&pem)
                .map_err(|e| bad("BACKOFFICE_SMTP_CA_FILE", format!("{path}: {e}")))?;
        }
        // The event log's time filter relies on an event being committed within 10 minutes of
        // its time, and a mail is sent between the two.
        if !(1..=300).contains(&self.smtp_timeout_seconds) {
            return Err(bad(
                "BACKOFFICE_SMTP_TIMEOUT_SECONDS",
                "must be between 1 and 300",
            ));
        }
        // One bound for the whole exchange (connect, greeting, every command); connecting alone
        // gets at most 10 s of it.
        c.total_timeout = Duration::from_secs(self.smtp_timeout_seconds);
        c.connect_timeout = c.total_timeout.min(Duration::from_secs(10));
        Ok(Some(c))
    }

    /// Where the event log is forwarded (`None`: nowhere). Checked at start-up: a bad URL, a
    /// webhook without a secret or an unreadable CA file stops it.
    pub fn forwarding(&self) -> Result<Option<app::forwarding::Forwarding>, ConfigError> {
        use app::forwarding::{syslog::SyslogTarget, webhook::WebhookTarget, Forwarding};
        fn set(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        let (syslog, webhook) = (set(&self.events_syslog_url), set(&self.events_webhook_url));
        if syslog.is_none() && webhook.is_none() {
            if set(&self.events_webhook_secret).is_some() {
                return Err(bad(
                    "BACKOFFICE_EVENTS_WEBHOOK_SECRET",
                    "is set but BACKOFFICE_EVENTS_WEBHOOK_URL is not",
                ));
            }
            return Ok(None);
        }
        let roots = match set(&self.events_ca_file) {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                bad(
                    "BACKOFFICE_EVENTS_CA_FILE",
                    format!("can't read {path}: {e}"),
                )
            })?),
            None => None,
        };
        // The targets' errors start with the setting they concern; a TLS roots problem is the
        // CA file's.
        let problem = |e: String| {
            for setting in [
                "BACKOFFICE_EVENTS_SYSLOG_URL",
                "BACKOFFICE_EVENTS_WEBHOOK_URL",
                "BACKOFFICE_EVENTS_WEBHOOK_SECRET",
            ] {
                if let Some(reason) = e.strip_prefix(setting).and_then(|r| r.strip_prefix(": ")) {
                    return bad(setting, reason);
                }
            }
            bad("BACKOFFICE_EVENTS_CA_FILE", e)
        };
        Ok(Some(Forwarding {
            syslog: syslog
                .map(|url| SyslogTarget::parse(url, roots.as_deref()))
                .transpose()
                .map_err(problem)?,
            webhook: webhook
                .map(|url| {
                    WebhookTarget::new(
                        url,
                        set(&self.events_webhook_secret).unwrap_or(""),
                        roots.as_deref(),
                    )
                })
                .transpose()
                .map_err(problem)?,
            mask_personal: self.events_mask_personal,
        }))
    }

    pub fn settings(&self) -> Result<app::Settings, ConfigError> {
        if self.session_idle_minutes == 0 {
            return Err(bad("BACKOFFICE_SESSION_IDLE_MINUTES", "must be at least 1"));
        }
        if self.session_absolute_hours == 0 {
            return Err(bad(
                "BACKOFFICE_SESSION_ABSOLUTE_HOURS",
                "must be at least 1",
            ));
        }
        Ok(app::Settings {
            session_idle: Duration::from_secs(self.session_idle_minutes * 60),
            session_absolute: Duration::from_secs(self.session_absolute_hours * 3600),
            public_url: self.public_url()?,
            sign_in_attempts_per_ip: self.sign_in_attempts_per_ip,
            ..app::Settings::default()
        })
    }

    /// Checks the database URL and, for SQLite, creates the data folder and proves it writable.
    /// The pool size: `None` lets the store choose (see `store::connect_with`).
    pub fn database_max_connections(&self) -> Result<Option<u32>, ConfigError> {
        match self.database_max_connections {
            0 => Ok(None),
            n if n <= 1000 => Ok(Some(n)),
            _ => Err(bad(
                "BACKOFFICE_DATABASE_MAX_CONNECTIONS",
                "must be between 1 and 1000 (0 = automatic)",
            )),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// The folder of the SQLite database file (`None` for PostgreSQL and in-memory SQLite).
    /// The SQLite database file (`None` for PostgreSQL and in-memory SQLite).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.database_url.strip_prefix("sqlite:")?;
        let path = rest
            .trim_start_matches("//")
            .split('?')
            .next()
            .unwrap_or("");
        if path.is_empty() || path == ":memory:" {
            return None;
        }
        Some(PathBuf::from(path))
    }

    fn sqlite_folder(&self) -> Option<PathBuf> {
        let path = self.sqlite_path()?;
        let folder = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Some(if folder.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            folder
        })
    }

    /// The key that seals two-factor secrets, from `BACKOFFICE_SECRET_KEY_FILE`. With the
    /// embedded SQLite default it is `secret.key` next to the database, made on first start
    /// (`may_create`: the database has no secrets sealed with another key yet). PostgreSQL
    /// needs the setting, since every instance must share the key.
    pub fn secret_key(&self, may_create: bool) -> Result<app::secret_box::SecretKey, ConfigError> {
        use app::secret_box::SecretKey;
        const S: &str = "BACKOFFICE_SECRET_KEY_FILE";
        let path = match (&self.secret_key_file, self.sqlite_folder()) {
            (Some(p), _) => PathBuf::from(p),
            (None, Some(folder)) => folder.join("secret.key"),
            (None, None) if self.database_url.starts_with("sqlite:") => {
                // An in-memory database keeps no secret beyond this process.
                return Ok(SecretKey::generate());
            }
            (None, None) => {
                return Err(bad(
                    S,
                    "required with PostgreSQL: a file holding the key that every instance \
                     shares (64 hexadecimal digits, e.g. made with `openssl rand -hex 32`)",
                ))
            }
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => SecretKey::from_file_contents(&text)
                .map_err(|reason| bad(S, format!("{}: {reason}", path.display()))),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && self.secret_key_file.is_none()
                    && may_create =>
            {
                let key = SecretKey::generate();
                write_private(&path, &key.to_file_contents())
                    .map_err(|e| bad(S, format!("can't create {}: {e}", path.display())))?;
                println!(
                    "Created the secret key file {} (it seals two-factor secrets: back it up with the database).",
                    path.display()
                );
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(bad(
                S,
                format!(
                    "{} is missing; this database's two-factor secrets were sealed with the key it \
                     held: restore the file (or set BACKOFFICE_SECRET_KEY_FILE to it)",
                    path.display()
                ),
            )),
            Err(e) => Err(bad(S, format!("can't read {}: {e}", path.display()))),
        }
    }

    pub fn prepare_database(&self) -> Result<(), ConfigError> {
        const S: &str = "BACKOFFICE_DATABASE_URL";
        let url = self.database_url.as_str();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(());
        }
        if !self.is_sqlite() {
            return Err(bad(
                S,
                format!(
                    "unknown database scheme in {:?}; use sqlite://PATH or postgres://…",
                    redact_url(url)
                ),
            ));
        }
        let Some(folder) = self.sqlite_folder() else {
            return Ok(());
        };
        std::fs::create_dir_all(&folder).map_err(|e| {
            bad(
                S,
                format!("can't create the data folder {}: {e}", folder.display()),
            )
        })?;
        let probe = folder.join(".backoffice-write-test");
        std::fs::write(&probe, b"ok").map_err(|e| {
            bad(
                S,
                format!("the data folder {} is not writable: {e}", folder.display()),
            )
        })?;
        let _ = std::fs::remove_file(probe);
        Ok(())
    }
}

/// Writes a new file readable by its owner only.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_names_localhost_for_a_loopback_listener() {
        let on = |listen: &str| Config {
            listen: listen.into(),
            ..Config::default()
        };
        assert_eq!(
            Config::default().public_url().unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            on("[::1]:9000").public_url().unwrap(),
            "http://localhost:9000"
        );
        assert_eq!(
            on("0.0.0.0:8080").public_url().unwrap(),
            "http://0.0.0.0:8080"
        );
        assert_eq!(
            on("10.1.2.3:80").public_url().unwrap(),
            "http://10.1.2.3:80"
        );
        let set = Config {
            public_url: Some("https://bo.example.com/".into()),
            ..Config::default()
        };
        assert_eq!(set.public_url().unwrap(), "https://bo.example.com");
        assert_eq!(
            Config::default().public_origin().unwrap(),
            "http://localhost:8080"
        );
    }

    #[test]
    fn redacts_secrets() {
        assert_eq!(
            redact_url("postgres://bo:hunter2@db:5432/bo"),
            "postgres://bo:***@db:5432/bo"
        );
        let c = Config {
            smtp_password: Some("hunter2".into()),
            database_url: "postgres://u:hunter2@h/d".into(),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
