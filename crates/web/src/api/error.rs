//! JSON errors: `{"error": "...", "fields": {...}}` with the status that says what went wrong.
//! Internal details are logged, never returned.

use app::AppError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Every error the API answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words a person can act on.
    pub error: String,
    /// Problems per field, when the request had invalid fields.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: message.into(),
                fields: BTreeMap::new(),
            },
            retry_after: None,
        }
    }

    /// 422 with one field in error (a query parameter or body field the use case never saw).
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Please check the highlighted fields",
        );
        e.body.fields.insert(field.into(), message.into());
        e
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let message = e.to_string();
        match e {
            AppError::Invalid(fields) => {
                let status = if fields.only_duplicates() {
                    StatusCode::CONFLICT
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                let fields = fields
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<BTreeMap<_, _>>();
                ApiError {
                    status,
                    body: ErrorBody {
                        error: message,
                        fields,
                    },
                    retry_after: None,
                }
            }
            AppError::Unauthenticated => ApiError::new(StatusCode::UNAUTHORIZED, message),
            AppError::PasswordChangeRequired
            | AppError::TwoFactorRequired
            | AppError::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, message),
            AppError::NotFound => ApiError::new(StatusCode::NOT_FOUND, message),
            AppError::Expired(_) => ApiError::new(StatusCode::GONE, message),
            AppError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, message),
            // Only an `If-Match` names a version through the API.
            AppError::Stale(_) => ApiError::new(StatusCode::PRECONDITION_FAILED, message),
            AppError::TooMany(_) => ApiError {
                retry_after: Some(60),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
            },
            AppError::TooManyUntil {
                retry_after_secs, ..
            } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
            },
            AppError::Mail(_) => ApiError::new(StatusCode::BAD_GATEWAY, message),
            AppError::Unavailable => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message),
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = match &r {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
            JsonRejection::JsonSyntaxError(_) => StatusCode::BAD_REQUEST,
            JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        let message = match status {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "Send the body as JSON with Content-Type: application/json".to_string()
            }
            StatusCode::PAYLOAD_TOO_LARGE => "The request body is larger than 1 MiB".to_string(),
            _ => r.body_text(),
        };
        ApiError::new(status, message)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body)).into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

/// axum answers a known path called with a method it doesn't have with 405 and an empty body;
/// the API answers in JSON like every other error, keeping the `Allow` header.
pub async fn method_not_allowed(r: Response) -> Response {
    if r.status() != StatusCode::METHOD_NOT_ALLOWED {
        return r;
    }
    let mut out = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "This path doesn't take this method; Allow lists the ones it does",
    )
    .into_response();
    if let Some(allow) = r.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

pub type ApiResult<T> = Result<T, ApiError>;
