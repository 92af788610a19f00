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

    // Browser 1 changes the key (a new generated passphrase, "I have saved it"). Its own
    // record follows the change.
    b1.click("#e2e-change").await;
    let new_passphrase = b1.text("#e2e-change-passphrase").await;
    assert_eq!(new_passphrase.len(), 24);
    assert_ne!(new_passphrase, passphrase);
    let disabled = b1
        .exec(
            "return document.getElementById('e2e-change-submit').disabled",
            json!([]),
        )
        .await;
    assert_eq!(disabled, true, "changing needs the 'saved it' confirmation");
    b1.click("#e2e-change-saved").await;
    b1.click("#e2e-change-submit").await;
    assert_eq!(
        b1.text("#e2e-notice").await,
        "Your E2E key was changed. Use the new passphrase from now on."
    );
    assert_eq!(storage_inventory(&b1).await, remembered_storage(bob_id));
    reload(&b1, &ts).await;
    assert!(
        e2e_panel_unlocked(&b1).await,
        "the changing browser's record was renewed"
    );

    // Browser 2's record no longer opens the backup: it is deleted, and the page asks for
    // the passphrase, saying why. The old passphrase is refused, the new one works.
    reload(&b2, &ts).await;
    assert!(!e2e_panel_unlocked(&b2).await, "a stale record is refused");
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
    enter_e2e_key(&b2, &new_passphrase, true).await;
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
