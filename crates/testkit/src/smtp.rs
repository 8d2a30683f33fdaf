//! A minimal SMTP server for tests: enough of RFC 5321 for lettre to deliver a message, and
//! faults on demand (refuse connections, hang, answer 4xx/5xx).

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpMode {
    Accept,
    /// Answers `451` to MAIL FROM: a temporary failure.
    TempFail,
    /// Answers `550` to RCPT TO: a permanent refusal.
    Reject,
    /// Accepts the connection and never says a word.
    Hang,
    /// Closes every connection at once.
    Refuse,
}

/// One delivered message, as received on the wire.
#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    /// The decoded body (quoted-printable soft breaks removed), for reading codes and passwords.
    pub fn body(&self) -> String {
        let body = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or(&self.data);
        let joined = body.replace("=\r\n", "");
        let b = joined.as_bytes();
        let mut raw = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'=' && i + 2 < b.len() {
                if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    raw.push(v);
                    i += 3;
                    continue;
                }
            }
            raw.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&raw).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let head = self
            .data
            .split_once("\r\n\r\n")
            .map(|(h, _)| h)
            .unwrap_or("");
        head.split("\r\n")
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .map(|l| {
                l.split_once(':')
                    .map(|(_, v)| v.trim().to_string())
                    .unwrap_or_default()
            })
    }
}

#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    mode: Arc<Mutex<SmtpMode>>,
    inbox: Arc<Mutex<Vec<Received>>>,
}

/// A certificate authority made for one test, and a server certificate for `localhost` that it
/// signed: what a company's own mail relay has.
pub struct TestCa {
    /// The CA certificate, PEM: what `BACKOFFICE_SMTP_CA_FILE` points to.
    pub ca_pem: String,
    server_cert: rustls::pki_types::CertificateDer<'static>,
    server_key: rustls::pki_types::PrivatePkcs8KeyDer<'static>,
}

impl TestCa {
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test Company CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");
        Self {
            ca_pem: ca.pem(),
            server_cert: cert.der().clone(),
            server_key: rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }
}

impl TestCa {
    /// A TLS acceptor for `localhost` with a certificate from this CA (for the test's own TLS
    /// servers: SMTP, a SIEM's receivers).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![self.server_cert.clone()],
                self.server_key.clone_key().into(),
            )
            .expect("server certificate");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::listen(None).await
    }

    /// An SMTP server that speaks TLS from the first byte (`smtps://localhost:port`) with a
    /// certificate from `ca`.
    pub async fn start_tls(ca: &TestCa) -> Self {
        Self::listen(Some(ca.acceptor())).await
    }

    async fn listen(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
        let port = listener.local_addr().unwrap().port();
        let server = Self {
            port,
            mode: Arc::new(Mutex::new(SmtpMode::Accept)),
            inbox: Arc::default(),
        };
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        // A client that refuses the certificate ends the handshake: no session.
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(sock).await {
                                s.session(stream).await
                            }
                        }
                        None => s.session(sock).await,
                    }
                });
            }
        });
        server
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The address of a server started with [`SmtpServer::start_tls`].
    pub fn tls_url(&self) -> String {
        format!("smtps://localhost:{}", self.port)
    }

    pub fn set_mode(&self, mode: SmtpMode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }

    pub fn messages_to(&self, to: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to)))
            .collect()
    }

    /// Waits (up to 5 s) for the `n`-th message to `to` (1-based) and returns it.
    pub async fn wait_for(&self, to: &str, n: usize) -> Received {
        for _ in 0..100 {
            let m = self.messages_to(to);
            if m.len() >= n {
                return m[n - 1].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no message #{n} for {to}; inbox: {:?}",
            self.messages().iter().map(|m| &m.to).collect::<Vec<_>>()
        );
    }

    /// The 6-digit code in the latest message to `to`.
    pub fn latest_code(&self, to: &str) -> String {
        let m = self.messages_to(to).pop().expect("a code mail");
        let body = m.body();
        let at = body.find("code is ").expect("code line") + "code is ".len();
        body[at..at + 6].to_string()
    }

    async fn session<S: AsyncRead + AsyncWrite + Unpin>(&self, sock: S) {
        let mode = *self.mode.lock().unwrap();
        match mode {
            SmtpMode::Refuse => return,
            SmtpMode::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            _ => {}
        }
        let (r, mut w) = tokio::io::split(sock);
        let mut lines = BufReader::new(r);
        let _ = w.write_all(b"220 test.smtp ESMTP ready\r\n").await;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let cmd = line.trim_end().to_string();
            let upper = cmd.to_ascii_uppercase();
            // The mode is read at every command, so a pooled connection sees a new fault too.
            let mode = *self.mode.lock().unwrap();
            match mode {
                SmtpMode::Refuse => return,
                SmtpMode::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return;
                }
                _ => {}
            }
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-test.smtp\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("HELO") {
                b"250 test.smtp\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                if mode == SmtpMode::TempFail {
                    b"451 4.3.0 Try again later\r\n"
                } else {
                    from = cmd[10..].trim().trim_matches(['<', '>']).to_string();
                    to.clear();
                    b"250 2.1.0 OK\r\n"
                }
            } else if upper.starts_with("RCPT TO:") {
                if mode == SmtpMode::Reject {
                    b"550 5.1.1 Mailbox unavailable\r\n"
                } else {
                    to.push(cmd[8..].trim().trim_matches(['<', '>']).to_string());
                    b"250 2.1.5 OK\r\n"
                }
            } else if upper == "DATA" {
                let _ = w
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    let l = line
                        .strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line);
                    data.push_str(l);
                }
                self.inbox.lock().unwrap().push(Received {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
                b"250 2.0.0 Queued as TEST\r\n"
            } else if upper == "RSET" || upper == "NOOP" {
                b"250 OK\r\n"
            } else if upper == "QUIT" {
                let _ = w.write_all(b"221 Bye\r\n").await;
                return;
            } else {
                b"502 Command not implemented\r\n"
            };
            if w.write_all(reply).await.is_err() {
                return;
            }
        }
    }
}
