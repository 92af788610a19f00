//! The room view in real headless Chromium: history that loads as you scroll up, editing and
//! deleting your own messages live in another browser, and files (the attach button, drag
//! and drop, progress, image previews, downloads, the size limit).

mod browser_steps;
mod common;
mod webdriver;

use base64::Engine as _;
use browser_steps::*;
use common::{PW, TestServer};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sotto_api::RoomId;
use sotto_client::Client;
use webdriver::Browser;

/// A 1×1 PNG; the test files pad it after its end (decoders stop at `IEND`).
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// Bob (an SDK client) and his DM with the admin, who is set up in browser `a`.
struct Dm {
    bob: Client,
    room: RoomId,
}

async fn admin_and_bob_in_a_dm(a: &Browser, ts: &TestServer) -> Dm {
    set_up_admin(a, ts).await;
    let mut admin = ts.client();
    admin.login("admin", PW).await.expect("admin login");
    let bob = ts.user(&admin, "bob").await;
    let room = bob.dm(admin.user_id()).await.expect("dm").id;
    Dm { bob, room }
}

/// The texts of the open room's messages, in order.
async fn texts(browser: &Browser) -> Vec<String> {
    let v = browser
        .exec(
            "return [...document.querySelectorAll('#messages .message .text')].map(e => e.textContent)",
            json!([]),
        )
        .await;
    serde_json::from_value(v).expect("texts")
}

/// The id of the open room's message whose text is exactly `text`.
async fn message_id(browser: &Browser, text: &str) -> String {
    wait_message(browser, text).await;
    browser
        .exec(
            "return [...document.querySelectorAll('#messages .message')] \
             .find(m => m.querySelector('.text').textContent === arguments[0]).dataset.messageId",
            json!([text]),
        )
        .await
        .as_str()
        .expect("message id")
        .to_string()
}

/// Where the first stored message is, and whether the beginning of the conversation shows.
async fn first_message(browser: &Browser) -> (String, f64, bool) {
    let v = browser
        .exec(
            "const l = document.getElementById('messages'); \
             const m = l.querySelector('.message[data-message-id]'); \
             return [m.dataset.messageId, \
                     m.getBoundingClientRect().top - l.getBoundingClientRect().top, \
                     document.getElementById('history-start') !== null]",
            json!([]),
        )
        .await;
    (
        v[0].as_str().expect("id").to_string(),
        v[1].as_f64().expect("offset"),
        v[2] == true,
    )
}

#[tokio::test]
async fn scrolling_up_loads_the_whole_history_once_and_keeps_the_reading_position() {
    let ts = TestServer::start().await;
    let a = Browser::launch().await;
    let dm = admin_and_bob_in_a_dm(&a, &ts).await;
    for i in 1..=130 {
        dm.bob
            .send_text(dm.room, &format!("message {i:03}"))
            .await
            .expect("seed");
    }
    open_room(&a, "bob").await;
    wait_message(&a, "message 130").await;
    assert_eq!(
        texts(&a).await,
        (81..=130)
            .map(|i| format!("message {i:03}"))
            .collect::<Vec<_>>(),
        "opening the room loads the newest page only"
    );
    let at_bottom = a
        .exec(
            "const l = document.getElementById('messages'); \
             return l.scrollHeight > l.clientHeight && \
                    l.scrollTop + l.clientHeight >= l.scrollHeight - 4",
            json!([]),
        )
        .await;
    assert_eq!(at_bottom, true, "the room opens at its newest message");

    let mut pages = 0;
    loop {
        // Scroll to the very top, then note where the first message is shown.
        let before = a
            .exec(
                "const l = document.getElementById('messages'); l.scrollTop = 0; \
                 const m = l.querySelector('.message[data-message-id]'); \
                 return [m.dataset.messageId, \
                         m.getBoundingClientRect().top - l.getBoundingClientRect().top]",
                json!([]),
            )
            .await;
        let (old_first, old_offset) = (
            before[0].as_str().expect("id").to_string(),
            before[1].as_f64().expect("offset"),
        );
        a.wait_for(
            "an older page",
            "const m = document.querySelector('#messages .message[data-message-id]'); \
             return m.dataset.messageId !== arguments[0]",
            json!([old_first]),
        )
        .await;
        pages += 1;
        // The message that was at the top stays exactly where the reader saw it.
        let offset = a
            .exec(
                "const l = document.getElementById('messages'); \
                 const m = l.querySelector(`.message[data-message-id=\"${arguments[0]}\"]`); \
                 return m.getBoundingClientRect().top - l.getBoundingClientRect().top",
                json!([old_first]),
            )
            .await
            .as_f64()
            .expect("offset");
        assert!(
            (offset - old_offset).abs() < 2.0,
            "the reading position moved from {old_offset} to {offset}"
        );
        if pages == 1 {
            // A live message while scrolled back: shown once, at the end.
            dm.bob
                .send_text(dm.room, "message 131")
                .await
                .expect("live");
            wait_message(&a, "message 131").await;
        }
        let (_, _, at_start) = first_message(&a).await;
        if at_start {
            break;
        }
        assert!(pages < 5, "the history should end after three pages");
    }
    assert_eq!(pages, 2, "two older pages of 50 and 31 messages");
    assert_eq!(
        texts(&a).await,
        (1..=131)
            .map(|i| format!("message {i:03}"))
            .collect::<Vec<_>>(),
        "every message once, in order"
    );
    assert_eq!(
        a.text("#history-start").await,
        "This is the beginning of the conversation."
    );
    let no_more_button = a
        .exec(
            "return document.getElementById('load-earlier') === null",
            json!([]),
        )
        .await;
    assert_eq!(no_more_button, true);
    // Sending from up there brings the reader to the newest message, their own.
    send(&a, "my reply").await;
    a.wait_for(
        "the list at its newest message",
        "const l = document.getElementById('messages'); \
         return l.scrollTop + l.clientHeight >= l.scrollHeight - 4",
        json!([]),
    )
    .await;
    assert_clean(&a).await;
    a.quit().await;
}

/// Clicks `part` (a button's class) of the message `id` in `browser`.
async fn click_in_message(browser: &Browser, id: &str, part: &str) {
    browser
        .click(&format!(
            "#messages .message[data-message-id=\"{id}\"] {part}"
        ))
        .await;
}

/// Replaces the text of the open edit field of message `id` with `text` (keys as typed).
async fn retype(browser: &Browser, id: &str, text: &str) {
    let css = format!("#messages .message[data-message-id=\"{id}\"] .edit-input");
    browser.element(&css).await;
    browser
        .exec(
            "document.querySelector(arguments[0]).value = ''",
            json!([css]),
        )
        .await;
    browser.type_into(&css, text).await;
}

async fn message_has(browser: &Browser, id: &str, part: &str) -> bool {
    browser
        .exec(
            "return document.querySelector(arguments[0]) !== null",
            json!([format!(
                "#messages .message[data-message-id=\"{id}\"] {part}"
            )]),
        )
        .await
        == true
}

#[tokio::test]
async fn own_messages_are_edited_and_deleted_and_others_see_it_live() {
    let ts = TestServer::start().await;
    let a = Browser::launch().await;
    let _dm = admin_and_bob_in_a_dm(&a, &ts).await;
    let b = Browser::launch().await;
    log_in(&b, &ts.url, "bob").await;
    open_room(&a, "bob").await;
    open_room(&b, "admin").await;

    send(&a, "the original wording").await;
    send(&a, "a message to delete").await;
    send(&b, "bob's own words").await;
    wait_message(&b, "a message to delete").await;
    wait_message(&a, "bob's own words").await;
    let edited = message_id(&a, "the original wording").await;
    let doomed = message_id(&a, "a message to delete").await;
    let bobs = message_id(&a, "bob's own words").await;

    // The time shown is the server's (milliseconds), not some date in another millennium.
    let skew = a
        .exec(
            "const t = document.querySelector(`#messages .message[data-message-id=\"${arguments[0]}\"] time`); \
             return Math.abs(Date.parse(t.getAttribute('datetime')) - Date.now())",
            json!([edited]),
        )
        .await;
    assert!(
        skew.as_f64().is_some_and(|ms| ms < 120_000.0),
        "the message's time is {skew} ms away from now"
    );

    // Only your own messages can be changed.
    assert!(message_has(&a, &edited, ".edit-message").await);
    assert!(message_has(&a, &edited, ".delete-message").await);
    assert!(!message_has(&a, &bobs, ".edit-message").await);
    assert!(!message_has(&a, &bobs, ".delete-message").await);
    assert!(!message_has(&b, &edited, ".edit-message").await);
    assert!(!message_has(&b, &edited, ".delete-message").await);

    // Escape cancels an edit and leaves the message as it was.
    click_in_message(&a, &edited, ".edit-message").await;
    retype(&a, &edited, "never saved\u{E00C}").await;
    a.wait_for(
        "the editor to close",
        "return document.querySelector('#messages .edit-input') === null",
        json!([]),
    )
    .await;
    wait_message(&a, "the original wording").await;
    assert!(!message_has(&a, &edited, ".edited").await);

    // The server's refusal (an empty text) is shown, and the editor stays open.
    click_in_message(&a, &edited, ".edit-message").await;
    retype(&a, &edited, "   ").await;
    click_in_message(&a, &edited, ".edit-save").await;
    let error = a
        .wait_for(
            "the edit's error",
            "return document.querySelector(`#messages .message[data-message-id=\"${arguments[0]}\"] .message-error`)?.textContent",
            json!([edited]),
        )
        .await;
    let error = error.as_str().unwrap_or_default();
    assert!(error.starts_with("Could not save the edit: "), "{error}");
    assert!(message_has(&a, &edited, ".edit-input").await);

    // Enter saves; both browsers show the new text marked "(edited)", and the old text is
    // nowhere in the other browser.
    retype(&a, &edited, "the corrected wording\u{E007}").await;
    for br in [&a, &b] {
        wait_message(br, "the corrected wording").await;
        br.wait_for(
            "the (edited) mark",
            "return document.querySelector(`#messages .message[data-message-id=\"${arguments[0]}\"] .edited`)?.textContent === '(edited)'",
            json!([edited]),
        )
        .await;
    }
    let shows_old = b
        .exec(
            "return document.body.innerText.includes('the original wording')",
            json!([]),
        )
        .await;
    assert_eq!(shows_old, false, "the replaced text is gone");
    assert!(!message_has(&a, &edited, ".message-error:not(:empty)").await);

    // Delete asks first; Cancel keeps the message.
    click_in_message(&a, &doomed, ".delete-message").await;
    click_in_message(&a, &doomed, ".delete-cancel").await;
    a.wait_for(
        "the question to go",
        "return document.querySelector('#messages .delete-question') === null",
        json!([]),
    )
    .await;
    wait_message(&a, "a message to delete").await;
    click_in_message(&a, &doomed, ".delete-message").await;
    click_in_message(&a, &doomed, ".delete-confirm").await;
    for br in [&a, &b] {
        br.wait_for(
            "the deleted message to disappear",
            "return document.querySelector(`#messages .message[data-message-id=\"${arguments[0]}\"]`) === null",
            json!([doomed]),
        )
        .await;
        assert_eq!(
            texts(br).await,
            ["the corrected wording", "bob's own words"],
            "the rest stays"
        );
        assert_clean(br).await;
    }

    // An edit is not news: with the room closed (a reload), an edit and then a new message
    // make an unread count of one, and the room opens with the edited text.
    b.goto(&format!("{}/", ts.url)).await;
    wait_connected(&b).await;
    b.element("#rooms .room-link").await;
    click_in_message(&a, &edited, ".edit-message").await;
    retype(&a, &edited, "edited while bob was away\u{E007}").await;
    wait_message(&a, "edited while bob was away").await;
    send(&a, "something new").await;
    let badge = b
        .wait_for(
            "an unread badge",
            "return document.querySelector('#rooms .badge')?.textContent",
            json!([]),
        )
        .await;
    assert_eq!(badge, "1", "the edit did not count as unread");
    open_room(&b, "admin").await;
    wait_message(&b, "edited while bob was away").await;
    a.quit().await;
    b.quit().await;
}

/// Starts recording, in the page, every progress bar shown in `#uploads` (a bar may come and
/// go between two polls) and every request opened to an upload endpoint.
async fn record_uploads(browser: &Browser) {
    browser
        .exec(
            "window.__progress = []; window.__uploadRequests = 0; \
             const open = XMLHttpRequest.prototype.open; \
             XMLHttpRequest.prototype.open = function (method, url, ...rest) { \
               if (String(url).includes('/uploads')) window.__uploadRequests += 1; \
               return open.call(this, method, url, ...rest); }; \
             const note = (p) => window.__progress.push([p.value, p.max]); \
             new MutationObserver((records) => { for (const r of records) { \
               if (r.type === 'attributes' && r.target instanceof HTMLProgressElement) note(r.target); \
               for (const n of r.addedNodes) if (n instanceof Element) n.querySelectorAll('progress').forEach(note); \
             } }).observe(document.getElementById('uploads'), \
               { childList: true, subtree: true, attributes: true, attributeFilter: ['value', 'max'] });",
            json!([]),
        )
        .await;
}

/// Waits for the open room to show an attachment named `name`; returns its upload id.
async fn wait_attachment(browser: &Browser, name: &str) -> String {
    browser
        .wait_for(
            &format!("the attachment {name:?}"),
            "const a = [...document.querySelectorAll('#messages .attachment')] \
             .find(e => e.querySelector('a.download').textContent === arguments[0]); \
             return a ? a.dataset.uploadId : null",
            json!([name]),
        )
        .await
        .as_str()
        .expect("upload id")
        .to_string()
}

/// Downloads the attachment named `name` from the page through its link; returns the bytes'
/// length and SHA-256 (hex), and the link's `download` name.
async fn download(browser: &Browser, name: &str) -> (u64, String, String) {
    browser
        .exec(
            "window.__download = null; \
             const a = [...document.querySelectorAll('#messages .attachment a.download')] \
             .find(e => e.textContent === arguments[0]); \
             fetch(a.href).then(r => r.arrayBuffer()).then(async (b) => { \
               const d = new Uint8Array(await crypto.subtle.digest('SHA-256', b)); \
               window.__download = [b.byteLength, \
                 [...d].map(x => x.toString(16).padStart(2, '0')).join(''), \
                 a.getAttribute('download')]; \
             });",
            json!([name]),
        )
        .await;
    let v = browser
        .wait_for("the download", "return window.__download", json!([]))
        .await;
    (
        v[0].as_u64().expect("length"),
        v[1].as_str().expect("hash").to_string(),
        v[2].as_str().expect("name").to_string(),
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn files_sent_by_button_and_by_drop_show_progress_previews_and_download_intact() {
    let ts = TestServer::start().await;
    let a = Browser::launch().await;
    let _dm = admin_and_bob_in_a_dm(&a, &ts).await;
    let b = Browser::launch().await;
    log_in(&b, &ts.url, "bob").await;
    open_room(&a, "bob").await;
    open_room(&b, "admin").await;

    // A picture of 1.5 MB, chosen with the attach button's file input.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut picture = base64::engine::general_purpose::STANDARD
        .decode(PNG_1X1)
        .expect("png");
    picture.extend((0..1_500_000u32).map(|i| (i % 251) as u8));
    let path = dir.path().join("holiday photo.png");
    std::fs::write(&path, &picture).expect("write file");

    record_uploads(&a).await;
    let opens_picker = a
        .exec(
            "const b = document.getElementById('attach-button'); \
             const i = document.getElementById('attach-input'); \
             return b.tagName === 'BUTTON' && i.type === 'file' && i.hidden",
            json!([]),
        )
        .await;
    assert_eq!(
        opens_picker, true,
        "a real button in front of a hidden file input"
    );
    a.type_into("#attach-input", path.to_str().expect("utf-8 path"))
        .await;
    let id = wait_attachment(&a, "holiday photo.png").await;
    let progress = a.exec("return window.__progress", json!([])).await;
    let seen: Vec<(f64, f64)> = serde_json::from_value(progress).expect("progress");
    assert!(!seen.is_empty(), "a progress bar was shown");
    let (value, max) = *seen.last().expect("last");
    assert!(
        max > 0.0 && value == max,
        "the bar reached its end: {seen:?}"
    );
    a.wait_for(
        "the finished upload to leave the list",
        "return document.querySelectorAll('#uploads .upload').length === 0",
        json!([]),
    )
    .await;

    // Bob sees the picture itself, and both download the exact bytes.
    assert_eq!(wait_attachment(&b, "holiday photo.png").await, id);
    b.wait_for(
        "the image preview",
        "const i = document.querySelector(`#messages .attachment[data-upload-id=\"${arguments[0]}\"] img.preview`); \
         return !!i && i.complete && i.naturalWidth === 1 && i.alt === 'holiday photo.png'",
        json!([id]),
    )
    .await;
    for br in [&a, &b] {
        let (len, hash, name) = download(br, "holiday photo.png").await;
        assert_eq!(len, picture.len() as u64);
        assert_eq!(
            hash,
            sha256_hex(&picture),
            "the downloaded bytes are the file"
        );
        assert_eq!(name, "holiday photo.png");
    }

    // Dropped onto the room: the hint shows while dragging, the file is sent, and it is a
    // download (not an image) for Bob.
    let text = "dropped text, ünïcödé\n".repeat(2000);
    let hint = a
        .exec(
            "const room = document.getElementById('room'); \
             const dt = new DataTransfer(); \
             dt.items.add(new File([arguments[0]], 'notes.txt', { type: 'text/plain' })); \
             const fire = (type) => room.dispatchEvent(new DragEvent(type, \
               { dataTransfer: dt, bubbles: true, cancelable: true })); \
             fire('dragenter'); fire('dragover'); \
             const shown = !document.getElementById('drop-hint').hidden; \
             const notCancelled = fire('drop'); \
             return [shown, notCancelled, document.getElementById('drop-hint').hidden]",
            json!([text]),
        )
        .await;
    assert_eq!(
        hint,
        json!([true, false, true]),
        "hint shown while dragging, the drop taken, hint gone"
    );
    wait_attachment(&a, "notes.txt").await;
    let id = wait_attachment(&b, "notes.txt").await;
    let has_preview = b
        .exec(
            "return document.querySelector(`#messages .attachment[data-upload-id=\"${arguments[0]}\"] img`) !== null",
            json!([id]),
        )
        .await;
    assert_eq!(has_preview, false, "only images are previewed");
    let (len, hash, _) = download(&b, "notes.txt").await;
    assert_eq!(len, text.len() as u64);
    assert_eq!(hash, sha256_hex(text.as_bytes()));
    // Dropped anywhere else, a file is neither sent nor opened by the browser.
    let elsewhere = a
        .exec(
            "const dt = new DataTransfer(); \
             dt.items.add(new File(['stray'], 'stray.txt', { type: 'text/plain' })); \
             return document.querySelector('nav.sidebar').dispatchEvent(new DragEvent('drop', \
               { dataTransfer: dt, bubbles: true, cancelable: true }))",
            json!([]),
        )
        .await;
    assert_eq!(
        elsewhere, false,
        "the browser's default (opening the file) is prevented"
    );
    let requests = a.exec("return window.__uploadRequests", json!([])).await;
    assert_eq!(
        requests, 2,
        "one upload request per file dropped on the room"
    );

    for br in [&a, &b] {
        assert_clean(br).await;
    }
    a.quit().await;
    b.quit().await;
}

#[tokio::test]
async fn a_file_over_the_size_limit_is_refused_before_anything_is_uploaded() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let mut limit = sotto_api::rest::SettingsMap::new();
    limit.insert("uploads.max_bytes".into(), Value::from(1000));
    admin.update_settings(&limit).await.expect("set the limit");
    let alice = ts.user(&admin, "alice").await;
    alice.dm(admin.user_id()).await.expect("dm");

    let a = Browser::launch().await;
    log_in(&a, &ts.url, "alice").await;
    open_room(&a, "admin").await;
    record_uploads(&a).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 5000]).expect("write");
    a.type_into("#attach-input", big.to_str().expect("utf-8 path"))
        .await;
    let error = a
        .wait_for(
            "the size error",
            "return document.getElementById('upload-error').textContent",
            json!([]),
        )
        .await;
    assert_eq!(
        error,
        "“big.bin” is too large to send: it is 5.0 KB, and files can be at most 1.0 KB."
    );
    let requests = a.exec("return window.__uploadRequests", json!([])).await;
    assert_eq!(requests, 0, "nothing was sent to the server");

    // Were the page's check bypassed (a stale limit), the server refuses too, and its
    // reason is what the page shows.
    a.exec(
        "Object.defineProperty(File.prototype, 'size', { configurable: true, get() { return 1; } });",
        json!([]),
    )
    .await;
    a.type_into("#attach-input", big.to_str().expect("utf-8 path"))
        .await;
    let error = a
        .wait_for(
            "the server's refusal",
            "const t = document.getElementById('upload-error').textContent; \
             return t.includes('too large to send') ? null : t",
            json!([]),
        )
        .await;
    assert_eq!(
        error,
        "Could not send “big.bin”: uploads are at most 1000 bytes"
    );
    a.exec("delete File.prototype.size", json!([])).await;
    assert_eq!(
        stored_uploads(&ts),
        0,
        "the refused upload left nothing behind"
    );
    let partial = std::fs::read_dir(ts.dir.path().join("uploads/tmp"))
        .expect("tmp dir")
        .count();
    assert_eq!(partial, 0, "not even a partial file");

    // A file within the limit still goes (and clears the error); the server holds only it.
    let small = dir.path().join("small.bin");
    std::fs::write(&small, vec![7u8; 900]).expect("write");
    a.type_into("#attach-input", small.to_str().expect("utf-8 path"))
        .await;
    wait_attachment(&a, "small.bin").await;
    assert_eq!(a.text("#upload-error").await, "");
    let requests = a.exec("return window.__uploadRequests", json!([])).await;
    assert_eq!(requests, 2, "the bypassed one and the small one");
    assert_eq!(stored_uploads(&ts), 1, "only the small file is stored");
    assert_clean(&a).await;
    a.quit().await;
}

/// Files in the server's upload store (the `tmp/` directory of unfinished uploads aside).
fn stored_uploads(ts: &TestServer) -> usize {
    std::fs::read_dir(ts.dir.path().join("uploads"))
        .expect("uploads dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .count()
}

#[tokio::test]
async fn while_off_the_record_a_file_never_goes_to_the_upload_endpoint() {
    let ts = TestServer::start().await;
    let a = Browser::launch().await;
    let _dm = admin_and_bob_in_a_dm(&a, &ts).await;
    let b = Browser::launch().await;
    log_in(&b, &ts.url, "bob").await;
    set_up_e2e(&a).await;
    set_up_e2e(&b).await;
    open_room(&a, "bob").await;
    open_room(&b, "admin").await;
    send(&a, "on the record first").await;
    open_otr_panel(&a).await;
    a.click("#otr-start").await;
    b.click(".otr-invitation .otr-invite-accept").await;
    wait_otr_state(&a, "established").await;
    // OTR messages take their place in time after the stored ones.
    send(&a, "then off the record").await;
    assert_eq!(
        texts(&a).await,
        ["on the record first", "then off the record"]
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret plan.txt");
    std::fs::write(&secret, "off the record, never stored").expect("write");
    record_uploads(&a).await;
    let otr_before = a
        .exec(
            "return document.querySelectorAll('#messages .message.otr').length",
            json!([]),
        )
        .await;
    a.type_into("#attach-input", secret.to_str().expect("utf-8 path"))
        .await;
    // Either the OTR side took the file (a new OTR message) or it said why it could not;
    // in no case is it uploaded.
    a.wait_for(
        "the file handled off the record",
        "return document.getElementById('upload-error').textContent !== '' || \
         document.querySelectorAll('#messages .message.otr').length > arguments[0]",
        json!([otr_before]),
    )
    .await;
    let requests = a.exec("return window.__uploadRequests", json!([])).await;
    assert_eq!(
        requests, 0,
        "no request to the upload endpoint while off the record"
    );
    let attachments = a
        .exec(
            "return document.querySelectorAll('#messages .attachment').length",
            json!([]),
        )
        .await;
    assert_eq!(attachments, 0, "no stored attachment");
    assert_eq!(stored_uploads(&ts), 0, "nothing in the upload store");

    // Back on the record, the same file is an ordinary upload again.
    a.click("#otr-end").await;
    wait_otr_state(&a, "ended").await;
    a.type_into("#attach-input", secret.to_str().expect("utf-8 path"))
        .await;
    wait_attachment(&a, "secret plan.txt").await;
    wait_attachment(&b, "secret plan.txt").await;
    let requests = a.exec("return window.__uploadRequests", json!([])).await;
    assert_eq!(requests, 1);
    assert_eq!(stored_uploads(&ts), 1);
    for br in [&a, &b] {
        assert_clean(br).await;
    }
    a.quit().await;
    b.quit().await;
}

#[tokio::test]
async fn file_names_made_of_markup_stay_text() {
    // The page shows a file's own name (before the server sanitises it) in its messages about
    // the file: here, the size refusal of files dropped with markup payloads as their names.
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let mut limit = sotto_api::rest::SettingsMap::new();
    limit.insert("uploads.max_bytes".into(), Value::from(10));
    admin.update_settings(&limit).await.expect("set the limit");
    let alice = ts.user(&admin, "alice").await;
    alice.dm(admin.user_id()).await.expect("dm");
    let a = Browser::launch().await;
    log_in(&a, &ts.url, "alice").await;
    open_room(&a, "admin").await;
    record_uploads(&a).await;
    a.exec(
        "window.__pwned = () => { window.__pwnedCalled = true; }",
        json!([]),
    )
    .await;
    for payload in PAYLOADS {
        a.exec(
            "const dt = new DataTransfer(); \
             dt.items.add(new File(['twenty bytes of text'], arguments[0])); \
             document.getElementById('room').dispatchEvent(new DragEvent('drop', \
               { dataTransfer: dt, bubbles: true, cancelable: true }));",
            json!([payload]),
        )
        .await;
        let expected = format!(
            "“{payload}” is too large to send: it is 20 bytes, and files can be at most 10 bytes."
        );
        a.wait_for(
            &format!("the refusal naming {payload:?}"),
            "return document.getElementById('upload-error').textContent === arguments[0]",
            json!([expected]),
        )
        .await;
    }
    let v = a
        .exec(
            "return [window.__pwnedCalled === true, window.__uploadRequests]",
            json!([]),
        )
        .await;
    assert_eq!(v, json!([false, 0]), "nothing ran, nothing was sent");
    assert_clean(&a).await;
    a.quit().await;
}

#[tokio::test]
async fn an_upload_in_progress_can_be_cancelled_and_leaves_nothing() {
    let ts = TestServer::start().await;
    let a = Browser::launch().await;
    let _dm = admin_and_bob_in_a_dm(&a, &ts).await;
    open_room(&a, "bob").await;
    let dir = tempfile::tempdir().expect("tempdir");
    // At 360 px wide, with a long unbroken name, nothing may scroll sideways.
    a.set_window_size(360, 740).await;
    let inner = a.exec("return window.innerWidth", json!([])).await;
    assert_eq!(inner, 360, "the viewport is 360 px wide");
    let name = format!("slow-{}.bin", "x".repeat(80));
    let path = dir.path().join(&name);
    std::fs::write(&path, vec![42u8; 2_000_000]).expect("write");
    // About 40 s at this rate: long enough to see it move and to cancel it.
    a.throttle_uploads(50_000).await;
    record_uploads(&a).await;
    a.type_into("#attach-input", path.to_str().expect("utf-8 path"))
        .await;
    let under_way = a
        .wait_for(
            "the upload under way",
            "const p = document.querySelector('#uploads .upload progress'); \
             return p && p.value > 0 && p.value < p.max ? \
               document.querySelector('#uploads .upload .upload-name').textContent : null",
            json!([]),
        )
        .await;
    assert_eq!(under_way, name.as_str(), "the bar names the file and moves");
    let wide = a
        .exec("return document.documentElement.scrollWidth", json!([]))
        .await;
    assert!(
        wide.as_u64().is_some_and(|w| w <= 360),
        "the page is {wide} px wide at 360"
    );
    a.click("#uploads .upload .upload-cancel").await;
    a.wait_for(
        "the cancelled upload to leave the list",
        "return document.querySelectorAll('#uploads .upload').length === 0",
        json!([]),
    )
    .await;
    let v = a
        .exec(
            "return [document.getElementById('upload-error').textContent, \
                     document.querySelectorAll('#messages .attachment').length]",
            json!([]),
        )
        .await;
    assert_eq!(v, json!(["", 0]), "no error, no message");
    // The server drops the half-received file once the request is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let partial = std::fs::read_dir(ts.dir.path().join("uploads/tmp"))
            .expect("tmp dir")
            .count();
        if partial == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the partial upload was not removed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(stored_uploads(&ts), 0);

    // Sent in full, the long name as a download link still fits the 360 px.
    let small = dir.path().join(format!("done-{}.txt", "y".repeat(80)));
    std::fs::write(&small, "small").expect("write");
    a.type_into("#attach-input", small.to_str().expect("utf-8 path"))
        .await;
    wait_attachment(&a, &format!("done-{}.txt", "y".repeat(80))).await;
    let wide = a
        .exec(
            "const l = document.getElementById('messages'); \
             return [document.documentElement.scrollWidth, l.scrollWidth - l.clientWidth]",
            json!([]),
        )
        .await;
    assert!(
        wide[0].as_u64().is_some_and(|w| w <= 360) && wide[1] == 0,
        "neither the page nor the message list scrolls sideways: {wide}"
    );
    assert_clean(&a).await;
    a.quit().await;
}
