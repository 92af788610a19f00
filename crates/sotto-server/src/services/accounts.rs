//! Accounts service: users, passwords (Argon2id), sessions, invites, the one-time admin set-up
//! token, deactivation and login rate limiting. Owns the tables `users`, `sessions`, `invites`
//! and `setup_tokens`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
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
use crate::storage::{Db, SessionRecord, now_ms};
use sotto_api::realtime::close;
use tokio::sync::Semaphore;

/// Sessions unused for this long stop working, unless configured otherwise
/// ([`Accounts::with_session_idle`]).
const DEFAULT_SESSION_IDLE_MS: i64 = 30 * 24 * 3600 * 1000;
/// A session's last use is recorded at most this often (and at least twice per idle lifetime).
const SESSION_TOUCH_MS: i64 = 60_000;
/// A cached session is read again from the database after this long (the cache is also
/// cleared outright by every change that can end a session).
const SESSION_CACHE_TTL: Duration = Duration::from_secs(10);
/// The cache is cleared when it would grow past this many sessions.
const SESSION_CACHE_MAX: usize = 100_000;

/// Token hash → session, so authenticating a request does not hand off to the database on
/// every call. Correctness rests on invalidation: every change that can end a session or
/// change what it grants (revoke and logout, password change, deactivation) clears the whole
/// cache *after* its commit and bumps `generation`; a lookup that read the database before
/// such a change (same generation check) never inserts its stale answer. Idle expiry is
/// checked against the cached `last_seen_at`, which a lazy touch updates in place.
#[derive(Default)]
struct SessionCache {
    generation: u64,
    entries: HashMap<String, (SessionRecord, Instant)>,
}
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

/// Fixed-window counters of login attempts, per account and per address.
///
/// An attempt is counted *before* the password is verified, in the same critical section that
/// checks the limit ([`LoginLimiter::try_acquire`]), so parallel guesses cannot all slip past
/// the check while the first ones are still hashing. A successful login gives its attempt back.
#[derive(Default)]
struct LoginLimiter {
    windows: Mutex<HashMap<String, (Instant, u64)>>,
}

const LOGIN_WINDOW: Duration = Duration::from_secs(60);

impl LoginLimiter {
    /// Checks every `(key, limit)` and, only if none is exhausted, counts one attempt against
    /// each, all under one lock. False (nothing counted) if any window is full.
    fn try_acquire(&self, keys: &[(&str, u64)]) -> bool {
        let Ok(mut map) = self.windows.lock() else {
            return false;
        };
        if map.len() > 100_000 {
            map.retain(|_, (start, _)| start.elapsed() < LOGIN_WINDOW);
        }
        let full = keys.iter().any(|(key, limit)| {
            map.get(*key)
                .is_some_and(|(start, n)| start.elapsed() < LOGIN_WINDOW && *n >= *limit)
        });
        if full {
            return false;
        }
        for (key, _) in keys {
            let entry = map.entry((*key).to_string()).or_insert((Instant::now(), 0));
            if entry.0.elapsed() >= LOGIN_WINDOW {
                *entry = (Instant::now(), 0);
            }
            entry.1 += 1;
        }
        true
    }

    /// Gives one counted attempt back (a login that succeeded).
    fn release(&self, key: &str) {
        if let Ok(mut map) = self.windows.lock()
            && let Some(entry) = map.get_mut(key)
        {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    fn clear(&self, key: &str) {
        if let Ok(mut map) = self.windows.lock() {
            map.remove(key);
        }
    }
}

/// The rate-limit key of a client address: IPv4 addresses as they are, IPv6 addresses by their
/// /64 prefix (one subscriber usually holds a whole /64).
fn address_key(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => format!("i:{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("i:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The accounts service.
#[derive(Clone)]
pub struct Accounts {
    db: Db,
    settings: Settings,
    argon: Arc<Argon2<'static>>,
    /// Bounds concurrent Argon2 computations (each takes its memory cost while it runs), so a
    /// burst of registrations or logins queues instead of exhausting memory and the blocking
    /// thread pool.
    hashers: Arc<Semaphore>,
    /// Argon2 computations so far (hashes and verifications).
    argon_runs: Arc<AtomicU64>,
    limiter: Arc<LoginLimiter>,
    dummy_hash: Arc<String>,
    /// Sessions unused for this long stop working.
    session_idle_ms: i64,
    sessions: Arc<Mutex<SessionCache>>,
}

/// The longest valid username, in bytes.
pub const MAX_USERNAME_BYTES: usize = 32;

/// Username rules: 3-32 of `a-z 0-9 _ . -`, starting with a letter or digit.
pub fn check_username(name: &str) -> ApiResult<()> {
    let ok = (3..=MAX_USERNAME_BYTES).contains(&name.len())
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

fn invalid_invite() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidInvite,
        "the invite is unknown, used or expired",
    )
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
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Accounts {
            db,
            settings,
            argon,
            hashers: Arc::new(Semaphore::new(2 * cpus)),
            argon_runs: Arc::default(),
            limiter: Arc::new(LoginLimiter::default()),
            dummy_hash: Arc::new(dummy),
            session_idle_ms: DEFAULT_SESSION_IDLE_MS,
            sessions: Arc::default(),
        })
    }

    /// Sets how long a session may go unused before its token stops working (at least 1 s).
    pub fn with_session_idle(mut self, idle: Duration) -> Self {
        self.session_idle_ms = i64::try_from(idle.as_millis())
            .unwrap_or(i64::MAX)
            .max(1000);
        self
    }

    /// How many Argon2 computations (hashes and verifications) this service has run.
    pub fn argon2_runs(&self) -> u64 {
        self.argon_runs.load(Ordering::Relaxed)
    }

    /// Waits for one of the bounded Argon2 slots.
    async fn argon_slot(&self) -> ApiResult<tokio::sync::OwnedSemaphorePermit> {
        let permit = self
            .hashers
            .clone()
            .acquire_owned()
            .await
            .map_err(ApiError::internal)?;
        self.argon_runs.fetch_add(1, Ordering::Relaxed);
        Ok(permit)
    }

    async fn hash(&self, password: String) -> ApiResult<String> {
        let argon = self.argon.clone();
        let permit = self.argon_slot().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
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
        let Ok(permit) = self.argon_slot().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            PasswordHash::new(&hash)
                .is_ok_and(|h| argon.verify_password(password.as_bytes(), &h).is_ok())
        })
        .await
        .unwrap_or(false)
    }

    /// A user by id.
    pub async fn user(&self, id: UserId) -> ApiResult<Option<User>> {
        self.db.user(id).await
    }

    /// Every user, active first by name.
    pub async fn users(&self) -> ApiResult<Vec<User>> {
        self.db.users().await
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
            .write(move |tx, _| {
                Box::pin(async move {
                    let user = tx.insert_user(&username, &hash, is_admin).await?;
                    if is_admin {
                        // The set-up link exists to create the first admin; now there is one.
                        tx.clear_setup_tokens().await?;
                    }
                    Ok(user)
                })
            })
            .await
    }

    /// Counts an anonymous attempt that is about to cost a password hash (registration,
    /// set-up) against the caller's address.
    fn limit_hashing_by_address(&self, addr: Option<IpAddr>) -> ApiResult<()> {
        let Some(addr) = addr else { return Ok(()) };
        let key = format!("h{}", address_key(addr));
        let per_ip = self.settings.int("ratelimit.login_per_ip_per_min");
        if self.limiter.try_acquire(&[(key.as_str(), per_ip)]) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many attempts from this address; try later",
            ))
        }
    }

    /// Self-service registration under the current policy. Every cheap check (policy, rules,
    /// address limit, invite, name taken) comes before the password is hashed.
    pub async fn register(&self, req: RegisterRequest, addr: Option<IpAddr>) -> ApiResult<User> {
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
        self.limit_hashing_by_address(addr)?;
        if let Some(ih) = invite_hash.clone() {
            // Read-only look: an unknown invite costs no hash. (It is checked again, and
            // used, atomically with the insert below.)
            let usable = self
                .db
                .write(move |tx, _| Box::pin(async move { tx.invite_usable(&ih, now_ms()).await }))
                .await?;
            if !usable {
                return Err(invalid_invite());
            }
        }
        if self.db.user_for_login(&req.username).await?.is_some() {
            return Err(ApiError::new(
                ErrorCode::UsernameTaken,
                "this username is taken",
            ));
        }
        let hash = self.hash(req.password).await?;
        let username = req.username;
        self.db
            .write(move |tx, _| {
                Box::pin(async move {
                    if let Some(ih) = &invite_hash
                        && !tx.invite_usable(ih, now_ms()).await?
                    {
                        return Err(invalid_invite());
                    }
                    let user = tx.insert_user(&username, &hash, false).await?;
                    if let Some(ih) = &invite_hash {
                        tx.use_invite(ih, user.id).await?;
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
        let invalid = || ApiError::new(ErrorCode::InvalidCredentials, "wrong username or password");
        // No valid username is longer than this: refuse before it becomes a limiter key.
        if req.username.len() > MAX_USERNAME_BYTES {
            return Err(invalid());
        }
        let acct_key = format!("a:{}", req.username.to_ascii_lowercase());
        let ip_key = addr.map(address_key);
        let per_acct = self.settings.int("ratelimit.login_per_account_per_min");
        let per_ip = self.settings.int("ratelimit.login_per_ip_per_min");
        let mut keys = vec![(acct_key.as_str(), per_acct)];
        if let Some(k) = &ip_key {
            keys.push((k.as_str(), per_ip));
        }
        if !self.limiter.try_acquire(&keys) {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many failed logins; try later",
            ));
        }
        let row = self.db.user_for_login(&req.username).await?;
        // Verify against a dummy hash for unknown users so timing does not reveal them.
        let hash = row
            .as_ref()
            .map_or_else(|| self.dummy_hash.to_string(), |r| r.1.clone());
        let verified = self.verify(hash, req.password).await;
        let user = match row {
            Some((user, _)) if verified && !user.deactivated => user,
            _ => return Err(invalid()),
        };
        // The password is known: the account's window starts over, and the address gets its
        // attempt back (clearing it would let one valid account reset a guessing address).
        self.limiter.clear(&acct_key);
        if let Some(k) = &ip_key {
            self.limiter.release(k);
        }
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
            .write(move |tx, _| {
                Box::pin(async move {
                    tx.insert_session(uid, &th, &cs, kind, ua.as_deref(), now_ms())
                        .await
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
        let th = hash_token(token);
        let s = match self.cached_session(&th) {
            Ok(s) => s,
            Err(generation) => {
                let Some(s) = self.db.session_by_token(&th).await? else {
                    return Err(invalid());
                };
                self.cache_session(th.clone(), &s, generation);
                s
            }
        };
        let now = now_ms();
        if s.deactivated || now - s.last_seen_at > self.session_idle_ms {
            return Err(invalid());
        }
        if now - s.last_seen_at > SESSION_TOUCH_MS.min(self.session_idle_ms / 2) {
            self.cache_touch(&th, now);
            // Refresh lazily, off the request path.
            let db = self.db.clone();
            let id = s.id;
            tokio::spawn(async move {
                let _ = db.write(move |tx, _| tx.touch_session(id, now)).await;
            });
        }
        Ok(Caller {
            user_id: s.user_id,
            session_id: s.id,
            is_admin: s.is_admin,
            via_cookie,
            csrf_token: s.csrf_token,
        })
    }

    /// The cached session of a token hash, or the cache's generation to insert under.
    fn cached_session(&self, th: &str) -> Result<SessionRecord, u64> {
        let cache = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        match cache.entries.get(th) {
            Some((s, at)) if at.elapsed() < SESSION_CACHE_TTL => Ok(s.clone()),
            _ => Err(cache.generation),
        }
    }

    /// Caches a session read from the database, unless a session-ending change committed
    /// since the read began (then the read may be stale).
    fn cache_session(&self, th: String, s: &SessionRecord, generation: u64) {
        let mut cache = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if cache.generation != generation {
            return;
        }
        if cache.entries.len() >= SESSION_CACHE_MAX {
            cache.entries.clear();
        }
        cache.entries.insert(th, (s.clone(), Instant::now()));
    }

    /// Records a lazy touch in the cached copy.
    fn cache_touch(&self, th: &str, now: i64) {
        let mut cache = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, _)) = cache.entries.get_mut(th) {
            s.last_seen_at = s.last_seen_at.max(now);
        }
    }

    /// Forgets every cached session; called after each committed change that can end a
    /// session (so a revoked token is refused by the very next request).
    fn invalidate_sessions(&self) {
        let mut cache = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        cache.generation += 1;
        cache.entries.clear();
    }

    /// Ends the caller's session and closes its sockets.
    pub async fn logout(&self, caller: &Caller) -> ApiResult<()> {
        self.revoke(caller, caller.session_id).await
    }

    /// The caller's sessions.
    pub async fn sessions(&self, caller: &Caller) -> ApiResult<Vec<SessionInfo>> {
        let rows = self.db.sessions_of(caller.user_id).await?;
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
        let r = self
            .db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    if !tx.delete_session(session_id, uid).await? {
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
            .await;
        // After the commit: a lookup racing it must not re-cache the old row.
        self.invalidate_sessions();
        r
    }

    /// Changes the caller's password and revokes every *other* session.
    pub async fn change_password(
        &self,
        caller: &Caller,
        req: ChangePasswordRequest,
    ) -> ApiResult<()> {
        let hash = self
            .db
            .password_hash(caller.user_id)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        if !self.verify(hash, req.current_password).await {
            return Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "the current password is wrong",
            ));
        }
        check_password(&req.new_password)?;
        let new_hash = self.hash(req.new_password).await?;
        let (uid, sid) = (caller.user_id, caller.session_id);
        let r = self
            .db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    tx.set_password(uid, &new_hash).await?;
                    for id in tx.delete_sessions_except(uid, Some(sid)).await? {
                        outbox.push(BusMessage::Disconnect {
                            target: DisconnectTarget::Session(id),
                            code: close::SESSION_REVOKED,
                            reason: "password changed",
                        });
                    }
                    Ok(())
                })
            })
            .await;
        // After the commit: a lookup racing it must not re-cache the old row.
        self.invalidate_sessions();
        r
    }

    /// If there is no admin yet, replaces any previous set-up token with a new one and returns
    /// it (to be printed as the one-time set-up link).
    pub async fn ensure_setup_token(&self) -> ApiResult<Option<String>> {
        let token = new_token();
        let th = hash_token(&token);
        let created = self
            .db
            .write(move |tx, _| {
                Box::pin(async move {
                    if tx.admin_count().await? > 0 {
                        // A link printed before an admin existed must not outlive it.
                        tx.clear_setup_tokens().await?;
                        return Ok(false);
                    }
                    tx.replace_setup_token(&th, now_ms()).await?;
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
        addr: Option<IpAddr>,
        user_agent: Option<String>,
    ) -> ApiResult<LoginResponse> {
        check_username(&req.username)?;
        check_password(&req.password)?;
        self.limit_hashing_by_address(addr)?;
        let th = hash_token(&req.token);
        let hash = self.hash(req.password).await?;
        let username = req.username;
        let user = self
            .db
            .write(move |tx, _| {
                Box::pin(async move {
                    if tx.admin_count().await? > 0 {
                        // However the admin was made, the link is spent (and forgotten).
                        tx.clear_setup_tokens().await?;
                        return Ok(None);
                    }
                    if !tx.consume_setup_token(&th).await? {
                        return Ok(None);
                    }
                    let user = tx.insert_user(&username, &hash, true).await?;
                    tx.clear_setup_tokens().await?;
                    Ok(Some(user))
                })
            })
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidSetupToken,
                    "the set-up link is invalid or was already used",
                )
            })?;
        Ok(self.session_for(user, false, user_agent).await?.0)
    }

    /// Creates a single-use invite (admins). Returns the token and its expiry.
    pub async fn create_invite(&self, caller: &Caller) -> ApiResult<(String, i64)> {
        let token = new_token();
        let th = hash_token(&token);
        let uid = caller.user_id;
        let expires = now_ms() + INVITE_TTL_MS;
        self.db
            .write(move |tx, _| Box::pin(async move { tx.insert_invite(&th, uid, expires).await }))
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
        let r = self
            .db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    if !tx.deactivate_user(user_id).await? {
                        return Err(ApiError::not_found("user"));
                    }
                    tx.delete_sessions_except(user_id, None).await?;
                    outbox.push(BusMessage::Disconnect {
                        target: DisconnectTarget::User(user_id),
                        code: close::DEACTIVATED,
                        reason: "account deactivated",
                    });
                    Ok(())
                })
            })
            .await;
        // After the commit: a lookup racing it must not re-cache the old row.
        self.invalidate_sessions();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_counts_before_verification_and_refuses_past_the_limit() {
        let l = LoginLimiter::default();
        for _ in 0..3 {
            assert!(l.try_acquire(&[("a:x", 3), ("i:1.2.3.4", 10)]));
        }
        assert!(!l.try_acquire(&[("a:x", 3), ("i:1.2.3.4", 10)]));
        // A refused attempt counts against nothing: the address still has 7 left.
        for _ in 0..7 {
            assert!(l.try_acquire(&[("i:1.2.3.4", 10)]));
        }
        assert!(!l.try_acquire(&[("i:1.2.3.4", 10)]));
        l.release("i:1.2.3.4");
        assert!(l.try_acquire(&[("i:1.2.3.4", 10)]));
        l.clear("a:x");
        assert!(l.try_acquire(&[("a:x", 3)]));
    }

    #[test]
    fn ipv6_addresses_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), "i:10.0.0.1");
    }
}
