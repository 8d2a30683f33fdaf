//! Mail over SMTP with lettre (rustls, no OpenSSL). Messages are built by the library, so a name
//! or address containing CR/LF can never add a header or a recipient.

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Plain,
    StartTls,
    Tls,
}

impl Security {
    pub fn label(self) -> &'static str {
        match self {
            Security::Plain => "None (plain SMTP)",
            Security::StartTls => "STARTTLS",
            Security::Tls => "TLS (SMTPS)",
        }
    }
}

/// SMTP settings. `Debug` never shows the password.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    /// CA certificates trusted for TLS besides the public roots (a company's own relay).
    extra_roots: Option<Certificate>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("extra_roots", &self.extra_roots.is_some())
            .finish()
    }
}

impl SmtpConfig {
    /// Parses `smtp://`, `smtp+starttls://` or `smtps://` URLs, with optional `user:pass@`.
    pub fn from_url(url: &str, from: &str) -> Result<Self, String> {
        let (scheme, rest) = url.split_once("://").ok_or("expected smtp://host:port")?;
        let (security, default_port) = match scheme {
            "smtp" => (Security::Plain, 25),
            "smtp+starttls" => (Security::StartTls, 587),
            "smtps" => (Security::Tls, 465),
            other => {
                return Err(format!(
                    "unknown scheme {other:?}; use smtp, smtp+starttls or smtps"
                ))
            }
        };
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("invalid port {p:?}"))?,
            ),
            None => (hostport, default_port),
        };
        if host.is_empty() {
            return Err("missing host".into());
        }
        let (username, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((n, p)) => (Some(n.to_string()), Some(p.to_string())),
                None => (Some(u.to_string()), None),
            },
            None => (None, None),
        };
        domain::Email::parse(from)
            .map_err(|_| format!("sender address {from:?} is not a valid email"))?;
        Ok(Self {
            host: host.to_string(),
            port,
            security,
            username,
            password,
            from: from.to_string(),
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            extra_roots: None,
        })
    }

    /// Trusts the CA certificates of a PEM file for TLS, besides the public roots. A file with
    /// no certificate, or one that doesn't parse, is refused.
    pub fn set_extra_roots(&mut self, pem: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(pem);
        if !text.contains("-----BEGIN CERTIFICATE-----") {
            return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into());
        }
        let certs = Certificate::from_pem(pem)
            .map_err(|e| format!("not a valid PEM certificate file: {e}"))?;
        // Building the TLS settings is what parses each certificate: fail now, naming the file,
        // rather than at the first mail.
        TlsParameters::builder(self.host.clone())
            .add_root_certificate(certs.clone())
            .build()
            .map_err(|e| format!("a certificate in the file can't be used: {e}"))?;
        self.extra_roots = Some(certs);
        Ok(())
    }
}

/// A message for one recipient.
pub struct Mail {
    pub to_name: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Clone)]
pub struct Mailer {
    config: SmtpConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Mailer {
    pub fn new(config: SmtpConfig) -> Result<Self, String> {
        let builder = match config.security {
            Security::Plain => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            }
            Security::StartTls | Security::Tls => {
                let mut tls = TlsParameters::builder(config.host.clone());
                if let Some(roots) = &config.extra_roots {
                    tls = tls.add_root_certificate(roots.clone());
                }
                let tls = tls.build().map_err(|e| e.to_string())?;
                let mode = if config.security == Security::Tls {
                    Tls::Wrapper(tls)
                } else {
                    Tls::Required(tls)
                };
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host).tls(mode)
            }
        };
        let mut builder = builder
            .port(config.port)
            .timeout(Some(config.connect_timeout));
        if let (Some(u), Some(p)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            config,
        })
    }

    pub fn config(&self) -> &SmtpConfig {
        &self.config
    }

    /// Hands the message to the SMTP server; returns the server's answer, or the exact failure.
    pub async fn send(&self, mail: Mail) -> Result<String, String> {
        let answer = self.send_now(mail).await;
        crate::metrics::mail(answer.is_ok());
        answer
    }

    async fn send_now(&self, mail: Mail) -> Result<String, String> {
        let address: Address = mail
            .to
            .parse()
            .map_err(|e| format!("invalid recipient: {e}"))?;
        // lettre encodes the display name, but panics on control characters: strip them first.
        let name: String = mail
            .to_name
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let to = Mailbox::new(
            Some(name.trim().to_string()).filter(|n| !n.is_empty()),
            address,
        );
        let from: Mailbox = self
            .config
            .from
            .parse()
            .map_err(|e| format!("invalid sender: {e}"))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject.replace(['\r', '\n'], " "))
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(self.config.total_timeout, self.transport.send(message)).await {
            Err(_) => Err(format!(
                "the SMTP server did not answer within {} s",
                self.config.total_timeout.as_secs()
            )),
            Ok(Err(e)) => Err(describe_smtp_error(&e)),
            Ok(Ok(resp)) => Ok(format!(
                "{} {}",
                resp.code(),
                resp.message().collect::<Vec<_>>().join(" ")
            )),
        }
    }
}

fn describe_smtp_error(e: &lettre::transport::smtp::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_hides_password() {
        let c =
            SmtpConfig::from_url("smtps://bob:s3cret@mail.example.com", "bo@example.com").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.security),
            ("mail.example.com", 465, Security::Tls)
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = SmtpConfig::from_url("smtp://127.0.0.1:2525", "bo@example.com").unwrap();
        assert_eq!((c.port, c.security), (2525, Security::Plain));
        assert!(SmtpConfig::from_url("http://x", "bo@example.com").is_err());
        assert!(SmtpConfig::from_url("smtp://x:notaport", "bo@example.com").is_err());
    }
}
