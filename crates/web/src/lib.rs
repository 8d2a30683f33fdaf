//! The HTTP adapters: server-rendered pages over the use cases in `app`. Handlers parse the
//! request, call one use case with the acting user, and render; they hold no rules of their own.

pub mod api;
mod assets;
mod csrf;
mod deadline;
mod download;
mod error;
mod form;
mod layout;
mod metrics;
mod pages;
mod problems;
mod security;
mod session;

use app::App;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

pub use error::WebError;

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// `Secure` and `__Host-` cookies and `Strict-Transport-Security`; on when the public URL is
    /// https.
    pub secure_cookies: bool,
    /// The origin browsers send in `Origin` (scheme://host:port), from BACKOFFICE_PUBLIC_URL.
    pub public_origin: String,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies); empty by default.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// API requests per minute per token or session, and per client IP (0 = unlimited).
    pub api_rate_per_credential: u32,
    pub api_rate_per_ip: u32,
}

#[derive(Clone)]
pub struct AppState {
    pub app: Arc<App>,
    pub cfg: Arc<WebConfig>,
    pub(crate) limits: Arc<api::extract::RateLimiter>,
}

impl AppState {
    pub fn new(app: Arc<App>, cfg: WebConfig) -> Self {
        let limits = Arc::new(api::extract::RateLimiter::new(
            cfg.api_rate_per_credential,
            cfg.api_rate_per_ip,
        ));
        Self {
            app,
            cfg: Arc::new(cfg),
            limits,
        }
    }
}

/// The whole router with its middleware.
pub fn router(state: AppState) -> Router {
    use pages::*;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/static/{file}", get(assets::serve))
        .route("/", get(dashboard::show))
        .route("/login", get(login::form).post(login::submit))
        .route("/login/code", get(login::code_form).post(login::code_submit))
        .route("/login/code/resend", post(login::code_resend))
        .route("/login/cancel", post(login::cancel))
        .route("/login/recovery", get(login::recovery_form).post(login::recovery_submit))
        .route("/login/passkey", post(login::passkey_submit))
        .route("/login/forgot", get(password_reset::forgot_form).post(password_reset::forgot_submit))
        .route("/password/reset", get(password_reset::reset_form).post(password_reset::reset_submit))
        .route("/logout", post(login::logout))
        .route("/password/change", get(profile::forced_form).post(profile::forced_submit))
        .route("/profile", get(profile::show))
        .route("/profile/password", post(profile::change_password))
        .route("/profile/sessions/{key}/end", post(profile::end_session))
        .route("/profile/tokens", post(profile::create_token))
        .route("/profile/tokens/{id}/revoke", post(profile::revoke_token))
        .route("/two-factor", get(two_factor::show))
        .route("/two-factor/setup", get(two_factor::choose))
        .route("/two-factor/totp", get(two_factor::totp_form).post(two_factor::totp_verify))
        .route("/two-factor/passkey", get(two_factor::passkey_form).post(two_factor::passkey_create))
        .route("/two-factor/passkeys/{id}/remove", post(two_factor::passkey_remove))
        .route("/two-factor/email", get(two_factor::email_form).post(two_factor::email_choose))
        .route("/two-factor/recovery-codes", post(two_factor::regenerate_codes))
        .route("/two-factor/prompt/dismiss", post(two_factor::dismiss_prompt))
        .route("/users", get(users::list))
        .route("/users/new", get(users::new_form).post(users::create))
        .route("/users/columns", post(columns::users))
        .route("/users/bulk", post(users_bulk::confirm))
        .route("/users/bulk/apply", post(users_bulk::apply))
        .route("/users/{id}", get(users::edit_form).post(users::update))
        .route("/users/{id}/two-factor/disable", get(users::disable_2fa_form).post(users::disable_2fa))
        .route("/users/{id}/two-factor/enable", post(users::enable_2fa))
        .route("/users/{id}/unlock", post(users::unlock))
        .route("/users/{id}/reset-password", get(users::reset_password_form).post(users::reset_password))
        .route("/users/{id}/sign-out", post(users::sign_out_everywhere))
        .route("/groups", get(groups::list))
        .route("/groups/new", get(groups::new_form).post(groups::create))
        .route("/groups/export", get(groups::export))
        .route("/groups/import", get(groups::import_form).post(groups::import))
        .route("/groups/{id}", get(groups::edit_form).post(groups::update))
        .route("/groups/{id}/delete", get(groups::delete_form).post(groups::delete))
        .route("/events", get(events::list))
        .route("/events/export", get(events::export))
        .route("/events/columns", post(columns::events))
        .route("/clients", get(clients::list))
        .route("/clients/new", get(clients::new_form).post(clients::create))
        .route("/clients/export", get(clients::export))
        .route("/clients/columns", post(columns::clients))
        .route("/clients/import", get(clients::import_form).post(clients::import))
        .route("/clients/tags", get(tags::list))
        .route("/clients/tags/new", get(tags::new_form).post(tags::create))
        .route("/clients/tags/{id}", get(tags::edit_form).post(tags::rename))
        .route("/clients/tags/{id}/delete", get(tags::delete_form).post(tags::delete))
        .route("/clients/bulk", post(clients::bulk))
        .route("/clients/bulk/{id}", get(clients::bulk_job))
        .route("/clients/{id}", get(clients::detail))
        .route("/clients/{id}/edit", get(clients::edit_form).post(clients::update))
        .route("/clients/{id}/block", get(clients::block_form).post(clients::block))
        .route("/settings", get(settings::show))
        .route("/settings/test-email", post(settings::test_email))
        .route("/settings/two-factor", post(settings::require_two_factor))
        .merge(api::router(&state))
        .route("/api/{*rest}", axum::routing::any(api::not_found))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            deadline::bounded,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(2 * 1024 * 1024))
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(RequestIds))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
                }))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        .layer(axum::middleware::from_fn(metrics::record))
        .with_state(state)
}

/// Request ids: random, so they can be quoted in a support request without revealing volume.
#[derive(Clone)]
struct RequestIds;

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id: u64 = rand::random();
        axum::http::HeaderValue::from_str(&format!("{id:016x}"))
            .ok()
            .map(RequestId::new)
    }
}
