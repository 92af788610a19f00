//! Extractors that turn every kind of bad input into a stable error code.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use serde::de::DeserializeOwned;
use sotto_api::ErrorCode;

use crate::app::App;
use crate::error::ApiError;
use crate::secrets::eq_ct;
use crate::services::accounts::Caller;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "sotto_session";
/// Header carrying the CSRF token on cookie-authenticated writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// JSON body with coded rejections.
pub(crate) struct ApiJson<T>(pub T);

fn json_rejection(r: JsonRejection) -> ApiError {
    match &r {
        JsonRejection::JsonDataError(e) => {
            let text = e.body_text();
            let code = if text.contains("unknown field") || text.contains("unknown variant") {
                ErrorCode::UnknownField
            } else if text.contains("missing field") {
                ErrorCode::MissingField
            } else {
                ErrorCode::BadJson
            };
            ApiError::new(code, text)
        }
        JsonRejection::JsonSyntaxError(_) => ApiError::new(ErrorCode::BadJson, "malformed JSON"),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json",
        ),
        _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
        }
        _ => ApiError::new(ErrorCode::BadJson, "unreadable body"),
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|j| ApiJson(j.0))
            .map_err(json_rejection)
    }
}

/// Path parameters; anything unparsable is `not_found` (as if no such thing existed).
pub(crate) struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_: PathRejection| ApiError::new(ErrorCode::NotFound, "not found"))
    }
}

/// Query string with coded rejections.
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::new(ErrorCode::InvalidInput, e.body_text()))
    }
}

/// Reads a cookie value.
pub(crate) fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| {
            h.split(';').map(str::trim).find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k == name).then_some(v)
            })
        })
}

/// The authenticated caller: `Authorization: Bearer <token>` (no CSRF needed) or the session
/// cookie (writes need `X-CSRF-Token`).
pub(crate) struct Auth(pub Caller);

impl FromRequestParts<App> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        if let Some(h) = parts.headers.get(header::AUTHORIZATION) {
            let token = h
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| {
                    ApiError::new(ErrorCode::InvalidToken, "malformed Authorization header")
                })?;
            return app
                .accounts
                .authenticate(token.trim(), false)
                .await
                .map(Auth);
        }
        let Some(token) = cookie(parts, SESSION_COOKIE) else {
            return Err(ApiError::new(ErrorCode::Unauthenticated, "log in first"));
        };
        let caller = app.accounts.authenticate(token, true).await?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !eq_ct(sent, &caller.csrf_token) {
                return Err(ApiError::new(
                    ErrorCode::CsrfFailed,
                    "missing or wrong X-CSRF-Token",
                ));
            }
        }
        Ok(Auth(caller))
    }
}

/// An admin caller.
pub(crate) struct Admin(pub Caller);

impl FromRequestParts<App> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let Auth(c) = Auth::from_request_parts(parts, app).await?;
        if !c.is_admin {
            return Err(ApiError::new(ErrorCode::Forbidden, "admins only"));
        }
        Ok(Admin(c))
    }
}
