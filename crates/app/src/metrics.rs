//! What the use cases report to monitoring, through the `metrics` facade. Nothing is kept unless
//! the binary installed a recorder (`BACKOFFICE_METRICS_LISTEN`); without one each call is a
//! load of an unset global. The series' names and labels are listed in `docs/OPERATIONS.md`.

use std::time::Duration;

/// How a sign-in attempt (a password step or a second-factor step) ended. Each is one value of
/// the `outcome` label, so a dashboard can tell guessing from lockouts from refused addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInOutcome {
    /// A session was opened.
    Ok,
    /// The password was wrong.
    WrongPassword,
    /// No account has the email.
    UnknownEmail,
    /// The account is disabled.
    Disabled,
    /// The second factor (code, recovery code, passkey) was wrong.
    WrongCode,
    /// The account is locked after failed attempts.
    Locked,
    /// The client address is not in the account's IP Whitelist.
    IpNotWhitelisted,
    /// The client address made too many attempts (`BACKOFFICE_SIGN_IN_ATTEMPTS_PER_IP`).
    AddressLimited,
}

impl SignInOutcome {
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::WrongPassword => "wrong_password",
            Self::UnknownEmail => "unknown_email",
            Self::Disabled => "disabled",
            Self::WrongCode => "wrong_code",
            Self::Locked => "locked",
            Self::IpNotWhitelisted => "ip_not_whitelisted",
            Self::AddressLimited => "address_limited",
        }
    }
}

pub(crate) fn sign_in(outcome: SignInOutcome) {
    metrics::counter!("backoffice_sign_ins_total", "outcome" => outcome.label()).increment(1);
}

/// A mail handed to the SMTP server (`sent`) or refused, failed or timed out.
pub(crate) fn mail(sent: bool) {
    let result = if sent { "sent" } else { "failed" };
    metrics::counter!("backoffice_mails_total", "result" => result).increment(1);
}

/// One password hash: how long it waited for a hashing thread, and how long it ran.
pub(crate) fn hashed(waited: Duration, ran: Duration) {
    metrics::histogram!("backoffice_hashing_wait_seconds").record(waited.as_secs_f64());
    metrics::histogram!("backoffice_hashing_seconds").record(ran.as_secs_f64());
}

/// A forwarding round that failed (this instance's attempts; the database keeps the count
/// since the last delivery for every instance).
pub(crate) fn forwarding_failed(sink: &str) {
    metrics::counter!("backoffice_events_forwarding_failures_total", "sink" => sink.to_string())
        .increment(1);
}

/// The gauges read at each scrape rather than kept up to date: the database pool's connections,
/// the hashing queue, and how far each event-forwarding destination is behind (from the
/// database, so every instance reports the same; skipped if the database doesn't answer within
/// a second, so a scrape still answers). The metrics endpoint calls this before it renders.
pub async fn sample_gauges(app: &crate::App) {
    let pool = app.store.pool_status();
    metrics::gauge!("backoffice_db_pool_connections", "state" => "in_use")
        .set(f64::from(pool.size.saturating_sub(pool.idle)));
    metrics::gauge!("backoffice_db_pool_connections", "state" => "idle").set(f64::from(pool.idle));
    metrics::gauge!("backoffice_db_pool_waiting").set(f64::from(pool.waiting));
    metrics::gauge!("backoffice_db_pool_max_connections").set(f64::from(pool.max));
    metrics::gauge!("backoffice_hashing_queue_depth").set(app.hasher.queue_depth() as f64);
    let forwarding = async {
        let (head, _) = app.store.chain_head().await?;
        Ok::<_, store::StoreError>((head, app.store.forwarding_states().await?))
    };
    match tokio::time::timeout(Duration::from_secs(1), forwarding).await {
        Ok(Ok((head, states))) => {
            for s in states {
                metrics::gauge!("backoffice_events_forwarding_behind", "sink" => s.sink.clone())
                    .set((head - s.cursor).max(0) as f64);
                metrics::gauge!(
                    "backoffice_events_forwarding_consecutive_failures",
                    "sink" => s.sink
                )
                .set(s.failures as f64);
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: forwarding state not read"),
        Err(_) => tracing::warn!("metrics: forwarding state not read within 1 s"),
    }
}

/// The help text of every series, for the exposition (`# HELP`); called once when the recorder
/// is installed.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "backoffice_http_requests_total",
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        "backoffice_http_request_duration_seconds",
        Unit::Seconds,
        "Time to the response head, by method and route template"
    );
    describe_counter!(
        "backoffice_sign_ins_total",
        "Sign-in steps (password or second factor) by outcome"
    );
    describe_counter!(
        "backoffice_mails_total",
        "Mails handed to the SMTP server (sent) or not (failed)"
    );
    describe_gauge!(
        "backoffice_db_pool_connections",
        "Pooled database connections, by state (in_use, idle)"
    );
    describe_gauge!(
        "backoffice_db_pool_waiting",
        "Callers waiting for a pooled database connection (the pool is too small or the database slow)"
    );
    describe_gauge!(
        "backoffice_db_pool_max_connections",
        "The most connections the pool opens"
    );
    describe_counter!(
        "backoffice_db_pool_timeouts_total",
        "Waits for a pooled database connection that ran out (answered 503)"
    );
    describe_gauge!(
        "backoffice_hashing_queue_depth",
        "Password hashes asked for and not answered yet (queued or running)"
    );
    describe_histogram!(
        "backoffice_hashing_wait_seconds",
        Unit::Seconds,
        "Time a password hash waited for a hashing thread"
    );
    describe_histogram!(
        "backoffice_hashing_seconds",
        Unit::Seconds,
        "Time a password hash ran"
    );
    describe_counter!(
        "backoffice_event_log_appends_total",
        "Events appended to the event log"
    );
    describe_gauge!(
        "backoffice_events_forwarding_behind",
        "Events a forwarding destination has not acknowledged yet (its lag), by destination"
    );
    describe_gauge!(
        "backoffice_events_forwarding_consecutive_failures",
        "Failed forwarding attempts since the destination's last delivery (any instance)"
    );
    describe_counter!(
        "backoffice_events_forwarding_failures_total",
        "Failed forwarding rounds of this instance, by destination"
    );
}
