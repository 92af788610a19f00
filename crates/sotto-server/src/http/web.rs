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
//! Text assets and the wasm package are also kept gzip-compressed, computed once per process
//! in a background thread started with the router: an asset is answered compressed when the
//! request's `Accept-Encoding` allows gzip, as is otherwise, with `Vary: Accept-Encoding` either
//! way.
//!
//! Every answer carries a strict Content-Security-Policy: scripts only from this origin
//! (`'wasm-unsafe-eval'` lets the page compile the committed WebAssembly package and is the
//! only relaxation), no inline script or style, connections only to this origin, no framing.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{LazyLock, Once};

use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
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
    asset!("views/messages.js"),
    asset!("views/files.js"),
    asset!("views/admin.js"),
    asset!("views/settings-form.js"),
    asset!("views/keyboard.js"),
    asset!("views/e2e-rooms.js"),
    asset!("e2e.js"),
    asset!("otr.js"),
    asset!("device.js"),
    asset!("rooms.js"),
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

/// Gzipped copies of [`ASSETS`], in the same order: `None` for a file that is not text or
/// wasm, or that gzip would not make smaller.
static GZIPPED: LazyLock<Vec<Option<Vec<u8>>>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            if compressible(a.path) {
                gzip(a.body)
            } else {
                None
            }
        })
        .collect()
});

/// Starts compressing the assets in a background thread, once per process, so that no request
/// waits for it (one that comes earlier waits for the thread to finish, never compresses twice).
pub(super) fn precompress() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("sotto-gzip-assets".into())
            .spawn(|| LazyLock::force(&GZIPPED).len());
        if spawned.is_err() {
            // No thread: the first request compresses instead.
            tracing::debug!("could not start the asset compression thread");
        }
    });
}

/// Whether `path` is worth compressing: text and wasm, not images.
fn compressible(path: &str) -> bool {
    matches!(
        path.rsplit_once('.').map(|(_, ext)| ext),
        Some("js" | "css" | "html" | "svg" | "wasm")
    )
}

/// `body` gzipped at the best level (done once, so time does not matter), if that is smaller.
fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 2), Compression::best());
    encoder.write_all(body).ok()?;
    let out = encoder.finish().ok()?;
    (out.len() < body.len()).then_some(out)
}

/// Whether the request's `Accept-Encoding` allows gzip (RFC 9110 §12.5.3): `gzip` or `x-gzip`
/// with a non-zero weight, else `*` with a non-zero weight. No header means identity only.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let weight = parts
                .filter_map(|p| {
                    let p = p.trim();
                    p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
                })
                .map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(Some(1.0));
            // A weight that does not parse makes the item meaningless: skip it.
            let Some(weight) = weight else { continue };
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(weight > 0.0);
            } else if coding == "*" {
                any = Some(weight > 0.0);
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

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
pub(super) async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    match serve(&method, &uri, accepts_gzip(&headers)) {
        Some(res) => res,
        None => super::no_route().await,
    }
}

/// The client's answer to a request no route matched, or `None` when it is not the client's
/// (an unknown path, anything under `/api/`, a method other than GET or HEAD). `gzip_ok`: the
/// request accepts a gzipped answer.
fn serve(method: &Method, uri: &Uri, gzip_ok: bool) -> Option<Response> {
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
    let index = ASSETS.iter().position(|a| a.path == file)?;
    let asset = ASSETS.get(index)?;
    let gzipped = GZIPPED.get(index).and_then(Option::as_deref);
    let cache = "public, max-age=31536000, immutable";
    let mut res = match gzipped {
        Some(body) if gzip_ok => {
            let mut res = page(content_type(file), cache, body);
            res.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            res
        }
        _ => page(content_type(file), cache, asset.body),
    };
    if gzipped.is_some() {
        // The answer depends on the header: a shared cache must not hand gzip to a client
        // that did not ask for it.
        res.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    Some(res)
}

/// Status of the answer for `path` (GET), for tests of the table.
#[cfg(test)]
fn status(path: &str) -> axum::http::StatusCode {
    let uri: Uri = path.parse().expect("uri");
    serve(&Method::GET, &uri, false).map_or(axum::http::StatusCode::NOT_FOUND, |r| r.status())
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

    #[test]
    fn accept_encoding_allows_gzip_only_with_a_non_zero_weight() {
        let allows = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::ACCEPT_ENCODING, v.parse().expect("header value"));
            }
            accepts_gzip(&headers)
        };
        assert!(!allows(&[]), "no header: identity");
        assert!(allows(&["gzip"]));
        assert!(allows(&["gzip, deflate, br, zstd"]));
        assert!(allows(&["br;q=1.0, GZIP;q=0.5"]));
        assert!(allows(&["x-gzip"]));
        assert!(allows(&["*"]));
        assert!(allows(&["deflate", "gzip"]), "several header lines");
        assert!(!allows(&["identity"]));
        assert!(!allows(&["br, deflate"]));
        assert!(!allows(&["gzip;q=0"]));
        assert!(!allows(&["gzip;q=0.000"]));
        assert!(!allows(&["*, gzip;q=0"]), "an explicit refusal beats *");
        assert!(!allows(&["*;q=0"]));
        assert!(!allows(&["gzip;q=nope"]), "a weight that does not parse");
    }

    #[test]
    fn text_and_wasm_are_gzipped_smaller_and_decompress_to_the_file() {
        assert_eq!(GZIPPED.len(), ASSETS.len());
        for (asset, gzipped) in ASSETS.iter().zip(GZIPPED.iter()) {
            if !compressible(asset.path) {
                assert!(gzipped.is_none(), "{} is served as it is", asset.path);
                continue;
            }
            let gzipped = gzipped
                .as_deref()
                .unwrap_or_else(|| panic!("{} is compressed", asset.path));
            assert!(gzipped.len() < asset.body.len(), "{}", asset.path);
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gzipped), &mut out)
                .expect("gunzip");
            assert!(out == asset.body, "{} round-trips", asset.path);
        }
    }
}
