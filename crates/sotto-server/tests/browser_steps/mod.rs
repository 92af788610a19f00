//! Steps the browser tests share: set-up, log-in, sending, the E2E key, the OTR panel, and the
//! markup payloads. Each test file uses a subset.
#![allow(dead_code, unreachable_pub)]

use serde_json::json;
use sotto_api::rest::SettingsMap;
use sotto_client::Client;

use crate::common::{PW, TestServer};
use crate::webdriver::Browser;

/// Runs the first-run set-up in `browser` and waits for the chat screen.
pub async fn set_up_admin(browser: &Browser, ts: &TestServer) {
    let token = ts.server().setup_token.clone().expect("setup token");
    browser.goto(&format!("{}/setup#{token}", ts.url)).await;
    browser
        .type_into("#setup-form input[name=username]", "admin")
        .await;
    browser
        .type_into("#setup-form input[name=password]", PW)
        .await;
    browser.click("#setup-form button[type=submit]").await;
    wait_connected(browser).await;
    assert_eq!(browser.text("#me").await, "admin");
    let path = browser.exec("return location.pathname", json!([])).await;
    assert_eq!(path, "/", "the set-up token leaves the address bar");
}

pub async fn log_in(browser: &Browser, url: &str, name: &str) {
    browser.goto(&format!("{url}/")).await;
    browser
        .type_into("#login-form input[name=username]", name)
        .await;
    browser
        .type_into("#login-form input[name=password]", PW)
        .await;
    browser.click("#login-form button[type=submit]").await;
    wait_connected(browser).await;
    assert_eq!(browser.text("#me").await, name);
}

pub async fn wait_connected(browser: &Browser) {
    browser
        .wait_for(
            "the realtime connection",
            "const s = document.getElementById('connection'); \
             return s && s.dataset.status === 'online'",
            json!([]),
        )
        .await;
}

/// Waits until the open room shows a message whose text is exactly `text`.
pub async fn wait_message(browser: &Browser, text: &str) {
    browser
        .wait_for(
            &format!("message {text:?}"),
            "return [...document.querySelectorAll('#messages .message .text')] \
             .some(e => e.textContent === arguments[0])",
            json!([text]),
        )
        .await;
}

pub async fn send(browser: &Browser, text: &str) {
    browser.type_into("#composer-input", text).await;
    browser.click("#send").await;
    wait_message(browser, text).await;
}

/// Saves a screenshot as `<name>.png` in the directory `SOTTO_SCREENSHOTS` names, if set
/// (`SOTTO_SCREENSHOTS=docs/screenshots` refreshes the ones the docs show).
pub async fn shot(browser: &Browser, name: &str) {
    if let Ok(dir) = std::env::var("SOTTO_SCREENSHOTS") {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir);
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), browser.screenshot().await)
            .expect("write screenshot");
    }
}

pub async fn assert_clean(browser: &Browser) {
    let v = browser
        .exec(
            "return { csp: window.__sottoCspViolations || null, pwned: window.__pwned === true }",
            json!([]),
        )
        .await;
    assert_eq!(v["csp"], json!([]), "no CSP violation");
    assert_eq!(v["pwned"], false, "no script from message content ran");
}
/// Sets up the E2E key in the browser: the generated passphrase, "I have saved it", finish.
/// Returns the passphrase.
pub async fn set_up_e2e(browser: &Browser) -> String {
    browser.click("#e2e-button").await;
    let passphrase = browser.text("#e2e-passphrase").await;
    shot(browser, "e2e-setup").await;
    assert_eq!(passphrase.len(), 24, "five groups of four: {passphrase}");
    let disabled = browser
        .exec(
            "return document.getElementById('e2e-finish').disabled",
            json!([]),
        )
        .await;
    assert_eq!(
        disabled, true,
        "finishing needs the 'saved it' confirmation"
    );
    browser.click("#e2e-saved").await;
    browser.click("#e2e-finish").await;
    browser
        .wait_for(
            "the E2E key to be set up",
            "const s = document.getElementById('e2e-status'); return s && s.textContent",
            json!([]),
        )
        .await;
    passphrase
}

/// Enters the E2E key on a page that has none unlocked.
pub async fn unlock_e2e(browser: &Browser, passphrase: &str) {
    browser.click("#e2e-button").await;
    browser.type_into("#e2e-passphrase-input", passphrase).await;
    browser.click("#e2e-unlock button[type=submit]").await;
    browser
        .wait_for(
            "the E2E key to be unlocked",
            "const s = document.getElementById('e2e-status'); return s && s.textContent",
            json!([]),
        )
        .await;
}

/// Opens the OTR panel of the open DM through the room menu.
pub async fn open_otr_panel(browser: &Browser) {
    browser.click("#room-menu").await;
    browser.click("#menu-otr").await;
    browser.element("#otr-panel").await;
}

pub async fn wait_otr_state(browser: &Browser, state: &str) {
    browser
        .wait_for(
            &format!("OTR state {state}"),
            "const s = document.getElementById('otr-state'); \
             return s && s.dataset.state === arguments[0]",
            json!([state]),
        )
        .await;
}

/// Waits for a message with exactly `text`; returns whether it carries the bold key icon.
pub async fn message_is_otr(browser: &Browser, text: &str) -> bool {
    wait_message(browser, text).await;
    browser
        .exec(
            "const m = [...document.querySelectorAll('#messages .message')] \
             .find(e => e.querySelector('.text').textContent === arguments[0]); \
             return m.classList.contains('otr') && m.querySelector('svg.otr-key') !== null",
            json!([text]),
        )
        .await
        == true
}
/// Markup and script payloads; each would call `window.__pwned()` if it ever ran.
pub const PAYLOADS: &[&str] = &[
    "<script>window.__pwned()</script>",
    "<img src=x onerror=window.__pwned()>",
    "<svg onload=window.__pwned()>",
    "<svg><script>window.__pwned()</script></svg>",
    "<iframe src=\"javascript:window.__pwned()\"></iframe>",
    "<body onload=window.__pwned()>",
    "<a href=\"javascript:window.__pwned()\">click</a>",
    "<details open ontoggle=window.__pwned()>",
    "<input autofocus onfocus=window.__pwned()>",
    "<video><source onerror=window.__pwned()></video>",
    "<audio src=x onerror=window.__pwned()>",
    "<marquee onstart=window.__pwned()>",
    "<object data=\"javascript:window.__pwned()\">",
    "<embed src=\"javascript:window.__pwned()\">",
    "<math><mtext><script>window.__pwned()</script></mtext></math>",
    "\"><script>window.__pwned()</script>",
    "'><img src=x onerror=window.__pwned()>",
    "</textarea><script>window.__pwned()</script>",
    "</title><script>window.__pwned()</script>",
    "<style>@import 'javascript:window.__pwned()';</style>",
    "<link rel=stylesheet href=\"javascript:window.__pwned()\">",
    "<meta http-equiv=refresh content=\"0;url=javascript:window.__pwned()\">",
    "<form action=\"javascript:window.__pwned()\"><button>go</button></form>",
    "<template><script>window.__pwned()</script></template>",
    "<img src=\"x\" onerror=\"&#119;indow.__pwned()\">",
    "<scr<script>ipt>window.__pwned()</scr</script>ipt>",
    "javascript:window.__pwned()",
    "${window.__pwned()}",
    "{{constructor.constructor('window.__pwned()')()}}",
    "<div style=\"background:url(javascript:window.__pwned())\">",
    "<base href=\"javascript:window.__pwned()//\">",
    "<noscript><p title=\"</noscript><img src=x onerror=window.__pwned()>\">",
    "&lt;script&gt;window.__pwned()&lt;/script&gt;",
    "\u{202e}<img src=x onerror=window.__pwned()>",
];

/// Clicks the sidebar entry whose room name is exactly `name`.
pub async fn open_room(browser: &Browser, name: &str) {
    browser
        .click_text("#rooms .room-link", Some(".room-name"), name)
        .await;
    browser
        .wait_for(
            &format!("room {name:?} open"),
            "const t = document.getElementById('room-title'); \
             return !!t && t.textContent === arguments[0]",
            json!([name]),
        )
        .await;
}

/// Whether the open room's menu offers "OTR".
pub async fn menu_offers_otr(browser: &Browser) -> bool {
    browser
        .exec(
            "const m = document.getElementById('room-menu-list'); \
             if (m.hidden) document.getElementById('room-menu').click(); \
             return document.getElementById('menu-otr') !== null",
            json!([]),
        )
        .await
        == true
}

/// Everything the page has put in browser storage, described exactly: the keys of
/// `localStorage` and `sessionStorage`, the Cache API's caches, and every IndexedDB database
/// with each record of each store (binary values and CryptoKeys by type, length and flags,
/// never by content).
pub async fn storage_inventory(browser: &Browser) -> serde_json::Value {
    browser
        .exec(
            "return (async () => { \
               const describe = (v) => { \
                 if (v instanceof CryptoKey) return { type: 'CryptoKey', extractable: v.extractable, \
                   algorithm: v.algorithm.name, length: v.algorithm.length, usages: [...v.usages].sort() }; \
                 if (v instanceof ArrayBuffer) return { type: 'ArrayBuffer', length: v.byteLength }; \
                 if (ArrayBuffer.isView(v)) return { type: v.constructor.name, length: v.byteLength }; \
                 if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort() \
                   .map((k) => [k, describe(v[k])])); \
                 return v; }; \
               const settle = (r) => new Promise((ok, fail) => { \
                 r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); }); \
               const databases = []; \
               for (const info of await indexedDB.databases()) { \
                 const db = await settle(indexedDB.open(info.name)); \
                 const stores = {}; \
                 for (const name of db.objectStoreNames) { \
                   const all = await settle(db.transaction(name).objectStore(name).getAll()); \
                   stores[name] = all.map(describe); } \
                 db.close(); \
                 databases.push({ name: info.name, stores }); } \
               return { localStorage: Object.keys(localStorage), \
                 sessionStorage: Object.keys(sessionStorage), \
                 caches: typeof caches === 'undefined' ? [] : await caches.keys(), \
                 indexedDB: databases }; })()",
            json!([]),
        )
        .await
}

/// The storage inventory of a page that stored nothing.
pub fn empty_storage() -> serde_json::Value {
    json!({ "localStorage": [], "sessionStorage": [], "caches": [], "indexedDB": [] })
}

/// The storage inventory of a page that remembers `user_id`'s E2E key on this device: the
/// one wrapped record (a non-extractable AES-GCM-256 key, a 12-byte IV, and the 32-byte
/// device key sealed with its 16-byte tag), and nothing else.
pub fn remembered_storage(user_id: i64) -> serde_json::Value {
    json!({
        "localStorage": [],
        "sessionStorage": [],
        "caches": [],
        "indexedDB": [{
            "name": "sotto-device",
            "stores": { "remembered-keys": [{
                "iv": { "type": "Uint8Array", "length": 12 },
                "userId": user_id,
                "wrapped": { "type": "ArrayBuffer", "length": 48 },
                "wrappingKey": {
                    "type": "CryptoKey",
                    "extractable": false,
                    "algorithm": "AES-GCM",
                    "length": 256,
                    "usages": ["decrypt", "encrypt"],
                },
            }] },
        }],
    })
}

/// Sets up the E2E key with the generated passphrase, ticking "Remember on this device" when
/// `remember`. Returns the passphrase.
pub async fn set_up_e2e_remembering(browser: &Browser, remember: bool) -> String {
    browser.click("#e2e-button").await;
    let passphrase = browser.text("#e2e-passphrase").await;
    browser.click("#e2e-saved").await;
    if remember {
        browser.click("#e2e-remember").await;
    }
    browser.click("#e2e-finish").await;
    wait_e2e_unlocked(browser).await;
    passphrase
}

/// Enters the E2E key (the panel's unlock form must be showing or about to), ticking
/// "Remember on this device" when `remember`.
pub async fn enter_e2e_key(browser: &Browser, passphrase: &str, remember: bool) {
    browser.type_into("#e2e-passphrase-input", passphrase).await;
    if remember {
        browser.click("#e2e-remember").await;
    }
    browser.click("#e2e-unlock button[type=submit]").await;
    wait_e2e_unlocked(browser).await;
}

/// Waits for the E2E panel to say the key is unlocked in this tab.
pub async fn wait_e2e_unlocked(browser: &Browser) {
    browser
        .wait_for(
            "the E2E key to be unlocked",
            "const s = document.getElementById('e2e-status'); return s && s.textContent",
            json!([]),
        )
        .await;
}

/// Opens the E2E panel (if closed) and returns whether the key turned out unlocked (`true`)
/// or the unlock form is asked for (`false`), once one of the two shows.
pub async fn e2e_panel_unlocked(browser: &Browser) -> bool {
    let hidden = browser
        .exec(
            "return document.getElementById('e2e-panel').hidden",
            json!([]),
        )
        .await;
    if hidden == true {
        browser.click("#e2e-button").await;
    }
    browser
        .wait_for(
            "the E2E panel to settle",
            "if (document.getElementById('e2e-status')) return 'unlocked'; \
             if (document.getElementById('e2e-passphrase-input')) return 'locked'; \
             return null",
            json!([]),
        )
        .await
        == "unlocked"
}

/// Opens (or creates) the DM with `name` from the directory.
pub async fn start_dm(browser: &Browser, name: &str) {
    browser.click("#new-dm").await;
    browser.click_text("#directory .person", None, name).await;
    browser
        .wait_for(
            &format!("the DM with {name} open"),
            "return document.getElementById('room-title')?.textContent === arguments[0]",
            json!([name]),
        )
        .await;
}

/// Sets the registration policy as the admin.
pub async fn set_policy(admin: &Client, policy: &str) {
    let mut change = SettingsMap::new();
    change.insert("registration.policy".into(), json!(policy));
    admin.update_settings(&change).await.expect("settings");
}

/// Empties the register form and fills it in, then submits it.
pub async fn submit_register(b: &Browser, username: &str, password: &str, again: &str) {
    b.element("#register-form").await;
    b.exec(
        "for (const i of document.querySelectorAll('#register-form input')) i.value = ''",
        json!([]),
    )
    .await;
    b.type_into("#register-form input[name=username]", username)
        .await;
    b.type_into("#register-form input[name=password]", password)
        .await;
    b.type_into("#register-form input[name=password2]", again)
        .await;
    b.click("#register-form button[type=submit]").await;
}

/// Waits for the register form's error and returns its code and text.
pub async fn register_error(b: &Browser, code: &str) -> String {
    b.wait_for(
        &format!("the register error {code}"),
        "const e = document.getElementById('register-error'); \
         return !!e && e.dataset.code === arguments[0] && e.textContent",
        json!([code]),
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// The first file under `dir` that contains `needle`.
pub fn found_on_disk(dir: &std::path::Path, needle: &str) -> Option<std::path::PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                stack.push(entry.expect("dir entry").path());
            }
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            return Some(path);
        }
    }
    None
}

/// A 1x1 PNG (transparent); bytes after its end are ignored by image decoders.
pub const PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];
