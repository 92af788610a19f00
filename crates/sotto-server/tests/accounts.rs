//! Accounts, sessions, registration policies, CSRF, revocation and deactivation.

mod common;

use common::{PW, TestServer, expect};
use serde_json::json;
use sotto_api::ErrorCode;
use sotto_api::realtime::close;
use sotto_client::{ConnectOptions, RealtimeEvent};

fn code(r: Result<impl std::fmt::Debug, sotto_client::Error>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code().unwrap_or_else(|| panic!("no code in {e}")),
    }
}

async fn set(admin: &sotto_client::Client, key: &str, value: serde_json::Value) {
    let mut m = sotto_api::rest::SettingsMap::new();
    m.insert(key.into(), value);
    admin.update_settings(&m).await.expect("settings");
}

#[tokio::test]
async fn setup_link_works_once() {
    let ts = TestServer::start().await;
    let token = ts.server().setup_token.clone().expect("token");
    assert!(ts.server().setup_link().expect("link").contains(&token));
    let mut a = ts.client();
    let r = a.setup(&token, "admin", PW).await.expect("first use works");
    assert!(r.user.is_admin);
    let mut b = ts.client();
    assert_eq!(
        code(b.setup(&token, "admin2", PW).await),
        ErrorCode::InvalidSetupToken
    );
    assert_eq!(
        code(b.setup("0000", "admin3", PW).await),
        ErrorCode::InvalidSetupToken
    );
}

#[tokio::test]
async fn registration_policies_login_logout_and_password_change() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let anon = ts.client();

    // Default: invite only.
    assert_eq!(
        anon.settings().await.expect("settings")["registration.policy"],
        json!("invite_only")
    );
    assert_eq!(
        code(anon.register("alice", PW, None).await),
        ErrorCode::InviteRequired
    );
    assert_eq!(
        code(anon.register("alice", PW, Some("bogus")).await),
        ErrorCode::InvalidInvite
    );
    let invite = admin.create_invite().await.expect("invite");
    anon.register("alice", PW, Some(&invite.token))
        .await
        .expect("register with invite");
    assert_eq!(
        code(anon.register("alice2", PW, Some(&invite.token)).await),
        ErrorCode::InvalidInvite,
        "single use"
    );

    // Open.
    set(&admin, "registration.policy", json!("open")).await;
    anon.register("bob", PW, None)
        .await
        .expect("open registration");
    assert_eq!(
        code(anon.register("bob", PW, None).await),
        ErrorCode::UsernameTaken
    );

    // Closed.
    set(&admin, "registration.policy", json!("closed")).await;
    assert_eq!(
        code(anon.register("carol", PW, None).await),
        ErrorCode::RegistrationClosed
    );

    // Login, me, change password, logout.
    let mut bob = ts.client();
    bob.login("bob", PW).await.expect("login");
    assert_eq!(bob.me().await.expect("me").username, "bob");
    let mut bob2 = ts.client();
    bob2.login("bob", PW).await.expect("second session");
    assert_eq!(
        code(
            bob.change_password("wrong-password", "new-password-1")
                .await
        ),
        ErrorCode::InvalidCredentials
    );
    bob.change_password(PW, "new-password-1")
        .await
        .expect("change");
    assert_eq!(
        code(bob2.me().await),
        ErrorCode::InvalidToken,
        "other sessions revoked"
    );
    bob.me().await.expect("own session survives");
    assert_eq!(
        code(ts.client().login("bob", PW).await),
        ErrorCode::InvalidCredentials
    );
    let mut bob3 = ts.client();
    bob3.login("bob", "new-password-1")
        .await
        .expect("new password works");
    bob.logout().await.expect("logout");
    assert_eq!(code(bob.me().await), ErrorCode::InvalidToken);
    bob3.me().await.expect("unrelated session still fine");
}

#[tokio::test]
async fn cookie_sessions_need_csrf_bearer_sessions_do_not() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    admin
        .admin_create_user("carol", PW, false)
        .await
        .expect("user");
    let mut cookie = ts.client();
    let r = cookie
        .login_cookie("carol", PW)
        .await
        .expect("cookie login");
    assert!(
        r.token.is_none(),
        "cookie logins do not expose the token in the body"
    );
    // Reads need no CSRF token; writes do. A reloaded page recovers the token from the session.
    cookie.me().await.expect("read");
    assert_eq!(
        cookie.session().await.expect("session").csrf_token,
        r.csrf_token
    );
    cookie.set_send_csrf(false);
    assert_eq!(
        code(cookie.create_group("g", &[]).await),
        ErrorCode::CsrfFailed
    );
    cookie.set_send_csrf(true);
    cookie
        .create_group("g", &[])
        .await
        .expect("write with CSRF token");
    // Bearer: no CSRF needed.
    let mut bearer = ts.client();
    bearer.login("carol", PW).await.expect("bearer login");
    bearer.create_group("g2", &[]).await.expect("bearer write");
}

#[tokio::test]
async fn revoking_a_session_closes_its_socket() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let a1 = ts.user(&admin, "dave").await;
    let mut a2 = ts.client();
    a2.login("dave", PW).await.expect("login");
    let mut rt2 = a2
        .connect(ConnectOptions::default())
        .await
        .expect("connect");
    let mut rt1 = a1
        .connect(ConnectOptions::default())
        .await
        .expect("connect");
    let sessions = a1.sessions().await.expect("sessions");
    assert_eq!(sessions.len(), 2);
    assert!(
        sessions
            .iter()
            .any(|s| s.current && Some(s.id) == a1.session_id)
    );
    a1.revoke_session(a2.session_id.expect("sid"))
        .await
        .expect("revoke");
    let ev = expect(&mut rt2, "close", |e| {
        matches!(e, RealtimeEvent::Closed { .. })
    })
    .await;
    assert_eq!(
        ev,
        RealtimeEvent::Closed {
            code: Some(close::SESSION_REVOKED),
            reason: "session revoked".into()
        }
    );
    assert_eq!(code(a2.me().await), ErrorCode::InvalidToken);
    // The other session's socket is untouched.
    rt1.send(&sotto_api::realtime::ClientEvent::Ping { nonce: 7 })
        .expect("ping");
    expect(&mut rt1, "pong", |e| {
        matches!(
            e,
            RealtimeEvent::Event(sotto_api::realtime::ServerEvent::Pong { nonce: 7 })
        )
    })
    .await;
    assert_eq!(code(a1.revoke_session(999_999).await), ErrorCode::NotFound);
}

#[tokio::test]
async fn a_deactivated_user_is_cut_off() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let eve = ts.user(&admin, "eve").await;
    let mut rt = eve
        .connect(ConnectOptions::default())
        .await
        .expect("connect");
    admin.deactivate(eve.user_id()).await.expect("deactivate");
    let ev = expect(&mut rt, "close", |e| {
        matches!(e, RealtimeEvent::Closed { .. })
    })
    .await;
    assert!(matches!(
        ev,
        RealtimeEvent::Closed {
            code: Some(close::DEACTIVATED),
            ..
        }
    ));
    assert_eq!(code(eve.me().await), ErrorCode::InvalidToken);
    assert_eq!(
        code(ts.client().login("eve", PW).await),
        ErrorCode::InvalidCredentials
    );
    assert_eq!(
        code(eve.deactivate(admin.user_id()).await),
        ErrorCode::InvalidToken
    );
    let bob = ts.user(&admin, "bobby").await;
    assert_eq!(
        code(bob.deactivate(admin.user_id()).await),
        ErrorCode::Forbidden
    );
}

#[tokio::test]
async fn a_cross_origin_websocket_upgrade_is_refused() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let opts = |o: &str| ConnectOptions {
        origin: Some(o.to_string()),
        ..ConnectOptions::default()
    };
    let err = admin
        .connect(opts("https://evil.example"))
        .await
        .err()
        .expect("refused");
    assert_eq!(err.code(), Some(ErrorCode::OriginRejected));
    admin
        .connect(opts(&ts.url))
        .await
        .expect("same origin accepted");
    let err = ts
        .client()
        .connect(ConnectOptions::default())
        .await
        .err()
        .expect("anonymous refused");
    assert_eq!(err.code(), Some(ErrorCode::Unauthenticated));
}

/// The status and code of an error answer (HTTP or WebSocket upgrade).
fn status_code(r: Result<impl std::fmt::Debug, sotto_client::Error>) -> (u16, ErrorCode) {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(sotto_client::Error::Api { status, code, .. }) => (status, code),
        Err(e) => panic!("expected an API error, got {e}"),
    }
}

#[tokio::test]
async fn a_token_past_its_idle_lifetime_is_refused_over_http_and_websocket() {
    let ts = TestServer::start_with(|c| c.session_idle_secs = 2).await;
    let admin = ts.admin().await;
    admin
        .admin_create_user("idler", PW, false)
        .await
        .expect("user");
    let mut idler = ts.client();
    idler.login("idler", PW).await.expect("login");
    idler.me().await.expect("fresh session works");
    // Used after more than half its lifetime, the session is refreshed and lives on.
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    idler.me().await.expect("still within its lifetime");
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    idler.me().await.expect("refreshed by the last use");
    idler
        .connect(ConnectOptions::default())
        .await
        .expect("websocket accepted while the session lives");
    // Unused for longer than the idle lifetime, the token is dead everywhere.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        status_code(idler.me().await),
        (401, ErrorCode::InvalidToken)
    );
    assert_eq!(
        status_code(idler.connect(ConnectOptions::default()).await.map(|_| ())),
        (401, ErrorCode::InvalidToken)
    );
}

#[tokio::test]
async fn failed_logins_are_rate_limited() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    set(&admin, "ratelimit.login_per_account_per_min", json!(3)).await;
    admin
        .admin_create_user("frank", PW, false)
        .await
        .expect("user");
    for _ in 0..3 {
        assert_eq!(
            code(ts.client().login("frank", "wrong-password").await),
            ErrorCode::InvalidCredentials
        );
    }
    assert_eq!(
        code(ts.client().login("frank", "wrong-password").await),
        ErrorCode::RateLimited
    );
    assert_eq!(
        code(ts.client().login("frank", PW).await),
        ErrorCode::RateLimited,
        "even the right password"
    );
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_address() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    set(&admin, "ratelimit.login_per_ip_per_min", json!(4)).await;
    for i in 0..4 {
        let r = ts
            .client()
            .login(&format!("nobody{i}"), "wrong-password")
            .await;
        assert_eq!(code(r), ErrorCode::InvalidCredentials);
    }
    // A fifth attempt from the same address is refused whatever the account.
    assert_eq!(
        code(ts.client().login("admin", PW).await),
        ErrorCode::RateLimited
    );
}

#[tokio::test]
async fn parallel_wrong_logins_cannot_outrun_the_limit() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    set(&admin, "ratelimit.login_per_account_per_min", json!(3)).await;
    admin
        .admin_create_user("grace", PW, false)
        .await
        .expect("user");
    // 3 + 9 guesses at once: each is counted before its password is verified, so only the
    // first 3 reach verification and the others are refused.
    let runs_before = ts.server().app().accounts.argon2_runs();
    let guesses = (0..12).map(|_| {
        let mut c = ts.client();
        async move { code(c.login("grace", "wrong-password").await) }
    });
    let codes = futures_join_all(guesses).await;
    let verified = codes
        .iter()
        .filter(|c| **c == ErrorCode::InvalidCredentials)
        .count();
    let limited = codes
        .iter()
        .filter(|c| **c == ErrorCode::RateLimited)
        .count();
    assert_eq!((verified, limited), (3, 9), "{codes:?}");
    assert_eq!(
        ts.server().app().accounts.argon2_runs() - runs_before,
        3,
        "only 3 guesses reached Argon2"
    );
}

/// Runs futures concurrently on the test runtime and collects their outputs in order.
async fn futures_join_all<F>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn overlong_usernames_are_refused_before_the_limiter() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    set(&admin, "ratelimit.login_per_ip_per_min", json!(2)).await;
    let long = "x".repeat(10_000);
    for _ in 0..5 {
        assert_eq!(
            code(ts.client().login(&long, "wrong-password").await),
            ErrorCode::InvalidCredentials
        );
    }
    // None of them counted against the address.
    ts.client().login("admin", PW).await.expect("admin login");
}

#[tokio::test]
async fn each_policy_allows_login_password_change_and_logout() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    for (i, policy) in ["open", "invite_only", "closed"].into_iter().enumerate() {
        set(&admin, "registration.policy", json!(policy)).await;
        let name = format!("user{i}");
        match policy {
            "open" => {
                ts.client()
                    .register(&name, PW, None)
                    .await
                    .expect("open registration");
            }
            "invite_only" => {
                let invite = admin.create_invite().await.expect("invite");
                ts.client()
                    .register(&name, PW, Some(&invite.token))
                    .await
                    .expect("invited");
            }
            _ => {
                assert_eq!(
                    code(ts.client().register(&name, PW, None).await),
                    ErrorCode::RegistrationClosed
                );
                admin
                    .admin_create_user(&name, PW, false)
                    .await
                    .expect("admin creates");
            }
        }
        let mut c = ts.client();
        c.login(&name, PW)
            .await
            .unwrap_or_else(|e| panic!("login under {policy}: {e}"));
        c.change_password(PW, "another-password")
            .await
            .expect("change password");
        c.logout().await.expect("logout");
        assert_eq!(code(c.me().await), ErrorCode::InvalidToken);
        let mut again = ts.client();
        again
            .login(&name, "another-password")
            .await
            .expect("new password");
    }
}

#[tokio::test]
async fn registration_checks_cheap_things_before_hashing_the_password() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let accounts = &ts.server().app().accounts;
    let before = accounts.argon2_runs();
    // Invite only (the default): a bogus invite is refused without an Argon2 run.
    for _ in 0..5 {
        assert_eq!(
            code(ts.client().register("mallory", PW, Some("bogus")).await),
            ErrorCode::InvalidInvite
        );
    }
    // Open: a taken name is refused without one too.
    set(&admin, "registration.policy", json!("open")).await;
    assert_eq!(
        code(ts.client().register("admin", PW, None).await),
        ErrorCode::UsernameTaken
    );
    assert_eq!(accounts.argon2_runs(), before, "no password was hashed");
    ts.client()
        .register("mallory", PW, None)
        .await
        .expect("register");
    assert_eq!(accounts.argon2_runs(), before + 1);
}

#[tokio::test]
async fn registration_and_set_up_are_limited_per_address() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    set(&admin, "registration.policy", json!("open")).await;
    // The admin's own set-up was the first attempt from this address.
    set(&admin, "ratelimit.login_per_ip_per_min", json!(4)).await;
    for i in 0..2 {
        ts.client()
            .register(&format!("user{i}"), PW, None)
            .await
            .expect("register");
    }
    let mut c = ts.client();
    assert_eq!(
        code(c.setup("0000", "admin2", PW).await),
        ErrorCode::InvalidSetupToken
    );
    assert_eq!(
        code(ts.client().register("user9", PW, None).await),
        ErrorCode::RateLimited
    );
    assert_eq!(
        code(c.setup("0000", "admin2", PW).await),
        ErrorCode::RateLimited
    );
    // Logging in is counted separately.
    ts.client().login("user0", PW).await.expect("login");
}

/// Sessions are cached in memory after their first use: every way of ending one must still
/// take effect on the very next request, whichever session is warm in the cache.
#[tokio::test]
async fn a_cached_session_is_refused_at_once_however_it_ends() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let mut bob = ts.client();
    let _ = ts.user(&admin, "bob").await;
    bob.login("bob", PW).await.expect("login");
    let mut bob2 = ts.client();
    bob2.login("bob", PW).await.expect("second session");
    let mut bob3 = ts.client();
    bob3.login("bob", PW).await.expect("third session");
    for _ in 0..3 {
        bob.me().await.expect("warm");
        bob2.me().await.expect("warm");
        bob3.me().await.expect("warm");
    }
    // Revoked by another session.
    bob.revoke_session(bob3.session_id.expect("sid"))
        .await
        .expect("revoke");
    assert_eq!(code(bob3.me().await), ErrorCode::InvalidToken, "revoked");
    bob2.me().await.expect("others unaffected");
    // Password change ends every other session.
    bob.change_password(PW, "new-password-1")
        .await
        .expect("change");
    assert_eq!(code(bob2.me().await), ErrorCode::InvalidToken, "password");
    bob.me().await.expect("own session survives");
    // Logout.
    let mut bob4 = ts.client();
    bob4.login("bob", "new-password-1").await.expect("login");
    bob4.me().await.expect("warm");
    bob4.logout().await.expect("logout");
    assert_eq!(code(bob4.me().await), ErrorCode::InvalidToken, "logout");
    // Deactivation.
    bob.me().await.expect("warm");
    admin.deactivate(bob.user_id()).await.expect("deactivate");
    assert_eq!(code(bob.me().await), ErrorCode::InvalidToken, "deactivated");
    admin.me().await.expect("the admin's own session is fine");
}
