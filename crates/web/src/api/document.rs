//! What the document says beyond the handlers, known only once the server is configured: where
//! the API is (`BACKOFFICE_PUBLIC_URL`), the session cookie's name, and how each operation may
//! be authenticated — with a bearer token, or with the session cookie, which on a change also
//! needs the `X-CSRF-Token` header (as [`super::extract::ApiActor`] checks).

use super::responses;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::Type;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::server::ServerBuilder;
use utoipa::openapi::OpenApi;
use utoipa::openapi::{ObjectBuilder, Required};

const BEARER: &str = "bearer";
const SESSION: &str = "session";
const CSRF: &str = "csrf";

/// Completes the document for a server reached at `public_url` whose session cookie is
/// `session_cookie`.
pub fn finish(doc: &mut OpenApi, public_url: &str, session_cookie: &str) {
    doc.servers = Some(vec![ServerBuilder::new()
        .url(public_url.trim_end_matches('/'))
        .description(Some("This Back Office (its BACKOFFICE_PUBLIC_URL)"))
        .build()]);
    let c = doc.components.get_or_insert_with(Default::default);
    c.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("bo_…")
                .description(Some(
                    "A personal token, created on the profile page or with POST /api/v1/me/tokens.",
                ))
                .build(),
        ),
    );
    c.add_security_scheme(
        SESSION,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            session_cookie,
            "The session cookie of a fully signed-in browser (after the code, and a password change if one was due).",
        ))),
    );
    c.add_security_scheme(
        CSRF,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-CSRF-Token",
            "The session's CSRF token (the `csrf` field of its pages' forms); with the session \
             cookie, every change needs it, and a same-origin request.",
        ))),
    );
    c.responses.extend(responses::components());
    for item in doc.paths.paths.values_mut() {
        let reads = [&mut item.get, &mut item.head, &mut item.options];
        for op in reads.into_iter().flatten() {
            default_security(op, false);
        }
        let changes = [
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in changes.into_iter().flatten() {
            default_security(op, true);
        }
        if let Some(op) = item.post.as_mut() {
            idempotency_key(op);
        }
    }
}

/// Every POST honours an `Idempotency-Key` (see `super::idempotency`).
fn idempotency_key(op: &mut Operation) {
    let parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Any unique string (a UUID): a retry with the same key and the same body gets the \
             first request's answer (for 24 hours, replayed with `Idempotent-Replayed: true`) \
             instead of making the change again. The same key with another body is refused \
             with 422; a retry while the first request still runs, with 409.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some("^[!-~]+$")),
        ))
        .build();
    op.parameters
        .get_or_insert_with(Vec::new)
        .push(utoipa::openapi::RefOr::T(parameter));
    for (status, response) in responses::idempotent() {
        op.responses.responses.entry(status).or_insert(response);
    }
}

/// A token, or the session cookie (with the CSRF header on a change); an operation that
/// declares its own requirements keeps them.
fn default_security(op: &mut Operation, change: bool) {
    if op.security.is_some() {
        return;
    }
    let session = SecurityRequirement::new(SESSION, Vec::<String>::new());
    let session = if change {
        session.add(CSRF, Vec::<String>::new())
    } else {
        session
    };
    op.security = Some(vec![
        SecurityRequirement::new(BEARER, Vec::<String>::new()),
        session,
    ]);
}
