//! Form bodies as plain key/value pairs. Handlers read only the fields they know, so extra
//! fields in a crafted request (`id`, `groups`, `mask_data` …) are simply never looked at.

use crate::{csrf, AppState};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::Response;

pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// The version an edit form was loaded with (its hidden `version` field), if it sent one.
    pub fn version(&self) -> Option<i64> {
        self.get("version").parse().ok()
    }

    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, v)| k == key && !v.is_empty())
    }
}

/// A form whose CSRF token and origin were checked before the handler runs.
pub struct CsrfForm(pub Form);

impl FromRequest<AppState> for CsrfForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(axum::response::IntoResponse::into_response)?;
        let form = Form::parse(&bytes);
        csrf::verify(state, &parts.headers, form.get("csrf")).await?;
        Ok(CsrfForm(form))
    }
}
