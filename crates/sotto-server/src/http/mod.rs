//! HTTP and WebSocket handlers: thin, stateless functions that extract input, call one
//! service, and shape the answer. All routes are listed in [`ROUTES`], which the OpenAPI test
//! compares with `openapi.json`.

mod accounts;
mod e2e;
mod extract;
mod meta;
mod rooms;
mod uploads;
mod ws;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use sotto_api::ErrorCode;

pub use extract::{CSRF_HEADER, SESSION_COOKIE};
pub use meta::OPENAPI;

use crate::app::App;
use crate::error::ApiError;
use crate::metrics::METRICS;

/// Largest JSON body accepted (message size is limited separately by settings).
const MAX_JSON_BODY: usize = 1 << 20;
/// Largest body on the E2E key routes: a 4 MiB trust store and a 64 KiB key backup in base64,
/// with the JSON around them.
const MAX_E2E_BODY: usize = 6 << 20;

/// Every route: (method, path template). Must match `openapi.json`.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/setup"),
    ("POST", "/api/v1/accounts/register"),
    ("POST", "/api/v1/accounts/login"),
    ("POST", "/api/v1/accounts/logout"),
    ("GET", "/api/v1/accounts/me"),
    ("GET", "/api/v1/accounts/session"),
    ("POST", "/api/v1/accounts/password"),
    ("GET", "/api/v1/sessions"),
    ("DELETE", "/api/v1/sessions/{id}"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/admin/invites"),
    ("POST", "/api/v1/admin/users"),
    ("POST", "/api/v1/admin/users/{id}/deactivate"),
    ("GET", "/api/v1/admin/settings"),
    ("PUT", "/api/v1/admin/settings"),
    ("GET", "/api/v1/settings"),
    ("GET", "/api/v1/rooms"),
    ("POST", "/api/v1/rooms/dm"),
    ("POST", "/api/v1/rooms/multi-dm"),
    ("POST", "/api/v1/rooms/groups"),
    ("GET", "/api/v1/rooms/{id}"),
    ("POST", "/api/v1/rooms/{id}/members"),
    ("DELETE", "/api/v1/rooms/{id}/members/{user_id}"),
    ("POST", "/api/v1/rooms/{id}/read"),
    ("GET", "/api/v1/rooms/{id}/messages"),
    ("POST", "/api/v1/rooms/{id}/messages"),
    ("PATCH", "/api/v1/messages/{id}"),
    ("DELETE", "/api/v1/messages/{id}"),
    ("GET", "/api/v1/search"),
    ("POST", "/api/v1/rooms/{id}/uploads"),
    ("GET", "/api/v1/uploads/{id}"),
    ("GET", "/api/v1/ws"),
    ("PUT", "/api/v1/e2e/keys"),
    ("GET", "/api/v1/e2e/keys/me"),
    ("GET", "/api/v1/e2e/keys/{user_id}"),
    ("PUT", "/api/v1/e2e/trust-store"),
];

/// Metrics and a debug log line per request. Only the route *template* is logged (never the
/// concrete path or query, which can carry ids or search terms).
async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let res = next.run(req).await;
    let elapsed = start.elapsed();
    METRICS.http_latency.observe(elapsed);
    tracing::debug!(
        %method,
        route = route.as_deref().unwrap_or("-"),
        status = res.status().as_u16(),
        micros = elapsed.as_micros() as u64,
        "request"
    );
    match res.status().as_u16() {
        500.. => METRICS.http_5xx.inc(),
        400.. => METRICS.http_4xx.inc(),
        _ => METRICS.http_2xx.inc(),
    }
    res
}

async fn no_route() -> Response {
    ApiError::new(ErrorCode::RouteNotFound, "no such route").into_response()
}

async fn wrong_method() -> Response {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
    .into_response()
}

/// The application router.
pub fn router(app: App) -> Router {
    let api = Router::new()
        .route("/api/v1/openapi.json", get(meta::openapi))
        .route("/api/v1/setup", post(accounts::setup))
        .route("/api/v1/accounts/register", post(accounts::register))
        .route("/api/v1/accounts/login", post(accounts::login))
        .route("/api/v1/accounts/logout", post(accounts::logout))
        .route("/api/v1/accounts/me", get(accounts::me))
        .route("/api/v1/accounts/session", get(accounts::session))
        .route("/api/v1/accounts/password", post(accounts::change_password))
        .route("/api/v1/sessions", get(accounts::sessions))
        .route("/api/v1/sessions/{id}", delete(accounts::revoke_session))
        .route("/api/v1/users", get(accounts::users))
        .route("/api/v1/admin/invites", post(accounts::create_invite))
        .route("/api/v1/admin/users", post(accounts::create_user))
        .route(
            "/api/v1/admin/users/{id}/deactivate",
            post(accounts::deactivate),
        )
        .route(
            "/api/v1/admin/settings",
            get(rooms::all_settings).put(rooms::update_settings),
        )
        .route("/api/v1/settings", get(rooms::public_settings))
        .route("/api/v1/rooms", get(rooms::list))
        .route("/api/v1/rooms/dm", post(rooms::dm))
        .route("/api/v1/rooms/multi-dm", post(rooms::multi_dm))
        .route("/api/v1/rooms/groups", post(rooms::create_group))
        .route("/api/v1/rooms/{id}", get(rooms::get))
        .route("/api/v1/rooms/{id}/members", post(rooms::add_member))
        .route(
            "/api/v1/rooms/{id}/members/{user_id}",
            delete(rooms::remove_member),
        )
        .route("/api/v1/rooms/{id}/read", post(rooms::mark_read))
        .route(
            "/api/v1/rooms/{id}/messages",
            get(rooms::history).post(rooms::send),
        )
        .route(
            "/api/v1/messages/{id}",
            patch(rooms::edit).delete(rooms::delete),
        )
        .route("/api/v1/search", get(rooms::search))
        .route("/api/v1/uploads/{id}", get(uploads::download))
        .route("/api/v1/ws", get(ws::upgrade))
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY));
    // Uploads enforce their own, larger limit while streaming.
    let upload = Router::new()
        .route("/api/v1/rooms/{id}/uploads", post(uploads::upload))
        .layer(DefaultBodyLimit::disable());
    let e2e = Router::new()
        .route("/api/v1/e2e/keys", put(e2e::publish))
        .route("/api/v1/e2e/keys/me", get(e2e::own))
        .route("/api/v1/e2e/keys/{user_id}", get(e2e::public_keys))
        .route("/api/v1/e2e/trust-store", put(e2e::trust_store))
        .layer(DefaultBodyLimit::max(MAX_E2E_BODY));
    Router::new()
        .route("/healthz", get(meta::healthz))
        .route("/metrics", get(meta::metrics))
        .merge(api)
        .merge(upload)
        .merge(e2e)
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn(track))
        .with_state(app)
}
