//! Syslog over TCP or TLS (`tcp://host:port`, `tls://host:port`): RFC 5424 messages whose text
//! is the event as JSON, in octet-counted framing (RFC 6587; rsyslog, syslog-ng and the SIEMs'
//! collectors read it).
//!
//! Plain syslog over TCP has no acknowledgement: a write succeeds once the bytes are in this
//! machine's buffer, and a receiver that dies then loses them. So each batch goes on a
//! connection of its own that this side closes for writing after the last message, and the
//! batch counts as delivered only when the receiver closes its side in turn: it has read
//! everything (a receiver closes after the end of what was sent, not before).

use super::{host_port, Destination};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Facility 13 (log audit) and severity 6 (informational).
const PRI: u8 = 13 * 8 + 6;

pub struct SyslogTarget {
    host: String,
    port: u16,
    /// `Some` for `tls://`.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// This machine's name, the messages' HOSTNAME.
    hostname: String,
}

impl std::fmt::Debug for SyslogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}:{}",
            if self.tls.is_some() { "tls" } else { "tcp" },
            self.host,
            self.port
        )
    }
}

impl SyslogTarget {
    /// `tcp://host:port` or `tls://host:port`; `extra_roots_pem` is the operator's CA file.
    pub fn parse(url: &str, extra_roots_pem: Option<&[u8]>) -> Result<Self, String> {
        const SETTING: &str = "BACKOFFICE_EVENTS_SYSLOG_URL";
        let (tls, rest) = if let Some(rest) = url.strip_prefix("tcp://") {
            (None, rest)
        } else if let Some(rest) = url.strip_prefix("tls://") {
            (Some(super::tls_config(extra_roots_pem)?), rest)
        } else {
            return Err(format!(
                "{SETTING}: {url:?} must be tcp://host:port or tls://host:port"
            ));
        };
        let (host, port) = host_port(rest, SETTING)?;
        Ok(Self {
            host,
            port,
            tls,
            hostname: hostname(),
        })
    }

    /// Plain TCP to another machine: events cross the network readable.
    pub fn cleartext_off_host(&self) -> bool {
        let loopback = self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        self.tls.is_none() && !loopback
    }

    /// One RFC 5424 message, octet-counted.
    fn frame(&self, event: &serde_json::Value) -> Vec<u8> {
        let at = event["at"].as_str().unwrap_or("-");
        let msg = format!(
            "<{PRI}>1 {at} {} backoffice {} event - {event}",
            self.hostname,
            std::process::id()
        );
        format!("{} {msg}", msg.len()).into_bytes()
    }
}

#[async_trait]
impl Destination for SyslogTarget {
    fn sink(&self) -> String {
        format!("syslog {self:?}")
    }

    async fn deliver(&mut self, events: &[serde_json::Value]) -> Result<(), String> {
        let bytes: Vec<u8> = events.iter().flat_map(|e| self.frame(e)).collect();
        let addr = (self.host.as_str(), self.port);
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("no connection to {}:{} within 10 s", self.host, self.port))?
            .map_err(|e| format!("can't connect to {}:{}: {e}", self.host, self.port))?;
        match &self.tls {
            None => send_and_wait_for_close(tcp, &bytes).await,
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| format!("{}: {e}", self.host))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS with {}: {e}", self.host))?;
                send_and_wait_for_close(tls, &bytes).await
            }
        }
    }
}

/// Sends `bytes`, closes for writing, and waits for the receiver to close: then it has read
/// them all.
async fn send_and_wait_for_close<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    bytes: &[u8],
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("syslog connection: {e}");
    s.write_all(bytes).await.map_err(io)?;
    s.flush().await.map_err(io)?;
    s.shutdown().await.map_err(io)?;
    let mut sink = [0u8; 512];
    loop {
        match s.read(&mut sink).await {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            // Over TLS only the receiver's close_notify says it read everything: a bare TCP
            // close could come from anyone on the way.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err("the receiver closed the TLS connection without close_notify".into())
            }
            Err(e) => return Err(io(e)),
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer it is given.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let name = if ok {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    // RFC 5424: printable US-ASCII without spaces, or the NILVALUE.
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()) {
        name
    } else {
        "-".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_tcp_or_tls_with_a_host_and_port() {
        assert!(SyslogTarget::parse("tcp://127.0.0.1:514", None).is_ok());
        assert!(SyslogTarget::parse("tls://siem.example.com:6514", None).is_ok());
        for bad in ["udp://h:514", "h:514", "tcp://h", "tls://:6514"] {
            assert!(SyslogTarget::parse(bad, None).is_err(), "{bad}");
        }
        assert!(SyslogTarget::parse("tls://h:6514", Some(b"not pem")).is_err());
    }

    #[test]
    fn a_frame_is_an_octet_counted_rfc_5424_message_holding_the_event() {
        let t = SyslogTarget::parse("tcp://127.0.0.1:514", None).unwrap();
        let event =
            serde_json::json!({"id": 3, "at": "2026-12-01T10:00:00.000Z", "event": "Signed in"});
        let frame = String::from_utf8(t.frame(&event)).unwrap();
        let (len, msg) = frame.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), msg.len());
        assert!(msg.starts_with("<110>1 2026-12-01T10:00:00.000Z "), "{msg}");
        let json = msg.split_once(" event - ").unwrap().1;
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(json).unwrap(),
            event
        );
    }
}
