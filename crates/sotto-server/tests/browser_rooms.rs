//! End-to-end encrypted rooms in the browser, in real headless Chromium against a real server:
//! the "Encrypted" box and its server default, sending and reading (the thin E2E key icon
//! with the room key it used), an encrypted file decrypted in the page, an edit re-encrypted,
//! a reload with "remember on this device", a member added from elsewhere (the membership line,
//! a new room key, earlier messages not readable by the newcomer), a tampered envelope and a
//! replayed one explained, a locked identity, local search over the decrypted history while
//! the server lists the room as unsearched, and no canary on the server's disk.

mod browser_steps;
mod common;
mod webdriver;

use base64::Engine as _;
use browser_steps::*;

use common::TestServer;
use serde_json::{Value, json};
use sotto_api::ErrorCode;
use sotto_api::rest::{MessageBody, SettingsMap};
use sotto_client::Client;
use webdriver::{Browser, keys};

/// What the message whose text is exactly `text` shows about its encryption: whether it is
/// marked E2E, the icon's accessible label and title, the key id it used, and whether it
/// carries OTR's bold key (it must not).
async fn e2e_mark(browser: &Browser, text: &str) -> Value {
    wait_message(browser, text).await;
    browser
        .exec(
            "const m = [...document.querySelectorAll('#messages .message')] \
             .find(e => e.querySelector('.text')?.textContent === arguments[0]); \
             const icon = m.querySelector('svg.e2e-key'); \
             return { e2e: m.classList.contains('e2e'), \
               label: icon && icon.getAttribute('aria-label'), \
               title: icon && icon.querySelector('title').textContent, \
               keyId: m.dataset.keyId || null, \
               otr: m.querySelector('svg.otr-key') !== null }",
            json!([text]),
        )
        .await
}

/// The key id of the message with exactly `text`, checking it is shown as E2E with the thin
/// key (and its title naming that key), not OTR's.
async fn key_of(browser: &Browser, text: &str) -> String {
    let mark = e2e_mark(browser, text).await;
    let key_id = mark["keyId"].as_str().expect("a key id").to_string();
    assert_eq!(
        mark,
        json!({
            "e2e": true,
            "label": "End-to-end encrypted",
            "title": format!("End-to-end encrypted (room key {key_id})"),
            "keyId": key_id,
            "otr": false,
        }),
        "{text:?} is marked end-to-end encrypted"
    );
    key_id
}

/// Waits until the message `id` says it cannot be decrypted, and returns what it says.
async fn undecryptable(browser: &Browser, id: i64) -> String {
    browser
        .wait_for(
            &format!("message {id} to say why it cannot be decrypted"),
            "const m = document.querySelector(`#messages .message[data-message-id=\"${arguments[0]}\"]`); \
             const f = m && m.querySelector('.e2e-failed'); \
             return f ? f.textContent : null",
            json!([id]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits for the open room's E2E status line to be in `status` (`ready`, `locked`, …).
async fn wait_room_status(browser: &Browser, status: &str) -> String {
    browser
        .wait_for(
            &format!("the room's E2E status {status}"),
            "const p = document.querySelector(`#e2e-room-status [data-status=\"${arguments[0]}\"]`); \
             return p ? p.textContent : null",
            json!([status]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Decodes an envelope with the base64 flavour it was written in; returns the bytes and the
/// engine to write it back with.
fn decode_envelope(envelope: &str) -> (Vec<u8>, base64::engine::GeneralPurpose) {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        if let Ok(bytes) = engine.decode(envelope) {
            return (bytes, engine);
        }
    }
    panic!("the envelope is not base64");
}

/// The newest message of a room as `client` reads it from the server.
async fn newest(client: &Client, room: i64) -> sotto_api::rest::Message {
    let page = client
        .history(room, None, None, Some(1))
        .await
        .expect("history");
    page.messages.last().expect("a message").clone()
}

#[tokio::test]
async fn an_encrypted_group_is_read_written_and_searched_in_the_page_and_stays_ciphertext() {
    let mut ts = TestServer::start().await;
    let admin = ts.admin().await;
    // New groups are encrypted by default; new DMs are not.
    let mut change = SettingsMap::new();
    change.insert("e2e.encrypt_new_groups".into(), json!(true));
    admin.update_settings(&change).await.expect("settings");
    let alice_sdk = ts.user(&admin, "alice").await;
    let bob_sdk = ts.user(&admin, "bob").await;
    let carol_sdk = ts.user(&admin, "carol").await;
    drop(admin);
    let alice_id = alice_sdk.me().await.expect("me").id;
    let bob_id = bob_sdk.me().await.expect("me").id;
    let carol_id = carol_sdk.me().await.expect("me").id;

    let a = Browser::launch().await;
    let b = Browser::launch().await;
    let c = Browser::launch().await;
    log_in(&a, &ts.url, "alice").await;
    log_in(&b, &ts.url, "bob").await;
    log_in(&c, &ts.url, "carol").await;
    let alice_passphrase = set_up_e2e_remembering(&a, true).await;
    set_up_e2e_remembering(&b, true).await;
    let carol_passphrase = set_up_e2e_remembering(&c, false).await;

    // The "Encrypted" box follows the server's defaults: off for a DM, on for a group.
    a.click("#new-dm").await;
    a.click(&format!("#directory .pick[data-user-id=\"{bob_id}\"]"))
        .await;
    let checked = "return document.getElementById('start-encrypted').checked";
    assert_eq!(
        a.exec(checked, json!([])).await,
        false,
        "DMs: not by default"
    );
    a.type_into("#group-name", "secret").await;
    assert_eq!(a.exec(checked, json!([])).await, true, "groups: by default");
    a.click("#start-conversation").await;
    a.wait_for(
        "the group open",
        "return document.getElementById('room-title')?.textContent === 'secret'",
        json!([]),
    )
    .await;
    a.element("#room-e2e svg.e2e-key").await;
    let room_id = alice_sdk
        .rooms()
        .await
        .expect("rooms")
        .iter()
        .find(|r| r.name.as_deref() == Some("secret"))
        .expect("the group")
        .id;
    let ready = wait_room_status(&a, "ready").await;
    assert!(ready.starts_with("End-to-end encrypted."), "{ready}");

    // Both write, both read; each message has the thin key with its room key.
    let one = "e2e canary one 3b7d91c2";
    let two = "e2e canary two from bob 8f2e4a60";
    send(&a, one).await;
    let first_key = key_of(&a, one).await;
    open_room(&b, "secret").await;
    assert_eq!(key_of(&b, one).await, first_key);
    b.element("#rooms .room-link svg.e2e-key").await;
    send(&b, two).await;
    assert_eq!(key_of(&a, two).await, first_key);

    // The server holds envelopes only, and its search finds nothing but names the room.
    let page = alice_sdk
        .history(room_id, None, None, Some(50))
        .await
        .expect("history");
    assert_eq!(page.messages.len(), 2);
    for m in &page.messages {
        assert!(
            matches!(m.body, MessageBody::Encrypted { .. }),
            "stored as an envelope: {:?}",
            m.body
        );
    }
    let search = alice_sdk
        .raw(reqwest::Method::GET, "/api/v1/search?q=canary", None, &[])
        .await
        .expect("search");
    let search: Value = serde_json::from_slice(&search.body).expect("JSON");
    assert_eq!(search["hits"], json!([]), "{search}");
    assert_eq!(search["unsearched_rooms"], json!([room_id]), "{search}");

    // The page says so, and searches what it decrypted: the hit opens the room.
    a.type_into("#search-input", "canary two").await;
    a.click("#search-submit").await;
    let said = a
        .wait_for(
            "the local search",
            "const p = document.getElementById('search-unsearched');              return p.hidden ? null : p.textContent",
            json!([]),
        )
        .await;
    assert_eq!(
        said,
        "Encrypted rooms are not searched on the server (secret). Found in the messages this tab \
         has decrypted: 1."
    );
    assert_eq!(
        a.text("#search-status").await,
        "Nothing found on the server."
    );
    let hit = a
        .exec(
            "const h = [...document.querySelectorAll('#search-local-results .local-hit')]; \
             return h.map(e => [e.querySelector('.hit-room').textContent, \
               e.querySelector('.hit-author').textContent, e.querySelector('.hit-snippet').textContent])",
            json!([]),
        )
        .await;
    assert_eq!(hit, json!([["secret", "bob", two]]));
    shot(&a, "e2e-local-search").await;
    a.click("#search-local-results .local-hit").await;
    wait_message(&a, two).await;

    // A file: encrypted in the page, uploaded as ciphertext, previewed and downloaded from
    // the decrypted blob in the other browser.
    let file_canary = "e2e file canary 7a3e5c18";
    let files = tempfile::tempdir().expect("tempdir");
    let image = files.path().join("pixel.png");
    let mut png = PIXEL_PNG.to_vec();
    png.extend_from_slice(file_canary.as_bytes());
    std::fs::write(&image, &png).expect("write");
    a.type_into("#attach-input", image.to_str().expect("utf-8"))
        .await;
    let got = b
        .wait_for(
            "the decrypted image and its link",
            "const box = [...document.querySelectorAll('#messages .message.e2e .e2e-file')] \
               .find(e => e.querySelector('a.download')?.textContent === 'pixel.png'); \
             const img = box && box.querySelector('img.preview'); \
             const link = box && box.querySelector('a.download'); \
             if (!img || !img.complete || img.naturalWidth !== 1 || !link.href) return null; \
             return { img: img.src.startsWith('blob:'), link: link.href === img.src, \
                      download: link.getAttribute('download') }",
            json!([]),
        )
        .await;
    assert_eq!(
        got,
        json!({ "img": true, "link": true, "download": "pixel.png" }),
        "previewed and offered from one blob URL"
    );
    shot(&b, "e2e-room").await;
    let downloads = tempfile::tempdir().expect("tempdir");
    b.download_to(downloads.path()).await;
    b.click("#messages .e2e-file a.download").await;
    assert_eq!(
        b.downloaded(downloads.path(), "pixel.png").await,
        png,
        "the file decrypts to its exact bytes"
    );
    let stored = newest(&alice_sdk, room_id).await;
    assert!(matches!(stored.body, MessageBody::Encrypted { .. }));
    let upload = stored.attachment.expect("the ciphertext is attached");
    assert_eq!(upload.content_type, "application/octet-stream");
    assert_ne!(upload.filename, "pixel.png", "the name travels encrypted");

    // An edit is re-encrypted: the other browser shows the new text.
    let edited = "e2e canary edited 0d6b2f93";
    a.exec(
        "[...document.querySelectorAll('#messages .message')] \
           .find(e => e.querySelector('.text')?.textContent === arguments[0]) \
           .querySelector('.edit-message').click()",
        json!([one]),
    )
    .await;
    a.clear(".edit-input").await;
    a.type_into(".edit-input", edited).await;
    a.press_keys(keys::ENTER).await;
    key_of(&b, edited).await;
    b.wait_for(
        "the old text gone",
        "return ![...document.querySelectorAll('#messages .text')].some(e => e.textContent === arguments[0])",
        json!([one]),
    )
    .await;
    let page = alice_sdk
        .history(room_id, None, None, Some(50))
        .await
        .expect("history");
    assert!(
        page.messages
            .iter()
            .all(|m| matches!(m.body, MessageBody::Encrypted { .. })),
        "the edit is stored encrypted"
    );

    // Bob reloads: "remember on this device" unlocks, and the room reads again.
    b.goto(&format!("{}/", ts.url)).await;
    wait_connected(&b).await;
    assert!(e2e_panel_unlocked(&b).await, "remembered");
    open_room(&b, "secret").await;
    assert_eq!(key_of(&b, two).await, first_key);
    key_of(&b, edited).await;

    // Alice adds carol from another client (as a server could on its own): every member's
    // page shows it, and the next message uses a new key carol holds.
    alice_sdk
        .add_member(room_id, carol_id)
        .await
        .expect("add carol");
    for br in [&a, &b] {
        br.wait_for(
            "the membership line",
            "const l = document.querySelector(`#messages .system-line[data-kind=\"added\"][data-user-id=\"${arguments[0]}\"]`); \
             return l ? l.textContent : null",
            json!([carol_id]),
        )
        .await;
        let line = br
            .exec(
                "return document.querySelector(`#messages .system-line[data-kind=\"added\"][data-user-id=\"${arguments[0]}\"]`).textContent",
                json!([carol_id]),
            )
            .await;
        assert_eq!(line, "alice added carol.");
    }
    let three = "after carol joined 51c9e7ad";
    send(&a, three).await;
    let second_key = key_of(&a, three).await;
    assert_ne!(
        second_key, first_key,
        "a new key after the membership change"
    );
    open_room(&c, "secret").await;
    assert_eq!(key_of(&c, three).await, second_key);
    c.element(&format!(
        "#messages .system-line[data-kind=\"added\"][data-user-id=\"{carol_id}\"]"
    ))
    .await;
    assert_eq!(key_of(&b, three).await, second_key);
    // Earlier messages were under a key carol never got.
    let two_id = page
        .messages
        .iter()
        .find(|m| m.author_id == bob_id)
        .expect("bob's message")
        .id;
    assert_eq!(
        undecryptable(&c, two_id).await,
        "Cannot decrypt this message: key not shared with you yet."
    );

    // The SDK, unlocked with alice's key, reads what the pages wrote (the file included) and
    // writes what they read.
    let mut alice_keys = alice_sdk
        .e2e_unlock(&alice_passphrase)
        .await
        .expect("the SDK unlocks the key the page set up");
    let history = alice_sdk
        .room_history(&mut alice_keys, room_id)
        .await
        .expect("history");
    let texts: Vec<&str> = history.iter().filter_map(|m| m.text()).collect();
    assert_eq!(
        texts,
        [edited, two, three],
        "the SDK reads the pages' messages"
    );
    let file = history
        .iter()
        .find_map(|m| m.content.as_ref().ok()?.file.clone())
        .expect("the file message");
    assert_eq!(file.name, "pixel.png");
    assert_eq!(
        alice_sdk.room_download_file(&file).await.expect("download"),
        png
    );
    let from_sdk = "written by the SDK 93c0e5b7";
    alice_sdk
        .room_send_text(&mut alice_keys, room_id, from_sdk)
        .await
        .expect("send from the SDK");
    for br in [&a, &b, &c] {
        assert_eq!(key_of(br, from_sdk).await, second_key);
    }

    // A tampered envelope, and one replayed under another author, say why.
    let original = newest(&alice_sdk, room_id).await;
    let MessageBody::Encrypted { envelope } = &original.body else {
        panic!("an envelope");
    };
    let (mut raw, engine) = decode_envelope(envelope);
    let at = raw.len() - 70;
    raw[at] ^= 0x01;
    let tampered = alice_sdk
        .send_encrypted(room_id, &engine.encode(&raw))
        .await
        .expect("the server stores envelopes as they are");
    // Bob replaying alice's envelope as his own: the server reads the cleartext sender and
    // refuses it...
    let refused = bob_sdk
        .send_encrypted(room_id, envelope)
        .await
        .expect_err("another member's envelope");
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden), "{refused}");
    // ...so a server that stores it anyway (written straight into its database) is what the
    // page must see through; it is read after the reload below.
    let db = ts.database().await;
    let replayed: i64 = sqlx::query_scalar(
        "INSERT INTO messages (room_id, author_id, body_kind, body, created_at) \
         VALUES ($1, $2, 'encrypted', $3, 0) RETURNING id",
    )
    .bind(room_id)
    .bind(bob_id)
    .bind(envelope)
    .fetch_one(&db)
    .await
    .expect("a replayed row");
    db.close().await;
    for br in [&c, &a, &b] {
        assert_eq!(
            undecryptable(br, tampered.id).await,
            "Cannot decrypt this message: tampered — could not verify."
        );
    }

    // Carol's page did not remember the key: after a reload the room asks for it.
    c.goto(&format!("{}/", ts.url)).await;
    wait_connected(&c).await;
    open_room(&c, "secret").await;
    assert_eq!(
        wait_room_status(&c, "locked").await,
        "Unlock your E2E key to read this room."
    );
    let newest_id = newest(&alice_sdk, room_id).await.id;
    assert_eq!(
        undecryptable(&c, newest_id).await,
        "Cannot decrypt this message: unlock your E2E key."
    );
    c.click("#e2e-room-unlock").await;
    enter_e2e_key(&c, &carol_passphrase, false).await;
    assert_eq!(key_of(&c, three).await, second_key);
    assert_eq!(
        undecryptable(&c, replayed).await,
        "Cannot decrypt this message: not from who it says."
    );
    shot(&c, "e2e-undecryptable").await;

    // Alice removes bob: the line says so, the next message uses a third key, and the room
    // leaves bob's page.
    alice_sdk
        .remove_member(room_id, bob_id)
        .await
        .expect("remove bob");
    for br in [&a, &c] {
        let line = br
            .wait_for(
                "the removal line",
                "const l = document.querySelector(`#messages .system-line[data-kind=\"removed\"][data-user-id=\"${arguments[0]}\"]`); \
                 return l ? l.textContent : null",
                json!([bob_id]),
            )
            .await;
        assert_eq!(line, "alice removed bob.");
    }
    b.wait_for(
        "the room gone from bob's page",
        "return document.querySelector('#rooms .room-link') === null",
        json!([]),
    )
    .await;
    let four = "after bob was removed 7b42c0d9";
    send(&a, four).await;
    let third_key = key_of(&a, four).await;
    assert_ne!(third_key, second_key, "a new key after the removal");
    assert_eq!(key_of(&c, four).await, third_key);
    assert!(
        bob_sdk.history(room_id, None, None, Some(1)).await.is_err(),
        "bob can no longer fetch the room"
    );

    // Markup written into an encrypted room stays text once decrypted.
    for payload in &PAYLOADS[..4] {
        send(&a, payload).await;
        key_of(&c, payload).await;
    }

    // The pages stored only the remembered device keys, and (with the server stopped)
    // nothing readable is anywhere in its data directory: database, WAL and upload store. An
    // ordinary DM's message is found there, so the scan sees what is stored.
    let ordinary = "ordinary canary 5e8a2d14";
    let dm = alice_sdk.dm(bob_id).await.expect("an ordinary DM");
    alice_sdk.send_text(dm.id, ordinary).await.expect("send");
    assert_eq!(storage_inventory(&a).await, remembered_storage(alice_id));
    assert_eq!(storage_inventory(&b).await, remembered_storage(bob_id));
    assert_eq!(storage_inventory(&c).await, empty_storage());
    for br in [&a, &b, &c] {
        assert_clean(br).await;
    }
    a.quit().await;
    b.quit().await;
    c.quit().await;
    ts.stop().await;
    assert!(found_on_disk(ts.dir.path(), ordinary).is_some());
    for canary in [one, two, three, four, edited, file_canary, from_sdk] {
        assert_eq!(
            found_on_disk(ts.dir.path(), canary),
            None,
            "{canary} is on the server's disk"
        );
    }
}

#[tokio::test]
async fn an_encrypted_dm_shows_a_changed_key_and_trusts_it_only_once_acknowledged() {
    let mut ts = TestServer::start().await;
    let admin = ts.admin().await;
    let alice_sdk = ts.user(&admin, "alice").await;
    let bob_sdk = ts.user(&admin, "bob").await;
    let dave_sdk = ts.user(&admin, "dave").await;
    drop(admin);
    let bob_id = bob_sdk.me().await.expect("me").id;
    let dave_id = dave_sdk.me().await.expect("me").id;
    // An ordinary DM exists already: the encrypted one is another room with the same person.
    let ordinary = alice_sdk.dm(bob_id).await.expect("an ordinary DM");
    assert!(!ordinary.encrypted);

    let a = Browser::launch().await;
    let b = Browser::launch().await;
    log_in(&a, &ts.url, "alice").await;
    log_in(&b, &ts.url, "bob").await;
    set_up_e2e_remembering(&a, false).await;
    set_up_e2e_remembering(&b, false).await;

    // Alice ticks "Encrypted" (off by default for DMs), then picks bob.
    a.click("#new-dm").await;
    a.click("#start-encrypted").await;
    a.click_text("#directory .person", None, "bob").await;
    a.element("#room-e2e svg.e2e-key").await;
    assert_eq!(a.text("#room-title").await, "bob");
    wait_room_status(&a, "ready").await;
    let rooms = a
        .exec(
            "return [...document.querySelectorAll('#rooms .room-link')] \
             .map(e => [e.querySelector('.room-name').textContent, !!e.querySelector('svg.e2e-key')]) \
             .sort()",
            json!([]),
        )
        .await;
    assert_eq!(rooms, json!([["bob", false], ["bob", true]]), "two DMs");
    let encrypted = alice_sdk
        .rooms()
        .await
        .expect("rooms")
        .into_iter()
        .find(|r| r.encrypted)
        .expect("the encrypted DM");
    assert_ne!(encrypted.id, ordinary.id);

    let before = "before the reset 6d1f0a93";
    send(&a, before).await;
    b.click("#rooms .room-link:has(svg.e2e-key)").await;
    b.wait_for(
        "the encrypted DM open",
        "return !!document.querySelector('#room-e2e svg.e2e-key')",
        json!([]),
    )
    .await;
    let key_id = key_of(&b, before).await;

    // Bob resets his E2E key and writes: alice's page does not take the new key silently.
    assert!(e2e_panel_unlocked(&b).await);
    b.click("#e2e-reset").await;
    b.click("#e2e-reset-saved").await;
    b.click("#e2e-reset-submit").await;
    b.element("#e2e-notice").await;
    let after = "after the reset 2c9ab514";
    send(&b, after).await;
    let after_id = newest(&alice_sdk, encrypted.id).await.id;
    assert_eq!(
        undecryptable(&a, after_id).await,
        "Cannot decrypt this message: the sender's key changed — acknowledge it first."
    );
    let warning = a.text("#e2e-room-status .e2e-key-changed").await;
    assert!(
        warning.starts_with("bob's E2E key changed"),
        "the room says so: {warning}"
    );
    key_of(&a, before).await;

    // Acknowledged: the message reads, under the same room key, and the warning goes.
    a.click("#e2e-room-status .e2e-acknowledge").await;
    assert_eq!(key_of(&a, after).await, key_id);
    a.wait_for(
        "the warning to go",
        "return document.querySelector('#e2e-room-status .e2e-key-changed') === null",
        json!([]),
    )
    .await;

    // A server that adds a member on its own without recording the change (written straight
    // into its database, the epoch moved so a new key is due): the page names the member and
    // shares no key with them, so nothing more can be written.
    let db = ts.database().await;
    sqlx::query("INSERT INTO members (room_id, user_id, joined_at) VALUES ($1, $2, 0)")
        .bind(encrypted.id)
        .bind(dave_id)
        .execute(&db)
        .await
        .expect("ghost member");
    sqlx::query("UPDATE rooms SET epoch = epoch + 1 WHERE id = $1")
        .bind(encrypted.id)
        .execute(&db)
        .await
        .expect("epoch");
    db.close().await;
    // Opening the room again loads its keys.
    a.click("#rooms .room-link:not(:has(svg.e2e-key))").await;
    a.wait_for(
        "the ordinary DM open",
        "return document.querySelector('#room-e2e svg') === null",
        json!([]),
    )
    .await;
    a.click("#rooms .room-link:has(svg.e2e-key)").await;
    let ghost = a.text("#e2e-room-status .e2e-unexplained").await;
    assert_eq!(
        ghost,
        "The server lists dave as a member, but no membership change shows them joining. No \
         new room key is shared with them."
    );
    a.type_into("#composer-input", "to whom?").await;
    a.click("#send").await;
    let refused = a
        .wait_for(
            "the send refused",
            "return document.getElementById('send-error').textContent",
            json!([]),
        )
        .await;
    assert_eq!(
        refused,
        "Cannot send: no new room key while the server lists dave as a member without a \
         membership change that shows them joining."
    );
    let dave_keys = dave_sdk
        .raw(
            reqwest::Method::GET,
            &format!("/api/v1/rooms/{}/keys", encrypted.id),
            None,
            &[],
        )
        .await
        .expect("keys");
    let dave_keys: Value = serde_json::from_slice(&dave_keys.body).expect("JSON");
    assert_eq!(
        dave_keys["keys"],
        json!([]),
        "no share for the ghost: {dave_keys}"
    );

    // At 360 px the room with its warnings and key ids does not scroll sideways.
    a.set_window_size(360, 800).await;
    let width = a
        .wait_for(
            "a 360 px window",
            "return innerWidth === 360 && document.documentElement.scrollWidth",
            json!([]),
        )
        .await;
    assert!(width.as_i64().expect("a width") <= 360, "{width}");

    for br in [&a, &b] {
        assert_clean(br).await;
    }
    a.quit().await;
    b.quit().await;
    ts.stop().await;
}
