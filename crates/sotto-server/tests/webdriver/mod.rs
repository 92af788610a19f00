//! A small WebDriver client for the browser tests: starts Debian's `chromedriver` on a free
//! port, opens one headless Chromium session with a fresh profile, and speaks the W3C
//! WebDriver HTTP protocol with reqwest. Waiting is always bounded polling of a DOM condition.
#![allow(dead_code, unreachable_pub)]

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a DOM condition may take to become true.
pub const DOM_WAIT: Duration = Duration::from_secs(30);
/// Key under which W3C WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

fn binary(env: &str, default: &str) -> String {
    let path = std::env::var(env).unwrap_or_else(|_| default.to_string());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: install Debian's chromium and chromium-driver \
         (apt-get install -y chromium chromium-driver) or set {env}"
    );
    path
}

/// A free local port (bound, read, released: chromedriver cannot take port 0).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// One headless Chromium, driven through its own chromedriver.
pub struct Browser {
    driver: tokio::process::Child,
    port: u16,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a Chromium session with a fresh profile directory.
    pub async fn launch() -> Browser {
        let chromium = binary("SOTTO_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = binary("SOTTO_CHROMEDRIVER", "/usr/bin/chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        // A port picked this way can be taken by someone else before chromedriver binds it;
        // try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut driver = tokio::process::Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("start chromedriver");
            let base = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut ready = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = driver.try_wait() {
                    break;
                }
                if let Ok(r) = http.get(format!("{base}/status")).send().await
                    && let Ok(v) = r.json::<Value>().await
                    && v["value"]["ready"] == true
                {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !ready {
                let _ = driver.kill().await;
                continue;
            }
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-dev-shm-usage",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--no-first-run",
                        "--window-size=1200,900",
                        format!("--user-data-dir={}", profile.path().display()),
                    ]
                }
            }}});
            let r: Value = http
                .post(format!("{base}/session"))
                .json(&caps)
                .send()
                .await
                .expect("new session")
                .json()
                .await
                .expect("session JSON");
            let session = r["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no session: {r}"))
                .to_string();
            return Browser {
                driver,
                port,
                http,
                session,
                _profile: profile,
            };
        }
        panic!("chromedriver did not start");
    }

    fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/session/{}{path}",
            self.port, self.session
        )
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        match self.try_call(method, path, body).await {
            Ok(v) => v,
            Err((err, message)) => panic!("webdriver {path}: {err}: {message}"),
        }
    }

    /// A WebDriver command; `Err((error code, message))` for a WebDriver error.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, (String, String)> {
        let req = self.http.request(method.clone(), self.url(path));
        let req = if method == reqwest::Method::GET {
            req
        } else {
            req.json(&body)
        };
        let r: Value = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"))
            .json()
            .await
            .expect("webdriver JSON");
        if let Some(err) = r["value"]["error"].as_str() {
            return Err((err.to_string(), r["value"]["message"].to_string()));
        }
        Ok(r["value"].clone())
    }

    /// Navigates and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// Polls `script` until it returns something other than null/false/"" and returns that;
    /// panics after [`DOM_WAIT`] naming `what`.
    pub async fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + DOM_WAIT;
        loop {
            let v = self.exec(script, args.clone()).await;
            let truthy = !(v.is_null() || v == false || v == "");
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let body = self
                    .exec(
                        "return document.body ? document.body.innerText : ''",
                        json!([]),
                    )
                    .await;
                panic!("timed out waiting for {what}; the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for an element matching `css` to exist and returns its WebDriver reference.
    pub async fn element(&self, css: &str) -> String {
        self.wait_for(
            &format!("element {css}"),
            "return document.querySelector(arguments[0]) !== null",
            json!([css]),
        )
        .await;
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT_KEY].as_str().expect("element id").to_string()
    }

    /// Clicks the element matching `css` (waiting for it). The views re-render, so an
    /// element found may be replaced before the click lands: then it is looked up again.
    pub async fn click(&self, css: &str) {
        self.click_found(
            &format!("element {css}"),
            "return document.querySelector(arguments[0])",
            json!([css]),
        )
        .await;
    }

    /// Clicks the first element matching `css` whose text (or the text of its descendant
    /// matching `part`, when given) is exactly `text`.
    pub async fn click_text(&self, css: &str, part: Option<&str>, text: &str) {
        self.click_found(
            &format!("{css} with text {text:?}"),
            "return [...document.querySelectorAll(arguments[0])].find(e => { \
               const t = arguments[1] ? e.querySelector(arguments[1]) : e; \
               return !!t && t.textContent === arguments[2]; }) || null",
            json!([css, part, text]),
        )
        .await;
    }

    /// Clicks the element `script` returns, retrying (bounded) while there is none or it went
    /// stale.
    async fn click_found(&self, what: &str, script: &str, args: Value) {
        let deadline = Instant::now() + DOM_WAIT;
        let mut last = String::new();
        while Instant::now() < deadline {
            let found = self.exec(script, args.clone()).await;
            if let Some(id) = found[ELEMENT_KEY].as_str() {
                match self
                    .try_call(
                        reqwest::Method::POST,
                        &format!("/element/{id}/click"),
                        json!({}),
                    )
                    .await
                {
                    Ok(_) => return,
                    Err((err, message)) => last = format!("{err}: {message}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let body = self
            .exec(
                "return document.body ? document.body.innerText : ''",
                json!([]),
            )
            .await;
        panic!("could not click {what}: {last}; the page shows:\n{body}");
    }

    /// Types `text` into the element matching `css` (waiting for it; the composer and the
    /// forms are never re-rendered while typing).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Empties the input or textarea matching `css` (waiting for it).
    pub async fn clear(&self, css: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            json!({}),
        )
        .await;
    }

    /// Presses and releases each key of `keys` in turn, as a keyboard would, into whatever
    /// has the focus (WebDriver Actions). Special keys are the [`keys`] constants.
    pub async fn press_keys(&self, keys: &str) {
        let mut actions = Vec::new();
        for key in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": key.to_string()}));
            actions.push(json!({"type": "keyUp", "value": key.to_string()}));
        }
        self.call(
            reqwest::Method::POST,
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
        self.call(reqwest::Method::DELETE, "/actions", json!({}))
            .await;
    }

    /// Resizes the window (headless: the viewport) to `width` x `height` CSS pixels.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .await;
    }

    /// The id of the focused element ("" when it has none, or the body has the focus).
    pub async fn focused_id(&self) -> String {
        self.exec(
            "const e = document.activeElement; return e && e !== document.body ? e.id : ''",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// The text of the element matching `css`, once it exists.
    pub async fn text(&self, css: &str) -> String {
        self.element(css).await;
        self.exec(
            "return document.querySelector(arguments[0]).textContent",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Sets a permission of the page's origin (WebDriver "Set Permission"), e.g.
    /// `("notifications", "granted")`.
    pub async fn set_permission(&self, name: &str, state: &str) {
        self.call(
            reqwest::Method::POST,
            "/permissions",
            json!({ "descriptor": { "name": name }, "state": state }),
        )
        .await;
    }

    /// The handle of the current window (tab).
    pub async fn window(&self) -> String {
        let v = self
            .call(reqwest::Method::GET, "/window", Value::Null)
            .await;
        v.as_str().expect("window handle").to_string()
    }

    /// Opens a new tab in the same browser (same profile, so the same cookies), switches to
    /// it and returns its handle.
    pub async fn new_tab(&self) -> String {
        let v = self
            .call(reqwest::Method::POST, "/window/new", json!({"type": "tab"}))
            .await;
        let handle = v["handle"].as_str().expect("new window handle").to_string();
        self.switch_to(&handle).await;
        handle
    }

    /// Makes the window (tab) `handle` the one later commands act on.
    pub async fn switch_to(&self, handle: &str) {
        self.call(
            reqwest::Method::POST,
            "/window",
            json!({ "handle": handle }),
        )
        .await;
    }

    /// Closes the current tab (then switch to another one).
    pub async fn close_tab(&self) {
        self.call(reqwest::Method::DELETE, "/window", json!({}))
            .await;
    }

    /// Deletes the cookie `name` of the current page's site (HttpOnly ones too), as its
    /// expiry would.
    pub async fn delete_cookie(&self, name: &str) {
        self.call(
            reqwest::Method::DELETE,
            &format!("/cookie/{name}"),
            json!({}),
        )
        .await;
    }

    /// Saves what the page downloads (a link with `download`, a `blob:` URL included) into
    /// `dir`, through Chromium's DevTools protocol (chromedriver's `goog/cdp/execute`). The
    /// page's CSP keeps the test's scripts from reading a `blob:` URL themselves.
    pub async fn download_to(&self, dir: &std::path::Path) {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            json!({
                "cmd": "Browser.setDownloadBehavior",
                "params": { "behavior": "allow", "downloadPath": dir.to_str().expect("utf-8") },
            }),
        )
        .await;
    }

    /// Waits until `dir` holds a finished download named `name` and returns its bytes.
    pub async fn downloaded(&self, dir: &std::path::Path, name: &str) -> Vec<u8> {
        let path = dir.join(name);
        let partial = dir.join(format!("{name}.crdownload"));
        let deadline = Instant::now() + DOM_WAIT;
        loop {
            if path.exists() && !partial.exists() {
                return std::fs::read(&path).expect("read the download");
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the download {name}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Throttles the page's uploads to `bytes_per_sec` (Chromium's network emulation;
    /// downloads and latency stay as they are), so that an upload lasts long enough to be
    /// watched and cancelled.
    pub async fn throttle_uploads(&self, bytes_per_sec: u64) {
        self.call(
            reqwest::Method::POST,
            "/chromium/network_conditions",
            json!({ "network_conditions": {
                "offline": false,
                "latency": 0,
                "download_throughput": -1,
                "upload_throughput": bytes_per_sec,
            }}),
        )
        .await;
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .expect("PNG")
    }

    /// Ends the session (Chromium exits) and stops chromedriver.
    pub async fn quit(mut self) {
        let _ = self.http.delete(self.url("")).send().await;
        self.session.clear();
        let _ = self.driver.kill().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // After a panic: ask chromedriver to close Chromium (best effort, bounded), then the
        // driver itself is killed by `kill_on_drop`.
        if self.session.is_empty() {
            return;
        }
        let addr = format!("127.0.0.1:{}", self.port);
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            let mut buf = [0u8; 512];
            let _ = std::io::Read::read(&mut s, &mut buf);
        }
    }
}

/// WebDriver's codes for the special keys, for [`Browser::press_keys`].
pub mod keys {
    pub const TAB: &str = "\u{E004}";
    pub const ENTER: &str = "\u{E007}";
    pub const ESCAPE: &str = "\u{E00C}";
    pub const SPACE: &str = " ";
    pub const ARROW_DOWN: &str = "\u{E015}";
}
