//! The OpenAPI document matches the router, and /metrics carries no names.

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use sotto_api::ErrorCode;
use sotto_client::Method;
use sotto_server::http::{OPENAPI, routes};

#[tokio::test]
async fn openapi_document_matches_the_router() {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            assert!(op["summary"].is_string(), "{method} {path} has a summary");
            assert!(op["responses"].is_object(), "{method} {path} has responses");
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    // `routes()` reads the table the router is built from, so a route added to the router
    // but not to openapi.json shows up here as undocumented.
    let routed: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "undocumented: {missing:?}; not routed: {extra:?}"
    );

    // Every documented path answers exactly its documented methods: the documented ones are
    // routed, any other method is refused with 405.
    let ts = TestServer::start().await;
    let client = ts.client();
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        let concrete = path.replace("{id}", "1").replace("{user_id}", "1");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let m = Method::from_bytes(method.as_bytes()).expect("method");
            let r = client.raw(m, &concrete, None, &[]).await.expect("request");
            let code = r.error_code();
            if documented.contains(&(method.to_string(), path.clone())) {
                assert!(
                    code != Some(ErrorCode::RouteNotFound)
                        && code != Some(ErrorCode::MethodNotAllowed),
                    "{method} {path} is not routed: {} {code:?}",
                    r.status
                );
            } else {
                assert_eq!(
                    (r.status, code),
                    (405, Some(ErrorCode::MethodNotAllowed)),
                    "{method} {path} is routed but not documented"
                );
            }
        }
    }
    let served = client
        .raw(Method::GET, "/api/v1/openapi.json", None, &[])
        .await
        .expect("request");
    assert_eq!(served.body, OPENAPI.as_bytes());
}

#[tokio::test]
async fn metrics_are_prometheus_text_without_names() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let alice = ts.user(&admin, "alice-metrics").await;
    let room = alice
        .create_group("secret-room-name", &[])
        .await
        .expect("group");
    alice
        .send_text(room.id, "secret content")
        .await
        .expect("send");
    let _rt = alice.connect(Default::default()).await.expect("connect");
    let r = ts
        .client()
        .raw(Method::GET, "/metrics", None, &[])
        .await
        .expect("metrics");
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).expect("utf8");
    for name in [
        "sotto_connections_open",
        "sotto_messages_sent_total",
        "sotto_ephemeral_frames_relayed_total",
        "sotto_http_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    for secret in ["alice-metrics", "secret-room-name", "secret content"] {
        assert!(!text.contains(secret), "{secret} leaked into metrics");
    }
    let health = ts
        .client()
        .raw(Method::GET, "/healthz", None, &[])
        .await
        .expect("healthz");
    assert_eq!(health.status, 200);
}
