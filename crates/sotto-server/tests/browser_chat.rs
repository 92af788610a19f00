//! The browser client's accounts, conversations, search and sessions, in real headless
//! Chromium against a real server: registration under each policy (open, invite link, closed),
//! multi-user DMs and named groups that appear live for every member, message search, and
//! sessions — revoking one, a cookie that no longer works, a refused socket and Log out each
//! leave the page unable to act as the user.

mod browser_steps;
mod common;
mod webdriver;

use browser_steps::*;

use common::{PW, TestServer};
use serde_json::{Value, json};
use sotto_api::rest::MessageBody;
use sotto_client::Client;
use sotto_server::{Config, Server};
use webdriver::Browser;

/// The registration sentence or button the log-in page shows, once it shows one.
async fn registration_info(b: &Browser) -> Value {
    b.wait_for(
        "the registration policy on the log-in page",
        "const i = document.getElementById('registration-info'); \
         return !!i && !!document.getElementById('login-form') && \
           { policy: i.dataset.policy, text: i.textContent, \
             create: document.getElementById('create-account') !== null }",
        json!([]),
    )
    .await
}

/// The texts of the stored messages of a room, as the server has them.
async fn stored_texts(c: &Client, room: sotto_api::RoomId) -> Vec<String> {
    c.history(room, None, None, Some(100))
        .await
        .expect("history")
        .messages
        .into_iter()
        .filter_map(|m| match m.body {
            MessageBody::Text { text } => Some(text),
            _ => None,
        })
        .collect()
}

/// Opens the directory and starts the 1:1 DM with `name` by clicking the name.
async fn start_dm(b: &Browser, name: &str) {
    b.click("#new-dm").await;
    b.click_text("#directory .person", None, name).await;
    b.wait_for(
        &format!("the DM with {name} open"),
        "return document.getElementById('room-title')?.textContent === arguments[0]",
        json!([name]),
    )
    .await;
}

/// Ticks the people with these ids in the directory (opening it first).
async fn tick(b: &Browser, ids: &[sotto_api::UserId]) {
    b.click("#new-dm").await;
    for id in ids {
        b.click(&format!("#directory input.pick[data-user-id=\"{id}\"]"))
            .await;
    }
}

/// Waits for the sidebar to list a room named `name` (with `badge` unread, when given).
async fn wait_room(b: &Browser, name: &str, badge: Option<&str>) {
    b.wait_for(
        &format!("room {name:?} in the sidebar (badge {badge:?})"),
        "const r = [...document.querySelectorAll('#rooms .room-link')] \
         .find(e => e.querySelector('.room-name').textContent === arguments[0]); \
         if (!r) return false; \
         const b = r.querySelector('.badge'); \
         return arguments[1] === null || (!!b && b.textContent === arguments[1])",
        json!([name, badge]),
    )
    .await;
}

/// Marks the document, so a later check can tell the page was not reloaded meanwhile.
async fn mark_document(b: &Browser) {
    b.exec("window.__sameDocument = true", json!([])).await;
}

async fn same_document(b: &Browser) -> bool {
    b.exec("return window.__sameDocument === true", json!([]))
        .await
        == true
}

/// Waits for the log-in page to replace the chat by itself, and returns its notice.
async fn wait_bounced(b: &Browser) -> String {
    b.wait_for(
        "the log-in page",
        "return !!document.getElementById('login-form') && !document.getElementById('chat') \
           && (document.getElementById('login-notice')?.textContent ?? 'no notice')",
        json!([]),
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// Logs in on the log-in page the tab already shows (no navigation, so no reload).
async fn log_in_here(b: &Browser, name: &str) {
    b.type_into("#login-form input[name=username]", name).await;
    b.type_into("#login-form input[name=password]", PW).await;
    b.click("#login-form button[type=submit]").await;
    wait_connected(b).await;
    assert_eq!(b.text("#me").await, name);
}

#[tokio::test]
async fn registration_follows_the_policy_open_invite_only_and_closed() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;

    // Invite links point at /register: the server answers it with the page.
    let page = reqwest::get(format!("{}/register", ts.url))
        .await
        .expect("GET /register");
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["content-type"].to_str().ok(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        page.headers()["cache-control"].to_str().ok(),
        Some("no-cache")
    );

    // Open: the log-in page offers "Create an account"; the server's refusals are shown.
    set_policy(&admin, "open").await;
    let a = Browser::launch().await;
    a.goto(&format!("{}/", ts.url)).await;
    let info = registration_info(&a).await;
    assert_eq!(info["policy"], "open");
    assert_eq!(info["create"], true);
    a.click("#create-account").await;
    a.element("#register-form").await;
    assert_eq!(
        a.exec("return location.pathname", json!([])).await,
        "/register"
    );
    submit_register(&a, "dora", "short", "short").await;
    let weak = register_error(&a, "weak_password").await;
    assert!(weak.contains("at least 8 characters"), "{weak}");
    submit_register(&a, "dora", PW, "something else").await;
    register_error(&a, "password_mismatch").await;
    submit_register(&a, "admin", PW, PW).await;
    assert_eq!(
        register_error(&a, "username_taken").await,
        "This username is taken. Pick another one."
    );
    shot(&a, "register").await;
    submit_register(&a, "Dora!", PW, PW).await;
    register_error(&a, "invalid_username").await;
    submit_register(&a, "dora", PW, PW).await;
    wait_connected(&a).await;
    assert_eq!(a.text("#me").await, "dora");
    assert_eq!(a.exec("return location.pathname", json!([])).await, "/");

    // The new account chats.
    start_dm(&a, "admin").await;
    send(&a, "hello from a new account").await;
    let dm = admin.rooms().await.expect("rooms")[0].id;
    assert_eq!(
        stored_texts(&admin, dm).await,
        vec!["hello from a new account"]
    );

    // Invite only: no button on the log-in page; an invite link registers once.
    set_policy(&admin, "invite_only").await;
    let b = Browser::launch().await;
    b.goto(&format!("{}/", ts.url)).await;
    let info = registration_info(&b).await;
    assert_eq!(info["policy"], "invite_only");
    assert_eq!(info["create"], false);
    assert!(
        info["text"].as_str().unwrap_or_default().contains("invite"),
        "{info}"
    );
    let invite = admin.create_invite().await.expect("invite");
    assert!(invite.url.starts_with(&format!("{}/register#", ts.url)));
    b.goto(&invite.url).await;
    b.element("#register-invite").await;
    let href = b.exec("return location.href", json!([])).await;
    assert_eq!(
        href,
        format!("{}/register", ts.url),
        "the invite token leaves the address bar"
    );
    submit_register(&b, "erin", PW, PW).await;
    wait_connected(&b).await;
    assert_eq!(b.text("#me").await, "erin");
    start_dm(&b, "dora").await;
    send(&b, "hi dora, erin here").await;
    wait_room(&a, "erin", Some("1")).await;

    // The same link again, in a new tab while Erin is logged in: she must log out first,
    // which sends her other tab to the log-in page; then the used link is refused, and the
    // page says why.
    let erin_tab = b.window().await;
    b.new_tab().await;
    b.goto(&invite.url).await;
    let first = b.text("#logout-first").await;
    assert!(first.contains("logged in as erin"), "{first}");
    b.click("#logout-and-register").await;
    submit_register(&b, "frank", PW, PW).await;
    let used = register_error(&b, "invalid_invite").await;
    assert!(used.contains("used already"), "{used}");
    let register_tab = b.window().await;
    b.switch_to(&erin_tab).await;
    wait_bounced(&b).await;
    b.switch_to(&register_tab).await;
    // Without a link there is no form, only the reason.
    b.goto(&format!("{}/register", ts.url)).await;
    let refusal = b.text("#register-refusal").await;
    assert!(refusal.contains("invite link"), "{refusal}");
    assert_eq!(
        b.exec(
            "return document.getElementById('register-form') === null",
            json!([])
        )
        .await,
        true
    );

    // Closed: no sign-up anywhere, even with a fresh invite link.
    set_policy(&admin, "closed").await;
    b.goto(&format!("{}/", ts.url)).await;
    let info = registration_info(&b).await;
    assert_eq!(info["policy"], "closed");
    assert_eq!(info["create"], false);
    assert!(
        info["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Registration is closed"),
        "{info}"
    );
    let fresh = admin.create_invite().await.expect("invite");
    b.goto(&fresh.url).await;
    let refusal = b.text("#register-refusal").await;
    assert!(refusal.contains("closed"), "{refusal}");
    assert_eq!(
        b.exec(
            "return document.getElementById('register-form') === null",
            json!([])
        )
        .await,
        true
    );
    let names: Vec<String> = admin
        .users()
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.user.username)
        .collect();
    assert_eq!(names.len(), 3, "admin, dora and erin only: {names:?}");

    for br in [&a, &b] {
        assert_clean(br).await;
    }
    a.quit().await;
    b.quit().await;
}

#[tokio::test]
async fn multi_user_dms_and_named_groups_appear_live_for_every_member() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let mut ids = Vec::new();
    for name in ["alice", "bob", "carol"] {
        ids.push(
            admin
                .admin_create_user(name, PW, false)
                .await
                .expect("create user")
                .id,
        );
    }
    let (bob, carol) = (ids[1], ids[2]);
    let (a, b, c) = tokio::join!(Browser::launch(), Browser::launch(), Browser::launch());
    tokio::join!(
        log_in(&a, &ts.url, "alice"),
        log_in(&b, &ts.url, "bob"),
        log_in(&c, &ts.url, "carol"),
    );

    // Alice ticks Bob and Carol: a multi-user DM.
    tick(&a, &[bob, carol]).await;
    assert_eq!(a.text("#selection-summary").await, "Selected: bob, carol");
    assert_eq!(a.text("#start-conversation").await, "Start group message");
    shot(&a, "new-conversation").await;
    a.click("#start-conversation").await;
    a.wait_for(
        "the multi-user DM open",
        "return document.getElementById('room-title')?.textContent === 'bob, carol'",
        json!([]),
    )
    .await;
    // It reaches the others' sidebars live, before anyone writes.
    wait_room(&b, "alice, carol", None).await;
    wait_room(&c, "alice, bob", None).await;
    send(&a, "hello you two").await;
    wait_room(&b, "alice, carol", Some("1")).await;
    wait_room(&c, "alice, bob", Some("1")).await;
    open_room(&b, "alice, carol").await;
    wait_message(&b, "hello you two").await;
    send(&b, "bob answers").await;
    open_room(&c, "alice, bob").await;
    wait_message(&c, "bob answers").await;
    wait_message(&a, "bob answers").await;

    // Bob names a group with Alice and Carol.
    tick(&b, &[ids[0], carol]).await;
    b.type_into("#group-name", "Launch plans").await;
    assert_eq!(b.text("#start-conversation").await, "Create group");
    b.click("#start-conversation").await;
    b.wait_for(
        "the group open",
        "return document.getElementById('room-title')?.textContent === 'Launch plans'",
        json!([]),
    )
    .await;
    wait_room(&a, "Launch plans", None).await;
    wait_room(&c, "Launch plans", None).await;
    send(&b, "the launch is on friday").await;
    wait_room(&a, "Launch plans", Some("1")).await;
    open_room(&a, "Launch plans").await;
    wait_message(&a, "the launch is on friday").await;
    open_room(&c, "Launch plans").await;
    wait_message(&c, "the launch is on friday").await;
    send(&c, "carol agrees").await;
    wait_message(&a, "carol agrees").await;
    wait_message(&b, "carol agrees").await;

    // The server holds exactly these rooms for Carol: a multi-user DM and a named group.
    let mut carol_sdk = ts.client();
    carol_sdk.login("carol", PW).await.expect("login");
    let mut kinds: Vec<String> = carol_sdk
        .rooms()
        .await
        .expect("rooms")
        .into_iter()
        .map(|r| format!("{:?} {}", r.kind, r.name.unwrap_or_default()))
        .collect();
    kinds.sort();
    assert_eq!(kinds, vec!["Group Launch plans", "MultiDm "]);

    for br in [&a, &b, &c] {
        assert_clean(br).await;
    }
    a.quit().await;
    b.quit().await;
    c.quit().await;
}

#[tokio::test]
async fn search_lists_hits_as_text_and_opens_the_room() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let alice = ts.user(&admin, "alice").await;
    let bob = ts.user(&admin, "bob").await;
    let bob_id = bob.me().await.expect("me").id;
    let alice_id = alice.me().await.expect("me").id;
    let dm = alice.dm(bob_id).await.expect("dm");
    alice
        .send_text(dm.id, "nothing to see here")
        .await
        .expect("send");
    let group = bob
        .create_group("Fruit stand", &[alice_id])
        .await
        .expect("group");
    bob.send_text(group.id, "the pineapple is ripe today")
        .await
        .expect("send");
    let payload = "<img src=x onerror=window.__pwned()> pineapple & <b>more</b>";
    bob.send_text(group.id, payload).await.expect("send");
    // A room Alice is not in: never found for her.
    let secret = bob.create_group("Secret", &[]).await.expect("group");
    bob.send_text(secret.id, "pineapple secret")
        .await
        .expect("send");

    let a = Browser::launch().await;
    log_in(&a, &ts.url, "alice").await;
    open_room(&a, "bob").await;

    a.type_into("#search-input", "Pineapple").await;
    a.click("#search-submit").await;
    let hits = a
        .wait_for(
            "two search results",
            "const hits = [...document.querySelectorAll('#search-results .search-hit')]; \
             return hits.length === 2 && hits.map(h => ({ \
               room: h.querySelector('.hit-room').textContent, \
               author: h.querySelector('.hit-author').textContent, \
               time: !!h.querySelector('time[datetime]')?.textContent, \
               snippet: h.querySelector('.hit-snippet').textContent, \
               marked: [...h.querySelectorAll('mark')].map(m => m.textContent) }))",
            json!([]),
        )
        .await;
    let hits = hits.as_array().expect("hits");
    let mut snippets: Vec<&str> = hits
        .iter()
        .map(|h| h["snippet"].as_str().unwrap_or_default())
        .collect();
    snippets.sort();
    assert_eq!(snippets, vec![payload, "the pineapple is ripe today"]);
    for h in hits {
        assert_eq!(h["room"], "Fruit stand", "{h}");
        assert_eq!(h["author"], "bob", "{h}");
        assert_eq!(h["time"], true, "{h}");
        assert_eq!(h["marked"], json!(["pineapple"]), "{h}");
    }
    assert_eq!(a.text("#search-status").await, "2 results");
    shot(&a, "search").await;

    // Choosing a result opens its room.
    a.click_text(
        "#search-results .search-hit",
        Some(".hit-snippet"),
        "the pineapple is ripe today",
    )
    .await;
    a.wait_for(
        "the group open",
        "return document.getElementById('room-title')?.textContent === 'Fruit stand'",
        json!([]),
    )
    .await;
    wait_message(&a, "the pineapple is ripe today").await;

    // Nothing found, and the server's refusal, are both said.
    a.exec(
        "document.getElementById('search-input').value = ''",
        json!([]),
    )
    .await;
    a.type_into("#search-input", "zucchini").await;
    a.click("#search-submit").await;
    a.wait_for(
        "nothing found",
        "return document.getElementById('search-status').textContent === 'Nothing found.' \
           && document.querySelectorAll('#search-results .search-hit').length === 0",
        json!([]),
    )
    .await;
    a.exec(
        "document.getElementById('search-input').value = ''",
        json!([]),
    )
    .await;
    a.type_into("#search-input", &"x".repeat(501)).await;
    a.click("#search-submit").await;
    a.wait_for(
        "the server's error",
        "return document.getElementById('search-error').textContent \
           === 'queries are at most 500 bytes'",
        json!([]),
    )
    .await;

    // At 360 px the results and the directory fit the width.
    a.set_window_size(360, 800).await;
    a.click("#search-clear").await;
    a.type_into("#search-input", "pineapple").await;
    a.click("#search-submit").await;
    a.click("#new-dm").await;
    a.wait_for(
        "results and directory without sideways scrolling",
        "return document.querySelectorAll('#search-results .search-hit').length === 2 \
           && document.querySelector('#directory .person') !== null \
           && document.documentElement.scrollWidth <= window.innerWidth",
        json!([]),
    )
    .await;
    assert_clean(&a).await;
    a.quit().await;
}

#[tokio::test]
async fn a_revoked_session_bounces_its_browser_to_log_in_at_once() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let alice = admin
        .admin_create_user("alice", PW, false)
        .await
        .expect("create alice");
    let (one, two) = tokio::join!(Browser::launch(), Browser::launch());
    tokio::join!(
        log_in(&one, &ts.url, "alice"),
        log_in(&two, &ts.url, "alice")
    );

    // Browser two has a conversation open and text typed.
    start_dm(&two, "admin").await;
    two.type_into("#composer-input", "typed before the revoke")
        .await;
    mark_document(&two).await;

    // Browser one lists both sessions, itself marked, and revokes the other.
    one.click("#sessions-button").await;
    one.wait_for(
        "the focus on the panel's heading",
        "return document.activeElement?.id === 'sessions-title'",
        json!([]),
    )
    .await;
    let listed = one
        .wait_for(
            "two sessions",
            "const s = [...document.querySelectorAll('#sessions .session')]; \
             return s.length === 2 && s.map(e => ({ \
               current: e.dataset.current === 'true', \
               marked: e.querySelector('.session-current')?.textContent ?? null, \
               agent: e.querySelector('.session-agent').textContent, \
               revoke: e.querySelector('button.revoke') !== null }))",
            json!([]),
        )
        .await;
    assert_eq!(listed[0]["current"], true, "this browser first: {listed}");
    assert_eq!(listed[0]["marked"], "This browser");
    assert_eq!(listed[0]["revoke"], false, "no Revoke for this browser");
    assert_eq!(listed[1]["current"], false);
    assert_eq!(listed[1]["revoke"], true);
    shot(&one, "sessions").await;
    assert!(
        listed[1]["agent"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Chrome"),
        "{listed}"
    );
    one.click("#sessions .session:not([data-current]) button.revoke")
        .await;
    one.wait_for(
        "one session left",
        "return document.querySelectorAll('#sessions .session').length === 1",
        json!([]),
    )
    .await;
    // Escape closes the panel and gives the focus back to its button.
    one.press_keys(webdriver::keys::ESCAPE).await;
    one.wait_for(
        "the panel closed",
        "return document.getElementById('sessions-panel').hidden            && document.activeElement?.id === 'sessions-button'",
        json!([]),
    )
    .await;

    // Browser two goes to the log-in page by itself; its chat, typed text and all are gone.
    let notice = wait_bounced(&two).await;
    assert!(notice.contains("ended"), "{notice}");
    assert!(same_document(&two).await, "the page was not reloaded");
    let left = two
        .exec(
            "return [document.getElementById('composer-input'), \
                     document.getElementById('rooms')].every(e => e === null)",
            json!([]),
        )
        .await;
    assert_eq!(left, true);
    let dm = admin.rooms().await.expect("rooms")[0].id;
    assert!(stored_texts(&admin, dm).await.is_empty());

    // Browser one is unaffected and logging in again in two works in the same page.
    open_room(&one, "admin").await;
    send(&one, "one still works").await;
    log_in_here(&two, "alice").await;
    open_room(&two, "admin").await;
    wait_message(&two, "one still works").await;
    send(&two, "two is back").await;
    wait_message(&one, "two is back").await;
    assert_eq!(
        stored_texts(&admin, dm).await,
        vec!["one still works", "two is back"]
    );

    // Deactivated: every browser of alice goes to the log-in page, saying so.
    admin.deactivate(alice.id).await.expect("deactivate");
    for br in [&one, &two] {
        let notice = wait_bounced(br).await;
        assert_eq!(notice, "Your account has been deactivated.");
        assert_clean(br).await;
    }
    one.quit().await;
    two.quit().await;
}

#[tokio::test]
async fn a_page_without_a_valid_session_cannot_act() {
    let mut ts = TestServer::start().await;
    let admin = ts.admin().await;
    admin
        .admin_create_user("alice", PW, false)
        .await
        .expect("create alice");
    let b = Browser::launch().await;
    log_in(&b, &ts.url, "alice").await;
    start_dm(&b, "admin").await;
    let dm = admin.rooms().await.expect("rooms")[0].id;
    mark_document(&b).await;

    // The cookie is gone (as when it expires) while the socket is still open: the first API
    // call answers 401, the page stops, and the message is not stored.
    b.delete_cookie("sotto_session").await;
    b.type_into("#composer-input", "sent without a session")
        .await;
    b.click("#send").await;
    let notice = wait_bounced(&b).await;
    assert!(notice.contains("ended"), "{notice}");
    assert!(same_document(&b).await, "the page was not reloaded");
    assert!(stored_texts(&admin, dm).await.is_empty());

    // The socket is refused: after a server restart the tab reconnects without a cookie,
    // asks the API, and goes to the log-in page.
    log_in_here(&b, "alice").await;
    open_room(&b, "admin").await;
    b.delete_cookie("sotto_session").await;
    let addr = ts.url.trim_start_matches("http://").to_string();
    ts.stop().await;
    b.wait_for(
        "the tab to notice the restart",
        "return document.getElementById('connection').dataset.status !== 'online'",
        json!([]),
    )
    .await;
    let mut config = Config::for_tests(ts.dir.path());
    config.listen = addr.parse().expect("address");
    ts.server = Some(Server::start(config).await.expect("restart"));
    wait_bounced(&b).await;
    assert!(same_document(&b).await, "the page was not reloaded");

    // Log out in one tab: the other tab of the same browser (same cookie, same session)
    // goes to the log-in page by itself and its requests are refused.
    log_in_here(&b, "alice").await;
    let first = b.window().await;
    let second = b.new_tab().await;
    b.goto(&format!("{}/", ts.url)).await;
    wait_connected(&b).await;
    mark_document(&b).await;
    b.switch_to(&first).await;
    b.click("#logout").await;
    let notice = wait_bounced(&b).await;
    assert_eq!(
        notice, "no notice",
        "logging out is not news to the one who did it"
    );
    b.switch_to(&second).await;
    let notice = wait_bounced(&b).await;
    assert!(notice.contains("ended"), "{notice}");
    assert!(same_document(&b).await, "the page was not reloaded");
    let status = b
        .wait_for(
            "the API's answer",
            "if (window.__probe === undefined) { window.__probe = null; \
               fetch('/api/v1/rooms').then(r => { window.__probe = r.status; }); } \
             return window.__probe",
            json!([]),
        )
        .await;
    assert_eq!(status, 401);
    assert!(stored_texts(&admin, dm).await.is_empty());
    assert_clean(&b).await;
    b.quit().await;
    ts.stop().await;
}
