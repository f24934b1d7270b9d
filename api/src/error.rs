//! The API's one error type, and its mapping to HTTP: status, JSON body
//! `{"error": {"code", "message"}}` and, for 429, `Retry-After`. A 500 never echoes internals.

use std::time::Duration;

use poem::http::{header, StatusCode};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};
use serde_json::json;

use crate::commands::{CommandError, CommitError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidInput { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed here; allowed: {allow}")]
    MethodNotAllowed { allow: &'static str },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("too many requests; retry later")]
    RateLimited { retry_after: Duration },
    #[error("the requested range is not within the {size} bytes of the media")]
    RangeNotSatisfiable { size: u64 },
    #[error("a dependency is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::InvalidInput { code, message: message.into() }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(error.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidInput { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidInput { code, .. } | ApiError::Conflict { code, .. } => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The JSON body of every error response.
pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "error": { "code": code, "message": message } })
}

impl ApiError {
    fn to_response(&self) -> Response {
        if let ApiError::Internal(error) = self {
            tracing::error!(error = format!("{error:#}"), "internal error");
        }
        let mut response =
            poem::web::Json(error_body(self.code(), &self.to_string())).with_status(self.status()).into_response();
        if let ApiError::RateLimited { retry_after } = self {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
        }
        if let ApiError::RangeNotSatisfiable { size } = self {
            if let Ok(value) = header::HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.to_response()
    }
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        ApiError::status(self)
    }

    fn as_response(&self) -> Response {
        self.to_response()
    }
}

/// The documented shape of error bodies.
#[derive(Debug, Object)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Object)]
pub struct ErrorDetail {
    /// Stable, machine-readable `snake_case` code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        // Each operation's own subset is chosen in `openapi.rs`.
        let documented: [(u16, &'static str); 9] = [
            (400, "Malformed or invalid input"),
            (401, "Missing, invalid or expired credentials"),
            (403, "Authenticated but not allowed"),
            (404, "Not found, or not visible to you"),
            (409, "Conflicts with existing state"),
            (413, "Request body too large"),
            (416, "Range not satisfiable (media downloads); see Content-Range"),
            (429, "Rate limited; see Retry-After"),
            (503, "A dependency (database, NATS, storage) is unavailable; retry later"),
        ];
        MetaResponses {
            responses: documented
                .into_iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: ErrorBody::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        ErrorBody::register(registry);
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        // Text PostgreSQL cannot store (a NUL character) is the client's mistake, whatever route
        // let it through.
        if let sqlx::Error::Database(db) = &error {
            if matches!(db.code().as_deref(), Some("22021") | Some("22P05")) {
                return ApiError::invalid("invalid_text", "text must not contain NUL characters");
            }
        }
        match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(%error, "database unavailable");
                ApiError::Unavailable
            }
            _ => ApiError::internal(error),
        }
    }
}

/// Maps a command's failure; domain errors are mapped by each feature. A conflict that reaches
/// here is one its handler did not expect (or a race lost too often): the client may retry.
pub fn command_error<E: std::error::Error>(error: CommandError<E>, domain: impl FnOnce(E) -> ApiError) -> ApiError {
    match error {
        CommandError::Refused(e) => domain(e),
        CommandError::Conflict(conflict) => {
            tracing::debug!(?conflict, "command conflicted");
            ApiError::Conflict {
                code: "concurrent_update",
                message: "the resource was changed concurrently; retry".to_owned(),
            }
        }
        CommandError::Store(CommitError::Json(e)) => ApiError::internal(e),
        CommandError::Store(e) => {
            tracing::warn!(error = %e, "event store unavailable");
            ApiError::Unavailable
        }
    }
}

/// Turns any error poem or poem-openapi produced (bad JSON, missing fields, unknown route, ...)
/// into the JSON error body. Errors that are already ours keep their rendering.
pub fn render_any_error(error: poem::Error) -> Response {
    let error = match error.downcast::<ApiError>() {
        Ok(ours) => return ours.into_response(),
        Err(other) => other,
    };
    let status = error.status();
    let code = match status.as_u16() {
        400 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        411 => "length_required",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "validation_failed",
        429 => "rate_limited",
        s if s >= 500 => "internal",
        _ => "error",
    };
    let message = if status.is_server_error() {
        tracing::error!(%error, "unhandled server error");
        "internal error".to_owned()
    } else if status == StatusCode::UNAUTHORIZED {
        "missing or invalid access token".to_owned()
    } else {
        error.to_string()
    };
    poem::web::Json(error_body(code, &message)).with_status(status).into_response()
}
