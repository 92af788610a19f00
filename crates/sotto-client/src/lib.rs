//! Async Rust SDK for a Sotto server: the HTTP API ([`Client`]) and the realtime WebSocket
//! ([`Realtime`]). Types come from `sotto-api`, so the SDK and the server cannot disagree about
//! the wire format.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sotto_client::Error> {
//! let mut alice = sotto_client::Client::new("http://127.0.0.1:8080");
//! alice.login("alice", "correct horse battery").await?;
//! let room = alice.dm(2).await?;
//! alice.send_text(room.id, "hi").await?;
//! let mut rt = alice.connect(Default::default()).await?;
//! while let Some(ev) = rt.next().await { println!("{ev:?}"); }
//! # Ok(()) }
//! ```
//!
//! End-to-end encryption lives in three modules: `e2e` (identity keys, backup, trust store),
//! `otr` (off-the-record sessions, [`OtrEndpoint`]) and `rooms` (encrypted rooms: room keys,
//! encrypted messages and files, local search; see [`Client::room_send`]).

mod e2e;
mod otr;
mod realtime;
mod rooms;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sotto_api::rest::*;
use sotto_api::{ErrorBody, ErrorCode, MessageId, RoomId, SessionId, UploadId, UserId};

pub use e2e::E2eKeys;
pub use otr::{OtrEndpoint, OtrUpdate};
pub use realtime::{ConnectOptions, Realtime, RealtimeEvent};
pub use reqwest::Method;
pub use rooms::{ReadError, RefusedShare, RoomKeyState, RoomMessage, search_decrypted};
pub use sotto_api;
pub use sotto_crypto;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error body.
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable code.
        code: ErrorCode,
        /// Server's message.
        message: String,
    },
    /// Transport failure.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// WebSocket failure.
    #[error("websocket: {0}")]
    Ws(String),
    /// The answer could not be understood.
    #[error("decode: {0}")]
    Decode(String),
    /// A cryptographic operation failed (wrong passphrase, changed key, illegal OTR transition).
    #[error("crypto: {0}")]
    Crypto(String),
}

impl Error {
    /// The stable error code, if the server sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;

/// How the client authenticates. Its `Debug` never shows the secrets.
#[derive(Clone, Default)]
enum Credentials {
    #[default]
    None,
    Bearer(String),
    /// Browser-style: the session cookie plus the CSRF token (sent unless disabled).
    Cookie {
        token: String,
        csrf: String,
        send_csrf: bool,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "None",
            Credentials::Bearer(_) => "Bearer(<redacted>)",
            Credentials::Cookie { .. } => "Cookie(<redacted>)",
        })
    }
}

/// A raw HTTP answer (for tests that check headers or send malformed input).
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The error code of an error body, if any.
    pub fn error_code(&self) -> Option<ErrorCode> {
        serde_json::from_slice::<ErrorBody>(&self.body)
            .ok()
            .map(|b| b.error.code)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An HTTP client for one user (or none). Its `Debug` never shows the session token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    creds: Credentials,
    /// The logged-in user, after login.
    pub user: Option<User>,
    /// The session id, after login.
    pub session_id: Option<SessionId>,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base_url.trim_end_matches('/').to_string(),
            creds: Credentials::None,
            user: None,
            session_id: None,
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The bearer token, if logged in with one. Secret.
    pub fn token(&self) -> Option<&str> {
        match &self.creds {
            Credentials::Bearer(t) => Some(t),
            Credentials::Cookie { token, .. } => Some(token),
            Credentials::None => None,
        }
    }

    /// Uses a bearer token directly.
    pub fn set_token(&mut self, token: &str) {
        self.creds = Credentials::Bearer(token.to_string());
    }

    /// For cookie sessions: whether to send the CSRF header (tests turn it off).
    pub fn set_send_csrf(&mut self, send: bool) {
        if let Credentials::Cookie { send_csrf, .. } = &mut self.creds {
            *send_csrf = send;
        }
    }

    /// The logged-in user's id.
    pub fn user_id(&self) -> UserId {
        self.user.as_ref().map_or(0, |u| u.id)
    }

    fn auth_headers(&self, method: &Method) -> HeaderMap {
        let mut h = HeaderMap::new();
        match &self.creds {
            Credentials::None => {}
            Credentials::Bearer(t) => {
                if let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}")) {
                    h.insert(reqwest::header::AUTHORIZATION, v);
                }
            }
            Credentials::Cookie {
                token,
                csrf,
                send_csrf,
            } => {
                if let Ok(v) = HeaderValue::from_str(&format!("sotto_session={token}")) {
                    h.insert(reqwest::header::COOKIE, v);
                }
                if *send_csrf
                    && method != Method::GET
                    && let Ok(v) = HeaderValue::from_str(csrf)
                {
                    h.insert(HeaderName::from_static("x-csrf-token"), v);
                }
            }
        }
        h
    }

    /// Sends a request with arbitrary body and headers; returns whatever came back.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        extra: &[(&str, &str)],
    ) -> Result<RawResponse> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        req = req.headers(self.auth_headers(&method));
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        if let Some((ct, bytes)) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, ct).body(bytes);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.bytes().await?.to_vec();
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let payload = match body {
            Some(b) => Some((
                "application/json",
                serde_json::to_vec(b).map_err(|e| Error::Decode(e.to_string()))?,
            )),
            None => None,
        };
        let r = self.raw(method, path, payload, &[]).await?;
        decode(r)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(Method::GET, path, None::<&()>).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.call(Method::POST, path, Some(body)).await
    }

    // ---------------------------------------------------------------- accounts

    /// Registers (does not log in).
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        invite_token: Option<&str>,
    ) -> Result<User> {
        self.post(
            "/api/v1/accounts/register",
            &RegisterRequest {
                username: username.into(),
                password: password.into(),
                invite_token: invite_token.map(Into::into),
            },
        )
        .await
    }

    fn adopt(&mut self, r: &LoginResponse, token: Option<String>) {
        self.user = Some(r.user.clone());
        self.session_id = Some(r.session_id);
        if let Some(t) = token {
            self.creds = Credentials::Bearer(t);
        }
    }

    /// Logs in with a bearer token.
    pub async fn login(&mut self, username: &str, password: &str) -> Result<LoginResponse> {
        let r: LoginResponse = self
            .post(
                "/api/v1/accounts/login",
                &LoginRequest {
                    username: username.into(),
                    password: password.into(),
                    cookie: false,
                },
            )
            .await?;
        let token = r.token.clone();
        self.adopt(&r, token);
        Ok(r)
    }

    /// Logs in like a browser: an HttpOnly session cookie plus a CSRF token.
    pub async fn login_cookie(&mut self, username: &str, password: &str) -> Result<LoginResponse> {
        let body = serde_json::to_vec(&LoginRequest {
            username: username.into(),
            password: password.into(),
            cookie: true,
        })
        .map_err(|e| Error::Decode(e.to_string()))?;
        let raw = self
            .raw(
                Method::POST,
                "/api/v1/accounts/login",
                Some(("application/json", body)),
                &[],
            )
            .await?;
        let cookie = raw
            .headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                c.strip_prefix("sotto_session=")
                    .map(|rest| rest.split(';').next().unwrap_or("").to_string())
            });
        let r: LoginResponse = decode(raw)?;
        let token = cookie.ok_or_else(|| Error::Decode("no session cookie".into()))?;
        self.user = Some(r.user.clone());
        self.session_id = Some(r.session_id);
        self.creds = Credentials::Cookie {
            token,
            csrf: r.csrf_token.clone(),
            send_csrf: true,
        };
        Ok(r)
    }

    /// Uses the one-time admin set-up token; logs in as the new admin.
    pub async fn setup(
        &mut self,
        token: &str,
        username: &str,
        password: &str,
    ) -> Result<LoginResponse> {
        let r: LoginResponse = self
            .post(
                "/api/v1/setup",
                &SetupRequest {
                    token: token.into(),
                    username: username.into(),
                    password: password.into(),
                },
            )
            .await?;
        let token = r.token.clone();
        self.adopt(&r, token);
        Ok(r)
    }

    /// Logs out (the session ends everywhere, its sockets close).
    pub async fn logout(&mut self) -> Result<()> {
        let _: Ok = self.post("/api/v1/accounts/logout", &()).await?;
        Ok(())
    }

    /// The logged-in user.
    pub async fn me(&self) -> Result<User> {
        self.get("/api/v1/accounts/me").await
    }

    /// The current session (with its CSRF token).
    pub async fn session(&self) -> Result<LoginResponse> {
        self.get("/api/v1/accounts/session").await
    }

    /// Changes the password; other sessions are revoked.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<()> {
        let _: Ok = self
            .post(
                "/api/v1/accounts/password",
                &ChangePasswordRequest {
                    current_password: current.into(),
                    new_password: new.into(),
                },
            )
            .await?;
        Ok(())
    }

    /// Own sessions.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>> {
        self.get("/api/v1/sessions").await
    }

    /// Revokes one of the own sessions.
    pub async fn revoke_session(&self, id: SessionId) -> Result<()> {
        let _: Ok = self
            .call(
                Method::DELETE,
                &format!("/api/v1/sessions/{id}"),
                None::<&()>,
            )
            .await?;
        Ok(())
    }

    /// Active users with presence.
    pub async fn users(&self) -> Result<Vec<UserWithPresence>> {
        self.get("/api/v1/users").await
    }

    /// Creates an invite (admins).
    pub async fn create_invite(&self) -> Result<Invite> {
        self.post("/api/v1/admin/invites", &()).await
    }

    /// Creates a user directly (admins).
    pub async fn admin_create_user(
        &self,
        username: &str,
        password: &str,
        is_admin: bool,
    ) -> Result<User> {
        self.post(
            "/api/v1/admin/users",
            &CreateUserRequest {
                username: username.into(),
                password: password.into(),
                is_admin,
            },
        )
        .await
    }

    /// Deactivates a user (admins).
    pub async fn deactivate(&self, user: UserId) -> Result<()> {
        let _: Ok = self
            .post(&format!("/api/v1/admin/users/{user}/deactivate"), &())
            .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- settings

    /// Public settings.
    pub async fn settings(&self) -> Result<SettingsMap> {
        self.get("/api/v1/settings").await
    }

    /// All settings (admins).
    pub async fn admin_settings(&self) -> Result<SettingsMap> {
        self.get("/api/v1/admin/settings").await
    }

    /// Changes settings (admins).
    pub async fn update_settings(&self, changes: &SettingsMap) -> Result<SettingsMap> {
        self.call(Method::PUT, "/api/v1/admin/settings", Some(changes))
            .await
    }

    // ---------------------------------------------------------------- rooms

    /// Own rooms with last message and unread count.
    pub async fn rooms(&self) -> Result<Vec<Room>> {
        self.get("/api/v1/rooms").await
    }

    /// One room.
    pub async fn room(&self, id: RoomId) -> Result<Room> {
        self.get(&format!("/api/v1/rooms/{id}")).await
    }

    /// Gets or creates the DM with `user` (encrypted or not as the server's setting says).
    pub async fn dm(&self, user: UserId) -> Result<Room> {
        self.dm_with(user, None).await
    }

    /// Gets or creates the DM with `user`, end-to-end encrypted or not (`None`: the server's
    /// setting `e2e.encrypt_new_dms` decides). The encrypted and the ordinary DM of two people
    /// are distinct rooms.
    pub async fn dm_with(&self, user: UserId, encrypted: Option<bool>) -> Result<Room> {
        self.post(
            "/api/v1/rooms/dm",
            &DmRequest {
                user_id: user,
                encrypted,
            },
        )
        .await
    }

    /// Gets or creates the multi-user DM with `users`.
    pub async fn multi_dm(&self, users: &[UserId]) -> Result<Room> {
        self.multi_dm_with(users, None).await
    }

    /// Gets or creates the multi-user DM with `users`, encrypted or not (see [`Client::dm_with`]).
    pub async fn multi_dm_with(&self, users: &[UserId], encrypted: Option<bool>) -> Result<Room> {
        self.post(
            "/api/v1/rooms/multi-dm",
            &MultiDmRequest {
                user_ids: users.to_vec(),
                encrypted,
            },
        )
        .await
    }

    /// Creates a group.
    pub async fn create_group(&self, name: &str, members: &[UserId]) -> Result<Room> {
        self.create_group_with(name, members, None).await
    }

    /// Creates a group, encrypted or not (`None`: the setting `e2e.encrypt_new_groups` decides).
    pub async fn create_group_with(
        &self,
        name: &str,
        members: &[UserId],
        encrypted: Option<bool>,
    ) -> Result<Room> {
        self.post(
            "/api/v1/rooms/groups",
            &CreateGroupRequest {
                name: name.into(),
                member_ids: members.to_vec(),
                encrypted,
            },
        )
        .await
    }

    /// The caller's own shares of a room's keys, with the room's epoch, members and
    /// membership history.
    pub async fn room_keys(&self, room: RoomId) -> Result<RoomKeys> {
        self.get(&format!("/api/v1/rooms/{room}/keys")).await
    }

    /// Distributes a new room key (one sealed share per current member).
    pub async fn put_room_key(&self, room: RoomId, req: &PutRoomKeyRequest) -> Result<()> {
        let _: Ok = self
            .call(
                Method::PUT,
                &format!("/api/v1/rooms/{room}/keys"),
                Some(req),
            )
            .await?;
        Ok(())
    }

    /// Adds a member to a group.
    pub async fn add_member(&self, room: RoomId, user: UserId) -> Result<Room> {
        self.post(
            &format!("/api/v1/rooms/{room}/members"),
            &AddMemberRequest { user_id: user },
        )
        .await
    }

    /// Leaves (own id) or kicks (owner) from a group.
    pub async fn remove_member(&self, room: RoomId, user: UserId) -> Result<()> {
        let _: Ok = self
            .call(
                Method::DELETE,
                &format!("/api/v1/rooms/{room}/members/{user}"),
                None::<&()>,
            )
            .await?;
        Ok(())
    }

    /// Marks read up to a message.
    pub async fn mark_read(&self, room: RoomId, message: MessageId) -> Result<()> {
        let _: Ok = self
            .post(
                &format!("/api/v1/rooms/{room}/read"),
                &MarkReadRequest {
                    message_id: message,
                },
            )
            .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- messages

    /// Sends a message.
    pub async fn send(&self, room: RoomId, req: &SendMessageRequest) -> Result<Message> {
        self.post(&format!("/api/v1/rooms/{room}/messages"), req)
            .await
    }

    /// Sends a text message.
    pub async fn send_text(&self, room: RoomId, text: &str) -> Result<Message> {
        self.send(
            room,
            &SendMessageRequest {
                body: MessageBody::Text { text: text.into() },
                attachment_id: None,
            },
        )
        .await
    }

    /// Sends an encrypted envelope (opaque to the server).
    pub async fn send_encrypted(&self, room: RoomId, envelope: &str) -> Result<Message> {
        self.send(
            room,
            &SendMessageRequest {
                body: MessageBody::Encrypted {
                    envelope: envelope.into(),
                },
                attachment_id: None,
            },
        )
        .await
    }

    /// A page of history (`before` / `after` are cursors from a previous page).
    pub async fn history(
        &self,
        room: RoomId,
        before: Option<&str>,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<HistoryPage> {
        let mut q = Vec::new();
        if let Some(b) = before {
            q.push(format!("before={b}"));
        }
        if let Some(a) = after {
            q.push(format!("after={a}"));
        }
        if let Some(l) = limit {
            q.push(format!("limit={l}"));
        }
        self.get(&format!("/api/v1/rooms/{room}/messages?{}", q.join("&")))
            .await
    }

    /// Edits an own message.
    pub async fn edit(&self, message: MessageId, body: MessageBody) -> Result<Message> {
        self.call(
            Method::PATCH,
            &format!("/api/v1/messages/{message}"),
            Some(&EditMessageRequest { body }),
        )
        .await
    }

    /// Deletes an own message.
    pub async fn delete_message(&self, message: MessageId) -> Result<()> {
        let _: Ok = self
            .call(
                Method::DELETE,
                &format!("/api/v1/messages/{message}"),
                None::<&()>,
            )
            .await?;
        Ok(())
    }

    /// Full-text search in own rooms.
    pub async fn search(
        &self,
        q: &str,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> Result<SearchResults> {
        let mut url = reqwest::Url::parse(&format!("{}/api/v1/search", self.base))
            .map_err(|e| Error::Decode(e.to_string()))?;
        url.query_pairs_mut().append_pair("q", q);
        if let Some(l) = limit {
            url.query_pairs_mut().append_pair("limit", &l.to_string());
        }
        if let Some(o) = offset {
            url.query_pairs_mut().append_pair("offset", &o.to_string());
        }
        let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
        self.get(&path).await
    }

    // ---------------------------------------------------------------- uploads

    /// Uploads a file into a room (then attach it with `SendMessageRequest::attachment_id`).
    pub async fn upload(&self, room: RoomId, filename: &str, bytes: Vec<u8>) -> Result<UploadInfo> {
        self.upload_as(room, filename, bytes, false).await
    }

    /// Uploads ciphertext the client encrypted (`?encrypted=true`): the server stores it as
    /// `application/octet-stream` under a neutral name. Encrypted rooms take only these.
    pub async fn upload_encrypted(&self, room: RoomId, bytes: Vec<u8>) -> Result<UploadInfo> {
        self.upload_as(room, "encrypted.bin", bytes, true).await
    }

    async fn upload_as(
        &self,
        room: RoomId,
        filename: &str,
        bytes: Vec<u8>,
        encrypted: bool,
    ) -> Result<UploadInfo> {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(filename.to_string());
        let form = reqwest::multipart::Form::new().part("file", part);
        let query = if encrypted { "?encrypted=true" } else { "" };
        let res = self
            .http
            .post(format!("{}/api/v1/rooms/{room}/uploads{query}", self.base))
            .headers(self.auth_headers(&Method::POST))
            .multipart(form)
            .send()
            .await?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.bytes().await?.to_vec();
        decode(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// Downloads an upload (raw, to inspect headers).
    pub async fn download(&self, id: UploadId) -> Result<RawResponse> {
        let r = self
            .raw(Method::GET, &format!("/api/v1/uploads/{id}"), None, &[])
            .await?;
        if r.status >= 400 {
            return Err(api_error(&r));
        }
        Ok(r)
    }

    // ---------------------------------------------------------------- realtime

    /// Opens a realtime connection.
    pub async fn connect(&self, opts: ConnectOptions) -> Result<Realtime> {
        let mut headers = Vec::new();
        match &self.creds {
            Credentials::Bearer(t) => {
                headers.push(("authorization".to_string(), format!("Bearer {t}")))
            }
            Credentials::Cookie { token, .. } => {
                headers.push(("cookie".to_string(), format!("sotto_session={token}")))
            }
            Credentials::None => {}
        }
        realtime::connect(&self.base, headers, opts).await
    }
}

fn api_error(r: &RawResponse) -> Error {
    match serde_json::from_slice::<ErrorBody>(&r.body) {
        Ok(b) => Error::Api {
            status: r.status,
            code: b.error.code,
            message: b.error.message,
        },
        Err(_) => Error::Api {
            status: r.status,
            code: ErrorCode::Unknown,
            message: String::from_utf8_lossy(&r.body).chars().take(200).collect(),
        },
    }
}

fn decode<T: DeserializeOwned>(r: RawResponse) -> Result<T> {
    if StatusCode::from_u16(r.status).map_or(true, |s| !s.is_success()) {
        return Err(api_error(&r));
    }
    serde_json::from_slice(&r.body).map_err(|e| Error::Decode(e.to_string()))
}
