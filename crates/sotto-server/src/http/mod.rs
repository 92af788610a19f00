//! HTTP and WebSocket handlers: thin, stateless functions that extract input, call one
//! service, and shape the answer. Every route is declared once, in the route table that
//! [`router`] is built from; [`routes`] lists it and the OpenAPI test compares it with
//! `openapi.json`.

mod accounts;
mod e2e;
mod extract;
mod meta;
mod rooms;
mod uploads;
mod web;
mod ws;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::handler::Handler;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use sotto_api::ErrorCode;

pub use extract::{CSRF_HEADER, SESSION_COOKIE};
pub use meta::OPENAPI;

use crate::app::App;
use crate::error::ApiError;
use crate::metrics::METRICS;

/// Largest JSON body accepted (message size is limited separately by settings).
const MAX_JSON_BODY: usize = 1 << 20;
/// Largest body on the E2E key routes: a 4 MiB trust store and a 64 KiB key backup in base64,
/// with the JSON around them; also a room key's shares (each names every recipient).
const MAX_E2E_BODY: usize = 6 << 20;

/// An HTTP method a route answers (`GET` also answers `HEAD`, as in axum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMethod {
    /// GET (and HEAD).
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl RouteMethod {
    /// The method's name, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteMethod::Get => "GET",
            RouteMethod::Post => "POST",
            RouteMethod::Put => "PUT",
            RouteMethod::Patch => "PATCH",
            RouteMethod::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            RouteMethod::Get => MethodFilter::GET,
            RouteMethod::Post => MethodFilter::POST,
            RouteMethod::Put => MethodFilter::PUT,
            RouteMethod::Patch => MethodFilter::PATCH,
            RouteMethod::Delete => MethodFilter::DELETE,
        }
    }
}

/// The request body limit of a route.
#[derive(Clone, Copy)]
enum BodyLimit {
    /// [`MAX_JSON_BODY`].
    Json,
    /// [`MAX_E2E_BODY`].
    E2e,
    /// None here: the handler enforces its own, larger limit while streaming (uploads).
    Streamed,
}

/// One row of the route table.
struct Route {
    method: RouteMethod,
    path: &'static str,
    body: BodyLimit,
    endpoint: MethodRouter<App>,
}

fn route<H, T>(method: RouteMethod, path: &'static str, body: BodyLimit, handler: H) -> Route
where
    H: Handler<T, App>,
    T: 'static,
{
    Route {
        method,
        path,
        body,
        endpoint: on(method.filter(), handler),
    }
}

/// The route table: the only place routes are declared. [`router`] is built from it and
/// [`routes`] lists it, which the OpenAPI test compares with `openapi.json`.
fn table() -> Vec<Route> {
    use BodyLimit::{E2e, Json, Streamed};
    use RouteMethod::{Delete, Get, Patch, Post, Put};
    vec![
        route(Get, "/healthz", Json, meta::healthz),
        route(Get, "/metrics", Json, meta::metrics),
        route(Get, "/api/v1/openapi.json", Json, meta::openapi),
        route(Post, "/api/v1/setup", Json, accounts::setup),
        route(Post, "/api/v1/accounts/register", Json, accounts::register),
        route(Post, "/api/v1/accounts/login", Json, accounts::login),
        route(Post, "/api/v1/accounts/logout", Json, accounts::logout),
        route(Get, "/api/v1/accounts/me", Json, accounts::me),
        route(Get, "/api/v1/accounts/session", Json, accounts::session),
        route(
            Post,
            "/api/v1/accounts/password",
            Json,
            accounts::change_password,
        ),
        route(Get, "/api/v1/sessions", Json, accounts::sessions),
        route(
            Delete,
            "/api/v1/sessions/{id}",
            Json,
            accounts::revoke_session,
        ),
        route(Get, "/api/v1/users", Json, accounts::users),
        route(Post, "/api/v1/admin/invites", Json, accounts::create_invite),
        route(Post, "/api/v1/admin/users", Json, accounts::create_user),
        route(
            Post,
            "/api/v1/admin/users/{id}/deactivate",
            Json,
            accounts::deactivate,
        ),
        route(Get, "/api/v1/admin/settings", Json, rooms::all_settings),
        route(Put, "/api/v1/admin/settings", Json, rooms::update_settings),
        route(Get, "/api/v1/settings", Json, rooms::public_settings),
        route(Get, "/api/v1/rooms", Json, rooms::list),
        route(Post, "/api/v1/rooms/dm", Json, rooms::dm),
        route(Post, "/api/v1/rooms/multi-dm", Json, rooms::multi_dm),
        route(Post, "/api/v1/rooms/groups", Json, rooms::create_group),
        route(Get, "/api/v1/rooms/{id}", Json, rooms::get),
        route(Post, "/api/v1/rooms/{id}/members", Json, rooms::add_member),
        route(
            Delete,
            "/api/v1/rooms/{id}/members/{user_id}",
            Json,
            rooms::remove_member,
        ),
        route(Post, "/api/v1/rooms/{id}/read", Json, rooms::mark_read),
        route(Get, "/api/v1/rooms/{id}/keys", Json, rooms::room_keys),
        route(Put, "/api/v1/rooms/{id}/keys", E2e, rooms::put_room_key),
        route(Get, "/api/v1/rooms/{id}/messages", Json, rooms::history),
        route(Post, "/api/v1/rooms/{id}/messages", Json, rooms::send),
        route(Patch, "/api/v1/messages/{id}", Json, rooms::edit),
        route(Delete, "/api/v1/messages/{id}", Json, rooms::delete),
        route(Get, "/api/v1/search", Json, rooms::search),
        route(
            Post,
            "/api/v1/rooms/{id}/uploads",
            Streamed,
            uploads::upload,
        ),
        route(Get, "/api/v1/uploads/{id}", Json, uploads::download),
        route(Get, "/api/v1/ws", Json, ws::upgrade),
        route(Put, "/api/v1/e2e/keys", E2e, e2e::publish),
        route(Get, "/api/v1/e2e/keys/me", E2e, e2e::own),
        route(Get, "/api/v1/e2e/keys/{user_id}", E2e, e2e::public_keys),
        route(Put, "/api/v1/e2e/trust-store", E2e, e2e::trust_store),
    ]
}

/// Every route the router answers: (method, path template), read from the same table that
/// [`router`] is built from. Must match `openapi.json`.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    table()
        .into_iter()
        .map(|r| (r.method.as_str(), r.path))
        .collect()
}

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

/// The application router, built from the route table and nothing else.
pub fn router(app: App) -> Router {
    web::precompress();
    let mut router = Router::new();
    for r in table() {
        let endpoint = match r.body {
            BodyLimit::Json => r.endpoint.layer(DefaultBodyLimit::max(MAX_JSON_BODY)),
            BodyLimit::E2e => r.endpoint.layer(DefaultBodyLimit::max(MAX_E2E_BODY)),
            BodyLimit::Streamed => r.endpoint.layer(DefaultBodyLimit::disable()),
        };
        // Two rows with the same path merge into one method router (axum panics on a
        // duplicate method).
        router = router.route(r.path, endpoint);
    }
    router
        .fallback(web::fallback)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn(track))
        .with_state(app)
}
