//! A webhook (`BACKOFFICE_EVENTS_WEBHOOK_URL`, HTTPS only): each batch is one POST of JSON lines
//! (`application/x-ndjson`, one event a line), signed with HMAC-SHA-256 under
//! `BACKOFFICE_EVENTS_WEBHOOK_SECRET` in `X-Backoffice-Signature: sha256=<hex>` so the receiver
//! can tell it came from here. Any 2xx answer acknowledges the batch; anything else (or no
//! answer) is a failure, and the batch is sent again.

use super::Destination;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use std::time::Duration;

pub const SIGNATURE_HEADER: &str = "x-backoffice-signature";
/// The shortest secret accepted: a guessable one would let anyone forge events.
pub const SECRET_MIN_LEN: usize = 16;

pub struct WebhookTarget {
    url: String,
    secret: String,
    client: reqwest::Client,
}

/// The URL's scheme, host and port, and a short hash of the whole (collectors put tokens in the
/// path or query, which must not reach logs or pages).
impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&origin_of(&self.url))
    }
}

/// `https://host[:port] #1a2b3c4d` for a webhook URL: enough to tell two apart, no secret.
pub fn origin_of(url: &str) -> String {
    use sha2::Digest;
    let hash = hex::encode(&sha2::Sha256::digest(url.as_bytes())[..4]);
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{} #{hash}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => format!("#{hash}"),
    }
}

impl WebhookTarget {
    /// `url` must be `https://`; `extra_roots_pem` is the operator's CA file.
    pub fn new(url: &str, secret: &str, extra_roots_pem: Option<&[u8]>) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| format!("BACKOFFICE_EVENTS_WEBHOOK_URL: {url:?}: {e}"))?;
        if parsed.scheme() != "https" || parsed.host_str().is_none() {
            return Err(format!(
                "BACKOFFICE_EVENTS_WEBHOOK_URL: {url:?} must be an https:// URL"
            ));
        }
        if secret.chars().count() < SECRET_MIN_LEN {
            return Err(format!(
                "BACKOFFICE_EVENTS_WEBHOOK_SECRET: set it to at least {SECRET_MIN_LEN} characters \
                 (the receiver checks the signature with it)"
            ));
        }
        let tls = super::tls_config(extra_roots_pem)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .https_only(true)
            // A redirect would turn the POST into a GET without the events, and its 2xx would
            // count as delivery: any 3xx is a failure.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            url: url.to_string(),
            secret: secret.to_string(),
            client,
        })
    }
}

/// The signature header's value for `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[async_trait]
impl Destination for WebhookTarget {
    fn sink(&self) -> String {
        format!("webhook {self:?}")
    }

    async fn deliver(&mut self, events: &[serde_json::Value]) -> Result<(), String> {
        let mut body = String::new();
        for e in events {
            body.push_str(&e.to_string());
            body.push('\n');
        }
        let r = self
            .client
            .post(&self.url)
            .header("content-type", "application/x-ndjson")
            .header(SIGNATURE_HEADER, signature(&self.secret, body.as_bytes()))
            .body(body)
            .send()
            .await
            .map_err(|e| format!("webhook: {}", e.without_url()))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("webhook answered {}", r.status()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_with_a_long_enough_secret() {
        let secret = "s".repeat(SECRET_MIN_LEN);
        assert!(WebhookTarget::new("https://siem.example.com/in", &secret, None).is_ok());
        assert!(WebhookTarget::new("http://siem.example.com/in", &secret, None).is_err());
        assert!(WebhookTarget::new("https://siem.example.com/in", "short", None).is_err());
        assert!(WebhookTarget::new("not a url", &secret, None).is_err());
    }

    #[test]
    fn what_is_shown_of_a_webhook_url_holds_no_token() {
        let url = "https://user:pw@collector.example.com:8443/in/SECRETTOKEN?api-key=KEY";
        let shown = origin_of(url);
        assert!(
            shown.starts_with("https://collector.example.com:8443 #"),
            "{shown}"
        );
        for secret in ["pw", "SECRETTOKEN", "KEY", "user"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_ne!(
            shown,
            origin_of("https://collector.example.com:8443/in/OTHER")
        );
        let t = WebhookTarget::new(url, &"s".repeat(SECRET_MIN_LEN), None).unwrap();
        assert!(!format!("{t:?}").contains("SECRETTOKEN"));
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
