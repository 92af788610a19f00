//! The server's one error type: a stable [`ErrorCode`] plus a message for humans.
//!
//! Services return `Result<T, ApiError>`; handlers turn it into the JSON body
//! `{"error":{"code":"...","message":"..."}}` with the code's HTTP status. Internal failures are
//! logged here (without user content) and reach the client as a bare `internal`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sotto_api::{ErrorBody, ErrorCode};

/// An error with a stable code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// Stable code.
    pub code: ErrorCode,
    /// Message for humans; must never contain secrets or message content.
    pub message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// `not_found`, worded the same for "does not exist" and "you may not see it".
    pub fn not_found(what: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// `internal`, logging the cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error")
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(format_args!("database: {e}"))
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::internal(format_args!("database: {e}"))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        ApiError::internal(format_args!("io: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(ErrorBody::new(self.code, self.message))).into_response()
    }
}

/// Shorthand.
pub type ApiResult<T> = Result<T, ApiError>;
