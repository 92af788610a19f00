//! Accounts service: users, passwords (Argon2id), sessions, invites, the one-time admin set-up
//! token, deactivation and login rate limiting. Owns the tables `users`, `sessions`, `invites`
//! and `setup_tokens`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sotto_api::rest::{
    ChangePasswordRequest, LoginRequest, LoginResponse, RegisterRequest, SessionInfo, SetupRequest,
    User,
};
use sotto_api::{ErrorCode, SessionId, UserId};

use crate::bus::{BusMessage, DisconnectTarget};
use crate::error::{ApiError, ApiResult};
use crate::secrets::{hash_token, new_token, random_hex};
use crate::services::settings::Settings;
use crate::storage::{Db, now_ms};
use sotto_api::realtime::close;

/// Sessions unused for this long stop working.
const SESSION_IDLE_MS: i64 = 30 * 24 * 3600 * 1000;
/// Invites expire after this long.
const INVITE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// The authenticated caller of a request or owner of a connection.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User.
    pub user_id: UserId,
    /// Session.
    pub session_id: SessionId,
    /// Whether the user is an admin.
    pub is_admin: bool,
    /// Whether the request authenticated with the session cookie (then writes need CSRF).
    pub via_cookie: bool,
    /// The session's CSRF token.
    pub csrf_token: String,
}

/// Fixed-window counters of failed logins, per account and per address.
#[derive(Default)]
struct LoginLimiter {
    windows: Mutex<HashMap<String, (Instant, u64)>>,
}

impl LoginLimiter {
    fn blocked(&self, key: &str, limit: u64) -> bool {
        let Ok(map) = self.windows.lock() else {
            return false;
        };
        map.get(key)
            .is_some_and(|(start, n)| start.elapsed() < Duration::from_secs(60) && *n >= limit)
    }

    fn fail(&self, key: String) {
        let Ok(mut map) = self.windows.lock() else {
            return;
        };
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| start.elapsed() < Duration::from_secs(60));
        }
        let entry = map.entry(key).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= Duration::from_secs(60) {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    fn clear(&self, key: &str) {
        if let Ok(mut map) = self.windows.lock() {
            map.remove(key);
        }
    }
}

type UserRow = (i64, String, bool, bool);

fn user_from(row: UserRow) -> User {
    User {
        id: row.0,
        username: row.1,
        is_admin: row.2,
        deactivated: row.3,
    }
}

/// The accounts service.
#[derive(Clone)]
pub struct Accounts {
    db: Db,
    settings: Settings,
    argon: Arc<Argon2<'static>>,
    limiter: Arc<LoginLimiter>,
    dummy_hash: Arc<String>,
}

/// Username rules: 3-32 of `a-z 0-9 _ . -`, starting with a letter or digit.
pub fn check_username(name: &str) -> ApiResult<()> {
    let ok = (3..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidUsername,
            "usernames are 3-32 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit",
        ))
    }
}

/// Password rules: 8 characters to 1024 bytes.
pub fn check_password(pw: &str) -> ApiResult<()> {
    if pw.chars().count() < 8 || pw.len() > 1024 {
        return Err(ApiError::new(
            ErrorCode::WeakPassword,
            "passwords are at least 8 characters and at most 1024 bytes",
        ));
    }
    Ok(())
}

impl Accounts {
    /// Builds the service with the given Argon2id cost.
    pub fn new(
        db: Db,
        settings: Settings,
        memory_kib: u32,
        iterations: u32,
    ) -> anyhow::Result<Self> {
        let params = Params::new(memory_kib.max(8), iterations.max(1), 1, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let argon = Arc::new(Argon2::new(Algorithm::Argon2id, Version::V0x13, params));
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let dummy = argon
            .hash_password(random_hex(16).as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(Accounts {
            db,
            settings,
            argon,
            limiter: Arc::new(LoginLimiter::default()),
            dummy_hash: Arc::new(dummy),
        })
    }

    async fn hash(&self, password: String) -> ApiResult<String> {
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(format_args!("argon2: {e}")))
    }

    async fn verify(&self, hash: String, password: String) -> bool {
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .is_ok_and(|h| argon.verify_password(password.as_bytes(), &h).is_ok())
        })
        .await
        .unwrap_or(false)
    }

    /// A user by id.
    pub async fn user(&self, id: UserId) -> ApiResult<Option<User>> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT id, username, is_admin, deactivated FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.db.read)
                .await?;
        Ok(row.map(user_from))
    }

    /// Every user, active first by name.
    pub async fn users(&self) -> ApiResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT id, username, is_admin, deactivated FROM users ORDER BY deactivated, username",
        )
        .fetch_all(&self.db.read)
        .await?;
        Ok(rows.into_iter().map(user_from).collect())
    }

    /// Creates a user directly (admins, the CLI). Ignores the registration policy.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        is_admin: bool,
    ) -> ApiResult<User> {
        check_username(username)?;
        check_password(password)?;
        let hash = self.hash(password.to_string()).await?;
        let username = username.to_string();
        self.db
            .writer
            .write(move |conn, _| {
                Box::pin(async move { insert_user(conn, &username, &hash, is_admin).await })
            })
            .await
    }

    /// Self-service registration under the current policy.
    pub async fn register(&self, req: RegisterRequest) -> ApiResult<User> {
        let policy = self.settings.text("registration.policy");
        if policy == "closed" {
            return Err(ApiError::new(
                ErrorCode::RegistrationClosed,
                "registration is closed",
            ));
        }
        let invite_hash = if policy == "invite_only" {
            let token = req.invite_token.as_deref().ok_or_else(|| {
                ApiError::new(ErrorCode::InviteRequired, "registration needs an invite")
            })?;
            Some(hash_token(token))
        } else {
            None
        };
        check_username(&req.username)?;
        check_password(&req.password)?;
        let hash = self.hash(req.password).await?;
        let username = req.username;
        self.db
            .writer
            .write(move |conn, _| {
                Box::pin(async move {
                    let now = now_ms();
                    if let Some(ih) = &invite_hash {
                        let ok: Option<(String,)> = sqlx::query_as(
                            "SELECT token_hash FROM invites \
                             WHERE token_hash = $1 AND used_by IS NULL AND expires_at > $2",
                        )
                        .bind(ih)
                        .bind(now)
                        .fetch_optional(&mut *conn)
                        .await?;
                        if ok.is_none() {
                            return Err(ApiError::new(
                                ErrorCode::InvalidInvite,
                                "the invite is unknown, used or expired",
                            ));
                        }
                    }
                    let user = insert_user(conn, &username, &hash, false).await?;
                    if let Some(ih) = &invite_hash {
                        sqlx::query("UPDATE invites SET used_by = $1 WHERE token_hash = $2")
                            .bind(user.id)
                            .bind(ih)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(user)
                })
            })
            .await
    }

    /// Logs in. Returns the answer and the secret token (also for cookie sessions, where the
    /// handler puts it in the cookie instead of the body).
    pub async fn login(
        &self,
        req: LoginRequest,
        addr: Option<IpAddr>,
        user_agent: Option<String>,
    ) -> ApiResult<(LoginResponse, String)> {
        let acct_key = format!("a:{}", req.username.to_ascii_lowercase());
        let ip_key = addr.map(|a| format!("i:{a}"));
        let per_acct = self.settings.int("ratelimit.login_per_account_per_min");
        let per_ip = self.settings.int("ratelimit.login_per_ip_per_min");
        if self.limiter.blocked(&acct_key, per_acct)
            || ip_key
                .as_deref()
                .is_some_and(|k| self.limiter.blocked(k, per_ip))
        {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many failed logins; try later",
            ));
        }
        let row: Option<(i64, String, bool, bool, String)> = sqlx::query_as(
            "SELECT id, username, is_admin, deactivated, password_hash FROM users WHERE username = $1",
        )
        .bind(&req.username)
        .fetch_optional(&self.db.read)
        .await?;
        // Verify against a dummy hash for unknown users so timing does not reveal them.
        let hash = row
            .as_ref()
            .map_or_else(|| self.dummy_hash.to_string(), |r| r.4.clone());
        let verified = self.verify(hash, req.password).await;
        let user = match row {
            Some((id, username, is_admin, deactivated, _)) if verified && !deactivated => User {
                id,
                username,
                is_admin,
                deactivated,
            },
            _ => {
                self.limiter.fail(acct_key);
                if let Some(k) = ip_key {
                    self.limiter.fail(k);
                }
                return Err(ApiError::new(
                    ErrorCode::InvalidCredentials,
                    "wrong username or password",
                ));
            }
        };
        self.limiter.clear(&acct_key);
        self.session_for(user, req.cookie, user_agent).await
    }

    async fn session_for(
        &self,
        user: User,
        cookie: bool,
        user_agent: Option<String>,
    ) -> ApiResult<(LoginResponse, String)> {
        let token = new_token();
        let csrf = random_hex(16);
        let (th, cs) = (hash_token(&token), csrf.clone());
        let uid = user.id;
        let kind = if cookie { "cookie" } else { "bearer" };
        let ua = user_agent.map(|s| s.chars().take(200).collect::<String>());
        let session_id = self
            .db
            .writer
            .write(move |conn, _| {
                Box::pin(async move {
                    let now = now_ms();
                    let r = sqlx::query(
                        "INSERT INTO sessions (user_id, token_hash, csrf_token, kind, user_agent, \
                         created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                    )
                    .bind(uid)
                    .bind(th)
                    .bind(cs)
                    .bind(kind)
                    .bind(ua)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    Ok(r.last_insert_rowid())
                })
            })
            .await?;
        let resp = LoginResponse {
            token: if cookie { None } else { Some(token.clone()) },
            session_id,
            csrf_token: csrf,
            user,
        };
        Ok((resp, token))
    }

    /// Resolves a session token to its caller.
    pub async fn authenticate(&self, token: &str, via_cookie: bool) -> ApiResult<Caller> {
        let invalid =
            || ApiError::new(ErrorCode::InvalidToken, "the session is invalid or expired");
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let row: Option<(i64, i64, String, i64, bool, bool)> = sqlx::query_as(
            "SELECT s.id, s.user_id, s.csrf_token, s.last_seen_at, u.is_admin, u.deactivated \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
        )
        .bind(hash_token(token))
        .fetch_optional(&self.db.read)
        .await?;
        let Some((session_id, user_id, csrf_token, last_seen, is_admin, deactivated)) = row else {
            return Err(invalid());
        };
        let now = now_ms();
        if deactivated || now - last_seen > SESSION_IDLE_MS {
            return Err(invalid());
        }
        if now - last_seen > 60_000 {
            // Refresh lazily, off the request path.
            let writer = self.db.writer.clone();
            tokio::spawn(async move {
                let _ = writer
                    .write(move |conn, _| {
                        Box::pin(async move {
                            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
                                .bind(now)
                                .bind(session_id)
                                .execute(&mut *conn)
                                .await?;
                            Ok(())
                        })
                    })
                    .await;
            });
        }
        Ok(Caller {
            user_id,
            session_id,
            is_admin,
            via_cookie,
            csrf_token,
        })
    }

    /// Ends the caller's session and closes its sockets.
    pub async fn logout(&self, caller: &Caller) -> ApiResult<()> {
        self.revoke(caller, caller.session_id).await
    }

    /// The caller's sessions.
    pub async fn sessions(&self, caller: &Caller) -> ApiResult<Vec<SessionInfo>> {
        let rows: Vec<(i64, i64, i64, String, Option<String>)> = sqlx::query_as(
            "SELECT id, created_at, last_seen_at, kind, user_agent FROM sessions \
             WHERE user_id = $1 ORDER BY id",
        )
        .bind(caller.user_id)
        .fetch_all(&self.db.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, created_at, last_seen_at, kind, user_agent)| SessionInfo {
                    id,
                    created_at,
                    last_seen_at,
                    kind,
                    user_agent,
                    current: id == caller.session_id,
                },
            )
            .collect())
    }

    /// Revokes one of the caller's sessions; its sockets close at once.
    pub async fn revoke(&self, caller: &Caller, session_id: SessionId) -> ApiResult<()> {
        let uid = caller.user_id;
        self.db
            .writer
            .write(move |conn, outbox| {
                Box::pin(async move {
                    let r = sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
                        .bind(session_id)
                        .bind(uid)
                        .execute(&mut *conn)
                        .await?;
                    if r.rows_affected() == 0 {
                        return Err(ApiError::not_found("session"));
                    }
                    outbox.push(BusMessage::Disconnect {
                        target: DisconnectTarget::Session(session_id),
                        code: close::SESSION_REVOKED,
                        reason: "session revoked",
                    });
                    Ok(())
                })
            })
            .await
    }

    /// Changes the caller's password and revokes every *other* session.
    pub async fn change_password(
        &self,
        caller: &Caller,
        req: ChangePasswordRequest,
    ) -> ApiResult<()> {
        let (hash,): (String,) = sqlx::query_as("SELECT password_hash FROM users WHERE id = $1")
            .bind(caller.user_id)
            .fetch_one(&self.db.read)
            .await?;
        if !self.verify(hash, req.current_password).await {
            return Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "the current password is wrong",
            ));
        }
        check_password(&req.new_password)?;
        let new_hash = self.hash(req.new_password).await?;
        let (uid, sid) = (caller.user_id, caller.session_id);
        self.db
            .writer
            .write(move |conn, outbox| {
                Box::pin(async move {
                    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                        .bind(new_hash)
                        .bind(uid)
                        .execute(&mut *conn)
                        .await?;
                    let others: Vec<(i64,)> =
                        sqlx::query_as("SELECT id FROM sessions WHERE user_id = $1 AND id <> $2")
                            .bind(uid)
                            .bind(sid)
                            .fetch_all(&mut *conn)
                            .await?;
                    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
                        .bind(uid)
                        .bind(sid)
                        .execute(&mut *conn)
                        .await?;
                    for (id,) in others {
                        outbox.push(BusMessage::Disconnect {
                            target: DisconnectTarget::Session(id),
                            code: close::SESSION_REVOKED,
                            reason: "password changed",
                        });
                    }
                    Ok(())
                })
            })
            .await
    }

    /// If there is no admin yet, replaces any previous set-up token with a new one and returns
    /// it (to be printed as the one-time set-up link).
    pub async fn ensure_setup_token(&self) -> ApiResult<Option<String>> {
        let token = new_token();
        let th = hash_token(&token);
        let created = self
            .db
            .writer
            .write(move |conn, _| {
                Box::pin(async move {
                    let admins: (i64,) =
                        sqlx::query_as("SELECT COUNT(*) FROM users WHERE is_admin = TRUE")
                            .fetch_one(&mut *conn)
                            .await?;
                    if admins.0 > 0 {
                        return Ok(false);
                    }
                    sqlx::query("DELETE FROM setup_tokens")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(
                        "INSERT INTO setup_tokens (token_hash, created_at) VALUES ($1, $2)",
                    )
                    .bind(th)
                    .bind(now_ms())
                    .execute(&mut *conn)
                    .await?;
                    Ok(true)
                })
            })
            .await?;
        Ok(created.then_some(token))
    }

    /// Uses the one-time set-up token to create the first admin and log them in.
    pub async fn setup(
        &self,
        req: SetupRequest,
        user_agent: Option<String>,
    ) -> ApiResult<LoginResponse> {
        check_username(&req.username)?;
        check_password(&req.password)?;
        let th = hash_token(&req.token);
        let hash = self.hash(req.password).await?;
        let username = req.username;
        let user = self
            .db
            .writer
            .write(move |conn, _| {
                Box::pin(async move {
                    let r = sqlx::query("DELETE FROM setup_tokens WHERE token_hash = $1")
                        .bind(th)
                        .execute(&mut *conn)
                        .await?;
                    if r.rows_affected() == 0 {
                        return Err(ApiError::new(
                            ErrorCode::InvalidSetupToken,
                            "the set-up link is invalid or was already used",
                        ));
                    }
                    let user = insert_user(conn, &username, &hash, true).await?;
                    sqlx::query("DELETE FROM setup_tokens")
                        .execute(&mut *conn)
                        .await?;
                    Ok(user)
                })
            })
            .await?;
        Ok(self.session_for(user, false, user_agent).await?.0)
    }

    /// Creates a single-use invite (admins). Returns the token and its expiry.
    pub async fn create_invite(&self, caller: &Caller) -> ApiResult<(String, i64)> {
        let token = new_token();
        let th = hash_token(&token);
        let uid = caller.user_id;
        let expires = now_ms() + INVITE_TTL_MS;
        self.db
            .writer
            .write(move |conn, _| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO invites (token_hash, created_by, expires_at) VALUES ($1, $2, $3)",
                    )
                    .bind(th)
                    .bind(uid)
                    .bind(expires)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        Ok((token, expires))
    }

    /// Deactivates a user (admins): their sessions end and their sockets close.
    pub async fn deactivate(&self, caller: &Caller, user_id: UserId) -> ApiResult<()> {
        if caller.user_id == user_id {
            return Err(ApiError::new(
                ErrorCode::NotAllowed,
                "admins cannot deactivate themselves",
            ));
        }
        self.db
            .writer
            .write(move |conn, outbox| {
                Box::pin(async move {
                    let r = sqlx::query("UPDATE users SET deactivated = TRUE WHERE id = $1")
                        .bind(user_id)
                        .execute(&mut *conn)
                        .await?;
                    if r.rows_affected() == 0 {
                        return Err(ApiError::not_found("user"));
                    }
                    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                        .bind(user_id)
                        .execute(&mut *conn)
                        .await?;
                    outbox.push(BusMessage::Disconnect {
                        target: DisconnectTarget::User(user_id),
                        code: close::DEACTIVATED,
                        reason: "account deactivated",
                    });
                    Ok(())
                })
            })
            .await
    }
}

async fn insert_user(
    conn: &mut sqlx::SqliteConnection,
    username: &str,
    hash: &str,
    is_admin: bool,
) -> ApiResult<User> {
    let r = sqlx::query(
        "INSERT INTO users (username, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(username)
    .bind(hash)
    .bind(is_admin)
    .bind(now_ms())
    .execute(&mut *conn)
    .await;
    match r {
        Ok(r) => Ok(User {
            id: r.last_insert_rowid(),
            username: username.to_string(),
            is_admin,
            deactivated: false,
        }),
        Err(e)
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation()) =>
        {
            Err(ApiError::new(
                ErrorCode::UsernameTaken,
                "the username is taken",
            ))
        }
        Err(e) => Err(e.into()),
    }
}
