//! `/metrics` in the Prometheus text format, on an address of its own
//! (`BACKOFFICE_METRICS_LISTEN`), never on the public port: what the monitoring scrapes is for
//! the operator's network, not for the people who use the Back Office. Unset, no recorder is
//! installed and nothing is counted.

use app::App;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::Arc;
use std::time::Duration;

/// Bucket bounds, in seconds, of every `…_seconds` histogram: from a fast page (1 ms) to a
/// sign-in queued behind a flood (10 s).
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the recorder (once per process) and returns the handle that renders its text.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    app::metrics::describe();
    // Histograms keep their samples until upkeep folds them in: without a scrape for a long
    // time they would grow, so upkeep also runs on its own.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    app: Arc<App>,
}

/// Serves `/metrics` on `listener` until the process ends.
pub fn serve(listener: tokio::net::TcpListener, handle: PrometheusHandle, app: Arc<App>) {
    let router = Router::new()
        .route("/metrics", get(render))
        .with_state(Scrape { handle, app });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    });
}

async fn render(State(s): State<Scrape>) -> impl IntoResponse {
    app::metrics::sample_gauges(&s.app).await;
    s.handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.handle.render(),
    )
}
