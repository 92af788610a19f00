//! The admin page in real headless Chromium: settings changed through the form take effect live
//! in another browser, a bad value shows the server's error and loses nothing, Deactivate asks
//! first, invite links work; a non-admin sees no admin page and the server refuses them.

mod browser_steps;
mod common;
mod webdriver;

use browser_steps::*;

use common::{PW, TestServer};
use serde_json::json;
use sotto_client::Error;
use webdriver::Browser;

/// Every key of the server's settings registry: the form must show them all.
const SETTINGS: &[&str] = &[
    "otr.enabled",
    "otr.invite_timeout_secs",
    "otr.max_frame_bytes",
    "e2e.enabled",
    "e2e.encrypt_new_dms",
    "e2e.encrypt_new_groups",
    "registration.policy",
    "messages.max_bytes",
    "uploads.max_bytes",
    "ratelimit.login_per_account_per_min",
    "ratelimit.login_per_ip_per_min",
    "ratelimit.otr_offers_per_min",
    "ratelimit.otr_frames_per_sec",
    "ratelimit.otr_frame_burst",
];

/// The id of a setting's input in the form.
fn input(key: &str) -> String {
    format!("#setting-{}", key.replace('.', "-"))
}

/// The value of the form control matching `css` (a checkbox answers its `checked`).
async fn form_value(browser: &Browser, css: &str) -> serde_json::Value {
    browser.element(css).await;
    browser
        .exec(
            "const e = document.querySelector(arguments[0]); \
             return e.type === 'checkbox' ? e.checked : e.value",
            json!([css]),
        )
        .await
}

/// Waits until the element matching `css` has exactly `text`.
async fn wait_text(browser: &Browser, css: &str, text: &str) {
    browser
        .wait_for(
            &format!("{css} to say {text:?}"),
            "const e = document.querySelector(arguments[0]); \
             return !!e && e.textContent === arguments[1]",
            json!([css, text]),
        )
        .await;
}

#[tokio::test]
async fn the_admin_changes_settings_live_deactivates_a_user_and_creates_an_invite() {
    let ts = TestServer::start().await;
    let a = Browser::launch().await;
    set_up_admin(&a, &ts).await;
    let mut sdk = ts.client();
    sdk.login("admin", PW).await.expect("admin login");
    let bob_id = sdk
        .admin_create_user("bob", PW, false)
        .await
        .expect("create bob")
        .id;
    sdk.admin_create_user("carol", PW, false)
        .await
        .expect("create carol");

    // Bob is no admin: no Admin button, and the server refuses him the admin API.
    let b = Browser::launch().await;
    log_in(&b, &ts.url, "bob").await;
    let seen = b
        .exec(
            "return [document.getElementById('admin-button'), document.getElementById('admin')]",
            json!([]),
        )
        .await;
    assert_eq!(seen, json!([null, null]), "no admin page for bob");
    b.exec(
        "fetch('/api/v1/admin/settings').then(r => { window.__adminStatus = r.status; })",
        json!([]),
    )
    .await;
    let status = b
        .wait_for(
            "the admin API's answer",
            "return window.__adminStatus || null",
            json!([]),
        )
        .await;
    assert_eq!(status, 403, "the server refuses a non-admin");

    // Bob opens his DM with the admin, whose menu offers OTR for now.
    b.click("#new-dm").await;
    b.click_text("#directory .person", None, "admin").await;
    open_room(&b, "admin").await;
    assert!(menu_offers_otr(&b).await, "OTR is on by default");

    // The admin page shows every setting with its current value (and until opened, is not
    // displayed at all: it would cover the chat).
    let shown = a
        .exec(
            "return document.getElementById('admin').checkVisibility()",
            json!([]),
        )
        .await;
    assert_eq!(shown, false, "the admin page starts closed");
    a.click("#admin-button").await;
    a.element("#settings-form").await;
    for key in SETTINGS {
        a.element(&input(key)).await;
    }
    let controls = a
        .exec(
            "return document.querySelectorAll('#settings-form input, #settings-form select').length",
            json!([]),
        )
        .await;
    assert_eq!(controls, SETTINGS.len(), "one input per setting, no more");
    assert_eq!(form_value(&a, &input("otr.enabled")).await, true);
    assert_eq!(
        form_value(&a, &input("otr.invite_timeout_secs")).await,
        "60"
    );
    assert_eq!(
        form_value(&a, &input("registration.policy")).await,
        "invite_only"
    );
    assert_eq!(
        a.exec(
            "return document.getElementById('admin-title') === document.activeElement",
            json!([])
        )
        .await,
        true,
        "opening the page moves the focus to its title"
    );

    // Two changes, one of them out of range: the server refuses both (all or nothing), its
    // error code is shown, the refused input is marked, and both edits are still there.
    a.click(&input("otr.enabled")).await;
    a.clear(&input("otr.invite_timeout_secs")).await;
    a.type_into(&input("otr.invite_timeout_secs"), "2").await;
    a.click("#settings-save").await;
    let error = a
        .wait_for(
            "the server's error",
            "return document.getElementById('settings-error').textContent",
            json!([]),
        )
        .await;
    assert_eq!(
        error,
        "invalid_setting: otr.invite_timeout_secs must be an integer in 5..=3600"
    );
    assert_eq!(form_value(&a, &input("otr.enabled")).await, false);
    assert_eq!(form_value(&a, &input("otr.invite_timeout_secs")).await, "2");
    let marked = a
        .exec(
            "const e = document.querySelector(arguments[0]); \
             return [e.getAttribute('aria-invalid'), document.activeElement === e]",
            json!([input("otr.invite_timeout_secs")]),
        )
        .await;
    assert_eq!(
        marked,
        json!(["true", true]),
        "the refused input is marked and focused"
    );
    let stored = sdk.admin_settings().await.expect("settings");
    assert_eq!(stored["otr.enabled"], true, "nothing was saved");
    assert_eq!(stored["otr.invite_timeout_secs"], 60);
    assert!(menu_offers_otr(&b).await, "bob still has OTR");

    // Corrected, and the registration policy too: saved, and bob's OTR entry goes live.
    a.clear(&input("otr.invite_timeout_secs")).await;
    a.type_into(&input("otr.invite_timeout_secs"), "30").await;
    a.click(&format!(
        "{} option[value=open]",
        input("registration.policy")
    ))
    .await;
    a.click("#settings-save").await;
    wait_text(&a, "#settings-status", "Saved (3 changed).").await;
    assert_eq!(a.text("#settings-error").await, "");
    b.wait_for(
        "the OTR entry to leave bob's menu",
        "const m = document.getElementById('room-menu-list'); \
         if (m.hidden) document.getElementById('room-menu').click(); \
         return document.getElementById('menu-otr') === null",
        json!([]),
    )
    .await;
    let stored = sdk.admin_settings().await.expect("settings");
    assert_eq!(stored["otr.enabled"], false);
    assert_eq!(stored["otr.invite_timeout_secs"], 30);
    assert_eq!(stored["registration.policy"], "open");
    // Another admin changes a setting meanwhile: the next save here shows it and does not
    // send the old value back.
    sdk.update_settings(&[("messages.max_bytes".to_string(), json!(2048))].into())
        .await
        .expect("another admin's change");
    a.click(&input("e2e.enabled")).await;
    a.click("#settings-save").await;
    wait_text(&a, "#settings-status", "Saved (1 changed).").await;
    assert_eq!(form_value(&a, &input("messages.max_bytes")).await, "2048");
    let stored = sdk.admin_settings().await.expect("settings");
    assert_eq!(
        stored["messages.max_bytes"], 2048,
        "the other admin's change stands"
    );
    assert_eq!(stored["e2e.enabled"], false);
    a.click("#settings-save").await;
    wait_text(&a, "#settings-status", "Nothing changed.").await;
    a.exec(
        "document.getElementById('admin').scrollTop = 0; document.activeElement.blur()",
        json!([]),
    )
    .await;
    shot(&a, "admin-settings").await;

    // Deactivate asks first: Cancel keeps carol, Escape keeps her too.
    let deactivate = format!("#admin-user-list button[data-user-id='{bob_id}']");
    a.element("#admin-user-list li[data-user-id] .username")
        .await;
    let listed = a
        .exec(
            "return [...document.querySelectorAll('#admin-user-list .username')].map(e => e.textContent)",
            json!([]),
        )
        .await;
    assert_eq!(listed, json!(["admin", "bob", "carol"]));
    assert_eq!(
        a.exec(
            "return document.querySelectorAll('#admin-user-list button.danger').length",
            json!([])
        )
        .await,
        2,
        "no Deactivate for the admin themself"
    );
    a.click(&deactivate).await;
    wait_text(&a, "#deactivate-question", "Deactivate bob?").await;
    assert_eq!(
        a.focused_id().await,
        "deactivate-cancel",
        "Cancel is the default"
    );
    a.click("#deactivate-cancel").await;
    a.click(&deactivate).await;
    a.wait_for(
        "the dialog open",
        "return document.getElementById('deactivate-dialog').open",
        json!([]),
    )
    .await;
    a.press_keys(webdriver::keys::ESCAPE).await;
    a.wait_for(
        "the dialog closed",
        "return !document.getElementById('deactivate-dialog').open",
        json!([]),
    )
    .await;
    assert!(
        a.exec(
            "return document.getElementById('admin') .hidden === false",
            json!([])
        )
        .await
            == true,
        "Escape closed the dialog, not the page"
    );
    let mut bob = ts.client();
    bob.login("bob", PW).await.expect("bob is still active");

    // Confirmed: bob is gone from the list, logged out, and cannot log in again.
    a.click(&deactivate).await;
    a.click("#deactivate-confirm").await;
    a.wait_for(
        "bob gone from the list",
        "return document.querySelector(arguments[0]) === null",
        json!([deactivate]),
    )
    .await;
    wait_text(
        &a,
        "#users-status",
        "bob was deactivated: logged out everywhere, and can no longer log in.",
    )
    .await;
    match ts.client().login("bob", PW).await {
        Err(Error::Api { status, .. }) => assert!(status == 401 || status == 403, "{status}"),
        other => panic!("bob logged in after deactivation: {other:?}"),
    }
    assert!(bob.me().await.is_err(), "bob's session ended");

    // An invite link: shown as text with a copy button, and it registers one account (under
    // the invite-only policy again, where a registration needs one).
    sdk.update_settings(&[("registration.policy".to_string(), json!("invite_only"))].into())
        .await
        .expect("invite only");
    a.click("#create-invite").await;
    let link = a
        .wait_for(
            "the invite link",
            "const e = document.getElementById('invite-url'); return e && e.value",
            json!([]),
        )
        .await;
    let link = link.as_str().expect("link").to_string();
    let (base, token) = link.split_once("/register#").expect("a /register# link");
    assert!(base.starts_with("http"), "an absolute link");
    assert!(token.len() >= 16, "the link carries the token");
    a.click("#copy-invite").await;
    wait_text(&a, "#invite-copied", "Copied.").await;
    ts.client()
        .register("dave", PW, Some(token))
        .await
        .expect("the link's token registers dave");
    assert!(
        ts.client().register("erin", PW, Some(token)).await.is_err(),
        "an invite registers one account only"
    );

    // Closing the page (Escape) removes the link from it and returns the focus to the button.
    a.click("#admin-title").await;
    a.press_keys(webdriver::keys::ESCAPE).await;
    a.wait_for(
        "the admin page closed",
        "return document.getElementById('admin').hidden",
        json!([]),
    )
    .await;
    assert_eq!(a.focused_id().await, "admin-button");
    let shown = a
        .exec(
            "return [document.getElementById('admin').checkVisibility(), \
             document.getElementById('composer-input') !== null || \
             document.querySelector('#room .empty').checkVisibility()]",
            json!([]),
        )
        .await;
    assert_eq!(shown, json!([false, true]), "the chat is back");
    let left = a
        .exec(
            "return document.getElementById('invite-url') === null \
             && document.body.innerText.indexOf(arguments[0]) < 0",
            json!([token]),
        )
        .await;
    assert_eq!(left, true, "the invite link does not linger");
    for br in [&a, &b] {
        assert_clean(br).await;
    }
    a.quit().await;
    b.quit().await;
}

/// `document.documentElement.scrollWidth`: more than the window is a horizontal scroll bar.
async fn page_width(browser: &Browser) -> u64 {
    browser
        .exec("return document.documentElement.scrollWidth", json!([]))
        .await
        .as_u64()
        .expect("scrollWidth")
}

#[tokio::test]
async fn at_360_px_wide_nothing_scrolls_sideways_and_the_keyboard_does_everything() {
    use webdriver::keys::{ENTER, ESCAPE, SPACE, TAB};
    let ts = TestServer::start().await;
    let sdk = ts.admin().await;
    let bob = ts.user(&sdk, "bob").await;
    // A long unbroken name (the longest allowed) and message must wrap, not widen the page.
    let long = "x".repeat(120);
    ts.user(&sdk, &format!("carol{}", "x".repeat(27))).await;

    let a = Browser::launch().await;
    a.set_window_size(360, 740).await;
    a.goto(&format!("{}/", ts.url)).await;
    let inner = a.exec("return window.innerWidth", json!([])).await;
    assert_eq!(inner, 360, "the viewport is 360 px wide");

    // Log in with the keyboard: Enter in the password field submits.
    a.type_into("#login-form input[name=username]", "admin")
        .await;
    a.type_into("#login-form input[name=password]", &format!("{PW}{ENTER}"))
        .await;
    wait_connected(&a).await;
    assert!(page_width(&a).await <= 360, "the chat screen fits");

    // New message → Tab to bob → Space: the DM opens with the focus in the composer.
    a.type_into("#new-dm", ENTER).await;
    a.element("#directory .person").await;
    assert!(page_width(&a).await <= 360, "the directory fits");
    a.press_keys(TAB).await;
    let focused = a
        .exec("return document.activeElement.textContent", json!([]))
        .await;
    assert_eq!(
        focused, "bob",
        "Tab goes from New message to the first person"
    );
    a.press_keys(SPACE).await;
    a.wait_for(
        "the DM with bob open",
        "return document.getElementById('room-title')?.textContent === 'bob'",
        json!([]),
    )
    .await;
    a.wait_for(
        "the focus in the composer",
        "return document.activeElement?.id === 'composer-input'",
        json!([]),
    )
    .await;
    a.press_keys(&format!("from the keyboard {long}{ENTER}"))
        .await;
    wait_message(&a, &format!("from the keyboard {long}")).await;
    let room = bob.rooms().await.expect("rooms")[0].id;
    bob.send_text(room, &format!("an answer {long}"))
        .await
        .expect("send");
    wait_message(&a, &format!("an answer {long}")).await;
    shot(&a, "narrow-360px").await;
    assert!(page_width(&a).await <= 360, "the room view fits");

    // The room menu: Enter opens it with the focus on its first entry, Escape closes it and
    // gives the focus back to the button.
    a.type_into("#room-menu", ENTER).await;
    a.wait_for(
        "the focus on the menu's first entry",
        "return document.activeElement?.id === 'menu-otr'",
        json!([]),
    )
    .await;
    assert_eq!(
        a.exec(
            "return document.getElementById('room-menu').getAttribute('aria-expanded')",
            json!([])
        )
        .await,
        "true"
    );
    a.press_keys(ESCAPE).await;
    a.wait_for(
        "the menu closed",
        "return document.getElementById('room-menu-list').hidden",
        json!([]),
    )
    .await;
    assert_eq!(a.focused_id().await, "room-menu");
    assert_eq!(
        a.exec(
            "return document.getElementById('room-menu').getAttribute('aria-expanded')",
            json!([])
        )
        .await,
        "false"
    );
    // Enter on the entry opens the OTR panel.
    a.press_keys(ENTER).await;
    a.wait_for(
        "the focus on the menu's first entry",
        "return document.activeElement?.id === 'menu-otr'",
        json!([]),
    )
    .await;
    a.press_keys(ENTER).await;
    a.element("#otr-panel").await;
    assert!(page_width(&a).await <= 360, "the OTR panel fits");

    // The E2E key panel: Enter opens it with the focus inside, Escape closes it and gives the
    // focus back to its button.
    a.type_into("#e2e-button", ENTER).await;
    a.wait_for(
        "the focus in the E2E panel",
        "return document.getElementById('e2e-panel').contains(document.activeElement)",
        json!([]),
    )
    .await;
    assert!(page_width(&a).await <= 360, "the E2E panel fits");
    a.press_keys(ESCAPE).await;
    a.wait_for(
        "the E2E panel closed",
        "return document.getElementById('e2e-panel').hidden",
        json!([]),
    )
    .await;
    assert_eq!(a.focused_id().await, "e2e-button");

    // The admin page by keyboard: Space on a checkbox, Enter in a number field saves, Escape
    // closes and the focus returns to the Admin button.
    a.type_into("#admin-button", ENTER).await;
    a.element("#settings-form").await;
    assert_eq!(a.focused_id().await, "admin-title");
    a.element("#admin-user-list .username").await;
    assert!(page_width(&a).await <= 360, "the admin page fits");
    a.type_into("#setting-e2e-enabled", SPACE).await;
    a.clear("#setting-otr-invite_timeout_secs").await;
    a.type_into("#setting-otr-invite_timeout_secs", &format!("45{ENTER}"))
        .await;
    a.wait_for(
        "saved",
        "return document.getElementById('settings-status').textContent === 'Saved (2 changed).'",
        json!([]),
    )
    .await;
    let stored = sdk.admin_settings().await.expect("settings");
    assert_eq!(stored["e2e.enabled"], false);
    assert_eq!(stored["otr.invite_timeout_secs"], 45);
    a.press_keys(ESCAPE).await;
    a.wait_for(
        "the admin page closed",
        "return document.getElementById('admin').hidden",
        json!([]),
    )
    .await;
    assert_eq!(a.focused_id().await, "admin-button");
    assert!(page_width(&a).await <= 360, "the chat fits again");

    // The focus is always visible: the focused button draws an outline.
    let outline = a
        .exec(
            "return getComputedStyle(document.activeElement).outlineStyle",
            json!([]),
        )
        .await;
    assert_eq!(outline, "solid", "keyboard focus is visible");
    assert_clean(&a).await;
    a.quit().await;
}
