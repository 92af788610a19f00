//! The browser client: how the server serves it, and the client itself in real headless
//! Chromium (Debian's `chromium` + `chromium-driver`, driven over WebDriver).

mod browser_steps;
mod common;
mod webdriver;

use browser_steps::*;

use common::{PW, TestServer};
use serde_json::{Value, json};
use sotto_server::{Config, Server};
use webdriver::Browser;

/// The CSP every page and asset of the client must carry.
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.expect("GET")
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn the_client_is_served_with_types_cache_headers_and_csp() {
    let ts = TestServer::start().await;
    let index = get(&format!("{}/", ts.url)).await;
    assert_eq!(index.status(), 200);
    assert_eq!(header(&index, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&index, "cache-control"), "no-cache");
    assert_eq!(header(&index, "content-security-policy"), CSP);
    assert_eq!(header(&index, "x-content-type-options"), "nosniff");
    let html = index.text().await.expect("body");
    assert!(!html.contains("<script>"), "no inline script");
    // The asset version the page refers to.
    let version = html
        .split("/assets/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("versioned asset URL")
        .to_string();
    assert_eq!(version.len(), 16);

    let setup = get(&format!("{}/setup", ts.url)).await;
    assert_eq!(setup.status(), 200);
    assert_eq!(header(&setup, "cache-control"), "no-cache");

    let web = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/");
    for (file, ty) in [
        ("main.js", "text/javascript; charset=utf-8"),
        ("views/chat.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("pkg/sotto.js", "text/javascript; charset=utf-8"),
        ("pkg/sotto_bg.wasm", "application/wasm"),
    ] {
        let r = get(&format!("{}/assets/{version}/{file}", ts.url)).await;
        assert_eq!(r.status(), 200, "{file}");
        assert_eq!(header(&r, "content-type"), ty, "{file}");
        assert_eq!(
            header(&r, "cache-control"),
            "public, max-age=31536000, immutable",
            "{file}"
        );
        assert_eq!(header(&r, "content-security-policy"), CSP, "{file}");
        let body = r.bytes().await.expect("body");
        let on_disk = std::fs::read(format!("{web}{file}")).expect("file");
        assert_eq!(&body[..], &on_disk[..], "{file} is the committed file");
    }

    for missing in [
        format!("/assets/{version}/nope.js"),
        format!("/assets/{version}/../Cargo.toml"),
        "/assets/0000000000000000/main.js".to_string(),
        "/main.js".to_string(),
        "/web/index.html".to_string(),
        "/api/v1/nope".to_string(),
    ] {
        let r = get(&format!("{}{missing}", ts.url)).await;
        assert_eq!(r.status(), 404, "{missing}");
        let body: Value = r.json().await.expect("JSON error");
        assert_eq!(body["error"]["code"], "route_not_found", "{missing}");
    }
    let post = reqwest::Client::new()
        .post(format!("{}/", ts.url))
        .send()
        .await
        .expect("POST");
    assert_eq!(post.status(), 404);
}

#[tokio::test]
async fn text_and_wasm_assets_are_gzipped_when_the_request_accepts_it() {
    let ts = TestServer::start().await;
    let html = get(&format!("{}/", ts.url))
        .await
        .text()
        .await
        .expect("page");
    let version = html
        .split("/assets/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("versioned asset URL")
        .to_string();
    let web = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/");
    let http = reqwest::Client::new();
    for file in [
        "main.js",
        "views/admin.js",
        "style.css",
        "pkg/sotto.js",
        "pkg/sotto_bg.wasm",
    ] {
        let url = format!("{}/assets/{version}/{file}", ts.url);
        let on_disk = std::fs::read(format!("{web}{file}")).expect("file");

        // Accepted: gzip, smaller, and it decompresses to the committed file.
        let r = http
            .get(&url)
            .header("accept-encoding", "br;q=1.0, gzip;q=0.8")
            .send()
            .await
            .expect("GET gzip");
        assert_eq!(r.status(), 200, "{file}");
        assert_eq!(header(&r, "content-encoding"), "gzip", "{file}");
        assert_eq!(header(&r, "vary"), "accept-encoding", "{file}");
        assert_eq!(header(&r, "content-security-policy"), CSP, "{file}");
        assert_eq!(
            header(&r, "cache-control"),
            "public, max-age=31536000, immutable",
            "{file}"
        );
        let gzipped = r.bytes().await.expect("body");
        assert!(gzipped.len() < on_disk.len(), "{file} is smaller gzipped");
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzipped[..]), &mut plain)
            .expect("gunzip");
        assert!(plain == on_disk, "{file}: gunzipped bytes equal the file");

        // Not accepted (no header, or gzip refused): the file as it is.
        for accept in [None, Some("identity"), Some("gzip;q=0, br")] {
            let req = http.get(&url);
            let req = match accept {
                Some(a) => req.header("accept-encoding", a),
                None => req,
            };
            let r = req.send().await.expect("GET identity");
            assert_eq!(r.status(), 200, "{file} {accept:?}");
            assert_eq!(header(&r, "content-encoding"), "", "{file} {accept:?}");
            assert_eq!(header(&r, "vary"), "accept-encoding", "{file} {accept:?}");
            let body = r.bytes().await.expect("body");
            assert!(
                body[..] == on_disk[..],
                "{file} {accept:?}: the file itself"
            );
        }
    }
}

#[tokio::test]
async fn two_browsers_chat_live_and_reconnect_after_a_restart() {
    let mut ts = TestServer::start().await;
    let a = Browser::launch().await;
    set_up_admin(&a, &ts).await;
    // Bob is created by the admin over the API; the admin UI is not built yet.
    let mut sdk = ts.client();
    sdk.login("admin", PW).await.expect("admin login");
    sdk.admin_create_user("bob", PW, false)
        .await
        .expect("create bob");

    let b = Browser::launch().await;
    log_in(&b, &ts.url, "bob").await;

    // A starts a DM with Bob from the directory; Bob is shown online.
    a.click("#new-dm").await;
    a.wait_for(
        "bob online in the directory",
        "const b = [...document.querySelectorAll('#directory .person')] \
         .find(e => e.textContent === 'bob'); \
         return !!b && !!b.querySelector('.dot.online')",
        json!([]),
    )
    .await;
    a.click_text("#directory .person", None, "bob").await;
    a.wait_for(
        "the DM with bob open",
        "return document.getElementById('room-title')?.textContent === 'bob'",
        json!([]),
    )
    .await;
    let payload = "<img src=x onerror=\"window.__pwned=true\"> hello & <b>bob</b>";
    send(&a, payload).await;

    // Bob's sidebar gets the DM live, with an unread badge and A's presence.
    b.wait_for(
        "the DM with an unread badge",
        "const r = [...document.querySelectorAll('#rooms .room-link')] \
         .find(e => e.querySelector('.room-name').textContent === 'admin'); \
         return !!r && r.querySelector('.badge')?.textContent === '1' \
         && !!r.querySelector('.dot.online')",
        json!([]),
    )
    .await;
    b.click("#rooms .room-link").await;
    wait_message(&b, payload).await;
    b.wait_for(
        "the badge cleared",
        "return document.querySelector('#rooms .badge') === null",
        json!([]),
    )
    .await;

    // Both ways, live.
    send(&b, "hi admin").await;
    wait_message(&a, "hi admin").await;
    send(&a, "second").await;
    wait_message(&b, "second").await;

    // The server restarts on the same address: both tabs reconnect by themselves and catch
    // up with what was sent while they were away, without duplicates.
    let addr = ts.url.trim_start_matches("http://").to_string();
    ts.stop().await;
    for br in [&a, &b] {
        br.wait_for(
            "the tab to notice the restart",
            "return document.getElementById('connection').dataset.status !== 'online'",
            json!([]),
        )
        .await;
    }
    let mut config = Config::for_tests(ts.dir.path());
    config.listen = addr.parse().expect("address");
    let server = Server::start(config).await.expect("restart");
    ts.server = Some(server);
    let mut sdk = ts.client();
    sdk.login("admin", PW).await.expect("admin login");
    let room = sdk.rooms().await.expect("rooms")[0].id;
    sdk.send_text(room, "while you were away")
        .await
        .expect("send");
    for br in [&a, &b] {
        wait_connected(br).await;
        wait_message(br, "while you were away").await;
    }
    send(&b, "after the restart").await;
    wait_message(&a, "after the restart").await;
    for br in [&a, &b] {
        let counts = br
            .exec(
                "const t = [...document.querySelectorAll('#messages .message .text')] \
                 .map(e => e.textContent); \
                 return [t.length, new Set(t).size]",
                json!([]),
            )
            .await;
        assert_eq!(counts, json!([5, 5]), "no message lost or duplicated");
        assert_clean(br).await;
    }
    a.quit().await;
    b.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn off_the_record_from_start_otr_to_end_otr_in_two_browsers() {
    let mut ts = TestServer::start().await;
    let a = Browser::launch().await;
    set_up_admin(&a, &ts).await;
    let mut sdk = ts.client();
    sdk.login("admin", PW).await.expect("admin login");
    sdk.admin_create_user("bob", PW, false)
        .await
        .expect("create bob");
    let b = Browser::launch().await;
    log_in(&b, &ts.url, "bob").await;
    set_up_e2e(&a).await;
    let b_passphrase = set_up_e2e(&b).await;

    // A opens the DM, sends an ordinary message, and starts OTR from the room menu.
    a.click("#new-dm").await;
    a.wait_for(
        "bob in the directory",
        "const b = [...document.querySelectorAll('#directory .person')] \
         .find(e => e.textContent === 'bob'); return !!b",
        json!([]),
    )
    .await;
    a.click_text("#directory .person", None, "bob").await;
    send(&a, "on the record").await;
    b.click("#rooms .room-link").await;
    wait_message(&b, "on the record").await;

    open_otr_panel(&a).await;
    a.click("#otr-start").await;
    wait_otr_state(&a, "offered").await;

    // B sees the invitation naming A and declines; A sees it and tries again; B accepts.
    let invite = b.text(".otr-invitation span").await;
    assert_eq!(invite, "admin wants to start OTR.");
    shot(&b, "otr-invitation").await;
    b.click(".otr-invitation .otr-invite-decline").await;
    wait_otr_state(&a, "declined").await;
    b.wait_for(
        "the invitation to go",
        "return document.querySelector('.otr-invitation') === null",
        json!([]),
    )
    .await;
    a.click("#otr-start").await;
    wait_otr_state(&a, "offered").await;
    assert_eq!(
        b.text(".otr-invitation span").await,
        "admin wants to start OTR."
    );
    b.click(".otr-invitation .otr-invite-accept").await;
    wait_otr_state(&a, "established").await;
    open_otr_panel(&b).await;
    wait_otr_state(&b, "established").await;
    a.element("#otr-refresh").await;
    a.element("#otr-end").await;
    // Both sides show the same safety number.
    let safety_a = a.text("#otr-safety-number").await;
    let safety_b = b.text("#otr-safety-number").await;
    assert_eq!(safety_a, safety_b);
    assert_eq!(safety_a.len(), 71, "12 groups of 5 digits: {safety_a}");

    // Messages both ways carry the bold key icon and reach "delivered".
    send(&a, "off the record one").await;
    assert!(message_is_otr(&a, "off the record one").await);
    assert!(message_is_otr(&b, "off the record one").await);
    a.wait_for(
        "delivered",
        "return [...document.querySelectorAll('#messages .message.otr .delivery')] \
         .some(e => e.textContent === 'delivered')",
        json!([]),
    )
    .await;
    send(&b, "off the record two").await;
    assert!(message_is_otr(&a, "off the record two").await);
    shot(&a, "otr-established").await;
    assert!(!message_is_otr(&b, "on the record").await);

    // B reloads: B's OTR messages are gone and A is told at once.
    shot(&b, "chat").await;
    b.goto(&format!("{}/", ts.url)).await;
    wait_connected(&b).await;
    wait_otr_state(&a, "failed").await;
    assert_eq!(
        a.text("#otr-state").await,
        "bob left OTR (reloaded or closed the page). Use Refresh Keys to start again."
    );
    b.click("#rooms .room-link").await;
    wait_message(&b, "on the record").await;
    let otr_left = b
        .exec(
            "return document.querySelectorAll('#messages .message.otr').length",
            json!([]),
        )
        .await;
    assert_eq!(otr_left, 0, "a reload removes the OTR messages");

    // B enters the E2E key again; A refreshes the keys; B accepts; OTR works again.
    b.click("#e2e-button").await;
    b.element("#e2e-passphrase-input").await;
    shot(&b, "e2e-unlock").await;
    b.click("#e2e-button").await;
    unlock_e2e(&b, &b_passphrase).await;
    a.click("#otr-refresh").await;
    assert_eq!(
        b.text(".otr-invitation span").await,
        "admin wants to start OTR."
    );
    b.click(".otr-invitation .otr-invite-accept").await;
    wait_otr_state(&a, "established").await;
    send(&b, "after the refresh").await;
    assert!(message_is_otr(&a, "after the refresh").await);
    assert!(message_is_otr(&b, "after the refresh").await);
    open_otr_panel(&b).await;

    // A has typed text when B clicks End OTR: the text is not sent as an ordinary message
    // until A chooses to (a second Send).
    a.type_into("#composer-input", "typed while off the record")
        .await;
    b.click("#otr-end").await;
    wait_otr_state(&b, "ended").await;
    wait_otr_state(&a, "ended").await;
    assert_eq!(
        a.text("#otr-state").await,
        "bob ended OTR. Messages are stored again."
    );
    a.click("#send").await;
    a.wait_for(
        "the warning",
        "return document.getElementById('send-error').textContent",
        json!([]),
    )
    .await;
    let kept = a
        .exec(
            "return document.getElementById('composer-input').value",
            json!([]),
        )
        .await;
    assert_eq!(
        kept, "typed while off the record",
        "the text stays in the composer"
    );
    a.click("#send").await;
    assert!(!message_is_otr(&a, "typed while off the record").await);
    assert!(!message_is_otr(&b, "typed while off the record").await);

    // End OTR from the other side, then the next message is stored and shown without the icon.
    a.click("#room-menu").await;
    a.click("#menu-otr").await;
    a.click("#otr-start").await;
    b.click(".otr-invitation .otr-invite-accept").await;
    wait_otr_state(&a, "established").await;
    a.click("#otr-end").await;
    wait_otr_state(&a, "ended").await;
    wait_otr_state(&b, "ended").await;
    send(&a, "back on the record").await;
    assert!(!message_is_otr(&b, "back on the record").await);

    // The server stored the ordinary messages only.
    let room = sdk.rooms().await.expect("rooms")[0].id;
    let stored: Vec<String> = sdk
        .history(room, None, None, None)
        .await
        .expect("history")
        .messages
        .into_iter()
        .filter_map(|m| match m.body {
            sotto_api::rest::MessageBody::Text { text } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(
        stored,
        [
            "on the record",
            "typed while off the record",
            "back on the record"
        ]
    );

    for br in [&a, &b] {
        // Neither remembers the E2E key on this device: nothing at all is stored.
        assert_eq!(
            storage_inventory(br).await,
            empty_storage(),
            "nothing in browser storage"
        );
        assert_clean(br).await;
    }

    // B reloads and does not enter the E2E key: online but locked. Start OTR says so, and
    // can be tried again.
    b.goto(&format!("{}/", ts.url)).await;
    wait_connected(&b).await;
    a.click("#otr-start").await;
    assert_eq!(
        a.text("#otr-refusal").await,
        "bob is online but has not entered their E2E key."
    );
    wait_otr_state(&a, "not_started").await;

    // B closes the browser: offline.
    b.quit().await;
    a.wait_for(
        "bob offline",
        "return !!document.querySelector('#rooms .room-link .dot.offline')",
        json!([]),
    )
    .await;
    a.click("#otr-start").await;
    a.wait_for(
        "the offline refusal",
        "return document.getElementById('otr-refusal')?.textContent === \
         'bob is offline. OTR needs both of you online.'",
        json!([]),
    )
    .await;
    assert_clean(&a).await;
    a.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn payloads_stay_text_and_otr_is_offered_only_in_one_to_one_dms() {
    let mut ts = TestServer::start().await;
    let admin = ts.admin().await;
    let bob = ts.user(&admin, "bob").await;
    let carol = ts.user(&admin, "carol").await;
    let bob_id = bob.me().await.expect("me").id;
    let carol_id = carol.me().await.expect("me").id;
    let dm = admin.dm(bob_id).await.expect("dm");
    admin.multi_dm(&[bob_id, carol_id]).await.expect("multi-dm");
    admin.create_group("plain group", &[]).await.expect("group");
    for name in PAYLOADS {
        admin.create_group(name, &[bob_id]).await.expect("group");
    }
    // Usernames cannot carry markup: the server refuses every payload as a name.
    for name in PAYLOADS {
        let refused = admin
            .admin_create_user(name, PW, false)
            .await
            .expect_err("a markup username is refused");
        assert_eq!(
            refused.code(),
            Some(sotto_api::ErrorCode::InvalidUsername),
            "{name}"
        );
    }
    for p in PAYLOADS {
        bob.send_text(dm.id, p).await.expect("send");
    }

    let a = Browser::launch().await;
    a.goto(&format!("{}/", ts.url)).await;
    a.exec(
        "window.__pwnedCalls = 0; window.__pwned = () => { window.__pwnedCalls++; }",
        json!([]),
    )
    .await;
    log_in(&a, &ts.url, "admin").await;
    a.exec(
        "window.__pwnedCalls = 0; window.__pwned = () => { window.__pwnedCalls++; }",
        json!([]),
    )
    .await;

    // Group names are shown as text in the sidebar and as the room's title.
    a.wait_for(
        "every group name in the sidebar, as text",
        "const shown = new Set([...document.querySelectorAll('#rooms .room-name')] \
         .map(e => e.textContent)); \
         return arguments[0].every(name => shown.has(name))",
        json!([PAYLOADS]),
    )
    .await;
    for name in &PAYLOADS[..8] {
        open_room(&a, name).await;
        assert!(!menu_offers_otr(&a).await, "a group has no OTR entry");
    }

    // Messages are shown as text, exactly.
    open_room(&a, "bob").await;
    wait_message(&a, PAYLOADS[PAYLOADS.len() - 1]).await;
    let shown = a
        .exec(
            "return [...document.querySelectorAll('#messages .message .text')] \
             .map(e => e.textContent)",
            json!([]),
        )
        .await;
    assert_eq!(shown, json!(PAYLOADS));
    assert!(menu_offers_otr(&a).await, "a 1:1 DM offers OTR");

    // A multi-user DM and a group offer no OTR.
    open_room(&a, "bob, carol").await;
    assert!(
        !menu_offers_otr(&a).await,
        "a multi-user DM has no OTR entry"
    );
    open_room(&a, "plain group").await;
    assert!(!menu_offers_otr(&a).await, "a group has no OTR entry");

    // The admin turns OTR off: the entry disappears live.
    open_room(&a, "bob").await;
    assert!(menu_offers_otr(&a).await);
    let mut off = sotto_api::rest::SettingsMap::new();
    off.insert("otr.enabled".into(), json!(false));
    admin.update_settings(&off).await.expect("settings");
    a.wait_for(
        "the OTR entry to disappear",
        "return document.getElementById('menu-otr') === null",
        json!([]),
    )
    .await;

    let calls = a.exec("return window.__pwnedCalls", json!([])).await;
    assert_eq!(calls, 0, "no payload ran");
    assert_clean(&a).await;
    a.quit().await;

    // The register form shows the refusal of a markup username as text.
    set_policy(&admin, "open").await;
    let b = Browser::launch().await;
    b.goto(&format!("{}/register", ts.url)).await;
    b.exec(
        "window.__pwnedCalls = 0; window.__pwned = () => { window.__pwnedCalls++; }",
        json!([]),
    )
    .await;
    for name in &PAYLOADS[..4] {
        submit_register(&b, name, PW, PW).await;
        let shown = register_error(&b, "invalid_username").await;
        assert!(shown.contains("usernames are"), "{shown}");
        let typed = b
            .exec(
                "return document.querySelector('#register-form input[name=username]').value",
                json!([]),
            )
            .await;
        assert_eq!(typed, json!(name), "the typed name is kept");
    }
    assert_eq!(b.exec("return window.__pwnedCalls", json!([])).await, 0);
    assert_clean(&b).await;
    b.quit().await;
    ts.stop().await;
}

#[tokio::test]
async fn an_invitation_shows_in_every_tab_until_one_answers_it() {
    let mut ts = TestServer::start().await;
    let admin = ts.admin().await;
    let _bob = ts.user(&admin, "bob").await;
    let a = Browser::launch().await;
    log_in(&a, &ts.url, "admin").await;
    let b1 = Browser::launch().await;
    log_in(&b1, &ts.url, "bob").await;
    let b2 = Browser::launch().await;
    log_in(&b2, &ts.url, "bob").await;
    set_up_e2e(&a).await;
    let passphrase = set_up_e2e(&b1).await;
    unlock_e2e(&b2, &passphrase).await;

    a.click("#new-dm").await;
    a.click_text("#directory .person", None, "bob").await;
    send(&a, "hello both tabs").await;
    for b in [&b1, &b2] {
        open_room(b, "admin").await;
        wait_message(b, "hello both tabs").await;
    }
    open_otr_panel(&a).await;

    // An invitation nobody answers times out on both sides; A can try again.
    let mut short = sotto_api::rest::SettingsMap::new();
    short.insert("otr.invite_timeout_secs".into(), json!(5));
    admin.update_settings(&short).await.expect("settings");
    a.click("#otr-start").await;
    for b in [&b1, &b2] {
        b.element(".otr-invitation").await;
    }
    wait_otr_state(&a, "timed_out").await;
    assert_eq!(a.text("#otr-state").await, "The invitation timed out.");
    for b in [&b1, &b2] {
        b.wait_for(
            "the expired invitation to go",
            "return document.querySelector('.otr-invitation') === null",
            json!([]),
        )
        .await;
    }
    short.insert("otr.invite_timeout_secs".into(), json!(60));
    admin.update_settings(&short).await.expect("settings");
    a.click("#otr-start").await;

    // Both of B's tabs show the invitation, and say so in the title.
    for b in [&b1, &b2] {
        assert_eq!(
            b.text(".otr-invitation span").await,
            "admin wants to start OTR."
        );
        let title = b.exec("return document.title", json!([])).await;
        assert_eq!(title, "(OTR invitation) Sotto");
    }
    // The first tab accepts; the invitation leaves the second one.
    b1.click(".otr-invitation .otr-invite-accept").await;
    wait_otr_state(&a, "established").await;
    b2.wait_for(
        "the invitation to leave the other tab",
        "return document.querySelector('.otr-invitation') === null \
         && document.title === 'Sotto'",
        json!([]),
    )
    .await;

    // Only the accepting tab gets the conversation.
    send(&a, "only for one tab").await;
    assert!(message_is_otr(&b1, "only for one tab").await);
    send(&b1, "from the accepting tab").await;
    assert!(message_is_otr(&a, "from the accepting tab").await);
    let in_b2 = b2
        .exec(
            "return document.querySelectorAll('#messages .message.otr').length",
            json!([]),
        )
        .await;
    assert_eq!(in_b2, 0, "the other tab holds nothing of the session");

    // The admin turns OTR off: the running session ends on both sides, saying why, and the
    // menu entry goes.
    open_otr_panel(&b1).await;
    wait_otr_state(&b1, "established").await;
    let mut off = sotto_api::rest::SettingsMap::new();
    off.insert("otr.enabled".into(), json!(false));
    admin.update_settings(&off).await.expect("settings");
    wait_otr_state(&a, "failed").await;
    assert_eq!(
        a.text("#otr-state").await,
        "The server ended OTR (an admin turned it off or an account was deactivated)."
    );
    a.wait_for(
        "the OTR entry to go",
        "document.getElementById('room-menu').click(); \
         const gone = document.getElementById('menu-otr') === null; \
         document.getElementById('room-menu').click(); return gone",
        json!([]),
    )
    .await;
    wait_otr_state(&b1, "failed").await;
    for br in [&a, &b1, &b2] {
        assert_clean(br).await;
    }
    a.quit().await;
    b1.quit().await;
    b2.quit().await;
    ts.stop().await;
}
