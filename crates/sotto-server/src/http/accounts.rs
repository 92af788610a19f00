//! Account, session and admin handlers.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sotto_api::rest::{
    ChangePasswordRequest, CreateUserRequest, Invite, LoginRequest, LoginResponse, Ok as OkBody,
    RegisterRequest, SessionInfo, SetupRequest, User, UserWithPresence,
};
use sotto_api::{SessionId, UserId};

use super::extract::{Admin, ApiJson, ApiPath, Auth, SESSION_COOKIE};
use crate::app::App;
use crate::error::{ApiError, ApiResult};

fn ok() -> Json<OkBody> {
    Json(OkBody { ok: true })
}

fn user_agent(h: &HeaderMap) -> Option<String> {
    h.get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(super) async fn register(
    State(app): State<App>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<Json<User>> {
    app.accounts.register(req, Some(addr.ip())).await.map(Json)
}

pub(super) async fn login(
    State(app): State<App>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let cookie = req.cookie;
    let (resp, token) = app
        .accounts
        .login(req, Some(addr.ip()), user_agent(&headers))
        .await?;
    let mut r = Json(resp).into_response();
    if cookie {
        let secure = if app.public_url.starts_with("https://") {
            "; Secure"
        } else {
            ""
        };
        let v = format!(
            "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000{secure}"
        );
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    Ok(r)
}

pub(super) async fn logout(State(app): State<App>, Auth(c): Auth) -> ApiResult<Response> {
    app.accounts.logout(&c).await?;
    let mut r = ok().into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("sotto_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(r)
}

pub(super) async fn me(State(app): State<App>, Auth(c): Auth) -> ApiResult<Json<User>> {
    app.accounts
        .user(c.user_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("user"))
}

/// The current session: lets a browser that reloaded the page recover its CSRF token.
pub(super) async fn session(
    State(app): State<App>,
    Auth(c): Auth,
) -> ApiResult<Json<LoginResponse>> {
    let user = app
        .accounts
        .user(c.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(LoginResponse {
        token: None,
        session_id: c.session_id,
        csrf_token: c.csrf_token,
        user,
    }))
}

pub(super) async fn change_password(
    State(app): State<App>,
    Auth(c): Auth,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<Json<OkBody>> {
    app.accounts.change_password(&c, req).await.map(|_| ok())
}

pub(super) async fn sessions(
    State(app): State<App>,
    Auth(c): Auth,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    app.accounts.sessions(&c).await.map(Json)
}

pub(super) async fn revoke_session(
    State(app): State<App>,
    Auth(c): Auth,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<Json<OkBody>> {
    app.accounts.revoke(&c, id).await.map(|_| ok())
}

pub(super) async fn setup(
    State(app): State<App>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SetupRequest>,
) -> ApiResult<Json<LoginResponse>> {
    app.accounts
        .setup(req, Some(addr.ip()), user_agent(&headers))
        .await
        .map(Json)
}

pub(super) async fn users(
    State(app): State<App>,
    Auth(_): Auth,
) -> ApiResult<Json<Vec<UserWithPresence>>> {
    let users = app.accounts.users().await?;
    Ok(Json(
        users
            .into_iter()
            .filter(|u| !u.deactivated)
            .map(|u| UserWithPresence {
                presence: app.presence.status(u.id),
                user: u,
            })
            .collect(),
    ))
}

pub(super) async fn create_invite(
    State(app): State<App>,
    Admin(c): Admin,
) -> ApiResult<Json<Invite>> {
    let (token, expires_at) = app.accounts.create_invite(&c).await?;
    let url = format!("{}/register#{token}", app.public_url);
    Ok(Json(Invite {
        token,
        url,
        expires_at,
    }))
}

pub(super) async fn create_user(
    State(app): State<App>,
    Admin(_): Admin,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<Json<User>> {
    app.accounts
        .create_user(&req.username, &req.password, req.is_admin)
        .await
        .map(Json)
}

pub(super) async fn deactivate(
    State(app): State<App>,
    Admin(c): Admin,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<Json<OkBody>> {
    app.accounts.deactivate(&c, id).await.map(|_| ok())
}
