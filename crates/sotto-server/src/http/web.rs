//! The browser client, embedded in the binary.
//!
//! Every file of `web/` the client needs is compiled in with `include_bytes!` through the
//! table below, so running the server needs no Node and no files beside the binary. The
//! assets are served under `/assets/<version>/…`, where the version is a hash of all of them:
//! a given URL always names the same bytes, so it may be cached for a year, and a new build
//! gets new URLs. `index.html` (at `/`, at `/setup`, the first-run page the server prints, and
//! at `/register`, where invite links point) is rewritten at start-up to point at the current
//! version and is never cached.
//!
//! These paths are not API routes: they are answered by the router's fallback, outside the
//! route table and `openapi.json`. Anything under `/api/` that no route matched still gets the
//! JSON `route_not_found` error.
//!
//! Every answer carries a strict Content-Security-Policy: scripts only from this origin
//! (`'wasm-unsafe-eval'` lets the page compile the committed WebAssembly package and is the
//! only relaxation), no inline script or style, connections only to this origin, no framing.

use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The Content-Security-Policy of every page and asset of the client.
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// Prefix of the versioned asset URLs.
const ASSET_PREFIX: &str = "/assets/";

/// One embedded file: its path below `web/` and its bytes.
struct Asset {
    path: &'static str,
    body: &'static [u8],
}

/// Embeds `web/<path>`.
macro_rules! asset {
    ($path:literal) => {
        Asset {
            path: $path,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/", $path)),
        }
    };
}

/// The client's files, except `index.html`. A file the page loads must be listed here, or it
/// answers 404 (the browser test catches that).
const ASSETS: &[Asset] = &[
    asset!("style.css"),
    asset!("main.js"),
    asset!("api.js"),
    asset!("realtime.js"),
    asset!("state.js"),
    asset!("views/dom.js"),
    asset!("views/setup.js"),
    asset!("views/login.js"),
    asset!("views/chat.js"),
    asset!("views/e2e.js"),
    asset!("views/otr.js"),
    asset!("views/register.js"),
    asset!("views/people.js"),
    asset!("views/search.js"),
    asset!("views/account.js"),
    asset!("views/admin.js"),
    asset!("views/settings-form.js"),
    asset!("e2e.js"),
    asset!("otr.js"),
    asset!("pkg/sotto.js"),
    asset!("pkg/sotto_bg.wasm"),
];

/// The page template; `{{version}}` is replaced by [`VERSION`].
const INDEX_TEMPLATE: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/index.html"));

/// A hash of every asset's path and bytes (16 hex digits).
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    hash.update(INDEX_TEMPLATE.as_bytes());
    for a in ASSETS {
        hash.update((a.path.len() as u64).to_be_bytes());
        hash.update(a.path.as_bytes());
        hash.update((a.body.len() as u64).to_be_bytes());
        hash.update(a.body);
    }
    hash.finalize()[..8]
        .iter()
        .fold(String::with_capacity(16), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
});

/// `index.html` pointing at the current asset version.
static INDEX: LazyLock<String> = LazyLock::new(|| INDEX_TEMPLATE.replace("{{version}}", &VERSION));

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// A response with the client's security headers.
fn page(content_type: &'static str, cache: &'static str, body: &'static [u8]) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// The router's fallback: the client's files, else the JSON `route_not_found` error.
pub(super) async fn fallback(method: Method, uri: Uri) -> Response {
    match serve(&method, &uri) {
        Some(res) => res,
        None => super::no_route().await,
    }
}

/// The client's answer to a request no route matched, or `None` when it is not the client's
/// (an unknown path, anything under `/api/`, a method other than GET or HEAD).
fn serve(method: &Method, uri: &Uri) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let path = uri.path();
    if path == "/" || path == "/setup" || path == "/register" {
        return Some(page(
            "text/html; charset=utf-8",
            "no-cache",
            INDEX.as_bytes(),
        ));
    }
    let rest = path.strip_prefix(ASSET_PREFIX)?;
    let (version, file) = rest.split_once('/')?;
    if version != VERSION.as_str() {
        // An asset of another build: its bytes are not here.
        return None;
    }
    let asset = ASSETS.iter().find(|a| a.path == file)?;
    Some(page(
        content_type(file),
        "public, max-age=31536000, immutable",
        asset.body,
    ))
}

/// Status of the answer for `path` (GET), for tests of the table.
#[cfg(test)]
fn status(path: &str) -> axum::http::StatusCode {
    let uri: Uri = path.parse().expect("uri");
    serve(&Method::GET, &uri).map_or(axum::http::StatusCode::NOT_FOUND, |r| r.status())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        // Relative imports in the embedded modules must name embedded files.
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(a.body).expect("utf8");
            let dir = a.path.rsplit_once('/').map_or("", |(d, _)| d);
            for line in text.lines() {
                let line = line.trim();
                if !(line.starts_with("import ") || line.starts_with("} from ")) {
                    continue;
                }
                let Some(spec) = line.split(['\'', '"']).nth(1) else {
                    continue;
                };
                if !spec.starts_with('.') {
                    continue;
                }
                let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let target = parts.join("/");
                assert!(
                    ASSETS.iter().any(|b| b.path == target),
                    "{} imports {spec} ({target}), which is not embedded",
                    a.path
                );
            }
        }
    }

    #[test]
    fn index_points_at_the_current_version() {
        assert!(INDEX.contains(&format!("/assets/{}/main.js", VERSION.as_str())));
        assert!(!INDEX.contains("{{version}}"));
        assert_eq!(status("/"), StatusCode::OK);
        assert_eq!(status("/register"), StatusCode::OK);
        assert_eq!(
            status(&format!("/assets/{}/main.js", VERSION.as_str())),
            StatusCode::OK
        );
        assert_eq!(
            status("/assets/0000000000000000/main.js"),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(&format!("/assets/{}/nope.js", VERSION.as_str())),
            StatusCode::NOT_FOUND
        );
    }
}
