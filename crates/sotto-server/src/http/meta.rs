//! Health, metrics and the API description.

use axum::http::header;
use axum::response::IntoResponse;

use crate::metrics::METRICS;

/// The OpenAPI 3.1 document, maintained by hand next to the router and checked against it by
/// `tests/openapi.rs`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

pub(super) async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"ok\":true}",
    )
}

pub(super) async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        METRICS.render(),
    )
}

pub(super) async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
