//! `backoffice serve`: the web server, with graceful shutdown on SIGTERM/SIGINT.

use crate::cli::{config_failure, open_serving, print_two_factor_note};
use crate::config::{Config, ConfigError};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(config: Config) -> Result<ExitCode, ExitCode> {
    let addr = config.listen_addr().map_err(|e| config_failure(&e))?;
    let metrics_addr = config.metrics_addr().map_err(|e| config_failure(&e))?;
    let web_config = web::WebConfig {
        secure_cookies: config
            .public_url()
            .map_err(|e| config_failure(&e))?
            .starts_with("https://"),
        public_origin: config.public_origin().map_err(|e| config_failure(&e))?,
        trusted_proxies: config.trusted_proxies().map_err(|e| config_failure(&e))?,
        api_rate_per_credential: config.api_rate_per_minute,
        api_rate_per_ip: config.api_rate_per_ip_per_minute,
    };
    let forwarding = config.forwarding().map_err(|e| config_failure(&e))?;
    let app = open_serving(&config).await?;
    if !app.has_smtp() {
        tracing::warn!(
            "no SMTP server configured (BACKOFFICE_SMTP_URL unset): standalone install; credentials and \
             sign-in codes can't be emailed, and accounts with 2FA via email codes can't sign in"
        );
    }
    match app.ensure_first_admin(&config.admin_email).await {
        Ok(Some(admin)) => {
            println!("First start: created the administrator account.");
            println!("  Email: {}", admin.email);
            if let Some(p) = &admin.generated_password {
                println!("  One-time password: {p}");
            }
            println!(
                "  Sign in at {}/login and choose a new password. This is shown only once.",
                app.settings().public_url
            );
            print_two_factor_note(&app, admin.two_factor);
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: can't create the first administrator: {e}");
            return Err(ExitCode::from(1));
        }
    }
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        config_failure(&ConfigError {
            setting: "BACKOFFICE_LISTEN",
            reason: format!("can't listen on {addr}: {e}"),
        })
    })?;
    if let Some(f) = forwarding {
        if f.syslog.as_ref().is_some_and(|s| s.cleartext_off_host()) {
            tracing::warn!(
                "BACKOFFICE_EVENTS_SYSLOG_URL is tcp:// to another machine: events cross the \
                 network readable; use tls:// unless the network is trusted"
            );
        }
        tracing::info!(
            syslog = ?f.syslog,
            webhook = ?f.webhook,
            mask_personal = f.mask_personal,
            "forwarding the event log"
        );
        app.start_forwarding(f);
    }
    if let Some(metrics_addr) = metrics_addr {
        let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
            .await
            .map_err(|e| {
                config_failure(&ConfigError {
                    setting: "BACKOFFICE_METRICS_LISTEN",
                    reason: format!("can't listen on {metrics_addr}: {e}"),
                })
            })?;
        let handle = crate::metrics::install().map_err(|e| {
            eprintln!("error: can't start the metrics recorder: {e}");
            ExitCode::from(1)
        })?;
        let bound = metrics_listener.local_addr().unwrap_or(metrics_addr);
        crate::metrics::serve(metrics_listener, handle, app.clone());
        tracing::info!(addr = %bound, "metrics listening");
        println!("Metrics on http://{bound}/metrics");
    }
    let housekeeping = {
        let app = app.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(600)).await;
                if let Err(e) = app.purge_expired_sessions().await {
                    tracing::warn!(error = %e, "could not purge expired sessions");
                }
            }
        })
    };
    // Bulk client changes ("every client matching"): resume the ones an earlier run (or a stopped
    // instance) left unfinished, and keep looking for ones whose lease ran out.
    let bulk_jobs = {
        let app = app.clone();
        tokio::spawn(async move {
            loop {
                app.resume_bulk_jobs().await;
                tokio::time::sleep(Duration::from_secs(15)).await;
            }
        })
    };
    let router = web::router(web::AppState::new(app, web_config));
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %bound, "Back Office listening");
    println!("Back Office listening on http://{bound}");
    let grace = Duration::from_secs(config.shutdown_grace_seconds);
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown_signal().await;
        let _ = stopping_tx.send(());
    };
    // On SIGTERM the listener closes at once (new connections are refused) and in-flight
    // requests get `grace` to finish; after that the process exits anyway, with status 1.
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .into_future();
    tokio::pin!(served);
    let outcome = tokio::select! {
        r = &mut served => Some(r),
        _ = async {
            let _ = stopping_rx.await;
            tokio::time::sleep(grace).await;
        } => None,
    };
    housekeeping.abort();
    bulk_jobs.abort();
    match outcome {
        Some(Ok(())) => {
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Some(Err(e)) => {
            eprintln!("error: server failed: {e}");
            Err(ExitCode::from(1))
        }
        None => {
            tracing::warn!(
                grace_seconds = grace.as_secs(),
                "requests still running at the end of the shutdown grace period; stopping anyway"
            );
            eprintln!(
                "error: requests still running after the {} s shutdown grace period (BACKOFFICE_SHUTDOWN_GRACE_SECONDS); stopped anyway",
                grace.as_secs()
            );
            Err(ExitCode::from(1))
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
