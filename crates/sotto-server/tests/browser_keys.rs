//! The E2E key in the browser beyond the first slice, in real headless Chromium: "remember on
//! this device", changing and resetting the key, safety numbers and verification, a changed
//! key that blocks OTR until acknowledged, cancelling an offer, the invitation notification,
//! and what OTR leaves behind in the browser and on the server's disk.

mod browser_steps;
mod common;
mod webdriver;

use browser_steps::*;

use common::TestServer;
use serde_json::json;
use sotto_client::sotto_crypto::backup::{KdfParams, Passphrase};
use webdriver::Browser;

/// Reloads the page and waits for the realtime connection.
async fn reload(browser: &Browser, ts: &TestServer) {
    browser.goto(&format!("{}/", ts.url)).await;
    wait_connected(browser).await;
}

#[tokio::test]
async fn remember_on_this_device_survives_a_reload_until_the_key_changes_elsewhere() {
    let mut ts = TestServer::start().await;
    let admin = ts.admin().await;
    let bob = ts.user(&admin, "bob").await;
    let bob_id = bob.me().await.expect("me").id;
    // The admin (through the SDK) has E2E keys and a DM with bob, for a pin to save.
    admin
        .e2e_setup(
            &Passphrase::generate().expect("passphrase"),
            KdfParams::INSECURE_FOR_TESTS,
        )
        .await
        .expect("admin's E2E keys");
    admin.dm(bob_id).await.expect("dm");

    // Browser 1 sets up the E2E key, remembered on this device: only the wrapped record is
    // stored, and a reload unlocks without the passphrase.
    let b1 = Browser::launch().await;
    log_in(&b1, &ts.url, "bob").await;
    assert_eq!(storage_inventory(&b1).await, empty_storage());
    let passphrase = set_up_e2e_remembering(&b1, true).await;
    b1.element("#e2e-remembered #e2e-forget").await;
    assert_eq!(storage_inventory(&b1).await, remembered_storage(bob_id));
    reload(&b1, &ts).await;
    assert!(
        e2e_panel_unlocked(&b1).await,
        "unlocked from the remembered key"
    );
    b1.element("#e2e-remembered").await;
    assert_eq!(storage_inventory(&b1).await, remembered_storage(bob_id));

    // Browser 2 enters the key without remembering it: a reload asks again, and nothing was
    // stored. With the box ticked, the next reload unlocks by itself.
    let b2 = Browser::launch().await;
    log_in(&b2, &ts.url, "bob").await;
    assert!(
        !e2e_panel_unlocked(&b2).await,
        "a new browser asks for the key"
    );
    shot(&b2, "e2e-unlock-remember").await;
    enter_e2e_key(&b2, &passphrase, false).await;
    b2.element("#e2e-not-remembered").await;
    assert_eq!(storage_inventory(&b2).await, empty_storage());
    reload(&b2, &ts).await;
    assert!(!e2e_panel_unlocked(&b2).await, "not remembered: asks again");
    enter_e2e_key(&b2, &passphrase, true).await;
    assert_eq!(storage_inventory(&b2).await, remembered_storage(bob_id));
    reload(&b2, &ts).await;
    assert!(
        e2e_panel_unlocked(&b2).await,
        "remembered: unlocked by itself"
    );

    // Browser 1 changes the key to a passphrase of its own: a weak one is refused (with the
    // strength estimate), a strong one is taken after "I have saved it". Its own record
    // follows the change.
    b1.click("#e2e-change").await;
    let offered = b1.text("#e2e-change-passphrase").await;
    assert_eq!(offered.len(), 24, "a generated one is offered too");
    assert_ne!(offered, passphrase);
    let disabled = b1
        .exec(
            "return document.getElementById('e2e-change-submit').disabled",
            json!([]),
        )
        .await;
    assert_eq!(disabled, true, "changing needs the 'saved it' confirmation");
    b1.click("#e2e-change-mode-own").await;
    b1.type_into("#e2e-change-own", "password1234").await;
    b1.wait_for(
        "the strength estimate",
        "return document.getElementById('e2e-change-strength').textContent.includes('too weak')",
        json!([]),
    )
    .await;
    b1.click("#e2e-change-saved").await;
    b1.click("#e2e-change-submit").await;
    b1.wait_for(
        "the weak passphrase refused",
        "return document.getElementById('e2e-change-error').textContent \
         .startsWith('This passphrase is too weak')",
        json!([]),
    )
    .await;
    let new_passphrase = "Vq7#mZ2!pL9@xR4$wK";
    b1.exec(
        "document.getElementById('e2e-change-own').value = ''",
        json!([]),
    )
    .await;
    b1.type_into("#e2e-change-own", new_passphrase).await;
    b1.wait_for(
        "the strength estimate",
        "return document.getElementById('e2e-change-strength').textContent.endsWith('strong enough.')",
        json!([]),
    )
    .await;
    b1.click("#e2e-change-submit").await;
    assert_eq!(
        b1.text("#e2e-notice").await,
        "Your E2E key was changed. Use the new passphrase from now on."
    );
    assert_eq!(storage_inventory(&b1).await, remembered_storage(bob_id));

    // Browser 2, still open with the old storage key, pins the admin's key: the pin holds in
    // the tab, but it refuses to save a trust store sealed under the old key over the new one
    // (which the reload of browser 1 below could then not open).
    open_room(&b2, "admin").await;
    open_otr_panel(&b2).await;
    assert_eq!(
        b2.text("#otr-error").await,
        "Could not save the pinned key: Your E2E key was changed or reset on another device. \
         Reload the page and enter the new one."
    );
    b2.element("#otr-safety-number").await;

    reload(&b1, &ts).await;
    assert!(
        e2e_panel_unlocked(&b1).await,
        "the changing browser's record was renewed, and the trust store still opens"
    );

    // Browser 2's record no longer opens the backup: it is deleted, and the page asks for
    // the passphrase, saying why. The old passphrase is refused, the new one works.
    reload(&b2, &ts).await;
    // The panel opens by itself with the unlock form.
    b2.wait_for(
        "the unlock form, opened by itself",
        "const p = document.getElementById('e2e-panel'); \
         return !p.hidden && !!p.querySelector('#e2e-unlock #e2e-notice')",
        json!([]),
    )
    .await;
    assert_eq!(
        b2.text("#e2e-notice").await,
        "This device remembered an older E2E key: your passphrase was changed or your key \
         was reset on another device. Enter your current E2E key."
    );
    assert_eq!(storage_inventory(&b2).await, empty_storage());
    b2.type_into("#e2e-passphrase-input", &passphrase).await;
    b2.click("#e2e-unlock button[type=submit]").await;
    b2.wait_for(
        "the old passphrase to be refused",
        "return document.getElementById('e2e-error')?.textContent",
        json!([]),
    )
    .await;
    assert_eq!(
        b2.text("#e2e-error").await,
        "That is not your E2E key (wrong passphrase)."
    );
    b2.exec(
        "document.getElementById('e2e-passphrase-input').value = ''",
        json!([]),
    )
    .await;
    enter_e2e_key(&b2, new_passphrase, true).await;
    assert_eq!(storage_inventory(&b2).await, remembered_storage(bob_id));

    // "Forget this device": the record goes, and a reload asks again.
    b1.click("#e2e-forget").await;
    b1.element("#e2e-not-remembered").await;
    assert_eq!(storage_inventory(&b1).await, empty_storage());
    reload(&b1, &ts).await;
    assert!(!e2e_panel_unlocked(&b1).await, "forgotten: asks again");

    // Log out forgets it too.
    b2.click("#logout").await;
    b2.element("#login-form").await;
    assert_eq!(storage_inventory(&b2).await, empty_storage());

    for br in [&b1, &b2] {
        assert_clean(br).await;
    }
    b1.quit().await;
    b2.quit().await;
    ts.stop().await;
}

/// Files in the server's upload store, unfinished ones included.
fn stored_uploads(ts: &TestServer) -> usize {
    let mut count = 0;
    let mut stack = vec![ts.dir.path().join("uploads")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                count += 1;
            }
        }
    }
    count
}

/// Waits until the OTR panel shows the `#otr-safety-number`, and returns it.
async fn safety_number(browser: &Browser) -> String {
    let n = browser.text("#otr-safety-number").await;
    assert_eq!(n.len(), 71, "12 groups of 5 digits: {n}");
    n
}

#[tokio::test]
async fn safety_numbers_are_verified_and_a_reset_key_blocks_otr_until_acknowledged() {
    let mut ts = TestServer::start().await;
    let admin = ts.admin().await;
    let admin_id = admin.me().await.expect("me").id;
    let _bob = ts.user(&admin, "bob").await;
    let a = Browser::launch().await;
    log_in(&a, &ts.url, "admin").await;
    let b = Browser::launch().await;
    log_in(&b, &ts.url, "bob").await;
    // A remembers the key on this device, B does not: OTR stores nothing either way.
    set_up_e2e_remembering(&a, true).await;
    set_up_e2e_remembering(&b, false).await;

    start_dm(&a, "bob").await;
    let ordinary = "ordinary canary 5c1f0e2a";
    send(&a, ordinary).await;
    open_room(&b, "admin").await;
    wait_message(&b, ordinary).await;

    // Both sides show the same safety number, not verified yet.
    open_otr_panel(&a).await;
    open_otr_panel(&b).await;
    let number = safety_number(&a).await;
    assert_eq!(safety_number(&b).await, number);
    a.element("#otr-not-verified").await;

    // "Mark as verified" persists across a reload (the trust store is saved, sealed, on the
    // server), and can be cleared and given again.
    a.click("#otr-verify").await;
    assert_eq!(a.text("#otr-verified").await, "✔ Verified");
    shot(&a, "otr-safety-number").await;
    reload(&a, &ts).await;
    assert!(e2e_panel_unlocked(&a).await);
    open_room(&a, "bob").await;
    open_otr_panel(&a).await;
    a.element("#otr-verified").await;
    assert_eq!(safety_number(&a).await, number);
    a.click("#otr-unverify").await;
    a.element("#otr-not-verified").await;
    a.click("#otr-verify").await;
    a.element("#otr-verified").await;

    // Cancel an offer: B's invitation disappears.
    a.click("#otr-start").await;
    wait_otr_state(&a, "offered").await;
    assert_eq!(
        b.text(".otr-invitation span").await,
        "admin wants to start OTR."
    );
    a.click("#otr-cancel").await;
    wait_otr_state(&a, "ended").await;
    assert_eq!(a.text("#otr-state").await, "You cancelled the invitation.");
    b.wait_for(
        "the cancelled invitation to go",
        "return document.querySelector('.otr-invitation') === null && document.title === 'Sotto'",
        json!([]),
    )
    .await;
    wait_otr_state(&b, "ended").await;
    assert_eq!(b.text("#otr-state").await, "admin withdrew the invitation.");

    // B resets the E2E identity (after a warning about safety numbers).
    assert!(e2e_panel_unlocked(&b).await);
    b.click("#e2e-reset").await;
    let warning = b.text("#e2e-reset-form .warning").await;
    assert!(
        warning.contains("will see that your safety number changed"),
        "{warning}"
    );
    b.click("#e2e-reset-saved").await;
    b.click("#e2e-reset-submit").await;
    assert_eq!(
        b.text("#e2e-notice").await,
        "Your E2E key was reset. The people you talk to will see a changed safety number."
    );
    open_otr_panel(&b).await;
    let new_number = b
        .wait_for(
            "B's new safety number",
            "const n = document.getElementById('otr-safety-number'); \
             return n && n.textContent !== arguments[0] && n.textContent",
            json!([number]),
        )
        .await
        .as_str()
        .expect("text")
        .to_string();
    assert_eq!(new_number.len(), 71);

    // A looks again: the change is flagged with the new number, the verified mark is gone,
    // and there is no Start OTR until A acknowledges.
    open_otr_panel(&a).await;
    assert!(
        a.text("#otr-key-changed")
            .await
            .contains("You had verified bob."),
        "the warning says the verified key changed"
    );
    assert_eq!(a.text("#otr-new-safety-number").await, new_number);
    shot(&a, "otr-key-changed").await;
    let blocked = a
        .exec(
            "return ['otr-start', 'otr-accept', 'otr-verified', 'otr-verify'] \
             .filter((id) => document.getElementById(id) !== null)",
            json!([]),
        )
        .await;
    assert_eq!(blocked, json!([]), "no Start OTR and no verification yet");

    // B invites: A's invitation cannot be accepted before the change is acknowledged.
    b.click("#otr-start").await;
    wait_otr_state(&b, "offered").await;
    a.element(".otr-invitation .otr-invite-blocked").await;
    let accept = a
        .exec(
            "return document.querySelector('.otr-invite-accept, #otr-accept') !== null",
            json!([]),
        )
        .await;
    assert_eq!(
        accept, false,
        "no Accept while the key change is unacknowledged"
    );
    a.element("#otr-decline").await;

    // A acknowledges: the new number is pinned, unverified, and OTR works.
    a.click("#otr-acknowledge").await;
    a.wait_for(
        "the warning to go",
        "return document.getElementById('otr-key-changed') === null",
        json!([]),
    )
    .await;
    assert_eq!(safety_number(&a).await, new_number);
    a.element("#otr-not-verified").await;
    a.click(".otr-invitation .otr-invite-accept").await;
    wait_otr_state(&a, "established").await;
    wait_otr_state(&b, "established").await;

    let from_a = "otr canary from a 9d4e7b10";
    let from_b = "otr canary from b 2a8c6f35";
    let file_canary_a = "otr file canary from a 61b0c3d8";
    let file_canary_b = "otr file canary from b 7e25a9f4";
    send(&a, from_a).await;
    assert!(message_is_otr(&b, from_a).await);
    send(&b, from_b).await;
    assert!(message_is_otr(&a, from_b).await);
    a.wait_for(
        "delivered",
        "return [...document.querySelectorAll('#messages .message.otr .delivery')] \
         .some(e => e.textContent === 'delivered')",
        json!([]),
    )
    .await;

    // Files off the record, both ways, with the bold key icon: an image is previewed, any
    // file can be downloaded, names stay text, and nothing reaches the upload store.
    let files = tempfile::tempdir().expect("tempdir");
    let image = files.path().join("pixel.png");
    let mut png = PIXEL_PNG.to_vec();
    png.extend_from_slice(file_canary_a.as_bytes());
    std::fs::write(&image, &png).expect("write");
    let odd_name = "<img src=x onerror=window.__pwned()>.txt";
    let text_file = files.path().join(odd_name);
    std::fs::write(&text_file, file_canary_b).expect("write");
    a.type_into("#attach-input", image.to_str().expect("utf-8"))
        .await;
    assert!(
        a.text("#otr-file-limit").await.contains("up to 4 MiB"),
        "the panel says files go off the record"
    );
    for br in [&a, &b] {
        assert!(message_is_otr(br, "pixel.png").await);
        br.wait_for(
            "the image preview",
            "const m = [...document.querySelectorAll('#messages .message.otr')] \
             .find(e => e.querySelector('.file-name')?.textContent === 'pixel.png'); \
             const img = m && m.querySelector('img.file-preview'); \
             return !!img && img.complete && img.naturalWidth === 1 && img.src.startsWith('blob:')",
            json!([]),
        )
        .await;
    }
    b.type_into("#attach-input", text_file.to_str().expect("utf-8"))
        .await;
    for br in [&a, &b] {
        assert!(message_is_otr(br, odd_name).await);
    }
    let link = a
        .exec(
            "const l = [...document.querySelectorAll('#messages .message.otr a.file-name')] \
             .find(e => e.textContent === arguments[0]); \
             return [l.getAttribute('download'), l.href.startsWith('blob:'), \
               l.closest('.message').querySelector('img') === null]",
            json!([odd_name]),
        )
        .await;
    assert_eq!(
        link,
        json!([odd_name, true, true]),
        "a download, not a preview"
    );
    let size = a
        .exec(
            "const l = [...document.querySelectorAll('#messages .message.otr a.file-name')] \
             .find(e => e.textContent === arguments[0]); \
             return l.parentElement.textContent",
            json!([odd_name]),
        )
        .await;
    assert_eq!(
        size,
        json!(format!("{odd_name} ({} B)", file_canary_b.len())),
        "the whole file arrived"
    );
    // The E2E panel (open since the reload) makes room for the conversation.
    a.click("#e2e-button").await;
    a.wait_for(
        "the E2E panel closed",
        "return document.getElementById('e2e-panel').hidden",
        json!([]),
    )
    .await;
    shot(&a, "otr-files").await;
    assert_eq!(stored_uploads(&ts), 0, "nothing in the upload store");

    // Too large for the OTR channel, or for the server's frame limit: a clear error, nothing
    // sent, nothing uploaded.
    let big = files.path().join("big.bin");
    std::fs::write(&big, vec![1u8; 4 * 1024 * 1024 + 1]).expect("write");
    a.type_into("#attach-input", big.to_str().expect("utf-8"))
        .await;
    a.wait_for(
        "the size error",
        "return document.getElementById('upload-error').textContent.includes('at most 4 MiB')",
        json!([]),
    )
    .await;
    let mut small_frames = sotto_api::rest::SettingsMap::new();
    small_frames.insert("otr.max_frame_bytes".into(), json!(2048));
    admin
        .update_settings(&small_frames)
        .await
        .expect("settings");
    let medium = files.path().join("medium.bin");
    std::fs::write(&medium, vec![2u8; 4096]).expect("write");
    a.wait_for(
        "the panel to show the new limit",
        "return document.getElementById('otr-file-limit')?.textContent.includes('up to 1792 bytes')",
        json!([]),
    )
    .await;
    a.type_into("#attach-input", medium.to_str().expect("utf-8"))
        .await;
    a.wait_for(
        "the frame-limit error",
        "return document.getElementById('upload-error').textContent.includes('at most 2048 bytes')",
        json!([]),
    )
    .await;
    let sent = a
        .exec(
            "return [...document.querySelectorAll('#messages .message.otr .file-name')] \
             .map((e) => e.textContent)",
            json!([]),
        )
        .await;
    assert_eq!(sent, json!(["pixel.png", odd_name]), "neither was sent");
    assert_eq!(stored_uploads(&ts), 0, "nor uploaded");

    // While the session holds keys and messages: only A's wrapped device key is stored.
    assert_eq!(storage_inventory(&a).await, remembered_storage(admin_id));
    assert_eq!(storage_inventory(&b).await, empty_storage());

    a.click("#otr-end").await;
    wait_otr_state(&b, "ended").await;
    // The files' bytes go with the session: their blob: URLs are revoked.
    for br in [&a, &b] {
        br.wait_for(
            "the OTR files to be released",
            "return document.querySelectorAll('#messages .otr-file .gone').length === 2 \
             && document.querySelector('#messages .otr-file a, #messages .otr-file img') === null",
            json!([]),
        )
        .await;
    }
    for br in [&a, &b] {
        assert_eq!(
            storage_inventory(br).await,
            if std::ptr::eq(br, &a) {
                remembered_storage(admin_id)
            } else {
                empty_storage()
            }
        );
        assert_clean(br).await;
    }
    a.quit().await;
    b.quit().await;

    // Nothing of the OTR conversation reached the server's disk; the ordinary message did.
    ts.stop().await;
    assert!(
        found_on_disk(ts.dir.path(), ordinary).is_some(),
        "the scan finds what is stored"
    );
    for canary in [from_a, from_b, file_canary_a, file_canary_b] {
        assert_eq!(
            found_on_disk(ts.dir.path(), canary),
            None,
            "{canary} is on the server's disk"
        );
    }
}

#[tokio::test]
async fn an_invitation_in_a_background_tab_shows_a_notification_that_brings_it_back() {
    let mut ts = TestServer::start().await;
    let admin = ts.admin().await;
    let _bob = ts.user(&admin, "bob").await;
    let a = Browser::launch().await;
    log_in(&a, &ts.url, "admin").await;
    let b = Browser::launch().await;
    log_in(&b, &ts.url, "bob").await;
    set_up_e2e_remembering(&a, false).await;
    set_up_e2e_remembering(&b, true).await;
    start_dm(&a, "bob").await;
    send(&a, "hello bob").await;

    // The permission is asked for only on a click: "Enable notifications" in the OTR panel
    // (recorded on its way to the browser, whose headless prompt answers nothing useful).
    open_room(&b, "admin").await;
    open_otr_panel(&b).await;
    b.element("#otr-safety-number").await;
    b.exec(
        "window.__asked = 0; const ask = Notification.requestPermission.bind(Notification); \
         Notification.requestPermission = () => { window.__asked += 1; return ask(); }",
        json!([]),
    )
    .await;
    let asked = b.exec("return window.__asked", json!([])).await;
    assert_eq!(asked, 0, "not asked before the click");
    b.click("#otr-notifications").await;
    b.wait_for(
        "the permission request",
        "return window.__asked === 1",
        json!([]),
    )
    .await;
    b.set_permission("notifications", "granted").await;

    // B reloads (the key is remembered) and leaves the tab for another one: no room open, the
    // tab hidden. The page's notifications are recorded where it hands them to the browser,
    // and announced on a BroadcastChannel to the other tab, so the test can wait for them
    // without bringing the page back to the front.
    reload(&b, &ts).await;
    assert!(e2e_panel_unlocked(&b).await);
    b.exec(
        "window.__notifications = []; const channel = new BroadcastChannel('sotto-test'); \
         const Shown = window.Notification; \
         window.Notification = class extends Shown { constructor(title, options) { \
           super(title, options); window.__notifications.push(this); \
           channel.postMessage({ title, body: options.body, \
             visibility: document.visibilityState }); } }",
        json!([]),
    )
    .await;
    let page = b.window().await;
    b.new_tab().await;
    b.goto(&format!("{}/api/v1/settings", ts.url)).await;
    b.exec(
        "window.__seen = []; \
         new BroadcastChannel('sotto-test').onmessage = (e) => window.__seen.push(e.data)",
        json!([]),
    )
    .await;

    // A invites while B's tab is in the background: B's page shows a notification.
    open_otr_panel(&a).await;
    a.click("#otr-start").await;
    wait_otr_state(&a, "offered").await;
    let seen = b
        .wait_for(
            "the notification",
            "return window.__seen.length > 0 && window.__seen",
            json!([]),
        )
        .await;
    assert_eq!(
        seen,
        json!([{
            "title": "OTR invitation",
            "body": "admin wants to start OTR.",
            "visibility": "hidden",
        }])
    );
    b.close_tab().await;
    b.switch_to(&page).await;
    let title = b.exec("return document.title", json!([])).await;
    assert_eq!(title, "(OTR invitation) Sotto");
    let no_room = b
        .exec(
            "return document.getElementById('room-title') === null",
            json!([]),
        )
        .await;
    assert_eq!(no_room, true, "no room open before the click");

    // Clicking the notification brings the tab back with the conversation open.
    b.exec(
        "window.__notifications[0].dispatchEvent(new Event('click'))",
        json!([]),
    )
    .await;
    b.wait_for(
        "the DM open",
        "return document.getElementById('room-title')?.textContent === 'admin'",
        json!([]),
    )
    .await;
    b.click(".otr-invitation .otr-invite-accept").await;
    wait_otr_state(&a, "established").await;
    for br in [&a, &b] {
        assert_clean(br).await;
    }
    a.quit().await;
    b.quit().await;
    ts.stop().await;
}
